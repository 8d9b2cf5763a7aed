//! How fresh the edge knows its state to be, from the leader's signed
//! statements of the head (see `nexus_protocol::Statement`), not from
//! Redis's word: a Redis that keeps answering the same head (frozen, or
//! replaying old statements) cannot make the newest statement newer, so
//! once it is older than `EDGE_MAX_STALENESS` the edge reports `stale` in
//! health, status, the fleet report, a metric and a response header, and
//! keeps serving.
//!
//! The statement also names the head. An edge whose state stays behind the
//! signed head for longer than the bound (a Redis that serves an old
//! snapshot beside a current statement: mix-and-match) is stale as well.
//!
//! Written by sync (one statement checked per periodic check), read on the
//! request path: a few relaxed atomic loads, no lock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// The leader's statements as this edge has verified them.
#[derive(Debug, Default)]
pub struct Freshness {
    /// `issued_at_ms` of the newest verified statement; 0: none yet.
    newest_ms: AtomicI64,
    /// `EDGE_MAX_STALENESS` in ms; 0: not tracked (file mode, tests).
    bound_ms: AtomicI64,
    /// When tracking began: an edge that never hears a statement is stale
    /// once this is `bound_ms` old.
    since_ms: AtomicI64,
    /// Since when the state has been behind the head the newest statement
    /// names; 0: not behind.
    behind_since_ms: AtomicI64,
    /// `EDGE_STALE_REFUSE`: contexts answered 503 rather than served while
    /// stale (`*`: all); set once at start, read only while stale.
    refuse: OnceLock<Vec<String>>,
}

impl Freshness {
    /// Starts tracking at `now_ms` with `bound_ms` of tolerated age.
    pub fn track(&self, bound_ms: i64, now_ms: i64) {
        self.since_ms.store(now_ms, Ordering::Relaxed);
        self.bound_ms.store(bound_ms.max(1), Ordering::Relaxed);
    }

    /// Records a verified statement issued at `issued_at_ms`; whether it
    /// is the newest yet (an older one, replayed, changes nothing).
    pub fn note(&self, issued_at_ms: i64) -> bool {
        self.newest_ms.fetch_max(issued_at_ms, Ordering::Relaxed) < issued_at_ms
    }

    /// The contexts to refuse while stale (`*` for all); the first call wins.
    pub fn refuse_in(&self, contexts: Vec<String>) {
        let _ = self.refuse.set(contexts);
    }

    /// Whether an answer in `context` must be refused now rather than
    /// served stale.
    pub fn refuses(&self, context: &str, now_ms: i64) -> bool {
        self.refuse.get().is_some_and(|r| r.iter().any(|c| c == "*" || c == context))
            && self.is_stale(now_ms)
    }

    /// Records whether the state is behind the head the newest statement
    /// names, at `now_ms` (sync calls it at every check).
    pub fn note_behind(&self, behind: bool, now_ms: i64) {
        if !behind {
            self.behind_since_ms.store(0, Ordering::Relaxed);
        } else if self.behind_since_ms.load(Ordering::Relaxed) == 0 {
            self.behind_since_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// The newest statement's age at `now_ms`; `None` when not tracked or
    /// none was heard yet.
    pub fn age_ms(&self, now_ms: i64) -> Option<i64> {
        let newest = self.newest_ms.load(Ordering::Relaxed);
        (self.bound_ms.load(Ordering::Relaxed) > 0 && newest > 0).then(|| (now_ms - newest).max(0))
    }

    /// Whether the newest statement (or, before the first, the start of
    /// tracking) is older than the bound, or the state has been behind the
    /// signed head for longer than it.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        let bound = self.bound_ms.load(Ordering::Relaxed);
        if bound == 0 {
            return false;
        }
        let newest = self.newest_ms.load(Ordering::Relaxed);
        let from = if newest > 0 { newest } else { self.since_ms.load(Ordering::Relaxed) };
        let behind = self.behind_since_ms.load(Ordering::Relaxed);
        now_ms - from > bound || (behind > 0 && now_ms - behind > bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_once_the_newest_statement_is_older_than_the_bound() {
        let f = Freshness::default();
        assert!(!f.is_stale(i64::MAX), "not tracked: never stale");
        f.track(60_000, 1_000);
        assert!(!f.is_stale(61_000) && f.is_stale(61_001), "none heard: from the start");
        assert!(f.note(50_000));
        assert_eq!(f.age_ms(60_000), Some(10_000));
        assert!(!f.is_stale(110_000) && f.is_stale(110_001));
        // A replayed older statement does not refresh anything.
        assert!(!f.note(40_000));
        assert_eq!(f.age_ms(60_000), Some(10_000));
    }

    #[test]
    fn behind_the_signed_head_for_longer_than_the_bound_is_stale() {
        let f = Freshness::default();
        f.track(1_000, 0);
        f.note_behind(true, 10_000);
        // Fresh statements keep coming, but the state stays behind them.
        for t in [10_000, 10_500, 11_000] {
            f.note(t);
            f.note_behind(true, t);
        }
        assert!(!f.is_stale(11_000) && f.is_stale(11_001), "behind since 10 000");
        f.note_behind(false, 11_001);
        assert!(!f.is_stale(11_001), "caught up, and the statement is fresh");
    }
}
