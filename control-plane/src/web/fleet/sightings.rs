//! When this control plane last heard each edge, by its own clock.
//!
//! An edge stamps its report with its own wall clock (`heartbeat_ms`). Judged
//! by that stamp, an edge whose clock is 15 s behind looks silent and is
//! left out of the publish barrier while it serves old data, and one whose
//! clock is ahead looks alive long after it stopped. So the stamp is never
//! compared with this plane's clock for liveness: an edge rewrites its
//! report every heartbeat, and what counts is when *this* control plane
//! noticed the report change. A report unchanged for longer than the
//! liveness window means the edge stopped writing, whatever its clock says.
//! The edge's clock is only measured: its skew is its stamp minus this
//! plane's wall clock when the change was noticed.
//!
//! Memory only, per process. A control plane that starts (or a second
//! instance) hears every edge for the first time at its first read and
//! dates each report then: an edge that stopped just before counts as live
//! for one window more. That errs the safe way for the barrier: it waits
//! for such an edge and answers 202, and never counts it as having applied
//! a version it does not report.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::Utc;

/// One read of the fleet hash, dated by this control plane's clocks as the
/// read completed (after the edges wrote what it returned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// Unix ms: to measure skew and to show when an edge was heard.
    pub wall_ms: i64,
    /// Monotonic ms since the [`Sightings`] began: for ages, so a step of
    /// this plane's own wall clock does not make the fleet stale or fresh.
    pub mono_ms: i64,
}

/// The last change of one edge's report this control plane noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sighting {
    /// Hash of the report's text: any difference means the edge wrote again.
    digest: u64,
    /// When the change was noticed.
    pub heard: Reading,
    /// Edge clock minus this plane's, ms, at `heard`. Measured after the
    /// write, so it errs low by at most the time between two reads that
    /// saw the report change (10 ms while a barrier waits).
    pub skew_ms: i64,
    /// The latest read applied, so a read that completed earlier but took
    /// the lock later cannot date an older text as new.
    read_mono_ms: i64,
}

impl Sighting {
    /// How long, by this plane's clock, since the edge was last heard.
    pub(crate) fn age_ms(&self, at: Reading) -> i64 {
        at.mono_ms.saturating_sub(self.heard.mono_ms).max(0)
    }
}

/// Every edge's [`Sighting`], shared by whatever reads the fleet (the API,
/// the barrier, the console, `/metrics`).
#[derive(Debug)]
pub(crate) struct Sightings {
    origin: Instant,
    seen: Mutex<HashMap<String, Sighting>>,
}

impl Default for Sightings {
    fn default() -> Self {
        Self::new()
    }
}

impl Sightings {
    pub(crate) fn new() -> Self {
        Self { origin: Instant::now(), seen: Mutex::default() }
    }

    /// This plane's clocks now.
    pub(crate) fn now(&self) -> Reading {
        let mono = self.origin.elapsed().as_millis();
        Reading {
            wall_ms: Utc::now().timestamp_millis(),
            mono_ms: i64::try_from(mono).unwrap_or(i64::MAX),
        }
    }

    /// Starts noting one read taken `at`; the edges it does not hear are
    /// forgotten when it is [finished](Hearing::finish).
    pub(crate) fn hearing(&self, at: Reading) -> Hearing<'_> {
        // A panic elsewhere cannot leave a map half-written: each entry is
        // replaced whole.
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        Hearing { seen, at, heard: Vec::new() }
    }
}

/// One read being noted (holds the lock: no await while it lives).
pub(crate) struct Hearing<'a> {
    seen: MutexGuard<'a, HashMap<String, Sighting>>,
    at: Reading,
    heard: Vec<String>,
}

impl Hearing<'_> {
    /// Notes edge `id`'s report `text`, stamped `heartbeat_ms` by the edge;
    /// returns what is known of it now.
    pub(crate) fn hear(&mut self, id: &str, text: &str, heartbeat_ms: i64) -> Sighting {
        let at = self.at;
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let digest = hasher.finish();
        self.heard.push(id.to_owned());
        let fresh = Sighting {
            digest,
            heard: at,
            skew_ms: heartbeat_ms.saturating_sub(at.wall_ms),
            read_mono_ms: at.mono_ms,
        };
        let entry = self.seen.entry(id.to_owned()).or_insert(fresh);
        if at.mono_ms >= entry.read_mono_ms {
            entry.read_mono_ms = at.mono_ms;
            if entry.digest != digest {
                *entry = fresh;
            }
        }
        *entry
    }

    /// Forgets the edges this read did not hear (gone from the hash).
    pub(crate) fn finish(mut self) {
        let heard: HashSet<String> = self.heard.drain(..).collect();
        self.seen.retain(|id, _| heard.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(wall_ms: i64, mono_ms: i64) -> Reading {
        Reading { wall_ms, mono_ms }
    }

    fn hear(s: &Sightings, when: Reading, id: &str, text: &str, heartbeat_ms: i64) -> Sighting {
        let mut h = s.hearing(when);
        let seen = h.hear(id, text, heartbeat_ms);
        h.finish();
        seen
    }

    #[test]
    fn an_edge_is_dated_when_its_report_changes_whatever_its_clock_says() {
        let s = Sightings::new();
        // 15 s behind: first heard now, skew measured.
        let first = hear(&s, at(100_000, 0), "e", "a", 85_000);
        assert_eq!(
            (first.heard, first.skew_ms, first.age_ms(at(0, 0))),
            (at(100_000, 0), -15_000, 0)
        );
        // Unchanged: it ages by this plane's monotonic clock only.
        let same = hear(&s, at(999_999, 4_000), "e", "a", 85_000);
        assert_eq!((same.heard, same.age_ms(at(0, 4_000))), (at(100_000, 0), 4_000));
        // Rewritten: heard again, skew measured again.
        let next = hear(&s, at(106_010, 6_000), "e", "b", 91_000);
        assert_eq!((next.heard, next.skew_ms), (at(106_010, 6_000), -15_010));
        assert_eq!(next.age_ms(at(0, 5_000)), 0, "never negative");
    }

    #[test]
    fn a_read_that_lost_the_race_dates_nothing_and_unheard_edges_are_forgotten() {
        let s = Sightings::new();
        hear(&s, at(1_000, 1_000), "e", "new", 1_000);
        // Completed before the one above, noted after: its older text is
        // not a change.
        let late = hear(&s, at(900, 900), "e", "old", 900);
        assert_eq!(late.heard, at(1_000, 1_000));
        assert_eq!(hear(&s, at(1_100, 1_100), "e", "new", 1_000).heard, at(1_000, 1_000));
        hear(&s, at(2_000, 2_000), "other", "x", 2_000);
        // "e" was not in that read: a report it writes again is heard anew.
        assert_eq!(hear(&s, at(3_000, 3_000), "e", "new", 1_000).heard, at(3_000, 3_000));
    }
}
