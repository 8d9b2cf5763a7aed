//! Credentials: the `api_keys` table (only digests are stored; the key
//! itself is never written anywhere) and the revocations
//! (`revoked_tokens`, `revoked_subjects`, migration 0008).
//!
//! Every change of either is also staged as a credential change in the
//! ledger ([`Ledger::credentials`]): it takes a registry version and
//! reaches every edge in the signed stream, as an alias change does.
//! Stored times are instants; what edges get is whole seconds, converted
//! in one place per kind (`shipped_*`) for a delta and a snapshot alike.

use chrono::{DateTime, Utc};
use nexus_protocol::credentials::{Cutoff, RevokedSubject, RevokedToken, seconds_up};
use nexus_protocol::{
    Claims, ContextScope, CredentialChange, Credentials, KeyGrant as Grant, Role,
};
use serde::Serialize;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::decode::decode;
use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};

fn digest_of(raw: Vec<u8>) -> Result<[u8; 32], StoreError> {
    raw.try_into().map_err(|_| StoreError::Corrupt("api key digest is not 32 bytes".into()))
}

fn key_name(id: i32, name: &str) -> String {
    format!("api_key:{id}:{name}")
}

fn role_of(stored: String) -> Result<Role, StoreError> {
    stored.parse().map_err(StoreError::Corrupt)
}

fn scope_of(stored: Vec<String>) -> Result<ContextScope, StoreError> {
    ContextScope::try_from(stored).map_err(|e| StoreError::corrupt("api key contexts", e))
}

/// A key's grant, as found by its digest.
#[derive(Debug, Clone)]
pub(crate) struct KeyGrant {
    pub id: i32,
    pub name: String,
    pub role: Role,
    pub contexts: ContextScope,
    pub digest: Vec<u8>,
}

/// A key as listed: never its digest.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KeyInfo {
    pub id: i32,
    pub name: String,
    pub role: String,
    pub contexts: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyCreated {
    pub id: i32,
    pub name: String,
    pub role: Role,
    pub contexts: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A revocation as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum Revocation {
    Token { jti: String, until: DateTime<Utc> },
    Subject { sub: String, before: DateTime<Utc>, until: DateTime<Utc> },
}

impl Revocation {
    /// The change that carries it to the edges, in whole seconds rounded
    /// the protocol's way (see [`shipped_token`], [`shipped_subject`]).
    fn change(&self) -> CredentialChange {
        match self {
            Revocation::Token { jti, until } => {
                CredentialChange::RevokeToken(shipped_token(jti.clone(), *until))
            }
            Revocation::Subject { sub, before, until } => {
                CredentialChange::RevokeSubject(shipped_subject(sub.clone(), *before, *until))
            }
        }
    }

    /// What its audit row names.
    fn target(&self) -> String {
        match self {
            Revocation::Token { jti, .. } => format!("token/{jti}"),
            Revocation::Subject { sub, .. } => format!("subject/{sub}"),
        }
    }
}

/// A token revocation as edges get it. `until` is rounded up: an edge
/// never forgets an entry before this control plane does.
fn shipped_token(jti: String, until: DateTime<Utc>) -> RevokedToken {
    RevokedToken { jti, until: seconds_up(until) }
}

/// A subject revocation as edges get it: the stored instant becomes the
/// [`Cutoff`] this control plane also checks its own requests with
/// ([`Store::token_revoked`]), in a delta and in a snapshot alike.
fn shipped_subject(sub: String, before: DateTime<Utc>, until: DateTime<Utc>) -> RevokedSubject {
    RevokedSubject { sub, before: Cutoff::at(before), until: seconds_up(until) }
}

/// A key's expiry as edges get it, rounded down: an edge refuses the key
/// from that second on, never after this control plane does.
fn shipped_expiry(expires_at: Option<DateTime<Utc>>) -> Option<i64> {
    expires_at.map(|t| t.timestamp())
}

impl Store {
    /// Stores a key's digest and grants it to every edge (one version).
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        scope: &ContextScope,
        digest: &[u8; 32],
        actor: &Actor,
    ) -> Result<KeyCreated, StoreError> {
        self.create_expiring_api_key(name, role, scope, digest, None, actor).await
    }

    /// [`Store::create_api_key`], refused everywhere from `expires_at` on.
    pub(crate) async fn create_expiring_api_key(
        &self,
        name: &str,
        role: Role,
        scope: &ContextScope,
        digest: &[u8; 32],
        expires_at: Option<DateTime<Utc>>,
        actor: &Actor,
    ) -> Result<KeyCreated, StoreError> {
        let contexts: Vec<String> = scope.clone().into();
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let row = ledger
            .tx()
            .query_one(
                "INSERT INTO api_keys (name, role, contexts, key_digest, created_by, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&name, &role.as_str(), &contexts, &digest.as_slice(), &actor.name, &expires_at],
            )
            .await?;
        let created =
            KeyCreated { id: row.get(0), name: name.to_owned(), role, contexts, expires_at };
        ledger.credentials(&CredentialChange::GrantKey(Grant {
            digest: *digest,
            name: key_name(created.id, name),
            role,
            contexts: scope.clone(),
            expires_at: shipped_expiry(expires_at),
        }))?;
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
    pub(crate) async fn list_api_keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, name, role, contexts, created_at, created_by, revoked_at, expires_at \
                 FROM api_keys ORDER BY id DESC",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(decode!(r => KeyInfo {
                    id, name, role, contexts, created_at, created_by, revoked_at, expires_at,
                }))
            })
            .collect()
    }

    /// Revokes key `id`; false when there is no such unrevoked key.
    pub(crate) async fn revoke_api_key(&self, id: i32, actor: &Actor) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let row = ledger
            .tx()
            .query_opt(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL \
                 RETURNING key_digest",
                &[&id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        ledger.credentials(&CredentialChange::RevokeKey(digest_of(row.try_get(0)?)?))?;
        ledger.note(AuditEntry {
            action: "api_key.revoke",
            target: Some(format!("api_key/{id}")),
            ..Default::default()
        });
        ledger.commit().await?;
        Ok(true)
    }

    /// The unrevoked, unexpired key with this digest, if any. Read on
    /// every request, so a revocation takes effect at once.
    pub(crate) async fn api_key_by_digest(
        &self,
        digest: &[u8],
    ) -> Result<Option<KeyGrant>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT id, name, role, contexts, key_digest FROM api_keys \
                 WHERE key_digest = $1 AND revoked_at IS NULL \
                   AND (expires_at IS NULL OR expires_at > now())",
            )
            .await?;
        let Some(row) = client.query_opt(&st, &[&digest]).await? else {
            return Ok(None);
        };
        Ok(Some(KeyGrant {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            role: role_of(row.try_get(2)?)?,
            contexts: scope_of(row.try_get(3)?)?,
            digest: row.try_get(4)?,
        }))
    }
}

impl Store {
    /// Revokes token `jti` until `until`, audited, on every edge.
    pub(crate) async fn revoke_token(
        &self,
        jti: &str,
        until: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<(Revocation, u64), StoreError> {
        let upsert = "INSERT INTO revoked_tokens (jti, until, revoked_by) VALUES ($1, $2, $3) \
                      ON CONFLICT (jti) DO UPDATE SET until = GREATEST(revoked_tokens.until, \
                        EXCLUDED.until), revoked_by = EXCLUDED.revoked_by RETURNING until";
        self.revoke(actor, upsert, &[&jti, &until, &actor.name], |row| {
            Ok(Revocation::Token { jti: jti.to_owned(), until: row.try_get(0)? })
        })
        .await
    }

    /// Revokes every token of `sub` issued before `before`, until `until`.
    pub(crate) async fn revoke_subject(
        &self,
        sub: &str,
        before: DateTime<Utc>,
        until: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<(Revocation, u64), StoreError> {
        let upsert = "INSERT INTO revoked_subjects (sub, before, until, revoked_by) \
                      VALUES ($1, $2, $3, $4) ON CONFLICT (sub) DO UPDATE SET \
                        before = GREATEST(revoked_subjects.before, EXCLUDED.before), \
                        until = GREATEST(revoked_subjects.until, EXCLUDED.until), \
                        revoked_by = EXCLUDED.revoked_by \
                      RETURNING before, until";
        self.revoke(actor, upsert, &[&sub, &before, &until, &actor.name], |row| {
            Ok(Revocation::Subject {
                sub: sub.to_owned(),
                before: row.try_get(0)?,
                until: row.try_get(1)?,
            })
        })
        .await
    }

    /// One revocation: `upsert` writes its row (a revocation already there
    /// only ever widens) and returns the times in force, `revocation` reads
    /// them back; then it goes to every edge as a credential change,
    /// audited as `token.revoke`. Returns it with the version it took.
    async fn revoke(
        &self,
        actor: &Actor,
        upsert: &str,
        params: &[&(dyn ToSql + Sync)],
        revocation: impl FnOnce(&Row) -> Result<Revocation, StoreError>,
    ) -> Result<(Revocation, u64), StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let row = ledger.tx().query_one(upsert, params).await?;
        let revocation = revocation(&row)?;
        let version = ledger.credentials(&revocation.change())?;
        ledger.note(AuditEntry {
            action: "token.revoke",
            target: Some(revocation.target()),
            after: serde_json::to_value(&revocation).ok(),
            ..Default::default()
        });
        ledger.commit().await?;
        Ok((revocation, u64::try_from(version).unwrap_or_default()))
    }

    /// Drops revocations whose tokens have all expired (`until` passed): a
    /// revocation is kept exactly as long as something could still use it,
    /// and no snapshot carries it after that. How many rows went.
    pub async fn prune_revocations(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let tokens = client.execute("DELETE FROM revoked_tokens WHERE until <= now()", &[]).await?;
        let subjects =
            client.execute("DELETE FROM revoked_subjects WHERE until <= now()", &[]).await?;
        Ok(tokens + subjects)
    }

    /// Whether verified `claims` are revoked: this control plane's own
    /// check, by the rule edges apply to the set the stream gave them
    /// ([`Cutoff::refuses`], on the cutoff the stream carries).
    pub(crate) async fn token_revoked(&self, claims: &Claims) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1), \
                        (SELECT before FROM revoked_subjects WHERE sub = $2)",
            )
            .await?;
        let row = client.query_one(&st, &[&claims.jti, &claims.sub]).await?;
        let by_id: bool = row.try_get(0)?;
        let subject: Option<DateTime<Utc>> = row.try_get(1)?;
        Ok(by_id || subject.is_some_and(|before| Cutoff::at(before).refuses(claims.iat)))
    }
}

/// The credential set in force, read in the snapshot's transaction: what
/// can still refuse or grant something now.
pub(crate) async fn credentials_in(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Credentials, StoreError> {
    let mut set = Credentials::default();
    for r in tx
        .query("SELECT jti, until FROM revoked_tokens WHERE until > now() ORDER BY jti", &[])
        .await?
    {
        set.revoked_tokens.push(shipped_token(r.try_get(0)?, r.try_get(1)?));
    }
    for r in tx
        .query(
            "SELECT sub, before, until FROM revoked_subjects WHERE until > now() ORDER BY sub",
            &[],
        )
        .await?
    {
        set.revoked_subjects.push(shipped_subject(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
    }
    for r in tx
        .query(
            "SELECT id, name, role, contexts, key_digest, expires_at \
             FROM api_keys WHERE revoked_at IS NULL \
               AND (expires_at IS NULL OR expires_at > now()) ORDER BY id",
            &[],
        )
        .await?
    {
        let name: String = r.try_get(1)?;
        set.api_keys.push(Grant {
            digest: digest_of(r.try_get(4)?)?,
            name: key_name(r.try_get(0)?, &name),
            role: role_of(r.try_get(2)?)?,
            contexts: scope_of(r.try_get(3)?)?,
            expires_at: shipped_expiry(r.try_get(5)?),
        });
    }
    Ok(set)
}
