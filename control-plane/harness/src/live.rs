//! A test app ([`crate::app`]) with its publisher running on a fresh Redis
//! prefix: the rig of the end-to-end propagation tests, where edges sync
//! from what the admin API commits.

use std::sync::Arc;

use nexus_control_plane::config::DbConfig;
use nexus_control_plane::metrics::PublishMetrics;
use nexus_control_plane::publisher::bus::Bus;
use nexus_control_plane::publisher::election::Election;
use nexus_control_plane::publisher::{Publisher, Settings};
use nexus_control_plane::store::leader::LeaderDb;
use nexus_protocol::keys::RedisKeys;
use nexus_protocol::signing::dev_signing_key;
use nexus_runtime::bus::redis::RedisConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{TestApp, spawn_app};
use crate::database::url_for;
use crate::redis::{self, fresh_keys, redis_url};
use crate::sync::{SyncEdge, sync_config};

#[derive(Debug)]
pub struct LivePlane {
    pub app: TestApp,
    pub keys: RedisKeys,
    stop: Option<oneshot::Sender<()>>,
    publisher: Option<JoinHandle<()>>,
}

impl LivePlane {
    /// `tag` begins the Redis prefix, so keys left behind name their test.
    pub async fn start(tag: &str) -> Self {
        // Fails with how to start Redis when it is down.
        drop(redis::connect().await);
        let app = spawn_app().await;
        let keys = fresh_keys(tag);
        let bus =
            Bus::new(Arc::new(RedisConfig::new(&redis_url(), keys.prefix()).connect().unwrap()));
        app.state.propagation.attach(bus.clone());
        let leader_db = LeaderDb::new(&DbConfig::new(&url_for(&app.db_name))).unwrap();
        let publisher = Publisher::new(
            app.store.clone(),
            bus,
            Election::new(leader_db, keys.prefix()),
            dev_signing_key(),
            PublishMetrics::default(),
            app.state.propagation.reporter(),
            Settings::default(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let publisher = tokio::spawn(publisher.run(async move {
            let _ = stopped.await;
        }));
        Self { app, keys, stop: Some(stop), publisher: Some(publisher) }
    }

    /// Stops the publisher and waits until it has, so nothing it started
    /// writes afterwards.
    pub async fn stop_publisher(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(publisher) = self.publisher.take() {
            publisher.await.unwrap();
        }
    }

    /// An edge syncing from this plane (no credential check).
    pub async fn edge(&self) -> SyncEdge {
        SyncEdge::start(sync_config(&self.keys, &redis_url(), None)).await
    }

    /// Creates an alias through the admin API; returns the version it
    /// committed at.
    pub async fn create(&self, ctx: &str, alias: &str, canonical: &str) -> u64 {
        let (status, body) = self.app.create(ctx, alias, canonical).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        body["version"].as_u64().unwrap()
    }
}
