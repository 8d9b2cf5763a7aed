use reqwest::{Method, StatusCode};
use serde_json::json;

use nexus_harness::spawn_app;

const CANON: &str = "https://api.nexus.com/v1/users/profile";

#[tokio::test]
async fn create_get_update_list_deactivate() {
    let app = spawn_app().await;
    let (s, a) = app.create("frontend", "user-profile", CANON).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["canonical"], CANON);
    assert_eq!(a["created_by"], "root");
    assert_eq!(a["version"], 1);
    // The create's outbox record (built in Rust) is what the SQL definition
    // used by every other write path gives for the same row.
    let db = app.sql().await;
    let same: bool = db
        .query_one(
            "SELECT c.record = alias_record(a) FROM changes c JOIN aliases a ON a.version = c.version",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);

    let (s, got) = app.get("/api/admin/aliases/frontend/user-profile").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["id"], a["id"]);

    let (s, up) = app
        .put(
            "/api/admin/aliases/frontend/user-profile",
            &json!({"canonical": "https://api.nexus.com/v2/profile", "description": "v2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{up}");
    assert_eq!(up["description"], "v2");
    assert_eq!(up["version"], 2);

    let (s, r) = app.get("/api/aliases/resolve/frontend/user-profile").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["canonical_name"], "https://api.nexus.com/v2/profile");

    for i in 0..5 {
        app.create("backend", &format!("svc-{i}"), "https://api.nexus.com/svc").await;
    }
    let (_, page) = app.get("/api/admin/aliases?context=backend&limit=3").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) =
        app.get(&format!("/api/admin/aliases?context=backend&limit=3&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let (_, found) = app.get("/api/admin/aliases?q=svc-3").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);

    let (s, _) = app.delete("/api/admin/aliases/frontend/user-profile").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = app.get("/api/aliases/resolve/frontend/user-profile").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["error"], "not_found");
    let (s, _) = app.delete("/api/admin/aliases/frontend/user-profile").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, inactive) = app.get("/api/admin/aliases?active=false").await;
    assert_eq!(inactive["items"][0]["alias"], "user-profile");

    // The outbox has one self-sufficient row per version, in order.
    let rows = db.query("SELECT version, record FROM changes ORDER BY version", &[]).await.unwrap();
    assert_eq!(rows.len(), 8);
    let last: serde_json::Value = rows[7].get(1);
    let rec: nexus_protocol::AliasRecord = serde_json::from_value(last).unwrap();
    assert!(!rec.is_active);
    assert_eq!(rec.version, 8);
}

#[tokio::test]
async fn expired_aliases_do_not_resolve() {
    let app = spawn_app().await;
    let (s, _) = app
        .post(
            "/api/admin/aliases",
            &json!({"context":"frontend","alias":"brief","canonical":CANON,
                    "expires_at": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(app.get("/api/aliases/resolve/frontend/brief").await.0, StatusCode::OK);
    // Time passes (moved in the database rather than waited for).
    let db = app.sql().await;
    db.execute("UPDATE aliases SET expires_at = now() - interval '1 minute'", &[]).await.unwrap();
    let (s, e) = app.get("/api/aliases/resolve/frontend/brief").await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, e) = app.get("/api/aliases/resolve/nowhere/brief").await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unknown_context")));
}

#[tokio::test]
async fn governance_rules_refuse_with_their_names() {
    let app = spawn_app().await;
    let cases = [
        (json!({"context":"frontend","alias":"admin","canonical":CANON}), "reserved_names"),
        (
            json!({"context":"frontend","alias":"x","canonical":"javascript:alert(1)"}),
            "allowed_schemes",
        ),
        (
            json!({"context":"frontend","alias":"x","canonical":"http://api.nexus.com/a"}),
            "allowed_schemes",
        ),
        (
            json!({"context":"frontend","alias":"x","canonical":"https://u:p@api.nexus.com/a"}),
            "no_credentials",
        ),
        (
            json!({"context":"frontend","alias":"x","canonical":"https://evil.example/a"}),
            "allowed_hosts",
        ),
        (json!({"context":"frontend","alias":"x","canonical":"nota-url"}), "canonical_url"),
        (json!({"context":"elsewhere","alias":"x","canonical":CANON}), "known_context"),
        (
            json!({"context":"frontend","alias":"x","canonical":CANON,
                "expires_at":"2099-01-01T00:00:00Z"}),
            "max_ttl_days",
        ),
        (
            json!({"context":"frontend","alias":"x","canonical":CANON,
                "expires_at":"2001-01-01T00:00:00Z"}),
            "expires_at_future",
        ),
        (
            json!({"context":"frontend","alias":"x",
                "canonical":format!("https://api.nexus.com/{}", "a".repeat(600))}),
            "max_canonical_length",
        ),
    ];
    for (body, rule) in cases {
        let (s, e) = app.post("/api/admin/aliases", &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {e}");
        assert_eq!(e["error"], "governance_violation");
        assert_eq!(e["rule"], rule, "{body}");
    }
    // Rules change at run time: require descriptions and a pattern.
    let (_, mut doc) = app.get("/api/admin/governance").await;
    doc["contexts"]["frontend"]["require_description"] = json!(true);
    doc["contexts"]["frontend"]["alias_pattern"] = json!("^fe-[a-z]+$");
    let (s, _) = app.put("/api/admin/governance", &doc).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = app.create("frontend", "fe-ok", CANON).await;
    assert_eq!(
        (s, e["rule"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("require_description"))
    );
    let (s, e) = app
        .post(
            "/api/admin/aliases",
            &json!({"context":"frontend","alias":"nope","canonical":CANON,"description":"d"}),
        )
        .await;
    assert_eq!((s, e["rule"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("alias_pattern")));
    let (s, _) = app
        .post(
            "/api/admin/aliases",
            &json!({"context":"frontend","alias":"fe-ok","canonical":CANON,"description":"d"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A bad rules document is refused and changes nothing.
    doc["defaults"]["allowed_schemes"] = json!(["javascript"]);
    let (s, e) = app.put("/api/admin/governance", &doc).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
}

#[tokio::test]
async fn malformed_unknown_and_oversized_input_is_refused_as_json() {
    let app = spawn_app().await;
    let raw = |body: String| {
        app.http
            .post(app.url("/api/admin/aliases"))
            .bearer_auth(&app.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let res = raw("{\"context\":".into()).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = res.json().await.unwrap();
    assert_eq!(e["error"], "bad_request");

    let (s, e) = app
        .post(
            "/api/admin/aliases",
            &json!({"context":"frontend","alias":"a","canonical":CANON,"canonnical":"x"}),
        )
        .await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{e}");
    let (s, _) = app.create("frontend", "a/b", CANON).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.create("frontend", "a", "https://api.nexus.com/a b").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let big = format!(
        "{{\"context\":\"frontend\",\"alias\":\"a\",\"canonical\":\"{CANON}\",\"description\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let res = raw(big).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e: serde_json::Value = res.json().await.unwrap();
    assert_eq!(e["error"], "payload_too_large");

    let (s, e) = app.get("/api/admin/aliases?limit=999999").await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    let (s, e) = app.get("/api/admin/aliases?bogus=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e) = app.call(Method::GET, "/nowhere", None, None).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, e) = app.call(Method::PATCH, "/api/admin/aliases", Some(&app.admin), None).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn parallel_writers_get_gap_free_versions_in_commit_order() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8 {
        let app = app.clone();
        set.spawn(async move {
            for i in 0..10 {
                let (s, _) = app.create("backend", &format!("w{w}-{i}"), CANON).await;
                assert_eq!(s, StatusCode::CREATED);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let db = app.sql().await;
    let rows =
        db.query("SELECT version, committed_at FROM changes ORDER BY version", &[]).await.unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=80).collect::<Vec<i64>>());
    // Commit order is version order: the audit chain (appended under the
    // same lock) lists the creates in version order too.
    let audit = db
        .query(
            "SELECT (after_state->>'version')::BIGINT FROM audit_logs \
             WHERE action = 'alias.create' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let in_chain: Vec<i64> = audit.iter().map(|r| r.get(0)).collect();
    assert_eq!(in_chain, versions);
    let reg: i64 = db.query_one("SELECT version FROM registry", &[]).await.unwrap().get(0);
    assert_eq!(reg, 80);
}

#[tokio::test]
async fn a_governance_change_reaches_every_control_plane() {
    use nexus_control_plane::domain::governance::Governance;
    use nexus_control_plane::server;

    let app = spawn_app().await;
    // A second control plane on the same database.
    let state = server::prepare(
        app.store.clone(),
        nexus_protocol::TokenVerifier::hs256(nexus_harness::SECRET),
        Governance::from_yaml(nexus_harness::GOVERNANCE).unwrap(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, state, None, std::future::pending()));

    let (_, mut doc) = app.get("/api/admin/governance").await;
    doc["contexts"]["frontend"]["require_description"] = json!(true);
    assert_eq!(app.put("/api/admin/governance", &doc).await.0, StatusCode::OK);
    // The other instance answers the rules it enforces: wait until they
    // are the new ones, then check it enforces them.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let res = app
            .http
            .get(format!("http://{other}/api/admin/governance"))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let rules: serde_json::Value = res.json().await.unwrap();
        if rules["contexts"]["frontend"]["require_description"] == json!(true) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the change never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let res = app
        .http
        .post(format!("http://{other}/api/admin/aliases"))
        .bearer_auth(&app.admin)
        .json(&json!({"context":"frontend","alias":"undescribed","canonical":CANON}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: serde_json::Value = res.json().await.unwrap();
    assert_eq!(e["rule"], "require_description");
}
