//! Nothing internal reaches a client: with the database gone, every body
//! is one of the fixed texts of `web::error`, never the database's own
//! words, its name, host or port.

use nexus_control_plane::web::error::{INTERNAL, STORE_UNAVAILABLE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use nexus_harness::{TestApp, admin_client, spawn_app, spawn_app_without_database};

/// Words that appear in PostgreSQL's, tokio-postgres's or the pool's
/// messages, or name where the database is.
fn assert_clean(what: &str, body: &Value, secrets: &[&str]) {
    let text = body.to_string();
    for word in ["postgres", "database \"", "does not exist", "FATAL", "os error", "connect"]
        .iter()
        .chain(secrets)
    {
        assert!(!text.contains(word), "{what} leaks {word:?}: {text}");
    }
}

/// The admin endpoints' 5xx: exactly a code and one of the fixed messages.
fn assert_fixed_5xx(what: &str, status: StatusCode, body: &Value) {
    assert!(status.is_server_error(), "{what}: {status} {body}");
    let fixed = [
        json!({"error": "store_unavailable", "message": STORE_UNAVAILABLE}),
        json!({"error": "internal", "message": INTERNAL}),
    ];
    assert!(fixed.contains(body), "{what}: {body}");
}

async fn probe(app: &TestApp, secrets: &[&str]) {
    let (s, health) = app.call(Method::GET, "/api/aliases/health", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(
        health,
        json!({"status": "unavailable", "error": "store_unavailable", "message": STORE_UNAVAILABLE})
    );
    let (s, body) = app.get("/api/admin/aliases").await;
    assert_fixed_5xx("GET /api/admin/aliases", s, &body);
    assert_clean("GET /api/admin/aliases", &body, secrets);
    let (s, body) = app.create("frontend", "during", "https://api.nexus.com/d").await;
    assert_fixed_5xx("POST /api/admin/aliases", s, &body);
    assert_clean("POST /api/admin/aliases", &body, secrets);
    let (s, body) = app.get("/api/admin/audit/verify").await;
    assert_fixed_5xx("GET /api/admin/audit/verify", s, &body);
    let (s, body) = app.get("/api/aliases/resolve/frontend/before").await;
    assert_fixed_5xx("resolve", s, &body);
    let (s, status) = app.call(Method::GET, "/api/aliases/status", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{status}");
    assert_eq!(status["status"]["health"], "degraded");
    for (what, body) in [("health", &health), ("status", &status)] {
        assert_clean(what, body, secrets);
    }
}

#[tokio::test]
async fn a_dropped_database_leaks_nothing_to_clients() {
    let app = spawn_app().await;
    assert_eq!(app.create("frontend", "before", "https://api.nexus.com/b").await.0, 201);
    // FORCE ends the pool's connections too; new ones find no database.
    admin_client()
        .await
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", app.db_name))
        .await
        .unwrap();
    probe(&app, &[&app.db_name, "127.0.0.1", "5432"]).await;
}

#[tokio::test]
async fn an_unreachable_database_leaks_nothing_to_clients() {
    let app = spawn_app_without_database("nexus_gone").await;
    let (addr, port, token) = (app.addr, app.port, app.token);
    let http = reqwest::Client::new();
    let secrets = ["nexus_gone", &port.to_string(), "127.0.0.1", "refused"];
    let get = |path: &str, auth: bool| {
        let req = http.get(format!("http://{addr}{path}"));
        let req = if auth { req.bearer_auth(&token) } else { req };
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let (s, health) = get("/api/aliases/health", false).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_clean("health", &health, &secrets);
    for path in ["/api/admin/aliases", "/api/admin/conflicts", "/api/admin/audit"] {
        let (s, body) = get(path, true).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body, json!({"error": "store_unavailable", "message": STORE_UNAVAILABLE}));
    }
    let (_, status) = get("/api/aliases/status", false).await;
    assert_clean("status", &status, &secrets);
}
