//! `spawn_app()`: the control plane's admin API in-process on port 0, on a
//! fresh database (migrations applied), tokens for every role. The
//! database is dropped when the app is.

use std::net::SocketAddr;

use chrono::Utc;
use nexus_control_plane::config::DbConfig;
use nexus_control_plane::domain::governance::Governance;
use nexus_control_plane::server;
use nexus_control_plane::store::Store;
use nexus_control_plane::web::Shared;
use nexus_protocol::{Context, ContextScope, Role, TokenSigner, TokenVerifier};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::database::{drop_database, fresh_database, url_for};

/// The HS256 secret every rig signs and verifies tokens with (the control
/// plane's and the edges' alike, so one token works on both).
pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret-0123";
/// The built-in governance rules, as `deploy/` ships them.
pub const GOVERNANCE: &str = include_str!("../../../deploy/config/alias_governance.yaml");

#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub signer: TokenSigner,
    pub store: Store,
    pub db_name: String,
    pub admin: String,
    /// The running server's state (propagation tests attach Redis to it).
    pub state: Shared,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        drop_database(self.db_name.clone());
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(GOVERNANCE).await
}

pub async fn spawn_app_with(governance: &str) -> TestApp {
    let db_name = fresh_database().await;
    let store = Store::new(&DbConfig::new(&url_for(&db_name))).unwrap();
    store.migrate().await.unwrap();
    let verifier = TokenVerifier::hs256(SECRET);
    let gov = Governance::from_yaml(governance).unwrap();
    let state = server::prepare(store.clone(), verifier, gov).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, state.clone(), None, async move {
        let _ = stopped.await;
    }));
    let signer = TokenSigner::hs256(SECRET);
    let admin = signer.mint("root", Role::Admin, ContextScope::All, Utc::now().timestamp(), 600);
    TestApp {
        addr,
        http: reqwest::Client::new(),
        signer,
        store,
        db_name,
        admin,
        state,
        stop: Some(stop),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn token(&self, role: Role, contexts: &[&str]) -> String {
        let scope = if contexts == ["*"] {
            ContextScope::All
        } else {
            ContextScope::Only(contexts.iter().map(|c| Context::parse(c).unwrap()).collect())
        };
        self.signer.mint(&format!("{role:?}"), role, scope, Utc::now().timestamp(), 600)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(&self.admin.clone()), None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, Some(&self.admin.clone()), None).await
    }

    pub async fn create(&self, context: &str, alias: &str, canonical: &str) -> (StatusCode, Value) {
        let body = serde_json::json!({"context": context, "alias": alias, "canonical": canonical});
        self.post("/api/admin/aliases", &body).await
    }

    /// A direct connection to this app's database, for checks and tampering.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (c, conn) =
            tokio_postgres::connect(&url_for(&self.db_name), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c
    }
}

/// A control plane whose database is a port nobody listens on (what a
/// crashed PostgreSQL looks like), named `db`, with a short store timeout.
#[derive(Debug)]
pub struct DeadStoreApp {
    pub addr: SocketAddr,
    /// The port the store points at.
    pub port: u16,
    /// An admin token for all contexts.
    pub token: String,
}

pub async fn spawn_app_without_database(db: &str) -> DeadStoreApp {
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = spare.local_addr().unwrap().port();
    drop(spare);
    let mut cfg = DbConfig::new(&format!("postgres://postgres@127.0.0.1:{port}/{db}"));
    cfg.timeout = std::time::Duration::from_millis(500);
    let state = nexus_control_plane::web::AppState::new(
        Store::new(&cfg).unwrap(),
        TokenVerifier::hs256(SECRET),
        Governance::from_yaml(GOVERNANCE).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, state, None, std::future::pending()));
    let token = TokenSigner::hs256(SECRET).mint(
        "root",
        Role::Admin,
        ContextScope::All,
        Utc::now().timestamp(),
        60,
    );
    DeadStoreApp { addr, port, token }
}
