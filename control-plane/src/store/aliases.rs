//! The `aliases` table: create, read, list, update, deactivate. Each write
//! reads what its plan needs under the registry lock, lets the domain plan
//! it, and hands the plan to the ledger.

use chrono::{DateTime, Utc};
use nexus_protocol::AliasKey;
use serde_json::Value;

use super::alias_rows::{COLS, active_at, active_named, current_at, from_row};
use super::conflicts::{Audited, record};
use super::ledger::Ledger;
use super::{Actor, Store, StoreError};
use crate::domain::alias::{
    AliasPatch, AliasWrite, NewAlias, StoredAlias, UpdatePlan, plan_deactivate, plan_update,
};
use crate::domain::conflict::{ConflictType, CreatePlan, ShadowPolicy, plan_create};
use crate::domain::governance::{Governance, Violation};

/// The result of a create.
#[derive(Debug)]
pub enum Created {
    /// Written; `shadowing` is the conflict recorded alongside, if any.
    New { alias: StoredAlias, shadowing: Option<i32> },
    /// The same alias was already there (idempotent retry).
    Existing(StoredAlias),
    /// Refused and recorded as conflict `id`.
    Conflict { id: i32, kind: ConflictType, existing: Value },
}

/// The result of an update or a deactivation.
#[derive(Debug)]
pub enum Updated {
    Done(StoredAlias),
    NotFound,
    Violation(Violation),
}

/// Filters of the list endpoint.
#[derive(Debug, Clone, Default)]
pub struct AliasFilter {
    pub context: Option<String>,
    /// Contexts the caller may see; `None` means all.
    pub visible: Option<Vec<String>>,
    pub active: Option<bool>,
    pub q: Option<String>,
    pub after_id: Option<i32>,
    pub limit: i64,
}

impl Store {
    /// Creates an alias (rules already checked by the caller). Under the
    /// lock: one read (the key and its shadows), the plan, one write.
    pub async fn create_alias(
        &self,
        new: &NewAlias,
        shadow: ShadowPolicy,
        actor: &Actor,
    ) -> Result<Created, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 1).await?;
        let (existing, shadows) = active_named(ledger.tx(), &new.key).await?;
        match plan_create(new, existing.as_ref(), &shadows, shadow) {
            CreatePlan::Existing(alias) => Ok(Created::Existing(alias)),
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
                Ok(Created::New { alias, shadowing })
            }
        }
    }

    pub async fn alias(&self, key: &AliasKey) -> Result<Option<StoredAlias>, StoreError> {
        let client = self.client().await?;
        current_at(&client, key).await
    }

    pub async fn list_aliases(&self, f: &AliasFilter) -> Result<Vec<StoredAlias>, StoreError> {
        let client = self.client().await?;
        let pattern = f.q.as_ref().map(|q| {
            let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            format!("%{escaped}%")
        });
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
        rows.iter().map(from_row).collect()
    }

    /// Applies `patch` to the alias at `key`, if the rules accept the result.
    pub async fn update_alias(
        &self,
        key: &AliasKey,
        patch: &AliasPatch,
        rules: &Governance,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let ledger = Ledger::open(&mut client, actor, 0).await?;
        let current = current_at(ledger.tx(), key).await?;
        carry_out(ledger, plan_update(current.as_ref(), patch, rules, now)).await
    }

    /// Deactivates the active alias at `key`; edges stop resolving it.
    pub async fn deactivate_alias(
        &self,
        key: &AliasKey,
        actor: &Actor,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let ledger = Ledger::open(&mut client, actor, 0).await?;
        let active = active_at(ledger.tx(), key).await?;
        carry_out(ledger, plan_deactivate(active.as_ref())).await
    }
}

async fn carry_out(mut ledger: Ledger<'_>, plan: UpdatePlan) -> Result<Updated, StoreError> {
    match plan {
        UpdatePlan::NotFound => Ok(Updated::NotFound),
        UpdatePlan::Violation(v) => Ok(Updated::Violation(v)),
        UpdatePlan::Write(w) => {
            let done = ledger.stage(&w)?;
            ledger.commit().await?;
            Ok(Updated::Done(done))
        }
    }
}
