//! Bearer-token checks: what a resolve request pays with the edge's cache
//! warm (`Authenticator::allows`: parse the header, one map read, `exp` and
//! scope), against verifying the same JWT every time (`TokenVerifier`:
//! header, key by `kid`, base64, the signature, claims JSON,
//! `exp`/`aud`/`nbf`/`iat`), plus the same scope check — for HS256 and for
//! EdDSA (Ed25519), the production default; and the cached check with
//! `EDGE_RATE_LIMIT` on.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use nexus_edge::auth::{Access, Authenticator};
use nexus_edge::config::rate_limit::RateLimit;
use nexus_protocol::rate::Rate;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_edge::credentials::CredentialStore;
use nexus_protocol::credentials::api_key_digest;
use nexus_protocol::jwk::PublicKey;
use nexus_protocol::signing::SigningKey;
use nexus_protocol::{Context, ContextScope, Role, TokenSigner, TokenVerifier};
use nexus_protocol::{Credentials, KeyGrant};

const SECRET: &[u8] = b"bench-secret-of-a-realistic-length-0123456789";

fn tokens(c: &mut Criterion) {
    // The verifier reads the real clock for `exp`, so the token must be
    // minted against it; a day outlives any run.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs();
    let now = i64::try_from(now).expect("seconds fit i64");
    let scope = ContextScope::Only(
        ["frontend", "backend"].map(|c| Context::parse(c).expect("static context is valid")).into(),
    );
    let token =
        TokenSigner::hs256(SECRET).mint("bench", Role::Resolver, scope.clone(), now, 86_400);
    let header = format!("Bearer {token}");
    let verifier = TokenVerifier::hs256(SECRET);
    // EdDSA: the edge holds two public keys (a rotation in progress), the
    // token names the second.
    let (old, key) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let ed_token = TokenSigner::eddsa(&key).mint("bench", Role::Resolver, scope, now, 86_400);
    let ed_header = format!("Bearer {ed_token}");
    let ed_verifier = TokenVerifier::eddsa([
        PublicKey::new(old.verifying_key()),
        PublicKey::new(key.verifying_key()),
    ]);
    let ed_auth = Authenticator::new(ed_verifier.clone());
    // An `nxk_` API key granted through the credential set, as the signed
    // stream delivers it to an edge.
    let api_key = format!("nxk_{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
    let key_header = format!("Bearer {api_key}");
    let credentials = Arc::new(CredentialStore::new());
    credentials.install(
        &Credentials {
            api_keys: vec![KeyGrant {
                digest: api_key_digest(&api_key).expect("well-formed key"),
                name: "api_key:1:bench".into(),
                role: Role::Resolver,
                contexts: ContextScope::All,
                expires_at: None,
            }],
            ..Credentials::default()
        },
        now,
    );
    let key_auth = Authenticator::new(ed_verifier.clone()).with_credentials(credentials);
    assert!(
        key_auth
            .allows(Some(key_header.as_bytes()), Some("backend"), now, None)
            .expect("granted")
            .is_allowed()
    );
    assert!(
        ed_auth
            .allows(Some(ed_header.as_bytes()), Some("backend"), now, None)
            .expect("verifies")
            .is_allowed()
    );
    assert!(ed_verifier.verify(&ed_token).expect("verifies").contexts.allows("backend"));
    let auth = Authenticator::new(verifier.clone());
    // Warm the cache, and make sure both paths agree before timing either.
    assert!(
        auth.allows(Some(header.as_bytes()), Some("backend"), now, None)
            .expect("token verifies")
            .is_allowed()
    );
    assert_eq!(auth.cached(), 1);
    assert!(verifier.verify(&token).expect("token verifies").contexts.allows("backend"));

    // EDGE_RATE_LIMIT set, far above what the loop reaches: the same
    // cached check plus the credential's bucket (a clock read, one CAS).
    let never = RateLimit {
        rate: Rate {
            count: 1_000_000_000.try_into().expect("non-zero"),
            per: Duration::from_secs(1),
        },
        burst: u32::MAX.try_into().expect("non-zero"),
    };
    assert!(never.quota().is_some(), "one request per ns is a real quota");
    let limited = Authenticator::new(verifier.clone()).with_rate_limit(Some(never));
    assert!(
        limited
            .allows(Some(header.as_bytes()), Some("backend"), now, None)
            .expect("ok")
            .is_allowed()
    );

    let mut group = c.benchmark_group("token_check");
    group.sample_size(50).measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("cached", |b| {
        b.iter(|| {
            let allowed =
                auth.allows(black_box(Some(header.as_bytes())), Some("backend"), now, None);
            black_box(allowed.is_ok_and(Access::is_allowed))
        })
    });
    group.bench_function("cached_rate_limited", |b| {
        b.iter(|| {
            let allowed =
                limited.allows(black_box(Some(header.as_bytes())), Some("backend"), now, None);
            black_box(allowed.is_ok_and(Access::is_allowed))
        })
    });
    group.bench_function("uncached", |b| {
        b.iter(|| {
            let claims = verifier.verify(black_box(&token));
            black_box(claims.is_ok_and(|c| c.contexts.allows("backend")))
        })
    });
    group.bench_function("eddsa_cached", |b| {
        b.iter(|| {
            let allowed =
                ed_auth.allows(black_box(Some(ed_header.as_bytes())), Some("backend"), now, None);
            black_box(allowed.is_ok_and(Access::is_allowed))
        })
    });
    group.bench_function("eddsa_uncached", |b| {
        b.iter(|| {
            let claims = ed_verifier.verify(black_box(&ed_token));
            black_box(claims.is_ok_and(|c| c.contexts.allows("backend")))
        })
    });
    group.bench_function("api_key_cached", |b| {
        b.iter(|| {
            let allowed =
                key_auth.allows(black_box(Some(key_header.as_bytes())), Some("backend"), now, None);
            black_box(allowed.is_ok_and(Access::is_allowed))
        })
    });
    // What a cache miss costs for a key: the digest and one map read.
    group.bench_function("api_key_digest_lookup", |b| {
        b.iter(|| black_box(api_key_digest(black_box(&api_key))))
    });
    group.finish();
    println!(
        "token_check: {} byte HS256 token, {} byte EdDSA token, {} cached",
        token.len(),
        ed_token.len(),
        auth.cached()
    );
}

criterion_group!(benches, tokens);
criterion_main!(benches);
