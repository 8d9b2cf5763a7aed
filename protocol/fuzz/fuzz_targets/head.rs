//! The published head `"epoch:version"` (Redis key value and head notice).
//!
//! Properties: a refusal is a typed `HeadError`; an accepted head prints to
//! a text that parses back to it and is no longer than the input (the input
//! may carry leading zeros; the printed form is the canonical one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_protocol::head::MAX_HEAD_LEN;
use nexus_protocol::{Head, HeadError};

fuzz_target!(|bytes: &[u8]| {
    match Head::parse(bytes) {
        Ok(h) => {
            let text = h.to_string();
            assert_eq!(Head::parse(text.as_bytes()), Ok(h));
            assert!(text.len() <= bytes.len());
            assert!(bytes.iter().all(|&b| b.is_ascii_digit() || b == b':'));
            assert_eq!(text, format!("{}:{}", h.epoch, h.version));
        }
        Err(HeadError::TooLong) => assert!(bytes.len() > MAX_HEAD_LEN),
        Err(HeadError::Malformed) => assert!(bytes.len() <= MAX_HEAD_LEN),
    }
});
