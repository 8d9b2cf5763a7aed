//! The registry row: the lock every write takes first, the version it
//! allocates, and the audit append made under that lock (so the chain has
//! one order, the commit order).

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde_json::Value;

use super::{Actor, StoreError};
use crate::audit::chain::Content;

/// The registry as a write transaction holds it.
#[derive(Debug, Clone)]
pub(crate) struct Locked {
    pub epoch: i64,
    /// Version of the last committed change.
    pub version: i64,
    pub head_hash: Vec<u8>,
}

/// Locks the registry row until the transaction ends.
pub(crate) async fn lock(tx: &Transaction<'_>) -> Result<Locked, StoreError> {
    let st = tx
        .prepare_cached(
            "SELECT epoch, version, audit_head_hash FROM registry WHERE id = 1 FOR UPDATE",
        )
        .await?;
    let row = tx.query_opt(&st, &[]).await?.ok_or_else(|| {
        StoreError::Corrupt("registry row is missing; run nexus-control-plane migrate".into())
    })?;
    Ok(Locked { epoch: row.get(0), version: row.get(1), head_hash: row.get(2) })
}

/// What one audit row records.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditEntry {
    pub action: &'static str,
    pub target: Option<String>,
    pub details: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A change to write to the outbox with the audit row: alias `alias_id`
/// took version `version`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    pub version: i64,
    pub alias_id: i32,
}

const APPEND: &str = r#"
WITH a AS (
    INSERT INTO audit_logs (action, "user", target, details, before_state, after_state,
                            request_id, created_at, prev_hash, row_hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    RETURNING id)
UPDATE registry SET audit_head_id = (SELECT id FROM a), audit_head_hash = $10,
    version = COALESCE($11::BIGINT, version),
    updated_at = CASE WHEN $11::BIGINT IS NULL THEN updated_at ELSE now() END
WHERE id = 1
RETURNING audit_head_id"#;

const APPEND_WITH_CHANGE: &str = r#"
WITH a AS (
    INSERT INTO audit_logs (action, "user", target, details, before_state, after_state,
                            request_id, created_at, prev_hash, row_hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    RETURNING id),
c AS (
    INSERT INTO changes (version, epoch, op, context, alias, record)
    SELECT $11::BIGINT, $12::BIGINT, 'upsert', x.context, x.alias, alias_record(x)
    FROM aliases x WHERE x.id = $13::INT)
UPDATE registry SET audit_head_id = (SELECT id FROM a), audit_head_hash = $10,
    version = $11::BIGINT, updated_at = now()
WHERE id = 1
RETURNING audit_head_id"#;

/// Now, truncated to the millisecond the chain hashes.
pub(crate) fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// The chain hash of an audit row appended after `prev`.
pub(crate) fn audit_hash(
    prev: &[u8],
    actor: &Actor,
    entry: &AuditEntry,
    created_at: DateTime<Utc>,
) -> Vec<u8> {
    let content = Content {
        action: entry.action,
        user: &actor.name,
        target: entry.target.as_deref(),
        details: entry.details.as_deref(),
        before: entry.before.as_ref(),
        after: entry.after.as_ref(),
        request_id: actor.request_id.as_deref(),
        created_at_ms: created_at.timestamp_millis(),
    };
    content.hash(prev).to_vec()
}

/// Locks the registry row and reserves the id of a new alias, in one round
/// trip (the create path's first statement under the lock).
pub(crate) async fn lock_for_insert(tx: &Transaction<'_>) -> Result<(Locked, i32), StoreError> {
    let st = tx
        .prepare_cached(
            "SELECT epoch, version, audit_head_hash, \
                    nextval(pg_get_serial_sequence('aliases', 'id'))::INT \
             FROM registry WHERE id = 1 FOR UPDATE",
        )
        .await?;
    let row = tx.query_opt(&st, &[]).await?.ok_or_else(|| {
        StoreError::Corrupt("registry row is missing; run nexus-control-plane migrate".into())
    })?;
    Ok((Locked { epoch: row.get(0), version: row.get(1), head_hash: row.get(2) }, row.get(3)))
}

/// Appends an audit row (and the outbox row of `change`, if any), moving the
/// chain head and, when `new_version` is set, the registry version.
pub(crate) async fn append(
    tx: &Transaction<'_>,
    locked: &mut Locked,
    actor: &Actor,
    entry: &AuditEntry,
    change: Option<Change>,
    new_version: Option<i64>,
) -> Result<i32, StoreError> {
    let created_at = now_ms();
    let hash = audit_hash(&locked.head_hash, actor, entry, created_at);
    let common: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &entry.action,
        &actor.name,
        &entry.target,
        &entry.details,
        &entry.before,
        &entry.after,
        &actor.request_id,
        &created_at,
        &locked.head_hash,
        &hash,
    ];
    let row = match change {
        Some(c) => {
            let st = tx.prepare_cached(APPEND_WITH_CHANGE).await?;
            let mut params = common.to_vec();
            params.push(&c.version);
            params.push(&locked.epoch);
            params.push(&c.alias_id);
            tx.query_one(&st, &params).await?
        }
        None => {
            let st = tx.prepare_cached(APPEND).await?;
            let mut params = common.to_vec();
            params.push(&new_version);
            tx.query_one(&st, &params).await?
        }
    };
    locked.head_hash = hash;
    if let Some(c) = change {
        locked.version = c.version;
    } else if let Some(v) = new_version {
        locked.version = v;
    }
    Ok(row.get(0))
}
