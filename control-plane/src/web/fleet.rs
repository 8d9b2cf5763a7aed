//! The fleet as the edges report it in `P:edges`, each edge judged against
//! the registry head (how far behind, stale or not) so a silently stuck
//! edge shows up, and per region the slowest edge. `GET /api/admin/edges`,
//! the publish barrier and the console's fleet page read it; `/metrics`
//! exports the same figures ([`export`]), so an alert can say "region X is
//! N seconds behind".
//!
//! Whether an edge is live is judged by this control plane's clock: when
//! it last noticed the edge's report change ([`sightings`]), never the
//! edge's own `heartbeat_ms`; the edge's clock is only measured
//! (`clock_skew_ms`).
//!
//! Every edge writes its report to the Redis the control plane reads. An
//! edge on a read-only regional replica writes it through
//! `EDGE_REPORT_REDIS_URL` (the primary) instead: the report path is
//! Redis, not this API, so the fleet view needs no edge credential and
//! keeps working while the control plane is down.

mod sightings;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::metrics::{EdgeLabels, FleetMetrics, RegionLabels};
use crate::publisher::bus::{Bus, BusError};
pub(crate) use sightings::{Reading, Sighting, Sightings};

/// Most edges listed (and exported to Prometheus, which bounds the
/// metrics' label sets); a fleet larger than this needs paging first.
pub(crate) const MAX_EDGES: usize = 10_000;
/// Largest report read; edges write a few hundred bytes.
const MAX_REPORT_LEN: usize = 8 << 10;
/// An edge whose report (rewritten every heartbeat, 2 s by default) this
/// control plane has not seen change for longer than this, by its own
/// clock, is stale: down, partitioned, or stuck.
pub(crate) const STALE_AFTER_MS: i64 = 10_000;
/// Label values longer than this are cut (ids and regions come from the
/// edges' reports).
const MAX_LABEL_LEN: usize = 128;

/// What an edge writes every heartbeat (the propagation contract). Fields
/// added since the first edges default, so an older edge still reads.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub(crate) struct EdgeReport {
    pub id: String,
    pub region: String,
    /// The applied `(epoch, version)`.
    pub epoch: u64,
    pub version: u64,
    pub content_hash: String,
    pub applied_at_ms: i64,
    pub heartbeat_ms: i64,
    pub last_rejection: Option<Rejection>,
    pub source: String,
    /// Commit→applied lag of the changes the edge applied in the last
    /// minutes (at most its last 1,024), ms; absent when it applied none.
    #[serde(default)]
    pub lag_ms_p50: Option<f64>,
    #[serde(default)]
    pub lag_ms_p99: Option<f64>,
    #[serde(default)]
    pub lag_ms_max: Option<f64>,
    #[serde(default)]
    pub lag_samples: Option<u64>,
    /// When the report was written: how long since the source last
    /// confirmed the edge's state; absent with no state.
    #[serde(default)]
    pub state_age_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub(crate) struct Rejection {
    pub at_ms: i64,
    pub reason: String,
}

/// One edge as the admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct EdgeView {
    #[serde(flatten)]
    pub report: EdgeReport,
    /// When this control plane last heard the edge (noticed its report
    /// change), Unix ms by the control plane's clock.
    pub last_seen_ms: i64,
    /// Seconds since then, by the control plane's clock.
    pub seen_seconds_ago: f64,
    /// Versions behind the registry; `None` when the edge is on another
    /// epoch (it will take a snapshot, or it is pointed at another
    /// registry).
    pub versions_behind: Option<u64>,
    pub epoch_matches: bool,
    /// Not heard for longer than 10 s: left out of the publish barrier.
    pub stale: bool,
    /// The edge's clock minus the control plane's, ms, measured when the
    /// control plane last heard it (`heartbeat_ms - last_seen_ms`); it errs
    /// low by at most the time between two reads of the fleet. Shown, never
    /// used to judge the edge.
    pub clock_skew_ms: i64,
    /// The state's age now: the reported age plus the report's own.
    pub state_age_seconds: Option<f64>,
    /// How many seconds behind the registry the edge may be: 0 when it
    /// holds the head; else its state's age now (it has not been confirmed
    /// current for that long, and a newer version exists). An upper bound,
    /// to the report's age.
    pub behind_seconds: Option<f64>,
}

/// Judges one report, last heard as `seen`, against the registry head at
/// `at`. Pure.
pub(crate) fn view(
    report: EdgeReport,
    seen: &Sighting,
    epoch: u64,
    version: u64,
    at: Reading,
) -> EdgeView {
    let epoch_matches = report.epoch == epoch;
    let age_ms = seen.age_ms(at);
    let versions_behind = epoch_matches.then(|| version.saturating_sub(report.version));
    let state_age_ms = report.state_age_ms.map(|a| a.max(0).saturating_add(age_ms));
    let state_age_seconds = state_age_ms.map(|a| a as f64 / 1e3);
    EdgeView {
        last_seen_ms: seen.heard.wall_ms,
        seen_seconds_ago: age_ms as f64 / 1e3,
        versions_behind,
        epoch_matches,
        stale: age_ms > STALE_AFTER_MS,
        clock_skew_ms: seen.skew_ms,
        state_age_seconds,
        behind_seconds: if versions_behind == Some(0) { Some(0.0) } else { state_age_seconds },
        report,
    }
}

/// One region of the fleet, and its slowest edges.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct RegionSummary {
    pub region: String,
    pub edges: usize,
    pub stale: usize,
    /// Edges not at the registry head (or on another epoch).
    pub behind: usize,
    /// The edge furthest behind in versions, and by how many.
    pub slowest_by_versions: Option<String>,
    pub max_versions_behind: Option<u64>,
    /// The edge with the highest commit→applied lag p99, and that p99 (ms).
    pub slowest_by_lag: Option<String>,
    pub max_lag_ms_p99: Option<f64>,
    /// The most any edge of the region may be behind, in seconds (see
    /// [`EdgeView::behind_seconds`]).
    pub max_behind_seconds: Option<f64>,
}

/// The fleet judged at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fleet {
    /// Sorted by edge id.
    pub items: Vec<EdgeView>,
    /// Ids of edges whose report did not parse (or is too long).
    pub unreadable: Vec<String>,
}

impl Fleet {
    /// Judges the raw `P:edges` entries, read `at`, against the registry
    /// head, noting in `seen` which reports changed.
    pub(crate) fn judge(
        raw: Vec<(String, String)>,
        epoch: u64,
        version: u64,
        seen: &Sightings,
        at: Reading,
    ) -> Self {
        let mut fleet = Fleet { items: Vec::with_capacity(raw.len()), unreadable: Vec::new() };
        let mut hearing = seen.hearing(at);
        for (id, text) in raw {
            let parsed = (text.len() <= MAX_REPORT_LEN)
                .then(|| serde_json::from_str::<EdgeReport>(&text).ok())
                .flatten();
            match parsed {
                Some(report) => {
                    let sighting = hearing.hear(&id, &text, report.heartbeat_ms);
                    fleet.items.push(view(report, &sighting, epoch, version, at));
                }
                None => fleet.unreadable.push(id),
            }
        }
        hearing.finish();
        fleet
    }

    /// Reads and judges the fleet from `bus`, by this control plane's clock
    /// as the read completed.
    pub(crate) async fn read(
        bus: &Bus,
        seen: &Sightings,
        epoch: u64,
        version: u64,
    ) -> Result<Self, BusError> {
        let raw = bus.edge_reports(MAX_EDGES).await?;
        Ok(Self::judge(raw, epoch, version, seen, seen.now()))
    }

    /// Per region (in name order): counts and the slowest edges. On a tie
    /// the first edge by id is named.
    pub(crate) fn regions(&self) -> Vec<RegionSummary> {
        let mut by: BTreeMap<&str, RegionSummary> = BTreeMap::new();
        for e in &self.items {
            let r = by.entry(e.report.region.as_str()).or_insert_with(|| RegionSummary {
                region: e.report.region.clone(),
                edges: 0,
                stale: 0,
                behind: 0,
                slowest_by_versions: None,
                max_versions_behind: None,
                slowest_by_lag: None,
                max_lag_ms_p99: None,
                max_behind_seconds: None,
            });
            r.edges += 1;
            r.stale += usize::from(e.stale);
            r.behind += usize::from(e.versions_behind != Some(0));
            if let Some(v) = e.versions_behind
                && r.max_versions_behind.is_none_or(|m| v > m)
            {
                (r.slowest_by_versions, r.max_versions_behind) =
                    (Some(e.report.id.clone()), Some(v));
            }
            if let Some(p99) = e.report.lag_ms_p99
                && r.max_lag_ms_p99.is_none_or(|m| p99 > m)
            {
                (r.slowest_by_lag, r.max_lag_ms_p99) = (Some(e.report.id.clone()), Some(p99));
            }
            if let Some(s) = e.behind_seconds {
                r.max_behind_seconds = Some(r.max_behind_seconds.map_or(s, |m| m.max(s)));
            }
        }
        by.into_values().collect()
    }
}

/// Sets the fleet gauges from `fleet` (the caller cleared them first, so
/// an edge gone from the fleet leaves no series behind).
pub(crate) fn export(gauges: &FleetMetrics, fleet: &Fleet) {
    for e in &fleet.items {
        let l = EdgeLabels { edge: label(&e.report.id), region: label(&e.report.region) };
        gauges.edge_seen_seconds_ago.get_or_create(&l).set(e.seen_seconds_ago);
        if let Some(v) = e.versions_behind {
            gauges.edge_versions_behind.get_or_create(&l).set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        if let Some(p) = e.report.lag_ms_p50 {
            gauges.edge_lag_p50_ms.get_or_create(&l).set(p);
        }
        if let Some(p) = e.report.lag_ms_p99 {
            gauges.edge_lag_p99_ms.get_or_create(&l).set(p);
        }
        if let Some(a) = e.state_age_seconds {
            gauges.edge_state_age_seconds.get_or_create(&l).set(a);
        }
        if let Some(b) = e.behind_seconds {
            gauges.edge_behind_seconds.get_or_create(&l).set(b);
        }
    }
    for r in fleet.regions() {
        let l = RegionLabels { region: label(&r.region) };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        gauges.region_edges.get_or_create(&l).set(count(r.edges));
        gauges.region_stale_edges.get_or_create(&l).set(count(r.stale));
        if let Some(v) = r.max_versions_behind {
            gauges
                .region_max_versions_behind
                .get_or_create(&l)
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        if let Some(p) = r.max_lag_ms_p99 {
            gauges.region_max_lag_p99_ms.get_or_create(&l).set(p);
        }
        if let Some(b) = r.max_behind_seconds {
            gauges.region_max_behind_seconds.get_or_create(&l).set(b);
        }
    }
}

/// `value` cut to [`MAX_LABEL_LEN`] bytes at a character boundary.
fn label(value: &str) -> String {
    let mut end = value.len().min(MAX_LABEL_LEN);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(epoch: u64, version: u64, heartbeat_ms: i64) -> EdgeReport {
        serde_json::from_value(json!({
            "id": "edge-1", "region": "eu-west", "epoch": epoch, "version": version,
            "content_hash": "ab", "applied_at_ms": 1, "heartbeat_ms": heartbeat_ms,
            "last_rejection": null, "source": "redis"
        }))
        .unwrap()
    }

    /// Heard at this plane's `heard_ms` (wall and monotonic alike).
    fn heard(heard_ms: i64, skew_ms: i64) -> Sighting {
        let s = Sightings::new();
        let at = Reading { wall_ms: heard_ms, mono_ms: heard_ms };
        let mut h = s.hearing(at);
        let seen = h.hear("edge-1", "report", heard_ms + skew_ms);
        h.finish();
        seen
    }

    fn now(ms: i64) -> Reading {
        Reading { wall_ms: ms, mono_ms: ms }
    }

    #[test]
    fn behind_and_stale_follow_the_registry_and_this_planes_clock() {
        let v = view(report(7, 90, 50_000), &heard(50_000, 0), 7, 100, now(55_000));
        assert_eq!(v.versions_behind, Some(10));
        assert!(!v.stale && v.epoch_matches);
        let old =
            view(report(7, 100, 1_000), &heard(1_000, 0), 7, 100, now(1_000 + STALE_AFTER_MS + 1));
        assert!(old.stale);
        assert_eq!(old.versions_behind, Some(0));
        let other = view(report(8, 500, 1_000), &heard(1_000, 0), 7, 100, now(1_000));
        assert_eq!(other.versions_behind, None);
        assert!(!other.epoch_matches);
    }

    #[test]
    fn an_edge_clock_behind_or_ahead_changes_its_skew_not_its_liveness() {
        for skew in [-15_000, 15_000, 3_600_000] {
            let seen = heard(100_000, skew);
            let v = view(report(7, 1, 100_000 + skew), &seen, 7, 1, now(102_000));
            assert_eq!((v.stale, v.seen_seconds_ago, v.clock_skew_ms), (false, 2.0, skew));
            assert_eq!(v.last_seen_ms, 100_000, "when this plane heard it");
            let v = view(report(7, 1, 100_000 + skew), &seen, 7, 1, now(111_000));
            assert!(v.stale, "silent 11 s by this plane's clock, skew {skew}");
        }
    }

    #[test]
    fn the_view_keeps_every_reported_field() {
        let v = serde_json::to_value(view(report(7, 1, 0), &heard(0, 0), 7, 1, now(0))).unwrap();
        for field in [
            "id",
            "region",
            "version",
            "content_hash",
            "source",
            "heartbeat_ms",
            "last_seen_ms",
            "stale",
            "clock_skew_ms",
        ] {
            assert!(v.get(field).is_some(), "{field} in {v}");
        }
    }

    fn raw(
        id: &str,
        region: &str,
        version: u64,
        p99: Option<f64>,
        age_ms: i64,
    ) -> (String, String) {
        let r = json!({
            "id": id, "region": region, "epoch": 1, "version": version,
            "content_hash": "ab", "applied_at_ms": 1, "heartbeat_ms": 10_000,
            "last_rejection": null, "source": "redis",
            "lag_ms_p50": p99.map(|p| p / 2.0), "lag_ms_p99": p99, "lag_samples": 10,
            "state_age_ms": age_ms,
        });
        (id.to_owned(), r.to_string())
    }

    #[test]
    fn seconds_behind_is_zero_at_the_head_and_the_state_age_otherwise() {
        let seen = Sightings::new();
        let entries =
            || vec![raw("a", "eu", 100, Some(4.0), 1_500), raw("b", "eu", 97, Some(3.0), 4_000)];
        Fleet::judge(entries(), 1, 100, &seen, now(10_000));
        let fleet = Fleet::judge(entries(), 1, 100, &seen, now(11_000));
        let (a, b) = (&fleet.items[0], &fleet.items[1]);
        assert_eq!((a.behind_seconds, a.state_age_seconds), (Some(0.0), Some(2.5)));
        // Its state was 4 s old in the report, heard 1 s ago.
        assert_eq!((b.versions_behind, b.behind_seconds), (Some(3), Some(5.0)));
    }

    #[test]
    fn each_region_names_its_slowest_edges() {
        let mut entries = vec![
            raw("eu-1", "eu", 100, Some(12.0), 100),
            raw("eu-2", "eu", 91, Some(8.0), 30_000),
            raw("eu-3", "eu", 99, Some(40.0), 200),
            raw("us-1", "us", 100, None, 50),
            ("junk".to_owned(), "{not json".to_owned()),
        ];
        entries.push(("huge".to_owned(), "x".repeat(MAX_REPORT_LEN + 1)));
        let fleet = Fleet::judge(entries, 1, 100, &Sightings::new(), now(10_000));
        assert_eq!(fleet.unreadable, ["junk", "huge"]);
        let regions = fleet.regions();
        assert_eq!(regions.len(), 2);
        let eu = &regions[0];
        assert_eq!((eu.region.as_str(), eu.edges, eu.stale, eu.behind), ("eu", 3, 0, 2));
        assert_eq!(eu.slowest_by_versions.as_deref(), Some("eu-2"));
        assert_eq!(eu.max_versions_behind, Some(9));
        assert_eq!((eu.slowest_by_lag.as_deref(), eu.max_lag_ms_p99), (Some("eu-3"), Some(40.0)));
        assert_eq!(eu.max_behind_seconds, Some(30.0));
        let us = &regions[1];
        assert_eq!(
            (us.slowest_by_versions.as_deref(), us.max_versions_behind),
            (Some("us-1"), Some(0))
        );
        assert_eq!((us.slowest_by_lag.as_deref(), us.max_behind_seconds), (None, Some(0.0)));
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(label("eu"), "eu");
        let long = "é".repeat(100);
        let cut = label(&long);
        assert!(cut.len() <= MAX_LABEL_LEN && long.starts_with(&cut));
    }
}
