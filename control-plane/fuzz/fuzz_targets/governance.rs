//! The governance file (YAML at start, JSON through `PUT
//! /api/admin/governance`): parse, compile, and the one decision it makes.
//!
//! Input: the document's text. Every document that compiles is asked about
//! a fixed set of candidates built from it: each context it names and the
//! seed's three, an ordinary alias, its first reserved name, canonicals on
//! allowed and foreign hosts, and expiries from tomorrow to the end of time.
//!
//! Properties: a refusal is a typed `GovernanceError`; a compiled document
//! round-trips through its JSON form (what `GET` serves and `PUT` takes) to
//! the same rules; `check` never panics, names a known rule when it
//! refuses, and answers the same for the same question; without
//! `strict_contexts` every context is known.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use nexus_control_plane::domain::governance::{Candidate, Governance, GovernanceDoc};
use nexus_protocol::{AliasName, Canonical, Context};

const RULES: &[&str] = &[
    "known_context",
    "max_alias_length",
    "alias_pattern",
    "reserved_names",
    "max_canonical_length",
    "canonical_url",
    "allowed_schemes",
    "no_credentials",
    "allowed_hosts",
    "require_description",
    "expires_at_future",
    "max_ttl_days",
];

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let Ok(g) = Governance::from_yaml(text) else { return };
    let doc = g.document().clone();
    let json = serde_json::to_string(&doc).expect("a document serialises");
    let back: GovernanceDoc = serde_json::from_str(&json).expect("its JSON form parses");
    assert_eq!(back, doc);
    let again = Governance::compile(back).expect("its JSON form compiles");

    let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    let mut contexts: Vec<Context> = doc.contexts.keys().cloned().collect();
    contexts.extend(["frontend", "backend", "system"].map(|c| Context::parse(c).unwrap()));
    let mut aliases = vec![AliasName::parse("user-profile").unwrap()];
    aliases.extend(doc.defaults.reserved_names.first().and_then(|n| AliasName::parse(n).ok()));
    let canonicals = [
        "https://api.nexus.com/v1/users/profile",
        "http://localhost:8080/x",
        "https://user:pass@evil.example/",
        "javascript:alert(1)",
    ]
    .map(|c| Canonical::parse(c).unwrap());
    let expiries = [
        None,
        Some(now + Duration::days(1)),
        Some(now + Duration::days(36_500)),
        Some(DateTime::<Utc>::MAX_UTC),
    ];
    for context in &contexts {
        if !doc.strict_contexts {
            assert!(g.knows(context));
        }
        let _ = g.shadowing(context);
        for alias in &aliases {
            for canonical in &canonicals {
                for expires_at in expiries {
                    let c = Candidate {
                        context,
                        alias,
                        canonical,
                        description: Some("d"),
                        expires_at,
                    };
                    let answer = g.check(&c, now);
                    if let Err(v) = &answer {
                        assert!(RULES.contains(&v.rule), "unknown rule {}", v.rule);
                    }
                    assert_eq!(again.check(&c, now), answer);
                }
            }
        }
    }
});
