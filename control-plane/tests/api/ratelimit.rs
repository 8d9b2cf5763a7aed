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
