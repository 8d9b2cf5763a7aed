//! `hyper-peer`: the aliases of a file served by bare hyper on one thread,
//! the floor under the edge in `compare-nginx.sh --with-hyper`.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use nexus_loadtest::{keyspace, peer};

use crate::cli::args::PeerArgs;

pub fn run(args: PeerArgs) -> anyhow::Result<()> {
    let aliases = keyspace::live_aliases(&args.aliases_file)
        .with_context(|| format!("--aliases-file {}", args.aliases_file.display()))?;
    let bodies = Arc::new(peer::Bodies::new(aliases));
    if bodies.is_empty() {
        bail!("no live alias in {}", args.aliases_file.display());
    }
    // One thread, as the edge with EDGE_WORKERS=1 and nginx with one worker.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!("hyper-peer listening on {} ({} aliases)", listener.local_addr()?, bodies.len());
        tokio::select! {
            () = peer::serve(listener, bodies) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
