//! The token-key variables, read the same way by both planes:
//! `NEXUS_TOKEN_VERIFY_KEYS` (the text itself) or
//! `NEXUS_TOKEN_VERIFY_KEYS_FILE` (a path), holding a JWKS document or PEM
//! `PUBLIC KEY` blocks, parsed by `nexus_protocol::jwk`; and the names of the
//! signing-key variables, which the control plane reads and an edge refuses.
//! What each plane then builds from them (a signer, a verifier) is its own
//! policy and lives in its own config.

use std::path::PathBuf;

use nexus_protocol::KeyTextError;
use nexus_protocol::jwk::{self, PublicKey};

use crate::env::EnvError;

pub const VERIFY_KEYS: &str = "NEXUS_TOKEN_VERIFY_KEYS";
pub const VERIFY_KEYS_FILE: &str = "NEXUS_TOKEN_VERIFY_KEYS_FILE";
pub const SIGNING_KEY: &str = "NEXUS_TOKEN_SIGNING_KEY";
pub const SIGNING_KEY_FILE: &str = "NEXUS_TOKEN_SIGNING_KEY_FILE";
/// `TOKEN_MAX_TTL` when unset: a day, on both planes.
pub const DEFAULT_MAX_TTL: i64 = 24 * 3600;
/// Shortest `SECRET_KEY` either plane accepts, in bytes: HS256 wants at
/// least 256 bits of key.
pub const MIN_SECRET_LEN: usize = 32;

/// The text of `name` or of the file `name_file` names; `None` when
/// neither is set (or both are empty).
pub fn text_of(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    name_file: &'static str,
) -> Result<Option<(&'static str, String)>, EnvError> {
    let set = |n: &str| env(n).filter(|v| !v.trim().is_empty());
    match (set(name), set(name_file)) {
        (Some(_), Some(_)) => Err(EnvError::Invalid {
            name: name_file,
            value: String::new(),
            reason: format!("set {name} or {name_file}, not both"),
        }),
        (Some(text), None) => Ok(Some((name, text))),
        (None, Some(path)) => {
            let path = PathBuf::from(path.trim());
            let text = std::fs::read_to_string(&path).map_err(|source| EnvError::KeyFile {
                name: name_file,
                path,
                source,
            })?;
            Ok(Some((name_file, text)))
        }
        (None, None) => Ok(None),
    }
}

fn refused(name: &'static str, e: KeyTextError) -> EnvError {
    // Never the value: it may be a private key pasted by mistake.
    EnvError::Invalid { name, value: "<key text>".into(), reason: e.to_string() }
}

/// `NEXUS_TOKEN_VERIFY_KEYS[_FILE]`, parsed; `None` when unset.
pub fn verify_keys(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Vec<PublicKey>>, EnvError> {
    let Some((name, text)) = text_of(env, VERIFY_KEYS, VERIFY_KEYS_FILE)? else {
        return Ok(None);
    };
    jwk::parse_verify_keys(&text).map(Some).map_err(|e| refused(name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_or_file_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.pem");
        std::fs::write(&path, "text").unwrap();
        let path = path.display().to_string();
        let env = |vars: Vec<(&'static str, String)>| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        assert!(text_of(&env(vec![]), VERIFY_KEYS, VERIFY_KEYS_FILE).unwrap().is_none());
        let direct = env(vec![(VERIFY_KEYS, "pem".into())]);
        assert_eq!(text_of(&direct, VERIFY_KEYS, VERIFY_KEYS_FILE).unwrap().unwrap().1, "pem");
        let file = env(vec![(VERIFY_KEYS_FILE, path.clone())]);
        let (name, text) = text_of(&file, VERIFY_KEYS, VERIFY_KEYS_FILE).unwrap().unwrap();
        assert_eq!((name, text.as_str()), (VERIFY_KEYS_FILE, "text"));
        let both = env(vec![(VERIFY_KEYS, "pem".into()), (VERIFY_KEYS_FILE, path)]);
        let e = text_of(&both, VERIFY_KEYS, VERIFY_KEYS_FILE).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let missing = env(vec![(VERIFY_KEYS_FILE, "/nonexistent/jwks.json".into())]);
        assert!(matches!(verify_keys(&missing), Err(EnvError::KeyFile { .. })));
    }
}
