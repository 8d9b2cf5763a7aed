//! Commit→applied lag of the recent updates, for the edge report: how long
//! after the control plane committed a change this edge served it.
//!
//! A ring of the last [`LAG_SAMPLES`] samples, read only if younger than
//! [`LAG_WINDOW_MS`], so the figures describe what the edge does now: an
//! edge that applied nothing for a while reports no lag rather than an old
//! one (its state age says how long it has not heard from the source).
//! Percentiles are computed when the report is written (a sort of at most
//! 1,024 numbers per heartbeat), never on the resolve path. A ring, not a
//! histogram: exact nearest-rank percentiles over a small window, with no
//! dependency and no bucket error.

use std::collections::VecDeque;

/// Samples kept.
pub const LAG_SAMPLES: usize = 1024;
/// Samples older than this (by when they were applied) are not reported.
pub const LAG_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The recent lag samples.
#[derive(Debug, Default, Clone)]
pub struct LagWindow {
    /// `(applied_at_ms, lag_ms)`, oldest first.
    samples: VecDeque<(i64, u64)>,
}

/// The figures of a [`LagWindow`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagSummary {
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
    /// Samples the figures come from.
    pub samples: usize,
}

impl LagWindow {
    pub fn new() -> Self {
        Self { samples: VecDeque::with_capacity(LAG_SAMPLES) }
    }

    /// Records that a change committed at `committed_at_ms` was applied at
    /// `applied_at_ms`. A commit time after the apply time (clocks of the
    /// two hosts apart) counts as no lag.
    pub fn record(&mut self, committed_at_ms: i64, applied_at_ms: i64) {
        if self.samples.len() == LAG_SAMPLES {
            self.samples.pop_front();
        }
        let lag = u64::try_from(applied_at_ms.saturating_sub(committed_at_ms)).unwrap_or(0);
        self.samples.push_back((applied_at_ms, lag));
    }

    /// Nearest-rank p50, p99 and max of the samples applied within
    /// [`LAG_WINDOW_MS`] of `now_ms`; `None` when there are none.
    pub fn summary(&self, now_ms: i64) -> Option<LagSummary> {
        let since = now_ms.saturating_sub(LAG_WINDOW_MS);
        let mut lags: Vec<u64> =
            self.samples.iter().filter(|(at, _)| *at >= since).map(|&(_, lag)| lag).collect();
        if lags.is_empty() {
            return None;
        }
        lags.sort_unstable();
        Some(LagSummary {
            p50_ms: nearest_rank(&lags, 50),
            p99_ms: nearest_rank(&lags, 99),
            max_ms: lags[lags.len() - 1],
            samples: lags.len(),
        })
    }
}

/// The `pct`th percentile of sorted, non-empty `lags` by nearest rank: the
/// smallest sample with at least `pct` % of the samples at or below it.
fn nearest_rank(lags: &[u64], pct: usize) -> u64 {
    let rank = (pct * lags.len()).div_ceil(100).max(1);
    lags[rank.min(lags.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut w = LagWindow::new();
        assert_eq!(w.summary(0), None);
        // Lags 1..=100 ms, applied at t = 1000.
        for lag in (1..=100).rev() {
            w.record(1000 - lag, 1000);
        }
        let s = w.summary(1000).unwrap();
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms, s.samples), (50, 99, 100, 100));
        let mut one = LagWindow::new();
        one.record(10, 17);
        let s = one.summary(17).unwrap();
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms), (7, 7, 7));
        // Two samples: the median is the lower, p99 the higher.
        one.record(10, 30);
        let s = one.summary(30).unwrap();
        assert_eq!((s.p50_ms, s.p99_ms), (7, 20));
    }

    #[test]
    fn one_slow_change_in_a_hundred_shows_in_p99_not_p50() {
        let mut w = LagWindow::new();
        for i in 0..99 {
            w.record(i, i + 2);
        }
        w.record(200, 5_200);
        let s = w.summary(5_200).unwrap();
        assert_eq!((s.p50_ms, s.max_ms), (2, 5_000));
        assert_eq!(s.p99_ms, 2, "1 slow in 100 is the 100th percentile");
        w.record(300, 5_300);
        let s = w.summary(5_300).unwrap();
        assert_eq!(s.p99_ms, 5_000, "2 slow in 101 reach p99");
    }

    #[test]
    fn the_window_is_bounded_in_samples_and_in_time() {
        let mut w = LagWindow::new();
        for i in 0..(LAG_SAMPLES as i64 + 500) {
            // Old samples are slow, recent ones fast.
            let lag = if i < 500 { 1_000 } else { 3 };
            w.record(i - lag, i);
        }
        let now = LAG_SAMPLES as i64 + 500;
        let s = w.summary(now).unwrap();
        assert_eq!((s.samples, s.p99_ms), (LAG_SAMPLES, 3), "the oldest 500 were dropped");
        // Nothing applied for longer than the window: nothing to report.
        assert_eq!(w.summary(now + LAG_WINDOW_MS + 1), None);
        // A commit time ahead of the edge's clock is no lag, not a wrap.
        let mut ahead = LagWindow::new();
        ahead.record(10_000, 9_000);
        assert_eq!(ahead.summary(9_000).map(|s| s.max_ms), Some(0));
    }
}
