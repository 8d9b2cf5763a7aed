//! Prometheus metrics of the control plane (names agreed in the metrics
//! notes). Counters are registered without `_total`; the library adds it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::service::Stats;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
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
pub struct LimitLabels {
    pub key: &'static str,
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
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub registry_version: Gauge,
    pub aliases: Family<StateLabels, Gauge>,
    pub conflicts_open: Gauge,
    pub audit_rows: Gauge,
    pub db_up: Gauge,
    pub publish: PublishMetrics,
    /// Requests refused with 429 by the admin API's rate limit.
    pub rate_limited: Family<LimitLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
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
        }
    }

    /// Sets the gauges read from the database (or marks it down).
    pub fn observe(&self, stats: Option<&Stats>) {
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

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
