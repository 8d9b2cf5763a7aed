//! Propagation settings, read with the rest of the configuration:
//! `REDIS_URL`, `REDIS_CA_FILE`, `NEXUS_REDIS_PREFIX`, `NEXUS_SIGNING_KEY` or
//! `NEXUS_SIGNING_KEY_FILE`, `NEXUS_PUBLISH`. Owned by the configuration (a
//! leaf module) rather than the publisher, so the publisher, the store and
//! the configuration do not import one another in a circle.

use std::path::PathBuf;

use nexus_protocol::Secret;
use nexus_protocol::signing::{self, SigningKey};

use super::error::{ConfigError, invalid};

/// Longest accepted `NEXUS_REDIS_PREFIX`.
pub(crate) const MAX_PREFIX_LEN: usize = 64;

/// Where and how the control plane publishes.
#[derive(Debug, Clone)]
pub struct PropagationConfig {
    /// The URL may carry a password.
    pub(crate) redis_url: Option<Secret>,
    /// `REDIS_CA_FILE`: the CA a `rediss://` server must chain to (the
    /// system trust store without it).
    pub(crate) redis_ca_file: Option<PathBuf>,
    pub(crate) prefix: String,
    /// ed25519-dalek's `Debug` shows only the public half.
    pub signing_key: SigningKey,
    /// True when no key was configured and the public dev key is in use.
    pub(crate) dev_key: bool,
    /// `NEXUS_PUBLISH`: default true when `REDIS_URL` is set.
    pub(crate) publish: bool,
    /// `OUTBOX_RETENTION_DAYS` (default 30): outbox rows are kept at least
    /// this long, for alias history and `?as_of=` (older: 410).
    pub(crate) outbox_retention_days: u32,
}

impl PropagationConfig {
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let redis_url = get("REDIS_URL").filter(|s| !s.trim().is_empty());
        if let Some(url) = &redis_url {
            fred::prelude::Config::from_url(url).map_err(|e| invalid("REDIS_URL", e))?;
        }
        let redis_ca_file =
            get("REDIS_CA_FILE").filter(|p| !p.trim().is_empty()).map(PathBuf::from);
        if let Some(url) = &redis_url {
            use nexus_runtime::bus::redis::{RedisTlsError, tls_config};
            tls_config(url, redis_ca_file.as_deref()).map_err(|e| match e {
                RedisTlsError::Roots(why) => invalid("REDIS_CA_FILE", why),
                other => invalid("REDIS_CA_FILE", other),
            })?;
        } else if redis_ca_file.is_some() {
            return Err(invalid("REDIS_CA_FILE", "is set but REDIS_URL is not"));
        }
        let prefix = get("NEXUS_REDIS_PREFIX").unwrap_or_else(|| "nexus".into());
        check_prefix(&prefix)?;
        let (signing_key, dev_key) = match (get("NEXUS_SIGNING_KEY"), get("NEXUS_SIGNING_KEY_FILE"))
        {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "NEXUS_SIGNING_KEY",
                    "set either NEXUS_SIGNING_KEY or NEXUS_SIGNING_KEY_FILE, not both",
                ));
            }
            (Some(hex), None) => (
                signing::parse_signing_key(&hex).map_err(|e| invalid("NEXUS_SIGNING_KEY", e))?,
                false,
            ),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| invalid("NEXUS_SIGNING_KEY_FILE", format!("{path}: {e}")))?;
                let key = signing::parse_signing_key(&text)
                    .map_err(|e| invalid("NEXUS_SIGNING_KEY_FILE", format!("{path}: {e}")))?;
                (key, false)
            }
            // Unused unless this instance publishes (checked below).
            (None, None) => (signing::dev_signing_key(), true),
        };
        let publish = match get("NEXUS_PUBLISH").map(|v| v.trim().to_ascii_lowercase()) {
            None => redis_url.is_some(),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
            Some(v) => return Err(invalid("NEXUS_PUBLISH", format!("{v:?} is not a boolean"))),
        };
        if publish && redis_url.is_none() {
            return Err(invalid("NEXUS_PUBLISH", "publishing needs REDIS_URL"));
        }
        // Closed by default: a publisher signing with the public
        // development key lets whoever can write Redis sign any state.
        let insecure = nexus_runtime::env::insecure_dev_keys(get)
            .map_err(|e| invalid(nexus_runtime::env::INSECURE_DEV_KEYS, e))?;
        if publish && dev_key && !insecure {
            return Err(invalid(
                "NEXUS_SIGNING_KEY",
                "not set: a control plane that publishes needs the state signing key \
                 (NEXUS_SIGNING_KEY, 64 hex chars, or NEXUS_SIGNING_KEY_FILE); the edges verify \
                 with its public half (NEXUS_VERIFY_KEY). NEXUS_INSECURE_DEV_KEYS=1 signs with \
                 the public development key, for tests only",
            ));
        }
        let outbox_retention_days = match get("OUTBOX_RETENTION_DAYS") {
            None => 30,
            Some(v) => v.trim().parse().map_err(|e| invalid("OUTBOX_RETENTION_DAYS", e))?,
        };
        Ok(Self {
            redis_url: redis_url.map(Secret::new),
            redis_ca_file,
            prefix,
            signing_key,
            dev_key,
            publish,
            outbox_retention_days,
        })
    }
}

/// Prefixes end up in every key name: keep them short and plain.
fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        return Err(invalid("NEXUS_REDIS_PREFIX", format!("must be 1 to {MAX_PREFIX_LEN} bytes")));
    }
    if !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(invalid("NEXUS_REDIS_PREFIX", "allowed are A-Z, a-z, 0-9, '-', '_', '.', ':'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<PropagationConfig, ConfigError> {
        let m: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        PropagationConfig::from_lookup(&|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_publish_only_with_redis_and_never_with_the_dev_key() {
        let off = from(&[]).unwrap();
        assert!(!off.publish && off.dev_key && off.prefix == "nexus");
        // Closed by default: publishing without the signing key is refused.
        let e = from(&[("REDIS_URL", "redis://:hunter2@127.0.0.1:6379")]).unwrap_err();
        assert!(e.to_string().contains("NEXUS_SIGNING_KEY"), "{e}");
        assert!(!e.to_string().contains("hunter2"));
        let on = from(&[
            ("REDIS_URL", "redis://:hunter2@127.0.0.1:6379"),
            ("NEXUS_INSECURE_DEV_KEYS", "1"),
        ])
        .unwrap();
        assert!(on.publish && on.dev_key);
        assert!(!format!("{on:?}").contains("hunter2"));
        let muted = from(&[("REDIS_URL", "redis://127.0.0.1"), ("NEXUS_PUBLISH", "false")]);
        assert!(!muted.unwrap().publish);
    }

    #[test]
    fn keys_come_from_hex_or_a_file_and_never_print() {
        let hex = "ab".repeat(32);
        let c = from(&[("NEXUS_SIGNING_KEY", &hex)]).unwrap();
        assert!(!c.dev_key);
        assert_eq!(c.signing_key.to_bytes(), [0xab; 32]);
        assert!(!format!("{c:?}").contains(&hex));
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "{}", "cd".repeat(32)).unwrap();
        let path = file.path().to_str().unwrap();
        let c = from(&[("NEXUS_SIGNING_KEY_FILE", path)]).unwrap();
        assert_eq!(c.signing_key.to_bytes(), [0xcd; 32]);
        // PEM, as the token keys are written.
        let key = nexus_protocol::signing::SigningKey::from_bytes(&[0xef; 32]);
        let pem = nexus_protocol::jwk::signing_key_pem(&key);
        let c = from(&[("NEXUS_SIGNING_KEY", &pem)]).unwrap();
        assert_eq!(c.signing_key.to_bytes(), [0xef; 32]);
        assert!(!format!("{c:?}").contains(pem.lines().nth(1).unwrap()));
    }

    #[test]
    fn refusals_name_the_variable() {
        let bad = |pairs: &[(&str, &str)], name: &str| {
            let e = from(pairs).unwrap_err().to_string();
            assert!(e.starts_with(name), "{e}");
        };
        bad(&[("NEXUS_SIGNING_KEY", "abc")], "NEXUS_SIGNING_KEY");
        bad(&[("NEXUS_SIGNING_KEY_FILE", "/nonexistent/key")], "NEXUS_SIGNING_KEY_FILE");
        bad(&[("NEXUS_PUBLISH", "true")], "NEXUS_PUBLISH");
        bad(&[("NEXUS_PUBLISH", "maybe"), ("REDIS_URL", "redis://x")], "NEXUS_PUBLISH");
        bad(&[("NEXUS_REDIS_PREFIX", "a b")], "NEXUS_REDIS_PREFIX");
        bad(&[("NEXUS_REDIS_PREFIX", "")], "NEXUS_REDIS_PREFIX");
        bad(&[("REDIS_URL", "not a url")], "REDIS_URL");
        bad(&[("REDIS_CA_FILE", "/etc/hostname")], "REDIS_CA_FILE");
        bad(&[("REDIS_URL", "redis://x"), ("REDIS_CA_FILE", "/etc/hostname")], "REDIS_CA_FILE");
        bad(&[("REDIS_URL", "rediss://x"), ("REDIS_CA_FILE", "/nonexistent/ca")], "REDIS_CA_FILE");
    }
}
