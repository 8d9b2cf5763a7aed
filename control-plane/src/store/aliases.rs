//! The `aliases` table: create, read, list, update, deactivate.

use deadpool_postgres::Transaction;
use nexus_protocol::{AliasKey, AliasName, Canonical, Context};
use serde_json::Value;
use tokio_postgres::Row;

use super::conflicts::{NewConflict, insert_conflict};
use super::registry::{
    AuditEntry, Change, Locked, append, audit_hash, lock, lock_for_insert, now_ms,
};
use super::{Actor, Store, StoreError};
use crate::domain::alias::{AliasPatch, NewAlias, StoredAlias};
use crate::domain::conflict::{
    ConflictType, CreateDecision, ShadowDecision, ShadowPolicy, on_existing, on_shadow,
};
use crate::domain::governance::Violation;

pub(crate) const COLS: &str = "id, context, alias, canonical, description, expires_at, is_active, \
                               created_at, updated_at, created_by, version";

pub(crate) fn from_row(row: &Row) -> Result<StoredAlias, StoreError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("alias {}: {what}: {e}", row.get::<_, i32>(0)))
    };
    let context: String = row.try_get(1)?;
    let alias: String = row.try_get(2)?;
    let canonical: String = row.try_get(3)?;
    Ok(StoredAlias {
        id: row.try_get(0)?,
        context: Context::parse(&context).map_err(|e| bad("context", &e))?,
        alias: AliasName::parse(&alias).map_err(|e| bad("alias", &e))?,
        canonical: Canonical::parse(&canonical).map_err(|e| bad("canonical", &e))?,
        description: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        is_active: row.try_get(6)?,
        created_at: row.try_get(7)?,
        updated_at: row.try_get(8)?,
        created_by: row.try_get(9)?,
        version: row.try_get(10)?,
    })
}

/// A create in one statement: the row, its outbox record, its audit row and
/// the registry's new version and chain head — or nothing at all when the
/// unique index on active (context, alias) refuses the row.
const CREATE: &str = r#"
WITH ins AS (
    INSERT INTO aliases (id, context, alias, canonical, description, expires_at, is_active,
                         created_at, updated_at, created_by, updated_by, version)
    VALUES ($1, $2, $3, $4, $5, $6, true, $7, $7, $8, $8, $9)
    ON CONFLICT (context, alias) WHERE is_active DO NOTHING
    RETURNING id),
ch AS (
    INSERT INTO changes (version, epoch, committed_at, op, context, alias, record)
    SELECT $9, $10, $7, 'upsert', $2, $3, $11 FROM ins),
au AS (
    INSERT INTO audit_logs (action, "user", target, details, before_state, after_state,
                            request_id, created_at, prev_hash, row_hash)
    SELECT $12, $8, $13, NULL, NULL, $14, $15, $7, $16, $17 FROM ins
    RETURNING id)
UPDATE registry SET version = $9, updated_at = $7,
    audit_head_id = (SELECT id FROM au), audit_head_hash = $17
WHERE id = 1 AND EXISTS (SELECT 1 FROM ins)
RETURNING version"#;

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
    /// Reactivating would make two active aliases at one key.
    Taken(StoredAlias),
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

async fn active_at(
    tx: &Transaction<'_>,
    key: &AliasKey,
) -> Result<Option<StoredAlias>, StoreError> {
    let sql = format!("SELECT {COLS} FROM aliases WHERE context = $1 AND alias = $2 AND is_active");
    let st = tx.prepare_cached(&sql).await?;
    let row = tx.query_opt(&st, &[&key.context.as_str(), &key.alias.as_str()]).await?;
    row.as_ref().map(from_row).transpose()
}

/// The active row at `key`, else the newest inactive one.
async fn current_at(
    client: &impl tokio_postgres::GenericClient,
    key: &AliasKey,
) -> Result<Option<StoredAlias>, StoreError> {
    let sql = format!(
        "SELECT {COLS} FROM aliases WHERE context = $1 AND alias = $2 \
         ORDER BY is_active DESC, id DESC LIMIT 1"
    );
    let row = client.query_opt(&sql, &[&key.context.as_str(), &key.alias.as_str()]).await?;
    row.as_ref().map(from_row).transpose()
}

async fn conflict(
    tx: &Transaction<'_>,
    locked: &mut Locked,
    actor: &Actor,
    kind: ConflictType,
    new: &NewAlias,
    existing: Value,
    existing_id: Option<i32>,
) -> Result<i32, StoreError> {
    let c = NewConflict {
        kind,
        key: &new.key,
        existing: &existing,
        existing_id,
        incoming: new.to_json(),
    };
    insert_conflict(tx, locked, actor, &c).await
}

impl Store {
    /// Creates an alias. The happy path holds the registry lock for three
    /// statements (lock, insert, audit + outbox + version) and the commit;
    /// the shadowing lookup is advisory and runs before the lock.
    pub async fn create_alias(
        &self,
        new: &NewAlias,
        shadow: ShadowPolicy,
        actor: &Actor,
    ) -> Result<Created, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let st = tx
            .prepare_cached(&format!(
                "SELECT {COLS} FROM aliases WHERE alias = $1 AND is_active AND context <> $2 \
                 ORDER BY context LIMIT 20"
            ))
            .await?;
        let others = tx.query(&st, &[&new.key.alias.as_str(), &new.key.context.as_str()]).await?;
        let others: Vec<Value> =
            others.iter().map(|r| from_row(r).map(|a| a.to_json())).collect::<Result<_, _>>()?;
        let decision = on_shadow(shadow, !others.is_empty());

        let (mut locked, id) = lock_for_insert(&tx).await?;
        let version = locked.version + 1;
        // Everything the new row holds is known here, so its outbox record
        // and audit row are written by the same statement as the row itself.
        let now = now_ms();
        let alias = StoredAlias {
            id,
            context: new.key.context.clone(),
            alias: new.key.alias.clone(),
            canonical: new.canonical.clone(),
            description: new.description.clone(),
            expires_at: new.expires_at,
            is_active: true,
            created_at: now,
            updated_at: now,
            created_by: Some(actor.name.clone()),
            version,
        };
        let entry = AuditEntry {
            action: "alias.create",
            target: Some(format!("{}/{}", alias.context, alias.alias)),
            after: Some(alias.to_json()),
            ..Default::default()
        };
        let hash = audit_hash(&locked.head_hash, actor, &entry, now);
        let record = serde_json::to_value(alias.to_record())
            .map_err(|e| StoreError::Corrupt(format!("alias record: {e}")))?;
        let inserted = if decision == ShadowDecision::Refuse {
            false
        } else {
            let st = tx.prepare_cached(CREATE).await?;
            let row = tx
                .query_opt(
                    &st,
                    &[
                        &id,
                        &alias.context.as_str(),
                        &alias.alias.as_str(),
                        &alias.canonical.as_str(),
                        &alias.description,
                        &alias.expires_at,
                        &now,
                        &actor.name,
                        &version,
                        &locked.epoch,
                        &record,
                        &entry.action,
                        &entry.target,
                        &entry.after,
                        &actor.request_id,
                        &locked.head_hash,
                        &hash,
                    ],
                )
                .await?;
            row.is_some()
        };
        // Not inserted: the unique index on active (context, alias) said the
        // key is taken (racing creators all end here but one), or the
        // context refuses shadowing.
        if !inserted {
            let (kind, existing, existing_id) = match active_at(&tx, &new.key).await? {
                Some(existing) => match on_existing(new, &existing) {
                    CreateDecision::Idempotent => return Ok(Created::Existing(existing)),
                    CreateDecision::Conflict(kind) => (kind, existing.to_json(), Some(existing.id)),
                },
                None => (ConflictType::Shadowing, Value::Array(others), None),
            };
            let id =
                conflict(&tx, &mut locked, actor, kind, new, existing.clone(), existing_id).await?;
            tx.commit().await?;
            return Ok(Created::Conflict { id, kind, existing });
        }
        locked.version = version;
        locked.head_hash = hash;
        let shadowing = if decision == ShadowDecision::Record {
            let ex = Value::Array(others);
            Some(conflict(&tx, &mut locked, actor, ConflictType::Shadowing, new, ex, None).await?)
        } else {
            None
        };
        tx.commit().await?;
        Ok(Created::New { alias, shadowing })
    }

    pub async fn alias(&self, key: &AliasKey) -> Result<Option<StoredAlias>, StoreError> {
        let client = self.client().await?;
        current_at(&**client, key).await
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

    /// Applies `patch` to the alias at `key`, if `check` accepts the result.
    pub async fn update_alias(
        &self,
        key: &AliasKey,
        patch: &AliasPatch,
        check: impl FnOnce(&StoredAlias) -> Result<(), Violation>,
        actor: &Actor,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut locked = lock(&tx).await?;
        let Some(current) = current_at(&*tx, key).await? else {
            return Ok(Updated::NotFound);
        };
        let next = current.patched(patch);
        if let Err(v) = check(&next) {
            return Ok(Updated::Violation(v));
        }
        if next.is_active
            && !current.is_active
            && let Some(active) = active_at(&tx, key).await?
        {
            return Ok(Updated::Taken(active));
        }
        let action = if next.is_active { "alias.update" } else { "alias.deactivate" };
        let done = write_row(&tx, &mut locked, actor, &current, &next, action).await?;
        tx.commit().await?;
        Ok(Updated::Done(done))
    }

    /// Deactivates the active alias at `key`; edges stop resolving it.
    pub async fn deactivate_alias(
        &self,
        key: &AliasKey,
        actor: &Actor,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut locked = lock(&tx).await?;
        let Some(current) = active_at(&tx, key).await? else {
            return Ok(Updated::NotFound);
        };
        let next = current.patched(&AliasPatch { is_active: Some(false), ..Default::default() });
        let done = write_row(&tx, &mut locked, actor, &current, &next, "alias.deactivate").await?;
        tx.commit().await?;
        Ok(Updated::Done(done))
    }
}

/// Writes `next` over `current` with the next version, its outbox row and
/// its audit row.
pub(crate) async fn write_row(
    tx: &Transaction<'_>,
    locked: &mut Locked,
    actor: &Actor,
    current: &StoredAlias,
    next: &StoredAlias,
    action: &'static str,
) -> Result<StoredAlias, StoreError> {
    let version = locked.version + 1;
    let st = tx
        .prepare_cached(&format!(
            "UPDATE aliases SET canonical = $2, description = $3, expires_at = $4, \
             is_active = $5, version = $6, updated_by = $7, updated_at = now() \
             WHERE id = $1 RETURNING {COLS}"
        ))
        .await?;
    let row = tx
        .query_one(
            &st,
            &[
                &current.id,
                &next.canonical.as_str(),
                &next.description,
                &next.expires_at,
                &next.is_active,
                &version,
                &actor.name,
            ],
        )
        .await?;
    let done = from_row(&row)?;
    let entry = AuditEntry {
        action,
        target: Some(format!("{}/{}", done.context, done.alias)),
        before: Some(current.to_json()),
        after: Some(done.to_json()),
        ..Default::default()
    };
    append(tx, locked, actor, &entry, Some(Change { version, alias_id: done.id }), None).await?;
    Ok(done)
}
