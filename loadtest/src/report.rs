//! The run's report: JSON for scripts, a short text table for people.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::driver::{Model, Outcome, Plan};
use crate::keyspace::KeyChoice;
use crate::recorder::Recorder;

/// Latency percentiles of successful requests, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// The percentiles of what `r` recorded.
    pub fn of(r: &Recorder) -> Self {
        Self {
            p50: r.quantile_ms(0.5),
            p90: r.quantile_ms(0.9),
            p99: r.quantile_ms(0.99),
            p999: r.quantile_ms(0.999),
            max: r.max_ms(),
            mean: r.mean_ms(),
        }
    }
}

/// Failure counts by their report names (`timeout`, `status_404`, ...).
pub fn errors_by_kind(r: &Recorder) -> BTreeMap<String, u64> {
    r.failures_by_kind().iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// What `--report PATH` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub transport: String,
    /// `closed`, `pipelined` or `open`.
    pub model: &'static str,
    pub connections: usize,
    /// Requests in flight per connection (pipelined model only).
    pub pipeline: Option<usize>,
    /// Requested rate (open model only).
    pub rate: Option<f64>,
    pub duration_s: f64,
    pub keys: usize,
    /// `uniform` or `zipf:<s>`.
    pub key_choice: String,
    pub seed: u64,
    /// Every request that got an answer or failed.
    pub requests: u64,
    /// Answers with a 2xx/3xx status, fully read.
    pub successes: u64,
    pub errors: u64,
    /// `connect`, `timeout`, `protocol`, `status_<code>`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// `requests / duration_s`, comparable with wrk's Requests/sec.
    pub rps: f64,
    pub latency_ms: Latency,
}

impl Report {
    pub fn new(target: String, transport: &str, plan: &Plan, outcome: &Outcome) -> Self {
        let r = &outcome.recorder;
        let secs = outcome.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            target,
            transport: transport.to_owned(),
            model: match plan.model {
                Model::Closed => "closed",
                Model::Pipelined { .. } => "pipelined",
                Model::Open { .. } => "open",
            },
            connections: plan.connections,
            pipeline: match plan.model {
                Model::Pipelined { depth } => Some(depth),
                Model::Closed | Model::Open { .. } => None,
            },
            rate: match plan.model {
                Model::Closed | Model::Pipelined { .. } => None,
                Model::Open { rate } => Some(rate),
            },
            duration_s: secs,
            keys: plan.keys,
            key_choice: match plan.choice {
                KeyChoice::Uniform => "uniform".to_owned(),
                KeyChoice::Zipf(s) => format!("zipf:{s}"),
            },
            seed: plan.seed,
            requests: r.requests(),
            successes: r.successes(),
            errors: r.failures(),
            errors_by_kind: errors_by_kind(r),
            rps: r.requests() as f64 / secs,
            latency_ms: Latency::of(r),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.latency_ms;
        writeln!(f, "target      {} ({}, {} model)", self.target, self.transport, self.model)?;
        write!(f, "connections {}", self.connections)?;
        if let Some(depth) = self.pipeline {
            write!(f, " × {depth} in flight")?;
        }
        writeln!(f, "   keys {} ({})", self.keys, self.key_choice)?;
        writeln!(
            f,
            "requests    {} in {:.2}s = {:.0} req/s   ok {}   errors {}",
            self.requests, self.duration_s, self.rps, self.successes, self.errors
        )?;
        for (kind, n) in &self.errors_by_kind {
            writeln!(f, "  {kind:<18} {n}")?;
        }
        write!(
            f,
            "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            l.p50, l.p90, l.p99, l.p999, l.max
        )
    }
}
