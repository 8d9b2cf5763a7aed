//! The operations of one round: random draws from the model's state
//! ([`Serial::draw`]), then a closing sequence built from that state so
//! that, by construction and whatever the seed, every round makes each
//! answer the test's coverage assertions ask for ([`REQUIRED`]) and ends
//! with an alias deactivated since the last check, which the round's
//! check then finds deactivated on every edge. A seed can no longer make
//! a run that proves less than the test claims (one did: no deactivated
//! alias left at any check).
//!
//! Pure, like the model: no I/O, no clock.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::serial::{self, BAD_NAMES, CONTEXTS, Key, NAMES, Op, Serial};

/// `"<operation> <status>"` answers that every run must contain: the
/// coverage assertions of `model.rs` check exactly these.
pub const REQUIRED: [&str; 6] =
    ["Create 201", "Create 409", "Deactivate 204", "Import 200", "BadName 400", "Update 200"];

/// Operations at the end of every round that [`Closing`] writes.
pub const CLOSING_LEN: usize = 7;

/// One round: `len` operations, the last [`CLOSING_LEN`] of them closing.
#[derive(Debug)]
pub struct Round {
    left: usize,
    closing: Closing,
}

impl Round {
    pub fn new(len: usize) -> Self {
        assert!(
            len >= CLOSING_LEN,
            "a round of {len} operations has no room for its {CLOSING_LEN} closing ones: \
             raise NEXUS_MODEL_OPS"
        );
        Self { left: len, closing: Closing::default() }
    }

    /// The next operation, drawn in `model`'s current state (the previous
    /// one applied).
    pub fn next(&mut self, model: &Serial, rng: &mut StdRng) -> Op {
        assert!(self.left > 0, "the round is over");
        self.left -= 1;
        if self.left >= CLOSING_LEN { model.draw(rng) } else { self.closing.next(model, rng) }
    }
}

/// The closing sequence, one step at a time, each predicted by the model
/// (checked as it is written, so a change to the model that breaks the
/// construction fails here, with the step, rather than as missing coverage):
///
/// 0. deactivate an active alias (204), or a bad name (400) if none is
///    active: either way some key of the universe is now free;
/// 1. create a free key `k` (201);
/// 2. create `k` again with another target (409);
/// 3. update `k` (200);
/// 4. import with `skip` or `replace` (200: neither refuses);
/// 5. a bad name (400);
/// 6. deactivate `k` (204): nothing after it in the round can revive it.
#[derive(Debug, Default)]
struct Closing {
    step: usize,
    key: Option<Key>,
}

impl Closing {
    fn next(&mut self, model: &Serial, rng: &mut StdRng) -> Op {
        let (op, want) = self.write(model, rng);
        let got = model.expect(&op).status();
        assert_eq!(got, want, "closing step {}: {op:?} would answer {got}", self.step);
        self.step += 1;
        op
    }

    fn write(&mut self, model: &Serial, rng: &mut StdRng) -> (Op, u16) {
        let active = model.active();
        match self.step {
            0 => match active.keys().collect::<Vec<_>>().choose(rng) {
                Some(k) => (Op::Deactivate { key: (*k).clone() }, 204),
                None => (bad_name(rng), 400),
            },
            1 => {
                let free: Vec<Key> = universe().filter(|k| !active.contains_key(k)).collect();
                let k = free.choose(rng).expect("step 0 freed a key").clone();
                let canonical = serial::canonical(rng, &k.1);
                self.key = Some(k.clone());
                (Op::Create { context: k.0, alias: k.1, canonical }, 201)
            }
            2 => {
                let k = self.key();
                // No random draw writes this path, so it differs from `k`'s target.
                let canonical = format!("https://api.nexus.com/{}/taken", k.1);
                (Op::Create { context: k.0, alias: k.1, canonical }, 409)
            }
            3 => {
                let k = self.key();
                let canonical = serial::canonical(rng, &k.1);
                (Op::Update { key: k, canonical }, 200)
            }
            4 => {
                let policy = ["skip", "replace"].choose(rng).copied().unwrap_or("skip");
                (Op::Import { entries: model.entries(rng), policy }, 200)
            }
            5 => (bad_name(rng), 400),
            6 => (Op::Deactivate { key: self.key() }, 204),
            step => panic!("closing has {CLOSING_LEN} steps, asked for step {step}"),
        }
    }

    fn key(&self) -> Key {
        self.key.clone().expect("step 1 chose the key")
    }
}

/// Every key the random draws can reach.
fn universe() -> impl Iterator<Item = Key> {
    CONTEXTS.iter().flat_map(|c| (0..NAMES).map(move |i| serial::key(c, &serial::name(i))))
}

fn bad_name(rng: &mut StdRng) -> Op {
    let context = CONTEXTS.choose(rng).copied().unwrap_or("frontend").to_owned();
    Op::BadName { context, alias: BAD_NAMES.choose(rng).copied().unwrap_or("a b").to_owned() }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;
    use crate::serial::Expect;

    /// `"<operation> <status>"` as the model predicts it (the test tallies
    /// the status the API gave, which it checks equals this).
    fn answer(op: &Op, expect: &Expect) -> String {
        format!("{} {}", op.kind(), expect.status())
    }

    /// Runs `rounds` rounds of `len` operations against the model alone;
    /// returns the answers seen and, per round, the deactivated keys left
    /// for its check.
    fn run(seed: u64, rounds: usize, len: usize) -> (BTreeSet<String>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut model = Serial::default();
        let mut seen = BTreeSet::new();
        let mut retired = Vec::new();
        for _ in 0..rounds {
            let mut round = Round::new(len);
            for _ in 0..len {
                let op = round.next(&model, &mut rng);
                let expect = model.expect(&op);
                seen.insert(answer(&op, &expect));
                model.apply(&op, &expect);
            }
            retired.push(model.retired().len());
        }
        (seen, retired)
    }

    #[test]
    fn every_seed_covers_what_the_test_asserts() {
        // Shortest rounds first (nothing but the closing sequence), then
        // rounds as long as the real test's, over many seeds.
        for (len, seeds) in [(CLOSING_LEN, 0..200), (CLOSING_LEN + 3, 0..200), (80, 0..500)] {
            for seed in seeds {
                let (seen, retired) = run(seed, 3, len);
                for what in REQUIRED {
                    assert!(seen.contains(what), "seed {seed}, rounds of {len}: no `{what}`");
                }
                assert!(
                    retired.iter().all(|n| *n > 0),
                    "seed {seed}, rounds of {len}: {retired:?}"
                );
            }
        }
    }

    #[test]
    fn a_round_with_every_key_active_still_closes() {
        let mut model = Serial::default();
        for k in universe() {
            let op = Op::Create {
                context: k.0,
                alias: k.1,
                canonical: "https://api.nexus.com/a".into(),
            };
            let e = model.expect(&op);
            model.apply(&op, &e);
        }
        assert_eq!(model.active().len(), CONTEXTS.len() * NAMES);
        let mut rng = StdRng::seed_from_u64(7);
        let mut round = Round::new(CLOSING_LEN);
        for _ in 0..CLOSING_LEN {
            let op = round.next(&model, &mut rng);
            let e = model.expect(&op);
            model.apply(&op, &e);
        }
        assert!(!model.retired().is_empty());
    }
}
