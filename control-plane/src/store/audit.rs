//! The `audit_logs` table: query, chain verification, retention.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;
use tokio_postgres::Row;

use super::decode::decode;
use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError, consistent};
use crate::audit::chain::{Content, Report, Verifier};

/// Rows read per round trip while verifying.
const VERIFY_BATCH: i64 = 5_000;

/// The columns [`audit_row`] decodes, named as [`AuditRow`]'s fields.
const AUDIT_COLS: &str = r#"id, action, "user", target, details, before_state AS before,
    after_state AS after, request_id, created_at, is_archived, archived_at, prev_hash, row_hash"#;

/// An audit row as stored, the only type of it: what the API shows (all but
/// `prev_hash`) and what verification feeds the chain (its [`Content`] and
/// hashes), read by one decoder.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuditRow {
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
    /// The hash of the row before; verification's, never shown.
    #[serde(skip)]
    pub prev_hash: Option<Vec<u8>>,
    /// Shown in hex.
    #[serde(serialize_with = "hex_hash")]
    pub row_hash: Option<Vec<u8>>,
}

fn hex_hash<S: Serializer>(hash: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    hash.as_ref().map(hex::encode).serialize(s)
}

fn audit_row(r: &Row) -> Result<AuditRow, StoreError> {
    Ok(decode!(r => AuditRow {
        id, action, user, target, details, before, after, request_id, created_at,
        is_archived, archived_at, prev_hash, row_hash,
    }))
}

impl AuditRow {
    /// What the row's hash covers, as the ledger hashed it when it wrote
    /// the row (the stored timestamp is truncated to milliseconds).
    fn content(&self) -> Content<'_> {
        Content {
            action: &self.action,
            user: &self.user,
            target: self.target.as_deref(),
            details: self.details.as_deref(),
            before: self.before.as_ref(),
            after: self.after.as_ref(),
            request_id: self.request_id.as_deref(),
            created_at_ms: self.created_at.timestamp_millis(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct AuditFilter {
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
    pub(crate) async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            r#"SELECT {AUDIT_COLS}
               FROM audit_logs
               WHERE ($1::TEXT IS NULL OR "user" = $1)
                 AND ($2::TEXT IS NULL OR action = $2)
                 AND ($3::TIMESTAMPTZ IS NULL OR created_at >= $3)
                 AND ($4::TIMESTAMPTZ IS NULL OR created_at < $4)
                 AND ($5::INT IS NULL OR id > $5)
               ORDER BY id LIMIT $6"#
        );
        let st = client.prepare_cached(&sql).await?;
        let rows = client
            .query(&st, &[&f.actor, &f.action, &f.since, &f.until, &f.after_id, &f.limit])
            .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Walks the whole chain from its anchor in id order, in one repeatable
    /// read snapshot so concurrent appends do not look like tampering.
    pub async fn verify_audit(&self) -> Result<Report, StoreError> {
        let mut client = self.client().await?;
        let tx = consistent::begin(&mut client).await?;
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
        let st = tx
            .prepare(&format!(
                "SELECT {AUDIT_COLS} FROM audit_logs WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .await?;
        let mut after = 0i32;
        'walk: loop {
            let rows = tx.query(&st, &[&after, &VERIFY_BATCH]).await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let row = audit_row(r)?;
                after = row.id;
                let (prev, hash) = (row.prev_hash.as_deref(), row.row_hash.as_deref());
                if !verifier.feed(row.id, &row.content(), prev, hash) {
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
