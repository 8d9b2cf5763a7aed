//! What every reader of the environment shares: the error, the typed
//! parsers over an injected lookup, the TLS file pair and [`Secret`].
//!
//! A leaf: [`crate::config`] (the whole configuration), [`crate::quic::config`]
//! (the QUIC variables) and [`crate::sync`] (the Redis URL) all import from
//! here and from nothing of each other, so no two of them form a loop.

use std::fmt;
use std::path::PathBuf;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
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
    #[error("EDGE_TLS_CERT and EDGE_TLS_KEY must be set together")]
    HalfTls,
    #[error("nothing to serve: pass --aliases-file PATH (or EDGE_ALIASES_FILE), or set REDIS_URL")]
    NoSource,
    #[error("cannot read {name} {path:?}: {source}")]
    KeyFile { name: &'static str, path: PathBuf, source: std::io::Error },
}

/// One type for every secret of both planes; redacted in `Debug`.
pub use nexus_protocol::Secret;

/// PEM files of the TLS certificate chain and key (`EDGE_TLS_CERT`,
/// `EDGE_TLS_KEY`), shared by HTTPS and QUIC.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `name` parsed as `T`, `None` when unset.
pub fn parsed<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    env(name)
        .map(|value| {
            value.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
                value,
            })
        })
        .transpose()
}

/// A yes/no switch (`true`/`false`, `on`/`off`, `1`/`0`, `yes`/`no`);
/// `default` when unset or empty.
pub fn switch(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match env(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("1" | "true" | "on" | "yes") => Ok(true),
        Some("0" | "false" | "off" | "no") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            name,
            value: other.to_owned(),
            reason: "expected true/false (or on/off)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_switches_refuse_what_they_do_not_know() {
        let s = Secret::new("redis://:pw@host");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "redis://:pw@host");
        let env = |k: &str| (k == "X").then(|| " off ".to_owned());
        assert!(!switch(&env, "X", true).unwrap());
        assert!(switch(&env, "Y", true).unwrap());
        assert!(switch(&|_: &str| Some("maybe".into()), "X", true).is_err());
        assert_eq!(parsed::<u16>(&|_: &str| Some(" 7 ".into()), "N").unwrap(), Some(7));
    }
}
