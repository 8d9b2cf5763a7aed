//! Safe apply, the one path every update of every source takes: signed
//! envelopes verified, decoded within limits and passed through the shrink
//! guard; the [`State`] changed only by what passes. No I/O here, so the
//! rules are tested by feeding bytes, and no wall clock of its own: the
//! time comes from the injected [`Clock`].
//!
//! Every snapshot and delta applied from Redis is also handed to the disk
//! writer as the envelope received (see [`crate::persist`]).

use std::sync::Arc;

use nexus_protocol::envelope::{self, Limits};
use nexus_protocol::signing::VerifyingKey;
use nexus_protocol::{Delta, Snapshot};
use tokio::sync::watch;

use super::guard::{self, Census};
use super::lag::{LagSummary, LagWindow};
use super::update::{Progress, Refusal, Step, Update};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::persist::{Saved, Writer};
use crate::state::{Applied, SourceKind, State};
use crate::table::key_of;

/// The last update refused, as the edge report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub at_ms: i64,
    pub reason: String,
}

/// Applies updates to the state and keeps what the edge report needs.
#[derive(Debug)]
pub struct Applier {
    state: Arc<State>,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// `None`: only trusted local updates are accepted (file mode).
    /// Empty: only trusted local updates are accepted (file mode).
    keys: Vec<VerifyingKey>,
    writer: Option<Writer>,
    /// Where the state comes from while the source confirms it (a state
    /// restored from disk says `Disk` until then).
    live: SourceKind,
    /// Active aliases per context of the current state, for the guard.
    census: Option<Census>,
    /// Content hash of the last envelope applied.
    content_hash: [u8; 32],
    applied_at_ms: i64,
    last_rejection: Option<Rejection>,
    /// Commit→applied lag of recent updates, for the report.
    lag: LagWindow,
    /// When this applier was made (the edge started). A change committed
    /// before it is no propagation lag of this edge: it is what a fresh
    /// edge catches up on (up to a ring's worth of deltas on top of the
    /// snapshot it loads first), however old.
    started_at_ms: i64,
    /// While the disk copy is restored: its updates were applied long after
    /// their commit because the edge was not running, which is no
    /// propagation lag.
    restoring: bool,
    /// Version of the snapshot on disk, and deltas logged after it.
    disk_snapshot: u64,
    disk_log: u64,
    progress: watch::Sender<Progress>,
}

/// Deltas logged on disk after which a newer snapshot from Redis is worth
/// writing there, so the log stays short (the publisher rebuilds its
/// snapshot every 1,000 versions).
pub const DISK_LOG_MAX: u64 = 1_024;

impl Applier {
    /// An applier for `state` that accepts trusted local updates only; see
    /// [`with_key`](Self::with_key) and [`with_writer`](Self::with_writer).
    pub fn new(state: Arc<State>, metrics: Arc<Metrics>, clock: Clock) -> Self {
        let started_at_ms = clock.now_ms();
        Self {
            live: state.source(),
            state,
            metrics,
            clock,
            keys: Vec::new(),
            writer: None,
            census: None,
            content_hash: [0; 32],
            applied_at_ms: 0,
            last_rejection: None,
            lag: LagWindow::new(),
            started_at_ms,
            restoring: false,
            disk_snapshot: 0,
            disk_log: 0,
            progress: watch::Sender::new(Progress::default()),
        }
    }

    /// Accepts signed envelopes, checked against `key`.
    pub fn with_key(self, key: VerifyingKey) -> Self {
        self.with_keys(vec![key])
    }

    /// Accepts signed envelopes signed with any of `keys` (a rotation).
    pub fn with_keys(mut self, keys: Vec<VerifyingKey>) -> Self {
        self.keys = keys;
        self
    }

    /// Hands every envelope applied to the disk writer.
    pub fn with_writer(mut self, writer: Writer) -> Self {
        self.writer = Some(writer);
        self
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn content_hash(&self) -> [u8; 32] {
        self.content_hash
    }

    pub fn applied_at_ms(&self) -> i64 {
        self.applied_at_ms
    }

    pub fn last_rejection(&self) -> Option<&Rejection> {
        self.last_rejection.as_ref()
    }

    /// Commit→applied lag of the updates applied recently (see
    /// [`super::lag`]); `None` when none was.
    pub fn lag(&self, now_ms: i64) -> Option<LagSummary> {
        self.lag.summary(now_ms)
    }

    /// Sync's progress, updated after every step.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// A source finished one of its periodic checks.
    pub fn note_check(&self) {
        self.progress.send_modify(|p| p.checks += 1);
    }

    /// A source failed to get a state (see [`Progress::failures`]).
    pub fn note_failure(&self) {
        self.progress.send_modify(|p| p.failures += 1);
    }

    /// Whether the disk log has grown enough to replace the disk snapshot
    /// with a newer one, and the version it must be newer than.
    pub fn wants_disk_snapshot(&self) -> Option<u64> {
        (self.writer.is_some() && self.disk_log > DISK_LOG_MAX).then_some(self.disk_snapshot)
    }

    /// Applies one update: the only way the state changes.
    pub fn apply(&mut self, update: Update) -> Step {
        let step = match update {
            Update::SignedSnapshot { bytes } => self.signed_snapshot(bytes),
            Update::SignedDelta(bytes) => self.signed_delta(&bytes),
            Update::Snapshot(s) => self.snapshot(&s, [0; 32]),
            Update::Delta(d) => self.delta(&d, [0; 32]),
            Update::Unchanged => {
                self.state.set_source(self.live);
                self.state.confirm(self.clock.now_ms());
                Step::Unchanged
            }
            Update::Rejected(e) => self.refused(Refusal::Source(e)),
            Update::DiskBase(bytes) => {
                if self.refresh_disk_snapshot(bytes) {
                    tracing::info!("disk copy rebased on a newer snapshot from Redis");
                }
                Step::Unchanged
            }
        };
        let (epoch, version) = (self.state.epoch(), self.state.version());
        self.progress.send_modify(|p| {
            (p.epoch, p.version) = (epoch, version);
            p.steps += 1;
        });
        step
    }

    fn keys(&mut self) -> Result<Vec<VerifyingKey>, Step> {
        if self.keys.is_empty() {
            return Err(self.refused(Refusal::NoKey));
        }
        Ok(self.keys.clone())
    }

    fn signed_snapshot(&mut self, bytes: Vec<u8>) -> Step {
        let keys = match self.keys() {
            Ok(k) => k,
            Err(refused) => return refused,
        };
        let decoded = envelope::with_any_key(&keys, |k| {
            envelope::decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(k))
        });
        let (header, snapshot) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => return self.refused(e.into()),
        };
        // A snapshot that replaces a state the edge was following (a
        // catch-up past the ring, a change published as a snapshot) counts
        // as lag from when it was built: its newest change was committed no
        // later. The first state of an edge that just started (or one
        // restored from disk) is no propagation lag, however old.
        let s = &self.state;
        let following = s.is_loaded() && s.source() != SourceKind::Disk && !self.restoring;
        let step = self.snapshot(&snapshot, header.content_hash);
        if let Step::Applied { .. } = step
            && following
            && snapshot.created_at_ms > 0
        {
            self.note_lag(snapshot.created_at_ms, self.applied_at_ms);
        }
        if let (Step::Applied { .. }, Some(w)) = (&step, &self.writer) {
            w.snapshot(bytes, snapshot.epoch, snapshot.version);
            (self.disk_snapshot, self.disk_log) = (snapshot.version, 0);
        }
        step
    }

    /// Installs `snapshot` if it is later than the state ([`order`]) and
    /// the guard lets it; the same state is nothing to do, an older one is
    /// refused.
    fn snapshot(&mut self, snapshot: &Snapshot, hash: [u8; 32]) -> Step {
        let s = &self.state;
        if s.is_loaded() {
            let (holding, offered) = ((s.epoch(), s.version()), (snapshot.epoch, snapshot.version));
            match order(offered, holding) {
                std::cmp::Ordering::Equal => return Step::Unchanged,
                std::cmp::Ordering::Less => {
                    self.metrics.reloads_older.inc();
                    return self.refused(Refusal::Older { offered, holding });
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        let census = Census::of(&snapshot.records);
        if !snapshot.intended_shrink {
            // A state restored from disk counts as no state: it may be far
            // behind, and a shrink since then was explained to the edges
            // that were listening, not to this one. Refusing would leave the
            // edge stuck on its old copy; a fresh edge accepts it anyway.
            let guarded = s.is_loaded() && s.source() != SourceKind::Disk;
            if let Some(current) = self.census.as_ref().filter(|_| guarded)
                && let Err(e) = guard::check_counts(current, &census)
            {
                return self.refused(e.into());
            }
        }
        let now = self.clock.now_ms();
        self.state.install_snapshot(snapshot, now);
        self.census = Some(census);
        self.content_hash = hash;
        self.applied_at_ms = now;
        self.metrics.reloads_ok.inc();
        Step::Applied { version: snapshot.version }
    }

    fn signed_delta(&mut self, bytes: &[u8]) -> Step {
        let keys = match self.keys() {
            Ok(k) => k,
            Err(refused) => return refused,
        };
        let decoded = envelope::with_any_key(&keys, |k| {
            envelope::decode_delta(bytes, &Limits::DELTA, Some(k))
        });
        let (header, delta) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => return self.refused(e.into()),
        };
        let step = self.delta(&delta, header.content_hash);
        if let (Step::Applied { .. }, Some(w)) = (&step, &self.writer) {
            w.delta(bytes.to_vec());
            self.disk_log += 1;
        }
        step
    }

    /// The one delta step: [`State::apply_delta`] decides whether `delta`
    /// fits; the census follows only a delta that was applied.
    fn delta(&mut self, delta: &Delta, hash: [u8; 32]) -> Step {
        // Read before the delta overwrites the entries it changes.
        let shift = self.census_shift(delta);
        let now = self.clock.now_ms();
        match self.state.apply_delta(delta, now) {
            Ok(Applied::Changed { version, .. }) => {
                if let Some(census) = self.census.as_mut() {
                    for (context, by) in shift {
                        census.shift(context, by);
                    }
                }
                self.content_hash = hash;
                self.applied_at_ms = now;
                if !self.restoring {
                    self.note_lag(delta.committed_at_ms, now);
                }
                Step::Applied { version }
            }
            Ok(Applied::Stale) => Step::Unchanged,
            Err(missed) => Step::Missed(missed),
        }
    }

    /// Records a change committed at `committed_at_ms` and applied at
    /// `applied_at_ms` as propagation lag (the metric and the report's
    /// window), unless it was committed before this edge started.
    fn note_lag(&mut self, committed_at_ms: i64, applied_at_ms: i64) {
        if committed_at_ms < self.started_at_ms {
            return;
        }
        let lag_ms = (applied_at_ms - committed_at_ms).max(0);
        self.metrics.sync_lag.observe(lag_ms as f64 / 1000.0);
        self.lag.record(committed_at_ms, applied_at_ms);
    }

    /// How the active count of each context would move if `delta` were
    /// applied to the current table.
    fn census_shift<'d>(&self, delta: &'d Delta) -> Vec<(&'d str, i64)> {
        if self.census.is_none() {
            return Vec::new();
        }
        let guard = self.state.table();
        let Some(table) = guard.as_ref() else { return Vec::new() };
        let table = table.pin();
        let was_active =
            |ctx: &str, alias: &str| table.lookup(&key_of(ctx, alias)).is_some_and(|e| e.is_active);
        let upserts = delta.upserts.iter().map(|r| {
            let before = was_active(r.context.as_str(), r.alias.as_str());
            (r.context.as_str(), i64::from(r.is_active) - i64::from(before))
        });
        let removals = delta.removals.iter().map(|k| {
            let before = was_active(k.context.as_str(), k.alias.as_str());
            (k.context.as_str(), -i64::from(before))
        });
        upserts.chain(removals).filter(|&(_, by)| by != 0).collect()
    }

    /// Writes `bytes` (a snapshot envelope at or behind the state) to disk
    /// as the new base of the log, once its signature and hash check. The
    /// state itself is not touched. Returns whether it was written.
    fn refresh_disk_snapshot(&mut self, bytes: Vec<u8>) -> bool {
        let Some(w) = &self.writer else { return false };
        if self.keys.is_empty() {
            return false;
        }
        let opened = envelope::with_any_key(&self.keys, |k| {
            envelope::open(&bytes, Limits::SNAPSHOT.max_payload, Some(k))
        });
        let Ok((h, _)) = opened else { return false };
        let state = &self.state;
        let fits = h.kind == envelope::Kind::Snapshot
            && h.epoch == state.epoch()
            && h.version > self.disk_snapshot
            && h.version <= state.version();
        if fits {
            w.snapshot(bytes, h.epoch, h.version);
            self.disk_log = state.version() - h.version;
            self.disk_snapshot = h.version;
        }
        fits
    }

    /// Installs a saved disk copy: the snapshot, then every delta after it
    /// that fits. The state's age is the age of the files.
    pub fn restore(&mut self, saved: Saved) -> Result<u64, Refusal> {
        // What is on disk is not written back to it.
        let writer = self.writer.take();
        self.restoring = true;
        let result = self.restore_inner(saved);
        (self.writer, self.restoring) = (writer, false);
        result
    }

    fn restore_inner(&mut self, saved: Saved) -> Result<u64, Refusal> {
        match self.apply(Update::SignedSnapshot { bytes: saved.snapshot }) {
            Step::Refused(e) => return Err(e),
            Step::Applied { .. } | Step::Unchanged | Step::Missed(_) => {}
        }
        for d in saved.deltas {
            // The rest of the log does not continue this state.
            if !self.apply(Update::SignedDelta(d)).continues() {
                break;
            }
        }
        self.state.set_source(SourceKind::Disk);
        self.state.confirm(saved.saved_at_ms);
        Ok(self.state.version())
    }

    /// Records a refusal (report, counter, log) as the step's result.
    fn refused(&mut self, e: Refusal) -> Step {
        tracing::warn!(error = %e, "update refused; the current state stays");
        self.last_rejection = Some(Rejection { at_ms: self.clock.now_ms(), reason: e.to_string() });
        self.metrics.reloads_rejected.inc();
        Step::Refused(e)
    }
}

/// The order of states, the one rule of "never go back": epochs are ordered
/// (`epoch bump` only moves the registry's forward), and within an epoch
/// versions are. Whatever the source (Redis, the disk copy, a peer), an
/// edge installs only a state later than the one it holds, so whoever can
/// write Redis can replay old signed states but never roll an edge back.
pub fn order(a: (u64, u64), b: (u64, u64)) -> std::cmp::Ordering {
    a.cmp(&b)
}

/// Whether a channel message is an envelope (else it may be a head notice).
pub fn is_envelope(bytes: &[u8]) -> bool {
    bytes.starts_with(&envelope::MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DeltaRefused;
    use nexus_protocol::envelope::{encode_delta, encode_snapshot};
    use nexus_protocol::signing::{dev_signing_key, dev_verify_key};
    use nexus_protocol::{AliasName, AliasRecord, Canonical, Context};

    fn rec(alias: &str, active: bool, version: u64) -> AliasRecord {
        AliasRecord {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse("https://x").unwrap(),
            description: None,
            expires_at_ms: None,
            is_active: active,
            version,
            updated_at_ms: 0,
        }
    }

    fn snapshot(version: u64, records: Vec<AliasRecord>) -> Vec<u8> {
        let contexts = nexus_protocol::KnownContexts::of_records(&records);
        let s = Snapshot {
            epoch: 1,
            version,
            created_at_ms: 0,
            intended_shrink: false,
            records,
            contexts,
            credentials: Default::default(),
        };
        encode_snapshot(&s, Some(&dev_signing_key()))
    }

    fn delta(from: u64, upserts: Vec<AliasRecord>) -> Vec<u8> {
        let d = Delta {
            epoch: 1,
            from_version: from,
            to_version: from + 1,
            committed_at_ms: 0,
            upserts,
            removals: vec![],
            contexts: None,
            credentials: Default::default(),
        };
        encode_delta(&d, Some(&dev_signing_key()))
    }

    fn applier() -> Applier {
        let state = Arc::new(State::new(SourceKind::Redis));
        Applier::new(state, Arc::new(Metrics::new()), Clock::system()).with_key(dev_verify_key())
    }

    fn snap(a: &mut Applier, bytes: Vec<u8>) -> Step {
        a.apply(Update::SignedSnapshot { bytes })
    }

    fn del(a: &mut Applier, bytes: Vec<u8>) -> Step {
        a.apply(Update::SignedDelta(bytes))
    }

    #[test]
    fn a_shrink_made_by_applied_deltas_is_not_refused_again() {
        let mut a = applier();
        let ten: Vec<_> = (0..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        snap(&mut a, snapshot(1, ten));
        // Deactivate eight, one delta each: the census follows.
        for i in 0..8u64 {
            let step = del(&mut a, delta(1 + i, vec![rec(&format!("a{i}"), false, 2 + i)]));
            assert!(matches!(step, Step::Applied { version } if version == 2 + i), "{step:?}");
        }
        let two: Vec<_> = (8..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        assert!(matches!(snap(&mut a, snapshot(9, two)), Step::Unchanged));
        let two: Vec<_> = (8..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        assert!(matches!(snap(&mut a, snapshot(12, two)), Step::Applied { version: 12 }));
        assert!(a.last_rejection().is_none());
    }

    #[test]
    fn refusals_are_recorded_and_leave_the_state_alone() {
        let clock = Clock::manual(1_000);
        let state = Arc::new(State::new(SourceKind::Redis));
        let mut a =
            Applier::new(state, Arc::new(Metrics::new()), clock.clone()).with_key(dev_verify_key());
        let step = del(&mut a, delta(0, vec![]));
        assert!(matches!(step, Step::Missed(DeltaRefused::NoState)), "{step:?}");
        let four: Vec<_> = (0..4).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        snap(&mut a, snapshot(1, four));
        assert_eq!(a.applied_at_ms(), 1_000, "the injected clock, not the wall");
        let hash = a.content_hash();
        assert!(matches!(
            snap(&mut a, snapshot(2, vec![rec("a0", true, 2)])),
            Step::Refused(Refusal::Shrink(guard::Shrink::DropsMost { had: 4, has: 1 }))
        ));
        clock.advance(5);
        let mut forged = delta(1, vec![rec("evil", true, 2)]);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(matches!(del(&mut a, forged), Step::Refused(Refusal::Envelope(_))));
        assert_eq!((a.state().version(), a.content_hash()), (1, hash));
        assert!(a.last_rejection().is_some_and(|r| r.reason.contains("hash")));
        assert_eq!(a.last_rejection().map(|r| r.at_ms), Some(1_005));
        assert!(matches!(del(&mut a, delta(5, vec![])), Step::Missed(DeltaRefused::Gap)));
        assert!(matches!(del(&mut a, delta(0, vec![])), Step::Unchanged));
        let p = *a.progress().borrow();
        assert_eq!((p.epoch, p.version, p.steps), (1, 1, 6));
    }

    #[test]
    fn without_a_key_signed_envelopes_are_refused_and_local_snapshots_counted_once() {
        let metrics = Arc::new(Metrics::new());
        let state = Arc::new(State::new(SourceKind::File));
        let mut a = Applier::new(state, metrics.clone(), Clock::manual(7));
        assert!(matches!(snap(&mut a, snapshot(1, vec![])), Step::Refused(Refusal::NoKey)));
        let s = Snapshot {
            epoch: 3,
            version: 1,
            created_at_ms: 0,
            intended_shrink: true,
            records: vec![rec("a", true, 1)],
            contexts: nexus_protocol::KnownContexts::Any,
            credentials: Default::default(),
        };
        assert!(matches!(a.apply(Update::Snapshot(s)), Step::Applied { version: 1 }));
        assert!(matches!(a.apply(Update::Unchanged), Step::Unchanged));
        let refused = a.apply(Update::Rejected("does not parse".into()));
        assert!(matches!(refused, Step::Refused(Refusal::Source(_))));
        assert_eq!((metrics.reloads_ok.get(), metrics.reloads_rejected.get()), (1, 2));
        assert_eq!((a.state().source(), a.state().confirmed_at_ms()), (SourceKind::File, 7));
    }

    #[test]
    fn a_state_restored_from_disk_does_not_block_a_smaller_registry() {
        let mut a = applier();
        let ten: Vec<_> = (0..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        let saved = Saved { snapshot: snapshot(1, ten), deltas: vec![], saved_at_ms: 5 };
        assert_eq!(a.restore(saved).unwrap(), 1);
        assert_eq!((a.state().source(), a.state().confirmed_at_ms()), (SourceKind::Disk, 5));
        let two: Vec<_> = (0..2).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        assert!(matches!(snap(&mut a, snapshot(40, two)), Step::Applied { version: 40 }));
        // Confirmed by the source: back to what it is.
        a.apply(Update::Unchanged);
        assert_eq!(a.state().source(), SourceKind::Redis);
    }

    #[test]
    fn lag_is_recorded_for_deltas_and_followed_snapshots_not_for_a_restore_or_a_first_state() {
        // Both edges start at 9 s; the updates arrive at 10 s.
        let clock = Clock::manual(9_000);
        let state = Arc::new(State::new(SourceKind::Redis));
        let mut a =
            Applier::new(state, Arc::new(Metrics::new()), clock.clone()).with_key(dev_verify_key());
        let fresh = Arc::new(State::new(SourceKind::Redis));
        let mut b =
            Applier::new(fresh, Arc::new(Metrics::new()), clock.clone()).with_key(dev_verify_key());
        clock.set(10_000);
        let saved = Saved {
            snapshot: snapshot(1, vec![rec("a", true, 1)]),
            // Committed at 0, restored at 10 s: the edge was down, not slow.
            deltas: vec![delta(1, vec![rec("b", true, 2)])],
            saved_at_ms: 5,
        };
        assert_eq!(a.restore(saved).unwrap(), 2);
        assert_eq!(a.lag(clock.now_ms()), None);
        let mut d = Delta {
            epoch: 1,
            from_version: 2,
            to_version: 3,
            committed_at_ms: 9_990,
            upserts: vec![rec("c", true, 3)],
            removals: vec![],
            contexts: None,
            credentials: Default::default(),
        };
        assert!(matches!(a.apply(Update::Delta(d.clone())), Step::Applied { version: 3 }));
        let lag = a.lag(clock.now_ms()).unwrap();
        assert_eq!((lag.p50_ms, lag.samples), (10, 1));
        (d.from_version, d.to_version, d.committed_at_ms) = (3, 4, 9_960);
        a.apply(Update::Delta(d.clone()));
        assert_eq!(a.lag(clock.now_ms()).map(|l| (l.p50_ms, l.p99_ms)), Some((10, 40)));
        // Committed before the edge started (caught up from the ring after
        // its first snapshot): applied, but no lag of this edge.
        (d.from_version, d.to_version, d.committed_at_ms) = (4, 5, 8_000);
        assert!(matches!(a.apply(Update::Delta(d)), Step::Applied { version: 5 }));
        let lag = a.lag(clock.now_ms()).unwrap();
        assert_eq!((lag.max_ms, lag.samples), (40, 2));

        // A fresh edge's first snapshot, built long ago, is not lag.
        let old = |version: u64, created_at_ms: i64| {
            let s = Snapshot {
                epoch: 1,
                version,
                created_at_ms,
                intended_shrink: false,
                records: vec![rec("a", true, 1)],
                contexts: nexus_protocol::KnownContexts::Any,
                credentials: Default::default(),
            };
            encode_snapshot(&s, Some(&dev_signing_key()))
        };
        assert!(matches!(snap(&mut b, old(5, 1)), Step::Applied { version: 5 }));
        assert_eq!(b.lag(clock.now_ms()), None);
        // The next one replaces a state it followed: it counts.
        assert!(matches!(snap(&mut b, old(9, 9_000)), Step::Applied { version: 9 }));
        assert_eq!(b.lag(clock.now_ms()).map(|l| l.max_ms), Some(1_000));
    }

    #[tokio::test]
    async fn the_disk_copy_is_rebased_only_on_a_verified_snapshot_behind_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let disk = crate::persist::Disk::open(dir.path()).unwrap();
        let writer = Writer::spawn(disk.clone()).unwrap();
        let mut a = applier().with_writer(writer.clone());
        snap(&mut a, snapshot(1, vec![rec("a", true, 1)]));
        for v in 1..4 {
            del(&mut a, delta(v, vec![rec(&format!("d{v}"), true, v + 1)]));
        }
        assert_eq!(a.wants_disk_snapshot(), None, "a short log is left alone");
        let at3 = snapshot(3, vec![rec("a", true, 1), rec("d1", true, 2), rec("d2", true, 3)]);
        let unsigned = {
            let mut b = at3.clone();
            b[7] = 0;
            b
        };
        assert!(!a.refresh_disk_snapshot(unsigned));
        assert!(!a.refresh_disk_snapshot(snapshot(9, vec![])), "ahead of the state");
        assert!(a.refresh_disk_snapshot(at3.clone()));
        assert!(!a.refresh_disk_snapshot(at3.clone()), "not newer than the disk copy");
        writer.flush().await;
        let saved = disk.load().unwrap().unwrap();
        assert_eq!((saved.snapshot, saved.deltas), (at3, vec![delta(3, vec![rec("d3", true, 4)])]));
    }
}
