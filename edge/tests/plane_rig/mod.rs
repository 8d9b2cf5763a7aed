//! A control plane with its publisher running, on a fresh PostgreSQL
//! database (the control plane's own test harness, API on port 0) and a
//! fresh Redis prefix: the rig of the end-to-end propagation tests
//! (edge/tests/propagation.rs, loadtest/tests/propagation.rs). The crate
//! that includes it must have `helpers` (control-plane/tests/api/helpers.rs)
//! and `sync_rig` (edge/tests/sync_rig) at its root; each test adds the
//! methods it needs in its own `impl Plane`.

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
use rand::RngCore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{TestApp, spawn_app, url_for};
use crate::sync_rig::{self, redis_url};

pub struct Plane {
    pub app: TestApp,
    pub keys: RedisKeys,
    stop: Option<oneshot::Sender<()>>,
    publisher: Option<JoinHandle<()>>,
}

impl Plane {
    /// `tag` begins the Redis prefix, so keys left behind name their test.
    pub async fn start(tag: &str) -> Self {
        // Fails with how to start Redis when it is down.
        drop(sync_rig::connect().await);
        let app = spawn_app().await;
        let mut b = [0u8; 8];
        rand::rng().fill_bytes(&mut b);
        let keys = RedisKeys::new(&format!("{tag}-{}", hex::encode(b)));
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
}
