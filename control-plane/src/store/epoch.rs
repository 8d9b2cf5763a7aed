//! A new epoch for the registry: what a database restored from a backup
//! needs. Its versions may repeat ones the edges already saw from the lost
//! history, so they must not be taken as a continuation: under a new epoch
//! the publisher sends a fresh snapshot and every edge throws its state away
//! for it.

use rand::Rng;
use serde_json::json;

use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};

impl Store {
    /// Gives the registry a new random epoch, audited (`registry.epoch_bump`,
    /// with the old and the new). Returns `(old, new)`.
    pub async fn bump_epoch(&self, actor: &Actor) -> Result<(i64, i64), StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let old = ledger.epoch();
        // Positive and within 53 bits, like the one migration 0002 draws
        // (JSON readers keep it exact); never the old one.
        let new = loop {
            let e = rand::rng().random_range(1..(1i64 << 53));
            if e != old {
                break e;
            }
        };
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
