//! A new epoch for the registry: what a database restored from a backup
//! needs. Its versions may repeat ones the edges already saw from the lost
//! history, so they must not be taken as a continuation: under a new epoch
//! the publisher sends a fresh snapshot and every edge throws its state away
//! for it.
//!
//! Epochs are ordered, and an edge takes a new one only if it is later
//! (it never goes back: see the edge's `sync::apply::order`). So a bump
//! moves the epoch forward, to the current time in milliseconds, or one
//! past the old epoch if that is larger (the first epoch of a registry is
//! drawn at random by migration 0002). The time makes the bump of a
//! restored database later than any epoch its lost history published,
//! whatever epoch the backup held.

use serde_json::json;

use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};

impl Store {
    /// Moves the registry to a later epoch ([`next_epoch`]), audited
    /// (`registry.epoch_bump`, with the old and the new). Returns `(old, new)`.
    pub async fn bump_epoch(&self, actor: &Actor) -> Result<(i64, i64), StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let old = ledger.epoch();
        let new = next_epoch(old, chrono::Utc::now().timestamp_millis());
        ledger.tx().execute("UPDATE registry SET epoch = $1 WHERE id = 1", &[&new]).await?;
        ledger.note(AuditEntry {
            action: "registry.epoch_bump",
            target: Some("registry".into()),
            details: Some(format!("epoch {old} -> {new}")),
            before: Some(json!({ "epoch": old })),
            after: Some(json!({ "epoch": new })),
        });
        ledger.commit().await?;
        Ok((old, new))
    }
}

/// The epoch after `old` at `now_ms`: later than `old`, and than any epoch
/// bumped before `now_ms`. Within 53 bits, like the one migration 0002
/// draws, so JSON readers keep it exact.
pub(crate) fn next_epoch(old: i64, now_ms: i64) -> i64 {
    old.saturating_add(1).max(now_ms).min(MAX_EPOCH)
}

/// The largest epoch: 2^53 - 1.
const MAX_EPOCH: i64 = (1 << 53) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_only_moves_forward() {
        let now = 1_765_000_000_000;
        // A random first epoch below the clock: the clock.
        assert_eq!(next_epoch(42, now), now);
        // One above it (drawn up to 2^53): one past it.
        assert_eq!(next_epoch(now + 7, now), now + 8);
        // Two bumps in the same millisecond still order.
        let first = next_epoch(42, now);
        assert!(next_epoch(first, now) > first);
        assert_eq!(next_epoch(MAX_EPOCH, now), MAX_EPOCH, "saturates within 53 bits");
    }
}
