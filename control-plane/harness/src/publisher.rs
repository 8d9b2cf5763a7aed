//! The publisher side of the propagation tests: a fresh key prefix per
//! test, publishers wired to the test app's database that a test steps one
//! unit of work at a time, and direct reads of the keys the contract names.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use nexus_control_plane::config::DbConfig;
use nexus_control_plane::metrics::PublishMetrics;
use nexus_control_plane::publisher::bus::Bus;
use nexus_control_plane::publisher::election::Election;
use nexus_control_plane::publisher::{Publisher, Settings, Step};
use nexus_control_plane::store::leader::LeaderDb;
use nexus_protocol::Head;
use nexus_protocol::keys::RedisKeys;
use nexus_protocol::signing::dev_signing_key;
use nexus_runtime::bus::redis::RedisConfig;

use crate::app::TestApp;
use crate::database::url_for;
use crate::redis::{PATIENCE, connect, fresh_keys, redis_url};

#[derive(Debug)]
pub struct Rig {
    pub keys: RedisKeys,
    redis: Client,
    db_url: String,
}

impl Rig {
    pub async fn new(app: &TestApp) -> Self {
        let keys = fresh_keys("nexus-test");
        Self { keys, redis: connect().await, db_url: url_for(&app.db_name) }
    }

    pub fn bus(&self) -> Bus {
        Bus::new(Arc::new(RedisConfig::new(&redis_url(), self.keys.prefix()).connect().unwrap()))
    }

    pub fn publisher(&self, app: &TestApp) -> Publisher {
        self.publisher_with_metrics(app).0
    }

    pub fn publisher_with_metrics(&self, app: &TestApp) -> (Publisher, PublishMetrics) {
        self.publisher_with(app, Settings::default())
    }

    pub fn publisher_with(&self, app: &TestApp, settings: Settings) -> (Publisher, PublishMetrics) {
        self.publisher_via(app, &redis_url(), &self.db_url, settings)
    }

    /// A publisher reaching Redis and its election connection through the
    /// given URLs (a test proxy, to cut them).
    pub fn publisher_via(
        &self,
        app: &TestApp,
        redis: &str,
        election_db: &str,
        settings: Settings,
    ) -> (Publisher, PublishMetrics) {
        let metrics = PublishMetrics::default();
        let leader_db = LeaderDb::new(&DbConfig::new(election_db)).unwrap();
        let publisher = Publisher::new(
            app.store.clone(),
            Bus::new(Arc::new(RedisConfig::new(redis, self.keys.prefix()).connect().unwrap())),
            Election::new(leader_db, self.keys.prefix()),
            dev_signing_key(),
            metrics.clone(),
            app.state.propagation.reporter(),
            settings,
        );
        (publisher, metrics)
    }

    pub async fn head(&self) -> Option<Head> {
        let raw: Option<String> = self.redis.get(self.keys.head()).await.unwrap();
        raw.map(|h| h.parse().unwrap())
    }

    /// The ring, oldest first.
    pub async fn ring(&self) -> Vec<Vec<u8>> {
        let members: Vec<Value> = self
            .redis
            .zrangebyscore(self.keys.deltas(), "-inf", "+inf", false, None)
            .await
            .unwrap();
        members.iter().map(|m| m.as_bytes().unwrap().to_vec()).collect()
    }

    pub async fn snapshot(&self) -> Vec<u8> {
        let v: Value = self.redis.get(self.keys.snapshot()).await.unwrap();
        v.as_bytes().expect("a snapshot").to_vec()
    }

    /// What a Redis restarted empty looks like to this registry.
    pub async fn delete_keys(&self) {
        let _: i64 = self.redis.del(self.keys.published()).await.unwrap();
    }

    pub async fn report_edge(&self, id: &str, epoch: u64, version: u64, heartbeat_ms: i64) {
        let report = serde_json::json!({
            "id": id, "region": "local", "epoch": epoch, "version": version,
            "content_hash": "00", "applied_at_ms": heartbeat_ms, "heartbeat_ms": heartbeat_ms,
            "last_rejection": null, "source": "redis"
        });
        let _: i64 = self.redis.hset(self.keys.edges(), (id, report.to_string())).await.unwrap();
    }

    pub async fn cleanup(&self) {
        self.delete_keys().await;
        let _: i64 = self.redis.del(self.keys.edges()).await.unwrap();
    }
}

/// Steps until the publisher has nothing left to do; returns what it did.
pub async fn steps_until_idle(p: &mut Publisher) -> Vec<Step> {
    let mut done = Vec::new();
    for _ in 0..100 {
        let step = p.step().await.unwrap();
        if step == Step::Idle {
            return done;
        }
        done.push(step);
    }
    panic!("publisher still busy after 100 steps: {done:?}");
}

/// Steps until one matches `done` (idle steps in between), for work that
/// runs beside the loop; fails after [`PATIENCE`].
pub async fn step_until(p: &mut Publisher, done: impl Fn(&Step) -> bool) -> Step {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let step = p.step().await.unwrap();
        if done(&step) {
            return step;
        }
        assert!(step == Step::Idle, "unexpected {step:?}");
        assert!(tokio::time::Instant::now() < deadline, "nothing matched within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Steps a follower until it takes over (the leader's lock freed),
/// returning its first step as leader; fails after [`PATIENCE`].
pub async fn step_until_takeover(p: &mut Publisher) -> Step {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let step = p.step().await.unwrap();
        if step != Step::Follower {
            return step;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no takeover within {} s",
            PATIENCE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Steps until one succeeds (Redis or PostgreSQL coming back), returning
/// it; fails after three times [`PATIENCE`].
pub async fn step_until_ok(p: &mut Publisher) -> Step {
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        match p.step().await {
            Ok(step) => return step,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "still failing: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
