//! `nexus-edge`: wires the configuration, the alias file, the workers and
//! the signals together. Everything else lives in the library.

use std::sync::Arc;

use clap::Parser;
use nexus_edge::config::{Args, Config};
use nexus_edge::metrics::Metrics;
use nexus_edge::node;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> anyhow::Result<()> {
    let config = Config::from_parts(Args::parse(), |k| std::env::var(k).ok())?;
    nexus_runtime::logging::init(&config.log_level, config.log_format)?;
    // Signals, the file watcher and shutdown run here; requests run on the
    // workers' own runtimes.
    let control = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    control.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    // Before anything listens, so a SIGTERM right after start drains too.
    let mut term = signal(SignalKind::terminate())?;
    let (state, feed) = node::open(&config, &metrics).await?;
    let node = node::launch(&config, state, feed, metrics)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: draining"),
    }
    node.stop().await;
    tracing::info!("stopped");
    Ok(())
}
