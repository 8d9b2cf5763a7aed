//! Configuration, read once at start from the command line and the
//! environment (names from the design), and checked before any port is
//! bound. The environment is injected so tests need not set variables.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Command line of `nexus-edge`.
#[derive(Debug, clap::Parser)]
#[command(name = "nexus-edge", version, about = "NEXUS SSOT edge: resolves aliases from memory")]
pub struct Args {
    /// Serve this YAML/JSON alias file without any database.
    #[arg(long, env = "EDGE_ALIASES_FILE")]
    pub aliases_file: Option<PathBuf>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
    #[error("SECRET_KEY is not set; it is required to check tokens (or set EDGE_AUTH=off)")]
    MissingSecret,
    #[error("EDGE_TLS_CERT and EDGE_TLS_KEY must be set together")]
    HalfTls,
    #[error("nothing to serve: pass --aliases-file PATH (or EDGE_ALIASES_FILE)")]
    NoSource,
    #[error("REDIS_URL sync mode is not available in this build yet; use --aliases-file")]
    RedisNotYet,
}

/// The JWT secret; never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Who may resolve.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// A valid bearer token for the context (the default).
    Required(Secret),
    /// Anyone (`EDGE_AUTH=off`, for local demos).
    Off,
}

/// PEM files of the TLS certificate chain and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The edge's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub aliases_file: PathBuf,
    pub http_addr: SocketAddr,
    pub workers: NonZeroUsize,
    pub tls: Option<TlsFiles>,
    pub auth: AuthMode,
    pub log_level: String,
    pub max_connections: usize,
}

impl Config {
    /// Builds the configuration from `args` and an environment lookup.
    pub fn from_parts(
        args: Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let aliases_file = match (args.aliases_file, env("REDIS_URL")) {
            (Some(path), _) => path,
            (None, Some(_)) => return Err(ConfigError::RedisNotYet),
            (None, None) => return Err(ConfigError::NoSource),
        };
        let http_addr = parsed(&env, "EDGE_HTTP_ADDR")?.unwrap_or(([0, 0, 0, 0], 8080).into());
        let workers = match parsed::<NonZeroUsize>(&env, "EDGE_WORKERS")? {
            Some(n) => n,
            None => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        };
        let tls = match (env("EDGE_TLS_CERT"), env("EDGE_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
            (None, None) => None,
            _ => return Err(ConfigError::HalfTls),
        };
        let auth = match env("EDGE_AUTH").as_deref().unwrap_or("required") {
            "required" => match env("SECRET_KEY").filter(|s| !s.is_empty()) {
                Some(s) => AuthMode::Required(Secret(s)),
                None => return Err(ConfigError::MissingSecret),
            },
            "off" => AuthMode::Off,
            other => {
                return Err(ConfigError::Invalid {
                    name: "EDGE_AUTH",
                    value: other.to_owned(),
                    reason: "expected 'required' or 'off'".into(),
                });
            }
        };
        let max_connections = parsed(&env, "EDGE_MAX_CONNECTIONS")?.unwrap_or(10_000);
        let log_level = env("LOG_LEVEL").unwrap_or_else(|| "info".into());
        Ok(Self { aliases_file, http_addr, workers, tls, auth, log_level, max_connections })
    }
}

fn parsed<T>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let args = Args { aliases_file: Some("a.yaml".into()) };
        Config::from_parts(args, |k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_and_refusals() {
        let c = config(&[("SECRET_KEY", "s3cret")]).unwrap();
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.max_connections, 10_000);
        assert!(!format!("{c:?}").contains("s3cret"));
        let e = config(&[]).unwrap_err();
        assert!(e.to_string().contains("SECRET_KEY"), "{e}");
        assert!(matches!(config(&[("EDGE_AUTH", "off")]).unwrap().auth, AuthMode::Off));
        assert!(config(&[("EDGE_AUTH", "off"), ("EDGE_WORKERS", "0")]).is_err());
        assert!(config(&[("EDGE_AUTH", "off"), ("EDGE_HTTP_ADDR", "nope")]).is_err());
        assert!(matches!(
            config(&[("EDGE_AUTH", "off"), ("EDGE_TLS_CERT", "c.pem")]),
            Err(ConfigError::HalfTls)
        ));
        let none = Config::from_parts(Args { aliases_file: None }, |_| None);
        assert!(matches!(none, Err(ConfigError::NoSource)));
    }
}
