//! The probe's report: per edge and overall, how many writes each edge
//! showed in time and how long commit→visible took, as JSON (the same
//! `requests`, `errors`, `latency_ms` fields as the load modes, plus
//! `per_edge`) and as a table.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{Outcome, Plan};
use crate::recorder::{Failure, Recorder};
use crate::report::{Latency, errors_by_kind};

/// What the two latency origins mean, written into every report.
pub const TIME_ORIGIN: &str = "latency_ms: from the moment the write's response arrived \
     (the commit happened before it, so this leaves out the write's own round trip); \
     latency_from_sent_ms: from the moment the write request was sent (an upper bound). \
     The end is when the first answer showing the write was read.";

/// One edge's (or all edges') figures.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeReport {
    /// Committed writes watched on this edge.
    pub requests: u64,
    /// Writes the edge showed within the timeout.
    pub visible: u64,
    pub timeouts: u64,
    /// Everything not visible in time: timeouts, refusals, no connection.
    pub errors: u64,
    /// `timeout`, `connect`, `status_401`, `status_403`.
    pub errors_by_kind: BTreeMap<String, u64>,
    pub latency_ms: Latency,
    pub latency_from_sent_ms: Latency,
    /// Connections reopened during the run (the edge closed or broke one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnects: Option<u64>,
}

/// What `--report PATH` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub control_plane: String,
    pub edges: Vec<String>,
    pub context: String,
    /// Every alias the run wrote starts with this.
    pub alias_prefix: String,
    /// Writes sent to the control plane.
    pub writes: u64,
    pub committed: u64,
    pub write_errors: u64,
    pub write_errors_by_kind: BTreeMap<String, u64>,
    /// The control plane's round trip for a write.
    pub write_latency_ms: Latency,
    pub rate: f64,
    pub timeout_s: f64,
    pub poll_interval_ms: f64,
    pub duration_s: f64,
    pub time_origin: &'static str,
    /// Committed writes × edges.
    pub requests: u64,
    pub visible: u64,
    pub timeouts: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Over every (write, edge) pair that became visible.
    pub latency_ms: Latency,
    pub latency_from_sent_ms: Latency,
    /// Per write, until the last edge showed it (writes visible everywhere).
    pub all_edges_latency_ms: Latency,
    pub per_edge: BTreeMap<String, EdgeReport>,
    /// Setup observations that did not stop the run.
    pub warnings: Vec<String>,
    /// Every write committed and visible on every edge in time.
    pub success: bool,
}

/// A recorder pair: from the write's response and from its request.
#[derive(Debug, Default)]
struct Pair {
    response: Recorder,
    sent: Recorder,
}

impl Pair {
    fn merge(&mut self, other: &Pair) {
        self.response.merge(&other.response);
        self.sent.merge(&other.sent);
    }

    fn edge(&self, reconnects: Option<u64>) -> EdgeReport {
        let r = &self.response;
        EdgeReport {
            requests: r.requests(),
            visible: r.successes(),
            timeouts: r.failures_by_kind().get(&Failure::Timeout).copied().unwrap_or(0),
            errors: r.failures(),
            errors_by_kind: errors_by_kind(r),
            latency_ms: Latency::of(r),
            latency_from_sent_ms: Latency::of(&self.sent),
            reconnects,
        }
    }
}

impl Report {
    pub fn new(plan: &Plan, outcome: &Outcome) -> Self {
        let mut writes = Recorder::new();
        for w in &outcome.writes {
            match &w.result {
                Ok(_) => writes.success(w.answered - w.sent),
                Err(f) => writes.failure(*f),
            }
        }
        let mut overall = Pair::default();
        let mut everywhere = Recorder::new();
        let mut per_edge = BTreeMap::new();
        let mut slowest = vec![Some(std::time::Duration::ZERO); outcome.writes.len()];
        for (edge, watched) in plan.edges.iter().zip(&outcome.watched) {
            let mut pair = Pair::default();
            for seen in &watched.seen {
                let Some(write) = outcome.writes.get(seen.write) else { continue };
                match seen.outcome {
                    Ok(at) => {
                        let lag = at.saturating_duration_since(write.answered);
                        pair.response.success(lag);
                        pair.sent.success(at.saturating_duration_since(write.sent));
                        if let Some(Some(s)) = slowest.get_mut(seen.write) {
                            *s = (*s).max(lag);
                        }
                    }
                    Err(f) => {
                        pair.response.failure(f);
                        pair.sent.failure(f);
                        slowest[seen.write] = None;
                    }
                }
            }
            overall.merge(&pair);
            per_edge.insert(edge.to_string(), pair.edge(Some(watched.reconnects)));
        }
        for (w, lag) in outcome.writes.iter().zip(slowest) {
            if let (Ok(_), Some(lag)) = (&w.result, lag) {
                everywhere.success(lag);
            }
        }
        let total = overall.edge(None);
        let committed = writes.successes();
        Self {
            mode: "propagation",
            control_plane: plan.control_plane.to_string(),
            edges: plan.edges.iter().map(ToString::to_string).collect(),
            context: plan.context.to_string(),
            alias_prefix: outcome.prefix.clone(),
            writes: writes.requests(),
            committed,
            write_errors: writes.failures(),
            write_errors_by_kind: errors_by_kind(&writes),
            write_latency_ms: Latency::of(&writes),
            rate: plan.rate,
            timeout_s: plan.timeout.as_secs_f64(),
            poll_interval_ms: plan.poll_interval.as_secs_f64() * 1e3,
            duration_s: outcome.elapsed.as_secs_f64(),
            time_origin: TIME_ORIGIN,
            requests: total.requests,
            visible: total.visible,
            timeouts: total.timeouts,
            errors: total.errors,
            errors_by_kind: total.errors_by_kind,
            latency_ms: total.latency_ms,
            latency_from_sent_ms: total.latency_from_sent_ms,
            all_edges_latency_ms: Latency::of(&everywhere),
            per_edge,
            warnings: outcome.warnings.clone(),
            success: committed > 0
                && writes.failures() == 0
                && total.errors == 0
                && total.requests == committed * plan.edges.len() as u64,
        }
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, e: &EdgeReport) -> fmt::Result {
    let l = &e.latency_ms;
    writeln!(
        f,
        "{name:<32} {:>7} {:>7} {:>8} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        e.requests, e.visible, e.timeouts, e.errors, l.p50, l.p90, l.p99, l.p999, l.max
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "propagation {} -> {} edge(s), context {}, aliases {}*",
            self.control_plane,
            self.edges.len(),
            self.context,
            self.alias_prefix
        )?;
        let w = &self.write_latency_ms;
        writeln!(
            f,
            "writes      {} sent at {}/s, {} committed, {} failed   write round trip ms p50 {:.3} \
             p99 {:.3}",
            self.writes, self.rate, self.committed, self.write_errors, w.p50, w.p99
        )?;
        for (kind, n) in &self.write_errors_by_kind {
            writeln!(f, "  {kind:<18} {n}")?;
        }
        writeln!(f, "commit→visible ms, from each write's response (see time_origin):")?;
        writeln!(
            f,
            "{:<32} {:>7} {:>7} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "edge", "writes", "visible", "timeouts", "errors", "p50", "p90", "p99", "p99.9", "max"
        )?;
        for (name, e) in &self.per_edge {
            row(f, name, e)?;
            for (kind, n) in e.errors_by_kind.iter().filter(|(k, _)| k.as_str() != "timeout") {
                writeln!(f, "  {kind:<30} {n}")?;
            }
        }
        let overall = EdgeReport {
            requests: self.requests,
            visible: self.visible,
            timeouts: self.timeouts,
            errors: self.errors,
            errors_by_kind: BTreeMap::new(),
            latency_ms: self.latency_ms.clone(),
            latency_from_sent_ms: self.latency_from_sent_ms.clone(),
            reconnects: None,
        };
        row(f, "overall", &overall)?;
        let (s, a) = (&self.latency_from_sent_ms, &self.all_edges_latency_ms);
        writeln!(
            f,
            "from each write's request (upper bound): p50 {:.3}  p99 {:.3}  max {:.3}",
            s.p50, s.p99, s.max
        )?;
        writeln!(
            f,
            "until the last edge showed it:           p50 {:.3}  p99 {:.3}  max {:.3}",
            a.p50, a.p99, a.max
        )?;
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        write!(f, "result      {}", if self.success { "ok" } else { "FAILED" })
    }
}
