//! The edge's token policy over the token-key variables both planes read
//! (`nexus_runtime::tokens`). What an edge accepts ([`edge_verifier`]):
//!
//! | set                          | mode          |
//! | ---------------------------- | ------------- |
//! | verify keys                  | `eddsa`       |
//! | verify keys and `SECRET_KEY` | `eddsa+hs256` (a migration; warned) |
//! | `SECRET_KEY` only            | `hs256` (development; warned) |
//! | a `SECRET_KEY` under 32 bytes | refused at start, on both planes |
//! | neither                      | refused at start |
//!
//! `TOKEN_MAX_TTL` (default a day, as on the control plane) caps the
//! lifetime of the tokens accepted, so a revocation the stream delivered can
//! be dropped once every token it names has expired.
//!
//! A signing key (`NEXUS_TOKEN_SIGNING_KEY[_FILE]`) on an edge, or a
//! private key among its verify keys, refuses the start: an edge that can
//! mint tokens is what the asymmetric keys exist to prevent.

use nexus_protocol::TokenVerifier;
use nexus_runtime::tokens::{
    DEFAULT_MAX_TTL, MIN_SECRET_LEN, SIGNING_KEY, SIGNING_KEY_FILE, text_of, verify_keys,
};

use super::env::{ConfigError, EnvError};

/// What an edge verifies tokens with (see the module's table).
pub fn edge_verifier(env: &impl Fn(&str) -> Option<String>) -> Result<TokenVerifier, ConfigError> {
    if let Some((name, _)) = text_of(env, SIGNING_KEY, SIGNING_KEY_FILE)? {
        return Err(ConfigError::SigningKeyOnEdge(name));
    }
    let max_ttl = match super::env::parsed::<i64>(env, "TOKEN_MAX_TTL")? {
        None => DEFAULT_MAX_TTL,
        Some(v) if v > 0 => v,
        Some(v) => {
            return Err(EnvError::Invalid {
                name: "TOKEN_MAX_TTL",
                value: v.to_string(),
                reason: "must be positive".into(),
            }
            .into());
        }
    };
    let secret = env("SECRET_KEY").filter(|s| !s.is_empty());
    if let Some(s) = &secret
        && s.len() < MIN_SECRET_LEN
    {
        // Never the value: a secret.
        return Err(EnvError::Invalid {
            name: "SECRET_KEY",
            value: "<redacted>".into(),
            reason: format!("{} bytes; HS256 needs at least {MIN_SECRET_LEN}", s.len()),
        }
        .into());
    }
    let verifier = match (verify_keys(env)?, secret) {
        (Some(keys), None) => TokenVerifier::eddsa(keys),
        (Some(keys), Some(s)) => TokenVerifier::eddsa(keys).with_hs256(s.as_bytes()),
        (None, Some(s)) => TokenVerifier::hs256(s.as_bytes()),
        (None, None) => return Err(ConfigError::MissingSecret),
    };
    Ok(verifier.with_max_ttl(max_ttl))
}

/// Says at start what the verifier accepts, and loudly what HS256 means on
/// an edge. Never a key, only key ids.
pub fn log_mode(verifier: &TokenVerifier) {
    let kids: Vec<&str> = verifier.kids().collect();
    tracing::info!(mode = verifier.mode(), keys = ?kids, "token verification");
    if verifier.accepts_hs256() {
        tracing::warn!(
            "SECRET_KEY is set: this edge accepts HS256 tokens, and whoever reads SECRET_KEY \
             from this machine can mint ADMIN tokens for the whole registry. Give edges only \
             the control plane's public keys (NEXUS_TOKEN_VERIFY_KEYS) and unset SECRET_KEY \
             outside development."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_protocol::jwk;
    use nexus_protocol::signing::SigningKey;
    use nexus_runtime::tokens::{VERIFY_KEYS, VERIFY_KEYS_FILE};
    use std::collections::HashMap;

    fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn modes_and_refusals() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = jwk::public_key_pem(&key.verifying_key());
        let v = edge_verifier(&env(&[(VERIFY_KEYS, public.clone())])).unwrap();
        assert_eq!(v.mode(), "eddsa");
        let secret = "0123456789abcdef0123456789abcdef".to_owned();
        let both = [(VERIFY_KEYS, public.clone()), ("SECRET_KEY", secret.clone())];
        assert_eq!(edge_verifier(&env(&both)).unwrap().mode(), "eddsa+hs256");
        assert_eq!(edge_verifier(&env(&[("SECRET_KEY", secret)])).unwrap().mode(), "hs256");
        // 31 bytes: too short to be an HS256 key, refused without echoing it.
        let short = "0123456789abcdef0123456789abcde".to_owned();
        let e = edge_verifier(&env(&[("SECRET_KEY", short.clone())])).unwrap_err().to_string();
        assert!(e.contains("31 bytes") && !e.contains(&short), "{e}");
        assert!(matches!(edge_verifier(&env(&[])), Err(ConfigError::MissingSecret)));

        let private = jwk::signing_key_pem(&key);
        let e = edge_verifier(&env(&[(SIGNING_KEY, private.clone()), (VERIFY_KEYS, public)]))
            .unwrap_err();
        assert!(matches!(e, ConfigError::SigningKeyOnEdge(SIGNING_KEY)), "{e}");
        let e = edge_verifier(&env(&[(VERIFY_KEYS, private.clone())])).unwrap_err().to_string();
        assert!(e.contains("PRIVATE") && !e.contains(private.lines().nth(1).unwrap()), "{e}");
        let e = edge_verifier(&env(&[(VERIFY_KEYS_FILE, "/nonexistent/jwks.json".into())]));
        assert!(matches!(e, Err(ConfigError::Env(EnvError::KeyFile { .. }))));
    }
}
