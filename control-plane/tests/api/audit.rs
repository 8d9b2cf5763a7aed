use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use nexus_harness::{TestApp, spawn_app};

const CANON: &str = "https://api.nexus.com/x";

async fn verify(app: &TestApp) -> Value {
    let (s, v) = app.get("/api/admin/audit/verify").await;
    assert_eq!(s, StatusCode::OK);
    v
}

async fn with_history() -> TestApp {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create("frontend", &format!("a{i}"), CANON).await;
    }
    app
}

#[tokio::test]
async fn every_mutation_is_audited_with_its_request_id() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(app.url("/api/admin/aliases"))
        .bearer_auth(&app.admin)
        .header("x-request-id", "req-123")
        .json(&serde_json::json!({"context":"frontend","alias":"a","canonical":CANON}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["x-request-id"], "req-123");
    app.delete("/api/admin/aliases/frontend/a").await;
    let (_, rows) = app.get("/api/admin/audit?actor=root").await;
    let rows = rows["items"].as_array().unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["alias.create", "alias.deactivate"]);
    assert_eq!(rows[0]["request_id"], "req-123");
    assert_eq!(rows[0]["user"], "root");
    assert_eq!(rows[1]["before"]["is_active"], true);
    assert_eq!(rows[1]["after"]["is_active"], false);
    // Generated when absent.
    assert_eq!(rows[1]["request_id"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn intact_chain_verifies() {
    let app = with_history().await;
    let v = verify(&app).await;
    assert_eq!(v["ok"], true, "{v}");
    // 5 creates + the governance load at start.
    assert_eq!(v["checked"], 6);
    assert!(v["first_bad_id"].is_null());
}

#[tokio::test]
async fn edited_row_is_found() {
    let app = with_history().await;
    let db = app.sql().await;
    let id: i32 = db
        .query_one("SELECT id FROM audit_logs ORDER BY id OFFSET 3 LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    db.execute(r#"UPDATE audit_logs SET "user" = 'mallory' WHERE id = $1"#, &[&id]).await.unwrap();
    let v = verify(&app).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad_id"].as_i64()), (Some(false), Some(i64::from(id))));
}

#[tokio::test]
async fn deleted_rows_are_found_in_the_middle_and_at_the_tail() {
    let app = with_history().await;
    let db = app.sql().await;
    let ids: Vec<i32> = db
        .query("SELECT id FROM audit_logs ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    db.execute("DELETE FROM audit_logs WHERE id = $1", &[&ids[2]]).await.unwrap();
    let v = verify(&app).await;
    assert_eq!(
        (v["ok"].as_bool(), v["first_bad_id"].as_i64()),
        (Some(false), Some(i64::from(ids[3])))
    );

    let app = with_history().await;
    let db = app.sql().await;
    db.execute("DELETE FROM audit_logs WHERE id = (SELECT max(id) FROM audit_logs)", &[])
        .await
        .unwrap();
    assert_eq!(verify(&app).await["ok"], false);
}

#[tokio::test]
async fn swapped_rows_are_found() {
    let app = with_history().await;
    let db = app.sql().await;
    let ids: Vec<i32> = db
        .query("SELECT id FROM audit_logs ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (a, b) = (ids[2], ids[3]);
    db.batch_execute(&format!(
        "UPDATE audit_logs SET id = -1 WHERE id = {a};
         UPDATE audit_logs SET id = {a} WHERE id = {b};
         UPDATE audit_logs SET id = {b} WHERE id = -1;"
    ))
    .await
    .unwrap();
    let v = verify(&app).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad_id"].as_i64()), (Some(false), Some(i64::from(a))));
}

#[tokio::test]
async fn retention_archives_purges_and_keeps_the_chain_verifiable() {
    let app = with_history().await;
    // Nothing is old yet.
    let r = app.store.retain_audit(Utc::now(), 1, 2).await.unwrap();
    assert_eq!((r.archived, r.purged), (0, 0));
    // A day and a half later: everything archived, nothing purged.
    let r = app.store.retain_audit(Utc::now() + Duration::hours(36), 1, 2).await.unwrap();
    assert_eq!((r.archived, r.purged), (6, 0));
    let (_, rows) = app.get("/api/admin/audit").await;
    assert_eq!(rows["items"][0]["is_archived"], true);
    assert_eq!(verify(&app).await["ok"], true);
    // Three days later: the old rows are gone, the chain still verifies from
    // its new anchor, and the passes themselves are audited.
    let r = app.store.retain_audit(Utc::now() + Duration::days(3), 1, 2).await.unwrap();
    assert_eq!(r.purged, 7);
    app.create("frontend", "after-purge", CANON).await;
    let v = verify(&app).await;
    assert_eq!(v["ok"], true, "{v}");
    let (_, rows) = app.get("/api/admin/audit").await;
    let actions: Vec<&str> =
        rows["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["audit.retention", "alias.create"]);
}
