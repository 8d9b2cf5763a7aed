//! Token keys of the control plane: what it signs with and what it
//! accepts. Read once from the environment (the variable names and the key
//! formats are both planes', `nexus_runtime::tokens`).
//!
//! | set                                    | signs   | accepts |
//! | -------------------------------------- | ------- | ------- |
//! | `NEXUS_TOKEN_SIGNING_KEY[_FILE]`        | EdDSA   | its own key and `NEXUS_TOKEN_VERIFY_KEYS` |
//! | `NEXUS_TOKEN_VERIFY_KEYS[_FILE]` only   | nothing | those keys (a verify-only instance) |
//! | `SECRET_KEY` and no key                 | HS256   | HS256 (development; warned) |
//! | a key and `SECRET_KEY`                  | EdDSA   | both (a migration from HS256; warned) |
//!
//! HS256 is chosen by giving no key at all: nothing else switches it on,
//! and the start-up log names what it costs. `TOKEN_MAX_TTL` (default a
//! day) caps every lifetime minted here; `TOKEN_EXPIRATION` must fit it.

use nexus_protocol::jwk::{self, PublicKey};
use nexus_protocol::{TokenSigner, TokenVerifier};
use nexus_runtime::env::EnvError;
use nexus_runtime::tokens as keys;

use super::error::{ConfigError, invalid};

/// Default `TOKEN_MAX_TTL`: a day (dev mode's printed tokens live that
/// long), the edges' default too.
pub(crate) const DEFAULT_MAX_TTL: i64 = keys::DEFAULT_MAX_TTL;

/// What this instance signs and verifies tokens with.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    signer: Option<TokenSigner>,
    verifier: Option<TokenVerifier>,
    /// `TOKEN_MAX_TTL`, seconds.
    pub(crate) max_ttl: i64,
}

fn env_error(e: EnvError) -> ConfigError {
    match e {
        EnvError::Invalid { name, reason, .. } => invalid(name, reason),
        EnvError::KeyFile { name, path, source } => {
            invalid(name, format!("cannot read {}: {source}", path.display()))
        }
    }
}

impl TokenConfig {
    /// From the environment; `secret` is the checked `SECRET_KEY`.
    pub(crate) fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        secret: Option<&[u8]>,
        default_ttl: i64,
    ) -> Result<Self, ConfigError> {
        let max_ttl = match get("TOKEN_MAX_TTL").map(|v| v.trim().parse::<i64>()) {
            None => DEFAULT_MAX_TTL,
            Some(Ok(v)) if v > 0 => v,
            Some(Ok(_)) => return Err(invalid("TOKEN_MAX_TTL", "must be positive")),
            Some(Err(e)) => return Err(invalid("TOKEN_MAX_TTL", e)),
        };
        if default_ttl > max_ttl {
            return Err(invalid(
                "TOKEN_EXPIRATION",
                format!("{default_ttl} s exceeds TOKEN_MAX_TTL ({max_ttl} s)"),
            ));
        }
        let signing = keys::text_of(get, keys::SIGNING_KEY, keys::SIGNING_KEY_FILE)
            .map_err(env_error)?
            .map(|(name, text)| jwk::parse_signing_key(&text).map_err(|e| invalid(name, e)))
            .transpose()?;
        let extra = keys::verify_keys(get).map_err(env_error)?.unwrap_or_default();
        let signer = match (&signing, secret) {
            (Some(key), _) => Some(TokenSigner::eddsa(key)),
            (None, Some(s)) => Some(TokenSigner::hs256(s)),
            (None, None) => None,
        }
        .map(|s| s.with_max_ttl(max_ttl));
        let mut public: Vec<PublicKey> = Vec::new();
        if let Some(own) = signer.as_ref().and_then(TokenSigner::public_key) {
            public.push(own.clone());
        }
        for k in extra {
            if !public.iter().any(|p| p.kid == k.kid) {
                public.push(k);
            }
        }
        let verifier = match (public.is_empty(), secret) {
            (false, None) => Some(TokenVerifier::eddsa(public)),
            (false, Some(s)) => Some(TokenVerifier::eddsa(public).with_hs256(s)),
            (true, Some(s)) => Some(TokenVerifier::hs256(s)),
            (true, None) => None,
        }
        .map(|v| v.with_max_ttl(max_ttl));
        Ok(Self { signer, verifier, max_ttl })
    }

    /// What requests are checked with; `serve` and `dev` need it.
    pub(crate) fn verifier(&self) -> Result<&TokenVerifier, ConfigError> {
        self.verifier.as_ref().ok_or(ConfigError::MissingSecret)
    }

    /// What tokens are minted with (capped at `TOKEN_MAX_TTL`).
    pub fn signer(&self) -> Result<&TokenSigner, ConfigError> {
        match (&self.signer, &self.verifier) {
            (Some(s), _) => Ok(s),
            (None, Some(_)) => Err(ConfigError::NoSigningKey),
            (None, None) => Err(ConfigError::MissingSecret),
        }
    }

    /// [`TokenConfig::verifier`], saying in the log what is in force: the
    /// mode and key ids, and what HS256 costs. Never a key.
    pub(crate) fn announced_verifier(&self) -> Result<TokenVerifier, ConfigError> {
        let verifier = self.verifier()?.clone();
        let kids: Vec<&str> = verifier.kids().collect();
        let signs = self.signer.as_ref().map_or("nothing", TokenSigner::algorithm);
        tracing::info!(mode = verifier.mode(), keys = ?kids, signs, max_ttl = self.max_ttl, "tokens");
        if verifier.accepts_hs256() {
            tracing::warn!(
                "SECRET_KEY is set: HS256 tokens are accepted, and anyone who holds SECRET_KEY \
                 (every edge given it, every copy of this environment) can mint ADMIN tokens. \
                 Use NEXUS_TOKEN_SIGNING_KEY here and NEXUS_TOKEN_VERIFY_KEYS on edges; keep \
                 SECRET_KEY for development, or only until HS256 tokens already issued expire."
            );
        }
        Ok(verifier)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use nexus_protocol::signing::SigningKey;
    use nexus_protocol::{ContextScope, MintError, Role};

    use super::*;

    fn tokens(vars: &[(&str, String)], secret: Option<&[u8]>) -> Result<TokenConfig, ConfigError> {
        let m: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        TokenConfig::from_lookup(&|k: &str| m.get(k).cloned(), secret, 3600)
    }

    #[test]
    fn eddsa_signs_verifies_and_caps() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let next = SigningKey::from_bytes(&[4; 32]);
        let vars = [
            (keys::SIGNING_KEY, jwk::signing_key_pem(&key)),
            (keys::VERIFY_KEYS, jwk::public_key_pem(&next.verifying_key())),
            ("TOKEN_MAX_TTL", "7200".into()),
        ];
        let t = tokens(&vars, None).unwrap();
        let v = t.verifier().unwrap();
        assert_eq!(v.mode(), "eddsa");
        assert_eq!(v.kids().count(), 2);
        let s = t.signer().unwrap();
        assert_eq!(s.algorithm(), "EdDSA");
        let now = chrono::Utc::now().timestamp();
        let token = s.issue("a", Role::Admin, ContextScope::All, now, 7200).unwrap();
        assert_eq!(v.verify(&token).unwrap().sub, "a");
        assert_eq!(
            s.issue("a", Role::Admin, ContextScope::All, now, 7201),
            Err(MintError::OverCap { ttl: 7201, max: 7200 })
        );
        // Another instance of the fleet, holding the public keys only.
        let verify_only = [(keys::VERIFY_KEYS, jwk::jwks(&v.public_keys()).to_string())];
        let other = tokens(&verify_only, None).unwrap();
        assert!(other.verifier().unwrap().verify(&token).is_ok());
        assert!(matches!(other.signer(), Err(ConfigError::NoSigningKey)));
        assert!(!format!("{t:?}").contains(&jwk::signing_key_pem(&key)[30..60]));
    }

    #[test]
    fn hs256_only_when_no_key_is_given_and_refusals() {
        let t = tokens(&[], Some(b"0123456789abcdef0123456789abcdef")).unwrap();
        assert_eq!(t.verifier().unwrap().mode(), "hs256");
        assert_eq!(t.signer().unwrap().algorithm(), "HS256");
        let key = SigningKey::from_bytes(&[3; 32]);
        let both = [(keys::SIGNING_KEY, jwk::signing_key_pem(&key))];
        let t = tokens(&both, Some(b"0123456789abcdef0123456789abcdef")).unwrap();
        assert_eq!(t.verifier().unwrap().mode(), "eddsa+hs256");
        assert_eq!(t.signer().unwrap().algorithm(), "EdDSA");
        assert!(matches!(tokens(&[], None).unwrap().verifier(), Err(ConfigError::MissingSecret)));

        let e = tokens(&[(keys::SIGNING_KEY, "garbage".into())], None).unwrap_err().to_string();
        assert!(e.starts_with(keys::SIGNING_KEY), "{e}");
        let e = tokens(&[("TOKEN_MAX_TTL", "60".into())], None).unwrap_err().to_string();
        assert!(e.starts_with("TOKEN_EXPIRATION"), "{e}");
        let e = tokens(&[("TOKEN_MAX_TTL", "0".into())], None).unwrap_err().to_string();
        assert!(e.starts_with("TOKEN_MAX_TTL"), "{e}");
        let public = jwk::public_key_pem(&key.verifying_key());
        let e = tokens(&[(keys::SIGNING_KEY, public)], None).unwrap_err().to_string();
        assert!(e.contains("PRIVATE KEY"), "{e}");
    }
}
