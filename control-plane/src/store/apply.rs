//! Applying a desired state in one transaction: the registry row locked
//! (so the version the plan names is the one it is carried out on), the
//! active aliases of the named contexts read once, the domain's plan, and
//! every row through the ledger's one statement.

use std::collections::HashSet;

use nexus_protocol::{AliasEntry, Context};
use serde::Serialize;

use super::alias_rows::active_in;
use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};
use crate::domain::apply::{Counts, PlanItem, plan_apply};
use crate::domain::governance::Governance;
use crate::domain::rbac::Writer;

/// What an apply did, or would do (`dry_run`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ApplyReport {
    pub dry_run: bool,
    pub prune: bool,
    /// The registry version the plan was computed against.
    pub from_version: i64,
    /// The version after it (equal to `from_version` when nothing changes).
    pub to_version: i64,
    pub counts: Counts,
    pub items: Vec<PlanItem>,
}

/// The outcome of [`Store::apply`].
#[derive(Debug)]
pub enum Applied {
    Done(ApplyReport),
    /// The registry is no longer at the version the caller planned on.
    Moved {
        expected: i64,
        found: i64,
    },
    /// The plan changes aliases the writer does not own (its `refused`
    /// items); nothing was written.
    NotOwner(Vec<PlanItem>),
}

/// Who applies, and the rules that say whose aliases it may change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApplyBy<'a> {
    pub actor: &'a Actor,
    pub writer: &'a Writer,
    pub rules: &'a Governance,
}

impl Store {
    /// Applies `entries` (checked by the caller: names, governance, no
    /// duplicate keys) as the desired state of `contexts`; with
    /// `expected_version`, only if the registry is still there; only if
    /// the plan refuses nothing (a dry run shows the refusals).
    pub(crate) async fn apply(
        &self,
        entries: &[AliasEntry],
        contexts: &HashSet<Context>,
        prune: bool,
        expected_version: Option<i64>,
        dry_run: bool,
        by: ApplyBy<'_>,
    ) -> Result<Applied, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, by.actor, 0).await?;
        let base = ledger.base();
        if let Some(expected) = expected_version.filter(|v| *v != base) {
            return Ok(Applied::Moved { expected, found: base });
        }
        let names: Vec<&str> = contexts.iter().map(Context::as_str).collect();
        let active = active_in(ledger.tx(), &names).await?;
        let plan = plan_apply(entries, &active, contexts, prune, by.writer, by.rules);
        let mut report = ApplyReport {
            dry_run,
            prune,
            from_version: base,
            to_version: base + plan.versions(),
            counts: plan.counts,
            items: plan.items.clone(),
        };
        if !dry_run && !plan.allowed() {
            return Ok(Applied::NotOwner(plan.refused().cloned().collect()));
        }
        if dry_run || plan.versions() == 0 {
            return Ok(Applied::Done(report));
        }
        ledger.bulk(plan.creates.iter().copied(), plan.rewrites.iter().map(|(id, e)| (*id, e)));
        let c = plan.counts;
        ledger.note(AuditEntry {
            action: "alias.apply",
            details: Some(format!(
                "created {}, updated {}, deactivated {}, unchanged {}",
                c.create, c.update, c.deactivate, c.unchanged
            )),
            after: Some(serde_json::json!({
                "counts": c, "prune": prune, "contexts": names,
                "from_version": base, "to_version": report.to_version,
            })),
            ..Default::default()
        });
        let done = ledger.commit().await?;
        report.to_version = done.to;
        Ok(Applied::Done(report))
    }
}
