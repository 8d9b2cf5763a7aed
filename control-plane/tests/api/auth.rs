use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use nexus_protocol::Role;

const CANON: &str = "https://api.nexus.com/x";

/// Every admin route × role, with a token scoped to `frontend`. The answer
/// is either "allowed" (anything but 401/403) or 403.
#[tokio::test]
async fn rbac_table_over_every_route() {
    let app = spawn_app().await;
    app.create("frontend", "fe", CANON).await;
    app.create("backend", "be", CANON).await;
    let (_, c) = app.create("frontend", "fe", "https://api.nexus.com/other").await;
    let conflict = c["conflict_id"].as_i64().unwrap();
    let (_, gov) = app.get("/api/admin/governance").await;

    struct Route {
        method: Method,
        path: String,
        body: Option<Value>,
        // admin, editor, viewer, resolver
        allowed: [bool; 4],
    }
    let r = |method: Method, path: &str, body: Option<Value>, allowed: [bool; 4]| Route {
        method,
        path: path.to_owned(),
        body,
        allowed,
    };
    let routes = vec![
        r(Method::GET, "/api/aliases/resolve/frontend/fe", None, [true, true, true, true]),
        r(Method::GET, "/api/aliases/resolve/backend/be", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/aliases?context=frontend", None, [true, true, true, false]),
        r(Method::GET, "/api/admin/aliases?context=backend", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/aliases", None, [true, true, true, false]),
        r(Method::GET, "/api/admin/aliases/frontend/fe", None, [true, true, true, false]),
        r(Method::GET, "/api/admin/aliases/backend/be", None, [true, false, false, false]),
        r(
            Method::POST,
            "/api/admin/aliases",
            Some(json!({"context":"frontend","alias":"new","canonical":CANON})),
            [true, true, false, false],
        ),
        r(
            Method::POST,
            "/api/admin/aliases",
            Some(json!({"context":"backend","alias":"new","canonical":CANON})),
            [true, false, false, false],
        ),
        r(
            Method::PUT,
            "/api/admin/aliases/frontend/fe",
            Some(json!({"description":"d"})),
            [true, true, false, false],
        ),
        r(
            Method::POST,
            "/api/admin/aliases/import",
            Some(
                json!({"aliases":[{"context":"frontend","alias":"imp","canonical":CANON}],"dry_run":true}),
            ),
            [true, true, false, false],
        ),
        r(Method::GET, "/api/admin/conflicts", None, [true, true, true, false]),
        r(
            Method::POST,
            &format!("/api/admin/conflicts/{conflict}/resolve"),
            Some(json!({"resolution":"keep_existing"})),
            [true, true, false, false],
        ),
        r(Method::GET, "/api/admin/audit", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/audit/verify", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/governance", None, [true, false, false, false]),
        r(Method::PUT, "/api/admin/governance", Some(gov.clone()), [true, false, false, false]),
        r(
            Method::POST,
            "/api/admin/api-keys",
            Some(json!({"name":"k","role":"viewer","contexts":["frontend"]})),
            [true, false, false, false],
        ),
        r(Method::DELETE, "/api/admin/api-keys/424242", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/edges", None, [true, false, false, false]),
        r(Method::DELETE, "/api/admin/aliases/frontend/fe", None, [true, true, false, false]),
    ];
    let roles = [Role::Admin, Role::Editor, Role::Viewer, Role::Resolver];
    // Writes go last for each role so earlier checks see the same data; the
    // admin (allowed everything) runs last.
    for (i, role) in roles.iter().enumerate().rev() {
        let token = app.token(*role, &["frontend"]);
        for route in &routes {
            let (s, body) = app
                .call(route.method.clone(), &route.path, Some(&token), route.body.as_ref())
                .await;
            if route.allowed[i] {
                assert!(
                    s != StatusCode::FORBIDDEN && s != StatusCode::UNAUTHORIZED,
                    "{role:?} {} {} → {s} {body}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    s,
                    StatusCode::FORBIDDEN,
                    "{role:?} {} {} → {body}",
                    route.method,
                    route.path
                );
                assert_eq!(body["error"], "forbidden");
            }
        }
    }
}

#[tokio::test]
async fn listings_are_narrowed_to_the_callers_contexts() {
    let app = spawn_app().await;
    app.create("frontend", "fe", CANON).await;
    app.create("backend", "be", CANON).await;
    app.create("backend", "be", "https://api.nexus.com/other").await;
    let viewer = app.token(Role::Viewer, &["frontend"]);
    let (s, list) = app.call(Method::GET, "/api/admin/aliases", Some(&viewer), None).await;
    assert_eq!(s, StatusCode::OK);
    let contexts: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|a| a["context"].as_str().unwrap()).collect();
    assert_eq!(contexts, ["frontend"]);
    let (_, conflicts) = app.call(Method::GET, "/api/admin/conflicts", Some(&viewer), None).await;
    assert!(conflicts["items"].as_array().unwrap().is_empty());
    let (_, all) = app.get("/api/admin/conflicts").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn missing_bad_and_expired_credentials_are_401() {
    let app = spawn_app().await;
    let path = "/api/admin/aliases";
    let (s, e) = app.call(Method::GET, path, None, None).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (s, _) = app.call(Method::GET, path, Some("not-a-token"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let other = nexus_protocol::TokenSigner::hs256(b"another-secret-another-secret-123456");
    let forged = other.mint(
        "x",
        Role::Admin,
        nexus_protocol::ContextScope::All,
        chrono::Utc::now().timestamp(),
        60,
    );
    let (s, _) = app.call(Method::GET, path, Some(&forged), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let expired = app.signer.mint(
        "x",
        Role::Admin,
        nexus_protocol::ContextScope::All,
        chrono::Utc::now().timestamp() - 3600,
        60,
    );
    let (s, _) = app.call(Method::GET, path, Some(&expired), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Service endpoints are open.
    let (s, h) = app.call(Method::GET, "/api/aliases/health", None, None).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("nexus_cp_db_up 1"), "{text}");
    assert!(text.contains("nexus_cp_http_requests_total"), "{text}");
    // PROMETHEUS_ENABLED=false (what `serve` stores at start) hides it.
    app.state.prometheus_enabled.store(false, std::sync::atomic::Ordering::Relaxed);
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_key_lifecycle() {
    let app = spawn_app().await;
    let (s, k) = app
        .post("/api/admin/api-keys", &json!({"name":"ci","role":"editor","contexts":["frontend"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("nxk_") && key.len() >= 4 + 43);
    let id = k["id"].as_i64().unwrap();

    let body = json!({"context":"frontend","alias":"by-key","canonical":CANON});
    let (s, a) = app.call(Method::POST, "/api/admin/aliases", Some(&key), Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["created_by"], format!("api_key:{id}:ci"));
    let body = json!({"context":"backend","alias":"by-key","canonical":CANON});
    let (s, _) = app.call(Method::POST, "/api/admin/aliases", Some(&key), Some(&body)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Only the digest is stored.
    let db = app.sql().await;
    let stored: Vec<u8> =
        db.query_one("SELECT key_digest FROM api_keys", &[]).await.unwrap().get(0);
    assert_eq!(stored.len(), 32);
    let (_, audit) = app.get("/api/admin/audit?limit=1000").await;
    assert!(!audit.to_string().contains(&key[4..]));

    let (s, _) = app.delete(&format!("/api/admin/api-keys/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = app.call(Method::GET, "/api/admin/aliases", Some(&key), None).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (s, _) = app.delete(&format!("/api/admin/api-keys/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let forged = format!("nxk_{}", "A".repeat(43));
    let (s, _) = app.call(Method::GET, "/api/admin/aliases", Some(&forged), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
