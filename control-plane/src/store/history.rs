//! The past of the registry, read from the outbox (`changes`): every
//! version of one alias with who wrote it (the audit row of the same
//! commit), and what an alias resolved to at a past version or instant.
//!
//! The outbox keeps one row per version; the history window is what it
//! still holds. A change and its audit rows are written by one statement
//! with one clock reading (store/ledger.rs), so the audit row of a change
//! is one whose `created_at` equals the change's `committed_at`; among
//! several (two commits in the same millisecond, or a write that also
//! recorded a conflict), the one naming the change's version or its alias
//! wins.

use chrono::{DateTime, Utc};
use nexus_protocol::{AliasKey, AliasRecord};
use tokio_postgres::Row;

use super::changes::decode_record;
use super::{Store, StoreError};

/// One version of an alias: the change row and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AliasVersion {
    pub version: i64,
    pub committed_at: DateTime<Utc>,
    /// `None` for a removal (`op = 'remove'`: gone from the registry).
    pub record: Option<AliasRecord>,
    /// The owner the record names (outbox rows written before migration
    /// 0006 name none).
    pub owner: Option<String>,
    /// The audit row's user; `None` when no audit row is left (purged).
    pub who: Option<String>,
    pub action: Option<String>,
    pub request_id: Option<String>,
}

/// Where a past instant or version falls against the history kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub head: i64,
    /// The oldest version the outbox still holds, and when it was committed;
    /// `None` when it holds none.
    pub oldest: Option<(i64, DateTime<Utc>)>,
}

/// The state of one key at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PastState {
    pub version: i64,
    /// When `version` was committed (`None` for version 0 or a version
    /// whose row was pruned).
    pub committed_at: Option<DateTime<Utc>>,
    /// The record in force at `version`: the active one if there is one,
    /// else the newest; `None` when the key had none.
    pub record: Option<AliasRecord>,
}

/// The audit row of a change (see the module comment). `alias.import`
/// writes one summary row whose `after_state` names the versions it took.
const HISTORY: &str = r#"
SELECT c.version, c.committed_at, c.op, c.record, a."user", a.action, a.request_id,
       c.record->>'owner'
FROM changes c
LEFT JOIN LATERAL (
    SELECT l."user", l.action, l.request_id FROM audit_logs l
    WHERE l.created_at = c.committed_at
    ORDER BY (l.after_state->>'version' = c.version::TEXT
              OR (l.action = 'alias.import'
                  AND c.version > (l.after_state->>'from_version')::BIGINT
                  AND c.version <= (l.after_state->>'to_version')::BIGINT)) IS TRUE DESC,
             (l.target = c.context || '/' || c.alias) IS TRUE DESC,
             l.id
    LIMIT 1) a ON TRUE
WHERE c.context = $1 AND c.alias = $2 AND c.op IN ('upsert', 'remove')
  AND ($3::BIGINT IS NULL OR c.version < $3)
ORDER BY c.version DESC
LIMIT $4"#;

/// The record in force for a key at a version: per alias id its newest
/// record, after the key's last removal; the active one first.
const STATE_AT: &str = r#"
SELECT record FROM (
    SELECT DISTINCT ON (record->>'id') version, record FROM changes
    WHERE context = $1 AND alias = $2 AND op = 'upsert' AND version <= $3
      AND version > COALESCE((SELECT max(version) FROM changes
                              WHERE context = $1 AND alias = $2 AND op = 'remove'
                                AND version <= $3), 0)
    ORDER BY record->>'id', version DESC) latest
ORDER BY (record->>'is_active')::BOOLEAN DESC, version DESC
LIMIT 1"#;

fn version_from(row: &Row) -> Result<AliasVersion, StoreError> {
    let version: i64 = row.try_get(0)?;
    let op: String = row.try_get(2)?;
    let record = match op.as_str() {
        "upsert" => Some(decode_record(version, row.try_get(3)?)?),
        _ => None,
    };
    Ok(AliasVersion {
        version,
        committed_at: row.try_get(1)?,
        record,
        who: row.try_get(4)?,
        action: row.try_get(5)?,
        request_id: row.try_get(6)?,
        owner: row.try_get(7)?,
    })
}

impl Store {
    /// Up to `limit` versions of `key` older than `before` (all when
    /// `None`), newest first.
    pub(crate) async fn alias_history(
        &self,
        key: &AliasKey,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AliasVersion>, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached(HISTORY).await?;
        let rows = client
            .query(&st, &[&key.context.as_str(), &key.alias.as_str(), &before, &limit])
            .await?;
        rows.iter().map(version_from).collect()
    }

    /// The registry head and the oldest change kept.
    pub(crate) async fn history_window(&self) -> Result<Window, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT (SELECT version FROM registry WHERE id = 1), o.version, o.committed_at \
                 FROM (SELECT NULL) one \
                 LEFT JOIN (SELECT version, committed_at FROM changes ORDER BY version LIMIT 1) o \
                   ON TRUE",
            )
            .await?;
        let row = client.query_one(&st, &[]).await?;
        let head: Option<i64> = row.try_get(0)?;
        let oldest: Option<i64> = row.try_get(1)?;
        Ok(Window {
            head: head.ok_or_else(StoreError::registry_missing)?,
            oldest: match oldest {
                Some(v) => Some((v, row.try_get(2)?)),
                None => None,
            },
        })
    }

    /// The newest version committed at or before `at` (`None` when the
    /// outbox holds none that old). Commit order is version order, so this
    /// walks the primary key backwards from the head.
    pub(crate) async fn version_at(&self, at: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT version FROM changes WHERE committed_at <= $1 ORDER BY version DESC LIMIT 1",
            )
            .await?;
        Ok(client.query_opt(&st, &[&at]).await?.map(|r| r.get(0)))
    }

    /// What `key` held at `version` (inside the window: the caller checks).
    pub(crate) async fn state_at(
        &self,
        key: &AliasKey,
        version: i64,
    ) -> Result<PastState, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached(STATE_AT).await?;
        let row =
            client.query_opt(&st, &[&key.context.as_str(), &key.alias.as_str(), &version]).await?;
        let record = row.map(|r| decode_record(version, r.get(0))).transpose()?;
        let st =
            client.prepare_cached("SELECT committed_at FROM changes WHERE version = $1").await?;
        let committed_at = client.query_opt(&st, &[&version]).await?.map(|r| r.get(0));
        Ok(PastState { version, committed_at, record })
    }
}
