//! Who may resolve: bearer JWTs checked with the shared policy
//! (`nexus_protocol::jwt`) and against the revocations the signed stream
//! delivered, or `nxk_` API keys looked up by digest in the grants it
//! delivered ([`crate::credentials`]). Verified credentials are cached, so
//! the request path pays one map read instead of a signature check.
//!
//! Every role may resolve, within its contexts. The cache holds successes
//! only (a failure is re-checked every time, so a credential can never be
//! stuck refused), checks `exp` (an API key's `expires_at`) on every hit,
//! trusts an entry only while the credential set is the one it was checked
//! against (a revocation takes effect on the next request), and is cleared
//! when it fills up or the set changes: a flood of distinct tokens costs
//! signature checks, never memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::RandomState;
use nexus_protocol::credentials::{API_KEY_PREFIX, Revoked, api_key_digest};
use nexus_protocol::jwt::LEEWAY_SECS;
use nexus_protocol::{ContextScope, TokenError, TokenVerifier};
use papaya::HashMap;

use crate::credentials::CredentialStore;

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
}

#[derive(Debug)]
struct Verified {
    scope: ContextScope,
    /// Good while `now < until`: `exp` plus the leeway, or the key's expiry.
    until: i64,
    /// The credential generation it was checked against.
    generation: u64,
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
        }
    }

    /// Checks against `credentials`: the set the state's stream delivers.
    pub fn with_credentials(self, credentials: Arc<CredentialStore>) -> Self {
        let cleared = AtomicU64::new(credentials.generation());
        Self { credentials, cleared, ..self }
    }

    /// Checks the `Authorization` header value and, when a context is
    /// given, whether the token's scope allows it. `Ok(false)` means a valid
    /// token outside its contexts (403).
    pub fn allows(
        &self,
        header: Option<&[u8]>,
        context: Option<&str>,
        now_s: i64,
    ) -> Result<bool, AuthError> {
        let token = bearer(header.ok_or(AuthError::Missing)?)?;
        let generation = self.credentials.generation();
        let cache = self.cache.pin();
        if let Some(v) = cache.get(token)
            && v.generation == generation
            && now_s < v.until
        {
            return Ok(context.is_none_or(|c| v.scope.allows(c)));
        }
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
        cache.insert(token.into(), Verified { scope, until, generation });
        Ok(allowed)
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
        })
    }

    /// Tokens currently cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
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
    use nexus_protocol::{Context, Role, TokenSigner};

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
        assert!(a.allows(Some(t.as_bytes()), Some("frontend"), now).unwrap());
        assert_eq!(a.cached(), 1);
        // Served from the cache, still scoped.
        assert!(!a.allows(Some(t.as_bytes()), Some("backend"), now).unwrap());
        // A cached token is re-checked once its `exp` (plus leeway) is past.
        assert!(a.allows(Some(t.as_bytes()), Some("frontend"), now + 89).is_ok());
        assert!(a.allows(Some(t.as_bytes()), Some("frontend"), now + 90).is_ok());
        assert_eq!(a.cached(), 1);
    }

    #[test]
    fn a_change_of_the_credential_set_reaches_cached_tokens_and_keys() {
        use base64::Engine;
        use nexus_protocol::credentials::{KeyGrant, RevokedToken};
        use nexus_protocol::{CredentialChange, Credentials};
        let store = Arc::new(CredentialStore::new());
        let a = Authenticator::new(TokenVerifier::hs256(b"k")).with_credentials(store.clone());
        let now = chrono::Utc::now().timestamp();
        let token =
            TokenSigner::hs256(b"k").mint("svc", Role::Resolver, ContextScope::All, now, 60);
        let jti = TokenVerifier::hs256(b"k").verify(&token).unwrap().jti.unwrap();
        let h = format!("Bearer {token}");
        assert!(a.allows(Some(h.as_bytes()), None, now).unwrap());
        assert!(a.allows(Some(h.as_bytes()), None, now).unwrap(), "cached");
        store.apply(&[CredentialChange::RevokeToken(RevokedToken { jti, until: now + 90 })], now);
        assert!(matches!(
            a.allows(Some(h.as_bytes()), None, now),
            Err(AuthError::Revoked(Revoked::Token))
        ));

        let key =
            format!("nxk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([3u8; 32]));
        let k = format!("Bearer {key}");
        assert!(matches!(a.allows(Some(k.as_bytes()), None, now), Err(AuthError::BadKey)));
        let grant = KeyGrant {
            digest: api_key_digest(&key).unwrap(),
            name: "api_key:1:svc".into(),
            role: Role::Resolver,
            contexts: ContextScope::Only(vec![Context::parse("frontend").unwrap()]),
            expires_at: Some(now + 100),
        };
        store.apply(&[CredentialChange::GrantKey(grant.clone())], now);
        assert!(a.allows(Some(k.as_bytes()), Some("frontend"), now).unwrap());
        assert!(!a.allows(Some(k.as_bytes()), Some("backend"), now).unwrap(), "cached, scoped");
        assert!(matches!(a.allows(Some(k.as_bytes()), None, now + 100), Err(AuthError::BadKey)));
        store.apply(&[CredentialChange::RevokeKey(grant.digest)], now);
        assert!(matches!(a.allows(Some(k.as_bytes()), None, now), Err(AuthError::BadKey)));
        // A snapshot replaces the whole set: the key is back, the jti not.
        let set = Credentials { api_keys: vec![grant], ..Credentials::default() };
        store.install(&set, now);
        assert!(a.allows(Some(k.as_bytes()), Some("frontend"), now).unwrap());
        assert!(a.allows(Some(h.as_bytes()), None, now).unwrap());
    }

    #[test]
    fn refusals() {
        let (a, _) = auth();
        assert!(matches!(a.allows(None, None, NOW), Err(AuthError::Missing)));
        assert!(matches!(a.allows(Some(b"Basic abc"), None, NOW), Err(AuthError::NotBearer)));
        assert!(matches!(a.allows(Some(b"Bearer "), None, NOW), Err(AuthError::NotBearer)));
        let other = TokenSigner::hs256(b"other").mint("x", Role::Admin, ContextScope::All, NOW, 60);
        let h = format!("Bearer {other}");
        assert!(a.allows(Some(h.as_bytes()), None, NOW).is_err());
        assert_eq!(a.cached(), 0);
    }
}
