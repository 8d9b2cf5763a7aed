//! Rate limits on the admin API, per credential: a GCRA bucket (`governor`)
//! per principal, and per client address for requests that carry no valid
//! credential, so bad credentials cannot flood the API (or the API-key
//! lookups behind it) under fresh names. This file holds the buckets;
//! [`super::throttle`] charges them for each request.
//!
//! Memory is bounded: each map holds at most `max_keys` buckets. A map
//! that reaches it first drops the buckets that are full again (as good as
//! new, so dropping them changes no decision; at most once a second); if it
//! is still full, requests share one overflow bucket until it shrinks, so a
//! flood of addresses degrades to one shared limit instead of growing
//! memory. IPv6 clients are keyed by their /64, which one host usually
//! holds whole.
//!
//! Settings (read once, at start, by `config::rate_limit`): `API_RATE_LIMIT`
//! (`off`, or `N/s`, `N/m`, `N/h`; default `100/s`), `API_RATE_LIMIT_BURST`
//! (default twice N), `API_RATE_LIMIT_KEYS` (default 100000).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::rate_limit::RateLimitConfig;

/// The limit as governor's quota; `None` when the limit is off.
fn quota(config: &RateLimitConfig) -> Option<Quota> {
    let (n, per) = config.rate?;
    // One request back every per/n: n per `per`, sustained.
    Quota::with_period(per / n.get()).map(|q| q.allow_burst(config.burst))
}

/// What a bucket is keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key<T> {
    One(T),
    /// Shared by every new key while the map is full.
    Overflow,
}

/// One bounded map of buckets.
#[derive(Debug)]
struct Buckets<T: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<Key<T>>,
    max_keys: usize,
    /// When the map was last swept (ms since `born`), so a full map is swept
    /// at most once a second.
    swept_ms: AtomicU64,
    born: Instant,
}

impl<T: std::hash::Hash + Eq + Clone> Buckets<T> {
    fn new(quota: Quota, max_keys: usize) -> Self {
        Buckets {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            max_keys: max_keys.max(1),
            swept_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Takes one request from `key`'s bucket; `Err` is how long to wait.
    fn check(&self, key: T) -> Result<(), Duration> {
        let key = if self.limiter.len() < self.max_keys || self.sweep() {
            Key::One(key)
        } else {
            Key::Overflow
        };
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Drops buckets that are full again; whether there is room now.
    fn sweep(&self) -> bool {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.swept_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .swept_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.len() < self.max_keys
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// The limiter the API runs with.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    /// `None` when off.
    maps: Option<(Buckets<String>, Buckets<IpAddr>)>,
}

/// Which bucket refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Principal(Duration),
    Address(Duration),
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        let maps = quota(&config)
            .map(|q| (Buckets::new(q, config.max_keys), Buckets::new(q, config.max_keys)));
        RateLimiter { config, maps }
    }

    pub(crate) fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Takes one request from the principal's bucket.
    pub(crate) fn check_principal(&self, name: &str) -> Result<(), Refused> {
        match &self.maps {
            None => Ok(()),
            Some((p, _)) => p.check(name.to_owned()).map_err(Refused::Principal),
        }
    }

    /// Takes one request from the client address's bucket (`None`: the
    /// address is not known, and all such requests share one).
    pub(crate) fn check_address(&self, addr: Option<IpAddr>) -> Result<(), Refused> {
        match &self.maps {
            None => Ok(()),
            Some((_, a)) => a
                .check(addr.map_or(IpAddr::from([0, 0, 0, 0]), client_key))
                .map_err(Refused::Address),
        }
    }

    /// Buckets held (principals, addresses).
    #[cfg(test)]
    fn keys(&self) -> (usize, usize) {
        self.maps.as_ref().map_or((0, 0), |(p, a)| (p.len(), a.len()))
    }
}

/// The part of an address one client holds: IPv4 whole, IPv6 its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::rate_limit::RateLimitError;

    fn cfg(vars: &[(&str, &str)]) -> Result<RateLimitConfig, RateLimitError> {
        RateLimitConfig::from_lookup(|k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_says_how_long_to_wait() {
        let l = RateLimiter::new(
            cfg(&[("API_RATE_LIMIT", "1/h"), ("API_RATE_LIMIT_BURST", "2")]).unwrap(),
        );
        assert!(l.check_principal("alice").is_ok());
        assert!(l.check_principal("alice").is_ok());
        let Err(Refused::Principal(wait)) = l.check_principal("alice") else {
            panic!("the third request within the hour is refused");
        };
        assert!(wait > Duration::from_secs(3000) && wait <= Duration::from_secs(3600), "{wait:?}");
        // Another principal, and addresses, have buckets of their own.
        assert!(l.check_principal("bob").is_ok());
        assert!(l.check_address(Some([10, 0, 0, 1].into())).is_ok());
        let off = RateLimiter::new(cfg(&[("API_RATE_LIMIT", "off")]).unwrap());
        assert!((0..1000).all(|_| off.check_principal("alice").is_ok()));
    }

    #[test]
    fn the_maps_stay_bounded_and_overflow_into_one_shared_bucket() {
        let l = RateLimiter::new(
            cfg(&[
                ("API_RATE_LIMIT", "1/h"),
                ("API_RATE_LIMIT_BURST", "1"),
                ("API_RATE_LIMIT_KEYS", "3"),
            ])
            .unwrap(),
        );
        for i in 0..3u8 {
            assert!(l.check_address(Some([10, 0, 0, i].into())).is_ok());
        }
        // Full, and nothing to sweep (every bucket is spent): new addresses
        // share the overflow bucket, which allows one request, then refuses.
        assert!(l.check_address(Some([10, 0, 1, 0].into())).is_ok());
        assert!(l.check_address(Some([10, 0, 1, 1].into())).is_err());
        assert!(l.keys().1 <= 4, "{:?}", l.keys());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }
}
