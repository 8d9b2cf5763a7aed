//! An endless chain of deltas over the synthetic registry, each following
//! the one before, so a bench can apply a fresh, valid delta on every
//! iteration however many iterations criterion asks for.
//!
//! A delta of `size` changes removes `size / 16` aliases, re-creates the
//! ones the delta before it removed, and updates others (new canonical,
//! new version). The registry therefore keeps its size for as long as the
//! bench runs, and every removal names an alias that exists: no delta
//! degenerates into no-op removals.

use nexus_protocol::{AliasKey, Canonical, Delta};

use crate::record;

/// Multiplier of the walk over `1..=n`: a prime, so the walk visits every
/// index once per `n` steps (for any `n` it does not divide).
const STRIDE: u64 = 2_654_435_761;

/// Deltas that take a registry of `n` aliases from one version to the next.
#[derive(Debug)]
pub struct DeltaChain {
    n: usize,
    size: usize,
    epoch: u64,
    version: u64,
    /// Steps taken by the update walk and by the removal walk.
    updated: usize,
    removed: usize,
    /// Indices the last delta removed, re-created by the next one.
    to_recreate: Vec<usize>,
}

impl DeltaChain {
    /// Deltas of `size` changes for an edge holding the synthetic registry
    /// of `n` aliases (`crate::snapshot(n)`) at `(epoch, version)`.
    pub fn new(n: usize, size: usize, epoch: u64, version: u64) -> Self {
        assert!(
            n > 0 && !(n as u64).is_multiple_of(STRIDE),
            "the walk needs n coprime to the stride"
        );
        assert!(size > 0, "a delta changes something");
        Self {
            n,
            size,
            epoch,
            version,
            updated: 0,
            // The removal walk starts half-way round, away from the updates.
            removed: n / 2,
            to_recreate: Vec::new(),
        }
    }

    /// Aliases each delta removes.
    pub fn removals_per_delta(&self) -> usize {
        self.size / 16
    }

    /// The `step`-th index of a walk over `1..=n` that repeats only after
    /// `n` steps.
    fn walk(&self, step: usize) -> usize {
        let n = self.n as u64;
        ((step as u64 % n) * (STRIDE % n) % n) as usize + 1
    }
}

impl Iterator for DeltaChain {
    type Item = Delta;

    fn next(&mut self) -> Option<Delta> {
        let to_version = self.version + 1;
        let removing = self.removals_per_delta();
        let changed = |i: usize| {
            let mut r = record(i);
            let canonical = format!("https://api.nexus.com/v2/{}/{}", r.context, r.alias);
            r.canonical = Canonical::parse(&canonical).expect("generated canonical is valid");
            r.version = to_version;
            r
        };
        let mut upserts: Vec<_> = self.to_recreate.drain(..).map(changed).collect();
        while upserts.len() + removing < self.size {
            upserts.push(changed(self.walk(self.updated)));
            self.updated += 1;
        }
        for _ in 0..removing {
            self.to_recreate.push(self.walk(self.removed));
            self.removed += 1;
        }
        let removals: Vec<AliasKey> = self.to_recreate.iter().map(|&i| record(i).key()).collect();
        let delta = Delta {
            epoch: self.epoch,
            from_version: self.version,
            to_version,
            committed_at_ms: 1_700_000_000_000,
            upserts,
            removals,
            contexts: None,
            credentials: Default::default(),
        };
        self.version = to_version;
        Some(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_edge::state::{Applied, SourceKind, State};

    #[test]
    fn every_delta_applies_and_the_registry_keeps_its_size() {
        let n = 1000;
        let state = State::new(SourceKind::File);
        state.install_snapshot(&crate::snapshot(n), 0);
        for size in [1, 64, 200] {
            let mut chain = DeltaChain::new(n, size, state.epoch(), state.version());
            let removing = chain.removals_per_delta();
            for _ in 0..40 {
                let delta = chain.next().unwrap();
                assert_eq!((delta.upserts.len() + delta.removals.len()), size);
                let table = state.table();
                let pinned = table.as_ref().unwrap().pin();
                // Removals name aliases that are there, never no-ops.
                for k in &delta.removals {
                    assert!(pinned.lookup(&format!("{}/{}", k.context, k.alias)).is_some());
                }
                drop(pinned);
                let applied = state.apply_delta(&delta, 0).unwrap();
                assert_eq!(
                    applied,
                    Applied::Changed { version: delta.to_version, aliases: n - removing }
                );
            }
            // Put back what the last delta removed, for the next size.
            let last = chain.next().unwrap();
            let recreate = Delta { removals: vec![], ..last };
            state.apply_delta(&recreate, 0).unwrap();
        }
    }

    #[test]
    fn the_walk_visits_every_index_once_per_round() {
        for n in [1000, 1_000_000] {
            let chain = DeltaChain::new(n, 1, 1, 1);
            let mut seen: Vec<usize> = (0..n).map(|s| chain.walk(s)).collect();
            seen.sort_unstable();
            assert!(seen.iter().copied().eq(1..=n), "walk over 1..={n} repeats an index");
        }
    }
}
