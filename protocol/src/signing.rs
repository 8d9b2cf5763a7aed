//! Ed25519 keys for the signed envelope: the dev key pair and the hex form
//! operators put in `NEXUS_SIGNING_KEY` (control plane, 32-byte secret seed)
//! and `NEXUS_VERIFY_KEY` (edges, 32-byte public key).
//!
//! Both planes read keys through these functions so they cannot disagree on
//! the format: 64 hex digits, either case, surrounding whitespace ignored (a
//! key file usually ends with a newline).

use std::fmt;

pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// The development signing seed. Public on purpose: anyone can sign with it,
/// so a deployment that runs on it must say so loudly at start.
pub const DEV_SIGNING_SEED: [u8; 32] = *b"nexus-dev-signing-key-do-not-use";

/// Why a hex key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key must be 64 hex digits (32 bytes); found {0} characters")]
    WrongLength(usize),
    #[error("key has a non-hex character at position {0}")]
    NotHex(usize),
    #[error("key is not a valid Ed25519 public key")]
    NotAPublicKey,
    #[error(transparent)]
    Text(#[from] crate::jwk::KeyTextError),
}

/// The development signing key (from [`DEV_SIGNING_SEED`]).
pub fn dev_signing_key() -> SigningKey {
    SigningKey::from_bytes(&DEV_SIGNING_SEED)
}

/// The public half of the development key, which edges fall back to.
pub fn dev_verify_key() -> VerifyingKey {
    dev_signing_key().verifying_key()
}

/// Whether `key` is the public development key (to warn about it).
pub fn is_dev_verify_key(key: &VerifyingKey) -> bool {
    key == &dev_verify_key()
}

/// Parses a 32-byte secret seed written as 64 hex digits, or a PKCS#8
/// `PRIVATE KEY` PEM block (the token keys' format: one format for both
/// signatures).
pub fn parse_signing_key(text: &str) -> Result<SigningKey, KeyError> {
    if text.contains("-----BEGIN") {
        return Ok(crate::jwk::parse_signing_key(text)?);
    }
    Ok(SigningKey::from_bytes(&parse_32(text)?))
}

/// Parses a 32-byte Ed25519 public key written as 64 hex digits.
pub fn parse_verify_key(hex: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&parse_32(hex)?).map_err(|_| KeyError::NotAPublicKey)
}

/// The state's verify keys: several, for a rotation (the edge trusts the old
/// and the new key while the control plane switches), each 64 hex digits
/// separated by commas or white space, or PEM `PUBLIC KEY` blocks, or a
/// JWKS document, as the token keys are written.
pub fn parse_verify_keys(text: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') || trimmed.contains("-----BEGIN") {
        return Ok(crate::jwk::parse_verify_keys(trimmed)?.into_iter().map(|k| k.key).collect());
    }
    let keys = trimmed
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
        .map(parse_verify_key)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyError::WrongLength(0));
    }
    Ok(keys)
}

/// The public key in the hex form [`parse_verify_key`] reads, so the control
/// plane can print what edges must be given.
pub fn verify_key_hex(key: &VerifyingKey) -> HexKey {
    HexKey(key.to_bytes())
}

/// A public key displayed as 64 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HexKey([u8; 32]);

impl fmt::Display for HexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn parse_32(raw: &str) -> Result<[u8; 32], KeyError> {
    let hex = raw.trim().as_bytes();
    if hex.len() != 64 {
        return Err(KeyError::WrongLength(raw.trim().chars().count()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(KeyError::NotHex(2 * i))?;
        let lo = nibble(pair[1]).ok_or(KeyError::NotHex(2 * i + 1))?;
        out[i] = hi << 4 | lo;
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Limits, decode_snapshot, encode_snapshot};
    use crate::snapshot::Snapshot;

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn seed_hex_round_trips_to_the_same_key() {
        let seed = [0x5a; 32];
        let key = parse_signing_key(&format!("  {}\n", hex_of(&seed).to_uppercase())).unwrap();
        assert_eq!(key.to_bytes(), seed);
    }

    #[test]
    fn printed_public_key_parses_back() {
        let public = parse_signing_key(&hex_of(&[7; 32])).unwrap().verifying_key();
        let printed = verify_key_hex(&public).to_string();
        assert_eq!(printed.len(), 64);
        assert_eq!(parse_verify_key(&printed).unwrap(), public);
    }

    #[test]
    fn malformed_keys_are_refused_with_the_reason() {
        assert_eq!(parse_signing_key("abcd").unwrap_err(), KeyError::WrongLength(4));
        let mut bad = hex_of(&[1; 32]);
        bad.replace_range(10..11, "g");
        assert_eq!(parse_signing_key(&bad).unwrap_err(), KeyError::NotHex(10));
        // Multi-byte characters must not slip through a byte-length check.
        let wide = "é".repeat(32);
        assert!(parse_verify_key(&wide).is_err());
    }

    #[test]
    fn dev_pair_signs_what_the_dev_public_key_verifies() {
        let snapshot = Snapshot {
            epoch: 1,
            version: 2,
            created_at_ms: 0,
            intended_shrink: false,
            records: vec![],
            contexts: crate::KnownContexts::Any,
            credentials: Default::default(),
        };
        let bytes = encode_snapshot(&snapshot, Some(&dev_signing_key()));
        assert!(decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&dev_verify_key())).is_ok());
        assert!(is_dev_verify_key(&dev_verify_key()));
        let other = parse_signing_key(&hex_of(&[3; 32])).unwrap().verifying_key();
        assert!(!is_dev_verify_key(&other));
        assert!(decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&other)).is_err());
    }

    #[test]
    fn debug_of_a_signing_key_hides_the_seed() {
        let key = parse_signing_key(&hex_of(&[0xab; 32])).unwrap();
        assert!(!format!("{key:?}").contains("171, 171"));
        assert!(!format!("{key:?}").to_lowercase().contains("abab"));
    }
}
