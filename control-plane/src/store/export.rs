//! Export: the active aliases as declarative entries (what import takes),
//! read in one snapshot together with the registry version they are at.

use nexus_protocol::AliasEntry;

use super::alias_rows::{COLS, from_row};
use super::{Store, StoreError, consistent};

/// The active aliases of some contexts at one registry version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exported {
    pub version: i64,
    /// Sorted by context, then alias, bytewise.
    pub entries: Vec<AliasEntry>,
}

impl Store {
    /// Every active alias in `contexts` (all when `None`), in one REPEATABLE
    /// READ transaction so the entries are exactly the state at `version`.
    pub(crate) async fn export(&self, contexts: Option<&[String]>) -> Result<Exported, StoreError> {
        let mut client = self.client().await?;
        let tx = consistent::begin(&mut client).await?;
        let version: i64 = tx
            .query_opt("SELECT version FROM registry WHERE id = 1", &[])
            .await?
            .ok_or_else(StoreError::registry_missing)?
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
        // The one row decoder (names re-checked as on every read).
        let entries =
            consistent::read_all(&tx, &st, &[&contexts], |r| Ok(from_row(r)?.entry())).await?;
        tx.commit().await?;
        Ok(Exported { version, entries })
    }
}
