//! The `aliases` table: create, read, list, update, deactivate, transfer.
//! Each write reads what its plan needs under the registry lock, lets the
//! domain plan it, and hands the plan to the ledger.

use chrono::{DateTime, Utc};
use nexus_protocol::AliasKey;
use serde_json::Value;

use super::alias_rows::{
    COLS, active_named, active_owned_at, current_owned_at, owned_from_row, owner_of,
};
use super::conflicts::{Audited, record};
use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};
use crate::domain::alias::{
    AliasPatch, AliasWrite, NewAlias, OwnedAlias, TransferPlan, UpdatePlan, plan_deactivate,
    plan_transfer, plan_update,
};
use crate::domain::conflict::{ConflictType, CreatePlan, ShadowPolicy, plan_create};
use crate::domain::governance::{Governance, Violation};
use crate::domain::rbac::Writer;

/// The result of a create.
#[derive(Debug)]
pub enum Created {
    /// Written; `shadowing` is the conflict recorded alongside, if any.
    New { alias: OwnedAlias, shadowing: Option<i32> },
    /// The same alias was already there (idempotent retry).
    Existing(OwnedAlias),
    /// Refused and recorded as conflict `id`.
    Conflict { id: i32, kind: ConflictType, existing: Value },
}

/// The result of an update, a deactivation or a transfer.
#[derive(Debug)]
pub enum Updated {
    Done(OwnedAlias),
    NotFound,
    Violation(Violation),
    /// The writer does not own it; this name does.
    NotOwner(String),
}

/// Filters of the list endpoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct AliasFilter {
    pub context: Option<String>,
    /// Contexts the caller may see; `None` means all.
    pub visible: Option<Vec<String>>,
    pub active: Option<bool>,
    pub q: Option<String>,
    pub after_id: Option<i32>,
    pub limit: i64,
}

impl AliasFilter {
    /// `q` as an `ILIKE` pattern: anywhere in the text, its `\`, `%` and
    /// `_` taken literally.
    pub(crate) fn pattern(&self) -> Option<String> {
        self.q.as_ref().map(|q| {
            let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            format!("%{escaped}%")
        })
    }
}

impl Store {
    /// Creates an alias (rules already checked by the caller). Under the
    /// lock: one read (the key and its shadows), the plan, one write.
    pub(crate) async fn create_alias(
        &self,
        new: &NewAlias,
        shadow: ShadowPolicy,
        actor: &Actor,
    ) -> Result<Created, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 1).await?;
        let (existing, shadows) = active_named(ledger.tx(), &new.key).await?;
        match plan_create(new, existing.as_ref(), &shadows, shadow) {
            CreatePlan::Existing(alias) => {
                let owner = owner_of(ledger.tx(), alias.id).await?;
                Ok(Created::Existing(OwnedAlias { row: alias, owner }))
            }
            CreatePlan::Refuse(c) => {
                let id = record(&mut ledger, std::slice::from_ref(&c), Audited::Each).await?[0];
                ledger.commit().await?;
                Ok(Created::Conflict { id, kind: c.kind, existing: c.existing })
            }
            CreatePlan::Write { shadowing } => {
                let alias = ledger.stage(&AliasWrite::Create(new.entry()))?;
                let shadowing = match shadowing {
                    Some(c) => Some(record(&mut ledger, &[c], Audited::Each).await?[0]),
                    None => None,
                };
                ledger.commit().await?;
                // A new row is owned by the actor's team or, when it has
                // none, by its creator (migration 0006 sets it from
                // created_by, which the ledger writes from the actor).
                Ok(Created::New {
                    alias: OwnedAlias { row: alias, owner: actor.owner_of_new().to_owned() },
                    shadowing,
                })
            }
        }
    }

    /// The alias at `key`: the active one, else the newest inactive one.
    pub async fn alias(&self, key: &AliasKey) -> Result<Option<OwnedAlias>, StoreError> {
        let client = self.client().await?;
        current_owned_at(&client, key).await
    }

    pub(crate) async fn list_aliases(
        &self,
        f: &AliasFilter,
    ) -> Result<Vec<OwnedAlias>, StoreError> {
        let client = self.client().await?;
        let pattern = f.pattern();
        let sql = format!(
            "SELECT {COLS} FROM aliases \
             WHERE ($1::TEXT IS NULL OR context = $1) \
               AND ($2::TEXT[] IS NULL OR context = ANY($2)) \
               AND ($3::BOOL IS NULL OR is_active = $3) \
               AND ($4::TEXT IS NULL OR alias ILIKE $4 OR canonical ILIKE $4 \
                    OR description ILIKE $4) \
               AND ($5::INT IS NULL OR id > $5) \
             ORDER BY id LIMIT $6"
        );
        let st = client.prepare_cached(&sql).await?;
        let rows = client
            .query(&st, &[&f.context, &f.visible, &f.active, &pattern, &f.after_id, &f.limit])
            .await?;
        rows.iter().map(owned_from_row).collect()
    }

    /// Applies `patch` to the alias at `key`, if `writer` may change it and
    /// the rules accept the result.
    pub(crate) async fn update_alias(
        &self,
        key: &AliasKey,
        patch: &AliasPatch,
        rules: &Governance,
        now: DateTime<Utc>,
        actor: &Actor,
        writer: &Writer,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let ledger = Ledger::open(&mut client, actor, 0).await?;
        let current = current_owned_at(ledger.tx(), key).await?;
        let plan = plan_update(current.as_ref(), patch, rules, now, writer);
        carry_out(ledger, plan, current).await
    }

    /// Deactivates the active alias at `key`, if `writer` may; edges stop
    /// resolving it.
    pub(crate) async fn deactivate_alias(
        &self,
        key: &AliasKey,
        rules: &Governance,
        actor: &Actor,
        writer: &Writer,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let ledger = Ledger::open(&mut client, actor, 0).await?;
        let active = active_owned_at(ledger.tx(), key).await?;
        let plan = plan_deactivate(active.as_ref(), rules, writer);
        carry_out(ledger, plan, active).await
    }

    /// Gives the alias at `key` (active, else the newest inactive one) the
    /// owner `to`. The row is rewritten unchanged, so the transfer takes a
    /// version (and shows in the alias's history) and its audit row
    /// (`alias.transfer`, before and after) is chained like any write's.
    pub(crate) async fn transfer_alias(
        &self,
        key: &AliasKey,
        to: &str,
        actor: &Actor,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let current = current_owned_at(ledger.tx(), key).await?;
        let (current, to) = match plan_transfer(current.as_ref(), to) {
            TransferPlan::NotFound => return Ok(Updated::NotFound),
            TransferPlan::Unchanged(c) => return Ok(Updated::Done(c)),
            TransferPlan::Write { current, to } => (current, to),
        };
        let id = current.row.id;
        // The ledger's statement never sets the owner, so setting it here,
        // in its transaction, is what the staged rewrite commits with.
        let st = ledger.tx().prepare_cached("UPDATE aliases SET owner = $1 WHERE id = $2").await?;
        ledger.tx().execute(&st, &[&to, &id]).await?;
        let entry = current.row.entry();
        ledger.bulk([], [(id, &entry)]);
        let mut after = current.clone();
        after.owner = to.clone();
        after.row.version = ledger.base() + 1;
        ledger.note(AuditEntry {
            action: "alias.transfer",
            target: Some(format!("{}/{}", key.context, key.alias)),
            details: Some(format!("owner {} -> {to}", current.owner)),
            before: Some(current.to_json()),
            after: Some(after.to_json()),
        });
        ledger.commit().await?;
        // Read back as committed (version and time stamped by the ledger).
        match current_owned_at(&client, key).await? {
            Some(done) => Ok(Updated::Done(done)),
            None => Err(StoreError::Corrupt(format!("alias {id} vanished after a transfer"))),
        }
    }
}

/// Carries out an update or deactivation plan made on `current` (a change
/// keeps its owner).
async fn carry_out(
    mut ledger: Ledger<'_>,
    plan: UpdatePlan,
    current: Option<OwnedAlias>,
) -> Result<Updated, StoreError> {
    match plan {
        UpdatePlan::NotFound => Ok(Updated::NotFound),
        UpdatePlan::Violation(v) => Ok(Updated::Violation(v)),
        UpdatePlan::NotOwner(o) => Ok(Updated::NotOwner(o)),
        UpdatePlan::Write(w) => {
            let alias = ledger.stage(&w)?;
            ledger.commit().await?;
            let owner = current.map(|c| c.owner).unwrap_or_default();
            Ok(Updated::Done(OwnedAlias { row: alias, owner }))
        }
    }
}
