//! The control plane as `serve` starts it, on a fresh database and a Redis
//! the test made, with an admin API key: what the fleet and barrier tests
//! put edges next to.

use std::net::SocketAddr;

use nexus_control_plane::auth::api_key;
use nexus_control_plane::config::Config;
use nexus_control_plane::server;
use nexus_control_plane::store::{Actor, Store};
use nexus_protocol::{ContextScope, Role};
use tokio::sync::watch;

use crate::database::Database;
use crate::redis::fresh_keys;

/// A running control plane; [`Plane::stop`] it at the end.
#[derive(Debug)]
pub struct Plane {
    pub config: Config,
    pub store: Store,
    /// The admin API's address.
    pub api: SocketAddr,
    /// An admin API key.
    pub key: String,
    /// The Redis key prefix, unique to the test.
    pub prefix: String,
    stop: watch::Sender<bool>,
    served: tokio::task::JoinHandle<()>,
    _db: Database,
}

impl Plane {
    /// Starts on a fresh database, publishing to `redis_url` under a fresh
    /// `name-…` prefix, tokens signed with `secret`.
    pub async fn start(name: &str, redis_url: &str, secret: &str) -> Self {
        Self::start_with(name, redis_url, secret, &[]).await
    }

    /// [`Plane::start`] with more variables (they win over the rig's),
    /// e.g. a real `NEXUS_SIGNING_KEY` instead of the development key.
    pub async fn start_with(
        name: &str,
        redis_url: &str,
        secret: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let db = Database::fresh().await;
        let (db_url, prefix) = (db.url(), fresh_keys(name).prefix().to_owned());
        let config = Config::from_lookup(|k: &str| {
            if let Some((_, v)) = env.iter().find(|(name, _)| *name == k) {
                return Some((*v).to_owned());
            }
            match k {
                "DATABASE_URL" => Some(db_url.clone()),
                "SECRET_KEY" => Some(secret.into()),
                "REDIS_URL" => Some(redis_url.into()),
                "NEXUS_REDIS_PREFIX" => Some(prefix.clone()),
                // The rigs' edges verify with the development key.
                "NEXUS_INSECURE_DEV_KEYS" => Some("1".into()),
                "LOG_LEVEL" => Some("warn".into()),
                _ => None,
            }
        })
        .unwrap();
        let store = Store::new(&config.db).unwrap();
        store.migrate().await.unwrap();
        let service = server::start(&config, None).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let (stop, mut stopped) = watch::channel(false);
        let served = tokio::spawn(async move {
            let _ = service
                .serve(listener, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        let scope = ContextScope::try_from(vec!["*".to_owned()]).unwrap();
        let (key, digest) = api_key::generate();
        store
            .create_api_key(
                &format!("{name}-admin"),
                Role::Admin,
                &scope,
                &digest,
                &Actor::system(name),
            )
            .await
            .unwrap();
        Plane { config, store, api, key, prefix, stop, served, _db: db }
    }

    /// Stops serving (the database goes when `self` does).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.served).await;
    }
}
