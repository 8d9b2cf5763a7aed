//! Export gives the declarative file import takes: active aliases only,
//! sorted, at a registry version; export → dry-run import changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use nexus_harness::{TestApp, spawn_app};
use nexus_protocol::{AliasFile, Role};

async fn export(
    app: &TestApp,
    query: &str,
    accept: Option<&str>,
    token: &str,
) -> (StatusCode, String, String, Option<i64>) {
    let mut req = app.http.get(app.url(&format!("/api/admin/export{query}"))).bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let version =
        res.headers().get("x-nexus-version").map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
    (status, kind, res.text().await.unwrap(), version)
}

fn keys(file: &AliasFile) -> Vec<String> {
    file.aliases.iter().map(|e| format!("{}/{}", e.context, e.alias)).collect()
}

#[tokio::test]
async fn export_round_trips_through_a_dry_run_import_with_no_changes() {
    let app = spawn_app().await;
    for (c, a) in
        [("frontend", "zeta"), ("frontend", "alpha"), ("backend", "orders"), ("frontend", "gone")]
    {
        let (s, b) = app.create(c, a, &format!("https://api.nexus.com/{c}/{a}")).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    // Microseconds: the file must carry the stored instant exactly.
    let expires = (chrono::Utc::now() + chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (s, b) = app
        .post(
            "/api/admin/aliases",
            &json!({"context": "system", "alias": "described", "canonical": "https://api.nexus.com/d",
                    "description": "with: a colon, and \"quotes\"",
                    "expires_at": expires}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = app.delete("/api/admin/aliases/frontend/gone").await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // YAML by default, at the head version, active only, sorted.
    let (s, kind, yaml, version) = export(&app, "", None, &app.admin).await;
    assert_eq!(s, StatusCode::OK, "{yaml}");
    assert_eq!(kind, "application/yaml");
    let (_, stats) = app.get("/api/aliases/metrics").await;
    assert_eq!(version, stats["metrics"]["registry_version"].as_i64());
    let file = AliasFile::parse(&yaml).unwrap();
    assert_eq!(
        keys(&file),
        ["backend/orders", "frontend/alpha", "frontend/zeta", "system/described"],
        "{yaml}"
    );

    // The same file, as YAML and as JSON, imports as a no-op.
    let res = app
        .http
        .post(app.url("/api/admin/aliases/import?dry_run=true"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/yaml")
        .body(yaml.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let report: Value = res.json().await.unwrap();
    let none = |r: &Value| {
        (r["created"].clone(), r["updated"].clone(), r["skipped"].clone(), r["conflicts"].clone())
    };
    assert_eq!(none(&report), (json!(0), json!(0), json!(0), json!([])), "{report}");
    assert_eq!(report["unchanged"], 4, "{report}");

    let (s, _, text, _) = export(&app, "", Some("application/json"), &app.admin).await;
    assert_eq!(s, StatusCode::OK);
    let mut body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(AliasFile::parse(&text).unwrap(), file);
    body["dry_run"] = json!(true);
    let (s, report) = app.post("/api/admin/aliases/import", &body).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(none(&report), (json!(0), json!(0), json!(0), json!([])), "{report}");

    // Contexts: repeated or comma-separated; a scoped viewer sees only its
    // own, and is refused another's.
    let (_, _, y, _) = export(&app, "?context=frontend", None, &app.admin).await;
    assert_eq!(keys(&AliasFile::parse(&y).unwrap()), ["frontend/alpha", "frontend/zeta"]);
    let (_, _, y, _) = export(&app, "?context=system,backend", None, &app.admin).await;
    assert_eq!(keys(&AliasFile::parse(&y).unwrap()), ["backend/orders", "system/described"]);
    let (_, _, y, _) = export(&app, "?context=system&context=backend", None, &app.admin).await;
    assert_eq!(keys(&AliasFile::parse(&y).unwrap()), ["backend/orders", "system/described"]);
    let viewer = app.token(Role::Viewer, &["backend"]);
    let (s, _, y, _) = export(&app, "", None, &viewer).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys(&AliasFile::parse(&y).unwrap()), ["backend/orders"]);
    let (s, _, _, _) = export(&app, "?context=frontend", None, &viewer).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body, _) = export(&app, "?contexts=frontend", None, &app.admin).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
}
