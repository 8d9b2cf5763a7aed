//! `EDGE_RATE_LIMIT`, `EDGE_RATE_LIMIT_BURST`: the edge's optional
//! per-credential limit (enforced in [`crate::auth`]); and
//! `EDGE_AUTH_FAILURES`, `EDGE_AUTH_FAILURES_BURST`, each host's budget of
//! refused credentials (see [`failures_from_env`]). Off by default: an
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
    let limit = read(env, RATE, "EDGE_RATE_LIMIT_BURST", "off")?;
    if limit.is_some() && !auth_required {
        return Err(EnvError::Invalid {
            name: RATE,
            value: env(RATE).unwrap_or_default(),
            reason: "EDGE_AUTH=off: requests carry no credential to count them by".into(),
        }
        .into());
    }
    Ok(limit)
}

/// `EDGE_AUTH_FAILURES`, `EDGE_AUTH_FAILURES_BURST`: the refused
/// credentials each client host may send before it is answered 429 without
/// a check ([`crate::refusals::FailureBudget`]). On by default: a client
/// with a good credential fails rarely, and once its credential is cached
/// it is never asked about the budget again. With `EDGE_AUTH=off` nothing
/// is refused, so it is moot rather than an error.
pub fn failures_from_env(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<RateLimit>, ConfigError> {
    read(env, "EDGE_AUTH_FAILURES", "EDGE_AUTH_FAILURES_BURST", DEFAULT_FAILURES)
}

/// The default failure budget: 20 refusals a second per host, 40 at once.
pub const DEFAULT_FAILURES: &str = "20/s";

/// A rate (`off`, `N/s`, `N/m`, `N/h`; `default` when unset) and its burst
/// (default twice N, the control plane's default too).
fn read(
    env: &impl Fn(&str) -> Option<String>,
    rate_name: &'static str,
    burst_name: &'static str,
    default: &str,
) -> Result<Option<RateLimit>, ConfigError> {
    let text = env(rate_name).filter(|t| !t.trim().is_empty()).unwrap_or_else(|| default.into());
    let invalid = |name, value: String, reason: String| -> ConfigError {
        EnvError::Invalid { name, value, reason }.into()
    };
    let rate = rate::parse(&text)
        .map_err(|_| invalid(rate_name, text.clone(), "want off, or N/s, N/m or N/h".into()))?;
    let burst = match env(burst_name).filter(|b| !b.trim().is_empty()) {
        Some(b) => Some(b.trim().parse::<NonZeroU32>().map_err(|_| {
            invalid(burst_name, b.clone(), "want a whole number at least 1".into())
        })?),
        None => None,
    };
    let Some(rate) = rate else {
        if let Some(b) = burst {
            return Err(invalid(burst_name, b.to_string(), format!("{rate_name} is off")));
        }
        return Ok(None);
    };
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

    #[test]
    fn the_failure_budget_is_on_by_default() {
        let read = |vars: &[(&str, &str)]| {
            let env = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned());
            failures_from_env(&env)
        };
        let d = read(&[]).unwrap().unwrap();
        assert_eq!((d.rate.count.get(), d.burst.get()), (20, 40));
        assert_eq!(read(&[("EDGE_AUTH_FAILURES", "off")]).unwrap(), None);
        let l = read(&[("EDGE_AUTH_FAILURES", "5/m"), ("EDGE_AUTH_FAILURES_BURST", "3")]);
        assert_eq!(l.unwrap().map(|l| l.burst.get()), Some(3));
        assert!(read(&[("EDGE_AUTH_FAILURES", "lots")]).is_err());
    }
}
