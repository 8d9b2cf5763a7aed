//! Writes the seed corpus of every protocol target from real encodings:
//! snapshots and deltas as the tests build them, frames as the edge and the
//! client write them, the example alias file, names and tokens.
//!
//! `cargo run --bin seeds` (from `protocol/fuzz/`), then minimise with
//! `cargo fuzz cmin <target>`; `run.sh` does both when a corpus is missing.

use std::fs;
use std::path::Path;

use nexus_protocol::envelope::{HEADER_LEN, encode_delta, encode_snapshot};
use nexus_protocol::quic::{Answer, Reply, Request, Status};
use nexus_protocol::signing::dev_signing_key;
use nexus_protocol::snapshot::KnownContexts;
use nexus_protocol::credentials::{Cutoff, KeyGrant, RevokedSubject, RevokedToken};
use nexus_protocol::{
    AliasFile, AliasKey, AliasName, AliasRecord, Context, ContextScope, CredentialChange,
    Credentials, Delta, Role, Snapshot,
};

/// One entry of each kind: format 3's credentials part.
fn credentials() -> Credentials {
    Credentials {
        revoked_tokens: vec![RevokedToken { jti: "Zm9vYmFyYmF6cXV4".into(), until: 1_800_086_400 }],
        revoked_subjects: vec![RevokedSubject {
            sub: "ci-deployer".into(),
            before: Cutoff::from_secs(1_800_000_000),
            until: 1_800_086_400,
        }],
        api_keys: vec![KeyGrant {
            digest: [0x5a; 32],
            name: "api_key:1:svc".into(),
            role: Role::Resolver,
            contexts: ContextScope::Only(vec![ctx("frontend")]),
            expires_at: Some(1_900_000_000),
        }],
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    let example = fs::read_to_string(root.join("../../deploy/examples/aliases.yaml"))
        .expect("deploy/examples/aliases.yaml");
    let file = AliasFile::parse(&example).expect("the example parses");

    let mut envelopes = Vec::new();
    let records: Vec<AliasRecord> = file
        .aliases
        .iter()
        .enumerate()
        .map(|(i, e)| e.to_record(i as i64, i as u64 + 1, 0))
        .collect();
    for (n, contexts) in [
        (0, KnownContexts::Any),
        (1, KnownContexts::only([ctx("frontend")])),
        (records.len(), KnownContexts::only([ctx("frontend"), ctx("backend"), ctx("system")])),
    ] {
        let s = Snapshot {
            epoch: 7,
            version: n as u64,
            created_at_ms: 1_800_000_000_000,
            intended_shrink: n == 0,
            records: records[..n].to_vec(),
            contexts,
            credentials: if n == records.len() { credentials() } else { Credentials::default() },
        };
        envelopes.push(encode_snapshot(&s, None));
        envelopes.push(encode_snapshot(&s, Some(&dev_signing_key())));
    }
    for (upserts, removals, contexts) in [
        (vec![], vec![], None),
        (records[..1].to_vec(), vec![], None),
        (
            records[1..3].to_vec(),
            vec![AliasKey { context: ctx("frontend"), alias: AliasName::parse("gone").unwrap() }],
            Some(KnownContexts::only([ctx("frontend")])),
        ),
    ] {
        let d = Delta {
            epoch: 7,
            from_version: 3,
            to_version: 4,
            committed_at_ms: 1_800_000_000_000,
            credentials: if contexts.is_some() {
                let c = credentials();
                vec![
                    CredentialChange::RevokeToken(c.revoked_tokens[0].clone()),
                    CredentialChange::RevokeSubject(c.revoked_subjects[0].clone()),
                    CredentialChange::GrantKey(c.api_keys[0].clone()),
                    CredentialChange::RevokeKey([0x5a; 32]),
                ]
            } else {
                vec![]
            },
            upserts,
            removals,
            contexts,
        };
        envelopes.push(encode_delta(&d, None));
        envelopes.push(encode_delta(&d, Some(&dev_signing_key())));
    }
    write(&corpus, "envelope_raw", envelopes.iter().cloned());
    // envelope_signed: kind byte (0 snapshot, 1 delta) and the payload.
    write(
        &corpus,
        "envelope_signed",
        envelopes.iter().map(|e| {
            let kind = e[6] - 1;
            [&[kind][..], &e[HEADER_LEN..]].concat()
        }),
    );

    let mut frames = Vec::new();
    let mut pipeline = Vec::new();
    let requests = [
        Request::Auth { id: 0, token: "eyJhbGciOiJIUzI1NiJ9.e30.sig" },
        Request::Resolve { id: 1, context: "frontend", alias: "user-profile" },
        Request::Resolve { id: u64::MAX, context: "Frontend", alias: "a/../b" },
    ];
    for r in requests {
        let mut one = Vec::new();
        r.encode(&mut one).unwrap();
        r.encode(&mut pipeline).unwrap();
        frames.push(one);
    }
    frames.push(pipeline.clone());
    let answer = Answer {
        id: 1,
        status: Status::Ok,
        version: 42,
        text: "https://api.nexus.com/v1/users/profile",
        message: "",
    };
    let refused = Answer {
        id: 2,
        status: Status::NotFound,
        version: 0,
        text: "not_found",
        message: "no such alias",
    };
    for reply in [
        Reply::Answer(answer),
        Reply::Answer(refused),
        Reply::Closing { code: "malformed_frame", message: "frame ends inside a field" },
    ] {
        let mut one = Vec::new();
        reply.encode(&mut one).unwrap();
        frames.push(one);
    }
    write(&corpus, "quic_frames", frames.into_iter());

    let json = serde_json::to_string(&file).unwrap();
    write(
        &corpus,
        "declarative",
        [
            example.clone().into_bytes(),
            json.into_bytes(),
            b"aliases: []\n".to_vec(),
            b"aliases:\n  - context: a\n    alias: b\n    canonical: x\n    expires_at: 2027-01-01T00:00:00Z\n    is_active: false\n".to_vec(),
        ]
        .into_iter(),
    );

    let names = [
        "user-profile",
        "User_Profile.v2",
        "frontend",
        "a..b",
        ".a",
        "a/b",
        "a b",
        "é",
        "a%2f",
        "",
    ];
    write(&corpus, "names", names.iter().map(|n| n.as_bytes().to_vec()));
    let heads = ["7:42", "0:0", "18446744073709551615:18446744073709551615", "007:1", "1:"];
    write(&corpus, "head", heads.iter().map(|h| h.as_bytes().to_vec()));

    let signer = nexus_protocol::TokenSigner::hs256(b"fuzz-secret");
    let token = signer.mint(
        "svc",
        nexus_protocol::Role::Resolver,
        nexus_protocol::ContextScope::All,
        1_800_000_000,
        60,
    );
    let claims = r#"{"sub":"svc","role":"resolver","contexts":["frontend"],"aud":"nexus-ssot","iat":NOW,"exp":NOW}"#;
    let nbf = r#"{"sub":"a","role":"admin","contexts":["*"],"aud":"nexus-ssot","iat":NOW,"exp":NOW,"nbf":NOW}"#;
    write(
        &corpus,
        "jwt",
        [
            [&[0u8][..], token.as_bytes()].concat(),
            [&[2u8][..], claims.as_bytes()].concat(),
            [&[2u8][..], nbf.as_bytes()].concat(),
            [&[1u8][..], br#"{"alg":"HS256","typ":"JWT","kid":"k"}"#, &[0xff], claims.as_bytes()]
                .concat(),
            [&[1u8][..], br#"{"alg":"none"}"#, &[0xff], claims.as_bytes()].concat(),
        ]
        .into_iter(),
    );
    println!("seeds written to {}", corpus.display());
}

fn ctx(name: &str) -> Context {
    Context::parse(name).unwrap()
}

fn write(corpus: &Path, target: &str, inputs: impl Iterator<Item = Vec<u8>>) {
    let dir = corpus.join(target);
    fs::create_dir_all(&dir).unwrap();
    for (i, input) in inputs.enumerate() {
        fs::write(dir.join(format!("seed-{i:02}")), input).unwrap();
    }
}
