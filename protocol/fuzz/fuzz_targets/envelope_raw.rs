//! Raw bytes as a snapshot or delta envelope, with and without a key.
//!
//! Properties: nothing panics; a refusal is a typed `DecodeError`; an
//! accepted envelope's header names the body's `(epoch, version)`, stays
//! within the limits, and re-encodes to a value that decodes back to itself
//! (the re-encoding is a fixed point). Bytes signed by nobody never pass
//! the dev key's check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_protocol::envelope::{
    DecodeError, HEADER_LEN, Limits, decode_delta, decode_snapshot, encode_delta, encode_snapshot,
};
use nexus_protocol::signing::dev_verify_key;

fuzz_target!(|bytes: &[u8]| {
    let key = dev_verify_key();
    match decode_snapshot(bytes, &Limits::SNAPSHOT, None) {
        Ok((header, snapshot)) => {
            assert_eq!((header.epoch, header.version), (snapshot.epoch, snapshot.version));
            assert!(snapshot.records.len() <= Limits::SNAPSHOT.max_records);
            let again = encode_snapshot(&snapshot, None);
            let (_, back) = decode_snapshot(&again, &Limits::SNAPSHOT, None)
                .expect("a re-encoded snapshot decodes");
            assert_eq!(back, snapshot);
            assert_eq!(encode_snapshot(&back, None), again, "re-encoding is a fixed point");
            // The unsigned re-encoding keeps the payload, hence the content hash,
            // only when the input was canonical; either way it is not signed.
            assert!(matches!(
                decode_snapshot(&again, &Limits::SNAPSHOT, Some(&key)),
                Err(DecodeError::Unsigned)
            ));
        }
        Err(e) => typed(&e, bytes),
    }
    match decode_delta(bytes, &Limits::DELTA, None) {
        Ok((header, delta)) => {
            assert_eq!((header.epoch, header.version), (delta.epoch, delta.to_version));
            assert!(delta.upserts.len() + delta.removals.len() <= Limits::DELTA.max_records);
            let again = encode_delta(&delta, None);
            let (_, back) =
                decode_delta(&again, &Limits::DELTA, None).expect("a re-encoded delta decodes");
            assert_eq!(back, delta);
            assert_eq!(encode_delta(&back, None), again, "re-encoding is a fixed point");
        }
        Err(e) => typed(&e, bytes),
    }
    // With the key, only a real signature passes (the seeds carry dev-signed
    // envelopes; the fuzzer cannot make new ones): what passes is what the
    // unkeyed decode sees, and a signature is checked before the body.
    let snapshot = decode_snapshot(bytes, &Limits::SNAPSHOT, Some(&key));
    let unkeyed = decode_snapshot(bytes, &Limits::SNAPSHOT, None);
    check_keyed(
        snapshot.map(|(h, s)| (h, encode_snapshot(&s, None))),
        unkeyed.map(|(h, s)| (h, encode_snapshot(&s, None))),
    );
    let delta = decode_delta(bytes, &Limits::DELTA, Some(&key));
    let unkeyed = decode_delta(bytes, &Limits::DELTA, None);
    check_keyed(
        delta.map(|(h, d)| (h, encode_delta(&d, None))),
        unkeyed.map(|(h, d)| (h, encode_delta(&d, None))),
    );
});

type Decoded = Result<(nexus_protocol::Header, Vec<u8>), DecodeError>;

fn check_keyed(keyed: Decoded, unkeyed: Decoded) {
    match (keyed, unkeyed) {
        (Ok((h, v)), Ok((h2, v2))) => assert!(h.signed && h == h2 && v == v2),
        (Ok(_), Err(e)) => panic!("accepted with the key, refused without: {e:?}"),
        (Err(DecodeError::Unsigned | DecodeError::BadSignature), _) => {}
        // Past the signature, both see the same bytes.
        (Err(e), Ok(_)) => panic!("a signed envelope refused after its signature: {e:?}"),
        (Err(_), Err(_)) => {}
    }
}

/// Each refusal is explained by the bytes it names.
fn typed(e: &DecodeError, bytes: &[u8]) {
    match e {
        DecodeError::TooShort(n) => assert!(*n == bytes.len() && *n < HEADER_LEN),
        DecodeError::LengthMismatch { actual, .. } => {
            assert_eq!(*actual, bytes.len() - HEADER_LEN)
        }
        _ => assert!(bytes.len() >= HEADER_LEN, "{e:?} on {} bytes", bytes.len()),
    }
    // Display never panics and says something.
    assert!(!e.to_string().is_empty());
}
