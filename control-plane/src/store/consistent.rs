//! Consistent reads: a read-only REPEATABLE READ transaction, so that every
//! statement in it sees the registry at one version however many writers
//! commit meanwhile, and a large result read from it a chunk at a time.
//! The publisher's snapshot, the export and the audit chain's verification
//! read this way.

use deadpool_postgres::{Client, Transaction};
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row, Statement};

use super::StoreError;

/// Rows fetched per round trip by [`read_all`], so a large registry (a
/// million aliases) never sits in memory twice, as rows and as what they
/// decode to.
const CHUNK: i32 = 20_000;

/// Begins a read-only REPEATABLE READ transaction on `client`.
pub(crate) async fn begin(client: &mut Client) -> Result<Transaction<'_>, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    Ok(tx)
}

/// Every row `st` returns for `params`, each decoded by `decode` as its
/// chunk arrives, in the statement's order.
pub(crate) async fn read_all<T>(
    tx: &Transaction<'_>,
    st: &Statement,
    params: &[&(dyn ToSql + Sync)],
    mut decode: impl FnMut(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let portal = tx.bind(st, params).await?;
    let mut out = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, CHUNK).await?;
        if rows.is_empty() {
            break;
        }
        out.reserve(rows.len());
        for r in &rows {
            out.push(decode(r)?);
        }
    }
    Ok(out)
}
