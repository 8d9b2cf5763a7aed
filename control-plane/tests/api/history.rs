//! Alias history and time-travel resolve, against the real control plane:
//! create, update (by another user), deactivate; then every version with
//! who, and `as_of` each version and an instant between two writes.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use nexus_harness::{GOVERNANCE, TestApp, spawn_app, spawn_app_with};
use nexus_protocol::Role;

const A: &str = "https://api.nexus.com/v1/checkout";
const B: &str = "https://api.nexus.com/v2/checkout";

/// Resolves with `as_of`: status, body, `x-nexus-version`.
async fn resolve_as_of(app: &TestApp, as_of: &str) -> (StatusCode, Value, Option<i64>) {
    let url = app.url("/api/aliases/resolve/frontend/checkout");
    let res =
        app.http.get(url).query(&[("as_of", as_of)]).bearer_auth(&app.admin).send().await.unwrap();
    let status = res.status();
    let version =
        res.headers().get("x-nexus-version").map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
    (status, res.json().await.unwrap(), version)
}

fn when(item: &Value) -> DateTime<Utc> {
    item["when"].as_str().unwrap().parse().unwrap()
}

/// Waits (bounded) until the clock has passed `t`, so the next write is
/// committed at a later millisecond.
async fn after(t: DateTime<Utc>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while Utc::now() <= t + Duration::milliseconds(2) {
        assert!(std::time::Instant::now() < deadline, "the clock did not move");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn history_lists_every_version_with_who_and_as_of_answers_each() {
    // frontend shared, so the editor may change root's alias (ownership has
    // its own tests, tests/api/ownership.rs).
    let shared = GOVERNANCE.replace(
        "  frontend:\n    require_description: false\n",
        "  frontend:\n    require_description: false\n    shared_ownership: true\n",
    );
    assert_ne!(shared, GOVERNANCE);
    let app = spawn_app_with(&shared).await;
    let (s, created) = app.create("frontend", "checkout", A).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let v1 = created["version"].as_i64().unwrap();
    after(created["updated_at"].as_str().unwrap().parse().unwrap()).await;

    let editor = app.token(Role::Editor, &["frontend"]);
    let (s, updated) = app
        .call(
            Method::PUT,
            "/api/admin/aliases/frontend/checkout",
            Some(&editor),
            Some(&json!({"canonical": B, "description": "v2"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    let v2 = updated["version"].as_i64().unwrap();
    let (s, _) = app.delete("/api/admin/aliases/frontend/checkout").await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let (s, page) = app.get("/api/admin/aliases/frontend/checkout/history").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{page}");
    let v3 = items[0]["version"].as_i64().unwrap();
    assert!(v3 > v2 && v2 > v1, "{page}");
    let col = |f: &str| items.iter().map(|i| i[f].clone()).collect::<Vec<_>>();
    assert_eq!(col("canonical"), [json!(B), json!(B), json!(A)]);
    assert_eq!(col("active"), [json!(false), json!(true), json!(true)]);
    assert_eq!(col("who"), [json!("root"), json!("Editor"), json!("root")]);
    assert_eq!(
        col("action"),
        [json!("alias.deactivate"), json!("alias.update"), json!("alias.create")]
    );
    assert_eq!(col("description"), [json!("v2"), json!("v2"), Value::Null]);
    // A change keeps the owner: root created it.
    assert_eq!(col("owner"), [json!("root"), json!("root"), json!("root")]);
    assert_eq!(page["next_before_version"], Value::Null);

    // Pages: two, then the rest.
    let (_, first) = app.get("/api/admin/aliases/frontend/checkout/history?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_before_version"], v2);
    let (_, rest) = app
        .get(&format!("/api/admin/aliases/frontend/checkout/history?limit=2&before_version={v2}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["version"], v1);
    assert_eq!(rest["next_before_version"], Value::Null);

    // Never existed: 404 with the usual body; another context's viewer: 403.
    let (s, body) = app.get("/api/admin/aliases/frontend/never/history").await;
    assert_eq!((s, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
    let viewer = app.token(Role::Viewer, &["backend"]);
    let (s, _) = app
        .call(Method::GET, "/api/admin/aliases/frontend/checkout/history", Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // as_of each version.
    let (s, b, v) = resolve_as_of(&app, &v1.to_string()).await;
    assert_eq!((s, b["canonical_name"].as_str(), v), (StatusCode::OK, Some(A), Some(v1)), "{b}");
    let (s, b, v) = resolve_as_of(&app, &v2.to_string()).await;
    assert_eq!((s, b["canonical_name"].as_str(), v), (StatusCode::OK, Some(B), Some(v2)), "{b}");
    let (s, b, _) = resolve_as_of(&app, &v3.to_string()).await;
    assert_eq!((s, b["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{b}");
    // And now, without as_of, exactly as before: gone.
    let (s, _) = app.get("/api/aliases/resolve/frontend/checkout").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An instant between the first two writes gives the first.
    let (t1, t2) = (when(&items[2]), when(&items[1]));
    assert!(t2 > t1, "{t1} {t2}");
    let between = t1 + (t2 - t1) / 2;
    let (s, b, v) = resolve_as_of(&app, &between.to_rfc3339()).await;
    assert_eq!((s, b["canonical_name"].as_str(), v), (StatusCode::OK, Some(A), Some(v1)), "{b}");
    let (s, b, v) = resolve_as_of(&app, &t2.to_rfc3339()).await;
    assert_eq!((s, b["canonical_name"].as_str(), v), (StatusCode::OK, Some(B), Some(v2)), "{b}");

    // Outside the window: above the head or in the future 400, before the
    // history kept 410; garbage 400.
    let rows = [
        ((v3 + 1).to_string(), StatusCode::BAD_REQUEST, "bad_request"),
        ((Utc::now() + Duration::hours(1)).to_rfc3339(), StatusCode::BAD_REQUEST, "bad_request"),
        ("yesterday".to_owned(), StatusCode::BAD_REQUEST, "bad_request"),
        ((t1 - Duration::hours(1)).to_rfc3339(), StatusCode::GONE, "gone"),
        ("0".to_owned(), StatusCode::GONE, "gone"),
    ];
    for (as_of, status, code) in rows {
        let (s, b, _) = resolve_as_of(&app, &as_of).await;
        assert_eq!((s, b["error"].as_str()), (status, Some(code)), "{as_of}: {b}");
    }
    // Pruned: once the outbox no longer holds v1, as_of v1 is 410.
    app.sql().await.execute("DELETE FROM changes WHERE version <= $1", &[&v1]).await.unwrap();
    let (s, b, _) = resolve_as_of(&app, &v1.to_string()).await;
    assert_eq!(s, StatusCode::GONE, "{b}");
    assert!(b["message"].as_str().unwrap().contains("history kept"), "{b}");
    let (s, b, _) = resolve_as_of(&app, &v2.to_string()).await;
    assert_eq!((s, b["canonical_name"].as_str()), (StatusCode::OK, Some(B)), "{b}");
}

#[tokio::test]
async fn history_names_the_importer_and_as_of_sees_a_recreated_alias() {
    let app = spawn_app().await;
    let body = json!({"aliases": [{"context": "frontend", "alias": "checkout", "canonical": A}]});
    let (s, r) = app.post("/api/admin/aliases/import", &body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, _) = app.delete("/api/admin/aliases/frontend/checkout").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, again) = app.create("frontend", "checkout", B).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");

    let (_, page) = app.get("/api/admin/aliases/frontend/checkout/history").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{page}");
    assert_eq!(items[2]["action"], "alias.import", "{page}");
    assert_eq!(items[2]["who"], "root");
    let head = items[0]["version"].as_i64().unwrap();
    let (s, b, v) = resolve_as_of(&app, &head.to_string()).await;
    assert_eq!((s, b["canonical_name"].as_str(), v), (StatusCode::OK, Some(B), Some(head)), "{b}");
}
