//! An edge on a bus, as the control plane's tests run one: the `nexus_edge`
//! library in this process, HTTP on port 0, one worker, QUIC and metrics
//! off, and no token check (these tests look at what reaches the edges;
//! credentials have their own tests in the edge crate).

use std::sync::Arc;
use std::time::Duration;

use nexus_edge::metrics::Metrics;
use nexus_edge::node::{self, Node};
use nexus_edge::state::SourceKind;
use nexus_edge::sync::SyncConfig;
use nexus_protocol::signing::VerifyingKey;
use nexus_runtime::bus::Transport;

/// Edge `id` in `region`, syncing from `transport` (checking every
/// `check_interval`) and reporting to `report` when given, else to
/// `transport`; states must be signed by `verify_key`'s private half.
pub fn launch(
    transport: Arc<dyn Transport>,
    report: Option<Arc<dyn Transport>>,
    verify_key: VerifyingKey,
    id: &str,
    region: &str,
    check_interval: Duration,
) -> Node {
    let config = nexus_edge::config::Config::embedded(|k| match k {
        "EDGE_HTTP_ADDR" => Some("127.0.0.1:0".into()),
        "EDGE_WORKERS" => Some("1".into()),
        "EDGE_QUIC" => Some("off".into()),
        "EDGE_AUTH" => Some("off".into()),
        "PROMETHEUS_ENABLED" => Some("false".into()),
        _ => None,
    })
    .unwrap();
    let sync = SyncConfig {
        verify_key,
        edge_id: id.into(),
        region: region.into(),
        state_dir: None,
        check_interval,
    };
    let metrics = Arc::new(Metrics::new());
    let (state, feed) =
        node::open_bus_reporting(&sync, transport, report, SourceKind::Redis, &metrics).unwrap();
    node::launch(&config, state, feed, metrics).unwrap()
}
