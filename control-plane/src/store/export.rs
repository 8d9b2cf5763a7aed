//! Export: the active aliases as declarative entries (what import takes),
//! read in one snapshot together with the registry version they are at.

use nexus_protocol::AliasEntry;
use tokio_postgres::IsolationLevel;

use super::alias_rows::{COLS, from_row};
use super::{Store, StoreError};

/// The active aliases of some contexts at one registry version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub version: i64,
    /// Sorted by context, then alias, bytewise.
    pub entries: Vec<AliasEntry>,
}

/// Rows fetched per round trip, so a large registry is not held twice.
const CHUNK: i32 = 20_000;

impl Store {
    /// Every active alias in `contexts` (all when `None`), in one REPEATABLE
    /// READ transaction so the entries are exactly the state at `version`.
    pub async fn export(&self, contexts: Option<&[String]>) -> Result<Exported, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let version: i64 = tx
            .query_opt("SELECT version FROM registry WHERE id = 1", &[])
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(
                    "registry row is missing; run nexus-control-plane migrate".into(),
                )
            })?
            .get(0);
        // Bytewise order ("C"): the same file whatever the database's
        // collation, so two exports diff cleanly.
        let st = tx
            .prepare(&format!(
                "SELECT {COLS} FROM aliases \
                 WHERE is_active AND ($1::TEXT[] IS NULL OR context = ANY($1)) \
                 ORDER BY context COLLATE \"C\", alias COLLATE \"C\""
            ))
            .await?;
        let portal = tx.bind(&st, &[&contexts]).await?;
        let mut entries = Vec::new();
        loop {
            let rows = tx.query_portal(&portal, CHUNK).await?;
            if rows.is_empty() {
                break;
            }
            entries.reserve(rows.len());
            for r in &rows {
                // The one row decoder (names re-checked as on every read).
                entries.push(from_row(r)?.entry());
            }
        }
        tx.commit().await?;
        Ok(Exported { version, entries })
    }
}
