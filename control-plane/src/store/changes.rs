//! What the publisher reads: the registry head, the outbox (`changes`) in
//! version order, and a consistent snapshot of every alias.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use nexus_protocol::{
    AliasKey, AliasName, AliasRecord, Canonical, Context, CredentialChange, Credentials,
    KnownContexts, NameError,
};
use serde::de::DeserializeOwned;
use tokio_postgres::Row;

use super::{Store, StoreError, consistent, governance, keys};

/// The registry's `(epoch, version)`: the newest committed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryHead {
    pub epoch: u64,
    pub version: u64,
}

/// One outbox row: the change that took the registry to `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub version: u64,
    pub epoch: u64,
    pub committed_at_ms: i64,
    pub op: ChangeOp,
}

/// What one change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOp {
    /// Created or changed (a deactivation is an upsert with `is_active`
    /// false).
    Upsert(AliasRecord),
    /// Gone from the registry altogether.
    Remove(AliasKey),
    /// The rules in force now configure these contexts (`op = 'contexts'`,
    /// written by a governance change that changed the set).
    Contexts(KnownContexts),
    /// A revocation, or an API key granted or revoked (`op =
    /// 'credentials'`, migration 0008).
    Credentials(CredentialChange),
}

/// Every alias at one version, read in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRead {
    pub head: RegistryHead,
    /// One record per `(context, alias)`: the active one if there is one,
    /// else the most recent inactive one. In no particular order.
    pub records: Vec<AliasRecord>,
    /// The contexts of the governance in force at `head`.
    pub contexts: KnownContexts,
    /// Revocations and API keys in force at `head`.
    pub credentials: Credentials,
}

/// Most outbox rows one prune deletes.
pub(crate) const PRUNE_BATCH: i64 = 10_000;

fn unsigned(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}

/// A version as the `BIGINT` columns hold it.
fn signed(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("version {version} is out of range")))
}

/// The registry's head as `client` sees it (in a transaction: as of its
/// snapshot).
async fn head_in(client: &impl GenericClient) -> Result<RegistryHead, StoreError> {
    let st = client.prepare_cached("SELECT epoch, version FROM registry WHERE id = 1").await?;
    let row = client.query_opt(&st, &[]).await?.ok_or_else(StoreError::registry_missing)?;
    Ok(RegistryHead {
        epoch: unsigned("registry epoch", row.try_get(0)?)?,
        version: unsigned("registry version", row.try_get(1)?)?,
    })
}

/// A change's `record` column decoded; `version` names the change when it
/// does not decode.
pub(crate) fn decode_record<T: DeserializeOwned>(
    version: impl std::fmt::Display,
    record: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(record).map_err(|e| StoreError::corrupt(format!("change {version}"), e))
}

fn change_from(row: &Row) -> Result<ChangeRow, StoreError> {
    let version = unsigned("change version", row.try_get(0)?)?;
    let op: String = row.try_get(3)?;
    let op = match op.as_str() {
        "upsert" => ChangeOp::Upsert(decode_record(version, row.try_get(6)?)?),
        "remove" => {
            let bad = |e: NameError| StoreError::corrupt(format!("change {version}"), e);
            let context: String = row.try_get(4)?;
            let alias: String = row.try_get(5)?;
            ChangeOp::Remove(AliasKey {
                context: Context::parse(&context).map_err(bad)?,
                alias: AliasName::parse(&alias).map_err(bad)?,
            })
        }
        "contexts" => ChangeOp::Contexts(decode_record(version, row.try_get(6)?)?),
        "credentials" => ChangeOp::Credentials(decode_record(version, row.try_get(6)?)?),
        other => {
            return Err(StoreError::Corrupt(format!("change {version}: unknown op {other:?}")));
        }
    };
    Ok(ChangeRow {
        version,
        epoch: unsigned("change epoch", row.try_get(1)?)?,
        committed_at_ms: row.try_get(2)?,
        op,
    })
}

/// The columns of a snapshot record, computed exactly as `alias_record()`
/// (migration 0002) computes the outbox's, so a record reads the same
/// whether an edge got it from a delta or from a snapshot.
const RECORD_COLS: &str = "id, context, alias, canonical, description, \
    (extract(epoch FROM expires_at) * 1000)::BIGINT, is_active, version, \
    (extract(epoch FROM updated_at) * 1000)::BIGINT";

/// Decodes one snapshot row, taking ownership of its strings (a million
/// rows: every copy shows).
fn record_from(row: &Row) -> Result<AliasRecord, StoreError> {
    let id: i32 = row.try_get(0)?;
    let bad = |what: &str| format!("alias {id}: {what}");
    Ok(AliasRecord {
        id: i64::from(id),
        context: Context::try_from(row.try_get::<_, String>(1)?)
            .map_err(|e| StoreError::corrupt(bad("context"), e))?,
        alias: AliasName::try_from(row.try_get::<_, String>(2)?)
            .map_err(|e| StoreError::corrupt(bad("alias"), e))?,
        canonical: Canonical::try_from(row.try_get::<_, String>(3)?)
            .map_err(|e| StoreError::corrupt(bad("canonical"), e))?,
        description: row.try_get(4)?,
        expires_at_ms: row.try_get(5)?,
        is_active: row.try_get(6)?,
        version: unsigned("alias version", row.try_get(7)?)?,
        updated_at_ms: row.try_get(8)?,
    })
}

const CHANGES_AFTER: &str = "SELECT version, epoch, \
        (extract(epoch FROM committed_at) * 1000)::BIGINT, op, context, alias, record \
    FROM changes WHERE version > $1 ORDER BY version LIMIT $2";

impl Store {
    /// The registry's epoch and newest version.
    pub async fn registry_head(&self) -> Result<RegistryHead, StoreError> {
        head_in(&self.client().await?).await
    }

    /// Deletes outbox rows at or below `up_to` committed before `before`,
    /// at most [`PRUNE_BATCH`] a call (the leader calls again a minute
    /// later), so no call holds many row locks. Returns how many went.
    pub(crate) async fn prune_changes(
        &self,
        up_to: u64,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let up_to = signed(up_to)?;
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "DELETE FROM changes WHERE version IN (SELECT version FROM changes \
                 WHERE version <= $1 AND committed_at < $2 ORDER BY version LIMIT $3)",
            )
            .await?;
        Ok(client.execute(&st, &[&up_to, &before, &PRUNE_BATCH]).await?)
    }

    /// Up to `limit` outbox rows after `version`, in version order.
    pub(crate) async fn changes_after(
        &self,
        version: u64,
        limit: u32,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        let after = signed(version)?;
        let client = self.client().await?;
        let st = client.prepare_cached(CHANGES_AFTER).await?;
        let rows = client.query(&st, &[&after, &i64::from(limit)]).await?;
        rows.iter().map(change_from).collect()
    }

    /// Every alias and the registry head, read in one REPEATABLE READ
    /// transaction so the records are exactly the state at that version.
    pub async fn snapshot_read(&self) -> Result<SnapshotRead, StoreError> {
        let mut client = self.client().await?;
        let tx = consistent::begin(&mut client).await?;
        let head = head_in(&tx).await?;
        // In the same transaction: the contexts are those at `head`, as
        // every governance change that changes them takes a version.
        let contexts = governance::active_in(&tx)
            .await?
            .map_or(KnownContexts::Any, |doc| doc.known_contexts());
        // An inactive row may share its key with a newer active one (the
        // unique index only covers active rows); edges key by name, so
        // publish one record per key. An anti-join on the (alias, context)
        // index rather than DISTINCT ON: sorting a million names by
        // collation costs seconds. JIT only adds latency to this plan.
        tx.batch_execute("SET LOCAL jit = off").await?;
        let sql = format!(
            "SELECT {RECORD_COLS} FROM aliases a WHERE a.is_active OR NOT EXISTS ( \
               SELECT 1 FROM aliases b WHERE b.alias = a.alias AND b.context = a.context \
                 AND b.id <> a.id AND (b.is_active OR (b.version, b.id) > (a.version, a.id)))"
        );
        let st = tx.prepare(&sql).await?;
        let records = consistent::read_all(&tx, &st, &[], record_from).await?;
        let credentials = keys::credentials_in(&tx).await?;
        tx.commit().await?;
        Ok(SnapshotRead { head, records, contexts, credentials })
    }
}
