//! `gen`: a synthetic aliases file plus the matching nginx map, paths list
//! and wrk script, and optionally a resolver token for them.

use anyhow::Context as _;
use nexus_loadtest::synthetic::{self, Spec, Written};
use nexus_protocol::Role;

use super::token::mint;
use crate::cli::args::{GenArgs, TokenArgs};

pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let spec = Spec { count: args.count, contexts: args.contexts, base: args.base };
    let Written { aliases, nginx_map, paths, wrk_script } =
        synthetic::write(&spec, &args.out).context("gen")?;
    eprintln!("wrote {} aliases to {}", spec.count, aliases.display());
    eprintln!("nginx map  {}", nginx_map.display());
    eprintln!("paths      {}", paths.display());
    eprintln!("wrk script {}", wrk_script.display());
    if let Some(secret) = args.secret {
        let token = TokenArgs {
            secret,
            sub: "loadtest".into(),
            role: Role::Resolver,
            contexts: vec!["*".into()],
            ttl: args.ttl,
        };
        println!("{}", mint(&token)?);
    }
    Ok(())
}
