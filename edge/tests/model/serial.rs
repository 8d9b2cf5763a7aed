//! The serial model of the registry: what a one-threaded, fault-free
//! control plane would hold after the same admin operations, and what it
//! would answer to each. Pure: no I/O, no clock.
//!
//! It keeps, per key, the row the admin API calls "current" (the active row,
//! else the newest inactive one), because reactivating and updating an
//! inactive alias act on that row.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

pub const CONTEXTS: [&str; 3] = ["frontend", "backend", "system"];
/// Few names, so that creates collide, deactivated names come back and
/// the same name lives in several contexts (shadowing).
pub const NAMES: usize = 16;
/// Names the protocol refuses (400), one per rule.
pub const BAD_NAMES: [&str; 5] = ["bad name", "-lead", "a..b", "caf\u{e9}", "a%2fb"];
/// A target governance refuses (host not allowed) for any active alias.
pub const EVIL: &str = "https://evil.example.org/x";
/// Names governance reserves (422 `reserved_names`).
const RESERVED: [&str; 3] = ["admin", "health", "resolve"];

/// `(context, alias)` in normal form.
pub type Key = (String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub canonical: String,
    pub active: bool,
}

/// One admin operation, as sent.
#[derive(Debug, Clone)]
pub enum Op {
    /// `alias` as typed: sometimes not in normal form.
    Create {
        context: String,
        alias: String,
        canonical: String,
    },
    Update {
        key: Key,
        canonical: String,
    },
    Reactivate {
        key: Key,
    },
    Deactivate {
        key: Key,
    },
    /// Entries have distinct keys; `policy` is `skip`, `replace` or `reject`.
    Import {
        entries: Vec<(Key, String)>,
        policy: &'static str,
    },
    /// A create the name rule refuses.
    BadName {
        context: String,
        alias: String,
    },
    /// A create governance refuses.
    Reserved {
        context: String,
        alias: String,
    },
    /// An update to a host governance refuses.
    BadHost {
        key: Key,
    },
    /// An import with one entry the name rule refuses: nothing is written.
    BadImport {
        entries: Vec<(Key, String)>,
        bad: String,
    },
}

impl Op {
    /// The operation's name, for the tally of answers.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Create { .. } => "Create",
            Op::Update { .. } => "Update",
            Op::Reactivate { .. } => "Reactivate",
            Op::Deactivate { .. } => "Deactivate",
            Op::Import { .. } => "Import",
            Op::BadName { .. } => "BadName",
            Op::Reserved { .. } => "Reserved",
            Op::BadHost { .. } => "BadHost",
            Op::BadImport { .. } => "BadImport",
        }
    }
}

/// What the serial model says the API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A status and, for a write that answers a record, that record.
    Status(u16, Option<(Key, Row)>),
    /// 200 with `[created, updated, skipped, unchanged]`.
    Imported([u64; 4]),
}

impl Expect {
    /// The HTTP status predicted.
    pub fn status(&self) -> u16 {
        match self {
            Expect::Status(s, _) => *s,
            Expect::Imported(_) => 200,
        }
    }
}

#[derive(Debug, Default)]
pub struct Serial {
    rows: BTreeMap<Key, Row>,
}

pub fn key(context: &str, alias: &str) -> Key {
    (context.to_owned(), alias.to_owned())
}

pub fn name(i: usize) -> String {
    format!("svc-{i}")
}

pub fn canonical(rng: &mut StdRng, alias: &str) -> String {
    format!("https://api.nexus.com/{alias}/v{}", rng.random_range(0..3))
}

impl Serial {
    /// Active aliases: what every edge must resolve, and nothing else.
    pub fn active(&self) -> BTreeMap<Key, String> {
        self.rows
            .iter()
            .filter(|(_, r)| r.active)
            .map(|(k, r)| (k.clone(), r.canonical.clone()))
            .collect()
    }

    /// Keys that existed and are deactivated now: every edge answers 404.
    pub fn retired(&self) -> Vec<Key> {
        self.rows.iter().filter(|(_, r)| !r.active).map(|(k, _)| k.clone()).collect()
    }

    fn is_active(&self, k: &Key) -> bool {
        self.rows.get(k).is_some_and(|r| r.active)
    }

    /// A key: mostly one the model holds (active or not, as `want_active`
    /// asks), sometimes any key of the universe.
    fn pick(&self, rng: &mut StdRng, want_active: Option<bool>) -> Key {
        let held: Vec<&Key> = self
            .rows
            .iter()
            .filter(|(_, r)| want_active.is_none_or(|a| r.active == a))
            .map(|(k, _)| k)
            .collect();
        match held.choose(rng) {
            Some(k) if rng.random_bool(0.85) => (*k).clone(),
            _ => key(
                CONTEXTS.choose(rng).copied().unwrap_or("frontend"),
                &name(rng.random_range(0..NAMES)),
            ),
        }
    }

    pub fn entries(&self, rng: &mut StdRng) -> Vec<(Key, String)> {
        let mut entries = BTreeMap::new();
        for _ in 0..rng.random_range(1..=4) {
            let k = self.pick(rng, None);
            let c = canonical(rng, &k.1);
            entries.insert(k, c);
        }
        entries.into_iter().collect()
    }

    /// Draws the next operation.
    pub fn draw(&self, rng: &mut StdRng) -> Op {
        let roll = rng.random_range(0..100);
        match roll {
            0..28 => {
                let k = self.pick(rng, None);
                let canonical = canonical(rng, &k.1);
                // Typed with capitals: the name rule folds it; onto an
                // active alias that is a `normalization` conflict.
                let alias = if rng.random_bool(0.1) { k.1.to_uppercase() } else { k.1 };
                Op::Create { context: k.0, alias, canonical }
            }
            28..34 => {
                let k = self.pick(rng, Some(false));
                let canonical = canonical(rng, &k.1);
                Op::Create { context: k.0, alias: k.1, canonical }
            }
            34..46 => {
                let k = self.pick(rng, None);
                let canonical = canonical(rng, &k.1);
                Op::Update { key: k, canonical }
            }
            46..62 => Op::Deactivate { key: self.pick(rng, Some(true)) },
            62..67 => Op::Reactivate { key: self.pick(rng, Some(false)) },
            67..82 => {
                let policy = ["skip", "replace", "reject"].choose(rng).copied().unwrap_or("skip");
                Op::Import { entries: self.entries(rng), policy }
            }
            82..88 => {
                let context = CONTEXTS.choose(rng).copied().unwrap_or("frontend").to_owned();
                Op::BadName {
                    context,
                    alias: BAD_NAMES.choose(rng).copied().unwrap_or("a b").to_owned(),
                }
            }
            88..92 => {
                let context = CONTEXTS.choose(rng).copied().unwrap_or("frontend").to_owned();
                let alias = RESERVED.choose(rng).copied().unwrap_or("admin").to_owned();
                Op::Reserved { context, alias }
            }
            92..96 => Op::BadHost { key: self.pick(rng, None) },
            _ => {
                let bad = BAD_NAMES.choose(rng).copied().unwrap_or("a b").to_owned();
                Op::BadImport { entries: self.entries(rng), bad }
            }
        }
    }

    /// The answer a serial control plane gives to `op` in this state.
    pub fn expect(&self, op: &Op) -> Expect {
        let record = |k: &Key, canonical: &str, active| {
            Some((k.clone(), Row { canonical: canonical.to_owned(), active }))
        };
        match op {
            Op::Create { context, alias, canonical } => {
                let k = key(context, &alias.to_lowercase());
                let typed_normal = *alias == k.1;
                match self.rows.get(&k).filter(|r| r.active) {
                    None => Expect::Status(201, record(&k, canonical, true)),
                    // Creating exactly what is there is an idempotent success.
                    Some(r) if typed_normal && r.canonical == *canonical => {
                        Expect::Status(200, record(&k, canonical, true))
                    }
                    Some(_) => Expect::Status(409, None),
                }
            }
            Op::Update { key: k, canonical } => match self.rows.get(k) {
                // An inactive row takes the new target and stays inactive.
                Some(r) => Expect::Status(200, record(k, canonical, r.active)),
                None => Expect::Status(404, None),
            },
            Op::Reactivate { key: k } => match self.rows.get(k) {
                Some(r) if r.canonical == EVIL => Expect::Status(422, None),
                Some(r) => Expect::Status(200, record(k, &r.canonical, true)),
                None => Expect::Status(404, None),
            },
            Op::Deactivate { key: k } if self.is_active(k) => Expect::Status(204, None),
            Op::Deactivate { .. } => Expect::Status(404, None),
            Op::Import { entries, policy } => {
                let mut counts = [0u64; 4];
                for (k, c) in entries {
                    let slot = match self.rows.get(k).filter(|r| r.active) {
                        None => 0,
                        Some(r) if r.canonical == *c => 3,
                        Some(_) if *policy == "replace" => 1,
                        Some(_) => 2,
                    };
                    counts[slot] += 1;
                }
                if *policy == "reject" && counts[2] > 0 {
                    Expect::Status(409, None)
                } else {
                    Expect::Imported(counts)
                }
            }
            Op::BadName { .. } | Op::BadImport { .. } => Expect::Status(400, None),
            Op::Reserved { .. } => Expect::Status(422, None),
            Op::BadHost { key: k } => match self.rows.get(k) {
                Some(r) if r.active => Expect::Status(422, None),
                Some(_) => Expect::Status(200, record(k, EVIL, false)),
                None => Expect::Status(404, None),
            },
        }
    }

    /// Records the effect of `op`, once the API confirmed `expect`.
    pub fn apply(&mut self, op: &Op, expect: &Expect) {
        match (op, expect) {
            (_, Expect::Status(_, Some((k, row)))) => {
                self.rows.insert(k.clone(), row.clone());
            }
            (Op::Deactivate { key: k }, Expect::Status(204, None)) => {
                if let Some(r) = self.rows.get_mut(k) {
                    r.active = false;
                }
            }
            (Op::Import { entries, policy }, Expect::Imported(_)) => {
                for (k, c) in entries {
                    if *policy == "replace" || !self.is_active(k) {
                        self.rows.insert(k.clone(), Row { canonical: c.clone(), active: true });
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_on_an_active_alias_conflicts_unless_identical() {
        let mut m = Serial::default();
        let create = |alias: &str, c: &str| Op::Create {
            context: "frontend".into(),
            alias: alias.into(),
            canonical: c.into(),
        };
        let first = create("svc-1", "https://api.nexus.com/a");
        let e = m.expect(&first);
        assert!(matches!(e, Expect::Status(201, Some(_))));
        m.apply(&first, &e);
        assert!(matches!(m.expect(&first), Expect::Status(200, Some(_))));
        assert_eq!(
            m.expect(&create("SVC-1", "https://api.nexus.com/a")),
            Expect::Status(409, None)
        );
        assert_eq!(
            m.expect(&create("svc-1", "https://api.nexus.com/b")),
            Expect::Status(409, None)
        );
        let off = Op::Deactivate { key: key("frontend", "svc-1") };
        let e = m.expect(&off);
        m.apply(&off, &e);
        assert!(m.active().is_empty());
        assert_eq!(m.retired(), vec![key("frontend", "svc-1")]);
        assert!(matches!(
            m.expect(&create("SVC-1", "https://api.nexus.com/b")),
            Expect::Status(201, _)
        ));
    }
}
