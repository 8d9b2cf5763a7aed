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
}

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
        Ok(SnapshotStep::Installed { version: snapshot.version })
    }

    fn install(&mut self, snapshot: &Snapshot, hash: [u8; 32]) -> Result<(), Refusal> {
        let census = Census::of(&snapshot.records);
        if !snapshot.intended_shrink {
            let current = if self.state.is_loaded() { self.census.as_ref() } else { None };
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
        }
        Ok(step)
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
