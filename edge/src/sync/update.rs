//! The words between a source and the [`Applier`](super::apply::Applier):
//! what a source hands over ([`Update`]), what became of it ([`Step`],
//! the one result of every update of every source) and what sync has done
//! so far ([`Progress`], for whoever waits on it).

use nexus_protocol::{DecodeError, Delta, Snapshot};

use super::guard::Shrink;
use crate::state::DeltaRefused;

/// One thing a source has to say.
#[derive(Debug)]
pub enum Update {
    /// A signed snapshot envelope (Redis, the disk copy, a peer). Installed
    /// only when later than the state: a later epoch, or a later version in
    /// the same epoch (see [`crate::sync::apply`]).
    SignedSnapshot { bytes: Vec<u8> },
    /// A signed delta envelope.
    SignedDelta(Vec<u8>),
    /// A complete state from a trusted local source (the alias file, a
    /// test): nothing to verify.
    Snapshot(Snapshot),
    /// Changes from a trusted local source (a test feeding versions).
    Delta(Delta),
    /// The source still agrees with the state: refreshes its age.
    Unchanged,
    /// The source offered a state that could not be read (a file that does
    /// not parse); the old state stays.
    Rejected(Box<dyn std::error::Error + Send + Sync>),
    /// A signed snapshot at or behind the state, to become the new base of
    /// the disk copy; the state itself is not touched.
    DiskBase(Vec<u8>),
}

/// What became of one update.
#[derive(Debug)]
pub enum Step {
    /// The state moved to this version (a snapshot installed, a delta
    /// applied).
    Applied { version: u64 },
    /// Nothing to do: a duplicate or older delta, a snapshot not newer, the
    /// source confirming the state, a disk-only write.
    Unchanged,
    /// A delta that does not continue the state (decided by the one fit
    /// check, in [`crate::state::State::apply_delta`]): catch up.
    Missed(DeltaRefused),
    /// Refused: the state stays; counted, logged and reported.
    Refused(Refusal),
}

impl Step {
    /// Whether the state still follows the source (else catch up).
    pub fn continues(&self) -> bool {
        matches!(self, Step::Applied { .. } | Step::Unchanged)
    }
}

/// Why an update was not applied; the state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("envelope refused: {0}")]
    Envelope(#[from] DecodeError),
    #[error(transparent)]
    Shrink(#[from] Shrink),
    #[error("a signed envelope arrived but no verifying key is configured")]
    NoKey,
    #[error("source refused: {0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
    /// A validly signed state older than the one the edge holds: a replay,
    /// or a control plane whose database went back without `epoch bump`.
    #[error(
        "older state refused: offered {}:{}, holding {}:{} (an edge never goes back)",
        offered.0, offered.1, holding.0, holding.1
    )]
    Older { offered: (u64, u64), holding: (u64, u64) },
}

/// What sync has done so far, published on a watch channel after every
/// step, so a caller (a test, an operator tool) waits for an event instead
/// of sleeping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// `(epoch, version)` of the state after the last step.
    pub epoch: u64,
    pub version: u64,
    /// Updates handled, whatever became of them.
    pub steps: u64,
    /// Periodic checks of the source finished, whether or not the source
    /// answered: two more than now prove that a full check ran after now.
    pub checks: u64,
    /// Attempts to get a state from the source that failed (unreachable,
    /// nothing published yet, a catch-up that broke off).
    pub failures: u64,
}
