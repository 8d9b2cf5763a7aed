//! Bearer-token checks: what a resolve request pays with the edge's cache
//! warm (`Authenticator::allows`: parse the header, one map read, `exp` and
//! scope), against verifying the same JWT every time (`TokenVerifier`:
//! base64, HS256, claims JSON, `exp`/`aud`/`nbf`), plus the same scope check.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use nexus_edge::auth::Authenticator;
use nexus_protocol::{Context, ContextScope, Role, TokenSigner, TokenVerifier};

const SECRET: &[u8] = b"bench-secret-of-a-realistic-length-0123456789";

fn tokens(c: &mut Criterion) {
    // The verifier reads the real clock for `exp`, so the token must be
    // minted against it; a day outlives any run.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs();
    let now = i64::try_from(now).expect("seconds fit i64");
    let scope = ContextScope::Only(
        ["frontend", "backend"].map(|c| Context::parse(c).expect("static context is valid")).into(),
    );
    let token = TokenSigner::hs256(SECRET).mint("bench", Role::Resolver, scope, now, 86_400);
    let header = format!("Bearer {token}");
    let verifier = TokenVerifier::hs256(SECRET);
    let auth = Authenticator::new(verifier.clone());
    // Warm the cache, and make sure both paths agree before timing either.
    assert!(auth.allows(Some(header.as_bytes()), Some("backend"), now).expect("token verifies"));
    assert_eq!(auth.cached(), 1);
    assert!(verifier.verify(&token).expect("token verifies").contexts.allows("backend"));

    let mut group = c.benchmark_group("token_check");
    group.sample_size(50).measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("cached", |b| {
        b.iter(|| {
            let allowed = auth.allows(black_box(Some(header.as_bytes())), Some("backend"), now);
            black_box(allowed.unwrap_or(false))
        })
    });
    group.bench_function("uncached", |b| {
        b.iter(|| {
            let claims = verifier.verify(black_box(&token));
            black_box(claims.is_ok_and(|c| c.contexts.allows("backend")))
        })
    });
    group.finish();
    println!("token_check: {} byte token, {} cached", token.len(), auth.cached());
}

criterion_group!(benches, tokens);
criterion_main!(benches);
