//! Sync from Redis: subscribe to `P:changes` first, then load, then apply
//! deltas strictly in order; on any doubt (a gap, a lagging receiver, a
//! head notice, a reconnect, a periodic `P:head` that differs) catch up
//! from the ring or the snapshot. The loop never ends on its own: Redis
//! going away only makes the state age until it is back.
//!
//! Two connections: a subscriber (its connection only carries pub/sub) and
//! a command client. fred hands pub/sub messages over a broadcast channel
//! that drops the oldest when the reader lags; that is treated as a gap.

use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Message;
use nexus_protocol::Head;
use nexus_protocol::envelope::HEADER_LEN;
use tokio::sync::broadcast::error::RecvError;

use crate::service::now_ms;
use crate::state::SourceKind;
use crate::sync::SyncConfig;
use crate::sync::apply::{Applier, DeltaStep, Refusal, SnapshotStep, is_envelope};
use crate::sync::report::EdgeReport;

/// Bound on one command, so a check fails fast while Redis is away.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on reading a snapshot (a million aliases are ~100 MB).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("{0} is missing; waiting for the control plane to publish it")]
    Missing(String),
    #[error("{key} holds {value:?}, not \"epoch:version\"")]
    BadHead { key: String, value: String },
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// The Redis sync loop and its two clients.
pub struct RedisSync {
    config: SyncConfig,
    client: Client,
    subscriber: SubscriberClient,
    applier: Applier,
    /// Header of the last snapshot refused (it holds the content hash and
    /// signature), so the same envelope is not fetched, decoded and refused
    /// again at every check while Redis still holds it.
    refused_snapshot: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSync").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RedisSync {
    /// Builds both clients and starts connecting; returns at once (Redis
    /// may be down: the clients keep reconnecting).
    pub fn start(config: SyncConfig, applier: Applier) -> Result<Self, SyncError> {
        let mut redis = Config::from_url(&config.redis_url)?;
        redis.fail_fast = false;
        let mut builder = Builder::from_config(redis);
        builder
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
                p.broadcast_channel_capacity = config.message_buffer.max(1);
            })
            .with_connection_config(|c| {
                // Named connections, so operators (and tests) can find the
                // edge's subscriber in CLIENT LIST.
                c.auto_client_setname = true;
                // Deltas are small single messages: no Nagle delay on them.
                c.tcp.nodelay = Some(true);
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(5);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
        let client = builder.build()?;
        let subscriber = builder.build_subscriber_client()?;
        client.connect();
        subscriber.connect();
        Ok(Self { config, client, subscriber, applier, refused_snapshot: None })
    }

    /// The name of the subscriber connection in `CLIENT LIST`.
    pub fn subscriber_name(&self) -> String {
        self.subscriber.id().to_string()
    }

    /// Runs until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let channel = self.config.keys.channel();
        let mut messages = self.subscriber.message_rx();
        let mut reconnects = self.subscriber.reconnect_rx();
        let mut tick = tokio::time::interval(self.config.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut subscribed = false;
        let mut behind = true;
        // After a failed catch-up, wait for the next check or reconnect
        // rather than retrying at every message.
        let mut may_retry = true;
        loop {
            if !subscribed {
                match self.subscriber.subscribe(channel.as_str()).await {
                    Ok(()) => {
                        subscribed = true;
                        behind = true;
                    }
                    Err(e) => tracing::debug!(error = %e, "subscribe failed; retrying"),
                }
            }
            if subscribed && behind && may_retry {
                match self.catch_up().await {
                    Ok(()) => behind = false,
                    Err(e) => {
                        may_retry = false;
                        tracing::warn!(error = %e, "catch-up failed; retrying at next check");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                m = messages.recv() => match m {
                    Ok(m) => behind |= self.on_message(&m, &channel),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(dropped = n, "pub/sub receiver lagged; catching up");
                        behind = true;
                    }
                    Err(RecvError::Closed) => {
                        messages = self.subscriber.message_rx();
                        behind = true;
                    }
                },
                r = reconnects.recv() => {
                    if matches!(r, Err(RecvError::Closed)) {
                        reconnects = self.subscriber.reconnect_rx();
                    }
                    tracing::info!("redis (re)connected: resubscribing and checking the head");
                    subscribed = false;
                    may_retry = true;
                }
                _ = tick.tick() => {
                    may_retry = true;
                    if !behind {
                        behind = !self.check().await;
                    }
                    self.heartbeat().await;
                    if !behind {
                        self.compact_disk().await;
                    }
                }
            }
        }
    }

    /// Handles one pub/sub message; `true` when a catch-up is needed.
    fn on_message(&mut self, m: &Message, channel: &str) -> bool {
        if &*m.channel != channel {
            return false;
        }
        let Some(bytes) = m.value.as_bytes() else { return true };
        if is_envelope(bytes) {
            return match self.applier.delta(bytes) {
                Ok(DeltaStep::Applied { .. } | DeltaStep::Stale) => false,
                Ok(DeltaStep::Gap | DeltaStep::NeedSnapshot) | Err(_) => true,
            };
        }
        // A head notice: a change too big for the channel, or a snapshot.
        match Head::parse(bytes) {
            Ok(h) => !self.is_at(h),
            Err(_) => true,
        }
    }

    fn is_at(&self, head: Head) -> bool {
        let s = self.applier.state();
        s.is_loaded() && s.epoch() == head.epoch && s.version() == head.version
    }

    /// The periodic check: `true` when the state matches `P:head`.
    async fn check(&mut self) -> bool {
        match self.head().await {
            Ok(Some(h)) if self.is_at(h) => {
                self.confirmed();
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(error = %e, "head check failed");
                false
            }
        }
    }

    /// Brings the state up to `P:head`: the ring when it reaches back, the
    /// snapshot otherwise (and the ring again after an older snapshot).
    pub async fn catch_up(&mut self) -> Result<(), SyncError> {
        let Some(head) = self.head().await? else {
            return Err(SyncError::Missing(self.config.keys.head()));
        };
        let state = self.applier.state();
        let (loaded, epoch, version) = (state.is_loaded(), state.epoch(), state.version());
        if !loaded || head.epoch != epoch || head.version < version {
            // No state, another epoch, or ahead of the control plane.
            self.load_snapshot(true).await?;
        }
        if !self.is_at(head) && !self.apply_ring().await? {
            self.load_snapshot(false).await?;
            self.apply_ring().await?;
        }
        let s = self.applier.state();
        if s.epoch() == head.epoch && s.version() >= head.version {
            self.confirmed();
        }
        Ok(())
    }

    /// Applies the ring's deltas after the current version; `false` when
    /// the ring does not continue the state (a snapshot is needed).
    async fn apply_ring(&mut self) -> Result<bool, SyncError> {
        let version = self.applier.state().version();
        let min = format!("({version}");
        let members: Vec<Value> =
            self.client.zrangebyscore(self.config.keys.deltas(), min, "+inf", false, None).await?;
        if members.is_empty() {
            return Ok(false);
        }
        for m in &members {
            let Some(bytes) = m.as_bytes() else { return Ok(false) };
            match self.applier.delta(bytes) {
                Ok(DeltaStep::Applied { .. } | DeltaStep::Stale) => {}
                Ok(DeltaStep::Gap | DeltaStep::NeedSnapshot) | Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn load_snapshot(&mut self, force: bool) -> Result<(), SyncError> {
        let key = self.config.keys.snapshot();
        // The header (hash and signature) is enough to recognise an
        // envelope already refused, without fetching it all again.
        if let Some(refused) = &self.refused_snapshot {
            let head: Value = self.client.getrange(&key, 0, HEADER_LEN - 1).await?;
            if head.as_bytes() == Some(refused.as_slice()) {
                return Ok(());
            }
        }
        let slow = Options { timeout: Some(SNAPSHOT_TIMEOUT), ..Options::default() };
        let v: Value = self.client.with_options(&slow).get(&key).await?;
        let Some(bytes) = v.into_owned_bytes() else {
            return Err(SyncError::Missing(key));
        };
        let header = bytes.get(..HEADER_LEN).map(<[u8]>::to_vec);
        match self.applier.snapshot(bytes, force) {
            Ok(SnapshotStep::Installed { .. } | SnapshotStep::NotNewer) => {
                self.refused_snapshot = None;
                Ok(())
            }
            Err(e) => {
                self.refused_snapshot = header;
                Err(e.into())
            }
        }
    }

    async fn head(&self) -> Result<Option<Head>, SyncError> {
        let raw: Option<String> = self.client.get(self.config.keys.head()).await?;
        raw.map(|v| {
            Head::parse(v.as_bytes())
                .map_err(|_| SyncError::BadHead { key: self.config.keys.head(), value: v.clone() })
        })
        .transpose()
    }

    /// Redis confirmed the state current just now.
    fn confirmed(&self) {
        let s = self.applier.state();
        s.set_source(SourceKind::Redis);
        s.confirm(now_ms());
    }

    /// Replaces the disk snapshot with Redis's when the disk log has grown
    /// long and Redis holds a newer snapshot (header read first, so a
    /// snapshot that is not newer is never fetched whole).
    async fn compact_disk(&mut self) {
        let Some(on_disk) = self.applier.wants_disk_snapshot() else { return };
        let key = self.config.keys.snapshot();
        let head: Result<Value, _> = self.client.getrange(&key, 0, HEADER_LEN - 1).await;
        // Bytes 16..24 of the header: the version, little endian.
        let version = head.ok().and_then(|h| {
            h.as_bytes().and_then(|b| b.get(16..24)).and_then(|v| <[u8; 8]>::try_from(v).ok())
        });
        let version = version.map(u64::from_le_bytes);
        if version.is_none_or(|v| v <= on_disk) {
            return;
        }
        let slow = Options { timeout: Some(SNAPSHOT_TIMEOUT), ..Options::default() };
        let full: Result<Value, _> = self.client.with_options(&slow).get(&key).await;
        if let Some(bytes) = full.ok().and_then(Value::into_owned_bytes)
            && self.applier.refresh_disk_snapshot(bytes)
        {
            tracing::info!("disk copy rebased on a newer snapshot from Redis");
        }
    }

    /// Writes this edge's report to `P:edges`.
    async fn heartbeat(&self) {
        let report =
            EdgeReport::of(&self.config.edge_id, &self.config.region, &self.applier, now_ms());
        let written: Result<i64, _> = self
            .client
            .hset(self.config.keys.edges(), (self.config.edge_id.as_str(), report.to_json()))
            .await;
        if let Err(e) = written {
            tracing::debug!(error = %e, "edge report not written");
        }
    }
}
