//! Safe apply: signed envelopes in, the [`State`] changed only by what
//! verifies, decodes within limits and passes the shrink guard. No Redis
//! here, so the rules are tested by feeding bytes.
//!
//! Every snapshot and delta applied from Redis is also handed to the disk
//! writer as the envelope received (see [`crate::persist`]).

use std::sync::Arc;

use nexus_protocol::envelope::{self, Limits};
use nexus_protocol::signing::VerifyingKey;
use nexus_protocol::{DecodeError, Delta, DeltaFit, Snapshot};

use super::guard::{self, Census, Shrink};
use crate::metrics::Metrics;
use crate::persist::{Saved, Writer};
use crate::service::now_ms;
use crate::state::{SourceKind, State};
use crate::table::key_of;

/// Why an envelope was not applied; the state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("envelope refused: {0}")]
    Envelope(#[from] DecodeError),
    #[error(transparent)]
    Shrink(#[from] Shrink),
}

/// What became of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStep {
    /// Installed: the state now is at this version.
    Installed { version: u64 },
    /// Not newer than the state (same epoch): nothing to do.
    NotNewer,
}

/// What became of a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaStep {
    Applied {
        version: u64,
    },
    /// A duplicate or older delta: ignored.
    Stale,
    /// Something is missing before it: catch up.
    Gap,
    /// Another epoch, or no state yet: a snapshot is needed.
    NeedSnapshot,
}

/// The last envelope refused, as the edge report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub at_ms: i64,
    pub reason: String,
}

/// Applies envelopes to the state and keeps what the edge report needs.
#[derive(Debug)]
pub struct Applier {
    state: Arc<State>,
    metrics: Arc<Metrics>,
    key: VerifyingKey,
    writer: Option<Writer>,
    /// Active aliases per context of the current state, for the guard.
    census: Option<Census>,
    /// Content hash of the last envelope applied.
    content_hash: [u8; 32],
    applied_at_ms: i64,
    last_rejection: Option<Rejection>,
    /// Version of the snapshot on disk, and deltas logged after it.
    disk_snapshot: u64,
    disk_log: u64,
}

/// Deltas logged on disk after which a newer snapshot from Redis is worth
/// writing there, so the log stays short (the publisher rebuilds its
/// snapshot every 1,000 versions).
pub const DISK_LOG_MAX: u64 = 1_024;

impl Applier {
    pub fn new(
        state: Arc<State>,
        metrics: Arc<Metrics>,
        key: VerifyingKey,
        writer: Option<Writer>,
    ) -> Self {
        Self {
            state,
            metrics,
            key,
            writer,
            census: None,
            content_hash: [0; 32],
            applied_at_ms: 0,
            last_rejection: None,
            disk_snapshot: 0,
            disk_log: 0,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
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

    /// Verifies, decodes and installs a snapshot envelope. With `force`, a
    /// snapshot older than the state in the same epoch is installed too
    /// (the edge found itself ahead of the control plane).
    pub fn snapshot(&mut self, bytes: Vec<u8>, force: bool) -> Result<SnapshotStep, Refusal> {
        let (header, snapshot) =
            self.refused_if(envelope::decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&self.key)))?;
        if self.state.is_loaded()
            && snapshot.epoch == self.state.epoch()
            && (snapshot.version == self.state.version()
                || (snapshot.version < self.state.version() && !force))
        {
            return Ok(SnapshotStep::NotNewer);
        }
        self.install(&snapshot, header.content_hash)?;
        if let Some(w) = &self.writer {
            w.snapshot(bytes, snapshot.epoch, snapshot.version);
        }
        (self.disk_snapshot, self.disk_log) = (snapshot.version, 0);
        Ok(SnapshotStep::Installed { version: snapshot.version })
    }

    fn install(&mut self, snapshot: &Snapshot, hash: [u8; 32]) -> Result<(), Refusal> {
        let census = Census::of(&snapshot.records);
        if !snapshot.intended_shrink {
            // A state restored from disk counts as no state: it may be far
            // behind, and a shrink since then was explained to the edges
            // that were listening, not to this one. Refusing would leave the
            // edge stuck on its old copy; a fresh edge accepts it anyway.
            let guarded = self.state.is_loaded() && self.state.source() != SourceKind::Disk;
            let current = if guarded { self.census.as_ref() } else { None };
            if let Some(current) = current {
                self.refused_if(guard::check_counts(current, &census))?;
            }
        }
        let now = now_ms();
        self.state.install_snapshot(snapshot, now);
        self.census = Some(census);
        self.content_hash = hash;
        self.applied_at_ms = now;
        self.metrics.reloads_ok.inc();
        Ok(())
    }

    /// Verifies, decodes and applies a delta envelope if it is the next one.
    pub fn delta(&mut self, bytes: &[u8]) -> Result<DeltaStep, Refusal> {
        let (header, delta) =
            self.refused_if(envelope::decode_delta(bytes, &Limits::DELTA, Some(&self.key)))?;
        let step = self.apply_delta(&delta, header.content_hash);
        if let (DeltaStep::Applied { .. }, Some(w)) = (step, &self.writer) {
            w.delta(bytes.to_vec());
            self.disk_log += 1;
        }
        Ok(step)
    }

    /// Whether the disk log has grown enough to replace the disk snapshot
    /// with a newer one, and the version it must be newer than.
    pub fn wants_disk_snapshot(&self) -> Option<u64> {
        (self.writer.is_some() && self.disk_log > DISK_LOG_MAX).then_some(self.disk_snapshot)
    }

    /// Writes `bytes` (a snapshot envelope at or behind the state) to disk
    /// as the new base of the log, once its signature and hash check. The
    /// state itself is not touched. Returns whether it was written.
    pub fn refresh_disk_snapshot(&mut self, bytes: Vec<u8>) -> bool {
        let Some(w) = &self.writer else { return false };
        let opened = envelope::open(&bytes, Limits::SNAPSHOT.max_payload, Some(&self.key));
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

    fn apply_delta(&mut self, delta: &Delta, hash: [u8; 32]) -> DeltaStep {
        if !self.state.is_loaded() {
            return DeltaStep::NeedSnapshot;
        }
        match delta.fit(self.state.epoch(), self.state.version()) {
            DeltaFit::Next => {}
            DeltaFit::Stale => return DeltaStep::Stale,
            DeltaFit::Gap => return DeltaStep::Gap,
            DeltaFit::OtherEpoch => return DeltaStep::NeedSnapshot,
        }
        self.count_changes(delta);
        let now = now_ms();
        match self.state.apply_delta(delta, now) {
            Ok(_) => {
                self.content_hash = hash;
                self.applied_at_ms = now;
                let lag_ms = (now - delta.committed_at_ms).max(0);
                self.metrics.sync_lag.observe(lag_ms as f64 / 1000.0);
                DeltaStep::Applied { version: delta.to_version }
            }
            // Checked just above; only a concurrent writer could get here,
            // and there is none: catch up to be safe.
            Err(_) => DeltaStep::Gap,
        }
    }

    /// Moves the census by what `delta` changes, reading the old entries
    /// before the delta overwrites them.
    fn count_changes(&mut self, delta: &Delta) {
        let Some(census) = self.census.as_mut() else { return };
        let guard = self.state.table();
        let Some(table) = guard.as_ref() else { return };
        let table = table.pin();
        let was_active =
            |ctx: &str, alias: &str| table.lookup(&key_of(ctx, alias)).is_some_and(|e| e.is_active);
        for r in &delta.upserts {
            let before = was_active(r.context.as_str(), r.alias.as_str());
            census.shift(r.context.as_str(), i64::from(r.is_active) - i64::from(before));
        }
        for k in &delta.removals {
            let before = was_active(k.context.as_str(), k.alias.as_str());
            census.shift(k.context.as_str(), -i64::from(before));
        }
    }

    /// Installs a saved disk copy: the snapshot, then every delta after it
    /// that fits. The state's age is the age of the files.
    pub fn restore(&mut self, saved: Saved) -> Result<u64, Refusal> {
        let writer = self.writer.take();
        let result = self.restore_inner(saved);
        self.writer = writer;
        result
    }

    fn restore_inner(&mut self, saved: Saved) -> Result<u64, Refusal> {
        self.snapshot(saved.snapshot, true)?;
        for d in &saved.deltas {
            match self.delta(d) {
                Ok(DeltaStep::Applied { .. } | DeltaStep::Stale) => {}
                // The rest of the log does not continue this state.
                Ok(_) | Err(_) => break,
            }
        }
        self.state.set_source(SourceKind::Disk);
        self.state.confirm(saved.saved_at_ms);
        Ok(self.state.version())
    }

    /// Records a refusal (report, counter, log) and passes it on.
    fn refused_if<T, E: Into<Refusal>>(&mut self, r: Result<T, E>) -> Result<T, Refusal> {
        r.map_err(|e| {
            let e = e.into();
            tracing::warn!(error = %e, "update refused; the current state stays");
            self.last_rejection = Some(Rejection { at_ms: now_ms(), reason: e.to_string() });
            self.metrics.reloads_rejected.inc();
            e
        })
    }
}

/// Whether a channel message is an envelope (else it may be a head notice).
pub fn is_envelope(bytes: &[u8]) -> bool {
    bytes.starts_with(&envelope::MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let s = Snapshot { epoch: 1, version, created_at_ms: 0, intended_shrink: false, records };
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
        };
        encode_delta(&d, Some(&dev_signing_key()))
    }

    fn applier() -> Applier {
        let state = Arc::new(State::new(SourceKind::Redis));
        Applier::new(state, Arc::new(Metrics::new()), dev_verify_key(), None)
    }

    #[test]
    fn a_shrink_made_by_applied_deltas_is_not_refused_again() {
        let mut a = applier();
        let ten: Vec<_> = (0..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        a.snapshot(snapshot(1, ten), false).unwrap();
        // Deactivate eight, one delta each: the census follows.
        for i in 0..8u64 {
            let step = a.delta(&delta(1 + i, vec![rec(&format!("a{i}"), false, 2 + i)])).unwrap();
            assert_eq!(step, DeltaStep::Applied { version: 2 + i });
        }
        let two: Vec<_> = (8..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        assert_eq!(a.snapshot(snapshot(9, two), false).unwrap(), SnapshotStep::NotNewer);
        let two: Vec<_> = (8..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        assert_eq!(
            a.snapshot(snapshot(12, two), false).unwrap(),
            SnapshotStep::Installed { version: 12 }
        );
        assert!(a.last_rejection().is_none());
    }

    #[test]
    fn refusals_are_recorded_and_leave_the_state_alone() {
        let mut a = applier();
        assert_eq!(a.delta(&delta(0, vec![])).unwrap(), DeltaStep::NeedSnapshot);
        let four: Vec<_> = (0..4).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        a.snapshot(snapshot(1, four), false).unwrap();
        let hash = a.content_hash();
        assert!(matches!(
            a.snapshot(snapshot(2, vec![rec("a0", true, 2)]), false),
            Err(Refusal::Shrink(Shrink::DropsMost { had: 4, has: 1 }))
        ));
        let mut forged = delta(1, vec![rec("evil", true, 2)]);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(matches!(a.delta(&forged), Err(Refusal::Envelope(_))));
        assert_eq!((a.state().version(), a.content_hash()), (1, hash));
        assert!(a.last_rejection().is_some_and(|r| r.reason.contains("hash")));
        assert_eq!(a.delta(&delta(5, vec![])).unwrap(), DeltaStep::Gap);
        assert_eq!(a.delta(&delta(0, vec![])).unwrap(), DeltaStep::Stale);
    }

    #[test]
    fn a_state_restored_from_disk_does_not_block_a_smaller_registry() {
        let mut a = applier();
        let ten: Vec<_> = (0..10).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        let saved = Saved { snapshot: snapshot(1, ten), deltas: vec![], saved_at_ms: 5 };
        assert_eq!(a.restore(saved).unwrap(), 1);
        assert_eq!((a.state().source(), a.state().confirmed_at_ms()), (SourceKind::Disk, 5));
        let two: Vec<_> = (0..2).map(|i| rec(&format!("a{i}"), true, 1)).collect();
        let step = a.snapshot(snapshot(40, two), false).unwrap();
        assert_eq!(step, SnapshotStep::Installed { version: 40 });
    }

    #[tokio::test]
    async fn the_disk_copy_is_rebased_only_on_a_verified_snapshot_behind_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let disk = crate::persist::Disk::open(dir.path()).unwrap();
        let writer = Writer::spawn(disk.clone()).unwrap();
        let state = Arc::new(State::new(SourceKind::Redis));
        let mut a =
            Applier::new(state, Arc::new(Metrics::new()), dev_verify_key(), Some(writer.clone()));
        a.snapshot(snapshot(1, vec![rec("a", true, 1)]), false).unwrap();
        for v in 1..4 {
            a.delta(&delta(v, vec![rec(&format!("d{v}"), true, v + 1)])).unwrap();
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
