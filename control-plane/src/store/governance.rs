//! The `governance_rules` table: the active rules document, replaced as a
//! whole (older documents stay, inactive, as history).

use deadpool_postgres::GenericClient;
use serde_json::Value;

use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};
use crate::domain::governance::GovernanceDoc;

/// The active rules document as stored, if one was ever stored.
async fn active_json(client: &impl GenericClient) -> Result<Option<Value>, StoreError> {
    let st = client
        .prepare_cached(
            "SELECT document FROM governance_rules WHERE is_active ORDER BY id DESC LIMIT 1",
        )
        .await?;
    Ok(client.query_opt(&st, &[]).await?.map(|r| r.get(0)))
}

/// The active rules document, if one was ever stored, as `client` sees it
/// (in the snapshot's transaction: the rules in force at its version).
pub(crate) async fn active_in(
    client: &impl GenericClient,
) -> Result<Option<GovernanceDoc>, StoreError> {
    active_json(client)
        .await?
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StoreError::corrupt("governance document", e))
}

impl Store {
    /// Makes `doc` the active rules, unless it already is. Returns whether
    /// anything changed.
    pub(crate) async fn put_governance(
        &self,
        name: &str,
        doc: &GovernanceDoc,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let json =
            serde_json::to_value(doc).map_err(|e| StoreError::corrupt("governance document", e))?;
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let tx = ledger.tx();
        let current = active_json(tx).await?;
        if current.as_ref() == Some(&json) {
            return Ok(false);
        }
        // A changed set of configured contexts takes a version, so edges
        // learn it in order with the alias changes around it. The first
        // rules ever stored take none: on a new registry nothing was
        // published yet that an edge could hold against them, and snapshots
        // read the rules in force beside the records.
        let before = current
            .as_ref()
            .map(|v| serde_json::from_value::<GovernanceDoc>(v.clone()))
            .transpose()
            .map_err(|e| StoreError::corrupt("stored governance document", e))?
            .map(|d| d.known_contexts());
        let after = doc.known_contexts();
        tx.execute("UPDATE governance_rules SET is_active = false WHERE is_active", &[]).await?;
        tx.execute(
            "INSERT INTO governance_rules (name, document, created_by) VALUES ($1, $2, $3)",
            &[&name, &json, &actor.name],
        )
        .await?;
        if before.is_some_and(|b| b != after) {
            ledger.contexts(&after)?;
        }
        ledger.note(AuditEntry {
            action: "governance.put",
            target: Some(format!("governance/{name}")),
            before: current,
            after: Some(json),
            ..Default::default()
        });
        ledger.commit().await?;
        Ok(true)
    }

    /// The active rules document, if one was ever stored.
    pub(crate) async fn governance(&self) -> Result<Option<GovernanceDoc>, StoreError> {
        active_in(&self.client().await?).await
    }
}
