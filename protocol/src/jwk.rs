//! Token keys as operators hand them over: Ed25519 in PEM (PKCS#8 private
//! key, SPKI public key) and in JWK form (RFC 8037 `OKP`), a JWKS document
//! or a list of PEM blocks for the verifiers, and the key id every token
//! carries: the RFC 7638 thumbprint of the public key, so a key's id is a
//! fact of the key and no two deployments can disagree on it.
//!
//! Pure parsing: both planes read the environment or a file and hand the
//! text here, so the control plane, the edges and the tests read keys the
//! same way.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Most verification keys one verifier holds: a rotation needs two or
/// three; anything near this is a mistake.
pub const MAX_VERIFY_KEYS: usize = 32;
/// Longest key text accepted (a JWKS of [`MAX_VERIFY_KEYS`] keys is ~6 KiB).
pub const MAX_KEY_TEXT: usize = 64 << 10;

/// DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410 §7): the seed
/// follows.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo: the key follows.
const SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// Why key text was refused. Never echoes the text (it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyTextError {
    #[error("key text is longer than {MAX_KEY_TEXT} bytes")]
    TooLong,
    #[error("no key found: expected a JWKS document ({{\"keys\": [...]}}) or PEM blocks")]
    NoKeys,
    #[error("more than {MAX_VERIFY_KEYS} keys")]
    TooManyKeys,
    #[error("PEM block {0:?} is not terminated")]
    Unterminated(String),
    #[error("PEM block {0:?} is not valid base64")]
    BadBase64(String),
    #[error("PEM block {label:?} is not an Ed25519 key ({reason})")]
    NotEd25519 { label: String, reason: &'static str },
    #[error("a PRIVATE key was given where only public keys belong; give the public key")]
    PrivateKey,
    #[error("expected one PEM \"PRIVATE KEY\" (PKCS#8 Ed25519), found {0}")]
    NotOnePrivateKey(usize),
    #[error("JWKS document does not parse: {0}")]
    Json(String),
    #[error("JWK {index}: {reason}")]
    Jwk { index: usize, reason: String },
    #[error("two keys share the key id {0}")]
    DuplicateKid(String),
}

/// A public key and its id, as a verifier holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).finish()
    }
}

impl PublicKey {
    /// The key with its RFC 7638 thumbprint as id.
    pub fn new(key: VerifyingKey) -> Self {
        Self { kid: thumbprint(&key), key }
    }

    /// The key as a JWK (RFC 8037), with `kid`, `alg` and `use`.
    pub fn to_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// The RFC 7638 thumbprint: SHA-256 over the required members in
/// lexicographic order, base64url without padding.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// `{"keys": [...]}` of `keys`: what `GET /.well-known/jwks.json` serves
/// and what `NEXUS_TOKEN_VERIFY_KEYS` reads back.
pub fn jwks(keys: &[PublicKey]) -> serde_json::Value {
    serde_json::json!({ "keys": keys.iter().map(PublicKey::to_jwk).collect::<Vec<_>>() })
}

/// The private key as PKCS#8 PEM (what `openssl genpkey -algorithm ed25519`
/// writes).
pub fn signing_key_pem(key: &SigningKey) -> String {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem("PRIVATE KEY", &der)
}

/// The public key as SPKI PEM (what `openssl pkey -pubout` writes).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem("PUBLIC KEY", &der)
}

/// The PKCS#8 DER of `key`, as `jsonwebtoken`'s EdDSA signer takes it.
pub(crate) fn pkcs8_der(key: &SigningKey) -> Vec<u8> {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    der
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One PEM block: its label and DER bytes.
struct Block {
    label: String,
    der: Vec<u8>,
}

/// Every PEM block of `text`, in order; text between blocks is ignored (as
/// openssl does), so a file may carry comments.
fn blocks(text: &str) -> Result<Vec<Block>, KeyTextError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end =
            after.find("-----").ok_or_else(|| KeyTextError::Unterminated("?".into()))?;
        let label = after[..label_end].trim().to_owned();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start
            .find(&end_marker)
            .ok_or_else(|| KeyTextError::Unterminated(label.clone()))?;
        let b64: String =
            body_start[..body_end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = STANDARD.decode(b64).map_err(|_| KeyTextError::BadBase64(label.clone()))?;
        out.push(Block { label, der });
        if out.len() > MAX_VERIFY_KEYS {
            return Err(KeyTextError::TooManyKeys);
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(out)
}

/// The seed of a PKCS#8 Ed25519 private key: v1 (RFC 8410, 48 bytes) or
/// v2 (RFC 5958, the public key appended, which must then match).
fn seed_of(der: &[u8], label: &str) -> Result<SigningKey, KeyTextError> {
    let bad = |reason| KeyTextError::NotEd25519 { label: label.to_owned(), reason };
    let version_ok =
        der.get(2..5).is_some_and(|v| v == [0x02, 0x01, 0x00] || v == [0x02, 0x01, 0x01]);
    if der.len() < 48 || der[0] != 0x30 || !version_ok {
        return Err(bad("not a PKCS#8 private key"));
    }
    if der[5..16] != PKCS8_PREFIX[5..] {
        return Err(bad("algorithm is not Ed25519 (OID 1.3.101.112)"));
    }
    if usize::from(der[1]) + 2 != der.len() {
        return Err(bad("DER length does not match"));
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&der[16..48]);
    let key = SigningKey::from_bytes(&seed);
    // v2 carries `[1] BIT STRING` with the public key: it must be this key's.
    let tail = &der[48..];
    if let Some(pos) = tail.windows(3).position(|w| w == [0x81, 0x21, 0x00]) {
        let public = tail.get(pos + 3..pos + 35).ok_or_else(|| bad("truncated public key"))?;
        if public != key.verifying_key().as_bytes() {
            return Err(bad("embedded public key does not match the private key"));
        }
    }
    Ok(key)
}

fn public_of(der: &[u8], label: &str) -> Result<VerifyingKey, KeyTextError> {
    let bad = |reason| KeyTextError::NotEd25519 { label: label.to_owned(), reason };
    if der.len() != 44 || der[..12] != SPKI_PREFIX {
        return Err(bad("not an Ed25519 SubjectPublicKeyInfo"));
    }
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&der[12..]);
    VerifyingKey::from_bytes(&raw).map_err(|_| bad("not a valid Ed25519 point"))
}

/// The one Ed25519 signing key of a PKCS#8 PEM (`NEXUS_TOKEN_SIGNING_KEY`).
pub fn parse_signing_key(text: &str) -> Result<SigningKey, KeyTextError> {
    if text.len() > MAX_KEY_TEXT {
        return Err(KeyTextError::TooLong);
    }
    let blocks = blocks(text)?;
    let private: Vec<&Block> = blocks.iter().filter(|b| b.label == "PRIVATE KEY").collect();
    match private.as_slice() {
        [one] => seed_of(&one.der, &one.label),
        other => Err(KeyTextError::NotOnePrivateKey(other.len())),
    }
}

/// The verification keys of a JWKS document or of PEM `PUBLIC KEY` blocks
/// (`NEXUS_TOKEN_VERIFY_KEYS`). A private key anywhere in the text is
/// refused: a verifier must never hold one.
pub fn parse_verify_keys(text: &str) -> Result<Vec<PublicKey>, KeyTextError> {
    if text.len() > MAX_KEY_TEXT {
        return Err(KeyTextError::TooLong);
    }
    let keys = if text.trim_start().starts_with('{') {
        parse_jwks(text)?
    } else {
        let mut keys = Vec::new();
        for b in blocks(text)? {
            if b.label.contains("PRIVATE") {
                return Err(KeyTextError::PrivateKey);
            }
            keys.push(PublicKey::new(public_of(&b.der, &b.label)?));
        }
        keys
    };
    if keys.is_empty() {
        return Err(KeyTextError::NoKeys);
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].iter().any(|o| o.kid == k.kid) {
            return Err(KeyTextError::DuplicateKid(k.kid.clone()));
        }
    }
    Ok(keys)
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn parse_jwks(text: &str) -> Result<Vec<PublicKey>, KeyTextError> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| KeyTextError::Json(e.to_string()))?;
    if set.keys.len() > MAX_VERIFY_KEYS {
        return Err(KeyTextError::TooManyKeys);
    }
    set.keys.iter().enumerate().map(|(index, jwk)| parse_jwk(index, jwk)).collect()
}

fn parse_jwk(
    index: usize,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<PublicKey, KeyTextError> {
    let bad = |reason: String| KeyTextError::Jwk { index, reason };
    let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    if jwk.contains_key("d") {
        return Err(KeyTextError::PrivateKey);
    }
    match (field("kty"), field("crv")) {
        (Some("OKP"), Some("Ed25519")) => {}
        (kty, crv) => {
            return Err(bad(format!(
                "only Ed25519 keys (kty OKP, crv Ed25519) are accepted; found kty {kty:?}, crv {crv:?}"
            )));
        }
    }
    // RFC 8725 §3.1: the algorithm belongs to the key. A key that names
    // another one is a configuration error, not something to guess at.
    if let Some(alg) = jwk.get("alg")
        && alg.as_str() != Some("EdDSA")
    {
        return Err(bad(format!("alg must be \"EdDSA\" for an Ed25519 key, found {alg}")));
    }
    if let Some(u) = jwk.get("use")
        && u.as_str() != Some("sig")
    {
        return Err(bad(format!("use must be \"sig\", found {u}")));
    }
    let x = field("x").ok_or_else(|| bad("missing \"x\"".into()))?;
    let raw = URL_SAFE_NO_PAD.decode(x).map_err(|_| bad("\"x\" is not base64url".into()))?;
    let raw: [u8; 32] =
        raw.try_into().map_err(|_| bad("\"x\" must be 32 bytes for Ed25519".into()))?;
    let key =
        VerifyingKey::from_bytes(&raw).map_err(|_| bad("\"x\" is not an Ed25519 point".into()))?;
    let kid = match jwk.get("kid") {
        None => thumbprint(&key),
        Some(serde_json::Value::String(k)) if !k.is_empty() && k.len() <= 128 => k.clone(),
        Some(other) => return Err(bad(format!("kid must be a string of 1 to 128 bytes: {other}"))),
    };
    Ok(PublicKey { kid, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    #[test]
    fn pem_round_trips_both_halves() {
        let k = key(4);
        assert_eq!(parse_signing_key(&signing_key_pem(&k)).unwrap().to_bytes(), k.to_bytes());
        let text = format!(
            "# current\n{}# previous\n{}",
            public_key_pem(&k.verifying_key()),
            public_key_pem(&key(5).verifying_key())
        );
        let keys = parse_verify_keys(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], PublicKey::new(k.verifying_key()));
    }

    #[test]
    fn openssl_keys_parse() {
        // `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
        let private = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VwBCIEIHik5oRSDuoZQiZh++HltmXZDSt8P6BYngHDZjO8d8Q7\n\
            -----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VwAyEAUnvH0kxrfN5U2E0KcDLcQfbsAqjplu4tWkPQbpE2kwc=\n\
            -----END PUBLIC KEY-----\n";
        let k = parse_signing_key(private).unwrap();
        assert_eq!(public_key_pem(&k.verifying_key()), public);
        assert_eq!(parse_verify_keys(public).unwrap(), vec![PublicKey::new(k.verifying_key())]);
        assert_eq!(signing_key_pem(&k), private);
    }

    #[test]
    fn rfc_8037_thumbprint() {
        // RFC 8037 appendix A.3.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(thumbprint(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn jwks_round_trips_and_refusals_say_why() {
        let keys =
            vec![PublicKey::new(key(1).verifying_key()), PublicKey::new(key(2).verifying_key())];
        let text = jwks(&keys).to_string();
        assert_eq!(parse_verify_keys(&text).unwrap(), keys);

        let private = signing_key_pem(&key(1));
        assert_eq!(parse_verify_keys(&private), Err(KeyTextError::PrivateKey));
        let mut with_d = keys[0].to_jwk();
        with_d["d"] = "AAAA".into();
        let doc = serde_json::json!({ "keys": [with_d] }).to_string();
        assert_eq!(parse_verify_keys(&doc), Err(KeyTextError::PrivateKey));
        let mut hs = keys[0].to_jwk();
        hs["alg"] = "HS256".into();
        let doc = serde_json::json!({ "keys": [hs] }).to_string();
        assert!(matches!(parse_verify_keys(&doc), Err(KeyTextError::Jwk { index: 0, .. })));
        let rsa = r#"{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}"#;
        assert!(parse_verify_keys(rsa).unwrap_err().to_string().contains("Ed25519"));
        let dup = jwks(&[keys[0].clone(), keys[0].clone()]).to_string();
        assert!(matches!(parse_verify_keys(&dup), Err(KeyTextError::DuplicateKid(_))));
        assert_eq!(parse_verify_keys("nothing here"), Err(KeyTextError::NoKeys));
        assert_eq!(parse_signing_key(""), Err(KeyTextError::NotOnePrivateKey(0)));
        let short = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(matches!(parse_verify_keys(short), Err(KeyTextError::NotEd25519 { .. })));
        assert!(matches!(
            parse_verify_keys("-----BEGIN PUBLIC KEY-----\nAAAA"),
            Err(KeyTextError::Unterminated(_))
        ));
    }

    #[test]
    fn errors_never_echo_the_key() {
        let private = signing_key_pem(&key(9));
        let body = private.lines().nth(1).unwrap();
        let e = parse_verify_keys(&private).unwrap_err().to_string();
        assert!(!e.contains(body));
    }
}
