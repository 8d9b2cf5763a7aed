//! `EDGE_RATE_LIMIT`, `EDGE_RATE_LIMIT_BURST`: the edge's optional
//! per-credential limit (enforced in [`crate::auth`]). Off by default: an
//! edge serves whoever holds a valid credential as fast as it can, and a
//! fleet's aggregate limit belongs in front of it. An operator who wants
//! one noisy client to hit a wall on every edge sets a rate here; each edge
//! counts the requests it answers itself.

use std::num::NonZeroU32;

use governor::Quota;
use nexus_protocol::rate::{self, Rate};

use super::env::{ConfigError, EnvError};

/// A limit on each credential's requests to this edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained: `count` per `per`.
    pub rate: Rate,
    /// Requests a credential may make at once.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// governor's quota; `None` only for a rate too fast to express (more
    /// than one request per nanosecond), which then limits nothing.
    pub fn quota(self) -> Option<Quota> {
        Quota::with_period(self.rate.period()).map(|q| q.allow_burst(self.burst))
    }
}

/// Reads the limit; `auth_required` is false with `EDGE_AUTH=off`, where a
/// limit per credential would silently limit nothing, so it is refused.
pub fn from_env(
    env: &impl Fn(&str) -> Option<String>,
    auth_required: bool,
) -> Result<Option<RateLimit>, ConfigError> {
    const RATE: &str = "EDGE_RATE_LIMIT";
    const BURST: &str = "EDGE_RATE_LIMIT_BURST";
    let text = env(RATE).filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "off".into());
    let invalid = |name, value: String, reason: String| -> ConfigError {
        EnvError::Invalid { name, value, reason }.into()
    };
    let rate = rate::parse(&text)
        .map_err(|_| invalid(RATE, text.clone(), "want off, or N/s, N/m or N/h".into()))?;
    let burst = match env(BURST).filter(|b| !b.trim().is_empty()) {
        Some(b) => Some(
            b.trim()
                .parse::<NonZeroU32>()
                .map_err(|_| invalid(BURST, b.clone(), "want a whole number at least 1".into()))?,
        ),
        None => None,
    };
    let Some(rate) = rate else {
        if let Some(b) = burst {
            return Err(invalid(BURST, b.to_string(), format!("{RATE} is off")));
        }
        return Ok(None);
    };
    if !auth_required {
        return Err(invalid(
            RATE,
            text,
            "EDGE_AUTH=off: requests carry no credential to count them by".into(),
        ));
    }
    // The control plane's default too: twice the sustained count.
    let burst = burst.unwrap_or_else(|| {
        rate.count.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN))
    });
    Ok(Some(RateLimit { rate, burst }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)], auth: bool) -> Result<Option<RateLimit>, ConfigError> {
        let env = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned());
        from_env(&env, auth)
    }

    #[test]
    fn off_by_default_and_clear_errors() {
        assert_eq!(read(&[], true).unwrap(), None);
        assert_eq!(read(&[("EDGE_RATE_LIMIT", "off")], false).unwrap(), None);
        let l = read(&[("EDGE_RATE_LIMIT", "50/s")], true).unwrap().unwrap();
        assert_eq!((l.rate.count.get(), l.burst.get()), (50, 100));
        let l = read(&[("EDGE_RATE_LIMIT", "600/m"), ("EDGE_RATE_LIMIT_BURST", "5")], true)
            .unwrap()
            .unwrap();
        assert_eq!((l.rate.period().as_millis(), l.burst.get()), (100, 5));
        assert!(l.quota().is_some());
        let message = |vars, auth| read(vars, auth).unwrap_err().to_string();
        assert!(message(&[("EDGE_RATE_LIMIT", "fast")], true).starts_with("EDGE_RATE_LIMIT="));
        assert!(message(&[("EDGE_RATE_LIMIT", "5/s")], false).contains("EDGE_AUTH=off"));
        assert!(
            message(&[("EDGE_RATE_LIMIT", "5/s"), ("EDGE_RATE_LIMIT_BURST", "0")], true)
                .starts_with("EDGE_RATE_LIMIT_BURST=")
        );
        assert!(message(&[("EDGE_RATE_LIMIT_BURST", "9")], true).contains("is off"));
    }
}
