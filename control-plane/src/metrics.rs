//! Prometheus metrics of the control plane (names agreed in the metrics
//! notes). Counters are registered without `_total`; the library adds it.
//!
//! The fleet gauges (`nexus_fleet_*`, [`FleetMetrics`]) are not kept up to
//! date: each scrape clears them and sets them from the edges' reports
//! ([`Metrics::encode_with_fleet`]), so an edge gone from the fleet leaves
//! no series behind. Their label sets are bounded by the edges listed
//! (`api::edges::MAX_EDGES`).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::service::Stats;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    pub state: String,
}

/// `kind` of `nexus_cp_publish_total`: "delta" or "snapshot".
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// `key` of `nexus_cp_rate_limited_total`: the bucket that refused,
/// "principal" (a credential) or "address" (no valid credential).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    pub key: &'static str,
}

/// One edge of the fleet gauges.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EdgeLabels {
    pub edge: String,
    pub region: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RegionLabels {
    pub region: String,
}

type GaugeF64 = Gauge<f64, AtomicU64>;

/// The fleet as gauges, set at each scrape from the edges' reports (see
/// `api::edges::export`).
#[derive(Debug, Clone, Default)]
pub(crate) struct FleetMetrics {
    pub edge_versions_behind: Family<EdgeLabels, Gauge>,
    pub edge_lag_p50_ms: Family<EdgeLabels, GaugeF64>,
    pub edge_lag_p99_ms: Family<EdgeLabels, GaugeF64>,
    pub edge_seen_seconds_ago: Family<EdgeLabels, GaugeF64>,
    pub edge_state_age_seconds: Family<EdgeLabels, GaugeF64>,
    pub edge_behind_seconds: Family<EdgeLabels, GaugeF64>,
    pub region_edges: Family<RegionLabels, Gauge>,
    pub region_stale_edges: Family<RegionLabels, Gauge>,
    pub region_max_versions_behind: Family<RegionLabels, Gauge>,
    pub region_max_lag_p99_ms: Family<RegionLabels, GaugeF64>,
    pub region_max_behind_seconds: Family<RegionLabels, GaugeF64>,
}

impl FleetMetrics {
    fn register(&self, r: &mut Registry) {
        // One literal name per call, so the names can be found by grep
        // (deploy/validate.sh reads them this way).
        r.register(
            "nexus_fleet_edge_versions_behind",
            "Versions the edge is behind the registry (same epoch only)",
            self.edge_versions_behind.clone(),
        );
        r.register(
            "nexus_fleet_edge_lag_p50_ms",
            "The edge's commit-to-applied lag p50 over its recent changes, ms",
            self.edge_lag_p50_ms.clone(),
        );
        r.register(
            "nexus_fleet_edge_lag_p99_ms",
            "The edge's commit-to-applied lag p99 over its recent changes, ms",
            self.edge_lag_p99_ms.clone(),
        );
        r.register(
            "nexus_fleet_edge_seen_seconds_ago",
            "Seconds since the edge's last report",
            self.edge_seen_seconds_ago.clone(),
        );
        r.register(
            "nexus_fleet_edge_state_age_seconds",
            "Seconds since the edge's state was last confirmed current",
            self.edge_state_age_seconds.clone(),
        );
        r.register(
            "nexus_fleet_edge_behind_seconds",
            "Seconds the edge may be behind the registry: 0 at the head, else its state age",
            self.edge_behind_seconds.clone(),
        );
        r.register(
            "nexus_fleet_region_edges",
            "Edges reporting in the region",
            self.region_edges.clone(),
        );
        r.register(
            "nexus_fleet_region_stale_edges",
            "Edges of the region whose last report is stale",
            self.region_stale_edges.clone(),
        );
        r.register(
            "nexus_fleet_region_max_versions_behind",
            "Most versions any edge of the region is behind",
            self.region_max_versions_behind.clone(),
        );
        r.register(
            "nexus_fleet_region_max_lag_p99_ms",
            "Highest commit-to-applied lag p99 among the region's edges, ms",
            self.region_max_lag_p99_ms.clone(),
        );
        r.register(
            "nexus_fleet_region_max_behind_seconds",
            "Most seconds any edge of the region may be behind the registry",
            self.region_max_behind_seconds.clone(),
        );
    }

    fn clear(&self) {
        self.edge_versions_behind.clear();
        self.edge_lag_p50_ms.clear();
        self.edge_lag_p99_ms.clear();
        self.edge_seen_seconds_ago.clear();
        self.edge_state_age_seconds.clear();
        self.edge_behind_seconds.clear();
        self.region_edges.clear();
        self.region_stale_edges.clear();
        self.region_max_versions_behind.clear();
        self.region_max_lag_p99_ms.clear();
        self.region_max_behind_seconds.clear();
    }
}

/// The publisher's metrics: clones of handles registered in [`Metrics`].
#[derive(Debug, Clone, Default)]
pub struct PublishMetrics {
    pub published_version: Gauge,
    pub publish_total: Family<KindLabels, Counter>,
    pub is_leader: Gauge,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms to ~8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub(crate) registry_version: Gauge,
    pub(crate) aliases: Family<StateLabels, Gauge>,
    pub(crate) conflicts_open: Gauge,
    pub(crate) audit_rows: Gauge,
    pub(crate) db_up: Gauge,
    pub(crate) publish: PublishMetrics,
    /// Requests refused with 429 by the admin API's rate limit.
    pub(crate) rate_limited: Family<LimitLabels, Counter>,
    fleet: FleetMetrics,
    /// Held from clearing the fleet gauges to encoding them, so two scrapes
    /// at once cannot interleave and one answer a half-filled fleet.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let registry_version = Gauge::default();
        let aliases = Family::<StateLabels, Gauge>::default();
        let conflicts_open = Gauge::default();
        let audit_rows = Gauge::default();
        let db_up = Gauge::default();
        registry.register("nexus_cp_http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "nexus_cp_http_request_duration_seconds",
            "HTTP request duration",
            duration.clone(),
        );
        registry.register(
            "nexus_cp_registry_version",
            "Version of the last committed change",
            registry_version.clone(),
        );
        registry.register("nexus_cp_aliases", "Aliases by state", aliases.clone());
        registry.register(
            "nexus_cp_conflicts_open",
            "Unresolved conflicts",
            conflicts_open.clone(),
        );
        registry.register("nexus_cp_audit_rows", "Rows in the audit trail", audit_rows.clone());
        registry.register("nexus_cp_db_up", "1 when PostgreSQL answers", db_up.clone());
        let publish = PublishMetrics::default();
        registry.register(
            "nexus_cp_published_version",
            "Newest version this instance published to Redis",
            publish.published_version.clone(),
        );
        registry.register(
            "nexus_cp_publish",
            "Deltas and snapshots published",
            publish.publish_total.clone(),
        );
        registry.register(
            "nexus_cp_is_leader",
            "1 while this instance holds the publisher lock",
            publish.is_leader.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "nexus_cp_rate_limited",
            "Admin API requests refused by the rate limit (429)",
            rate_limited.clone(),
        );
        let fleet = FleetMetrics::default();
        fleet.register(&mut registry);
        Self {
            registry,
            requests,
            duration,
            registry_version,
            aliases,
            conflicts_open,
            audit_rows,
            db_up,
            publish,
            rate_limited,
            fleet,
            scrape: Mutex::new(()),
        }
    }

    /// Sets the gauges read from the database (or marks it down).
    pub(crate) fn observe(&self, stats: Option<&Stats>) {
        let Some(s) = stats else {
            self.db_up.set(0);
            return;
        };
        self.db_up.set(1);
        self.registry_version.set(s.version);
        self.aliases.get_or_create(&StateLabels { state: "active".into() }).set(s.active_aliases);
        self.aliases
            .get_or_create(&StateLabels { state: "inactive".into() })
            .set(s.inactive_aliases);
        self.conflicts_open.set(s.open_conflicts);
        self.audit_rows.set(s.audit_rows);
    }

    /// The exposition with the fleet gauges set by `fill` (nothing set:
    /// no fleet series, as when the fleet could not be read).
    pub(crate) fn encode_with_fleet(&self, fill: impl FnOnce(&FleetMetrics)) -> String {
        // A poisoned lock only means another scrape panicked: the gauges
        // are cleared again here anyway.
        let _scrape = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.fleet.clear();
        fill(&self.fleet);
        self.encode()
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
