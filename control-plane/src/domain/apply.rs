//! Applying a desired state (`nexusctl apply`, `POST /api/admin/apply`):
//! the declarative file says what its contexts should hold, so every
//! difference is a change — no conflicts, the file wins — and with
//! `prune` an active alias the file lacks, in a context it names, is
//! deactivated. The plan lists every alias it looked at with its action,
//! so a dry run is the diff a person reviews. A change the writer may not
//! make (an alias another owns, see `rbac::may_change`) is in the plan as
//! `refused`, with its owner; a plan with any refusal is not carried out.

use std::collections::{BTreeMap, HashMap, HashSet};

use nexus_protocol::{AliasEntry, AliasKey, Context};
use serde::Serialize;
use serde_json::Value;

use super::alias::{OwnedAlias, StoredAlias};
use super::governance::Governance;
use super::rbac::Writer;

/// What applying does to one alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Create,
    Update,
    Deactivate,
    Unchanged,
    /// An update or deactivation of an alias the writer does not own.
    Refused,
}

/// One line of the plan: the alias, its action, and its record before
/// and after (as the export file shows records).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(crate) struct PlanItem {
    pub context: String,
    pub alias: String,
    pub action: Action,
    /// The owner of the alias as it is (absent for a create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Counts of each action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Counts {
    pub create: u64,
    pub update: u64,
    pub deactivate: u64,
    pub unchanged: u64,
    pub refused: u64,
}

/// The plan and the writes that carry it out.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApplyPlan<'e> {
    /// Every alias looked at, by context then alias.
    pub items: Vec<PlanItem>,
    pub counts: Counts,
    pub creates: Vec<&'e AliasEntry>,
    /// Rewrites of existing rows (updates, and deactivations as the row
    /// with `is_active: false`), by row id.
    pub rewrites: Vec<(i32, AliasEntry)>,
}

impl ApplyPlan<'_> {
    /// Whether it may be carried out: nothing in it is refused.
    pub(crate) fn allowed(&self) -> bool {
        self.counts.refused == 0
    }

    /// The refused items.
    pub(crate) fn refused(&self) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(|i| i.action == Action::Refused)
    }

    /// How many versions carrying it out takes.
    pub(crate) fn versions(&self) -> i64 {
        (self.creates.len() + self.rewrites.len()) as i64
    }
}

/// Plans `entries` (names, governance and distinct keys already checked)
/// against `active`, the active aliases in every context the apply names
/// (`contexts`: those of the entries, and any named besides), for `writer`
/// under `rules` (whose aliases it may change).
pub(crate) fn plan_apply<'e>(
    entries: &'e [AliasEntry],
    active: &HashMap<AliasKey, OwnedAlias>,
    contexts: &HashSet<Context>,
    prune: bool,
    writer: &Writer,
    rules: &Governance,
) -> ApplyPlan<'e> {
    let mut plan = ApplyPlan::default();
    // Sorted, so the plan reads the same every time.
    let mut items: BTreeMap<(String, String), PlanItem> = BTreeMap::new();
    let mut wanted: HashSet<AliasKey> = HashSet::with_capacity(entries.len());
    for e in entries {
        let key = AliasKey { context: e.context.clone(), alias: e.alias.clone() };
        let current = active.get(&key);
        let action = match (current, e.is_active) {
            (None, true) => Action::Create,
            (None, false) => Action::Unchanged,
            (Some(x), true) if same(e, &x.row) => Action::Unchanged,
            (Some(x), _) if !x.changeable_by(writer, rules) => Action::Refused,
            (Some(_), false) => Action::Deactivate,
            (Some(_), true) => Action::Update,
        };
        match (action, current) {
            (Action::Create, _) => plan.creates.push(e),
            (Action::Update | Action::Deactivate, Some(x)) => {
                plan.rewrites.push((x.row.id, e.clone()))
            }
            _ => {}
        }
        count(&mut plan.counts, action);
        let after = (action != Action::Deactivate && e.is_active).then(|| record(e));
        items.insert(
            (e.context.to_string(), e.alias.to_string()),
            PlanItem {
                context: e.context.to_string(),
                alias: e.alias.to_string(),
                action,
                owner: current.map(|x| x.owner.clone()),
                before: current.map(|x| record(&entry_of(&x.row, true))),
                after,
            },
        );
        wanted.insert(key);
    }
    if prune {
        for (key, x) in active {
            if wanted.contains(key) || !contexts.contains(&key.context) {
                continue;
            }
            let action = if x.changeable_by(writer, rules) {
                plan.rewrites.push((x.row.id, entry_of(&x.row, false)));
                Action::Deactivate
            } else {
                Action::Refused
            };
            count(&mut plan.counts, action);
            items.insert(
                (key.context.to_string(), key.alias.to_string()),
                PlanItem {
                    context: key.context.to_string(),
                    alias: key.alias.to_string(),
                    action,
                    owner: Some(x.owner.clone()),
                    before: Some(record(&entry_of(&x.row, true))),
                    after: None,
                },
            );
        }
        // Row order is version order: keep it the plan's order.
        plan.rewrites.sort_by(|a, b| (&a.1.context, &a.1.alias).cmp(&(&b.1.context, &b.1.alias)));
    }
    plan.items = items.into_values().collect();
    plan
}

fn count(c: &mut Counts, a: Action) {
    match a {
        Action::Create => c.create += 1,
        Action::Update => c.update += 1,
        Action::Deactivate => c.deactivate += 1,
        Action::Unchanged => c.unchanged += 1,
        Action::Refused => c.refused += 1,
    }
}

fn same(e: &AliasEntry, x: &StoredAlias) -> bool {
    e.canonical == x.canonical && e.description == x.description && e.expires_at == x.expires_at
}

/// `x` as a file entry, active or not.
fn entry_of(x: &StoredAlias, is_active: bool) -> AliasEntry {
    AliasEntry { is_active, ..x.entry() }
}

/// The record a person reads in the plan: what the file would say.
fn record(e: &AliasEntry) -> Value {
    serde_json::json!({
        "canonical": e.canonical,
        "description": e.description,
        "expires_at": e.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use crate::domain::fixtures::{alice, rules};
    use nexus_protocol::{AliasName, Canonical};

    use super::*;

    fn entry(context: &str, alias: &str, canonical: &str) -> AliasEntry {
        AliasEntry {
            context: Context::parse(context).unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse(canonical).unwrap(),
            description: None,
            expires_at: None,
            is_active: true,
        }
    }

    fn active(id: i32, context: &str, alias: &str, canonical: &str) -> (AliasKey, OwnedAlias) {
        owned(id, context, alias, canonical, "alice")
    }

    fn owned(
        id: i32,
        context: &str,
        alias: &str,
        canonical: &str,
        owner: &str,
    ) -> (AliasKey, OwnedAlias) {
        let row = StoredAlias::fixture(id, context, alias, canonical);
        (row.key(), row.owned(owner))
    }

    #[test]
    fn the_file_wins_and_prune_deactivates_only_in_named_contexts() {
        let mut gone = entry("frontend", "gone", "https://g");
        gone.is_active = false;
        let entries = [
            entry("frontend", "new", "https://n"),
            entry("frontend", "same", "https://s"),
            entry("frontend", "moved", "https://new"),
            gone,
        ];
        let existing: HashMap<_, _> = [
            active(1, "frontend", "same", "https://s"),
            active(2, "frontend", "moved", "https://old"),
            active(3, "frontend", "gone", "https://g"),
            active(4, "frontend", "extra", "https://x"),
            active(5, "backend", "other", "https://o"),
        ]
        .into();
        let named: HashSet<Context> = [Context::parse("frontend").unwrap()].into();

        let (w, g) = (alice(), rules());
        let keep = plan_apply(&entries, &existing, &named, false, &w, &g);
        let c = keep.counts;
        assert_eq!((c.create, c.update, c.deactivate, c.unchanged), (1, 1, 1, 1));
        assert_eq!(keep.versions(), 3);

        let pruned = plan_apply(&entries, &existing, &named, true, &w, &g);
        assert_eq!(pruned.counts.deactivate, 2);
        let actions: Vec<(&str, Action)> =
            pruned.items.iter().map(|i| (i.alias.as_str(), i.action)).collect();
        assert_eq!(
            actions,
            [
                ("extra", Action::Deactivate),
                ("gone", Action::Deactivate),
                ("moved", Action::Update),
                ("new", Action::Create),
                ("same", Action::Unchanged),
            ]
        );
        // backend was not named: untouched.
        assert!(pruned.rewrites.iter().all(|(id, _)| *id != 5));
        let moved = &pruned.items[2];
        assert_eq!(moved.before.as_ref().unwrap()["canonical"], "https://old");
        assert_eq!(moved.after.as_ref().unwrap()["canonical"], "https://new");
    }

    #[test]
    fn another_owners_aliases_are_refused_in_the_plan() {
        let entries =
            [entry("frontend", "bobs", "https://new"), entry("frontend", "mine", "https://m")];
        let existing: HashMap<_, _> = [
            owned(1, "frontend", "bobs", "https://old", "bob"),
            owned(2, "frontend", "mine", "https://old", "alice"),
            owned(3, "frontend", "bobsother", "https://b", "bob"),
        ]
        .into();
        let named: HashSet<Context> = [Context::parse("frontend").unwrap()].into();
        let g = rules();
        let plan = plan_apply(&entries, &existing, &named, true, &alice(), &g);
        assert!(!plan.allowed());
        let refused: Vec<(&str, Option<&str>)> =
            plan.refused().map(|i| (i.alias.as_str(), i.owner.as_deref())).collect();
        assert_eq!(refused, [("bobs", Some("bob")), ("bobsother", Some("bob"))]);
        assert_eq!((plan.counts.update, plan.counts.refused), (1, 2));
        // Refused rows are never among the writes.
        assert!(plan.rewrites.iter().all(|(id, _)| *id == 2));
        // An admin's plan over the same state refuses nothing.
        let admin = Writer::new(nexus_protocol::Role::Admin, "root", None);
        assert!(plan_apply(&entries, &existing, &named, true, &admin, &g).allowed());
        // Unchanged entries are not refused: nothing would be written.
        let same = [entry("frontend", "bobs", "https://old")];
        assert!(plan_apply(&same, &existing, &named, false, &alice(), &g).allowed());
    }
}
