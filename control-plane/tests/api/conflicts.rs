use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use nexus_harness::spawn_app;

#[tokio::test]
async fn sixteen_racing_writers_one_wins() {
    let app = Arc::new(spawn_app().await);
    let mut set = tokio::task::JoinSet::new();
    for w in 0..16 {
        let app = app.clone();
        set.spawn(async move {
            app.create("frontend", "contested", &format!("https://api.nexus.com/w{w}")).await.0
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = set.join_next().await {
        statuses.push(r.unwrap());
    }
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 15), "{statuses:?}");
    let db = app.sql().await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM aliases WHERE alias = 'contested' AND is_active", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let (_, open) = app.get("/api/admin/conflicts?status=open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 15);
}

#[tokio::test]
async fn duplicate_idempotent_and_normalisation() {
    let app = spawn_app().await;
    let a = "https://api.nexus.com/a";
    assert_eq!(app.create("frontend", "user-profile", a).await.0, StatusCode::CREATED);
    // The very same create again is an idempotent success.
    let (s, same) = app.create("frontend", "user-profile", a).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(same["version"], 1);
    // Another target: 409 with the conflict recorded and the existing alias.
    let (s, e) = app.create("frontend", "user-profile", "https://api.nexus.com/b").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"], "conflict");
    assert_eq!(e["existing"]["canonical"], a);
    assert!(e["conflict_id"].as_i64().unwrap() > 0);
    // Typed in another case: a normalisation conflict, even with the same target.
    let (s, e) = app.create("frontend", "User-Profile", a).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["conflict_type"], "normalization");
    let (_, list) = app.get("/api/admin/conflicts").await;
    let types: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conflict_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["normalization", "duplicate"]);
}

#[tokio::test]
async fn shadowing_follows_the_context_policy() {
    let app = spawn_app().await;
    let a = "https://api.nexus.com/a";
    assert_eq!(app.create("frontend", "shared", a).await.0, StatusCode::CREATED);
    // backend: record (default) — written, and an open shadowing conflict.
    assert_eq!(app.create("backend", "shared", a).await.0, StatusCode::CREATED);
    let (_, list) = app.get("/api/admin/conflicts?status=open").await;
    assert_eq!(list["items"][0]["conflict_type"], "shadowing");
    assert_eq!(list["items"][0]["context"], "backend");
    // system: allow — nothing recorded.
    assert_eq!(app.create("system", "shared", a).await.0, StatusCode::CREATED);
    let (_, list) = app.get("/api/admin/conflicts").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // reject, once the policy says so.
    let (_, mut doc) = app.get("/api/admin/governance").await;
    doc["contexts"]["system"]["shadowing"] = json!("reject");
    app.put("/api/admin/governance", &doc).await;
    let (s, e) = app.create("system", "other", a).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    app.create("frontend", "other2", a).await;
    let (s, e) = app.create("system", "other2", a).await;
    assert_eq!((s, e["conflict_type"].as_str()), (StatusCode::CONFLICT, Some("shadowing")));
}

#[tokio::test]
async fn resolving_applies_the_choice_and_is_audited() {
    let app = spawn_app().await;
    app.create("frontend", "pay", "https://api.nexus.com/old").await;
    let (_, e1) = app.create("frontend", "pay", "https://api.nexus.com/new").await;
    let (_, e2) = app.create("frontend", "pay", "https://api.nexus.com/newer").await;
    let (id1, id2) = (e1["conflict_id"].as_i64().unwrap(), e2["conflict_id"].as_i64().unwrap());

    let (s, c) = app
        .post(
            &format!("/api/admin/conflicts/{id1}/resolve"),
            &json!({"resolution":"keep_existing"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["resolution"], "keep_existing");
    assert!(c["resolved_at"].is_string());
    let (_, r) = app.get("/api/aliases/resolve/frontend/pay").await;
    assert_eq!(r["canonical_name"], "https://api.nexus.com/old");

    let (s, _) = app
        .post(&format!("/api/admin/conflicts/{id2}/resolve"), &json!({"resolution":"use_incoming"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = app.get("/api/admin/aliases/frontend/pay").await;
    assert_eq!(r["canonical"], "https://api.nexus.com/newer");
    assert_eq!(r["version"], 2);

    let (s, e) = app
        .post(&format!("/api/admin/conflicts/{id2}/resolve"), &json!({"resolution":"use_incoming"}))
        .await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::CONFLICT, Some("already_resolved")));
    let (s, _) = app
        .post("/api/admin/conflicts/99999/resolve", &json!({"resolution":"keep_existing"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(&format!("/api/admin/conflicts/{id1}/resolve"), &json!({"resolution":"merge"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, audit) = app.get("/api/admin/audit?action=conflict.resolve").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
}
