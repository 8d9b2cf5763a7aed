//! Reading `aliases` rows: the columns, their decoding, and the lookups
//! every plan starts from. Shared by the alias, import, apply and conflict
//! writes, which therefore need nothing from each other.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use nexus_protocol::{AliasEntry, AliasKey, AliasName, Canonical, Context};
use tokio_postgres::Row;

use super::StoreError;
use crate::domain::alias::{OwnedAlias, StoredAlias};

/// The columns [`from_row`] decodes, then the owner ([`owned_from_row`]).
pub(crate) const COLS: &str = "id, context, alias, canonical, description, expires_at, is_active, \
                               created_at, updated_at, created_by, version, owner";

/// At most this many shadows are read (and kept in a shadowing conflict).
const SHADOWS: i64 = 20;

pub(crate) fn from_row(row: &Row) -> Result<StoredAlias, StoreError> {
    let id = row.get::<_, i32>(0);
    let bad = |what: &str| format!("alias {id}: {what}");
    let context: String = row.try_get(1)?;
    let alias: String = row.try_get(2)?;
    let canonical: String = row.try_get(3)?;
    Ok(StoredAlias {
        id: row.try_get(0)?,
        context: Context::parse(&context).map_err(|e| StoreError::corrupt(bad("context"), e))?,
        alias: AliasName::parse(&alias).map_err(|e| StoreError::corrupt(bad("alias"), e))?,
        canonical: Canonical::parse(&canonical)
            .map_err(|e| StoreError::corrupt(bad("canonical"), e))?,
        description: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        is_active: row.try_get(6)?,
        created_at: row.try_get(7)?,
        updated_at: row.try_get(8)?,
        created_by: row.try_get(9)?,
        version: row.try_get(10)?,
    })
}

/// A row of [`COLS`] with its owner.
pub(crate) fn owned_from_row(row: &Row) -> Result<OwnedAlias, StoreError> {
    Ok(OwnedAlias { row: from_row(row)?, owner: row.try_get(11)? })
}

/// The active row at `key`, with its owner.
pub(crate) async fn active_owned_at(
    client: &impl GenericClient,
    key: &AliasKey,
) -> Result<Option<OwnedAlias>, StoreError> {
    owned_at(client, key, "AND is_active").await
}

/// The active row at `key`, else the newest inactive one, with its owner.
pub(crate) async fn current_owned_at(
    client: &impl GenericClient,
    key: &AliasKey,
) -> Result<Option<OwnedAlias>, StoreError> {
    owned_at(client, key, "ORDER BY is_active DESC, id DESC LIMIT 1").await
}

async fn owned_at(
    client: &impl GenericClient,
    key: &AliasKey,
    then: &str,
) -> Result<Option<OwnedAlias>, StoreError> {
    let sql = format!("SELECT {COLS} FROM aliases WHERE context = $1 AND alias = $2 {then}");
    let st = client.prepare_cached(&sql).await?;
    let row = client.query_opt(&st, &[&key.context.as_str(), &key.alias.as_str()]).await?;
    row.as_ref().map(owned_from_row).transpose()
}

/// The owner of row `id`.
pub(crate) async fn owner_of(client: &impl GenericClient, id: i32) -> Result<String, StoreError> {
    let st = client.prepare_cached("SELECT owner FROM aliases WHERE id = $1").await?;
    let row = client
        .query_opt(&st, &[&id])
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("alias {id} vanished under the lock")))?;
    Ok(row.try_get(0)?)
}

/// What a create at `key` meets, in one query: the active row at the key,
/// and the same name active in other contexts (in context order).
pub(crate) async fn active_named(
    client: &impl GenericClient,
    key: &AliasKey,
) -> Result<(Option<StoredAlias>, Vec<StoredAlias>), StoreError> {
    let sql = format!(
        "SELECT {COLS} FROM aliases WHERE alias = $1 AND is_active \
         ORDER BY context <> $2, context LIMIT $3"
    );
    let st = client.prepare_cached(&sql).await?;
    let rows =
        client.query(&st, &[&key.alias.as_str(), &key.context.as_str(), &(SHADOWS + 1)]).await?;
    let mut found: Vec<StoredAlias> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    let existing = match found.first() {
        Some(first) if first.context == key.context => Some(found.remove(0)),
        _ => None,
    };
    found.truncate(SHADOWS as usize);
    Ok((existing, found))
}

/// The active rows at the keys of `entries`, with their owners.
pub(crate) async fn active_for(
    client: &impl GenericClient,
    entries: &[AliasEntry],
) -> Result<HashMap<AliasKey, OwnedAlias>, StoreError> {
    let (contexts, names): (Vec<&str>, Vec<&str>) =
        entries.iter().map(|e| (e.context.as_str(), e.alias.as_str())).unzip();
    let sql = format!(
        "SELECT {} FROM aliases x JOIN UNNEST($1::TEXT[], $2::TEXT[]) AS k(c, a) \
         ON x.context = k.c AND x.alias = k.a WHERE x.is_active",
        COLS.split(", ").map(|c| format!("x.{c}")).collect::<Vec<_>>().join(", ")
    );
    let rows = client.query(&sql, &[&contexts, &names]).await?;
    by_key(&rows)
}

/// The active rows in `contexts`, with their owners.
pub(crate) async fn active_in(
    client: &impl GenericClient,
    contexts: &[&str],
) -> Result<HashMap<AliasKey, OwnedAlias>, StoreError> {
    let sql = format!("SELECT {COLS} FROM aliases WHERE is_active AND context = ANY($1)");
    let rows = client.query(&sql, &[&contexts]).await?;
    by_key(&rows)
}

/// Active rows (at most one a key) by their key.
fn by_key(rows: &[Row]) -> Result<HashMap<AliasKey, OwnedAlias>, StoreError> {
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let a = owned_from_row(r)?;
        found.insert(a.row.key(), a);
    }
    Ok(found)
}
