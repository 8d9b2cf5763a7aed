//! `http`: HTTP/1.1, h2c or HTTP/2 over TLS load on a resolve target.

use std::sync::Arc;

use anyhow::Context as _;
use nexus_loadtest::http::{HttpConnector, HttpOptions, Version};
use nexus_loadtest::target::Target;

use super::load::Load;
use crate::cli::args::HttpArgs;

pub fn run(args: HttpArgs) -> anyhow::Result<()> {
    // Everything is parsed and checked before the runtime starts.
    let target = Target::parse(&args.target).context("--target")?;
    let mut load = Load::checked(args.load)?;
    load.pipeline(args.pipeline);
    let options = HttpOptions {
        target: target.clone(),
        version: if args.http2 { Version::Http2 } else { Version::Http1 },
        token: load.token.clone(),
        trust: load.trust(),
        timeout: load.args.timeout,
    };
    let connector = Arc::new(HttpConnector::new(&options, &load.keys).context("http")?);
    load.execute(connector, target.to_string())
}
