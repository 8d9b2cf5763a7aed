//! Configuration, read once at start from the command line and the
//! environment (names from the design), and checked before any port is
//! bound. The environment is injected so tests need not set variables.

pub mod env;
pub mod rate_limit;
pub mod tokens;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use nexus_protocol::TokenVerifier;
use nexus_protocol::signing::{self, VerifyingKey};

use crate::quic::config::QuicConfig;
use crate::sync::SyncConfig;
use env::parsed;
pub use env::{ConfigError, EnvError, Secret, TlsFiles};
use nexus_runtime::bus::redis::RedisConfig;

/// Command line of `nexus-edge`.
#[derive(Debug, clap::Parser)]
#[command(name = "nexus-edge", version, about = "NEXUS SSOT edge: resolves aliases from memory")]
pub struct Args {
    /// Serve this YAML/JSON alias file without any database.
    #[arg(long, env = "EDGE_ALIASES_FILE")]
    pub aliases_file: Option<PathBuf>,
}

/// Who may resolve.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// A valid bearer credential for the context (the default), checked
    /// with these keys (see [`tokens`]).
    Required(Box<TokenVerifier>),
    /// Anyone (`EDGE_AUTH=off`, for local demos).
    Off,
}

/// Where the edge's state comes from.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// `--aliases-file PATH`: no database, no Redis.
    File(PathBuf),
    /// `REDIS_URL` and no file: sync from the control plane.
    Redis(Box<RedisSource>),
    /// Never read from the environment: the program that embeds the edge
    /// feeds it (`nexus-control-plane dev`, see [`Config::embedded`]).
    Embedded,
}

/// Sync from Redis: where from, where the report goes, and sync's settings.
#[derive(Debug, Clone)]
pub struct RedisSource {
    /// `REDIS_URL`: the Redis synced from (the primary, or a regional
    /// replica of it).
    pub redis: RedisConfig,
    /// `EDGE_REPORT_REDIS_URL`: where the edge report is written when not
    /// to `redis`. The control plane reads the fleet hash from its own
    /// Redis (the primary), so an edge on a read-only replica points this
    /// at the primary (or anything that writes through to it). `None`
    /// (unset, empty, or the same URL): the report goes to `redis`.
    pub report: Option<RedisConfig>,
    pub sync: SyncConfig,
}

/// The edge's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceConfig,
    pub http_addr: SocketAddr,
    pub workers: NonZeroUsize,
    pub tls: Option<TlsFiles>,
    pub auth: AuthMode,
    /// `EDGE_RATE_LIMIT`: each credential's limit; `None` (the default): off.
    pub rate_limit: Option<rate_limit::RateLimit>,
    /// `EDGE_AUTH_FAILURES`: refused credentials each client host may send
    /// before it is answered 429 unchecked; `None`: no budget.
    pub auth_failures: Option<rate_limit::RateLimit>,
    pub log_level: String,
    /// `LOG_FORMAT`: `text` (default) or `json` (see [`crate::logging`]).
    pub log_format: nexus_runtime::logging::LogFormat,
    pub max_connections: usize,
    /// `EDGE_MAX_CONNECTIONS_PER_IP`: connections one client host may hold
    /// (IPv6: per /64); unset or `0`: no per-host cap.
    pub max_connections_per_ip: Option<u32>,
    /// `PROMETHEUS_ENABLED` (default true): serve `/metrics`.
    pub prometheus: bool,
    /// `EDGE_QUIC_ADDR` and whether QUIC is served (see [`crate::quic::config`]).
    pub quic: QuicConfig,
}

/// `REDIS_CA_FILE`, checked now (readable, holds a CA, and REDIS_URL is
/// `rediss://`) so a bad file stops the start before anything binds.
fn redis_ca_file(
    url: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<PathBuf>, ConfigError> {
    let ca_file = env("REDIS_CA_FILE").filter(|p| !p.is_empty()).map(PathBuf::from);
    nexus_runtime::bus::redis::tls_config(url, ca_file.as_deref()).map_err(|e| {
        EnvError::Invalid {
            name: "REDIS_CA_FILE",
            value: ca_file.as_ref().map_or_else(String::new, |p| p.display().to_string()),
            reason: match e {
                nexus_runtime::bus::redis::RedisTlsError::Roots(why) => why.to_string(),
                other => other.to_string(),
            },
        }
    })?;
    Ok(ca_file)
}

/// `EDGE_REPORT_REDIS_URL`, under the same prefix. `REDIS_CA_FILE` is
/// trusted for it too when it is `rediss://` (one CA for the deployment's
/// Redis servers); a plaintext report URL leaves the CA to `REDIS_URL`.
fn report_redis(
    url: &str,
    prefix: &str,
    ca_file: Option<&PathBuf>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<RedisConfig>, ConfigError> {
    const NAME: &str = "EDGE_REPORT_REDIS_URL";
    let Some(report) = env(NAME).map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if report == url {
        return Ok(None);
    }
    // The URL may hold a password: never echoed back.
    let invalid = |reason: String| {
        EnvError::Invalid { name: NAME, value: "<redacted>".into(), reason }.into()
    };
    // Any scheme fred reads (redis, rediss, redis-sentinel, ...: a
    // sentinel URL follows the primary through a failover); the rest of
    // the URL is fred's to check when it connects.
    let scheme = report.split_once("://").map_or(String::new(), |(s, _)| s.to_ascii_lowercase());
    if !(scheme.starts_with("redis") || scheme.starts_with("valkey")) {
        return Err(invalid("expected a redis://, rediss:// or redis-sentinel:// URL".into()));
    }
    let tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    let ca_file = ca_file.filter(|_| tls).cloned();
    nexus_runtime::bus::redis::tls_config(&report, ca_file.as_deref())
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Some(RedisConfig::new(&report, prefix).with_ca_file(ca_file)))
}

impl Config {
    /// Builds the configuration from `args` and an environment lookup.
    pub fn from_parts(
        args: Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let source = match (args.aliases_file, env("REDIS_URL").filter(|u| !u.is_empty())) {
            (Some(path), _) => SourceConfig::File(path),
            (None, Some(url)) => {
                let prefix = env("NEXUS_REDIS_PREFIX").unwrap_or_else(|| "nexus".into());
                let ca_file = redis_ca_file(&url, &env)?;
                let report = report_redis(&url, &prefix, ca_file.as_ref(), &env)?;
                let redis = RedisConfig::new(&url, &prefix).with_ca_file(ca_file);
                SourceConfig::Redis(Box::new(RedisSource {
                    redis,
                    report,
                    sync: sync_config(&env)?,
                }))
            }
            (None, None) => return Err(ConfigError::NoSource),
        };
        Self::with_source(source, env)
    }

    /// The configuration of an edge another program feeds: everything but
    /// the source, from `env` as for the binary.
    pub fn embedded(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::with_source(SourceConfig::Embedded, env)
    }

    fn with_source(
        source: SourceConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
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
            "required" => AuthMode::Required(Box::new(tokens::edge_verifier(&env)?)),
            "off" => AuthMode::Off,
            other => {
                return Err(EnvError::Invalid {
                    name: "EDGE_AUTH",
                    value: other.to_owned(),
                    reason: "expected 'required' or 'off'".into(),
                }
                .into());
            }
        };
        let rate_limit = rate_limit::from_env(&env, matches!(auth, AuthMode::Required(_)))?;
        let auth_failures = rate_limit::failures_from_env(&env)?;
        let max_connections = parsed(&env, "EDGE_MAX_CONNECTIONS")?.unwrap_or(10_000);
        let max_connections_per_ip =
            parsed::<u32>(&env, "EDGE_MAX_CONNECTIONS_PER_IP")?.filter(|&n| n > 0);
        let log_level = env("LOG_LEVEL").unwrap_or_else(|| "info".into());
        let log_format = parsed(&env, nexus_runtime::logging::LOG_FORMAT)?.unwrap_or_default();
        let prometheus = parsed(&env, "PROMETHEUS_ENABLED")?.unwrap_or(true);
        let quic = QuicConfig::from_env(&env, tls.as_ref())?;
        Ok(Self {
            source,
            http_addr,
            workers,
            tls,
            auth,
            rate_limit,
            auth_failures,
            log_level,
            log_format,
            max_connections,
            max_connections_per_ip,
            prometheus,
            quic,
        })
    }
}

/// The sync settings (names from the propagation contract).
fn sync_config(env: &impl Fn(&str) -> Option<String>) -> Result<SyncConfig, ConfigError> {
    let verify_keys = match (env("NEXUS_VERIFY_KEY"), env("NEXUS_VERIFY_KEY_FILE")) {
        (Some(hex), _) => parse_key("NEXUS_VERIFY_KEY", hex)?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|source| EnvError::KeyFile {
                name: "NEXUS_VERIFY_KEY_FILE",
                path: path.clone().into(),
                source,
            })?;
            parse_key("NEXUS_VERIFY_KEY_FILE", text)?
        }
        // Closed by default; main still warns loudly when it sees the dev key.
        (None, None) if nexus_runtime::env::insecure_dev_keys(env)? => {
            vec![signing::dev_verify_key()]
        }
        (None, None) => return Err(ConfigError::NoVerifyKey),
    };
    let check_ms: u64 = parsed(env, "EDGE_CHECK_INTERVAL_MS")?.unwrap_or(2_000);
    if check_ms == 0 {
        return Err(EnvError::Invalid {
            name: "EDGE_CHECK_INTERVAL_MS",
            value: "0".into(),
            reason: "must be at least 1".into(),
        }
        .into());
    }
    let max_staleness: u64 =
        parsed(env, "EDGE_MAX_STALENESS")?.unwrap_or(crate::sync::MAX_STALENESS.as_secs());
    if max_staleness == 0 {
        return Err(EnvError::Invalid {
            name: "EDGE_MAX_STALENESS",
            value: "0".into(),
            reason: "seconds, at least 1".into(),
        }
        .into());
    }
    let edge_id = env("EDGE_ID").unwrap_or_else(|| {
        let host = env("HOSTNAME").unwrap_or_else(|| "edge".into());
        format!("{host}-{}", std::process::id())
    });
    Ok(SyncConfig {
        verify_keys,
        edge_id,
        region: env("EDGE_REGION").unwrap_or_else(|| "local".into()),
        state_dir: env("EDGE_STATE_DIR").filter(|d| !d.is_empty()).map(PathBuf::from),
        check_interval: Duration::from_millis(check_ms),
        max_staleness: Duration::from_secs(max_staleness),
        stale_refuse: stale_refuse(env)?,
    })
}

/// `EDGE_STALE_REFUSE`: `*`, or contexts separated by commas.
fn stale_refuse(env: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(text) = env("EDGE_STALE_REFUSE") else { return Ok(Vec::new()) };
    text.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            if c == "*" {
                return Ok(c.to_owned());
            }
            nexus_protocol::Context::parse(c).map(|ctx| ctx.to_string()).map_err(|e| {
                EnvError::Invalid {
                    name: "EDGE_STALE_REFUSE",
                    value: text.clone(),
                    reason: e.to_string(),
                }
                .into()
            })
        })
        .collect()
}

fn parse_key(name: &'static str, hex: String) -> Result<Vec<VerifyingKey>, ConfigError> {
    signing::parse_verify_keys(&hex).map_err(|e| {
        EnvError::Invalid {
            name,
            // A public key: fine to echo back.
            value: hex.trim().to_owned(),
            reason: e.to_string(),
        }
        .into()
    })
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
        let c = config(&[("SECRET_KEY", "s3cret-s3cret-s3cret-s3cret-s3cret")]).unwrap();
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_connections_per_ip, None);
        let capped = config(&[("EDGE_AUTH", "off"), ("EDGE_MAX_CONNECTIONS_PER_IP", "64")]);
        assert_eq!(capped.unwrap().max_connections_per_ip, Some(64));
        let zero = config(&[("EDGE_AUTH", "off"), ("EDGE_MAX_CONNECTIONS_PER_IP", "0")]);
        assert_eq!(zero.unwrap().max_connections_per_ip, None);
        assert!(config(&[("EDGE_AUTH", "off"), ("EDGE_MAX_CONNECTIONS_PER_IP", "-1")]).is_err());
        assert!(c.prometheus);
        let quiet = config(&[("EDGE_AUTH", "off"), ("PROMETHEUS_ENABLED", "false")]).unwrap();
        assert!(!quiet.prometheus);
        assert!(config(&[("EDGE_AUTH", "off"), ("PROMETHEUS_ENABLED", "maybe")]).is_err());
        assert!(!format!("{c:?}").contains("s3cret"));
        let e = config(&[]).unwrap_err();
        assert!(e.to_string().contains("NEXUS_TOKEN_VERIFY_KEYS"), "{e}");
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

    fn redis_config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_parts(Args { aliases_file: None }, |k| vars.get(k).cloned())
    }

    #[test]
    fn redis_mode_reads_the_contract_names_and_hides_the_url() {
        let base = [("EDGE_AUTH", "off"), ("REDIS_URL", "redis://:pw-s3cret@host:6379")];
        // Closed by default: no verify key, no start.
        let e = redis_config(&base).unwrap_err();
        assert!(matches!(e, ConfigError::NoVerifyKey), "{e}");
        let base = [
            ("EDGE_AUTH", "off"),
            ("REDIS_URL", "redis://:pw-s3cret@host:6379"),
            ("NEXUS_INSECURE_DEV_KEYS", "1"),
        ];
        let c = redis_config(&base).unwrap();
        let SourceConfig::Redis(redis) = &c.source else { panic!("not redis mode: {c:?}") };
        let RedisSource { redis, report, sync } = &**redis;
        assert!(report.is_none(), "the report goes to REDIS_URL by default");
        assert_eq!(redis.keys.prefix(), "nexus");
        assert!(signing::is_dev_verify_key(&sync.verify_keys[0]));
        assert_eq!(sync.check_interval, Duration::from_secs(2));
        assert_eq!(sync.region, "local");
        assert!(sync.state_dir.is_none());
        assert!(!format!("{c:?}").contains("pw-s3cret"));

        let key = signing::verify_key_hex(&signing::dev_verify_key()).to_string();
        let mut vars = base.to_vec();
        vars.extend([
            ("NEXUS_REDIS_PREFIX", "t1"),
            ("NEXUS_VERIFY_KEY", key.as_str()),
            ("EDGE_ID", "e1"),
            ("EDGE_CHECK_INTERVAL_MS", "250"),
            ("EDGE_STATE_DIR", "/var/lib/nexus"),
        ]);
        let c = redis_config(&vars).unwrap();
        let SourceConfig::Redis(redis) = &c.source else { panic!() };
        let RedisSource { redis, sync, .. } = &**redis;
        assert_eq!(
            (redis.keys.snapshot().as_str(), sync.edge_id.as_str()),
            ("{t1}:snapshot", "e1")
        );
        assert_eq!(sync.degraded_after(), Duration::from_millis(750));
        assert_eq!(sync.verify_keys.len(), 1);

        // A rotation: the old and the new key, hex or PEM, both accepted.
        let new = nexus_protocol::signing::SigningKey::from_bytes(&[5; 32]).verifying_key();
        let both = format!("{key}, {}", signing::verify_key_hex(&new));
        let pem = format!(
            "{}{}",
            nexus_protocol::jwk::public_key_pem(&signing::dev_verify_key()),
            nexus_protocol::jwk::public_key_pem(&new)
        );
        for text in [both.as_str(), pem.as_str()] {
            let mut vars = base.to_vec();
            vars.push(("NEXUS_VERIFY_KEY", text));
            let c = redis_config(&vars).unwrap();
            let SourceConfig::Redis(redis) = &c.source else { panic!() };
            assert_eq!(redis.sync.verify_keys, [signing::dev_verify_key(), new], "{text}");
        }

        let mut bad = base.to_vec();
        bad.push(("NEXUS_VERIFY_KEY", "abc"));
        assert!(redis_config(&bad).unwrap_err().to_string().contains("NEXUS_VERIFY_KEY"));
        let mut bad = base.to_vec();
        bad.push(("NEXUS_VERIFY_KEY_FILE", "/nonexistent/key"));
        assert!(matches!(redis_config(&bad), Err(ConfigError::Env(EnvError::KeyFile { .. }))));
        // A file wins over REDIS_URL.
        let args = Args { aliases_file: Some("a.yaml".into()) };
        let c = Config::from_parts(args, |k| (k == "EDGE_AUTH").then(|| "off".into())).unwrap();
        assert!(matches!(c.source, SourceConfig::File(_)));
    }

    #[test]
    fn the_report_url_is_read_checked_and_hidden() {
        let report = |url: &str| {
            let vars = [
                ("EDGE_AUTH", "off"),
                ("REDIS_URL", "redis://replica:6379"),
                ("NEXUS_INSECURE_DEV_KEYS", "1"),
                ("NEXUS_REDIS_PREFIX", "p1"),
                ("EDGE_REPORT_REDIS_URL", url),
            ];
            redis_config(&vars).map(|c| match c.source {
                SourceConfig::Redis(r) => r.report,
                other => panic!("not redis mode: {other:?}"),
            })
        };
        let primary = report("redis://:pw-s3cret@primary:6379").unwrap().unwrap();
        assert_eq!(primary.url.expose(), "redis://:pw-s3cret@primary:6379");
        assert_eq!(primary.keys.edges(), "{p1}:edges", "the same prefix as REDIS_URL");
        assert!(!format!("{primary:?}").contains("pw-s3cret"));
        assert!(report("").unwrap().is_none());
        assert!(report("redis://replica:6379").unwrap().is_none(), "same URL: one connection");
        let e = report("http://:pw-s3cret@primary").unwrap_err().to_string();
        assert!(e.starts_with("EDGE_REPORT_REDIS_URL") && !e.contains("pw-s3cret"), "{e}");
    }

    #[test]
    fn redis_ca_file_is_checked_at_start() {
        let refused = |url: &str, ca: &str| {
            let vars = [("EDGE_AUTH", "off"), ("REDIS_URL", url), ("REDIS_CA_FILE", ca)];
            redis_config(&vars).unwrap_err().to_string()
        };
        // A CA file with a plaintext URL would silently not be used.
        let e = refused("redis://host:6379", "/etc/hostname");
        assert!(e.starts_with("REDIS_CA_FILE") && e.contains("rediss://"), "{e}");
        let e = refused("rediss://host:6380", "/nonexistent/ca.pem");
        assert!(e.starts_with("REDIS_CA_FILE") && e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
