//! `quic`: `nexus-resolve/1` load on an edge's QUIC port.

use std::sync::Arc;

use anyhow::Context as _;
use nexus_loadtest::quic::{QuicConnector, QuicOptions};

use super::load::Load;
use crate::cli::args::QuicArgs;

pub fn run(args: QuicArgs) -> anyhow::Result<()> {
    // Everything is parsed and checked before the runtime starts.
    let mut load = Load::checked(args.load)?;
    load.pipeline(args.pipeline);
    let options = QuicOptions {
        target: args.target.clone(),
        server_name: args.server_name,
        token: load.token.clone(),
        trust: load.trust(),
        timeout: load.args.timeout,
    };
    let connector = Arc::new(QuicConnector::new(&options, &load.keys).context("quic")?);
    load.execute(connector, format!("quic://{}", args.target))
}
