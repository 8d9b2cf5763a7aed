//! What one load task saw: a latency histogram of answered requests and a
//! count of failures by kind. Each task owns its recorder (no shared lock on
//! the hot path); the driver merges them when the run ends.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Longest latency the histogram holds, in microseconds (one minute).
/// Longer samples are clamped to it rather than dropped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Why a request did not count as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// TCP connect or TLS handshake failed.
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// An answer with a status outside 2xx/3xx.
    Status(u16),
    /// The connection broke or the peer spoke something we could not read.
    Protocol,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect => f.write_str("connect"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Status(code) => write!(f, "status_{code}"),
            Failure::Protocol => f.write_str("protocol"),
        }
    }
}

/// One task's (or, merged, the whole run's) observations.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency of successful requests, in microseconds.
    latency: Histogram<u64>,
    failures: BTreeMap<Failure, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        // 3 significant figures: 0.1% error, a few tens of KiB per task.
        let latency = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("static histogram bounds are valid");
        Self { latency, failures: BTreeMap::new() }
    }

    pub fn success(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(us.min(MAX_LATENCY_US));
    }

    pub fn failure(&mut self, failure: Failure) {
        *self.failures.entry(failure).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so addition cannot fail.
        let _ = self.latency.add(&other.latency);
        for (kind, n) in &other.failures {
            *self.failures.entry(*kind).or_default() += n;
        }
    }

    pub fn successes(&self) -> u64 {
        self.latency.len()
    }

    pub fn failures(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Requests that got an answer or failed: successes plus failures.
    pub fn requests(&self) -> u64 {
        self.successes() + self.failures()
    }

    pub fn failures_by_kind(&self) -> &BTreeMap<Failure, u64> {
        &self.failures
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.latency
    }

    /// Latency at `quantile` (0..=1) in milliseconds; 0 when nothing succeeded.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.max() as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.mean() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_percentiles_follow_samples() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for ms in 1..=100 {
            a.success(Duration::from_millis(ms));
        }
        b.success(Duration::from_secs(3600)); // clamped, not lost
        b.failure(Failure::Status(503));
        b.failure(Failure::Status(503));
        b.failure(Failure::Timeout);
        a.merge(&b);
        assert_eq!(a.successes(), 101);
        assert_eq!(a.failures(), 3);
        assert_eq!(a.requests(), 104);
        assert_eq!(a.failures_by_kind()[&Failure::Status(503)], 2);
        let p50 = a.quantile_ms(0.5);
        assert!((50.0..=51.1).contains(&p50), "p50 {p50}");
        assert!(a.max_ms() >= 59_000.0);
        assert_eq!(Failure::Status(404).to_string(), "status_404");
    }

    #[test]
    fn empty_recorder_reports_zeroes() {
        let r = Recorder::new();
        assert_eq!((r.requests(), r.quantile_ms(0.99), r.max_ms()), (0, 0.0, 0.0));
    }
}
