//! Prometheus metrics of the edge (names agreed in the workspace notes).
//!
//! The request path only increments atomics: the counter of each resolve
//! outcome is looked up once here, and the latency histogram is a set of
//! atomic buckets (prometheus-client's own histogram takes a mutex per
//! observation, which worker threads would contend on).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::auth::RefusalCounters;
use crate::resolve::{Outcome, Refusal};

/// Upper bounds of the resolve latency buckets, in seconds (5 µs to 100 ms).
const BUCKETS: [f64; 14] =
    [5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1];

/// Upper bounds of the commit→applied lag buckets, in seconds (1 ms to 30 s).
const SYNC_LAG_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

type Labels = [(&'static str, &'static str); 1];

/// A latency histogram made of atomics.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram(Arc<HistogramInner>);

#[derive(Debug, Default)]
struct HistogramInner {
    /// Per bucket, the last one being +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.0.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Mean observation in milliseconds (0 before the first one).
    pub fn mean_ms(&self) -> f64 {
        let n = self.0.count.load(Ordering::Relaxed);
        if n == 0 { 0.0 } else { self.0.sum_nanos.load(Ordering::Relaxed) as f64 / n as f64 / 1e6 }
    }
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = self.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One resolve in this many (per thread, the first one included) is timed
/// for the latency histogram. Timing takes two monotonic clock reads; the
/// request itself reads the wall clock once, so the others go untimed. The
/// histogram's count is thus the timed resolves; `nexus_edge_resolve_total`
/// counts every one.
pub const TIME_ONE_IN: u32 = 64;

thread_local! {
    static UNTIMED: Cell<u32> = const { Cell::new(0) };
}

/// The start of this resolve's timing, if it is one of the timed ones.
pub fn sample_timer() -> Option<Instant> {
    UNTIMED.with(|n| {
        let seen = n.get();
        n.set(if seen + 1 == TIME_ONE_IN { 0 } else { seen + 1 });
        (seen == 0).then(Instant::now)
    })
}

/// Counters of each resolve outcome, created once.
#[derive(Debug, Clone)]
struct OutcomeCounters {
    ok: Counter,
    not_found: Counter,
    bad_request: Counter,
    unauthorized: Counter,
    forbidden: Counter,
    rate_limited: Counter,
    /// Hits refused because the state is stale (`EDGE_STALE_REFUSE`).
    stale: Counter,
}

/// Every metric of the edge, and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    outcomes: OutcomeCounters,
    pub resolve_duration: LatencyHistogram,
    pub aliases: Gauge,
    pub contexts: Gauge,
    pub state_version: Gauge,
    pub state_epoch: Gauge,
    pub state_age_seconds: Gauge<f64, AtomicU64>,
    pub reloads_ok: Counter,
    pub reloads_rejected: Counter,
    /// Validly signed states refused for being older than the one held
    /// (`result="older"`, also counted in `rejected`): a replayed snapshot,
    /// or a control plane gone back without `epoch bump`.
    pub reloads_older: Counter,
    /// Statements of the head that did not verify (forged, or signed with
    /// another key), each distinct one counted once.
    pub statements_refused: Counter,
    /// Age of the leader's newest verified statement of the head, seconds
    /// (0 until the first; see `freshness`).
    pub statement_age_seconds: Gauge<f64, AtomicU64>,
    /// 1 when that age is past `EDGE_MAX_STALENESS`: Redis may be frozen
    /// or replaying; the edge keeps serving.
    pub stale: Gauge,
    pub connections: Gauge<i64, AtomicI64>,
    pub connections_refused: Counter,
    /// HTTP connections closed by the slow-client deadline (`deadline`).
    pub connections_deadline_closed: Counter,
    /// HTTP connections that ended with a protocol or I/O error: what
    /// HTTP/2 floods (rapid reset, CONTINUATION) and garbage end in.
    pub connection_errors: Counter,
    /// HTTP/2 connections closed by the control-frame flood guard
    /// (`h2guard`), by the frame kind that emptied its bucket.
    pub h2_flood_closed: Family<Labels, Counter>,
    /// Connections closed at once because their address already had
    /// `EDGE_MAX_CONNECTIONS_PER_IP` open.
    pub connections_refused_per_ip: Counter,
    /// UDP datagrams the QUIC endpoint could not use (undecryptable or
    /// unknown Initials, junk, Initials over the endpoint's budget): what
    /// an Initial flood shows up as.
    pub quic_datagrams_dropped: Counter,
    pub sync_state: Gauge,
    /// Commit on the control plane → applied here, per change applied (a
    /// delta, or a snapshot that replaces a state the edge followed), not
    /// counting changes committed before the edge started (sync thread
    /// only, so the histogram's internal lock is never contended).
    pub sync_lag: Histogram,
    /// `nexus_edge_auth_refusals_total{answer}`: refused credentials
    /// answered from the refusal cache (`remembered`, no check), and
    /// requests answered 429 because their host's failure budget was spent
    /// (`over_budget`, no check). Handed to the authenticator.
    pub auth_refusals: RefusalCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let resolve = Family::<Labels, Counter>::default();
        registry.register("nexus_edge_resolve", "Resolve requests by outcome", resolve.clone());
        // Handles are taken one statement at a time: the guard returned by
        // `get_or_create` must be gone before the next call takes the lock.
        let outcome = |o: &'static str| resolve.get_or_create(&[("outcome", o)]).clone();
        let outcomes = OutcomeCounters {
            ok: outcome("ok"),
            not_found: outcome("not_found"),
            bad_request: outcome("bad_request"),
            unauthorized: outcome("unauthorized"),
            forbidden: outcome("forbidden"),
            rate_limited: outcome("rate_limited"),
            stale: outcome("stale"),
        };
        let reloads = Family::<Labels, Counter>::default();
        registry.register("nexus_edge_reloads", "State reloads by result", reloads.clone());
        let reloads_ok = reloads.get_or_create(&[("result", "ok")]).clone();
        let reloads_rejected = reloads.get_or_create(&[("result", "rejected")]).clone();
        let reloads_older = reloads.get_or_create(&[("result", "older")]).clone();
        let refusals = Family::<Labels, Counter>::default();
        registry.register(
            "nexus_edge_auth_refusals",
            "Credentials refused without a check: remembered, or over the host's budget",
            refusals.clone(),
        );
        let remembered = refusals.get_or_create(&[("answer", "remembered")]).clone();
        let over_budget = refusals.get_or_create(&[("answer", "over_budget")]).clone();
        let m = Self {
            outcomes,
            resolve_duration: LatencyHistogram::default(),
            aliases: Gauge::default(),
            contexts: Gauge::default(),
            state_version: Gauge::default(),
            state_epoch: Gauge::default(),
            state_age_seconds: Gauge::default(),
            reloads_ok,
            reloads_rejected,
            reloads_older,
            statements_refused: Counter::default(),
            statement_age_seconds: Gauge::default(),
            stale: Gauge::default(),
            connections: Gauge::default(),
            connections_refused: Counter::default(),
            connections_deadline_closed: Counter::default(),
            connection_errors: Counter::default(),
            h2_flood_closed: Family::default(),
            connections_refused_per_ip: Counter::default(),
            quic_datagrams_dropped: Counter::default(),
            sync_state: Gauge::default(),
            sync_lag: Histogram::new(SYNC_LAG_BUCKETS),
            auth_refusals: RefusalCounters { remembered, over_budget },
            registry,
        };
        let mut registry = m.registry;
        registry.register(
            "nexus_edge_resolve_duration_seconds",
            "Time to answer a resolve request",
            m.resolve_duration.clone(),
        );
        registry.register("nexus_edge_aliases", "Entries in the table", m.aliases.clone());
        registry.register("nexus_edge_contexts", "Contexts in the table", m.contexts.clone());
        registry.register(
            "nexus_edge_state_version",
            "Registry version served",
            m.state_version.clone(),
        );
        registry.register("nexus_edge_state_epoch", "Registry epoch served", m.state_epoch.clone());
        registry.register(
            "nexus_edge_state_age_seconds",
            "Seconds since the state was last confirmed current",
            m.state_age_seconds.clone(),
        );
        registry.register("nexus_edge_connections", "Open connections", m.connections.clone());
        registry.register(
            "nexus_edge_statements_refused",
            "Statements of the head that did not verify",
            m.statements_refused.clone(),
        );
        registry.register(
            "nexus_edge_statement_age_seconds",
            "Age of the leader's newest verified statement of the head",
            m.statement_age_seconds.clone(),
        );
        registry.register(
            "nexus_edge_stale",
            "1 when the newest statement of the head is older than EDGE_MAX_STALENESS",
            m.stale.clone(),
        );
        registry.register(
            "nexus_edge_connections_refused",
            "Connections closed at once because the cap was reached",
            m.connections_refused.clone(),
        );
        registry.register(
            "nexus_edge_connections_deadline_closed",
            "HTTP connections closed because no request was answered within the deadline",
            m.connections_deadline_closed.clone(),
        );
        registry.register(
            "nexus_edge_connection_errors",
            "HTTP connections that ended with a protocol or I/O error",
            m.connection_errors.clone(),
        );
        registry.register(
            "nexus_edge_h2_flood_closed",
            "HTTP/2 connections closed for flooding control frames, by frame kind",
            m.h2_flood_closed.clone(),
        );
        registry.register(
            "nexus_edge_connections_refused_per_ip",
            "Connections closed at once because their address reached EDGE_MAX_CONNECTIONS_PER_IP",
            m.connections_refused_per_ip.clone(),
        );
        registry.register(
            "nexus_edge_quic_datagrams_dropped",
            "UDP datagrams the QUIC endpoint dropped (undecryptable, unknown or junk)",
            m.quic_datagrams_dropped.clone(),
        );
        registry.register(
            "nexus_edge_sync_state",
            "1 when the state is current, 0 when degraded",
            m.sync_state.clone(),
        );
        registry.register(
            "nexus_edge_sync_lag_seconds",
            "Time from commit on the control plane to applied on this edge",
            m.sync_lag.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts one resolve answer and, if it was timed (see
    /// [`sample_timer`]), its latency.
    pub fn record(&self, outcome: &Outcome<'_>, took: Option<Duration>) {
        let c = match outcome.refusal() {
            None => &self.outcomes.ok,
            Some(Refusal::NotFound) => &self.outcomes.not_found,
            // The label predates the `unknown_context` code; dashboards and
            // alert rules count both under `bad_request`.
            Some(Refusal::BadName | Refusal::UnknownContext) => &self.outcomes.bad_request,
            Some(Refusal::Unauthorized) => &self.outcomes.unauthorized,
            Some(Refusal::Forbidden) => &self.outcomes.forbidden,
            // Over EDGE_RATE_LIMIT: answered 429 without reading the table.
            Some(Refusal::RateLimited) => &self.outcomes.rate_limited,
            // A hit the operator wants refused while the state is stale.
            Some(Refusal::Stale) => &self.outcomes.stale,
            // Not an answer about the alias: the edge has no state yet.
            Some(Refusal::Starting) => return,
        };
        c.inc();
        if let Some(took) = took {
            self.resolve_duration.observe(took);
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_name_and_counts() {
        let m = Metrics::new();
        m.record(&Outcome::Refused(Refusal::NotFound), Some(Duration::from_micros(7)));
        m.record(&Outcome::Refused(Refusal::Forbidden), Some(Duration::from_secs(1)));
        m.reloads_ok.inc();
        m.h2_flood_closed.get_or_create(&[("kind", "ping")]).inc();
        let text = m.encode();
        for name in [
            "nexus_edge_resolve_total{outcome=\"not_found\"} 1",
            "nexus_edge_resolve_total{outcome=\"forbidden\"} 1",
            "nexus_edge_resolve_total{outcome=\"ok\"} 0",
            "nexus_edge_resolve_duration_seconds_bucket{le=\"0.00001\"} 1",
            "nexus_edge_resolve_duration_seconds_count 2",
            "nexus_edge_reloads_total{result=\"ok\"} 1",
            "nexus_edge_connections_refused_total 0",
            "nexus_edge_connections_deadline_closed_total 0",
            "nexus_edge_connection_errors_total 0",
            "nexus_edge_quic_datagrams_dropped_total 0",
            "nexus_edge_h2_flood_closed_total{kind=\"ping\"} 1",
            "nexus_edge_connections_refused_per_ip_total 0",
            "nexus_edge_auth_refusals_total{answer=\"remembered\"} 0",
            "nexus_edge_auth_refusals_total{answer=\"over_budget\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!((m.resolve_duration.mean_ms() - 500.0035).abs() < 1e-6);
    }
}
