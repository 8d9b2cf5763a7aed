//! Sync from the propagation transport ([`crate::bus`]: Redis, or the
//! in-process bus of dev mode) as a [`Source`]: subscribe to the channel
//! first, then load, then hand deltas over strictly in order; on any doubt
//! (a gap, a lagging receiver, a head notice, a reconnect, a periodic head
//! that differs) catch up from the ring or the snapshot. The source never
//! ends on its own: the transport going away only makes the state age
//! until it is back.
//!
//! What to fetch during a catch-up is decided by the pure core in
//! [`super::catchup`]; this file only performs its [`Action`]s and passes
//! every [`Step`] back to it in [`Source::outcome`].
//!
//! Every check also writes the edge report (in the background), through the
//! same transport or, for an edge reading a read-only replica, through a
//! second one that reaches the control plane's Redis
//! ([`BusSync::with_report`], `EDGE_REPORT_REDIS_URL`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nexus_protocol::Head;
use nexus_protocol::envelope::{self, HEADER_LEN};
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
use nexus_runtime::bus::{BusError, Event, Feed, Transport};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("the {0} is missing; waiting for the control plane to publish it")]
    Missing(&'static str),
}

/// Why sync could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("EDGE_STATE_DIR {dir:?}: {source}")]
    StateDir { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Sync ready to run: the source and the applier it feeds.
#[derive(Debug)]
pub struct BusSync {
    source: BusSource,
    applier: Applier,
}

/// Prepares sync from `bus` for `state`: restores the last-known-good copy
/// when there is one (so the edge serves before the transport answers, and
/// even if it never does), starts the disk writer and subscribes. Run the
/// result to sync.
pub fn start(
    config: SyncConfig,
    bus: Arc<dyn Transport>,
    state: Arc<State>,
    metrics: Arc<Metrics>,
    clock: Clock,
) -> Result<BusSync, StartError> {
    state.set_degraded_after_ms(
        i64::try_from(config.degraded_after().as_millis()).unwrap_or(i64::MAX),
    );
    let bound = i64::try_from(config.max_staleness.as_millis()).unwrap_or(i64::MAX);
    state.freshness().track(bound, clock.now_ms());
    state.freshness().refuse_in(config.stale_refuse.clone());
    let mut applier = Applier::new(state, metrics, clock).with_keys(config.verify_keys.clone());
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
                "serving the last-known-good state from disk until the bus confirms it"
            ),
            Err(e) => tracing::error!(error = %e, "disk copy refused; waiting for the bus"),
        }
    }
    Ok(BusSync { source: BusSource::new(config, bus)?, applier })
}

impl BusSync {
    /// Writes the edge report through `report` instead of the transport
    /// synced from: a writable Redis the control plane reads, for an edge
    /// whose own Redis is a read-only replica (`EDGE_REPORT_REDIS_URL`).
    pub fn with_report(mut self, report: Arc<dyn Transport>) -> Self {
        self.source.reporter = Reporter::new(report, true);
        self
    }

    /// The name of the subscriber connection (`CLIENT LIST` on Redis).
    pub fn subscriber_name(&self) -> Option<String> {
        self.source.feed.name()
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

/// The transport as a source: its commands and one feed.
#[derive(Debug)]
pub struct BusSource {
    config: SyncConfig,
    bus: Arc<dyn Transport>,
    feed: Box<dyn Feed>,
    tick: tokio::time::Interval,
    /// Whether the feed's connection is up (every connection is announced,
    /// the first one too): subscribing before that would only wait for the
    /// command timeout.
    connected: bool,
    subscribed: bool,
    behind: bool,
    /// After a failed catch-up, wait for the next check, reconnect or head
    /// notice rather than retrying at every message.
    may_retry: bool,
    /// Header of the last snapshot refused (it holds the content hash and
    /// signature), so the same envelope is not fetched, decoded and refused
    /// again at every check while the bus still holds it.
    refused_snapshot: Option<Vec<u8>>,
    /// The last statement of the head refused (a few hundred bytes at
    /// most), so a forged one is counted and logged once, not per check.
    refused_statement: Option<Vec<u8>>,
    /// The head the newest verified statement names.
    stated: Option<(u64, u64)>,
    catch_up: Option<CatchUp>,
    /// Updates decided at a check, handed out before anything else.
    queued: VecDeque<Update>,
    handed: Handed,
    reporter: Reporter,
    /// The `(epoch, version)` last reported: a new one is reported as soon
    /// as it is applied, not at the next heartbeat.
    reported: Option<(u64, u64)>,
}

/// Writes the edge report off the sync loop: a report sent across a WAN
/// costs a round trip that deltas arriving meanwhile must not wait for. One
/// writer task, so at most one write is in flight; a report handed over
/// while one is in flight replaces any still waiting and goes next, so the
/// latest position always reaches the fleet hash (the publish barrier,
/// `?wait=applied` on the control plane, waits on it).
#[derive(Debug)]
struct Reporter {
    transport: Arc<dyn Transport>,
    /// Whether `transport` is a report path of its own
    /// (`EDGE_REPORT_REDIS_URL`) rather than the transport synced from.
    separate: bool,
    /// The next report to write, `(edge id, JSON)`; the writer takes it.
    latest: Arc<std::sync::Mutex<Option<(String, String)>>>,
    wake: Arc<tokio::sync::Notify>,
    /// Started at the first report (inside the runtime).
    writer: Option<tokio::task::JoinHandle<()>>,
    /// Set once the read-only refusal was logged, cleared by a write that
    /// lands: one warning per episode, not one per heartbeat.
    read_only_warned: Arc<AtomicBool>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(w) = &self.writer {
            w.abort();
        }
    }
}

impl Reporter {
    fn new(transport: Arc<dyn Transport>, separate: bool) -> Self {
        Self {
            transport,
            separate,
            latest: Arc::default(),
            wake: Arc::default(),
            writer: None,
            read_only_warned: Arc::default(),
        }
    }

    fn send(&mut self, edge: &str, report: String) {
        if !self.transport.is_connected() {
            // It would only wait for its timeout.
            return;
        }
        if let Ok(mut slot) = self.latest.lock() {
            *slot = Some((edge.to_owned(), report));
        }
        if self.writer.is_none() {
            self.writer = Some(tokio::spawn(write_reports(
                self.transport.clone(),
                self.latest.clone(),
                self.wake.clone(),
                self.read_only_warned.clone(),
                self.separate,
            )));
        }
        // A permit is kept when the writer is busy: it looks again after.
        self.wake.notify_one();
    }
}

/// The writer task: writes whatever report is waiting, one at a time.
async fn write_reports(
    transport: Arc<dyn Transport>,
    latest: Arc<std::sync::Mutex<Option<(String, String)>>>,
    wake: Arc<tokio::sync::Notify>,
    warned: Arc<AtomicBool>,
    separate: bool,
) {
    loop {
        wake.notified().await;
        while let Some((edge, report)) = latest.lock().ok().and_then(|mut s| s.take()) {
            match transport.report(&edge, report).await {
                Ok(()) => warned.store(false, Ordering::Relaxed),
                Err(e) if is_read_only(&e) => {
                    if !warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "{}", read_only_advice(separate));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "edge report not written"),
            }
        }
    }
}

/// Whether Redis refused a write because it is a read-only replica.
fn is_read_only(e: &BusError) -> bool {
    // fred keeps the server's error text: "READONLY You can't write against
    // a read only replica."
    e.to_string().contains("READONLY")
}

fn read_only_advice(separate: bool) -> &'static str {
    if separate {
        "the edge report cannot be written: EDGE_REPORT_REDIS_URL points at a read-only \
         replica; point it at the Redis primary the control plane reads"
    } else {
        "the edge report cannot be written: REDIS_URL is a read-only replica, so this edge is \
         missing from the control plane's fleet view; set EDGE_REPORT_REDIS_URL to the Redis \
         primary the control plane reads"
    }
}

impl BusSource {
    /// Opens the feed; returns at once (the transport may be down: it
    /// keeps reconnecting).
    pub fn new(config: SyncConfig, bus: Arc<dyn Transport>) -> Result<Self, BusError> {
        let feed = bus.feed()?;
        let mut tick = tokio::time::interval(config.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            config,
            reporter: Reporter::new(bus.clone(), false),
            bus,
            feed,
            tick,
            connected: false,
            subscribed: false,
            behind: true,
            may_retry: true,
            refused_snapshot: None,
            refused_statement: None,
            stated: None,
            catch_up: None,
            queued: VecDeque::new(),
            handed: Handed::Other,
            reported: None,
        })
    }

    /// Handles one channel message: a delta to hand out, or nothing.
    fn on_message(&mut self, bytes: Vec<u8>, at: &Applier) -> Option<Update> {
        if is_envelope(&bytes) {
            return Some(Update::SignedDelta(bytes));
        }
        // A head notice: a change too big for the channel, or a snapshot.
        // It is news a failed catch-up waited for (the head was missing, or
        // the snapshot refused): try again now rather than at the next
        // check. Notices come once per snapshot or oversized change, never
        // per delta, so this cannot turn into a retry per message.
        match Head::parse(&bytes) {
            Ok(h) if position(at).is_at(h) => {}
            _ => (self.behind, self.may_retry) = (true, true),
        }
        None
    }

    /// The periodic check: whether the state matches the head.
    async fn check(&self, at: &Applier) -> Result<bool, SyncError> {
        Ok(self.bus.head().await?.is_some_and(|h| position(at).is_at(h)))
    }

    /// Performs the catch-up's actions until one hands out an update;
    /// `None` once the catch-up is over.
    async fn advance(&mut self, at: &Applier) -> Result<Option<Update>, SyncError> {
        // Out of `self` while its fetches borrow it; back in while an update
        // it handed out is applied, so `outcome` reaches it.
        let Some(mut c) = self.catch_up.take() else { return Ok(None) };
        loop {
            match c.next(position(at)) {
                Action::ReadHead => match self.bus.head().await? {
                    Some(head) => c.heard(head),
                    None => return Err(SyncError::Missing("head")),
                },
                Action::ReadRing { after } => c.read(self.bus.ring_after(after).await?),
                Action::Snapshot => {
                    if let Some(update) = self.fetch_snapshot().await? {
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

    /// The snapshot to hand out, or `None` when the bus still holds the
    /// one refused last.
    async fn fetch_snapshot(&mut self) -> Result<Option<Update>, SyncError> {
        // The header (hash and signature) is enough to recognise an
        // envelope already refused, without fetching it all again.
        if let Some(refused) = &self.refused_snapshot
            && self.bus.snapshot_prefix(HEADER_LEN).await?.as_ref() == Some(refused)
        {
            return Ok(None);
        }
        let Some(bytes) = self.bus.snapshot().await? else {
            return Err(SyncError::Missing("snapshot"));
        };
        self.handed = Handed::Snapshot(bytes.get(..HEADER_LEN).map(<[u8]>::to_vec));
        Ok(Some(Update::SignedSnapshot { bytes }))
    }

    /// A snapshot for the disk copy when the disk log has grown long and
    /// the bus holds a newer snapshot (header read first, so a snapshot
    /// that is not newer is never fetched whole).
    async fn compact_disk(&self, at: &Applier) -> Option<Update> {
        let on_disk = at.wants_disk_snapshot()?;
        let header = self.bus.snapshot_prefix(HEADER_LEN).await.ok().flatten();
        // Bytes 16..24 of the header: the version, little endian.
        let version = header
            .as_deref()
            .and_then(|b| b.get(16..24))
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_le_bytes);
        if version.is_none_or(|v| v <= on_disk) {
            return None;
        }
        self.bus.snapshot().await.ok().flatten().map(Update::DiskBase)
    }

    /// Writes this edge's report to the fleet hash (in the background).
    fn heartbeat(&mut self, at: &Applier) {
        let now = at.clock().now_ms();
        let report = EdgeReport::of(&self.config.edge_id, &self.config.region, at, now);
        self.reporter.send(&self.config.edge_id, report.to_json());
    }

    /// One check interval: compare with the head, report, keep the disk
    /// copy short.
    async fn on_tick(&mut self, at: &Applier) {
        self.may_retry = true;
        if !self.bus.is_connected() {
            // Every command would only wait for its timeout and hold up the
            // loop: skip the check and wait for the reconnect (the failed
            // connection itself is counted as it is reported). A report
            // path of its own may still reach the control plane: an edge
            // cut off from its Redis is exactly what the fleet view must
            // show.
            self.behind = true;
            if self.reporter.separate {
                self.heartbeat(at);
            }
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
        self.check_statement(at).await;
        self.heartbeat(at);
        if !self.behind
            && let Some(base) = self.compact_disk(at).await
        {
            self.queued.push_back(base);
        }
        at.note_check();
    }

    /// Reads the leader's statement of the head and, when it verifies and
    /// is newer than any seen, records its time: what `stale` is judged by.
    /// A forged or unreadable one is counted and logged once per distinct
    /// value; an older one (replayed) changes nothing.
    async fn check_statement(&mut self, at: &Applier) {
        let bytes = match self.bus.statement().await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "statement read failed");
                return;
            }
        };
        let keys = &self.config.verify_keys;
        match envelope::with_any_key(keys, |k| envelope::decode_statement(&bytes, Some(k))) {
            Ok((_, s)) => {
                let state = at.state();
                if state.freshness().note(s.issued_at_ms) {
                    self.refused_statement = None;
                    self.stated = Some((s.epoch, s.version));
                }
                let behind = self.stated.is_some_and(|stated| {
                    crate::sync::apply::order((state.epoch(), state.version()), stated).is_lt()
                });
                state.freshness().note_behind(behind, at.clock().now_ms());
            }
            Err(e) => {
                if self.refused_statement.as_ref() != Some(&bytes) {
                    self.refused_statement = Some(bytes);
                    at.metrics().statements_refused.inc();
                    tracing::warn!(error = %e, "statement of the head refused");
                }
            }
        }
    }

    fn catch_up_failed(&mut self, at: &Applier, e: &SyncError) {
        self.catch_up = None;
        self.may_retry = false;
        at.note_failure();
        tracing::warn!(error = %e, "catch-up failed; retrying at next check");
    }
}

/// Where the applier's state stands, for the catch-up and the checks.
fn position(at: &Applier) -> Position {
    let s = at.state();
    Position { loaded: s.is_loaded(), epoch: s.epoch(), version: s.version() }
}

impl Source for BusSource {
    async fn next(&mut self, at: &Applier) -> Option<Update> {
        loop {
            // Called again right after each update was applied: a new
            // position reaches the fleet hash at once.
            let s = at.state();
            let now_at = s.is_loaded().then(|| (s.epoch(), s.version()));
            if now_at.is_some() && now_at != self.reported {
                self.reported = now_at;
                self.heartbeat(at);
            }
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
                match self.feed.subscribe().await {
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
                event = self.feed.next() => match event {
                    Event::Message(bytes) => if let Some(u) = self.on_message(bytes, at) {
                        self.handed = Handed::Live;
                        return Some(u);
                    },
                    Event::Lagged(n) => {
                        tracing::warn!(dropped = n, "channel receiver lagged; catching up");
                        self.behind = true;
                    }
                    Event::Connected => {
                        tracing::info!("bus (re)connected: resubscribing and checking the head");
                        self.connected = true;
                        self.subscribed = false;
                        self.may_retry = true;
                    }
                    Event::Failed(e) => {
                        tracing::debug!(error = %e, "bus connection failed; reconnecting");
                        self.connected = false;
                        at.note_failure();
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_replica_is_told_from_other_failures() {
        let refused = |text: &str| BusError::Unavailable {
            transport: "redis",
            source: text.to_owned().into(),
        };
        assert!(is_read_only(&refused(
            "Unknown Error: READONLY You can't write against a read only replica."
        )));
        assert!(!is_read_only(&refused("IO Error: connection refused")));
        assert!(read_only_advice(false).contains("EDGE_REPORT_REDIS_URL"));
        assert!(read_only_advice(true).contains("EDGE_REPORT_REDIS_URL"));
    }
}
