//! The shrink guard: a snapshot that suddenly empties a context or drops
//! most of the registry is far more likely a bug upstream (a truncated
//! table, a wrong database) than a wish, so an edge refuses it unless the
//! control plane marked the shrink as intended. A pure function over counts.

use std::collections::HashMap;

use nexus_protocol::{AliasRecord, Snapshot};

/// Active aliases per context, the only thing the guard looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    per_context: HashMap<String, usize>,
    total: usize,
}

impl Census {
    /// Counts the active records of `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a AliasRecord>) -> Self {
        let mut c = Census::default();
        for r in records.into_iter().filter(|r| r.is_active) {
            *c.per_context.entry(r.context.as_str().to_owned()).or_default() += 1;
            c.total += 1;
        }
        c
    }

    /// Moves the count of `context` (and the total) by `by`.
    pub fn shift(&mut self, context: &str, by: i64) {
        if by == 0 {
            return;
        }
        let by = isize::try_from(by).unwrap_or(0);
        let n = self.per_context.entry(context.to_owned()).or_default();
        *n = n.saturating_add_signed(by);
        self.total = self.total.saturating_add_signed(by);
    }

    pub fn total(&self) -> usize {
        self.total
    }

    fn in_context(&self, context: &str) -> usize {
        self.per_context.get(context).copied().unwrap_or(0)
    }
}

/// Why a snapshot was refused by the guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Shrink {
    #[error("snapshot empties context {context:?} ({had} active aliases) without intended_shrink")]
    EmptiesContext { context: String, had: usize },
    #[error("snapshot drops active aliases from {had} to {has} without intended_shrink")]
    DropsMost { had: usize, has: usize },
}

/// Whether `incoming` may replace a state whose active aliases are
/// `current` (`None`: the edge holds nothing yet, so anything goes).
pub fn check(current: Option<&Census>, incoming: &Snapshot) -> Result<(), Shrink> {
    let Some(current) = current else { return Ok(()) };
    if incoming.intended_shrink {
        return Ok(());
    }
    let next = Census::of(&incoming.records);
    check_counts(current, &next)
}

/// The rule itself, over two censuses.
pub fn check_counts(current: &Census, next: &Census) -> Result<(), Shrink> {
    // Contexts in a stable order so the reported one does not vary.
    let mut contexts: Vec<(&String, &usize)> = current.per_context.iter().collect();
    contexts.sort_unstable();
    for (context, &had) in contexts {
        if had > 0 && next.in_context(context) == 0 {
            return Err(Shrink::EmptiesContext { context: context.clone(), had });
        }
    }
    // "More than half": keep at least half (rounded up) of what there was.
    if next.total * 2 < current.total {
        return Err(Shrink::DropsMost { had: current.total, has: next.total });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_protocol::{AliasName, Canonical, Context};

    fn rec(ctx: &str, alias: &str, active: bool) -> AliasRecord {
        AliasRecord {
            id: 1,
            context: Context::parse(ctx).unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse("https://x").unwrap(),
            description: None,
            expires_at_ms: None,
            is_active: active,
            version: 1,
            updated_at_ms: 0,
        }
    }

    fn snap(records: Vec<AliasRecord>, intended: bool) -> Snapshot {
        let contexts = nexus_protocol::KnownContexts::of_records(&records);
        Snapshot {
            epoch: 1,
            version: 2,
            created_at_ms: 0,
            intended_shrink: intended,
            records,
            contexts,
            credentials: Default::default(),
        }
    }

    fn many(ctx: &str, n: usize) -> Vec<AliasRecord> {
        (0..n).map(|i| rec(ctx, &format!("a{i}"), true)).collect()
    }

    #[test]
    fn no_state_yet_accepts_anything() {
        assert_eq!(check(None, &snap(vec![], false)), Ok(()));
    }

    #[test]
    fn emptying_a_context_is_refused_unless_intended() {
        let mut before = many("frontend", 10);
        before.extend(many("backend", 10));
        let current = Census::of(&before);
        let mut after = many("frontend", 10);
        after.push(rec("backend", "a0", false));
        let err = check(Some(&current), &snap(after.clone(), false)).unwrap_err();
        assert_eq!(err, Shrink::EmptiesContext { context: "backend".into(), had: 10 });
        assert_eq!(check(Some(&current), &snap(after, true)), Ok(()));
    }

    #[test]
    fn dropping_more_than_half_is_refused_exactly_at_the_line() {
        let current = Census::of(&many("frontend", 10));
        assert_eq!(check(Some(&current), &snap(many("frontend", 5), false)), Ok(()));
        assert_eq!(
            check(Some(&current), &snap(many("frontend", 4), false)),
            Err(Shrink::DropsMost { had: 10, has: 4 })
        );
        assert_eq!(check(Some(&current), &snap(many("frontend", 4), true)), Ok(()));
    }

    #[test]
    fn growth_and_new_contexts_pass_and_inactive_do_not_count() {
        let current = Census::of(&many("frontend", 3));
        let mut next = many("frontend", 3);
        next.extend(many("system", 2));
        assert_eq!(check(Some(&current), &snap(next, false)), Ok(()));
        let inactive: Vec<_> = (0..3).map(|i| rec("frontend", &format!("a{i}"), false)).collect();
        assert!(check(Some(&current), &snap(inactive, false)).is_err());
        // A context that had only inactive aliases may disappear.
        let current = Census::of(&[rec("system", "x", false), rec("frontend", "y", true)]);
        assert_eq!(check(Some(&current), &snap(vec![rec("frontend", "y", true)], false)), Ok(()));
    }
}
