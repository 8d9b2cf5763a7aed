//! What a refused credential costs: a [`RefusalCache`] of credentials
//! recently refused, so a junk token repeated costs one signature check per
//! [`REFUSAL_TTL_S`] instead of one per request, and a [`FailureBudget`]
//! per client address, so a flood of *distinct* junk tokens from one host
//! is answered 429 before any signature is checked.
//!
//! Both sit behind the success cache in [`crate::auth`]: a credential that
//! verified is answered from there first and never touches either, so the
//! hot path pays nothing for them, and a legitimate client whose token is
//! cached keeps resolving even while its address's budget is spent.
//!
//! The cache is keyed by a 128-bit keyed digest of the credential (seeded
//! per process: nobody can aim tokens at one slot or learn the seed), never
//! the credential itself. An entry is trusted only under the credential
//! generation it was refused under and for a few seconds: a key that
//! arrives with the next delta, or a token whose `nbf` passes, is checked
//! again at once or soon. Full, the cache is cleared (as the success cache
//! is): a flood of distinct tokens costs checks, never memory.
//!
//! The budget is a GCRA bucket per host (IPv4 by address, IPv6 by /64, as
//! the connection cap counts them), charged only for refusals. Its map is
//! bounded: when full it drops the hosts whose bucket is full again (as
//! good as new; at most once a second), and if it is still full the new
//! hosts share one overflow bucket, so a flood of addresses degrades to one
//! shared budget instead of growing memory.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;

use crate::config::rate_limit::RateLimit;
use crate::connections::host;

/// Most refusals remembered at once.
pub const REFUSAL_CAPACITY: usize = 16_384;
/// How long a refusal is trusted, in seconds (within one generation).
pub const REFUSAL_TTL_S: i64 = 5;
/// Most hosts with a budget of their own.
pub const BUDGET_HOSTS: usize = 65_536;

/// A keyed digest of a credential: what the cache is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialDigest(u128);

#[derive(Debug)]
struct Refused {
    generation: u64,
    /// Trusted while `now < until` (seconds).
    until: i64,
    /// The refusal's message, as the check that refused it wrote it.
    why: std::sync::Arc<str>,
}

/// Credentials refused recently, by digest.
pub struct RefusalCache {
    /// Two independently seeded hashers make the 128-bit digest.
    seeds: (RandomState, RandomState),
    map: papaya::HashMap<CredentialDigest, Refused, RandomState>,
}

impl std::fmt::Debug for RefusalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalCache").field("len", &self.map.len()).finish()
    }
}

impl Default for RefusalCache {
    fn default() -> Self {
        Self {
            seeds: (RandomState::default(), RandomState::default()),
            map: papaya::HashMap::with_capacity_and_hasher(1024, RandomState::default()),
        }
    }
}

impl RefusalCache {
    pub fn digest(&self, credential: &str) -> CredentialDigest {
        let (a, b) = (self.seeds.0.hash_one(credential), self.seeds.1.hash_one(credential));
        CredentialDigest((u128::from(a) << 64) | u128::from(b))
    }

    /// The message of a refusal of `digest` still trusted under
    /// `generation` at `now_s`.
    pub fn get(
        &self,
        digest: CredentialDigest,
        generation: u64,
        now_s: i64,
    ) -> Option<std::sync::Arc<str>> {
        let map = self.map.pin();
        let r = map.get(&digest)?;
        (r.generation == generation && now_s < r.until).then(|| r.why.clone())
    }

    /// Remembers that `digest` was refused under `generation`.
    pub fn insert(&self, digest: CredentialDigest, generation: u64, now_s: i64, why: &str) {
        let map = self.map.pin();
        if map.len() >= REFUSAL_CAPACITY {
            map.clear();
        }
        map.insert(digest, Refused { generation, until: now_s + REFUSAL_TTL_S, why: why.into() });
    }

    /// Refusals held (stale ones included, until cleared or replaced).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Refusals each client host may earn: `burst` at once, then one per
/// `period`.
#[derive(Debug)]
pub struct FailureBudget {
    /// Nanoseconds one refusal costs.
    period: u64,
    /// How far ahead of now a host's bucket may be booked before it is
    /// spent: `(burst - 1)` periods.
    tolerance: u64,
    born: Instant,
    hosts: Mutex<Hosts>,
}

#[derive(Debug, Default)]
struct Hosts {
    /// Host → when its bucket is full again (ns since `born`).
    full_at: HashMap<IpAddr, u64, RandomState>,
    /// Shared by new hosts while the map is full.
    overflow: u64,
    /// When the map was last swept (ns since `born`).
    swept: u64,
}

impl FailureBudget {
    /// `None` for a rate too fast to matter (over one per nanosecond).
    pub fn new(limit: RateLimit) -> Option<Self> {
        let period = u64::try_from(limit.rate.period().as_nanos()).ok().filter(|p| *p > 0)?;
        Some(Self {
            period,
            tolerance: period.saturating_mul(u64::from(limit.burst.get() - 1)),
            born: Instant::now(),
            hosts: Mutex::default(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// `Some(wait)` when `peer`'s budget is spent: refuse before checking.
    pub fn spent(&self, peer: IpAddr) -> Option<Duration> {
        let now = self.now();
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let full_at = match hosts.full_at.get(&host(peer)) {
            Some(t) => *t,
            // Not known: its own fresh bucket if it would get one.
            None if hosts.full_at.len() < BUDGET_HOSTS => 0,
            None => hosts.overflow,
        };
        let booked = full_at.saturating_sub(now);
        (booked > self.tolerance).then(|| Duration::from_nanos(booked - self.tolerance))
    }

    /// Charges one refusal to `peer`.
    pub fn charge(&self, peer: IpAddr) {
        let now = self.now();
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let key = host(peer);
        if !hosts.full_at.contains_key(&key) && hosts.full_at.len() >= BUDGET_HOSTS {
            hosts.sweep(now);
        }
        let Hosts { full_at, overflow, .. } = &mut *hosts;
        let slot = if full_at.len() < BUDGET_HOSTS || full_at.contains_key(&key) {
            full_at.entry(key).or_insert(0)
        } else {
            overflow
        };
        *slot = (*slot).max(now).saturating_add(self.period);
    }

    /// Hosts with a budget of their own.
    pub fn hosts(&self) -> usize {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).full_at.len()
    }
}

impl Hosts {
    /// Drops hosts whose bucket is full again, at most once a second.
    fn sweep(&mut self, now: u64) {
        const SECOND: u64 = 1_000_000_000;
        if now.saturating_sub(self.swept) >= SECOND || self.swept == 0 {
            self.swept = now.max(1);
            self.full_at.retain(|_, full_at| *full_at > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn budget(count: u32, per: Duration, burst: u32) -> FailureBudget {
        FailureBudget::new(RateLimit {
            rate: nexus_protocol::rate::Rate { count: NonZeroU32::new(count).unwrap(), per },
            burst: NonZeroU32::new(burst).unwrap(),
        })
        .unwrap()
    }

    #[test]
    fn a_refusal_is_trusted_within_its_generation_and_ttl_only() {
        let c = RefusalCache::default();
        let d = c.digest("junk");
        assert_ne!(d, c.digest("junk2"));
        c.insert(d, 7, 100, "token signature is not valid");
        assert_eq!(c.get(d, 7, 100).as_deref(), Some("token signature is not valid"));
        assert_eq!(c.get(d, 8, 100), None, "another generation checks again");
        assert_eq!(c.get(d, 7, 100 + REFUSAL_TTL_S), None, "past its TTL");
        for i in 0..2 * REFUSAL_CAPACITY {
            c.insert(c.digest(&i.to_string()), 7, 100, "x");
        }
        assert!(c.len() <= REFUSAL_CAPACITY, "{}", c.len());
    }

    #[test]
    fn a_host_is_refused_past_its_burst_and_others_are_not() {
        let b = budget(1, Duration::from_secs(3600), 3);
        for _ in 0..3 {
            assert_eq!(b.spent(A), None);
            b.charge(A);
        }
        let wait = b.spent(A).expect("three refusals spend a burst of 3");
        assert!(wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600));
        assert_eq!(b.spent(B), None);
        // The same /64 is one host.
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        b.charge(v6);
        b.charge(v6);
        b.charge(v6);
        assert!(b.spent("2001:db8::ffff".parse().unwrap()).is_some());
    }

    #[test]
    fn the_budget_refills_at_its_rate() {
        let b = budget(1000, Duration::from_secs(1), 1);
        b.charge(A);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(b.spent(A).is_some_and(|w| w <= Duration::from_millis(1)));
        while b.spent(A).is_some() {
            assert!(Instant::now() < deadline, "the budget never refilled");
        }
    }

    #[test]
    fn the_host_map_stays_bounded() {
        let b = budget(1, Duration::from_secs(3600), 1);
        for i in 0..=BUDGET_HOSTS as u32 + 10 {
            b.charge(IpAddr::V4(i.into()));
        }
        assert_eq!(b.hosts(), BUDGET_HOSTS);
        // New hosts share the overflow bucket, already spent.
        assert!(b.spent(IpAddr::V4(u32::MAX.into())).is_some());
    }
}
