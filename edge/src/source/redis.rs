//! Sync from Redis as a [`Source`]: subscribe to `P:changes` first, then
//! load, then hand deltas over strictly in order; on any doubt (a gap, a
//! lagging receiver, a head notice, a reconnect, a periodic `P:head` that
//! differs) catch up from the ring or the snapshot. The source never ends
//! on its own: Redis going away only makes the state age until it is back.
//!
//! What to fetch during a catch-up is decided by the pure core in
//! [`super::catchup`]; this file only performs its [`Action`]s and passes
//! every [`Step`] back to it in [`Source::outcome`].
//!
//! Two connections: a subscriber (its connection only carries pub/sub) and
//! a command client. fred hands pub/sub messages over a broadcast channel
//! that drops the oldest when the reader lags; that is treated as a gap.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Message;
use nexus_protocol::Head;
use nexus_protocol::envelope::HEADER_LEN;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::catchup::{Action, CatchUp, Position};
use super::{Applier, Source, Step, Update};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::persist::{Disk, Writer};
use crate::state::State;
use crate::sync::SyncConfig;
use crate::sync::apply::is_envelope;
use crate::sync::report::EdgeReport;
use crate::sync::update::Progress;

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
}

/// Why Redis sync could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("EDGE_STATE_DIR {dir:?}: {source}")]
    StateDir { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Redis(#[from] SyncError),
}

/// Redis sync ready to run: the source and the applier it feeds.
#[derive(Debug)]
pub struct RedisSync {
    source: RedisSource,
    applier: Applier,
}

/// Prepares Redis sync for `state`: restores the last-known-good copy when
/// there is one (so the edge serves before Redis answers, and even if it
/// never does), starts the disk writer and the Redis clients. Run the
/// result to sync.
pub fn start(
    config: SyncConfig,
    state: Arc<State>,
    metrics: Arc<Metrics>,
    clock: Clock,
) -> Result<RedisSync, StartError> {
    state.set_degraded_after_ms(
        i64::try_from(config.degraded_after().as_millis()).unwrap_or(i64::MAX),
    );
    let mut applier = Applier::new(state, metrics, clock).with_key(config.verify_key);
    let mut saved = None;
    if let Some(dir) = &config.state_dir {
        let io = |source| StartError::StateDir { dir: dir.clone(), source };
        let disk = Disk::open(dir).map_err(io)?;
        saved = disk.load().map_err(io)?;
        applier = applier.with_writer(Writer::spawn(disk).map_err(io)?);
    }
    if let Some(saved) = saved {
        match applier.restore(saved) {
            Ok(version) => tracing::warn!(
                version,
                "serving the last-known-good state from disk until Redis confirms it"
            ),
            Err(e) => tracing::error!(error = %e, "disk copy refused; waiting for Redis"),
        }
    }
    Ok(RedisSync { source: RedisSource::connect(config)?, applier })
}

impl RedisSync {
    /// The name of the subscriber connection in `CLIENT LIST`.
    pub fn subscriber_name(&self) -> String {
        self.source.subscriber.id().to_string()
    }

    /// Sync's progress (versions applied, checks run), to wait on.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.applier.progress()
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        super::drive(self.source, self.applier, shutdown).await;
    }
}

/// What the update handed out last was, to read its [`Step`] (the
/// catch-up reads its own in [`CatchUp::outcome`]).
#[derive(Debug)]
enum Handed {
    /// A delta from the channel.
    Live,
    /// A snapshot of a catch-up, with its header (to recognise it if it
    /// is refused).
    Snapshot(Option<Vec<u8>>),
    /// Anything else: a ring delta, a confirmation, a disk base.
    Other,
}

/// The Redis source and its two clients.
pub struct RedisSource {
    config: SyncConfig,
    channel: String,
    client: Client,
    subscriber: SubscriberClient,
    messages: broadcast::Receiver<Message>,
    reconnects: broadcast::Receiver<Server>,
    errors: broadcast::Receiver<(fred::error::Error, Option<Server>)>,
    tick: tokio::time::Interval,
    /// Whether the subscriber's connection is up (fred announces every
    /// connection, the first one too): subscribing before that would only
    /// wait for the command timeout.
    connected: bool,
    subscribed: bool,
    behind: bool,
    /// After a failed catch-up, wait for the next check or reconnect rather
    /// than retrying at every message.
    may_retry: bool,
    /// Header of the last snapshot refused (it holds the content hash and
    /// signature), so the same envelope is not fetched, decoded and refused
    /// again at every check while Redis still holds it.
    refused_snapshot: Option<Vec<u8>>,
    catch_up: Option<CatchUp>,
    /// Updates decided at a check, handed out before anything else.
    queued: VecDeque<Update>,
    handed: Handed,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RedisSource {
    /// Builds both clients and starts connecting; returns at once (Redis
    /// may be down: the clients keep reconnecting).
    pub fn connect(config: SyncConfig) -> Result<Self, SyncError> {
        let mut redis = Config::from_url(config.redis_url.expose())?;
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
        // Listen before connecting, so the first connection is not missed.
        let (messages, reconnects) = (subscriber.message_rx(), subscriber.reconnect_rx());
        let errors = subscriber.error_rx();
        client.connect();
        subscriber.connect();
        let mut tick = tokio::time::interval(config.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            channel: config.keys.channel(),
            messages,
            reconnects,
            errors,
            config,
            client,
            subscriber,
            tick,
            connected: false,
            subscribed: false,
            behind: true,
            may_retry: true,
            refused_snapshot: None,
            catch_up: None,
            queued: VecDeque::new(),
            handed: Handed::Other,
        })
    }

    /// Handles one pub/sub message: a delta to hand out, or nothing.
    fn on_message(&mut self, m: Message, at: &Applier) -> Option<Update> {
        if *m.channel != *self.channel {
            return None;
        }
        let Some(bytes) = m.value.into_owned_bytes() else {
            self.behind = true;
            return None;
        };
        if is_envelope(&bytes) {
            return Some(Update::SignedDelta(bytes));
        }
        // A head notice: a change too big for the channel, or a snapshot.
        match Head::parse(&bytes) {
            Ok(h) if position(at).is_at(h) => {}
            _ => self.behind = true,
        }
        None
    }

    /// The periodic check: whether the state matches `P:head`.
    async fn check(&self, at: &Applier) -> Result<bool, SyncError> {
        Ok(self.head().await?.is_some_and(|h| position(at).is_at(h)))
    }

    /// Performs the catch-up's actions until one hands out an update;
    /// `None` once the catch-up is over.
    async fn advance(&mut self, at: &Applier) -> Result<Option<Update>, SyncError> {
        // Out of `self` while its fetches borrow it; back in while an update
        // it handed out is applied, so `outcome` reaches it.
        let Some(mut c) = self.catch_up.take() else { return Ok(None) };
        loop {
            match c.next(position(at)) {
                Action::ReadHead => match self.head().await? {
                    Some(head) => c.heard(head),
                    None => return Err(SyncError::Missing(self.config.keys.head())),
                },
                Action::ReadRing { after } => c.read(self.read_ring(after).await?),
                Action::Snapshot { force } => {
                    if let Some(update) = self.fetch_snapshot(force).await? {
                        self.catch_up = Some(c);
                        return Ok(Some(update));
                    }
                }
                Action::Delta(delta) => {
                    self.catch_up = Some(c);
                    self.handed = Handed::Other;
                    return Ok(Some(Update::SignedDelta(delta)));
                }
                Action::Done { reached } => {
                    self.behind = false;
                    self.handed = Handed::Other;
                    return Ok(reached.then_some(Update::Unchanged));
                }
                Action::Stop => {
                    self.may_retry = false;
                    tracing::warn!(
                        "catch-up stopped at a refused snapshot; retrying at next check"
                    );
                    return Ok(None);
                }
            }
        }
    }

    /// The ring's deltas after `version`, in order.
    async fn read_ring(&self, version: u64) -> Result<VecDeque<Vec<u8>>, SyncError> {
        let min = format!("({version}");
        let members: Vec<Value> =
            self.client.zrangebyscore(self.config.keys.deltas(), min, "+inf", false, None).await?;
        // A member that is not bytes ends the ring there: what follows it
        // cannot be applied in order anyway.
        Ok(members.into_iter().map_while(Value::into_owned_bytes).collect())
    }

    /// The snapshot to hand out, or `None` when Redis still holds the one
    /// refused last.
    async fn fetch_snapshot(&mut self, force: bool) -> Result<Option<Update>, SyncError> {
        let key = self.config.keys.snapshot();
        // The header (hash and signature) is enough to recognise an
        // envelope already refused, without fetching it all again.
        if let Some(refused) = &self.refused_snapshot {
            let head: Value = self.client.getrange(&key, 0, HEADER_LEN - 1).await?;
            if head.as_bytes() == Some(refused.as_slice()) {
                return Ok(None);
            }
        }
        let slow = Options { timeout: Some(SNAPSHOT_TIMEOUT), ..Options::default() };
        let v: Value = self.client.with_options(&slow).get(&key).await?;
        let Some(bytes) = v.into_owned_bytes() else {
            return Err(SyncError::Missing(key));
        };
        self.handed = Handed::Snapshot(bytes.get(..HEADER_LEN).map(<[u8]>::to_vec));
        Ok(Some(Update::SignedSnapshot { bytes, force }))
    }

    async fn head(&self) -> Result<Option<Head>, SyncError> {
        let raw: Option<String> = self.client.get(self.config.keys.head()).await?;
        raw.map(|v| {
            Head::parse(v.as_bytes())
                .map_err(|_| SyncError::BadHead { key: self.config.keys.head(), value: v.clone() })
        })
        .transpose()
    }

    /// A snapshot for the disk copy when the disk log has grown long and
    /// Redis holds a newer snapshot (header read first, so a snapshot that
    /// is not newer is never fetched whole).
    async fn compact_disk(&self, at: &Applier) -> Option<Update> {
        let on_disk = at.wants_disk_snapshot()?;
        let key = self.config.keys.snapshot();
        let head: Result<Value, _> = self.client.getrange(&key, 0, HEADER_LEN - 1).await;
        // Bytes 16..24 of the header: the version, little endian.
        let version = head.ok().and_then(|h| {
            h.as_bytes().and_then(|b| b.get(16..24)).and_then(|v| <[u8; 8]>::try_from(v).ok())
        });
        if version.map(u64::from_le_bytes).is_none_or(|v| v <= on_disk) {
            return None;
        }
        let slow = Options { timeout: Some(SNAPSHOT_TIMEOUT), ..Options::default() };
        let full: Result<Value, _> = self.client.with_options(&slow).get(&key).await;
        full.ok().and_then(Value::into_owned_bytes).map(Update::DiskBase)
    }

    /// Writes this edge's report to `P:edges`.
    async fn heartbeat(&self, at: &Applier) {
        let now = at.clock().now_ms();
        let report = EdgeReport::of(&self.config.edge_id, &self.config.region, at, now);
        let written: Result<i64, _> = self
            .client
            .hset(self.config.keys.edges(), (self.config.edge_id.as_str(), report.to_json()))
            .await;
        if let Err(e) = written {
            tracing::debug!(error = %e, "edge report not written");
        }
    }

    /// One check interval: compare with `P:head`, report, keep the disk
    /// copy short.
    async fn on_tick(&mut self, at: &Applier) {
        self.may_retry = true;
        if !self.client.is_connected() {
            // Every command would only wait for its timeout and hold up the
            // loop: skip the check and wait for the reconnect (the failed
            // connection itself is counted as it is reported).
            self.behind = true;
            at.note_check();
            return;
        }
        if !self.behind {
            match self.check(at).await {
                Ok(true) => self.queued.push_back(Update::Unchanged),
                Ok(false) => self.behind = true,
                Err(e) => {
                    tracing::debug!(error = %e, "head check failed");
                    at.note_failure();
                    self.behind = true;
                }
            }
        }
        self.heartbeat(at).await;
        if !self.behind
            && let Some(base) = self.compact_disk(at).await
        {
            self.queued.push_back(base);
        }
        at.note_check();
    }
}

/// Where the applier's state stands, for the catch-up and the checks.
fn position(at: &Applier) -> Position {
    let s = at.state();
    Position { loaded: s.is_loaded(), epoch: s.epoch(), version: s.version() }
}

impl Source for RedisSource {
    async fn next(&mut self, at: &Applier) -> Option<Update> {
        loop {
            if let Some(u) = self.queued.pop_front() {
                self.handed = Handed::Other;
                return Some(u);
            }
            if self.catch_up.is_some() {
                match self.advance(at).await {
                    Ok(Some(u)) => return Some(u),
                    Ok(None) => {}
                    Err(e) => self.catch_up_failed(at, &e),
                }
                continue;
            }
            if self.connected && !self.subscribed {
                match self.subscriber.subscribe(self.channel.as_str()).await {
                    Ok(()) => (self.subscribed, self.behind) = (true, true),
                    Err(e) => {
                        tracing::debug!(error = %e, "subscribe failed; retrying");
                        at.note_failure();
                    }
                }
            }
            if self.subscribed && self.behind && self.may_retry {
                self.catch_up = Some(CatchUp::new());
                continue;
            }
            tokio::select! {
                m = self.messages.recv() => match m {
                    Ok(m) => if let Some(u) = self.on_message(m, at) {
                        self.handed = Handed::Live;
                        return Some(u);
                    },
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(dropped = n, "pub/sub receiver lagged; catching up");
                        self.behind = true;
                    }
                    Err(RecvError::Closed) => {
                        self.messages = self.subscriber.message_rx();
                        self.behind = true;
                    }
                },
                r = self.reconnects.recv() => {
                    if matches!(r, Err(RecvError::Closed)) {
                        self.reconnects = self.subscriber.reconnect_rx();
                    }
                    tracing::info!("redis (re)connected: resubscribing and checking the head");
                    self.connected = true;
                    self.subscribed = false;
                    self.may_retry = true;
                }
                e = self.errors.recv() => match e {
                    Ok((e, _)) => {
                        tracing::debug!(error = %e, "redis connection failed; reconnecting");
                        self.connected = false;
                        at.note_failure();
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => self.errors = self.subscriber.error_rx(),
                },
                _ = self.tick.tick() => self.on_tick(at).await,
            }
        }
    }

    fn outcome(&mut self, step: &Step) {
        // While a catch-up runs, everything handed out came from it.
        if let Some(c) = self.catch_up.as_mut() {
            c.outcome(step);
        }
        match std::mem::replace(&mut self.handed, Handed::Other) {
            Handed::Live => self.behind |= !step.continues(),
            Handed::Snapshot(header) => {
                self.refused_snapshot = match step {
                    Step::Refused(_) => header,
                    _ => None,
                };
            }
            Handed::Other => {}
        }
    }
}

impl RedisSource {
    fn catch_up_failed(&mut self, at: &Applier, e: &SyncError) {
        self.catch_up = None;
        self.may_retry = false;
        at.note_failure();
        tracing::warn!(error = %e, "catch-up failed; retrying at next check");
    }
}
