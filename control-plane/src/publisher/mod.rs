//! The publisher: reads the outbox in version order and publishes signed
//! deltas and snapshots to Redis, as the one leader among the control-plane
//! instances. The keys it writes are named in
//! [`nexus_protocol::keys::RedisKeys`]; the consistency model they serve is
//! the workspace README's "How it stays consistent".
//!
//! [`Publisher::step`] does one unit of work and says what it did, so tests
//! drive it deterministically; [`Publisher::run`] is the thin loop around
//! it, woken by PostgreSQL NOTIFY with a fallback poll.
//!
//! - [`election`]: who leads, over the lease `store::leader` holds in
//!   PostgreSQL (its environment is `config::propagation`).
//! - [`batch`]: outbox rows → signed deltas (pure).
//! - [`bus`]: the Redis writes, in the order the contract needs.
//! - [`mirror`]: the registry as the edges hold it, which the periodic
//!   rebuild encodes without reading PostgreSQL.
//! - [`rebuild`]: snapshot encoding, and the periodic rebuild beside the loop.
//! - [`status`]: what the API shows of it.
//! - [`start`]: wiring it into `serve`.

pub mod batch;
pub mod bus;
pub mod election;
mod error;
pub mod mirror;
pub mod rebuild;
pub(crate) mod start;
pub(crate) mod status;

use std::time::{Duration, Instant};

use nexus_protocol::envelope::encode_statement;
use nexus_protocol::signing::SigningKey;
use nexus_protocol::{Head, Statement};

use crate::metrics::{KindLabels, PublishMetrics};
use crate::report::Chain;
use crate::store::Store;
use batch::{Limits, Plan};
use bus::{Bus, BusError, RING_LEN};
use election::Election;
use mirror::Mirror;
use nexus_runtime::bus::Fence;
use rebuild::Rebuild;
use status::Reporter;

pub use error::PublishError;
pub use status::Propagation;

/// Tunables, with the contract's values as defaults.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Fallback poll when no NOTIFY arrives.
    pub poll: Duration,
    /// How often a follower tries for the lock.
    pub campaign_every: Duration,
    /// Pause after a failed step.
    pub retry: Duration,
    /// Outbox rows read per step.
    pub batch_rows: u32,
    pub limits: Limits,
    /// Rebuild the snapshot after this many versions...
    pub snapshot_every_versions: u64,
    /// ...or this long after the last one, when there were changes.
    pub snapshot_every: Duration,
    /// Edge reports older than this are removed from `P:edges` (checked
    /// about once a minute by the leader): decommissioned edges leave the
    /// fleet view instead of showing as stale forever.
    pub edge_retention: Duration,
    /// Outbox rows are deleted once older than this and no longer needed
    /// to publish (at least [`RING_LEN`] versions behind the published
    /// head): alias history and `?as_of=` reach back this far.
    pub outbox_retention: Duration,
    /// How often the leader prunes the fleet reports and the outbox.
    pub prune_every: Duration,
    /// How often the leader signs a fresh statement of the head, also when
    /// nothing changes: an edge whose newest statement is older than its
    /// `EDGE_MAX_STALENESS` reports `stale` (a frozen or replaying Redis).
    pub statement_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(200),
            campaign_every: Duration::from_secs(1),
            retry: Duration::from_millis(500),
            batch_rows: 4_096,
            limits: Limits::default(),
            snapshot_every_versions: 1_000,
            snapshot_every: Duration::from_secs(30),
            edge_retention: Duration::from_secs(24 * 3600),
            outbox_retention: Duration::from_secs(30 * 86_400),
            prune_every: Duration::from_secs(60),
            statement_every: Duration::from_secs(2),
        }
    }
}

/// Why a snapshot was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotReason {
    /// This instance just became leader and Redis does not continue the
    /// database's history.
    Leader,
    /// Redis lost the head (restarted empty) or holds another state.
    RedisLost,
    /// More changes at once than pub/sub should carry.
    BigChange,
    /// Another epoch, or versions the outbox cannot explain.
    Discontinuous,
    /// The periodic rebuild; head and ring stay as they are.
    Periodic,
}

/// What one [`Publisher::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Another instance holds the lock.
    Follower,
    Snapshot {
        head: Head,
        bytes: usize,
        records: usize,
        reason: SnapshotReason,
    },
    Deltas {
        from_version: u64,
        to_version: u64,
        messages: usize,
    },
    /// Redis is current and nothing was due.
    Idle,
}

#[derive(Debug, Clone, Copy)]
struct Published {
    head: Head,
    snapshot_version: u64,
    snapshot_at: Instant,
    /// A snapshot should be rebuilt at the next quiet moment.
    snapshot_due: bool,
}

/// Everything the publisher needs, built once at start.
#[derive(Debug)]
pub struct Publisher {
    store: Store,
    bus: Bus,
    election: Election,
    key: SigningKey,
    settings: Settings,
    metrics: PublishMetrics,
    reporter: Reporter,
    published: Option<Published>,
    rebuild: Option<Rebuild>,
    /// What the edges hold: the last snapshot from PostgreSQL plus every
    /// batch published since. Used only while at the published head.
    mirror: Option<Mirror>,
    /// When the leader last pruned `P:edges`; `None`: not yet.
    pruned_at: Option<Instant>,
    /// When the leader last signed a statement of the head; `None`: not
    /// since it took the lead.
    stated_at: Option<Instant>,
}

impl Publisher {
    pub fn new(
        store: Store,
        bus: Bus,
        election: Election,
        key: SigningKey,
        metrics: PublishMetrics,
        reporter: Reporter,
        settings: Settings,
    ) -> Self {
        reporter.update(|s| s.enabled = true);
        Self {
            store,
            bus,
            election,
            key,
            settings,
            metrics,
            reporter,
            published: None,
            rebuild: None,
            mirror: None,
            pruned_at: None,
            stated_at: None,
        }
    }

    /// Does one unit of work: campaign, then bring Redis up to the
    /// database by one batch of deltas or one snapshot.
    pub async fn step(&mut self) -> Result<Step, PublishError> {
        let result = self.try_step().await;
        let leader = self.election.is_leader();
        self.metrics.is_leader.set(i64::from(leader));
        let published = self.published;
        self.reporter.update(|s| {
            s.leader = leader;
            s.epoch = published.map(|p| p.head.epoch);
            s.published_version = published.map(|p| p.head.version);
            s.snapshot_version = published.map(|p| p.snapshot_version);
            if matches!(result, Ok(Step::Snapshot { .. } | Step::Deltas { .. })) {
                s.last_publish_ms = Some(chrono::Utc::now().timestamp_millis());
            }
            s.last_error = result.as_ref().err().map(|e| e.summary().to_owned());
        });
        result
    }

    async fn try_step(&mut self) -> Result<Step, PublishError> {
        let mut result = self.lead().await;
        if result.is_ok()
            && let Err(e) = self.state_head_if_due().await
        {
            result = Err(e);
        }
        if let Err(PublishError::Bus(BusError::Fenced { fence })) = &result {
            // A later leader wrote: whatever the lock connection says, this
            // instance no longer leads. It gives the lock up and follows.
            tracing::warn!(%fence, "fenced off by a later leader; stepping down");
            self.election.resign();
            self.published = None;
            self.rebuild = None;
            self.mirror = None;
        }
        if !self.election.is_leader() {
            self.stated_at = None;
        }
        result
    }

    /// Signs and writes the statement of the published head when the last
    /// one is [`Settings::statement_every`] old (fenced like every write).
    async fn state_head_if_due(&mut self) -> Result<(), PublishError> {
        let Some(p) = self.published.filter(|_| self.election.is_leader()) else {
            return Ok(());
        };
        if self.stated_at.is_some_and(|t| t.elapsed() < self.settings.statement_every) {
            return Ok(());
        }
        let statement = Statement {
            epoch: p.head.epoch,
            version: p.head.version,
            issued_at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let envelope = encode_statement(&statement, Some(&self.key));
        self.bus.publish_statement(self.fence(p.head.epoch), envelope).await?;
        self.stated_at = Some(Instant::now());
        Ok(())
    }

    /// This instance's fence for a write at `epoch`: its leader term.
    fn fence(&self, epoch: u64) -> Fence {
        Fence { epoch, term: self.election.term().unwrap_or(0) }
    }

    async fn lead(&mut self) -> Result<Step, PublishError> {
        if !self.election.campaign().await? {
            if self.published.take().is_some() {
                tracing::warn!("publisher lost the leader lock");
            }
            self.rebuild = None;
            self.mirror = None;
            return Ok(Step::Follower);
        }
        let db = self.store.registry_head().await?;
        let db = Head { epoch: db.epoch, version: db.version };
        let in_redis = self.bus.head().await?;
        let mut p = match self.published {
            Some(p) => p,
            None => {
                // Newly elected: carry on from Redis when it holds this
                // database's history (a failover), else start from a
                // snapshot.
                let Some(head) =
                    in_redis.filter(|h| h.epoch == db.epoch && h.version <= db.version)
                else {
                    return self.snapshot(SnapshotReason::Leader, in_redis).await;
                };
                if !self.bus.has_snapshot().await? {
                    return self.snapshot(SnapshotReason::Leader, in_redis).await;
                }
                tracing::info!(%head, "publisher elected; continuing from the published head");
                self.metrics.published_version.set(version_gauge(head.version));
                let p = Published {
                    head,
                    snapshot_version: head.version,
                    snapshot_at: Instant::now(),
                    snapshot_due: true,
                };
                self.published = Some(p);
                p
            }
        };
        if in_redis != Some(p.head) {
            tracing::warn!(expected = %p.head, found = ?in_redis, "redis lost the published head");
            return self.snapshot(SnapshotReason::RedisLost, in_redis).await;
        }
        if db.epoch != p.head.epoch || db.version < p.head.version {
            return self.snapshot(SnapshotReason::Discontinuous, in_redis).await;
        }
        if let Some(step) = self.finish_rebuild(&mut p).await? {
            return Ok(step);
        }
        self.start_rebuild_if_due(&p);
        if db.version == p.head.version {
            self.prune_if_due(p.head).await;
            return Ok(Step::Idle);
        }
        let rows = self.store.changes_after(p.head.version, self.settings.batch_rows).await?;
        if rows.is_empty() {
            // The registry moved but the outbox has nothing: only a
            // snapshot can tell edges what the state is.
            return self.snapshot(SnapshotReason::Discontinuous, in_redis).await;
        }
        match batch::plan(p.head.epoch, p.head.version, &rows, &self.key, &self.settings.limits) {
            Plan::Deltas(deltas) => {
                let (Some(first), Some(last)) = (deltas.first(), deltas.last()) else {
                    return Ok(Step::Idle);
                };
                let step = Step::Deltas {
                    from_version: first.from_version,
                    to_version: last.to_version,
                    messages: deltas.len(),
                };
                let head = Head { epoch: p.head.epoch, version: last.to_version };
                let fence = self.fence(head.epoch);
                self.bus
                    .publish_deltas(fence, &deltas, p.head, head, self.settings.limits.max_message)
                    .await?;
                // The edges now hold the state after these rows; so does the
                // mirror, or it is dropped until the next snapshot.
                self.mirror =
                    self.mirror.take().filter(|m| m.head() == p.head).and_then(|mut m| {
                        m.apply(&rows, head)
                            .map_err(|e| tracing::warn!(error = %Chain(&e), "mirror dropped"))
                            .ok()
                            .map(|()| m)
                    });
                p.head = head;
                self.published = Some(p);
                self.metrics.published_version.set(version_gauge(head.version));
                self.metrics
                    .publish_total
                    .get_or_create(&KindLabels { kind: "delta" })
                    .inc_by(deltas.len() as u64);
                Ok(step)
            }
            Plan::TooBig { delta_bytes } => {
                tracing::info!(rows = rows.len(), delta_bytes, "big change: snapshot instead");
                self.snapshot(SnapshotReason::BigChange, in_redis).await
            }
            Plan::Discontinuous { expected, found, epoch } => {
                tracing::warn!(expected, found, epoch, "outbox does not continue the head");
                self.snapshot(SnapshotReason::Discontinuous, in_redis).await
            }
        }
    }

    /// Starts a background rebuild when one is due: after
    /// `snapshot_every_versions`, or `snapshot_every` with changes, or
    /// right after a failover.
    fn start_rebuild_if_due(&mut self, p: &Published) {
        let behind = p.head.version.saturating_sub(p.snapshot_version);
        let due = p.snapshot_due
            || behind >= self.settings.snapshot_every_versions
            || (behind > 0 && p.snapshot_at.elapsed() >= self.settings.snapshot_every);
        if due && self.rebuild.is_none() {
            let mirror = self.mirror.as_ref().filter(|m| m.head() == p.head).cloned();
            self.rebuild = Some(Rebuild::start(self.store.clone(), self.key.clone(), mirror));
        }
    }

    /// Housekeeping when idle; a failure only costs a log line.
    /// About once a `prune_every`: edge reports past their retention,
    /// revocations whose tokens have all expired, and outbox rows past
    /// their retention that publishing no longer needs.
    async fn prune_if_due(&mut self, head: Head) {
        if self.pruned_at.is_some_and(|t| t.elapsed() < self.settings.prune_every) {
            return;
        }
        self.pruned_at = Some(Instant::now());
        let now = chrono::Utc::now();
        let retention = i64::try_from(self.settings.edge_retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.timestamp_millis().saturating_sub(retention);
        match self.bus.prune_edges(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned edges silent past the retention"),
            Err(e) => tracing::warn!(error = %Chain(&e), "pruning P:edges failed"),
        }
        match self.store.prune_revocations().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned revocations of expired tokens"),
            Err(e) => tracing::warn!(error = %Chain(&e), "pruning revocations failed"),
        }
        let kept = chrono::Duration::from_std(self.settings.outbox_retention)
            .unwrap_or(chrono::Duration::MAX);
        let Some(up_to) = head.version.checked_sub(RING_LEN as u64) else { return };
        match self.store.prune_changes(up_to, now - kept).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, up_to, "pruned outbox rows past the retention"),
            Err(e) => tracing::warn!(error = %Chain(&e), "pruning the outbox failed"),
        }
    }

    /// Writes a finished rebuild to `P:snapshot` when it still fits: same
    /// epoch, not older than the last snapshot, and close enough to the
    /// head that the ring still holds every delta after it (each delta
    /// covers at least one version). Head and ring are left alone.
    async fn finish_rebuild(&mut self, p: &mut Published) -> Result<Option<Step>, PublishError> {
        if !self.rebuild.as_ref().is_some_and(Rebuild::is_finished) {
            return Ok(None);
        }
        let Some(rebuild) = self.rebuild.take() else { return Ok(None) };
        let sealed = match rebuild.finish().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "snapshot rebuild failed; will retry");
                return Ok(None);
            }
        };
        // A rebuild read from PostgreSQL at the head gives back the mirror
        // this instance lacked (after a failover, or an error).
        if let Some(m) = sealed.mirror.filter(|m| m.head() == p.head)
            && self.mirror.as_ref().is_none_or(|own| own.head() != p.head)
        {
            self.mirror = Some(m);
        }
        let fits = sealed.head.epoch == p.head.epoch
            && sealed.head.version >= p.snapshot_version
            && sealed.head.version <= p.head.version
            && p.head.version - sealed.head.version < RING_LEN as u64;
        if !fits {
            return Ok(None);
        }
        let (head, records, bytes) = (sealed.head, sealed.records, sealed.envelope.len());
        if !self.bus.refresh_snapshot(self.fence(head.epoch), sealed.envelope, head).await? {
            return Ok(None);
        }
        p.snapshot_version = head.version;
        p.snapshot_at = Instant::now();
        p.snapshot_due = false;
        self.published = Some(*p);
        self.metrics.publish_total.get_or_create(&KindLabels { kind: "snapshot" }).inc();
        Ok(Some(Step::Snapshot { head, bytes, records, reason: SnapshotReason::Periodic }))
    }

    /// Reads, signs and writes a snapshot, moves the head to it and sends
    /// the head notice.
    async fn snapshot(
        &mut self,
        reason: SnapshotReason,
        in_redis: Option<Head>,
    ) -> Result<Step, PublishError> {
        // Whatever happens next, the old mirror no longer matches Redis.
        self.mirror = None;
        let started = Instant::now();
        let read = self.store.snapshot_read().await?;
        let read_time = started.elapsed();
        let head = Head { epoch: read.head.epoch, version: read.head.version };
        // A shrink since the previous published state is explained by the
        // outbox when that state is this epoch's history: every
        // deactivation in between was committed (and published) as a
        // change. Anything else — a first publication, another epoch, a
        // database behind Redis — leaves the edges' shrink guard in charge.
        let previous = self.published.map(|p| p.head).or(in_redis);
        let intended = previous.is_some_and(|p| p.epoch == head.epoch && p.version <= head.version);
        let sealed = rebuild::seal(read, &self.key, intended, true).await?;
        let (records, envelope, mirror) = (sealed.records, sealed.envelope, sealed.mirror);
        let bytes = envelope.len();
        let sealed_time = started.elapsed();
        // The ring stays only when it still leads into this head.
        let reset_ring = in_redis != Some(head);
        // Compare-and-set against the head as it is now (the fence keeps a
        // deposed leader out; this keeps two writes from interleaving).
        let expected = self.bus.raw_head().await?;
        let fence = self.fence(head.epoch);
        self.bus.publish_snapshot(fence, expected, envelope, head, reset_ring).await?;
        tracing::info!(
            ?reason, %head, records, bytes, intended,
            read_ms = read_time.as_millis() as u64,
            seal_ms = (sealed_time - read_time).as_millis() as u64,
            write_ms = (started.elapsed() - sealed_time).as_millis() as u64,
            "snapshot published"
        );
        self.published = Some(Published {
            head,
            snapshot_version: head.version,
            snapshot_at: Instant::now(),
            snapshot_due: false,
        });
        // Whatever was rebuilding is older than this.
        self.rebuild = None;
        self.mirror = mirror;
        self.metrics.published_version.set(version_gauge(head.version));
        self.metrics.publish_total.get_or_create(&KindLabels { kind: "snapshot" }).inc();
        Ok(Step::Snapshot { head, bytes, records, reason })
    }

    /// Steps until `shutdown` resolves: at once while there is work, on
    /// NOTIFY or the fallback poll when idle, every `campaign_every` as a
    /// follower. Gives up the lock on the way out.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let wake = self.election.wake();
        tokio::pin!(shutdown);
        loop {
            let (pause, on_notify) = match self.step().await {
                Ok(Step::Follower) => (self.settings.campaign_every, false),
                Ok(Step::Idle) => (self.settings.poll, true),
                Ok(_) => (Duration::ZERO, true),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "publisher step failed");
                    (self.settings.retry, false)
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = wake.notified(), if on_notify => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.election.resign();
        self.metrics.is_leader.set(0);
        self.reporter.update(|s| s.leader = false);
    }
}

fn version_gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
