//! The `api_keys` table. Only digests are stored; the key itself is never
//! written anywhere.

use nexus_protocol::{ContextScope, Role};
use serde::Serialize;

use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};

/// A key's grant, as found by its digest.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub id: i32,
    pub name: String,
    pub role: Role,
    pub contexts: ContextScope,
    pub digest: Vec<u8>,
}

/// A key as listed: never its digest.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: i32,
    pub name: String,
    pub role: String,
    pub contexts: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyCreated {
    pub id: i32,
    pub name: String,
    pub role: Role,
    pub contexts: Vec<String>,
}

impl Store {
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        contexts: &ContextScope,
        digest: &[u8],
        actor: &Actor,
    ) -> Result<KeyCreated, StoreError> {
        let contexts: Vec<String> = contexts.clone().into();
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let row = ledger
            .tx()
            .query_one(
                "INSERT INTO api_keys (name, role, contexts, key_digest, created_by) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&name, &role.as_str(), &contexts, &digest, &actor.name],
            )
            .await?;
        let created = KeyCreated { id: row.get(0), name: name.to_owned(), role, contexts };
        ledger.note(AuditEntry {
            action: "api_key.create",
            target: Some(format!("api_key/{}", created.id)),
            after: serde_json::to_value(&created).ok(),
            ..Default::default()
        });
        ledger.commit().await?;
        Ok(created)
    }

    /// Every key, newest first, without its digest (the secret was never
    /// kept): what `GET /api/admin/api-keys` shows.
    pub async fn list_api_keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, name, role, contexts, created_at, created_by, revoked_at \
                 FROM api_keys ORDER BY id DESC",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    contexts: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    created_by: r.try_get(5)?,
                    revoked_at: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Revokes key `id`; false when there is no such unrevoked key.
    pub async fn revoke_api_key(&self, id: i32, actor: &Actor) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let n = ledger
            .tx()
            .execute(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                &[&id],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        ledger.note(AuditEntry {
            action: "api_key.revoke",
            target: Some(format!("api_key/{id}")),
            ..Default::default()
        });
        ledger.commit().await?;
        Ok(true)
    }

    /// The unrevoked key with this digest, if any. Read on every request, so
    /// a revocation takes effect at once.
    pub async fn api_key_by_digest(&self, digest: &[u8]) -> Result<Option<KeyGrant>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT id, name, role, contexts, key_digest FROM api_keys \
                 WHERE key_digest = $1 AND revoked_at IS NULL",
            )
            .await?;
        let Some(row) = client.query_opt(&st, &[&digest]).await? else {
            return Ok(None);
        };
        let role: String = row.try_get(2)?;
        let role = role.parse().map_err(StoreError::Corrupt)?;
        let contexts: Vec<String> = row.try_get(3)?;
        let contexts = ContextScope::try_from(contexts)
            .map_err(|e| StoreError::corrupt("api key contexts", e))?;
        Ok(Some(KeyGrant {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            role,
            contexts,
            digest: row.try_get(4)?,
        }))
    }
}
