//! The Redis sync tests' rig: a fake publisher that writes exactly what
//! the propagation contract says (signed with the dev key) under a fresh
//! prefix, and an edge syncing in-process, HTTP on port 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fred::cmd;
use fred::prelude::*;
use nexus_edge::app::App;
use nexus_edge::clock::Clock;
use nexus_edge::config::Secret;
use nexus_edge::connections::ConnectionCap;
use nexus_edge::metrics::Metrics;
use nexus_edge::server::serve;
use nexus_edge::state::{SourceKind, State};
use nexus_edge::sync::SyncConfig;
use nexus_edge::sync::update::Progress;
use nexus_protocol::envelope::{encode_delta, encode_snapshot, encode_statement};
use nexus_protocol::keys::RedisKeys;
use nexus_protocol::signing::{dev_signing_key, dev_verify_key};
use nexus_protocol::{
    AliasKey, AliasName, AliasRecord, Canonical, Context, Delta, Snapshot, Statement,
};
use nexus_runtime::bus::redis::RedisConfig;
use rand::RngCore;
use tokio::sync::watch;

use crate::redis::{PATIENCE, connect, fresh_keys};
use crate::wait::{stopped, wait_until};

pub fn rec(ctx: &str, alias: &str, canonical: &str, version: u64) -> AliasRecord {
    AliasRecord {
        id: 1,
        context: Context::parse(ctx).unwrap(),
        alias: AliasName::parse(alias).unwrap(),
        canonical: Canonical::parse(canonical).unwrap(),
        description: None,
        expires_at_ms: None,
        is_active: true,
        version,
        updated_at_ms: 0,
    }
}

pub fn now_ms() -> i64 {
    nexus_edge::clock::now_ms()
}

/// Writes what the control plane's publisher would, under its own prefix.
#[derive(Debug)]
pub struct FakePublisher {
    pub keys: RedisKeys,
    pub redis: Client,
    pub epoch: u64,
}

impl FakePublisher {
    pub async fn new() -> Self {
        Self { keys: fresh_keys("nexus-edge-test"), redis: connect().await, epoch: 1 }
    }

    pub fn snapshot(&self, version: u64, records: Vec<AliasRecord>) -> Snapshot {
        Snapshot {
            epoch: self.epoch,
            version,
            created_at_ms: now_ms(),
            intended_shrink: false,
            // As from governance without `strict_contexts`: deltas may
            // bring aliases in any context.
            contexts: nexus_protocol::KnownContexts::Any,
            records,
            credentials: Default::default(),
        }
    }

    pub fn delta(&self, from: u64, upserts: Vec<AliasRecord>, removals: Vec<AliasKey>) -> Delta {
        Delta {
            epoch: self.epoch,
            from_version: from,
            to_version: from + 1,
            committed_at_ms: now_ms(),
            upserts,
            removals,
            contexts: None,
            credentials: Default::default(),
        }
    }

    pub async fn set_snapshot_bytes(&self, bytes: Vec<u8>) {
        let () = self
            .redis
            .set(self.keys.snapshot(), Value::Bytes(bytes.into()), None, None, false)
            .await
            .unwrap();
    }

    pub async fn set_head(&self, epoch: u64, version: u64) {
        let () = self
            .redis
            .set(self.keys.head(), format!("{epoch}:{version}"), None, None, false)
            .await
            .unwrap();
    }

    /// Writes the leader's statement "the head is `epoch:version`",
    /// issued at `issued_at_ms`, signed with `key` (the dev key by default
    /// in [`Self::state_head`]; another to forge one).
    pub async fn statement(
        &self,
        epoch: u64,
        version: u64,
        issued_at_ms: i64,
        key: &nexus_protocol::signing::SigningKey,
    ) {
        let s = Statement { epoch, version, issued_at_ms };
        let bytes = encode_statement(&s, Some(key));
        let () = self
            .redis
            .set(self.keys.statement(), bytes.as_slice(), None, None, false)
            .await
            .unwrap();
    }

    /// A fresh statement of `epoch:version`, signed with the dev key.
    pub async fn state_head(&self, epoch: u64, version: u64) {
        self.statement(epoch, version, now_ms(), &dev_signing_key()).await;
    }

    pub async fn notice(&self, epoch: u64, version: u64) {
        let _: i64 =
            self.redis.publish(self.keys.channel(), format!("{epoch}:{version}")).await.unwrap();
    }

    /// Snapshot key, head, head notice (what a rebuild publishes).
    pub async fn publish_snapshot(&self, s: &Snapshot) {
        self.set_snapshot_bytes(encode_snapshot(s, Some(&dev_signing_key()))).await;
        self.set_head(s.epoch, s.version).await;
        self.notice(s.epoch, s.version).await;
    }

    /// Adds a delta to the ring and moves the head, without announcing it.
    pub async fn ring_only(&self, d: &Delta) -> Vec<u8> {
        let bytes = encode_delta(d, Some(&dev_signing_key()));
        let member = Value::Bytes(bytes.clone().into());
        let _: i64 = self
            .redis
            .zadd(self.keys.deltas(), None, None, false, false, (d.to_version as f64, member))
            .await
            .unwrap();
        self.set_head(d.epoch, d.to_version).await;
        bytes
    }

    /// Ring, head, then the envelope on the channel.
    pub async fn publish_delta(&self, d: &Delta) {
        let bytes = self.ring_only(d).await;
        let _: i64 =
            self.redis.publish(self.keys.channel(), Value::Bytes(bytes.into())).await.unwrap();
    }

    pub async fn clear_ring(&self) {
        let _: i64 = self.redis.del(self.keys.deltas()).await.unwrap();
    }

    pub async fn delete_keys(&self) {
        let _: i64 = self.redis.del(self.keys.published()).await.unwrap();
    }

    /// This edge's report in `P:edges`.
    pub async fn report(&self, id: &str) -> Option<serde_json::Value> {
        let raw: Option<String> = self.redis.hget(self.keys.edges(), id).await.unwrap();
        raw.map(|r| serde_json::from_str(&r).unwrap())
    }

    pub async fn cleanup(&self) {
        self.delete_keys().await;
        let _: i64 = self.redis.del(self.keys.edges()).await.unwrap();
    }

    /// Kills the connection named `name` (and only it) with CLIENT KILL ID.
    pub async fn kill_client(&self, name: &str) -> usize {
        let list: String = self.redis.custom(cmd!("CLIENT"), vec!["LIST"]).await.unwrap();
        let ids: Vec<String> = list
            .lines()
            .filter(|l| l.split(' ').any(|f| f == format!("name={name}")))
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")).map(str::to_owned))
            .collect();
        for id in &ids {
            let args = vec!["KILL".to_owned(), "ID".to_owned(), id.clone()];
            let _: Value = self.redis.custom(cmd!("CLIENT"), args).await.unwrap();
        }
        ids.len()
    }
}

/// An edge in Redis sync mode, serving HTTP on port 0.
#[derive(Debug)]
pub struct SyncEdge {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub id: String,
    pub subscriber: String,
    /// What sync has done: versions applied, checks run (see [`Progress`]).
    pub progress: watch::Receiver<Progress>,
    stop: watch::Sender<bool>,
}

impl Drop for SyncEdge {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// An edge's settings: the Redis transport's and sync's.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub redis: RedisConfig,
    pub sync: SyncConfig,
}

pub fn sync_config(keys: &RedisKeys, url: &str, state_dir: Option<PathBuf>) -> EdgeConfig {
    let mut b = [0u8; 4];
    rand::rng().fill_bytes(&mut b);
    EdgeConfig {
        redis: RedisConfig {
            url: Secret::new(url),
            keys: keys.clone(),
            message_buffer: nexus_runtime::bus::MESSAGE_BUFFER,
            ca_file: None,
        },
        sync: SyncConfig {
            verify_keys: vec![dev_verify_key()],
            edge_id: format!("edge-{}", hex::encode(b)),
            region: "test".into(),
            state_dir,
            check_interval: Duration::from_millis(200),
            max_staleness: nexus_edge::sync::MAX_STALENESS,
            stale_refuse: Vec::new(),
        },
    }
}

impl SyncEdge {
    pub async fn start(config: EdgeConfig) -> Self {
        Self::start_with_auth(config, None).await
    }

    /// An edge that checks credentials with `verifier` (and the credential
    /// set its stream delivers), as `nexus-edge` does with auth required.
    pub async fn start_with_auth(
        config: EdgeConfig,
        verifier: Option<nexus_protocol::TokenVerifier>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let state = Arc::new(State::new(SourceKind::Redis));
        let id = config.sync.edge_id.clone();
        let redis = Arc::new(config.redis.connect().unwrap());
        let sync = nexus_edge::source::bus::start(
            config.sync,
            redis,
            state.clone(),
            metrics.clone(),
            Clock::system(),
        )
        .unwrap();
        let subscriber = sync.subscriber_name().expect("a redis feed is named");
        let progress = sync.progress();
        let auth = verifier.map(|v| {
            nexus_edge::auth::Authenticator::new(v).with_credentials(state.credentials().clone())
        });
        let app = Arc::new(App {
            state: state.clone(),
            auth,
            connections: ConnectionCap::new(100, metrics.clone()),
            prometheus: true,
            metrics: metrics.clone(),
        });
        let (stop, rx) = watch::channel(false);
        tokio::spawn(sync.run(stopped(rx.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app, None, stopped(rx)));
        Self { addr, state, metrics, id, subscriber, progress, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn wait_version(&self, epoch: u64, version: u64) {
        let s = &self.state;
        wait_until(&format!("edge at {epoch}:{version}"), || async {
            s.is_loaded() && s.epoch() == epoch && s.version() == version
        })
        .await;
    }

    /// Waits, at most [`PATIENCE`], until sync's progress satisfies `cond`.
    pub async fn wait_progress(&self, what: &str, cond: impl FnMut(&Progress) -> bool) {
        let mut rx = self.progress.clone();
        // The borrow `wait_for` returns holds the channel's lock: drop it here.
        let met = tokio::time::timeout(PATIENCE, async { rx.wait_for(cond).await.is_ok() }).await;
        assert_eq!(met, Ok(true), "timed out waiting for {what}");
    }

    /// Waits until the edge has run `more` periodic checks after this call:
    /// with two, at least one check started after it, so whatever the test
    /// did before has been looked at.
    pub async fn wait_checks(&self, more: u64) {
        let from = self.progress.borrow().checks;
        self.wait_progress(&format!("{more} more checks"), |p| p.checks >= from + more).await;
    }

    /// How many times sync has failed to get a state so far.
    pub fn failures(&self) -> u64 {
        self.progress.borrow().failures
    }

    /// GET a path: (status, headers, JSON body or Null).
    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let resp = reqwest::get(self.url(path)).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    pub async fn canonical(&self, ctx: &str, alias: &str) -> Option<String> {
        let (status, _, body) = self.get(&format!("/api/aliases/resolve/{ctx}/{alias}")).await;
        (status == 200).then(|| body["canonical_name"].as_str().unwrap_or_default().to_owned())
    }
}
