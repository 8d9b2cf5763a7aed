//! Minting and verifying NEXUS tokens (JWT). One policy for both planes:
//! the algorithm is pinned (HS256 with `SECRET_KEY` unless configured
//! otherwise), `exp` and `aud` are required, `nbf` is checked when present,
//! and clocks may disagree by [`LEEWAY_SECS`].

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::token::{AUDIENCE, Claims, ContextScope, Role};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// Longest token accepted, in bytes; anything longer is refused unparsed.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token is for another audience")]
    WrongAudience,
    #[error("token signature or algorithm is not accepted")]
    BadSignature,
    #[error("token is malformed: {0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
}

/// Verifies tokens with one pinned key and algorithm.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier").field("algorithms", &self.validation.algorithms).finish()
    }
}

impl TokenVerifier {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self { key: DecodingKey::from_secret(secret), validation }
    }

    /// Checks signature, algorithm, audience and times; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                    TokenError::BadSignature
                }
                _ => TokenError::Malformed(e),
            }),
        }
    }
}

/// Mints tokens (the control plane's `token` command, tests, tools).
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner { key: <redacted> }")
    }
}

impl TokenSigner {
    pub fn hs256(secret: &[u8]) -> Self {
        Self { key: EncodingKey::from_secret(secret) }
    }

    /// A token for `sub` valid from `now` (Unix seconds) for `ttl_secs`.
    pub fn mint(
        &self,
        sub: &str,
        role: Role,
        contexts: ContextScope,
        now: i64,
        ttl_secs: i64,
    ) -> String {
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            contexts,
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl_secs,
            nbf: None,
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it to make bad tokens on purpose).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .expect("HS256 signing of plain claims cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = TokenSigner::hs256(b"secret");
        let v = TokenVerifier::hs256(b"secret");
        let t = s.mint("svc", Role::Resolver, ContextScope::All, now(), 60);
        assert_eq!(v.verify(&t).unwrap().sub, "svc");

        let expired = s.mint("svc", Role::Resolver, ContextScope::All, now() - 1000, 60);
        assert!(matches!(v.verify(&expired), Err(TokenError::Expired)));

        let other = TokenVerifier::hs256(b"other");
        assert!(matches!(other.verify(&t), Err(TokenError::BadSignature)));

        let mut c = v.verify(&t).unwrap();
        c.aud = "someone-else".into();
        assert!(matches!(v.verify(&s.sign(&c)), Err(TokenError::WrongAudience)));

        c.aud = AUDIENCE.into();
        c.nbf = Some(now() + 1000);
        assert!(matches!(v.verify(&s.sign(&c)), Err(TokenError::NotYetValid)));

        // alg: none, with the same claims.
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", t.split('.').nth(1).unwrap());
        assert!(v.verify(&none).is_err());
        assert!(matches!(v.verify(&"a".repeat(5000)), Err(TokenError::TooLong)));
    }
}
