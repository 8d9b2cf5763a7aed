//! The admin API's per-credential rate limit against the real server: past
//! its burst a credential gets 429 with `Retry-After` and the API's JSON
//! error; another credential is unaffected; requests without a valid
//! credential share the client address's bucket; health, metrics and the
//! OpenAPI document are exempt; the metric counts each refusal.

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::Utc;
use nexus_control_plane::config::rate_limit::RateLimitConfig;
use nexus_protocol::{ContextScope, Role};
use reqwest::StatusCode;
use serde_json::Value;

use nexus_harness::{TestApp, spawn_app};

const BURST: u32 = 3;

fn token(app: &TestApp, sub: &str) -> String {
    app.signer.mint(sub, Role::Viewer, ContextScope::All, Utc::now().timestamp(), 600)
}

async fn get(app: &TestApp, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req.send().await.unwrap()
}

/// The counter's value for `key`, from the Prometheus text.
async fn refused(app: &TestApp, key: &str) -> u64 {
    let text = get(app, "/metrics", None).await.text().await.unwrap();
    let line = format!("nexus_cp_rate_limited_total{{key=\"{key}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&line)).map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn past_its_burst_a_credential_gets_429_and_others_do_not() {
    let app = spawn_app().await;
    // One request back an hour: nothing refills during the test.
    app.state.set_rate_limit(RateLimitConfig {
        rate: Some((NonZeroU32::MIN, Duration::from_secs(3600))),
        burst: NonZeroU32::new(BURST).unwrap(),
        max_keys: 1000,
    });
    let (alice, bob) = (token(&app, "alice"), token(&app, "bob"));
    let path = "/api/admin/aliases?context=frontend";
    for i in 0..BURST {
        let res = get(&app, path, Some(&alice)).await;
        assert_eq!(res.status(), StatusCode::OK, "request {i} is within the burst");
    }
    let res = get(&app, path, Some(&alice)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "Retry-After {retry}");
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert_eq!(body["retry_after"].as_u64(), Some(retry), "{body}");
    assert!(body["message"].as_str().unwrap().contains("retry"), "{body}");
    // Every route of the credential shares its bucket.
    let res = get(&app, "/api/admin/conflicts", Some(&alice)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // Bob is unaffected.
    let res = get(&app, path, Some(&bob)).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Exempt: health, metrics, the OpenAPI document, however often.
    for _ in 0..2 * BURST {
        for exempt in ["/api/aliases/health", "/metrics", "/api/admin/openapi.json"] {
            let s = get(&app, exempt, None).await.status();
            assert_ne!(s, StatusCode::TOO_MANY_REQUESTS, "{exempt}");
        }
    }
    assert_eq!(refused(&app, "principal").await, 2);

    // Bad credentials are charged to the client address, whatever they say:
    // fresh garbage each time cannot mint fresh buckets.
    for i in 0..BURST {
        let res = get(&app, path, Some(&format!("garbage-{i}"))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let res = get(&app, path, Some("garbage-last")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = get(&app, path, None).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "no credential: the same bucket");
    assert_eq!(refused(&app, "address").await, 2);
    // A valid credential from the same address still gets through.
    let carol = token(&app, "carol");
    assert_eq!(get(&app, path, Some(&carol)).await.status(), StatusCode::OK);

    // The 429s are in the request metrics too, by route.
    let text = get(&app, "/metrics", None).await.text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("nexus_cp_http_requests_total")
            && l.contains("status=\"429\"")
            && l.contains("route=\"/api/admin/aliases\"")),
        "{text}"
    );
}

#[tokio::test]
async fn off_means_no_limit() {
    let app = spawn_app().await;
    let off = RateLimitConfig::from_lookup(|k| (k == "API_RATE_LIMIT").then(|| "off".into()));
    app.state.set_rate_limit(off.unwrap());
    let t = token(&app, "alice");
    for _ in 0..50 {
        assert_eq!(get(&app, "/api/admin/aliases", Some(&t)).await.status(), StatusCode::OK);
    }
    assert_eq!(refused(&app, "principal").await, 0);
}

/// Transactions committed in the app's database so far. Every other
/// session of it is ended first: a backend flushes its statistics when it
/// exits, and otherwise up to 10 s after it goes idle, so without that the
/// count would lag and an upper bound on it could not fail.
async fn transactions(sql: &tokio_postgres::Client) -> i64 {
    sql.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await
    .unwrap();
    nexus_harness::wait_until("the app's sessions ended", || async {
        let row = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) == 0
    })
    .await;
    sql.batch_execute("SELECT pg_stat_clear_snapshot()").await.unwrap();
    let row = sql
        .query_one(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database \
             WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}

/// The attacker guesses API keys: 600 well-formed `nxk_` keys nobody
/// holds, at an API limit of 20/s. Each would cost a PostgreSQL lookup;
/// the address is charged before the lookup, so past its burst the
/// guesses are answered 429 without touching the database, and the
/// transactions the flood costs stay near the guesses let in, not 600.
#[tokio::test]
async fn garbage_api_keys_cost_no_lookup_past_the_address_limit() {
    use base64::Engine;
    let app = spawn_app().await;
    app.state.set_rate_limit(RateLimitConfig {
        rate: Some((NonZeroU32::new(20).unwrap(), Duration::from_secs(1))),
        burst: NonZeroU32::new(40).unwrap(),
        max_keys: 1000,
    });
    let sql = app.sql().await;
    let before = transactions(&sql).await;
    let started = std::time::Instant::now();
    let (mut let_in, mut limited) = (0u32, 0u32);
    for i in 0..600u32 {
        let mut raw = [0u8; 32];
        raw[..4].copy_from_slice(&i.to_be_bytes());
        let key = format!("nxk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
        let res = get(&app, "/api/admin/aliases", Some(&key)).await;
        match res.status() {
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            // 401 after the lookup; a 503 is a lookup on a session the
            // count above ended, which the pool then replaces.
            StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE => let_in += 1,
            s => panic!("guess {i}: {s}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let spent = transactions(&sql).await - before;
    eprintln!(
        "600 guesses in {elapsed:.2} s: {let_in} let in, {limited} 429, {spent} transactions"
    );
    // The burst, what refilled meanwhile, and one for rounding.
    let allowed = 40.0 + 20.0 * elapsed + 1.0;
    assert!(f64::from(let_in) <= allowed, "{let_in} let in over {elapsed:.2} s");
    assert_eq!(let_in + limited, 600);
    // A lookup is one transaction; the slack is the pool's new sessions
    // setting themselves up and this test's own queries.
    assert!(
        spent <= i64::from(let_in) + 40,
        "{spent} transactions for {let_in} guesses let in (of 600)"
    );
    assert_eq!(refused(&app, "address").await, u64::from(limited));
}

/// A flood of sign-in attempts is charged to the address before any
/// credential is looked up: past the limit the console answers 429 with
/// `Retry-After`, as an HTML page like its other errors.
#[tokio::test]
async fn a_console_sign_in_flood_gets_429() {
    let app = spawn_app().await;
    app.state.set_rate_limit(RateLimitConfig {
        rate: Some((NonZeroU32::MIN, Duration::from_secs(3600))),
        burst: NonZeroU32::new(BURST).unwrap(),
        max_keys: 1000,
    });
    let sign_in = || {
        app.http
            .post(app.url("/console/sign-in"))
            .header("origin", format!("http://{}", app.addr))
            .form(&[("credential", "nxk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")])
            .send()
    };
    for i in 0..BURST {
        assert_eq!(sign_in().await.unwrap().status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let res = sign_in().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "Retry-After {retry}");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = res.text().await.unwrap();
    assert!(page.contains("429 Too Many Requests") && page.contains("rate_limited"), "{page}");
    // The sign-in page itself is not limited.
    let form = app.http.get(app.url("/console/sign-in")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    assert_eq!(refused(&app, "address").await, 1);
}
