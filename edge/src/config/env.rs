//! What every reader of the edge's environment shares: the error, the TLS
//! file pair, and (from `nexus_runtime::env`) the typed parsers over an
//! injected lookup and [`Secret`].
//!
//! A leaf: [`crate::config`] (the whole configuration), [`crate::quic::config`]
//! (the QUIC variables) and [`crate::sync`] (the Redis URL) all import from
//! here and from nothing of each other, so no two of them form a loop.

use std::path::PathBuf;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable refused by the parsers both planes share.
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(
        "no token keys: set NEXUS_TOKEN_VERIFY_KEYS (or NEXUS_TOKEN_VERIFY_KEYS_FILE) to the \
         control plane's public keys (its /.well-known/jwks.json); SECRET_KEY (HS256) is for \
         development only; or EDGE_AUTH=off for a demo"
    )]
    MissingSecret,
    #[error(
        "{0} is set: an edge never holds a token signing key (it could mint admin tokens); \
         give it NEXUS_TOKEN_VERIFY_KEYS, the public keys, instead"
    )]
    SigningKeyOnEdge(&'static str),
    #[error(
        "no state verify key: set NEXUS_VERIFY_KEY (or NEXUS_VERIFY_KEY_FILE) to the public key \
         of the control plane's NEXUS_SIGNING_KEY; without it anyone who can write Redis could \
         sign the edge's state (NEXUS_INSECURE_DEV_KEYS=1 accepts the public development key, \
         for tests only)"
    )]
    NoVerifyKey,
    #[error("EDGE_TLS_CERT and EDGE_TLS_KEY must be set together")]
    HalfTls,
    #[error("nothing to serve: pass --aliases-file PATH (or EDGE_ALIASES_FILE), or set REDIS_URL")]
    NoSource,
}

pub use nexus_runtime::env::{EnvError, Secret, parsed, switch};

/// PEM files of the TLS certificate chain and key (`EDGE_TLS_CERT`,
/// `EDGE_TLS_KEY`), shared by HTTPS and QUIC.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}
