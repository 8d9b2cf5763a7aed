//! The `conflicts` table: recorded when a write meets an alias, listed,
//! and settled (which may itself write the alias).

use tokio_postgres::Row;

use super::alias_rows::active_owned_at;
use super::decode::decode;
use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};
use crate::domain::alias::AliasWrite;
use crate::domain::conflict::{
    BadConflict, Conflict, ConflictRecord, Resolution, ResolutionPlan, plan_resolution,
};
use crate::domain::governance::Governance;
use crate::domain::rbac::Writer;

/// The columns [`conflict_from_row`] decodes, named as [`Conflict`]'s
/// fields.
const CONFLICT_COLS: &str = "id, context, alias, conflict_type, existing, incoming, resolution, \
                             resolved_at, resolved_by, created_at";

/// Every conflict record goes in through this one statement, one or many.
const RECORD: &str = "INSERT INTO conflicts (alias, context, conflict_type, existing, incoming, \
                      existing_id) \
    SELECT t.a, t.c, t.k, t.e, t.i, t.x \
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::JSONB[], $5::JSONB[], $6::INT[]) \
         WITH ORDINALITY AS t(a, c, k, e, i, x, n) \
    ORDER BY t.n \
    RETURNING id";

/// A row of [`CONFLICT_COLS`].
fn conflict_from_row(r: &Row) -> Result<Conflict, StoreError> {
    Ok(decode!(r => Conflict {
        id, context, alias, conflict_type, existing, incoming, resolution, resolved_at,
        resolved_by, created_at,
    }))
}

fn corrupt(e: BadConflict) -> StoreError {
    StoreError::corrupt("conflict row", e)
}

/// Whether each recorded conflict gets its own audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audited {
    /// `conflict.detected`, one per conflict (single writes).
    Each,
    /// Summed up by the caller's own audit row (imports).
    InSummary,
}

/// Records `conflicts` in the ledger's transaction; returns their ids, in
/// order.
pub(crate) async fn record(
    ledger: &mut Ledger<'_>,
    conflicts: &[ConflictRecord],
    audited: Audited,
) -> Result<Vec<i32>, StoreError> {
    if conflicts.is_empty() {
        return Ok(Vec::new());
    }
    let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in conflicts {
        cols.0.push(c.key.alias.as_str());
        cols.1.push(c.key.context.as_str());
        cols.2.push(c.kind.as_str());
        cols.3.push(&c.existing);
        cols.4.push(&c.incoming);
        cols.5.push(c.existing_id);
    }
    let st = ledger.tx().prepare_cached(RECORD).await?;
    let rows =
        ledger.tx().query(&st, &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5]).await?;
    // Serial ids follow insertion order, and every writer holds the
    // registry lock: sorted, they are the conflicts' ids in order.
    let mut ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    if audited == Audited::Each {
        for (c, id) in conflicts.iter().zip(&ids) {
            ledger.note(AuditEntry {
                action: "conflict.detected",
                target: Some(format!("conflict/{id}")),
                details: Some(format!("{} on {}/{}", c.kind.as_str(), c.key.context, c.key.alias)),
                after: Some(c.incoming.clone()),
                ..Default::default()
            });
        }
    }
    Ok(ids)
}

/// The outcome of [`Store::resolve_conflict`].
#[derive(Debug)]
pub(crate) enum Resolved {
    Done(Conflict),
    NotFound,
    /// Settled before.
    Already,
    /// `use_incoming` would change an alias another owns, and the writer
    /// may not (ownership as for any update); nothing was written.
    NotOwner {
        alias: String,
        owner: String,
    },
}

impl Store {
    pub(crate) async fn conflicts(
        &self,
        open: Option<bool>,
        visible: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<Conflict>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {CONFLICT_COLS} FROM conflicts \
             WHERE ($1::BOOL IS NULL OR (resolution IS NULL) = $1) \
               AND ($2::TEXT[] IS NULL OR context = ANY($2)) \
             ORDER BY id DESC LIMIT $3"
        );
        let st = client.prepare_cached(&sql).await?;
        let rows = client.query(&st, &[&open, &visible, &limit]).await?;
        rows.iter().map(conflict_from_row).collect()
    }

    pub(crate) async fn conflict(&self, id: i32) -> Result<Option<Conflict>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {CONFLICT_COLS} FROM conflicts WHERE id = $1");
        let row = client.query_opt(&sql, &[&id]).await?;
        row.as_ref().map(conflict_from_row).transpose()
    }

    /// Settles conflict `id` as [`plan_resolution`] decides. `use_incoming`
    /// on an existing alias is a change of it, so it needs what any change
    /// needs: `writer` owns the alias, or is an admin, or `rules` share the
    /// context.
    pub(crate) async fn resolve_conflict(
        &self,
        id: i32,
        resolution: Resolution,
        actor: &Actor,
        writer: &Writer,
        rules: &Governance,
    ) -> Result<Resolved, StoreError> {
        let mut client = self.client().await?;
        // One id reserved: `use_incoming` may create the alias.
        let mut ledger = Ledger::open(&mut client, actor, 1).await?;
        let sql = format!("SELECT {CONFLICT_COLS} FROM conflicts WHERE id = $1 FOR UPDATE");
        let Some(row) = ledger.tx().query_opt(&sql, &[&id]).await? else {
            return Ok(Resolved::NotFound);
        };
        let c = conflict_from_row(&row)?;
        let key = c.key().map_err(corrupt)?;
        let active = active_owned_at(ledger.tx(), &key).await?;
        let write = match plan_resolution(&c, resolution, active.as_ref().map(|a| &a.row))
            .map_err(corrupt)?
        {
            ResolutionPlan::AlreadyResolved => return Ok(Resolved::Already),
            ResolutionPlan::Settle(write) => write,
        };
        if let (Some(AliasWrite::Change { .. }), Some(current)) = (&write, &active)
            && !current.changeable_by(writer, rules)
        {
            let alias = format!("{}/{}", key.context, key.alias);
            return Ok(Resolved::NotOwner { alias, owner: current.owner.clone() });
        }
        if let Some(w) = &write {
            ledger.stage(w)?;
        }
        let st = ledger
            .tx()
            .prepare_cached(&format!(
                "UPDATE conflicts SET resolution = $2, resolved_at = now(), resolved_by = $3 \
                 WHERE id = $1 RETURNING {CONFLICT_COLS}"
            ))
            .await?;
        let row = ledger.tx().query_one(&st, &[&id, &resolution.as_str(), &actor.name]).await?;
        let done = conflict_from_row(&row)?;
        ledger.note(AuditEntry {
            action: "conflict.resolve",
            target: Some(format!("conflict/{id}")),
            details: Some(resolution.as_str().to_owned()),
            before: serde_json::to_value(&c).ok(),
            after: serde_json::to_value(&done).ok(),
        });
        ledger.commit().await?;
        Ok(Resolved::Done(done))
    }
}
