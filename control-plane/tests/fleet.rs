//! The fleet view across regions, against real servers: a Redis primary
//! (the control plane's) and a read-only replica of it (a remote region's),
//! the control plane as `serve` starts it, an edge on the primary and an
//! edge on the replica whose report goes to the primary
//! (`EDGE_REPORT_REDIS_URL`). Both appear in `GET /api/admin/edges` with
//! their region and lag; each region names its slowest edge; `/metrics`
//! carries the same figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::cmd;
use fred::prelude::*;
use nexus_control_plane::config::Config;
use nexus_edge::node::Node;
use nexus_harness::Plane;
use nexus_harness::local::redis::Redis;
use nexus_harness::{redis_client, wait_until_within};
use nexus_protocol::keys::RedisKeys;
use nexus_runtime::bus::Transport;
use nexus_runtime::bus::redis::RedisConfig;
use serde_json::{Value, json};

const SECRET: &str = "fleet-test-secret-fleet-test-secret-0123456";
const PATIENCE: Duration = Duration::from_secs(20);

/// An edge synced from `transport`, reporting through `report` if given.
fn edge(
    config: &Config,
    id: &str,
    region: &str,
    transport: Arc<dyn Transport>,
    report: Option<Arc<dyn Transport>>,
) -> Node {
    let key = config.propagation.signing_key.verifying_key();
    nexus_harness::launch_edge(transport, report, key, id, region, Duration::from_millis(200))
}

fn item<'a>(fleet: &'a Value, id: &str) -> Option<&'a Value> {
    fleet["items"].as_array()?.iter().find(|e| e["id"] == id)
}

fn region<'a>(fleet: &'a Value, name: &str) -> Option<&'a Value> {
    fleet["regions"].as_array()?.iter().find(|r| r["region"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_on_a_read_only_replica_is_in_the_fleet_view_with_its_lag() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Redis::start(&dir.path().join("primary")).unwrap();
    let replica = Redis::start(&dir.path().join("replica")).unwrap();
    let to_replica = redis_client(&replica.url()).await;
    let args = vec!["127.0.0.1".to_owned(), primary.port().to_string()];
    let _: fred::prelude::Value = to_replica.custom(cmd!("REPLICAOF"), args).await.unwrap();
    wait_until_within("the replica in sync", PATIENCE, || async {
        let info: String = to_replica.custom(cmd!("INFO"), vec!["replication"]).await.unwrap();
        info.contains("master_link_status:up")
    })
    .await;

    let plane = Plane::start("fleet", &primary.url(), SECRET).await;
    let (api, key, store, prefix, config) =
        (plane.api, plane.key.clone(), &plane.store, &plane.prefix, &plane.config);

    let connect = |url: &str| -> Arc<dyn Transport> {
        Arc::new(RedisConfig::new(url, prefix).connect().unwrap())
    };
    let home = edge(config, "edge-home", "home", connect(&primary.url()), None);
    // The replica refuses writes: without a report path of its own this
    // edge would be missing from the fleet view.
    let refused = connect(&replica.url()).report("probe", "{}".into()).await.unwrap_err();
    assert!(refused.to_string().contains("READONLY"), "{refused}");
    let far =
        edge(config, "edge-far", "far", connect(&replica.url()), Some(connect(&primary.url())));

    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let (http, key) = (http.clone(), key.clone());
        async move {
            let r = http.get(format!("http://{api}{path}")).bearer_auth(key).send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.text().await.unwrap()
        }
    };
    let fleet = || async { serde_json::from_str::<Value>(&get("/api/admin/edges").await).unwrap() };
    let current = |f: &Value, id: &str| item(f, id).is_some_and(|e| e["versions_behind"] == 0);
    wait_until_within("both edges current in the fleet view", PATIENCE, || async {
        let f = fleet().await;
        current(&f, "edge-home") && current(&f, "edge-far")
    })
    .await;

    // Changes after both hold a state: each edge measures their lag.
    for i in 0..3 {
        let body = json!({"context": "frontend", "alias": format!("fleet-{i}"),
                          "canonical": format!("https://api.nexus.com/fleet/{i}")});
        let r = http
            .post(format!("http://{api}/api/admin/aliases"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let head = store.registry_head().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let seen = loop {
        let f = fleet().await;
        let done = ["edge-home", "edge-far"].iter().all(|id| {
            item(&f, id)
                .is_some_and(|e| e["version"] == head.version && e["lag_ms_p99"].is_number())
        });
        if done {
            break f;
        }
        assert!(Instant::now() < deadline, "both edges at the head with a lag figure: {f}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let far_view = item(&seen, "edge-far").unwrap();
    assert_eq!(far_view["region"], "far");
    assert_eq!(
        (far_view["epoch"].as_u64(), far_view["versions_behind"].as_u64()),
        (Some(head.epoch), Some(0))
    );
    assert!(far_view["lag_ms_p50"].as_f64().unwrap() <= far_view["lag_ms_p99"].as_f64().unwrap());
    assert!(far_view["lag_samples"].as_u64().unwrap() >= 1, "{far_view}");
    assert!(far_view["state_age_ms"].is_number() && far_view["last_seen_ms"].is_number());
    assert!(far_view["last_rejection"].is_null());
    assert_eq!(far_view["behind_seconds"], 0.0);

    // A third edge of the far region, stuck two versions back with a slow
    // p99 (written as an edge would, straight to the fleet hash): the
    // region names it, by versions and by lag.
    let keys = RedisKeys::new(prefix);
    let now = chrono::Utc::now().timestamp_millis();
    let stuck = json!({
        "id": "edge-stuck", "region": "far", "epoch": head.epoch, "version": head.version - 2,
        "content_hash": "00", "applied_at_ms": now - 60_000, "heartbeat_ms": now,
        "last_rejection": {"at_ms": now - 1_000, "reason": "envelope refused: bad hash"},
        "source": "redis", "lag_ms_p50": 900, "lag_ms_p99": 45_000, "lag_samples": 10,
        "state_age_ms": 60_000,
    });
    let primary_client = redis_client(&primary.url()).await;
    let _: i64 =
        primary_client.hset(keys.edges(), ("edge-stuck", stuck.to_string())).await.unwrap();
    let f = fleet().await;
    let far_region = region(&f, "far").unwrap_or_else(|| panic!("no far region in {f}"));
    assert_eq!((far_region["edges"].as_u64(), far_region["behind"].as_u64()), (Some(2), Some(1)));
    assert_eq!(far_region["slowest_by_versions"], "edge-stuck");
    assert_eq!(far_region["max_versions_behind"], 2);
    assert_eq!(far_region["slowest_by_lag"], "edge-stuck");
    assert!(far_region["max_behind_seconds"].as_f64().unwrap() >= 60.0, "{far_region}");
    assert_eq!(
        item(&f, "edge-stuck").unwrap()["last_rejection"]["reason"],
        "envelope refused: bad hash"
    );
    let home_region = region(&f, "home").unwrap();
    assert_eq!(
        (home_region["edges"].as_u64(), home_region["slowest_by_versions"].as_str()),
        (Some(1), Some("edge-home"))
    );

    // The same figures for Prometheus.
    let text = get("/metrics").await;
    for line in [
        r#"nexus_fleet_edge_versions_behind{edge="edge-stuck",region="far"} 2"#,
        r#"nexus_fleet_edge_versions_behind{edge="edge-far",region="far"} 0"#,
        r#"nexus_fleet_edge_lag_p99_ms{edge="edge-stuck",region="far"} 45000"#,
        r#"nexus_fleet_region_max_versions_behind{region="far"} 2"#,
        r#"nexus_fleet_region_max_lag_p99_ms{region="far"} 45000"#,
        r#"nexus_fleet_region_edges{region="home"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }
    for series in [
        r#"nexus_fleet_edge_lag_p99_ms{edge="edge-far",region="far"} "#,
        r#"nexus_fleet_edge_seen_seconds_ago{edge="edge-far",region="far"} "#,
        r#"nexus_fleet_edge_state_age_seconds{edge="edge-home",region="home"} "#,
        r#"nexus_fleet_region_max_behind_seconds{region="far"} "#,
    ] {
        assert!(text.lines().any(|l| l.starts_with(series)), "{series} not in:\n{text}");
    }
    // Gone from the fleet, gone from the metrics.
    let _: i64 = primary_client.hdel(keys.edges(), "edge-stuck").await.unwrap();
    let text = get("/metrics").await;
    assert!(!text.contains("edge-stuck"), "{text}");

    home.stop().await;
    far.stop().await;
    plane.stop().await;
}
