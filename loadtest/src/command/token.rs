//! `token`: a JWT signed with the shared secret (HS256), as the edges in
//! development mode verify it.

use anyhow::{Context as _, bail};
use nexus_protocol::{ContextScope, TokenSigner};

use crate::cli::args::TokenArgs;

pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    println!("{}", mint(args)?);
    Ok(())
}

pub fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    if args.ttl <= 0 {
        bail!("--ttl must be positive");
    }
    let scope = ContextScope::try_from(args.contexts.clone()).context("--contexts")?;
    let signer = TokenSigner::hs256(args.secret.as_bytes());
    Ok(signer.mint(&args.sub, args.role, scope, now_secs(), args.ttl))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use nexus_protocol::Role;

    use super::*;

    #[test]
    fn minted_token_verifies_with_the_same_secret() {
        let args = TokenArgs {
            secret: "s3cret".into(),
            sub: "bench".into(),
            role: Role::Resolver,
            contexts: vec!["frontend".into(), "backend".into()],
            ttl: 60,
        };
        let claims =
            nexus_protocol::TokenVerifier::hs256(b"s3cret").verify(&mint(&args).unwrap()).unwrap();
        assert_eq!(claims.role, Role::Resolver);
        assert!(claims.contexts.allows("backend") && !claims.contexts.allows("system"));
    }
}
