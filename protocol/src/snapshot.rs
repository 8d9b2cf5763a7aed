//! Snapshots and deltas: the two things the control plane publishes.
//!
//! Every registry state is named by `(epoch, version)`. The version grows by
//! one with each committed change and never repeats; the epoch changes when
//! history may have forked (a restored database), and an edge that sees a new
//! epoch throws its state away and takes a fresh snapshot.

use serde::{Deserialize, Serialize};

use crate::record::{AliasKey, AliasRecord};

/// The whole registry at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub epoch: u64,
    pub version: u64,
    /// When the control plane built it (Unix ms).
    pub created_at_ms: i64,
    /// Set by the control plane when a large shrink is deliberate (a bulk
    /// deactivation, say); edges refuse an unexplained one.
    pub intended_shrink: bool,
    pub records: Vec<AliasRecord>,
}

/// The changes that take a registry from `from_version` to `to_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    pub epoch: u64,
    pub from_version: u64,
    pub to_version: u64,
    /// Commit time of the last change in the delta (Unix ms), so edges can
    /// measure commit→applied lag.
    pub committed_at_ms: i64,
    /// Records created or changed (a deactivation is an upsert with
    /// `is_active: false`).
    pub upserts: Vec<AliasRecord>,
    /// Records gone from the registry altogether.
    pub removals: Vec<AliasKey>,
}

/// Where a delta stands relative to an edge at `(epoch, version)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaFit {
    /// `from_version` is the edge's version: apply it.
    Next,
    /// Already applied (or older): ignore it.
    Stale,
    /// Something is missing in between: catch up from the ring or snapshot.
    Gap,
    /// Another epoch: take a fresh snapshot.
    OtherEpoch,
}

impl Delta {
    /// How this delta fits an edge that holds `(epoch, version)`.
    pub fn fit(&self, epoch: u64, version: u64) -> DeltaFit {
        if self.epoch != epoch {
            DeltaFit::OtherEpoch
        } else if self.to_version <= version {
            DeltaFit::Stale
        } else if self.from_version == version {
            DeltaFit::Next
        } else {
            DeltaFit::Gap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(epoch: u64, from: u64, to: u64) -> Delta {
        Delta {
            epoch,
            from_version: from,
            to_version: to,
            committed_at_ms: 0,
            upserts: vec![],
            removals: vec![],
        }
    }

    #[test]
    fn fit_orders_versions() {
        assert_eq!(delta(1, 5, 6).fit(1, 5), DeltaFit::Next);
        assert_eq!(delta(1, 4, 5).fit(1, 5), DeltaFit::Stale);
        assert_eq!(delta(1, 3, 4).fit(1, 5), DeltaFit::Stale);
        assert_eq!(delta(1, 6, 7).fit(1, 5), DeltaFit::Gap);
        assert_eq!(delta(2, 5, 6).fit(1, 5), DeltaFit::OtherEpoch);
    }
}
