//! Bulk import: every entry in one transaction, with array-bound statements
//! (UNNEST), so 100,000 aliases cost a handful of round trips.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexus_protocol::AliasEntry;
use serde::Serialize;
use serde_json::Value;

use super::aliases::{COLS, from_row};
use super::registry::{AuditEntry, append, lock};
use super::{Actor, Store, StoreError};
use crate::domain::alias::StoredAlias;
use crate::domain::conflict::{ImportPolicy, ImportStep, import_step};

/// What an import did, or would do (`dry_run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub unchanged: u64,
    pub conflicts: Vec<Value>,
    pub dry_run: bool,
    /// Registry versions the import took (`from_version` exclusive).
    pub from_version: i64,
    pub to_version: i64,
}

impl ImportReport {
    /// An import under `reject` that met conflicts wrote nothing.
    pub fn refused(&self, policy: ImportPolicy) -> bool {
        policy == ImportPolicy::Reject && !self.conflicts.is_empty()
    }
}

fn same(e: &AliasEntry, x: &StoredAlias) -> bool {
    e.is_active
        && e.canonical == x.canonical
        && e.description == x.description
        && e.expires_at == x.expires_at
}

fn conflict_json(e: &AliasEntry, x: &StoredAlias) -> Value {
    serde_json::json!({
        "context": e.context,
        "alias": e.alias,
        "existing": x.to_json(),
        "incoming": e,
    })
}

#[derive(Default)]
struct Columns {
    ids: Vec<i32>,
    contexts: Vec<String>,
    aliases: Vec<String>,
    canonicals: Vec<String>,
    descriptions: Vec<Option<String>>,
    expires: Vec<Option<DateTime<Utc>>>,
    actives: Vec<bool>,
    versions: Vec<i64>,
}

impl Columns {
    fn push(&mut self, id: i32, e: &AliasEntry, version: i64) {
        self.ids.push(id);
        self.contexts.push(e.context.to_string());
        self.aliases.push(e.alias.to_string());
        self.canonicals.push(e.canonical.to_string());
        self.descriptions.push(e.description.clone());
        self.expires.push(e.expires_at);
        self.actives.push(e.is_active);
        self.versions.push(version);
    }
}

const INSERT: &str = "INSERT INTO aliases (context, alias, canonical, description, expires_at, \
                      is_active, version, created_by, updated_by) \
    SELECT c, a, k, d, e, act, v, $8, $8 \
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TIMESTAMPTZ[], \
                $6::BOOL[], $7::BIGINT[]) AS t(c, a, k, d, e, act, v)";

const REPLACE: &str = "UPDATE aliases x SET canonical = t.k, description = t.d, expires_at = t.e, \
                       is_active = t.act, version = t.v, updated_by = $7, updated_at = now() \
    FROM UNNEST($1::INT[], $2::TEXT[], $3::TEXT[], $4::TIMESTAMPTZ[], $5::BOOL[], $6::BIGINT[]) \
         AS t(id, k, d, e, act, v) \
    WHERE x.id = t.id";

const SKIPPED: &str = "INSERT INTO conflicts (alias, context, conflict_type, existing, incoming, \
                       existing_id) \
    SELECT a, c, 'duplicate', e, i, x \
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::JSONB[], $4::JSONB[], $5::INT[]) AS t(a, c, e, i, x)";

/// Entries an import skipped, as conflict rows.
#[derive(Default)]
struct Skipped {
    aliases: Vec<String>,
    contexts: Vec<String>,
    existing: Vec<Value>,
    incoming: Vec<Value>,
    ids: Vec<i32>,
}

impl Skipped {
    fn push(&mut self, e: &AliasEntry, x: &StoredAlias) {
        self.aliases.push(e.alias.to_string());
        self.contexts.push(e.context.to_string());
        self.existing.push(x.to_json());
        self.incoming.push(serde_json::to_value(e).unwrap_or(Value::Null));
        self.ids.push(x.id);
    }
}

const OUTBOX: &str = "INSERT INTO changes (version, epoch, op, context, alias, record) \
    SELECT a.version, $1, 'upsert', a.context, a.alias, alias_record(a) \
    FROM aliases a WHERE a.version > $2 AND a.version <= $3";

impl Store {
    /// Imports `entries` (checked by the caller: names, governance, no
    /// duplicate keys). Under `reject`, any conflict writes nothing.
    pub async fn import(
        &self,
        entries: &[AliasEntry],
        policy: ImportPolicy,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<ImportReport, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut locked = lock(&tx).await?;
        let (ctx, names): (Vec<&str>, Vec<&str>) =
            entries.iter().map(|e| (e.context.as_str(), e.alias.as_str())).unzip();
        let sql = format!(
            "SELECT {} FROM aliases x JOIN UNNEST($1::TEXT[], $2::TEXT[]) AS k(c, a) \
             ON x.context = k.c AND x.alias = k.a WHERE x.is_active",
            COLS.split(", ").map(|c| format!("x.{c}")).collect::<Vec<_>>().join(", ")
        );
        let rows = tx.query(&sql, &[&ctx, &names]).await?;
        let mut existing = HashMap::with_capacity(rows.len());
        for r in &rows {
            let a = from_row(r)?;
            existing.insert((a.context.to_string(), a.alias.to_string()), a);
        }
        let base = locked.version;
        let mut report =
            ImportReport { dry_run, from_version: base, to_version: base, ..Default::default() };
        let (mut creates, mut replaces) = (Columns::default(), Columns::default());
        let mut pending_replaces = Vec::new();
        let mut skipped = Skipped::default();
        for e in entries {
            let found = existing.get(&(e.context.to_string(), e.alias.to_string()));
            let step = import_step(policy, found.is_some(), found.is_some_and(|x| same(e, x)));
            match (step, found) {
                (ImportStep::Create, _) => {
                    report.created += 1;
                    creates.push(0, e, base + report.created as i64);
                }
                (ImportStep::Unchanged, _) => report.unchanged += 1,
                (ImportStep::Skip, Some(x)) => {
                    report.skipped += 1;
                    report.conflicts.push(conflict_json(e, x));
                    skipped.push(e, x);
                }
                (ImportStep::Conflict, Some(x)) => report.conflicts.push(conflict_json(e, x)),
                (ImportStep::Replace, Some(x)) => {
                    report.updated += 1;
                    pending_replaces.push((x.id, e));
                }
                (_, None) => {
                    return Err(StoreError::Corrupt("import step without an existing row".into()));
                }
            }
        }
        for (i, (id, e)) in pending_replaces.into_iter().enumerate() {
            replaces.push(id, e, base + report.created as i64 + i as i64 + 1);
        }
        let top = base + (report.created + report.updated) as i64;
        if report.refused(policy) || dry_run {
            report.to_version = if dry_run && !report.refused(policy) { top } else { base };
            return Ok(report);
        }
        if top == base && skipped.ids.is_empty() {
            return Ok(report);
        }
        // Skipped entries stay on record as open conflicts, so someone can
        // still choose the incoming side later.
        if !skipped.ids.is_empty() {
            let k = &skipped;
            tx.execute(SKIPPED, &[&k.aliases, &k.contexts, &k.existing, &k.incoming, &k.ids])
                .await?;
        }
        if !creates.versions.is_empty() {
            let c = &creates;
            tx.execute(
                INSERT,
                &[
                    &c.contexts,
                    &c.aliases,
                    &c.canonicals,
                    &c.descriptions,
                    &c.expires,
                    &c.actives,
                    &c.versions,
                    &actor.name,
                ],
            )
            .await?;
        }
        if !replaces.versions.is_empty() {
            let r = &replaces;
            tx.execute(
                REPLACE,
                &[
                    &r.ids,
                    &r.canonicals,
                    &r.descriptions,
                    &r.expires,
                    &r.actives,
                    &r.versions,
                    &actor.name,
                ],
            )
            .await?;
        }
        if top > base {
            tx.execute(OUTBOX, &[&locked.epoch, &base, &top]).await?;
        }
        report.to_version = top;
        let entry = AuditEntry {
            action: "alias.import",
            details: Some(format!(
                "created {}, updated {}, skipped {}, unchanged {}",
                report.created, report.updated, report.skipped, report.unchanged
            )),
            after: Some(serde_json::json!({
                "created": report.created, "updated": report.updated,
                "skipped": report.skipped, "unchanged": report.unchanged,
                "from_version": base, "to_version": top, "policy": policy,
            })),
            ..Default::default()
        };
        append(&tx, &mut locked, actor, &entry, None, (top > base).then_some(top)).await?;
        tx.commit().await?;
        Ok(report)
    }
}
