//! Context and alias names: the one rule both planes apply.
//!
//! The edge calls `names::normalize` on request paths (`edge/src/resolve.rs`);
//! the control plane calls `Context::parse` / `AliasName::parse` on its API
//! paths and bodies and deserialises them from the store, JSON and YAML.
//! Properties: normalisation is idempotent and its output is its own normal
//! form (borrowed, so the edge's hot path never copies it); `parse`,
//! `TryFrom<String>`, `FromStr` and serde all agree with `normalize`, in
//! acceptance and in the error; the normal form is the ASCII lower case of
//! the input and only uses the name alphabet.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use nexus_protocol::names::{MAX_ALIAS_LEN, MAX_CONTEXT_LEN, normalize};
use nexus_protocol::{AliasName, Context, NameError};

fuzz_target!(|bytes: &[u8]| {
    let Ok(raw) = std::str::from_utf8(bytes) else { return };
    check(
        raw,
        MAX_CONTEXT_LEN,
        |s| Context::parse(s).map(String::from),
        |s| Context::try_from(s).map(String::from),
    );
    check(
        raw,
        MAX_ALIAS_LEN,
        |s| AliasName::parse(s).map(String::from),
        |s| AliasName::try_from(s).map(String::from),
    );
    // serde goes through the same rule (JSON bodies, tokens, the store).
    let json = serde_json::to_string(raw).unwrap();
    let via_serde = serde_json::from_str::<Context>(&json).map(String::from).ok();
    assert_eq!(via_serde, Context::parse(raw).ok().map(String::from));
    let via_str = raw.parse::<AliasName>().map(String::from);
    assert_eq!(via_str, AliasName::parse(raw).map(String::from));
});

fn check(
    raw: &str,
    max: usize,
    parse: impl Fn(&str) -> Result<String, NameError>,
    try_from: impl Fn(String) -> Result<String, NameError>,
) {
    let normal = normalize(raw, max);
    assert_eq!(parse(raw), normal.clone().map(Cow::into_owned), "parse agrees with normalize");
    assert_eq!(try_from(raw.to_owned()), normal.clone().map(Cow::into_owned));
    match normal {
        Ok(n) => {
            assert!(matches!(&n, Cow::Borrowed(_)) == !raw.bytes().any(|b| b.is_ascii_uppercase()));
            assert_eq!(*n, raw.to_ascii_lowercase());
            assert!(!n.is_empty() && n.len() <= max);
            assert!(n.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.')));
            assert!(n.as_bytes()[0].is_ascii_alphanumeric() && !n.contains(".."));
            let again = normalize(&n, max).expect("a normal name is a name");
            assert!(matches!(again, Cow::Borrowed(s) if s == &*n), "idempotent and borrowed");
        }
        Err(e) => {
            match e {
                NameError::Empty => assert!(raw.is_empty()),
                NameError::TooLong { len, max: m } => assert!(len == raw.len() && m == max),
                NameError::Slash => assert!(raw.contains('/')),
                NameError::DotDot => assert!(raw.contains("..")),
                NameError::InvalidCharacter(c) => assert!(raw.contains(c)),
                _ => {}
            }
            // A refused name stays refused in either case.
            assert!(normalize(&raw.to_ascii_lowercase(), max).is_err());
        }
    }
}
