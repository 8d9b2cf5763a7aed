//! Configuration, read once at start from the environment (names from the
//! design) through an injectable lookup, and checked before anything binds.
//!
//! Nearly a leaf: it imports nothing from this crate but the pure
//! governance rules (for [`governance`], the rules' source), so every other
//! module may import it. [`propagation`] holds the publisher's part,
//! [`database`] the TLS settings of `DATABASE_URL`, [`tokens`] the token
//! keys; each reads its error from `error.rs`, a leaf, and nothing from
//! this file, so no child imports its parent.

pub(crate) mod database;
mod error;
pub(crate) mod governance;
pub(crate) mod propagation;
pub mod rate_limit;
pub(crate) mod tokens;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use database::DbUrlError;
pub(crate) use database::{DbConnection, DbTls, SslMode};
pub use error::ConfigError;
pub(crate) use error::MIN_SECRET_LEN;
use error::invalid;

pub(crate) use governance::GovernanceSource;
pub(crate) use nexus_runtime::logging::LogFormat;
pub use propagation::PropagationConfig;
pub use tokens::TokenConfig;

use crate::domain::governance::Governance;

/// One type for every secret of both planes; redacted in `Debug`.
pub(crate) use nexus_protocol::Secret;

/// How to reach PostgreSQL. The URL may carry a password, so it is a secret.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub(crate) url: Secret,
    pub(crate) pool_size: usize,
    /// Bound on waiting for a connection, connecting, and each statement:
    /// past it the request answers 503 instead of hanging.
    pub timeout: Duration,
}

impl DbConfig {
    pub fn new(url: &str) -> Self {
        Self { url: Secret::new(url.to_owned()), pool_size: 16, timeout: Duration::from_secs(5) }
    }

    /// The URL read for connecting, `sslmode` and `sslrootcert` included
    /// (see [`database`]); the root file is read here. `Config` calls it
    /// at start, so a bad URL stops the start naming `DATABASE_URL`.
    pub(crate) fn connection(&self) -> Result<DbConnection, DbUrlError> {
        let mut c = database::parse(self.url.expose())?;
        c.pg.connect_timeout(self.timeout);
        Ok(c)
    }
}

/// `API_TLS_CERT` and `API_TLS_KEY`: PEM files of the admin API's
/// certificate chain and key; checked at start, loaded by `server::start`.
#[derive(Debug, Clone)]
pub(crate) struct ApiTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ApiTls {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let var = |name| get(name).filter(|v: &String| !v.trim().is_empty());
        let files = match (var("API_TLS_CERT"), var("API_TLS_KEY")) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => Self { cert: cert.into(), key: key.into() },
            (Some(_), None) => return Err(invalid("API_TLS_KEY", "set it with API_TLS_CERT")),
            (None, Some(_)) => return Err(invalid("API_TLS_CERT", "set it with API_TLS_KEY")),
        };
        files.server_config()?;
        Ok(Some(files))
    }

    /// The rustls server configuration (ALPN h2, http/1.1), an error
    /// naming the variable whose file is wrong.
    pub(crate) fn server_config(
        &self,
    ) -> Result<std::sync::Arc<rustls::ServerConfig>, ConfigError> {
        use nexus_runtime::tls::TlsError;
        nexus_runtime::tls::server_config(&self.cert, &self.key).map_err(|e| match e {
            TlsError::Key { .. } => invalid("API_TLS_KEY", e),
            e => invalid("API_TLS_CERT", e),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    pub listen: SocketAddr,
    pub token_expiration_secs: i64,
    /// Signing and verification keys, `TOKEN_MAX_TTL` (see [`tokens`]).
    pub tokens: TokenConfig,
    /// `LOG_LEVEL`: a tracing filter directive.
    pub log_level: String,
    /// `LOG_FORMAT`: `text` (default) or `json` (see `nexus_runtime::logging`).
    pub log_format: LogFormat,
    /// `NEXUS_GOVERNANCE_FILE` if set, else the built-in rules.
    pub(crate) governance: GovernanceSource,
    pub(crate) audit_archive_after_days: u32,
    pub(crate) audit_purge_after_days: u32,
    /// `PROMETHEUS_ENABLED` (default true): serve `/metrics`.
    pub(crate) prometheus_enabled: bool,
    /// Redis, prefix, signing key, publishing (see [`propagation`]).
    pub propagation: PropagationConfig,
    /// `API_TLS_CERT` and `API_TLS_KEY`: serve the API over TLS.
    pub(crate) api_tls: Option<ApiTls>,
    /// `API_RATE_LIMIT*`: the admin API's per-credential limit.
    pub(crate) rate_limit: rate_limit::RateLimitConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = get("DATABASE_URL")
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/nexus".to_owned());
        let db = DbConfig::new(&url);
        db.connection().map_err(|e| invalid("DATABASE_URL", e))?;
        let host: IpAddr = get("API_HOST")
            .unwrap_or_else(|| "0.0.0.0".into())
            .parse()
            .map_err(|e| invalid("API_HOST", e))?;
        let port: u16 = parse_or(&get, "API_PORT", 8000)?;
        let secret_key = get("SECRET_KEY").filter(|s| !s.is_empty()).map(Secret::new);
        if let Some(s) = &secret_key
            && s.expose().len() < MIN_SECRET_LEN
        {
            return Err(invalid("SECRET_KEY", format!("must be at least {MIN_SECRET_LEN} bytes")));
        }
        let token_expiration_secs: i64 = parse_or(&get, "TOKEN_EXPIRATION", 3600)?;
        if token_expiration_secs <= 0 {
            return Err(invalid("TOKEN_EXPIRATION", "must be positive"));
        }
        let tokens = TokenConfig::from_lookup(
            &get,
            secret_key.as_ref().map(Secret::as_bytes),
            token_expiration_secs,
        )?;
        let archive: u32 = parse_or(&get, "AUDIT_ARCHIVE_AFTER_DAYS", 90)?;
        let purge: u32 = parse_or(&get, "AUDIT_PURGE_AFTER_DAYS", 365)?;
        if purge <= archive {
            return Err(invalid(
                "AUDIT_PURGE_AFTER_DAYS",
                "must be greater than AUDIT_ARCHIVE_AFTER_DAYS",
            ));
        }
        Ok(Self {
            db,
            listen: SocketAddr::new(host, port),
            token_expiration_secs,
            tokens,
            log_level: get("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            log_format: parse_or(&get, nexus_runtime::logging::LOG_FORMAT, LogFormat::Text)?,
            governance: GovernanceSource::from_value(get(governance::VARIABLE)),
            audit_archive_after_days: archive,
            audit_purge_after_days: purge,
            prometheus_enabled: parse_or(&get, "PROMETHEUS_ENABLED", true)?,
            propagation: PropagationConfig::from_lookup(&get)?,
            api_tls: ApiTls::from_lookup(&get)?,
            rate_limit: rate_limit::RateLimitConfig::from_lookup(&get).map_err(|e| {
                let name = match &e {
                    rate_limit::RateLimitError::Rate(_) => "API_RATE_LIMIT",
                    rate_limit::RateLimitError::Number(name, _) => name,
                };
                invalid(name, e)
            })?,
        })
    }
}

/// The governance rules, read and compiled as configured: the built-in
/// rules unless `NEXUS_GOVERNANCE_FILE` is set. `serve`, `import` and `dev`
/// call it before binding anything.
pub fn load_governance(config: &Config) -> Result<Governance, governance::LoadError> {
    config.governance.load()
}

fn parse_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match get(name) {
        Some(v) => v.trim().parse().map_err(|e| invalid(name, e)),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_redaction() {
        let secret = "s".repeat(40);
        let c = from(&[("SECRET_KEY", &secret), ("DATABASE_URL", "postgres://u:hunter2@db/nexus")])
            .unwrap();
        assert_eq!(c.listen.port(), 8000);
        assert_eq!(c.token_expiration_secs, 3600);
        assert_eq!((c.log_format, &c.governance), (LogFormat::Text, &GovernanceSource::Builtin));
        let shown = format!("{c:?}");
        assert!(!shown.contains(&secret) && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn refusals_name_the_variable() {
        let bad = |pairs: &[(&str, &str)], name: &str| {
            let e = from(pairs).unwrap_err().to_string();
            assert!(e.starts_with(name), "{e}");
        };
        bad(&[("API_PORT", "eighty")], "API_PORT");
        bad(&[("SECRET_KEY", "short")], "SECRET_KEY");
        bad(&[("AUDIT_ARCHIVE_AFTER_DAYS", "10"), ("AUDIT_PURGE_AFTER_DAYS", "5")], "AUDIT_PURGE");
        bad(&[("DATABASE_URL", "nonsense")], "DATABASE_URL");
        bad(&[("LOG_FORMAT", "pretty")], "LOG_FORMAT");
        bad(&[("DATABASE_URL", "postgres://db/nexus?sslmode=verify")], "DATABASE_URL");
        bad(
            &[("DATABASE_URL", "postgres://db/n?sslmode=verify-ca&sslrootcert=/no/ca")],
            "DATABASE",
        );
        bad(&[("API_TLS_CERT", "/no/cert.pem")], "API_TLS_KEY");
        bad(&[("API_RATE_LIMIT", "fast")], "API_RATE_LIMIT");
        bad(&[("API_RATE_LIMIT_BURST", "0")], "API_RATE_LIMIT_BURST");
        bad(&[("API_TLS_CERT", "/no/cert.pem"), ("API_TLS_KEY", "/no/key.pem")], "API_TLS_CERT");
    }
}
