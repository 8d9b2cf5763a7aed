use nexus_control_plane::config::DbConfig;
use nexus_control_plane::domain::governance::Governance;
use nexus_control_plane::server::{self, StartError};
use nexus_control_plane::store::migrate::MIGRATIONS;
use nexus_control_plane::store::{SchemaState, Store};
use nexus_protocol::TokenVerifier;
use reqwest::StatusCode;

use nexus_harness::{
    GOVERNANCE, SECRET, drop_database, fresh_database, spawn_app_without_database, url_for,
};

#[tokio::test]
async fn migrate_twice_is_a_no_op_and_serve_refuses_a_behind_schema() {
    let db = fresh_database().await;
    let store = Store::new(&DbConfig::new(&url_for(&db))).unwrap();
    assert!(matches!(store.schema_state().await.unwrap(), SchemaState::Behind { .. }));
    let verifier = TokenVerifier::hs256(SECRET);
    let gov = Governance::from_yaml(GOVERNANCE).unwrap();
    let refused = server::prepare(store.clone(), verifier.clone(), gov.clone()).await.unwrap_err();
    assert!(matches!(refused, StartError::SchemaBehind(_)));
    assert!(refused.to_string().contains("run `nexus-control-plane migrate`"), "{refused}");

    let applied = store.migrate().await.unwrap();
    let all: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
    assert_eq!(applied, all);
    assert!(store.migrate().await.unwrap().is_empty());
    assert_eq!(store.schema_state().await.unwrap(), SchemaState::Current);
    assert!(server::prepare(store, verifier, gov).await.is_ok());
    drop_database(db);
}

#[tokio::test]
async fn a_database_that_is_down_answers_503_as_json() {
    let app = spawn_app_without_database("nexus").await;
    let (addr, token) = (app.addr, app.token);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("http://{addr}/api/admin/aliases"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"context":"frontend","alias":"a","canonical":"https://api.nexus.com/a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let e: serde_json::Value = res.json().await.unwrap();
    assert_eq!(e["error"], "store_unavailable");
    let res = http.get(format!("http://{addr}/api/aliases/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text =
        http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("nexus_cp_db_up 0"), "{text}");
}

#[tokio::test]
async fn recovers_by_itself_when_the_database_returns() {
    use nexus_harness::Proxy;
    use nexus_harness::{base_url, drop_database};

    let db = fresh_database().await;
    Store::new(&DbConfig::new(&url_for(&db))).unwrap().migrate().await.unwrap();
    let pg: tokio_postgres::Config = base_url().parse().unwrap();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let proxy = Proxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    let via = format!("postgres://postgres@{}/{db}", proxy.addr);
    let mut cfg = DbConfig::new(&via);
    cfg.timeout = std::time::Duration::from_millis(500);
    let store = Store::new(&cfg).unwrap();
    let state = server::prepare(
        store,
        TokenVerifier::hs256(SECRET),
        Governance::from_yaml(GOVERNANCE).unwrap(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, state, None, std::future::pending()));
    let http = reqwest::Client::new();
    let token = nexus_protocol::TokenSigner::hs256(SECRET).mint(
        "root",
        nexus_protocol::Role::Admin,
        nexus_protocol::ContextScope::All,
        chrono::Utc::now().timestamp(),
        60,
    );
    let create = |alias: &'static str| {
        http.post(format!("http://{addr}/api/admin/aliases"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"context":"frontend","alias":alias,"canonical":"https://api.nexus.com/a"}))
            .send()
    };
    let health = || http.get(format!("http://{addr}/api/aliases/health")).send();

    assert_eq!(create("before").await.unwrap().status(), StatusCode::CREATED);
    proxy.down();
    let res = create("during").await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health().await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.up();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while health().await.unwrap().status() != StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "did not recover");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(create("after").await.unwrap().status(), StatusCode::CREATED);

    // Nothing half-written: two aliases, versions 1 and 2, the chain intact.
    let direct = Store::new(&DbConfig::new(&url_for(&db))).unwrap();
    let stats = direct.stats().await.unwrap();
    assert_eq!((stats.active_aliases, stats.version), (2, 2));
    assert!(direct.verify_audit().await.unwrap().ok);
    drop(direct);
    drop_database(db);
}
