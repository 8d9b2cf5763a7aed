//! Who may resolve: bearer JWTs checked with the shared policy
//! (`nexus_protocol::jwt`) and against the revocations the signed stream
//! delivered, or `nxk_` API keys looked up by digest in the grants it
//! delivered ([`crate::credentials`]). Verified credentials are cached, so
//! the request path pays one map read instead of a signature check.
//!
//! Every role may resolve, within its contexts. The cache holds successes,
//! checks `exp` (an API key's `expires_at`) on every hit, trusts an entry
//! only while the credential set is the one it was checked against (a
//! revocation takes effect on the next request), and is cleared when it
//! fills up or the set changes: a flood of distinct tokens costs signature
//! checks, never memory.
//!
//! It is read first, so a cached credential costs what it did before
//! refusals were remembered. On a miss, the caller's host must still have
//! failure budget (else 429 before any check), and a credential refused
//! moments ago under the same credential generation is refused again from
//! [`crate::refusals`] without a check; every refusal is charged to the
//! host. Successes are never charged.
//!
//! With `EDGE_RATE_LIMIT` set, each cached credential also carries a GCRA
//! bucket (`governor`), so the limit costs a clock read and one atomic
//! update on the entry the request reads anyway. Off (the default), the
//! entry holds no bucket and the request pays one branch. The bucket lives
//! and dies with the cache entry: a credential-set change or a full cache
//! starts every credential with a full bucket again (neither is a client's
//! doing), and each edge counts only the requests it answers.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota};
use nexus_protocol::credentials::{API_KEY_PREFIX, Revoked, api_key_digest};
use nexus_protocol::jwt::LEEWAY_SECS;
use nexus_protocol::{ContextScope, TokenError, TokenVerifier};
use papaya::HashMap;
use prometheus_client::metrics::counter::Counter;

use crate::config::rate_limit::RateLimit;
use crate::credentials::CredentialStore;
use crate::refusals::{FailureBudget, RefusalCache};

/// Most tokens kept verified at once.
pub const CACHE_CAPACITY: usize = 65_536;

/// Why a request carries no usable credentials (answered with 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("authorization header is not 'Bearer <token>'")]
    NotBearer,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Revoked(#[from] Revoked),
    #[error("unknown, revoked or expired API key")]
    BadKey,
    /// Refused moments ago, under the same credentials: that check's words.
    #[error("{0}")]
    Remembered(Arc<str>),
}

/// What a credential may do with this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// A valid credential outside its contexts (403).
    OutOfScope,
    /// Over `EDGE_RATE_LIMIT`, or the host's budget of refusals
    /// (`EDGE_AUTH_FAILURES`) is spent (429); the next request fits after
    /// this.
    Limited(Duration),
}

impl Access {
    pub fn is_allowed(self) -> bool {
        self == Access::Allowed
    }
}

#[derive(Debug)]
struct Verified {
    scope: ContextScope,
    /// Good while `now < until`: `exp` plus the leeway, or the key's expiry.
    until: i64,
    /// The credential generation it was checked against.
    generation: u64,
    /// This credential's bucket when a rate limit is set. Boxed: with the
    /// limit off (the default) an entry grows by one pointer, not by a
    /// limiter.
    bucket: Option<Box<DefaultDirectRateLimiter>>,
}

impl Verified {
    /// Takes one request from the bucket, if there is one.
    fn admit(&self, scope_allows: bool) -> Access {
        if let Some(bucket) = &self.bucket
            && let Err(not_until) = bucket.check()
        {
            return Access::Limited(not_until.wait_time_from(bucket.clock().now()));
        }
        if scope_allows { Access::Allowed } else { Access::OutOfScope }
    }
}

/// Verifies bearer credentials and remembers the good ones.
pub struct Authenticator {
    verifier: TokenVerifier,
    credentials: Arc<CredentialStore>,
    /// Keyed by the credential, which the client chooses: the hasher is
    /// seeded per process so nobody can aim tokens at one bucket.
    cache: HashMap<Box<str>, Verified, RandomState>,
    /// The generation the cache was last cleared for.
    cleared: AtomicU64,
    /// Each credential's quota (`EDGE_RATE_LIMIT`); `None`: no limit.
    quota: Option<Quota>,
    refused: RefusalCache,
    /// Each host's refusals (`EDGE_AUTH_FAILURES`); `None`: no budget.
    budget: Option<FailureBudget>,
    counts: RefusalCounters,
}

/// `nexus_edge_auth_refusals_total{answer}`: refusals answered from the
/// refusal cache, and requests answered 429 for a spent budget.
#[derive(Debug, Clone, Default)]
pub struct RefusalCounters {
    pub remembered: Counter,
    pub over_budget: Counter,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("cached", &self.cache.len()).finish()
    }
}

impl Authenticator {
    /// Tokens only, with no revocations and no API keys (file mode, tools).
    pub fn new(verifier: TokenVerifier) -> Self {
        Self {
            verifier,
            credentials: Arc::new(CredentialStore::new()),
            cache: HashMap::with_capacity_and_hasher(1024, RandomState::default()),
            cleared: AtomicU64::new(0),
            quota: None,
            refused: RefusalCache::default(),
            budget: None,
            counts: RefusalCounters::default(),
        }
    }

    /// Gives each client host `limit` refusals (see [`crate::refusals`]).
    pub fn with_failure_budget(self, limit: Option<RateLimit>) -> Self {
        Self { budget: limit.and_then(FailureBudget::new), ..self }
    }

    /// Counts remembered refusals and spent budgets in `counters`.
    pub fn with_counters(self, counts: RefusalCounters) -> Self {
        Self { counts, ..self }
    }

    /// Limits each credential to `limit` (see the module notes).
    pub fn with_rate_limit(self, limit: Option<RateLimit>) -> Self {
        Self { quota: limit.and_then(RateLimit::quota), ..self }
    }

    /// Checks against `credentials`: the set the state's stream delivers.
    pub fn with_credentials(self, credentials: Arc<CredentialStore>) -> Self {
        let cleared = AtomicU64::new(credentials.generation());
        Self { credentials, cleared, ..self }
    }

    /// Checks the `Authorization` header value, takes the request from the
    /// credential's rate limit, and, when a context is given, checks
    /// whether the credential's scope allows it. A limited request counts
    /// whatever it asked for, so a credential cannot flood the edge with
    /// requests it would be refused. `peer` is the client's address, the
    /// host a refusal is charged to (`None`: not known, nothing charged).
    pub fn allows(
        &self,
        header: Option<&[u8]>,
        context: Option<&str>,
        now_s: i64,
        peer: Option<IpAddr>,
    ) -> Result<Access, AuthError> {
        // No credential to check costs nothing: not charged.
        let token = bearer(header.ok_or(AuthError::Missing)?)?;
        let generation = self.credentials.generation();
        let cache = self.cache.pin();
        if let Some(v) = cache.get(token)
            && v.generation == generation
            && now_s < v.until
        {
            return Ok(v.admit(context.is_none_or(|c| v.scope.allows(c))));
        }
        // Not known good: only a host with budget left is checked at all.
        if let Some(wait) = self.spent(peer) {
            self.counts.over_budget.inc();
            return Ok(Access::Limited(wait));
        }
        let digest = self.refused.digest(token);
        if let Some(why) = self.refused.get(digest, generation, now_s) {
            self.counts.remembered.inc();
            return self.refuse(peer, AuthError::Remembered(why));
        }
        match self.check(token, context, now_s, generation, &cache) {
            Ok(access) => Ok(access),
            Err(e) => {
                self.refused.insert(digest, generation, now_s, &e.to_string());
                self.refuse(peer, e)
            }
        }
    }

    /// How long `peer` must wait, if its budget of refusals is spent.
    fn spent(&self, peer: Option<IpAddr>) -> Option<Duration> {
        self.budget.as_ref().zip(peer).and_then(|(b, p)| b.spent(p))
    }

    /// Charges a refusal to `peer`'s budget and returns it.
    fn refuse(&self, peer: Option<IpAddr>, e: AuthError) -> Result<Access, AuthError> {
        if let Some((b, p)) = self.budget.as_ref().zip(peer) {
            b.charge(p);
        }
        Err(e)
    }

    /// Checks a credential the cache does not hold, and caches it if good.
    fn check(
        &self,
        token: &str,
        context: Option<&str>,
        now_s: i64,
        generation: u64,
        cache: &papaya::HashMapRef<'_, Box<str>, Verified, RandomState, papaya::LocalGuard<'_>>,
    ) -> Result<Access, AuthError> {
        // Loaded after the generation was read: what is cached below is
        // stamped no newer than the index it was checked against.
        let index = self.credentials.load();
        let (scope, until) = if token.starts_with(API_KEY_PREFIX) {
            let digest = api_key_digest(token).ok_or(AuthError::BadKey)?;
            let grant = index.key(&digest, now_s).ok_or(AuthError::BadKey)?;
            (grant.contexts.clone(), grant.expires_at.unwrap_or(i64::MAX))
        } else {
            let claims = self.verifier.verify(token)?;
            if let Some(revoked) = index.refuses(&claims) {
                return Err(revoked.into());
            }
            (claims.contexts, claims.exp.saturating_add(LEEWAY_SECS as i64))
        };
        let allowed = context.is_none_or(|c| scope.allows(c));
        if cache.len() >= CACHE_CAPACITY || self.cleared.load(Ordering::Relaxed) != generation {
            // Full, or checked against an older set: start again.
            cache.clear();
            self.cleared.store(generation, Ordering::Relaxed);
        }
        let bucket = self.quota.map(|q| Box::new(DefaultDirectRateLimiter::direct(q)));
        let verified = Verified { scope, until, generation, bucket };
        let access = verified.admit(allowed);
        cache.insert(token.into(), verified);
        Ok(access)
    }

    /// What `/api/aliases/status` shows: the verification mode and the
    /// key ids, never a key.
    pub fn describe(&self) -> serde_json::Value {
        let keys: Vec<&str> = self.verifier.kids().collect();
        let (tokens, subjects, api_keys) = self.credentials.load().counts();
        serde_json::json!({
            "mode": self.verifier.mode(),
            "keys": keys,
            "revoked_tokens": tokens,
            "revoked_subjects": subjects,
            "api_keys": api_keys,
            "rate_limit": self.quota.map(|q| serde_json::json!({
                "period_ms": q.replenish_interval().as_secs_f64() * 1000.0,
                "burst": q.burst_size().get(),
            })),
            "refusals_remembered": self.refused.len(),
            "failure_budget_hosts": self.budget.as_ref().map(FailureBudget::hosts),
        })
    }

    /// Tokens currently cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Refusals currently remembered (at most
    /// [`crate::refusals::REFUSAL_CAPACITY`]).
    pub fn refusals_remembered(&self) -> usize {
        self.refused.len()
    }
}

/// The token of a `Bearer <token>` header value.
fn bearer(header: &[u8]) -> Result<&str, AuthError> {
    let rest = match header {
        [b'B' | b'b', b'e', b'a', b'r', b'e', b'r', b' ', rest @ ..] => rest,
        _ => return Err(AuthError::NotBearer),
    };
    let token = std::str::from_utf8(rest).map_err(|_| AuthError::NotBearer)?.trim();
    if token.is_empty() { Err(AuthError::NotBearer) } else { Ok(token) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_protocol::{Context, CredentialChange, Role, TokenSigner};

    const NOW: i64 = 1_800_000_000;

    fn auth() -> (Authenticator, TokenSigner) {
        (Authenticator::new(TokenVerifier::hs256(b"k")), TokenSigner::hs256(b"k"))
    }

    #[test]
    fn scope_and_cache() {
        let (a, s) = auth();
        let scope = ContextScope::Only(vec![Context::parse("frontend").unwrap()]);
        let now = chrono::Utc::now().timestamp();
        let t = format!("Bearer {}", s.mint("svc", Role::Viewer, scope, now, 60));
        assert!(a.allows(Some(t.as_bytes()), Some("frontend"), now, None).unwrap().is_allowed());
        assert_eq!(a.cached(), 1);
        // Served from the cache, still scoped.
        assert_eq!(
            a.allows(Some(t.as_bytes()), Some("backend"), now, None).unwrap(),
            Access::OutOfScope
        );
        // A cached token is re-checked once its `exp` (plus leeway) is past.
        assert!(a.allows(Some(t.as_bytes()), Some("frontend"), now + 89, None).is_ok());
        assert!(a.allows(Some(t.as_bytes()), Some("frontend"), now + 90, None).is_ok());
        assert_eq!(a.cached(), 1);
    }

    #[test]
    fn a_change_of_the_credential_set_reaches_cached_tokens_and_keys() {
        use base64::Engine;
        use nexus_protocol::Credentials;
        use nexus_protocol::credentials::{KeyGrant, RevokedToken};
        let store = Arc::new(CredentialStore::new());
        let a = Authenticator::new(TokenVerifier::hs256(b"k")).with_credentials(store.clone());
        let now = chrono::Utc::now().timestamp();
        let token =
            TokenSigner::hs256(b"k").mint("svc", Role::Resolver, ContextScope::All, now, 60);
        let jti = TokenVerifier::hs256(b"k").verify(&token).unwrap().jti.unwrap();
        let h = format!("Bearer {token}");
        assert!(a.allows(Some(h.as_bytes()), None, now, None).unwrap().is_allowed());
        assert!(a.allows(Some(h.as_bytes()), None, now, None).unwrap().is_allowed(), "cached");
        store.apply(&[CredentialChange::RevokeToken(RevokedToken { jti, until: now + 90 })], now);
        assert!(matches!(
            a.allows(Some(h.as_bytes()), None, now, None),
            Err(AuthError::Revoked(Revoked::Token))
        ));

        let key =
            format!("nxk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([3u8; 32]));
        let k = format!("Bearer {key}");
        assert!(matches!(a.allows(Some(k.as_bytes()), None, now, None), Err(AuthError::BadKey)));
        let grant = KeyGrant {
            digest: api_key_digest(&key).unwrap(),
            name: "api_key:1:svc".into(),
            role: Role::Resolver,
            contexts: ContextScope::Only(vec![Context::parse("frontend").unwrap()]),
            expires_at: Some(now + 100),
        };
        store.apply(&[CredentialChange::GrantKey(grant.clone())], now);
        assert!(a.allows(Some(k.as_bytes()), Some("frontend"), now, None).unwrap().is_allowed());
        assert_eq!(
            a.allows(Some(k.as_bytes()), Some("backend"), now, None).unwrap(),
            Access::OutOfScope,
            "cached, scoped"
        );
        assert!(matches!(
            a.allows(Some(k.as_bytes()), None, now + 100, None),
            Err(AuthError::BadKey)
        ));
        store.apply(&[CredentialChange::RevokeKey(grant.digest)], now);
        assert!(matches!(a.allows(Some(k.as_bytes()), None, now, None), Err(AuthError::BadKey)));
        // A snapshot replaces the whole set: the key is back, the jti not.
        let set = Credentials { api_keys: vec![grant], ..Credentials::default() };
        store.install(&set, now);
        assert!(a.allows(Some(k.as_bytes()), Some("frontend"), now, None).unwrap().is_allowed());
        assert!(a.allows(Some(h.as_bytes()), None, now, None).unwrap().is_allowed());
    }

    #[test]
    fn a_rate_limit_counts_each_credential_apart() {
        use std::num::NonZeroU32;
        let limit = |count, per, burst| RateLimit {
            rate: nexus_protocol::rate::Rate { count: NonZeroU32::new(count).unwrap(), per },
            burst: NonZeroU32::new(burst).unwrap(),
        };
        let hour = Duration::from_secs(3600);
        let a =
            Authenticator::new(TokenVerifier::hs256(b"k")).with_rate_limit(Some(limit(1, hour, 3)));
        let s = TokenSigner::hs256(b"k");
        let now = chrono::Utc::now().timestamp();
        let one = format!("Bearer {}", s.mint("one", Role::Resolver, ContextScope::All, now, 60));
        let two = format!("Bearer {}", s.mint("two", Role::Resolver, ContextScope::All, now, 60));
        for _ in 0..3 {
            assert!(
                a.allows(Some(one.as_bytes()), Some("frontend"), now, None).unwrap().is_allowed()
            );
        }
        // The burst is spent: the next allowance comes back in an hour.
        let Ok(Access::Limited(wait)) = a.allows(Some(one.as_bytes()), Some("frontend"), now, None)
        else {
            panic!("the fourth request within the burst of 3 must be limited");
        };
        assert!(wait > Duration::from_secs(3500) && wait <= hour, "{wait:?}");
        // Another credential has its own bucket.
        assert!(a.allows(Some(two.as_bytes()), Some("frontend"), now, None).unwrap().is_allowed());
        // Off, nothing is limited.
        let off = Authenticator::new(TokenVerifier::hs256(b"k")).with_rate_limit(None);
        for _ in 0..100 {
            assert!(off.allows(Some(one.as_bytes()), None, now, None).unwrap().is_allowed());
        }
        // The allowance comes back at the rate: 1000/s is one per ms.
        let fast = Authenticator::new(TokenVerifier::hs256(b"k")).with_rate_limit(Some(limit(
            1000,
            Duration::from_secs(1),
            1,
        )));
        assert!(fast.allows(Some(one.as_bytes()), None, now, None).unwrap().is_allowed());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut limited = false;
        loop {
            match fast.allows(Some(one.as_bytes()), None, now, None).unwrap() {
                Access::Limited(wait) => {
                    limited = true;
                    assert!(wait <= Duration::from_millis(1), "{wait:?}");
                }
                Access::Allowed if limited => break,
                _ => {}
            }
            assert!(std::time::Instant::now() < deadline, "the bucket never refilled");
        }
    }

    #[test]
    fn refusals_are_remembered_per_generation_and_charged_to_the_host() {
        use std::num::NonZeroU32;
        let store = Arc::new(CredentialStore::new());
        let budget = RateLimit {
            rate: nexus_protocol::rate::Rate {
                count: NonZeroU32::MIN,
                per: Duration::from_secs(3600),
            },
            burst: NonZeroU32::new(3).unwrap(),
        };
        let a = Authenticator::new(TokenVerifier::hs256(b"k"))
            .with_credentials(store.clone())
            .with_failure_budget(Some(budget));
        let (host, other) =
            (Some(IpAddr::from([192, 0, 2, 1])), Some(IpAddr::from([192, 0, 2, 2])));
        let now = chrono::Utc::now().timestamp();
        let good = format!(
            "Bearer {}",
            TokenSigner::hs256(b"k").mint("svc", Role::Resolver, ContextScope::All, now, 60)
        );
        // Cached before the host's budget is spent: it keeps resolving.
        assert!(a.allows(Some(good.as_bytes()), None, now, host).unwrap().is_allowed());
        // The real header and claims, a signature nobody made.
        let junk = format!("{}.{}", good.rsplit_once('.').unwrap().0, "A".repeat(43));
        let Err(first @ AuthError::Token(_)) = a.allows(Some(junk.as_bytes()), None, now, host)
        else {
            panic!("a junk signature is checked and refused");
        };
        let Err(AuthError::Remembered(why)) = a.allows(Some(junk.as_bytes()), None, now, host)
        else {
            panic!("the second refusal of the same token comes from memory");
        };
        assert_eq!(*why, first.to_string());
        // A change of the credential set: the refusal is checked again.
        store.apply(
            &[CredentialChange::RevokeSubject(nexus_protocol::credentials::RevokedSubject {
                sub: "nobody".into(),
                before: nexus_protocol::credentials::Cutoff::from_secs(now),
                until: now + 60,
            })],
            now,
        );
        // Successes are not charged: the good token is checked again and
        // cached again for free, the junk one is checked again.
        assert!(a.allows(Some(good.as_bytes()), None, now, host).unwrap().is_allowed());
        assert!(matches!(
            a.allows(Some(junk.as_bytes()), None, now, host),
            Err(AuthError::Token(_))
        ));
        // Three refusals spent the burst: a miss from the host is 429 unchecked.
        assert!(matches!(a.allows(Some(junk.as_bytes()), None, now, host), Ok(Access::Limited(_))));
        assert!(a.allows(Some(good.as_bytes()), None, now, host).unwrap().is_allowed(), "cached");
        // Another host still has its budget; the refusal is remembered
        // for it too (it is the credential's, not the host's).
        assert!(matches!(
            a.allows(Some(junk.as_bytes()), None, now, other),
            Err(AuthError::Remembered(_))
        ));
        assert_eq!(a.counts.remembered.get(), 2);
        assert_eq!(a.counts.over_budget.get(), 1);
    }

    #[test]
    fn refusals() {
        let (a, _) = auth();
        assert!(matches!(a.allows(None, None, NOW, None), Err(AuthError::Missing)));
        assert!(matches!(a.allows(Some(b"Basic abc"), None, NOW, None), Err(AuthError::NotBearer)));
        assert!(matches!(a.allows(Some(b"Bearer "), None, NOW, None), Err(AuthError::NotBearer)));
        let other = TokenSigner::hs256(b"other").mint("x", Role::Admin, ContextScope::All, NOW, 60);
        let h = format!("Bearer {other}");
        assert!(a.allows(Some(h.as_bytes()), None, NOW, None).is_err());
        assert_eq!(a.cached(), 0);
    }
}
