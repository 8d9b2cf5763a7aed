//! Reads the admin console needs beyond the admin API's: aliases per
//! context (kept in `alias_counts` by the triggers of migration 0007), the
//! number of open conflicts, the registry row, and the alias search,
//! planned so that no page reads more than a bounded part of the registry.

use chrono::{DateTime, Utc};

use super::alias_rows::{COLS, owned_from_row};
use super::aliases::AliasFilter;
use super::decode::decode;
use super::{Store, StoreError};
use crate::domain::alias::OwnedAlias;

/// One context's alias counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextCount {
    pub context: String,
    pub active: i64,
    pub inactive: i64,
}

/// The registry row: where the registry stands and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Registry {
    pub epoch: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// Rows the first, ordered pass of a search reads at most.
const FIRST_PASS: i64 = 2_000;

impl Store {
    /// Active and inactive aliases per context, narrowed to `visible`
    /// (`None`: all): a few rows, whatever the registry's size.
    pub(crate) async fn alias_counts(
        &self,
        visible: Option<&[String]>,
    ) -> Result<Vec<ContextCount>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT context, \
                        coalesce(sum(n) FILTER (WHERE is_active), 0)::BIGINT AS active, \
                        coalesce(sum(n) FILTER (WHERE NOT is_active), 0)::BIGINT AS inactive \
                 FROM alias_counts WHERE ($1::TEXT[] IS NULL OR context = ANY($1)) \
                 GROUP BY context HAVING sum(n) > 0 ORDER BY context",
            )
            .await?;
        let rows = client.query(&st, &[&visible]).await?;
        rows.iter().map(|r| Ok(decode!(r => ContextCount { context, active, inactive }))).collect()
    }

    /// Open conflicts in `visible` (`None`: all), by the partial index on
    /// open conflicts.
    pub(crate) async fn open_conflicts(
        &self,
        visible: Option<&[String]>,
    ) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT count(*) FROM conflicts WHERE resolution IS NULL \
                 AND ($1::TEXT[] IS NULL OR context = ANY($1))",
            )
            .await?;
        Ok(client.query_one(&st, &[&visible]).await?.try_get(0)?)
    }

    pub(crate) async fn registry(&self) -> Result<Registry, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("SELECT epoch, version, updated_at FROM registry WHERE id = 1")
            .await?;
        let r = client.query_one(&st, &[]).await?;
        Ok(decode!(&r => Registry { epoch, version, updated_at }))
    }

    /// The aliases `f` selects, in id order after `f.after_id`: the same
    /// rows as [`Store::list_aliases`] (same filters, same `q` pattern), in
    /// at most two passes whose cost is bounded. First the next
    /// [`FIRST_PASS`] rows by id are filtered: when matches are dense, the
    /// page is there. Otherwise the filter runs without the id-order index
    /// scan, which, when matches are sparse but late (where the planner's
    /// ordered scan would read most of the table), takes the trigram
    /// indexes (BitmapOr) or, at worst, one sequential scan with a top-N
    /// sort.
    pub(crate) async fn search_aliases(
        &self,
        f: &AliasFilter,
    ) -> Result<Vec<OwnedAlias>, StoreError> {
        let pattern = f.pattern();
        // Only the conditions in use, so each shape gets a plan that can
        // use its indexes (a generic `$1 IS NULL OR ...` cannot). $1 is the
        // cursor, $2 the page size.
        let after = f.after_id.unwrap_or(0);
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&after, &f.limit];
        let mut conds = Vec::new();
        if let Some(c) = &f.context {
            params.push(c);
            conds.push(format!("context = ${}", params.len()));
        }
        if let Some(v) = &f.visible {
            params.push(v);
            conds.push(format!("context = ANY(${})", params.len()));
        }
        if let Some(a) = &f.active {
            params.push(a);
            conds.push(format!("is_active = ${}", params.len()));
        }
        if let Some(p) = &pattern {
            params.push(p);
            let n = params.len();
            conds.push(format!(
                "(alias ILIKE ${n} OR canonical ILIKE ${n} OR description ILIKE ${n})"
            ));
        }
        let filter = if conds.is_empty() { "TRUE".to_owned() } else { conds.join(" AND ") };
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A generic plan cannot see the pattern, so it cannot weigh the
        // trigram indexes: plan each search for its own values.
        tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan").await?;
        let first = format!(
            "SELECT {COLS} FROM (SELECT * FROM aliases WHERE id > $1 ORDER BY id \
             LIMIT {FIRST_PASS}) a WHERE {filter} ORDER BY id LIMIT $2"
        );
        let st = tx.prepare_cached(&first).await?;
        let mut rows = tx.query(&st, &params).await?;
        if (rows.len() as i64) < f.limit {
            let second = format!(
                "SELECT {COLS} FROM aliases WHERE id > $1 AND {filter} ORDER BY id LIMIT $2"
            );
            tx.batch_execute("SET LOCAL enable_indexscan = off").await?;
            let st = tx.prepare_cached(&second).await?;
            rows = tx.query(&st, &params).await?;
        }
        tx.commit().await?;
        rows.iter().map(owned_from_row).collect()
    }
}
