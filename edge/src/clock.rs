//! The wall clock, read in one place and injectable.
//!
//! The request path reads it once per request ([`now_ms`]) and hands the
//! value down; code that keeps time of its own (the sync applier, the
//! status report) takes a [`Clock`] so tests can set the time instead of
//! sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds, from the system clock. A clock set before
/// 1970 reads 0; one past the year 292 million reads `i64::MAX`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A wall clock in Unix ms: the system's, or a manual one for tests.
/// Cloning is cheap; clones of a manual clock share its time.
#[derive(Clone, Default)]
pub struct Clock(Kind);

#[derive(Clone, Default)]
enum Kind {
    #[default]
    System,
    /// The system clock, off by this many ms.
    Skewed(i64),
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The system clock ([`now_ms`]).
    pub fn system() -> Self {
        Self(Kind::System)
    }

    /// The system clock off by `offset_ms` (negative: behind): an edge on a
    /// machine whose clock is wrong, for what must not trust its stamps.
    pub fn skewed(offset_ms: i64) -> Self {
        Self(Kind::Skewed(offset_ms))
    }

    /// A clock that reads `start_ms` until it is [`set`](Self::set) or
    /// [`advance`](Self::advance)d.
    pub fn manual(start_ms: i64) -> Self {
        Self(Kind::Manual(Arc::new(AtomicI64::new(start_ms))))
    }

    /// Unix time in milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Kind::System => now_ms(),
            Kind::Skewed(offset) => now_ms().saturating_add(*offset),
            Kind::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Sets a manual clock; the others ignore it.
    pub fn set(&self, ms: i64) {
        if let Kind::Manual(t) = &self.0 {
            t.store(ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock forward by `ms`; the others ignore it.
    pub fn advance(&self, ms: i64) {
        if let Kind::Manual(t) = &self.0 {
            t.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::System => f.write_str("Clock::System"),
            Kind::Skewed(offset) => write!(f, "Clock::Skewed({offset} ms)"),
            Kind::Manual(t) => write!(f, "Clock::Manual({})", t.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_share_their_time_and_the_system_clock_moves_on_its_own() {
        let c = Clock::manual(1_000);
        let same = c.clone();
        c.advance(500);
        assert_eq!(same.now_ms(), 1_500);
        same.set(7);
        assert_eq!(c.now_ms(), 7);
        let system = Clock::system();
        system.set(0);
        assert!(system.now_ms() > 1_600_000_000_000);
        let behind = Clock::skewed(-15_000);
        let lag = system.now_ms() - behind.now_ms();
        assert!((15_000..16_000).contains(&lag), "{lag}");
    }
}
