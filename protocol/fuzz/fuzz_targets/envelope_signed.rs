//! Arbitrary payloads in envelopes signed with the dev key, so the fuzzer
//! gets past the length, hash and signature checks into the bincode decoder
//! and the checks after it.
//!
//! Input: byte 0 picks the kind (even: snapshot, odd: delta); the rest is
//! the payload. The header's `(epoch, version)` is read from the payload
//! the way an honest control plane would have written it, so the fuzzer
//! also reaches the `HeaderMismatch`-free path.
//!
//! Properties: a correctly signed envelope is never refused for its
//! signature, hash or length; a refusal is a body error or a limit; an
//! accepted payload is what bincode decodes on its own, and re-encodes to
//! a fixed point that verifies again once re-signed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nexus_protocol::envelope::{
    DecodeError, Kind, Limits, decode_delta, decode_snapshot, encode_delta, encode_snapshot, seal,
};
use nexus_protocol::signing::{SigningKey, VerifyingKey, dev_signing_key, dev_verify_key};
use nexus_protocol::{Delta, Snapshot};

fuzz_target!(|input: &[u8]| {
    let Some((&pick, payload)) = input.split_first() else { return };
    // Deriving a key is a scalar multiplication; doing it per input cost
    // more than the decode under test, so both halves are built once.
    static KEYS: OnceLock<(SigningKey, VerifyingKey)> = OnceLock::new();
    let (signer, key) = KEYS.get_or_init(|| (dev_signing_key(), dev_verify_key()));
    // Two leading varints: epoch, then version (snapshot) or from_version
    // (delta; to_version follows). Unknown: zeros, which still reach the body.
    let mut ints = varints(payload);
    let epoch = ints.next().unwrap_or(0);
    let second = ints.next().unwrap_or(0);
    let third = ints.next().unwrap_or(0);
    if pick % 2 == 0 {
        let bytes = seal(Kind::Snapshot, epoch, second, payload, Some(signer));
        match decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(key)) {
            Ok((header, s)) => {
                assert!(header.signed);
                assert_eq!(lenient::<Snapshot>(payload).as_ref(), Some(&s));
                let again = encode_snapshot(&s, Some(signer));
                let (_, back) = decode_snapshot(&again, &Limits::SNAPSHOT, Some(key))
                    .expect("re-signed re-encoding verifies");
                assert_eq!(back, s);
                assert_eq!(encode_snapshot(&back, Some(signer)), again);
            }
            Err(e) => body_refusal(&e),
        }
    } else {
        let bytes = seal(Kind::Delta, epoch, third, payload, Some(signer));
        match decode_delta(&bytes, &Limits::DELTA, Some(key)) {
            Ok((header, d)) => {
                assert!(header.signed);
                assert_eq!(lenient::<Delta>(payload).as_ref(), Some(&d));
                let again = encode_delta(&d, Some(signer));
                let (_, back) = decode_delta(&again, &Limits::DELTA, Some(key))
                    .expect("re-signed re-encoding verifies");
                assert_eq!(back, d);
                assert_eq!(encode_delta(&back, Some(signer)), again);
            }
            Err(e) => body_refusal(&e),
        }
    }
});

/// What is left to refuse once length, hash and signature are right.
fn body_refusal(e: &DecodeError) {
    assert!(
        matches!(
            e,
            DecodeError::Body(_)
                | DecodeError::TrailingBytes(_)
                | DecodeError::HeaderMismatch { .. }
                | DecodeError::TooManyRecords { .. }
                | DecodeError::TooManyContexts { .. }
        ),
        "a valid envelope refused for its frame: {e:?}"
    );
}

/// The payload decoded by bincode alone (standard config, whole input).
fn lenient<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Option<T> {
    let config = bincode::config::standard().with_limit::<{ 64 << 20 }>();
    match bincode::serde::decode_from_slice(payload, config) {
        Ok((v, read)) if read == payload.len() => Some(v),
        _ => None,
    }
}

/// bincode 2's varint (standard config): < 251 one byte; 251/252/253 then
/// u16/u32/u64 little endian.
fn varints(mut p: &[u8]) -> impl Iterator<Item = u64> + '_ {
    std::iter::from_fn(move || {
        let (&tag, rest) = p.split_first()?;
        let (value, n) = match tag {
            0..=250 => (u64::from(tag), 0),
            251 => (u64::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?)), 2),
            252 => (u64::from(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?)), 4),
            253 => (u64::from_le_bytes(rest.get(..8)?.try_into().ok()?), 8),
            _ => return None,
        };
        p = &rest[n..];
        Some(value)
    })
}
