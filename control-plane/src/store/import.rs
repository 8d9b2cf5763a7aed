//! Bulk import: every entry in one transaction. One read of the active rows
//! at the entries' keys, the domain's plan, then the skipped entries as
//! conflicts and every alias row through the ledger's one statement
//! (array-bound), so 100,000 aliases cost a handful of round trips.

use nexus_protocol::AliasEntry;

use super::alias_rows::active_for;
use super::conflicts::{Audited, record};
use super::ledger::{AuditEntry, Ledger};
use super::{Actor, Store, StoreError};
use crate::domain::governance::Governance;
use crate::domain::import::{ImportPolicy, plan_import};
use crate::domain::rbac::Writer;

pub(crate) use crate::domain::import::ImportReport;

impl Store {
    /// Imports `entries` (checked by the caller: names, governance, no
    /// duplicate keys) for `writer`. Under `reject`, any conflict writes
    /// nothing; replacing an alias `writer` may not change (`rules`'
    /// ownership) writes nothing either.
    pub(crate) async fn import(
        &self,
        entries: &[AliasEntry],
        policy: ImportPolicy,
        dry_run: bool,
        actor: &Actor,
        writer: &Writer,
        rules: &Governance,
    ) -> Result<ImportReport, StoreError> {
        let mut client = self.client().await?;
        let mut ledger = Ledger::open(&mut client, actor, 0).await?;
        let existing = active_for(ledger.tx(), entries).await?;
        let plan = plan_import(entries, &existing, policy, writer, rules);
        let base = ledger.base();
        let top = if plan.refused() { base } else { base + plan.versions() };
        let writes = plan.writes();
        let mut report =
            ImportReport { dry_run, from_version: base, to_version: top, ..plan.report.clone() };
        if dry_run {
            return Ok(report);
        }
        if !writes {
            report.to_version = base;
            return Ok(report);
        }
        record(&mut ledger, &plan.skipped, Audited::InSummary).await?;
        ledger.bulk(plan.creates.iter().copied(), plan.replaces.iter().copied());
        let r = &report;
        ledger.note(AuditEntry {
            action: "alias.import",
            details: Some(format!(
                "created {}, updated {}, skipped {}, unchanged {}",
                r.created, r.updated, r.skipped, r.unchanged
            )),
            after: Some(serde_json::json!({
                "created": r.created, "updated": r.updated,
                "skipped": r.skipped, "unchanged": r.unchanged,
                "from_version": base, "to_version": top, "policy": policy,
            })),
            ..Default::default()
        });
        let done = ledger.commit().await?;
        report.to_version = done.to;
        Ok(report)
    }
}
