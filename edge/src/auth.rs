//! Who may resolve: bearer JWTs checked with the shared policy
//! (`nexus_protocol::jwt`), with verified tokens cached so the request path
//! pays one map read instead of an HMAC.
//!
//! Every role may resolve, within its contexts. The cache holds successes
//! only (a failure is re-checked every time, so a token can never be stuck
//! refused), checks `exp` on every hit, and is cleared when it fills up:
//! a flood of distinct tokens costs signature checks, never memory.

use std::fmt;

use foldhash::fast::RandomState;
use nexus_protocol::jwt::LEEWAY_SECS;
use nexus_protocol::{ContextScope, TokenError, TokenVerifier};
use papaya::HashMap;

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
}

#[derive(Debug)]
struct Verified {
    scope: ContextScope,
    exp: i64,
}

/// Verifies bearer tokens and remembers the good ones.
pub struct Authenticator {
    verifier: TokenVerifier,
    /// Keyed by the token, which the client chooses: the hasher is seeded
    /// per process so nobody can aim tokens at one bucket.
    cache: HashMap<Box<str>, Verified, RandomState>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("cached", &self.cache.len()).finish()
    }
}

impl Authenticator {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self { verifier, cache: HashMap::with_capacity_and_hasher(1024, RandomState::default()) }
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
        let cache = self.cache.pin();
        if let Some(v) = cache.get(token)
            && fresh(v.exp, now_s)
        {
            return Ok(context.is_none_or(|c| v.scope.allows(c)));
        }
        let claims = self.verifier.verify(token)?;
        let allowed = context.is_none_or(|c| claims.contexts.allows(c));
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(token.into(), Verified { scope: claims.contexts, exp: claims.exp });
        Ok(allowed)
    }

    /// Tokens currently cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

/// Whether a cached token with `exp` is still good at `now_s`, with the
/// same leeway as the verifier.
fn fresh(exp: i64, now_s: i64) -> bool {
    now_s < exp.saturating_add(LEEWAY_SECS as i64)
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
        assert!(fresh(now + 60, now + 89) && !fresh(now + 60, now + 90));
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
