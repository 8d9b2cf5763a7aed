//! The `audit_logs` table: query, chain verification, retention.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};
use crate::audit::chain::{Report, StoredRow, Verifier};

/// Rows read per round trip while verifying.
const VERIFY_BATCH: i64 = 5_000;

/// An audit row as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i32,
    pub action: String,
    pub user: String,
    pub target: Option<String>,
    pub details: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub is_archived: bool,
    pub archived_at: Option<DateTime<Utc>>,
    pub row_hash: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub after_id: Option<i32>,
    pub limit: i64,
}

/// What a retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Retained {
    pub archived: u64,
    pub purged: u64,
}

impl Store {
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                r#"SELECT id, action, "user", target, details, before_state, after_state,
                          request_id, created_at, is_archived, archived_at, row_hash
                   FROM audit_logs
                   WHERE ($1::TEXT IS NULL OR "user" = $1)
                     AND ($2::TEXT IS NULL OR action = $2)
                     AND ($3::TIMESTAMPTZ IS NULL OR created_at >= $3)
                     AND ($4::TIMESTAMPTZ IS NULL OR created_at < $4)
                     AND ($5::INT IS NULL OR id > $5)
                   ORDER BY id LIMIT $6"#,
            )
            .await?;
        let rows = client
            .query(&st, &[&f.actor, &f.action, &f.since, &f.until, &f.after_id, &f.limit])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get(0)?,
                    action: r.try_get(1)?,
                    user: r.try_get(2)?,
                    target: r.try_get(3)?,
                    details: r.try_get(4)?,
                    before: r.try_get(5)?,
                    after: r.try_get(6)?,
                    request_id: r.try_get(7)?,
                    created_at: r.try_get(8)?,
                    is_archived: r.try_get(9)?,
                    archived_at: r.try_get(10)?,
                    row_hash: r.try_get::<_, Option<Vec<u8>>>(11)?.map(hex::encode),
                })
            })
            .collect()
    }

    /// Walks the whole chain from its anchor in id order, in one repeatable
    /// read snapshot so concurrent appends do not look like tampering.
    pub async fn verify_audit(&self) -> Result<Report, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let reg = tx
            .query_one(
                "SELECT audit_anchor_hash, audit_head_id, audit_head_hash FROM registry WHERE id = 1",
                &[],
            )
            .await?;
        let anchor: Vec<u8> = reg.get(0);
        let head_id: Option<i32> = reg.get(1);
        let head_hash: Vec<u8> = reg.get(2);
        let mut verifier = Verifier::new(&anchor);
        let mut after = 0i32;
        'walk: loop {
            let rows = tx
                .query(
                    r#"SELECT id, action, "user", target, details, before_state, after_state,
                              request_id, created_at, prev_hash, row_hash
                       FROM audit_logs WHERE id > $1 ORDER BY id LIMIT $2"#,
                    &[&after, &VERIFY_BATCH],
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let created_at: DateTime<Utc> = r.try_get(8)?;
                let row = StoredRow {
                    id: r.try_get(0)?,
                    action: r.try_get(1)?,
                    user: r.try_get(2)?,
                    target: r.try_get(3)?,
                    details: r.try_get(4)?,
                    before: r.try_get(5)?,
                    after: r.try_get(6)?,
                    request_id: r.try_get(7)?,
                    created_at_ms: created_at.timestamp_millis(),
                    prev_hash: r.try_get(9)?,
                    row_hash: r.try_get(10)?,
                };
                after = row.id;
                if !verifier.feed(&row) {
                    break 'walk;
                }
            }
        }
        tx.commit().await?;
        Ok(verifier.finish(head_id, &head_hash))
    }

    /// One retention pass at `now`: marks rows older than `archive_days` as
    /// archived and deletes those older than `purge_days`. Deleting keeps the
    /// chain verifiable: only a prefix goes, and the last deleted row's hash
    /// becomes the anchor verification starts from. The pass is audited.
    pub async fn retain_audit(
        &self,
        now: DateTime<Utc>,
        archive_days: u32,
        purge_days: u32,
    ) -> Result<Retained, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, &Actor::system("retention"), 0).await?;
        let tx = ledger.tx();
        let archive_before = now - chrono::Duration::days(i64::from(archive_days));
        let purge_before = now - chrono::Duration::days(i64::from(purge_days));
        let archived = tx
            .execute(
                "UPDATE audit_logs SET is_archived = true, archived_at = $2 \
                 WHERE NOT is_archived AND created_at < $1",
                &[&archive_before, &now],
            )
            .await?;
        // The prefix to purge ends at the newest row old enough.
        let last = tx
            .query_one("SELECT max(id) FROM audit_logs WHERE created_at < $1", &[&purge_before])
            .await?;
        let last: Option<i32> = last.get(0);
        let mut purged = 0;
        if let Some(last) = last {
            let anchor =
                tx.query_one("SELECT row_hash FROM audit_logs WHERE id = $1", &[&last]).await?;
            let anchor: Option<Vec<u8>> = anchor.get(0);
            purged = tx.execute("DELETE FROM audit_logs WHERE id <= $1", &[&last]).await?;
            tx.execute(
                "UPDATE registry SET audit_anchor_hash = $1 WHERE id = 1",
                &[&anchor.unwrap_or_default()],
            )
            .await?;
        }
        let done = Retained { archived, purged };
        if archived > 0 || purged > 0 {
            ledger.note(AuditEntry {
                action: "audit.retention",
                details: Some(format!("archived {archived}, purged {purged}")),
                after: serde_json::to_value(done).ok(),
                ..Default::default()
            });
        }
        ledger.commit().await?;
        Ok(done)
    }
}
