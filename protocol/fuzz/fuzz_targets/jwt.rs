//! Token verification over arbitrary strings, with a known HS256 key.
//!
//! Input byte 0 picks how the rest is used:
//! - 0: the token text as it would arrive in `Authorization: Bearer`;
//! - 1: `header JSON 0xff claims JSON`, encoded and signed with the key, so
//!   the fuzzer reaches header and claims parsing behind a good signature;
//! - else: claims JSON under a good HS256 header, signed.
//!
//! In claims, `NOW` is replaced by the current Unix time, so the fuzzer can
//! write live tokens (`"exp":NOW`) and near-misses (`"exp":NOW0`, `-NOW`).
//!
//! Properties: never panics; a refusal is a typed `TokenError`; an accepted
//! token is HS256, no longer than the limit, and its claims satisfy the
//! policy: audience `nexus-ssot`, `exp` not past (within the leeway), `nbf`
//! (when present) not ahead.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use nexus_protocol::jwt::{LEEWAY_SECS, MAX_TOKEN_LEN};
use nexus_protocol::{AUDIENCE, TokenError, TokenVerifier};

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let live = |b: &[u8]| String::from_utf8_lossy(b).replace("NOW", &now.to_string());
    let token = match mode {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => {
            let (header, claims) = match rest.iter().position(|&b| b == 0xff) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            signed(header, live(claims).as_bytes())
        }
        _ => signed(br#"{"alg":"HS256","typ":"JWT"}"#, live(rest).as_bytes()),
    };
    // Built once: key setup per input only measured the setup.
    static VERIFIERS: OnceLock<(TokenVerifier, TokenVerifier)> = OnceLock::new();
    let (verifier, other) =
        VERIFIERS.get_or_init(|| (TokenVerifier::hs256(SECRET), TokenVerifier::hs256(b"other")));
    match verifier.verify(&token) {
        Ok(claims) => {
            assert!(token.len() <= MAX_TOKEN_LEN);
            let header = jsonwebtoken::decode_header(&token).expect("accepted header parses");
            assert_eq!(header.alg, Algorithm::HS256, "only the pinned algorithm passes");
            assert_eq!(claims.aud, AUDIENCE);
            let leeway = LEEWAY_SECS as i64;
            // Read the clock after verifying: it only moved forward.
            assert!(claims.exp >= now - leeway, "expired token accepted: {claims:?}");
            if let Some(nbf) = claims.nbf {
                let later = now + 2;
                assert!(nbf <= later + leeway, "immature token accepted: {claims:?}");
            }
            // Another key never accepts it.
            assert!(other.verify(&token).is_err());
        }
        Err(TokenError::TooLong) => assert!(token.len() > MAX_TOKEN_LEN),
        Err(e) => {
            assert!(token.len() <= MAX_TOKEN_LEN);
            assert!(!e.to_string().is_empty());
        }
    }
});

/// `b64(header).b64(claims).HMAC` with the known secret, as a signer would.
fn signed(header: &[u8], claims: &[u8]) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    static KEY: OnceLock<EncodingKey> = OnceLock::new();
    let key = KEY.get_or_init(|| EncodingKey::from_secret(SECRET));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, Algorithm::HS256)
        .expect("HMAC signing cannot fail");
    format!("{message}.{signature}")
}
