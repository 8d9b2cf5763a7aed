use reqwest::StatusCode;
use serde_json::json;

use nexus_harness::spawn_app;

fn entry(alias: &str, canonical: &str) -> serde_json::Value {
    json!({"context": "frontend", "alias": alias, "canonical": canonical})
}

#[tokio::test]
async fn reject_with_a_conflict_writes_nothing() {
    let app = spawn_app().await;
    app.create("frontend", "taken", "https://api.nexus.com/old").await;
    let body = json!({"aliases": [
        entry("fresh-1", "https://api.nexus.com/1"),
        entry("taken", "https://api.nexus.com/new"),
    ], "on_conflict": "reject"});
    let (s, e) = app.post("/api/admin/aliases/import", &body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"], "conflict");
    assert_eq!(e["conflicts"][0]["alias"], "taken");
    let (s, _) = app.get("/api/admin/aliases/frontend/fresh-1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let db = app.sql().await;
    let v: i64 = db.query_one("SELECT version FROM registry", &[]).await.unwrap().get(0);
    assert_eq!(v, 1);
}

#[tokio::test]
async fn dry_run_reports_and_writes_nothing() {
    let app = spawn_app().await;
    let body = json!({"aliases": [entry("a", "https://api.nexus.com/a"), entry("b", "https://api.nexus.com/b")],
                      "dry_run": true});
    let (s, r) = app.post("/api/admin/aliases/import", &body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["created"].as_u64(), r["dry_run"].as_bool()), (Some(2), Some(true)));
    let (_, list) = app.get("/api/admin/aliases").await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn skip_replace_and_yaml() {
    let app = spawn_app().await;
    app.create("frontend", "x", "https://api.nexus.com/old").await;
    let body = json!({"aliases": [entry("x", "https://api.nexus.com/new"), entry("y", "https://api.nexus.com/y")],
                      "on_conflict": "skip"});
    let (_, r) = app.post("/api/admin/aliases/import", &body).await;
    assert_eq!((r["created"].as_u64(), r["skipped"].as_u64()), (Some(1), Some(1)), "{r}");
    // The skipped entry is an open conflict that can still be chosen later.
    let (_, open) = app.get("/api/admin/conflicts?status=open").await;
    assert_eq!(open["items"][0]["alias"], "x");
    assert_eq!(open["items"][0]["incoming"]["canonical"], "https://api.nexus.com/new");
    let body = json!({"aliases": [entry("x", "https://api.nexus.com/new"), entry("y", "https://api.nexus.com/y")],
                      "on_conflict": "replace"});
    let (_, r) = app.post("/api/admin/aliases/import", &body).await;
    assert_eq!((r["updated"].as_u64(), r["unchanged"].as_u64()), (Some(1), Some(1)), "{r}");
    let (_, x) = app.get("/api/admin/aliases/frontend/x").await;
    assert_eq!(x["canonical"], "https://api.nexus.com/new");
    assert_eq!(x["version"], 3);

    let yaml = "aliases:\n  - context: backend\n    alias: from-yaml\n    canonical: https://api.nexus.com/y\n";
    let res = app
        .http
        .post(app.url("/api/admin/aliases/import"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (s, _) = app.get("/api/aliases/resolve/backend/from-yaml").await;
    assert_eq!(s, StatusCode::OK);
    // The outbox holds one row per version, each a full record.
    let db = app.sql().await;
    let n: i64 = db.query_one("SELECT count(*) FROM changes", &[]).await.unwrap().get(0);
    let v: i64 = db.query_one("SELECT version FROM registry", &[]).await.unwrap().get(0);
    assert_eq!((n, v), (4, 4));
}

#[tokio::test]
async fn bad_entries_are_refused_whole() {
    let app = spawn_app().await;
    let dup = json!({"aliases": [entry("d", "https://api.nexus.com/1"), entry("D", "https://api.nexus.com/2")]});
    let (s, _) = app.post("/api/admin/aliases/import", &dup).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let gov = json!({"aliases": [entry("ok", "https://api.nexus.com/1"), entry("admin", "https://api.nexus.com/2")]});
    let (s, e) = app.post("/api/admin/aliases/import", &gov).await;
    assert_eq!((s, e["rule"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reserved_names")));
    let (_, list) = app.get("/api/admin/aliases").await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn twenty_thousand_aliases_in_one_request_past_the_default_body_limit() {
    let app = spawn_app().await;
    let aliases: Vec<_> = (0..20_000)
        .map(|i| {
            let mut e = entry(&format!("bulk-{i}"), &format!("https://api.nexus.com/{i}"));
            e["description"] = json!(format!("bulk alias number {i} of the import test"));
            e
        })
        .collect();
    let body = json!({"aliases": aliases});
    assert!(body.to_string().len() > nexus_control_plane::api::BODY_LIMIT);
    let started = std::time::Instant::now();
    let (s, r) = app.post("/api/admin/aliases/import", &body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["created"], 20_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let (_, m) = app.get("/api/aliases/metrics").await;
    assert_eq!(m["metrics"]["active_aliases"], 20_000);
}
