//! API keys: `nxk_` + base64url (no padding) of 32 random bytes. The key is
//! shown once; only its SHA-256 digest is stored, and edges receive only
//! that. The format and the digest are the protocol's
//! (`nexus_protocol::credentials`), so both planes agree on them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_protocol::KeyDigest;
use nexus_protocol::credentials::{API_KEY_BYTES, api_key_digest};
use rand::RngCore;
use subtle::ConstantTimeEq;

pub(crate) use nexus_protocol::credentials::API_KEY_PREFIX as PREFIX;

/// A fresh key and its digest.
pub fn generate() -> (String, KeyDigest) {
    let mut bytes = [0u8; API_KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let digest = api_key_digest(&key).expect("a generated key is well formed");
    (key, digest)
}

/// The digest of a well-formed key; `None` for anything that is not one
/// (so garbage never reaches the database).
pub(crate) fn digest(key: &str) -> Option<KeyDigest> {
    api_key_digest(key)
}

pub(crate) fn digests_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let (k1, d1) = generate();
        let (k2, _) = generate();
        assert_ne!(k1, k2);
        assert!(k1.starts_with("nxk_") && k1.len() == 4 + 43);
        assert_eq!(digest(&k1), Some(d1));
        assert!(digests_match(&d1, &d1));
        assert!(!digests_match(&d1, &digest(&k2).unwrap()));
    }

    #[test]
    fn malformed_keys_have_no_digest() {
        assert_eq!(digest("nxk_short"), None);
        assert_eq!(digest("abc"), None);
        assert_eq!(digest(&format!("nxk_{}", "!".repeat(43))), None);
    }
}
