//! Imports: what a batch of declarative entries does against the active
//! aliases at their keys, under the import's conflict policy. Replacing an
//! alias the writer may not change (another owns it, see
//! `rbac::may_change`) refuses the whole import; skipping or rejecting it
//! changes nothing, so ownership does not enter there.

use std::collections::HashMap;

use nexus_protocol::{AliasEntry, AliasKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::alias::{OwnedAlias, StoredAlias};
use super::conflict::{ConflictRecord, ConflictType};
use super::governance::Governance;
use super::rbac::Writer;

/// An import's policy for entries that meet an active alias with other content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportPolicy {
    /// Any conflict refuses the whole import; nothing is written.
    #[default]
    Reject,
    /// Conflicting entries are left out; the rest is written.
    Skip,
    /// Conflicting entries overwrite the active alias.
    Replace,
}

/// What an import did, or would do (`dry_run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub(crate) created: u64,
    pub(crate) updated: u64,
    pub(crate) skipped: u64,
    pub(crate) unchanged: u64,
    pub conflicts: Vec<Value>,
    /// Under `replace`: entries over aliases the writer does not own
    /// (`{context, alias, owner}`); any refuses the whole import.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) not_owned: Vec<Value>,
    pub(crate) dry_run: bool,
    /// Registry versions the import took (`from_version` exclusive).
    pub(crate) from_version: i64,
    pub(crate) to_version: i64,
}

impl ImportReport {
    /// An import under `reject` that met conflicts, or one that would
    /// replace another owner's alias, wrote nothing.
    pub(crate) fn refused(&self, policy: ImportPolicy) -> bool {
        (policy == ImportPolicy::Reject && !self.conflicts.is_empty()) || !self.not_owned.is_empty()
    }
}

/// What an import writes: new aliases, replacements (over the row of the
/// given id), and skipped entries kept as open conflicts, so someone can
/// still choose the incoming side later.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImportPlan<'e> {
    /// Counts and conflicts; the store fills in the versions.
    pub report: ImportReport,
    pub creates: Vec<&'e AliasEntry>,
    pub replaces: Vec<(i32, &'e AliasEntry)>,
    pub skipped: Vec<ConflictRecord>,
    pub policy: ImportPolicy,
}

impl ImportPlan<'_> {
    /// Refused as a whole: nothing may be written.
    pub(crate) fn refused(&self) -> bool {
        self.report.refused(self.policy)
    }

    /// How many versions the plan takes.
    pub(crate) fn versions(&self) -> i64 {
        (self.creates.len() + self.replaces.len()) as i64
    }

    /// Whether carrying it out writes anything at all.
    pub(crate) fn writes(&self) -> bool {
        !self.refused() && (self.versions() > 0 || !self.skipped.is_empty())
    }
}

/// Plans `entries` (names, governance and distinct keys already checked)
/// against `existing`, the active aliases at their keys, for `writer` under
/// `rules` (whose aliases it may replace).
pub(crate) fn plan_import<'e>(
    entries: &'e [AliasEntry],
    existing: &HashMap<AliasKey, OwnedAlias>,
    policy: ImportPolicy,
    writer: &Writer,
    rules: &Governance,
) -> ImportPlan<'e> {
    let mut plan = ImportPlan { policy, ..Default::default() };
    let r = &mut plan.report;
    for e in entries {
        let key = AliasKey { context: e.context.clone(), alias: e.alias.clone() };
        let Some(owned) = existing.get(&key) else {
            r.created += 1;
            plan.creates.push(e);
            continue;
        };
        let x = &owned.row;
        if same(e, x) {
            r.unchanged += 1;
            continue;
        }
        r.conflicts.push(serde_json::json!({
            "context": e.context,
            "alias": e.alias,
            "existing": x.to_json(),
            "incoming": e,
        }));
        match policy {
            ImportPolicy::Reject => {}
            ImportPolicy::Skip => {
                r.skipped += 1;
                plan.skipped.push(ConflictRecord {
                    kind: ConflictType::Duplicate,
                    key,
                    existing: x.to_json(),
                    existing_id: Some(x.id),
                    incoming: serde_json::to_value(e).unwrap_or(Value::Null),
                });
            }
            ImportPolicy::Replace if !owned.changeable_by(writer, rules) => {
                r.not_owned.push(serde_json::json!({
                    "context": e.context, "alias": e.alias, "owner": owned.owner,
                }));
            }
            ImportPolicy::Replace => {
                r.updated += 1;
                plan.replaces.push((x.id, e));
            }
        }
    }
    plan
}

fn same(e: &AliasEntry, x: &StoredAlias) -> bool {
    e.is_active
        && e.canonical == x.canonical
        && e.description == x.description
        && e.expires_at == x.expires_at
}

#[cfg(test)]
mod tests {
    use crate::domain::fixtures::{alice, rules};
    use nexus_protocol::{AliasName, Canonical, Context};

    use super::*;

    fn entry(alias: &str, canonical: &str) -> AliasEntry {
        AliasEntry {
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse(canonical).unwrap(),
            description: None,
            expires_at: None,
            is_active: true,
        }
    }

    fn active(id: i32, e: &AliasEntry) -> (AliasKey, OwnedAlias) {
        owned(id, e, "alice")
    }

    fn owned(id: i32, e: &AliasEntry, owner: &str) -> (AliasKey, OwnedAlias) {
        let row =
            StoredAlias::fixture(id, e.context.as_str(), e.alias.as_str(), e.canonical.as_str());
        (row.key(), row.owned(owner))
    }

    #[test]
    fn each_policy_on_new_same_and_other_entries() {
        let (w, g) = (alice(), rules());
        let plan_import = |e, x, p| plan_import(e, x, p, &w, &g);
        let entries =
            [entry("new", "https://n"), entry("same", "https://s"), entry("other", "https://new")];
        let existing: HashMap<_, _> =
            [active(1, &entries[1]), active(2, &entry("other", "https://old"))].into();
        let counts = |p: &ImportPlan<'_>| {
            let r = &p.report;
            (r.created, r.updated, r.skipped, r.unchanged, r.conflicts.len())
        };

        let reject = plan_import(&entries, &existing, ImportPolicy::Reject);
        assert_eq!(counts(&reject), (1, 0, 0, 1, 1));
        assert!(reject.refused() && !reject.writes());

        let skip = plan_import(&entries, &existing, ImportPolicy::Skip);
        assert_eq!(counts(&skip), (1, 0, 1, 1, 1));
        assert_eq!(skip.skipped[0].existing_id, Some(2));
        assert_eq!(skip.versions(), 1);

        let replace = plan_import(&entries, &existing, ImportPolicy::Replace);
        assert_eq!(counts(&replace), (1, 1, 0, 1, 1));
        assert_eq!(replace.replaces[0].0, 2);
        assert_eq!(replace.versions(), 2);
        assert!(!replace.refused() && replace.writes());

        let nothing = plan_import(&entries[1..2], &existing, ImportPolicy::Reject);
        assert!(!nothing.writes());
    }

    #[test]
    fn replacing_another_owners_alias_refuses_the_import() {
        let (w, g) = (alice(), rules());
        let entries = [entry("new", "https://n"), entry("bobs", "https://new")];
        let existing: HashMap<_, _> = [owned(1, &entry("bobs", "https://old"), "bob")].into();
        let replace = plan_import(&entries, &existing, ImportPolicy::Replace, &w, &g);
        assert!(replace.refused() && !replace.writes());
        assert_eq!(replace.report.not_owned[0]["owner"], "bob");
        assert_eq!(replace.report.updated, 0);
        // Skipping it changes nothing of bob's: allowed.
        let skip = plan_import(&entries, &existing, ImportPolicy::Skip, &w, &g);
        assert!(!skip.refused() && skip.report.not_owned.is_empty());
        let admin = Writer::new(nexus_protocol::Role::Admin, "root", None);
        let by_admin = plan_import(&entries, &existing, ImportPolicy::Replace, &admin, &g);
        assert_eq!((by_admin.refused(), by_admin.report.updated), (false, 1));
    }
}
