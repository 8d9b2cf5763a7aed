//! Reads behind the service endpoints: resolve, counts, registry state.

use chrono::{DateTime, Utc};
use nexus_protocol::AliasKey;

use super::decode::decode;
use super::{Store, StoreError};

/// Counts and versions for `/metrics`, `/api/aliases/metrics` and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub epoch: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub active_aliases: i64,
    pub inactive_aliases: i64,
    pub open_conflicts: i64,
    pub audit_rows: i64,
}

impl Store {
    /// The live canonical at `key` and the registry version it was read at.
    pub(crate) async fn resolve(
        &self,
        key: &AliasKey,
    ) -> Result<(Option<String>, i64), StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT (SELECT canonical FROM aliases WHERE context = $1 AND alias = $2 \
                         AND is_active AND (expires_at IS NULL OR expires_at > now())), \
                        (SELECT version FROM registry WHERE id = 1)",
            )
            .await?;
        let row = client.query_one(&st, &[&key.context.as_str(), &key.alias.as_str()]).await?;
        Ok((row.try_get(0)?, row.try_get::<_, Option<i64>>(1)?.unwrap_or(0)))
    }

    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT r.epoch, r.version, r.updated_at, \
                   (SELECT count(*) FROM aliases WHERE is_active) AS active_aliases, \
                   (SELECT count(*) FROM aliases WHERE NOT is_active) AS inactive_aliases, \
                   (SELECT count(*) FROM conflicts WHERE resolution IS NULL) AS open_conflicts, \
                   (SELECT count(*) FROM audit_logs) AS audit_rows \
                 FROM registry r WHERE r.id = 1",
            )
            .await?;
        let r = client.query_one(&st, &[]).await?;
        Ok(decode!(&r => Stats {
            epoch, version, updated_at, active_aliases, inactive_aliases, open_conflicts,
            audit_rows,
        }))
    }
}
