//! `API_RATE_LIMIT`, `API_RATE_LIMIT_BURST`, `API_RATE_LIMIT_KEYS`: the
//! admin API's per-credential limit (enforced by `api::ratelimit`), read
//! with the rest of the configuration so a bad value stops the start.

use std::num::NonZeroU32;
use std::time::Duration;

const DEFAULT_RATE: &str = "100/s";
const DEFAULT_KEYS: usize = 100_000;

/// Why a rate-limit setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("API_RATE_LIMIT={0:?}: want off, or N/s, N/m or N/h with N at least 1")]
    Rate(String),
    #[error("{0}={1:?}: want a whole number at least 1")]
    Number(&'static str, String),
}

/// The configured limit: `None` rate is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per `per`, sustained; `None`: no limit.
    pub rate: Option<(NonZeroU32, Duration)>,
    /// Requests a fresh key may make at once.
    pub burst: NonZeroU32,
    /// Largest number of buckets per map (principals, addresses).
    pub max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::from_lookup(|_| None).unwrap_or(RateLimitConfig {
            rate: None,
            burst: NonZeroU32::MIN,
            max_keys: DEFAULT_KEYS,
        })
    }
}

impl RateLimitConfig {
    /// From any lookup of the variables (`Config::from_lookup`, tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, RateLimitError> {
        let text = get("API_RATE_LIMIT").unwrap_or_else(|| DEFAULT_RATE.to_owned());
        let rate = parse_rate(text.trim())?;
        let number = |name: &'static str| -> Result<Option<u64>, RateLimitError> {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or(RateLimitError::Number(name, v))
                })
                .transpose()
        };
        let twice = rate.map_or(1, |(n, _)| u64::from(n.get()) * 2);
        let burst = number("API_RATE_LIMIT_BURST")?.unwrap_or(twice);
        let burst =
            NonZeroU32::new(u32::try_from(burst).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let max_keys = number("API_RATE_LIMIT_KEYS")?
            .map_or(DEFAULT_KEYS, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Ok(RateLimitConfig { rate, burst, max_keys })
    }
}

fn parse_rate(text: &str) -> Result<Option<(NonZeroU32, Duration)>, RateLimitError> {
    let rate =
        nexus_protocol::rate::parse(text).map_err(|_| RateLimitError::Rate(text.to_owned()))?;
    Ok(rate.map(|r| (r.count, r.per)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<RateLimitConfig, RateLimitError> {
        RateLimitConfig::from_lookup(|k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn settings_parse_with_generous_defaults() {
        let d = cfg(&[]).unwrap();
        assert_eq!(d.rate, Some((NonZeroU32::new(100).unwrap(), Duration::from_secs(1))));
        assert_eq!((d.burst.get(), d.max_keys), (200, 100_000));
        assert_eq!(RateLimitConfig::default(), d);
        assert_eq!(cfg(&[("API_RATE_LIMIT", "off")]).unwrap().rate, None);
        let m = cfg(&[("API_RATE_LIMIT", "600/m"), ("API_RATE_LIMIT_BURST", "5")]).unwrap();
        assert_eq!(m.rate, Some((NonZeroU32::new(600).unwrap(), Duration::from_secs(60))));
        assert_eq!(m.burst.get(), 5);
        for bad in ["0/s", "10", "10/d", "x/s", "-1/s", ""] {
            assert!(cfg(&[("API_RATE_LIMIT", bad)]).is_err(), "{bad:?}");
        }
        assert!(cfg(&[("API_RATE_LIMIT_BURST", "0")]).is_err());
        assert!(cfg(&[("API_RATE_LIMIT_KEYS", "many")]).is_err());
    }
}
