//! The `conflicts` table: recorded when a write meets an alias, listed,
//! and resolved (which may itself write the alias).

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use nexus_protocol::{AliasKey, AliasName, Canonical, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;

use super::aliases::{COLS, from_row, write_row};
use super::registry::{AuditEntry, Change, Locked, append, lock};
use super::{Actor, Store, StoreError};
use crate::domain::alias::{AliasPatch, StoredAlias};
use crate::domain::conflict::{ConflictType, Resolution};

pub(crate) struct NewConflict<'a> {
    pub kind: ConflictType,
    pub key: &'a AliasKey,
    pub existing: &'a Value,
    pub existing_id: Option<i32>,
    pub incoming: Value,
}

/// A conflict as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictRow {
    pub id: i32,
    pub context: String,
    pub alias: String,
    pub conflict_type: String,
    pub existing: Option<Value>,
    pub incoming: Option<Value>,
    pub resolution: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

const CONFLICT_COLS: &str = "id, context, alias, conflict_type, existing, incoming, resolution, \
                             resolved_at, resolved_by, created_at";

fn conflict_from_row(r: &Row) -> Result<ConflictRow, StoreError> {
    Ok(ConflictRow {
        id: r.try_get(0)?,
        context: r.try_get(1)?,
        alias: r.try_get(2)?,
        conflict_type: r.try_get(3)?,
        existing: r.try_get(4)?,
        incoming: r.try_get(5)?,
        resolution: r.try_get(6)?,
        resolved_at: r.try_get(7)?,
        resolved_by: r.try_get(8)?,
        created_at: r.try_get(9)?,
    })
}

/// Records a conflict and its audit row in the caller's transaction.
pub(crate) async fn insert_conflict(
    tx: &Transaction<'_>,
    locked: &mut Locked,
    actor: &Actor,
    c: &NewConflict<'_>,
) -> Result<i32, StoreError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO conflicts (alias, context, conflict_type, existing, incoming, existing_id) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .await?;
    let row = tx
        .query_one(
            &st,
            &[
                &c.key.alias.as_str(),
                &c.key.context.as_str(),
                &c.kind.as_str(),
                c.existing,
                &c.incoming,
                &c.existing_id,
            ],
        )
        .await?;
    let id: i32 = row.get(0);
    let entry = AuditEntry {
        action: "conflict.detected",
        target: Some(format!("conflict/{id}")),
        details: Some(format!("{} on {}/{}", c.kind.as_str(), c.key.context, c.key.alias)),
        after: Some(c.incoming.clone()),
        ..Default::default()
    };
    append(tx, locked, actor, &entry, None, None).await?;
    Ok(id)
}

/// The incoming side of a conflict, as stored.
#[derive(Debug, Deserialize)]
struct Incoming {
    canonical: Canonical,
    description: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub enum Resolved {
    Done(ConflictRow),
    NotFound,
    AlreadyResolved(ConflictRow),
}

impl Store {
    pub async fn conflicts(
        &self,
        open: Option<bool>,
        visible: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<ConflictRow>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {CONFLICT_COLS} FROM conflicts \
             WHERE ($1::BOOL IS NULL OR (resolution IS NULL) = $1) \
               AND ($2::TEXT[] IS NULL OR context = ANY($2)) \
             ORDER BY id DESC LIMIT $3"
        );
        let st = client.prepare_cached(&sql).await?;
        let rows = client.query(&st, &[&open, &visible, &limit]).await?;
        rows.iter().map(conflict_from_row).collect()
    }

    pub async fn conflict(&self, id: i32) -> Result<Option<ConflictRow>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {CONFLICT_COLS} FROM conflicts WHERE id = $1");
        let row = client.query_opt(&sql, &[&id]).await?;
        row.as_ref().map(conflict_from_row).transpose()
    }

    /// Settles conflict `id`. `use_incoming` writes the incoming alias (a new
    /// version) over the active one, or creates it if none is active.
    pub async fn resolve_conflict(
        &self,
        id: i32,
        resolution: Resolution,
        actor: &Actor,
    ) -> Result<Resolved, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut locked = lock(&tx).await?;
        let sql = format!("SELECT {CONFLICT_COLS} FROM conflicts WHERE id = $1 FOR UPDATE");
        let Some(row) = tx.query_opt(&sql, &[&id]).await? else {
            return Ok(Resolved::NotFound);
        };
        let c = conflict_from_row(&row)?;
        if c.resolution.is_some() {
            return Ok(Resolved::AlreadyResolved(c));
        }
        if resolution == Resolution::UseIncoming {
            use_incoming(&tx, &mut locked, actor, &c).await?;
        }
        let st = tx
            .prepare_cached(&format!(
                "UPDATE conflicts SET resolution = $2, resolved_at = now(), resolved_by = $3 \
                 WHERE id = $1 RETURNING {CONFLICT_COLS}"
            ))
            .await?;
        let row = tx.query_one(&st, &[&id, &resolution.as_str(), &actor.name]).await?;
        let done = conflict_from_row(&row)?;
        let entry = AuditEntry {
            action: "conflict.resolve",
            target: Some(format!("conflict/{id}")),
            details: Some(resolution.as_str().to_owned()),
            before: serde_json::to_value(&c).ok(),
            after: serde_json::to_value(&done).ok(),
        };
        append(&tx, &mut locked, actor, &entry, None, None).await?;
        tx.commit().await?;
        Ok(Resolved::Done(done))
    }
}

async fn use_incoming(
    tx: &Transaction<'_>,
    locked: &mut Locked,
    actor: &Actor,
    c: &ConflictRow,
) -> Result<(), StoreError> {
    let incoming: Incoming = c
        .incoming
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("conflict {}: incoming: {e}", c.id)))?
        .ok_or_else(|| StoreError::Corrupt(format!("conflict {} has no incoming side", c.id)))?;
    let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("conflict {}: {e}", c.id));
    let context = Context::parse(&c.context).map_err(|e| bad(&e))?;
    let alias = AliasName::parse(&c.alias).map_err(|e| bad(&e))?;
    let sql = format!("SELECT {COLS} FROM aliases WHERE context = $1 AND alias = $2 AND is_active");
    let existing = tx.query_opt(&sql, &[&context.as_str(), &alias.as_str()]).await?;
    match existing.as_ref().map(from_row).transpose()? {
        Some(current) => {
            let patch = AliasPatch {
                canonical: Some(incoming.canonical),
                description: Some(incoming.description),
                expires_at: Some(incoming.expires_at),
                is_active: Some(true),
            };
            let next: StoredAlias = current.patched(&patch);
            write_row(tx, locked, actor, &current, &next, "alias.update").await?;
        }
        None => {
            let version = locked.version + 1;
            let sql = format!(
                "INSERT INTO aliases (context, alias, canonical, description, expires_at, \
                 is_active, created_by, updated_by, version) \
                 VALUES ($1, $2, $3, $4, $5, true, $6, $6, $7) RETURNING {COLS}"
            );
            let row = tx
                .query_one(
                    &sql,
                    &[
                        &context.as_str(),
                        &alias.as_str(),
                        &incoming.canonical.as_str(),
                        &incoming.description,
                        &incoming.expires_at,
                        &actor.name,
                        &version,
                    ],
                )
                .await?;
            let created = from_row(&row)?;
            let entry = AuditEntry {
                action: "alias.create",
                target: Some(format!("{context}/{alias}")),
                after: Some(created.to_json()),
                ..Default::default()
            };
            let change = Change { version, alias_id: created.id };
            append(tx, locked, actor, &entry, Some(change), None).await?;
        }
    }
    Ok(())
}
