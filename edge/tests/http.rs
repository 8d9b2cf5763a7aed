//! The edge over HTTP: every answer of the resolve endpoint, the token
//! cases, the service endpoints, HTTP/2 and TLS.

use std::sync::Arc;

use nexus_edge::app::App;
use nexus_edge::connections::ConnectionCap;
use nexus_edge::metrics::Metrics;
use nexus_edge::state::{SourceKind, State};
use nexus_harness::{Options, SECRET, TestEdge, YAML, get, spawn_edge, wait_until};
use nexus_protocol::{AUDIENCE, Claims, ContextScope, Role, TokenSigner};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn resolve(edge: &TestEdge, target: &str, bearer: Option<&str>) -> (u16, serde_json::Value) {
    let url = edge.url(&format!("/api/aliases/resolve/{target}"));
    let (status, _, body) = get(&client(), &url, bearer).await;
    (status, body)
}

#[tokio::test]
async fn resolve_answers_every_status() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let all = edge.bearer(&["*"]);
    let (status, headers, body) =
        get(&client(), &edge.url("/api/aliases/resolve/frontend/user-profile"), Some(&all)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"canonical_name": "https://api.nexus.com/v1/users/profile"})
    );
    assert_eq!(headers["x-nexus-version"], "1");
    assert_eq!(headers["content-type"], "application/json");

    // Names are case-folded by the shared rule.
    assert_eq!(resolve(&edge, "Frontend/User-Profile", Some(&all)).await.0, 200);
    for (target, status, code) in [
        ("frontend/nope", 404, "not_found"),
        ("frontend/old-promo", 404, "not_found"),
        ("backend/retired", 404, "not_found"),
        ("frontend/bad%20name", 400, "bad_request"),
        ("frontend/..hidden", 400, "bad_request"),
        ("unknown-context/user-profile", 400, "unknown_context"),
    ] {
        let (s, body) = resolve(&edge, target, Some(&all)).await;
        assert_eq!((s, body["error"].as_str()), (status, Some(code)), "{target}: {body}");
        assert!(body["message"].is_string());
    }
    let (s, body) = resolve(&edge, "frontend/user-profile", None).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("unauthorized")));
    let backend_only = edge.bearer(&["backend"]);
    let (s, body) = resolve(&edge, "frontend/user-profile", Some(&backend_only)).await;
    assert_eq!((s, body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(resolve(&edge, "backend/billing", Some(&backend_only)).await.0, 200);
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let now = chrono::Utc::now().timestamp();
    let target = "frontend/user-profile";
    let good = edge.signer.mint("t", Role::Resolver, ContextScope::All, now, 300);
    let claims = |aud: &str, exp: i64| Claims {
        sub: "t".into(),
        role: Role::Admin,
        contexts: ContextScope::All,
        aud: aud.into(),
        iat: now,
        exp,
        nbf: None,
        jti: None,
        team: None,
    };
    let other_key =
        TokenSigner::hs256(b"another-secret").mint("t", Role::Admin, ContextScope::All, now, 300);
    let alg_none =
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", good.split('.').nth(1).unwrap());
    let expired = edge.signer.sign(&claims(AUDIENCE, now - 3600));
    let wrong_aud = edge.signer.sign(&claims("someone-else", now + 300));
    for (name, header) in [
        ("bad signature", format!("Bearer {other_key}")),
        ("alg none", format!("Bearer {alg_none}")),
        ("expired", format!("Bearer {expired}")),
        ("wrong audience", format!("Bearer {wrong_aud}")),
        ("not bearer", format!("Basic {good}")),
        ("garbage", "Bearer not.a.jwt".to_owned()),
    ] {
        let (s, body) = resolve(&edge, target, Some(&header)).await;
        assert_eq!((s, body["error"].as_str()), (401, Some("unauthorized")), "{name}");
    }
    // The same good token works, twice (the second time from the cache).
    for _ in 0..2 {
        assert_eq!(resolve(&edge, target, Some(&format!("Bearer {good}"))).await.0, 200);
    }
    let _ = SECRET;
}

#[tokio::test]
async fn auth_off_needs_no_token() {
    let edge = spawn_edge(YAML, Options { auth: false, ..Options::default() }).await;
    assert_eq!(resolve(&edge, "frontend/user-profile", None).await.0, 200);
}

#[tokio::test]
async fn expiry_is_checked_at_request_time() {
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let yaml = format!(
        "aliases:\n  - context: frontend\n    alias: flash\n    canonical: https://x/flash\n    expires_at: {}\n",
        expires.to_rfc3339()
    );
    let edge = spawn_edge(&yaml, Options { auth: false, ..Options::default() }).await;
    assert_eq!(resolve(&edge, "frontend/flash", None).await.0, 200);
    let version = edge.app.state.version();
    wait_until("alias to expire", || async {
        resolve(&edge, "frontend/flash", None).await.0 == 404
    })
    .await;
    // No reload happened: the same state answered 404 on its own.
    assert_eq!(edge.app.state.version(), version);
}

#[tokio::test]
async fn service_endpoints() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let c = client();
    let (s, _, body) = get(&c, &edge.url("/api/aliases/health"), None).await;
    assert_eq!((s, body), (200, serde_json::json!({"status": "ok"})));
    let all = edge.bearer(&["*"]);
    resolve(&edge, "frontend/user-profile", Some(&all)).await;
    let (s, _, body) = get(&c, &edge.url("/api/aliases/metrics"), None).await;
    assert_eq!(s, 200);
    assert_eq!(body["metrics"]["total_aliases"], 4);
    assert_eq!(body["metrics"]["active_aliases"], 3);
    assert!(body["metrics"]["response_time_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let (s, _, body) = get(&c, &edge.url("/api/aliases/status"), None).await;
    assert_eq!(s, 200);
    let st = &body["status"];
    assert_eq!(st["service"], "NEXUS SSOT Edge");
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(st["health"], "healthy");
    assert_eq!(st["registry_version"], 1);
    assert_eq!(st["source"], "file");
    assert!(st["state_age_seconds"].as_f64().is_some());
    let (s, _, body) = get(&c, &edge.url("/nowhere"), None).await;
    assert_eq!((s, body["error"].as_str()), (404, Some("not_found")));
    let resp = c.post(edge.url("/api/aliases/resolve/frontend/user-profile")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}

/// Every sample line is `name{labels} value` with a float value.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        samples.push((series.to_owned(), value));
    }
    samples
}

#[tokio::test]
async fn prometheus_metrics_parse() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let all = edge.bearer(&["*"]);
    resolve(&edge, "frontend/user-profile", Some(&all)).await;
    resolve(&edge, "frontend/nope", Some(&all)).await;
    let resp = client().get(edge.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let samples = parse_prometheus(&text);
    let value = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
    assert_eq!(value("nexus_edge_resolve_total{outcome=\"ok\"}"), Some(1.0));
    assert_eq!(value("nexus_edge_resolve_total{outcome=\"not_found\"}"), Some(1.0));
    assert_eq!(value("nexus_edge_aliases"), Some(4.0));
    assert_eq!(value("nexus_edge_contexts"), Some(2.0));
    assert_eq!(value("nexus_edge_state_version"), Some(1.0));
    assert_eq!(value("nexus_edge_reloads_total{result=\"ok\"}"), Some(1.0));
    assert_eq!(value("nexus_edge_connections"), Some(1.0));
    for name in [
        "nexus_edge_resolve_duration_seconds_count",
        "nexus_edge_state_epoch",
        "nexus_edge_state_age_seconds",
        "nexus_edge_connections_refused_total",
    ] {
        assert!(value(name).is_some(), "{name} missing:\n{text}");
    }
}

#[tokio::test]
async fn http2_prior_knowledge() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let c = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = c
        .get(edge.url("/api/aliases/resolve/backend/billing"))
        .header("authorization", edge.bearer(&["backend"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-nexus-version"], "1");
}

#[tokio::test]
async fn http2_over_tls_with_alpn() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = nexus_runtime::tls::server_config(&cert_path, &key_path).unwrap();
    let edge = spawn_edge(YAML, Options { tls: Some(tls), ..Options::default() }).await;
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .add_root_certificate(root)
        .resolve("localhost", edge.addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/api/aliases/resolve/backend/billing", edge.addr.port());
    let resp = c.get(&url).header("authorization", edge.bearer(&["*"])).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["canonical_name"], "https://api.nexus.com/v1/billing");
    // HTTP/1.1 over TLS works too.
    let h1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", edge.addr)
        .http1_only()
        .build()
        .unwrap();
    let resp = h1.get(&url).header("authorization", edge.bearer(&["*"])).send().await.unwrap();
    assert_eq!((resp.version(), resp.status().as_u16()), (reqwest::Version::HTTP_11, 200));
}

#[tokio::test]
async fn health_is_503_before_any_state() {
    let metrics = Arc::new(Metrics::new());
    let app = Arc::new(App {
        state: Arc::new(State::new(SourceKind::File)),
        auth: None,
        connections: ConnectionCap::new(10, metrics.clone()),
        // PROMETHEUS_ENABLED=false
        prometheus: false,
        metrics,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(nexus_edge::server::serve(listener, app, None, async {
        let _ = rx.await;
    }));
    let c = client();
    let (s, _, body) = get(&c, &format!("http://{addr}/api/aliases/health"), None).await;
    assert_eq!((s, body), (503, serde_json::json!({"status": "starting"})));
    let (s, _, _) = get(&c, &format!("http://{addr}/api/aliases/resolve/a/b"), None).await;
    assert_eq!(s, 503);
    let (_, _, body) = get(&c, &format!("http://{addr}/api/aliases/status"), None).await;
    assert_eq!(body["status"]["health"], "starting");
    let (s, _, _) = get(&c, &format!("http://{addr}/metrics"), None).await;
    assert_eq!(s, 404, "PROMETHEUS_ENABLED=false hides /metrics");
    let _ = tx.send(());
}
