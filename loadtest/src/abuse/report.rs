//! One scenario's report: JSON for the issue note, a table for people.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::driver::Outcome;
use crate::report::{Latency, errors_by_kind};

use super::attack::AttackStats;
use super::monitor::Watch;
use super::scenario::{Scenario, Setup};

/// The legitimate load of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct Legit {
    pub requests: u64,
    pub successes: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Successful answers per second.
    pub rps: f64,
    pub latency_ms: Latency,
    /// Share of one core the edge used meanwhile, in percent.
    pub edge_cpu_percent: Option<f64>,
}

impl Legit {
    pub fn new(outcome: &Outcome, edge_cpu_percent: Option<f64>) -> Self {
        let r = &outcome.recorder;
        let secs = outcome.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            requests: r.requests(),
            successes: r.successes(),
            errors_by_kind: errors_by_kind(r),
            rps: r.successes() as f64 / secs,
            latency_ms: Latency::of(r),
            edge_cpu_percent,
        }
    }
}

/// What `--report` holds per scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub attack_description: String,
    pub legit_connections: usize,
    /// Requests/s offered (open model); `None`: closed model.
    pub legit_rate: Option<f64>,
    pub duration_s: f64,
    pub without_attack: Legit,
    pub during_attack: Legit,
    /// `during_attack.rps / without_attack.rps`.
    pub throughput_ratio: f64,
    pub attack: AttackStats,
    /// The monitor's watch before, during (warm-up included) and just after the attack.
    pub before: Watch,
    pub during: Watch,
    pub after: Watch,
    /// Every keep-alive health check answered 200, in every phase.
    pub healthy_throughout: bool,
    /// Edge counters (`*_total`) that moved during the scenario, less the
    /// legitimate resolves; the signal an operator sees.
    pub counters_moved: BTreeMap<String, f64>,
}

impl ScenarioReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: Scenario,
        attack_description: String,
        setup: &Setup,
        without_attack: Legit,
        during_attack: Legit,
        attack: AttackStats,
        watches: Vec<Watch>,
        counters_moved: BTreeMap<String, f64>,
    ) -> Self {
        let mut w = watches.into_iter();
        let (before, during, after) = (
            w.next().unwrap_or_default(),
            w.next().unwrap_or_default(),
            w.next().unwrap_or_default(),
        );
        let healthy_throughout =
            [&before, &during, &after].iter().all(|w| w.health_failed == 0 && w.health_ok > 0);
        Self {
            scenario: scenario.name().to_owned(),
            attack_description,
            legit_connections: setup.connections,
            legit_rate: setup.rate,
            duration_s: setup.duration.as_secs_f64(),
            throughput_ratio: during_attack.rps / without_attack.rps.max(f64::MIN_POSITIVE),
            without_attack,
            during_attack,
            attack,
            before,
            during,
            after,
            healthy_throughout,
            counters_moved,
        }
    }
}

/// `after - before` of every counter that moved, but the resolve outcomes
/// (the legitimate load moves those).
pub fn counter_deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(name, _)| {
            name.contains("_total") && !name.starts_with("nexus_edge_resolve_total")
        })
        .filter_map(|(name, v)| {
            let d = v - before.get(name).copied().unwrap_or(0.0);
            (d != 0.0).then(|| (name.clone(), d))
        })
        .collect()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn errors(l: &Legit) -> String {
    if l.errors_by_kind.is_empty() {
        return "0".to_owned();
    }
    l.errors_by_kind.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ")
}

fn health(w: &Watch) -> String {
    format!(
        "{}/{} ok (max {:.1} ms), new conn {}/{}",
        w.health_ok,
        w.health_ok + w.health_failed,
        w.health_max_ms,
        w.fresh_ok,
        w.fresh_ok + w.fresh_failed
    )
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = (&self.without_attack, &self.during_attack);
        writeln!(f, "== {}: {}", self.scenario, self.attack_description)?;
        writeln!(f, "  {:<22} {:>14} {:>14}", "", "without", "during attack")?;
        writeln!(
            f,
            "  {:<22} {:>14.0} {:>14.0}   ratio {:.2}",
            "legit answers/s", a.rps, b.rps, self.throughput_ratio
        )?;
        writeln!(
            f,
            "  {:<22} {:>14.3} {:>14.3}",
            "legit p50 ms", a.latency_ms.p50, b.latency_ms.p50
        )?;
        writeln!(
            f,
            "  {:<22} {:>14.3} {:>14.3}",
            "legit p99 ms", a.latency_ms.p99, b.latency_ms.p99
        )?;
        writeln!(f, "  {:<22} {:>14} {:>14}", "legit errors", errors(a), errors(b))?;
        writeln!(
            f,
            "  {:<22} {:>14} {:>14}",
            "edge CPU %",
            opt(a.edge_cpu_percent, 0),
            opt(b.edge_cpu_percent, 0)
        )?;
        writeln!(
            f,
            "  {:<22} {:>14} {:>14}",
            "edge RSS peak MiB",
            mib(self.before.rss_peak_kib),
            mib(self.during.rss_peak_kib)
        )?;
        writeln!(
            f,
            "  {:<22} {:>14} {:>14}",
            "edge connections peak",
            opt(self.before.peak_connections, 0),
            opt(self.during.peak_connections, 0)
        )?;
        writeln!(f, "  health before: {}", health(&self.before))?;
        writeln!(f, "  health during: {}", health(&self.during))?;
        writeln!(f, "  health after:  {}", health(&self.after))?;
        let s = &self.attack;
        writeln!(
            f,
            "  attack: {} {} ({:.1} MB), {} connections opened, {} connect failures, {} closed by the edge, peak held {}",
            s.sent,
            s.unit,
            s.bytes_sent as f64 / 1e6,
            s.connections_opened,
            s.connect_failures,
            s.closed_by_edge,
            s.peak_held
        )?;
        if self.counters_moved.is_empty() {
            writeln!(f, "  counters moved: none")?;
        } else {
            let moved: Vec<String> =
                self.counters_moved.iter().map(|(k, v)| format!("{k} +{v}")).collect();
            writeln!(f, "  counters moved: {}", moved.join(", "))?;
        }
        write!(f, "  healthy throughout: {}", if self.healthy_throughout { "yes" } else { "NO" })
    }
}
