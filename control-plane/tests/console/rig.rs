//! The system the console is tested against, all real and in-process: a
//! fresh PostgreSQL database, a Redis key prefix of its own, the control
//! plane as `serve` starts it (`server::start`: governance, publisher on
//! `REDIS_URL`), and edges (the `nexus_edge` library on the same Redis),
//! each in its own region.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_control_plane::auth::api_key;
use nexus_control_plane::config::Config;
use nexus_control_plane::server;
use nexus_control_plane::store::{Actor, Store};
use nexus_control_plane::web::Shared;
use nexus_edge::node::Node;
use nexus_protocol::{ContextScope, Role};
use nexus_runtime::bus::redis::RedisConfig;
use rand::RngCore;
use tokio::sync::watch;

pub const SECRET: &str = "console-test-secret-console-test-secret-0123";
/// Bound on anything the tests wait for.
pub const PATIENCE: Duration = Duration::from_secs(15);

fn random_hex() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub struct Edge {
    pub region: String,
    pub addr: SocketAddr,
    node: Option<Node>,
}

pub struct System {
    pub api: SocketAddr,
    pub state: Shared,
    pub store: Store,
    pub db_name: String,
    pub prefix: String,
    pub edges: Vec<Edge>,
    stop: watch::Sender<bool>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl System {
    /// The control plane with one edge per region named.
    pub async fn start(regions: &[&str]) -> System {
        let db_name = nexus_harness::fresh_database().await;
        let db_url = nexus_harness::url_for(&db_name);
        let prefix = format!("nexus-console-{}", random_hex());
        let redis = nexus_harness::local::test::redis_url();
        let env = |k: &str| -> Option<String> {
            match k {
                "DATABASE_URL" => Some(db_url.clone()),
                "SECRET_KEY" => Some(SECRET.into()),
                "REDIS_URL" => Some(redis.clone()),
                "NEXUS_REDIS_PREFIX" => Some(prefix.clone()),
                "NEXUS_INSECURE_DEV_KEYS" => Some("1".into()),
                "LOG_LEVEL" => Some("warn".into()),
                _ => None,
            }
        };
        let config = Config::from_lookup(env).unwrap();
        let store = Store::new(&config.db).unwrap();
        store.migrate().await.unwrap();
        let service = server::start(&config, None).await.unwrap();
        let state = service.state().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let mut api_stop = stopped.clone();
        let served = tokio::spawn(async move {
            let _ = service
                .serve(listener, async move {
                    let _ = api_stop.wait_for(|s| *s).await;
                })
                .await;
        });
        let mut edges = Vec::new();
        for region in regions {
            let transport = Arc::new(RedisConfig::new(&redis, &prefix).connect().unwrap());
            // The tests resolve without tokens; the console is what is tested.
            let key = config.propagation.signing_key.verifying_key();
            let id = format!("edge-{region}");
            let n = nexus_harness::launch_edge(
                transport,
                None,
                key,
                &id,
                region,
                Duration::from_millis(500),
            );
            let addr = n.http_addr().unwrap();
            edges.push(Edge { region: (*region).to_owned(), addr, node: Some(n) });
        }
        System { api, state, store, db_name, prefix, edges, stop, served: Some(served) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// A fresh API key with `role` in `contexts` (`["*"]`: all).
    pub async fn key(&self, name: &str, role: Role, contexts: &[&str]) -> (i32, String) {
        let scope =
            ContextScope::try_from(contexts.iter().map(|c| c.to_string()).collect::<Vec<_>>())
                .unwrap();
        let (key, digest) = api_key::generate();
        let created = self
            .store
            .create_api_key(name, role, &scope, &digest, &Actor::system("console-test"))
            .await
            .unwrap();
        (created.id, key)
    }

    /// A direct connection to this system's database, for checks and
    /// tampering.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (c, conn) =
            tokio_postgres::connect(&nexus_harness::url_for(&self.db_name), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        c
    }

    /// Creates an alias through the admin API with `key`.
    pub async fn create(&self, key: &str, context: &str, alias: &str, canonical: &str) -> u16 {
        let body = serde_json::json!({"context": context, "alias": alias, "canonical": canonical});
        reqwest::Client::new()
            .post(self.url("/api/admin/aliases"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Waits until every edge resolves `context/alias` to `canonical`.
    pub async fn wait_resolved_everywhere(&self, context: &str, alias: &str, canonical: &str) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        for e in &self.edges {
            let url = format!("http://{}/api/aliases/resolve/{context}/{alias}", e.addr);
            loop {
                let got = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
                    _ => None,
                };
                if got.as_ref().and_then(|v| v["canonical_name"].as_str()) == Some(canonical) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "edge {} does not resolve {context}/{alias} to {canonical}: {got:?}",
                    e.region
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for e in &mut self.edges {
            if let Some(n) = e.node.take() {
                n.stop().await;
            }
        }
        if let Some(s) = self.served.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
        self.cleanup().await;
    }

    async fn cleanup(&self) {
        use fred::prelude::*;
        if let Ok(cfg) = Config::from_url(&nexus_harness::local::test::redis_url())
            && let Ok(client) = Builder::from_config(cfg).build()
            && client.init().await.is_ok()
        {
            let keys = nexus_protocol::keys::RedisKeys::new(&self.prefix);
            let _: Result<i64, _> =
                client.del(vec![keys.snapshot(), keys.head(), keys.deltas(), keys.edges()]).await;
            let _ = client.quit().await;
        }
    }
}

impl Drop for System {
    /// The database goes with the system, also when a test failed.
    fn drop(&mut self) {
        nexus_harness::drop_database(self.db_name.clone());
    }
}
