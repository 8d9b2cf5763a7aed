//! The edge report of an edge in a remote region, reading a read-only
//! Redis replica: the replica refuses the report, so it goes through a
//! second transport to the primary (`EDGE_REPORT_REDIS_URL`), carrying the
//! commit→applied lag of what the edge applied and its state age. Real
//! primary and replica, started here; the library, then the binary
//! configured by `EDGE_REPORT_REDIS_URL`.

use std::sync::Arc;
use std::time::Duration;

use fred::cmd;
use fred::prelude::*;
use nexus_edge::clock::Clock;
use nexus_edge::metrics::Metrics;
use nexus_edge::state::{SourceKind, State};
use nexus_edge::sync::update::Progress;
use nexus_harness::local::redis::Redis;
use nexus_harness::{EdgeConfig, FakePublisher, PATIENCE, rec, sync_config, wait_until};
use nexus_protocol::keys::RedisKeys;
use nexus_runtime::bus::Transport;
use tokio::sync::watch;

async fn client(url: &str) -> Client {
    let c = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
    tokio::time::timeout(Duration::from_secs(5), c.init()).await.unwrap().unwrap();
    c
}

/// An edge synced through `config` (a replica), reporting through `report`
/// when given; runs until the returned sender is dropped.
fn start(
    config: EdgeConfig,
    report: Option<Arc<dyn Transport>>,
) -> (Arc<State>, watch::Receiver<Progress>, watch::Sender<bool>) {
    let state = Arc::new(State::new(SourceKind::Redis));
    let bus = Arc::new(config.redis.connect().unwrap());
    let mut sync = nexus_edge::source::bus::start(
        config.sync,
        bus,
        state.clone(),
        Arc::new(Metrics::new()),
        Clock::system(),
    )
    .unwrap();
    if let Some(report) = report {
        sync = sync.with_report(report);
    }
    let progress = sync.progress();
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(sync.run(async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    (state, progress, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_on_a_replica_reports_to_the_primary_with_its_lag() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Redis::start(&dir.path().join("primary")).unwrap();
    let replica = Redis::start(&dir.path().join("replica")).unwrap();
    let to_replica = client(&replica.url()).await;
    let args = vec!["127.0.0.1".to_owned(), primary.port().to_string()];
    let _: Value = to_replica.custom(cmd!("REPLICAOF"), args).await.unwrap();
    wait_until("the replica in sync", || async {
        let info: String = to_replica.custom(cmd!("INFO"), vec!["replication"]).await.unwrap();
        info.contains("master_link_status:up")
    })
    .await;

    let p = FakePublisher {
        keys: RedisKeys::new("nexus-fleet-test"),
        redis: client(&primary.url()).await,
        epoch: 1,
    };
    p.publish_snapshot(&p.snapshot(1, vec![rec("frontend", "cart", "https://a.example/v1", 1)]))
        .await;

    let mut far = sync_config(&p.keys, &replica.url(), None);
    far.sync.region = "far-away".into();
    let report_to = sync_config(&p.keys, &primary.url(), None).redis.connect().unwrap();
    let (far_state, _, _stop_far) = start(far.clone(), Some(Arc::new(report_to)));
    // The same edge without a report path of its own, to show the gap.
    let mut silent = sync_config(&p.keys, &replica.url(), None);
    silent.sync.region = "far-away".into();
    let (silent_state, silent_progress, _stop_silent) = start(silent.clone(), None);
    let at = |s: &Arc<State>, v: u64| s.is_loaded() && s.version() == v;
    wait_until("both edges at version 1", || async { at(&far_state, 1) && at(&silent_state, 1) })
        .await;

    // Five changes after the first state, each committed just before it is
    // published on the primary; they reach the edges through the replica.
    for v in 1..6 {
        let alias = format!("a{v}");
        p.publish_delta(&p.delta(
            v,
            vec![rec("frontend", &alias, "https://a.example", v + 1)],
            vec![],
        ))
        .await;
    }
    wait_until("both edges at version 6", || async { at(&far_state, 6) && at(&silent_state, 6) })
        .await;

    let id = far.sync.edge_id.clone();
    wait_until("the far edge's report at version 6 on the primary", || async {
        p.report(&id).await.is_some_and(|r| r["version"] == 6)
    })
    .await;
    let r = p.report(&id).await.unwrap();
    assert_eq!((r["region"].as_str(), r["source"].as_str()), (Some("far-away"), Some("redis")));
    assert_eq!(r["lag_samples"], 5, "the five deltas, not the first snapshot: {r}");
    let (p50, p99) = (r["lag_ms_p50"].as_u64().unwrap(), r["lag_ms_p99"].as_u64().unwrap());
    assert!(p50 <= p99 && p99 < PATIENCE.as_millis() as u64, "{r}");
    let age = r["state_age_ms"].as_i64().unwrap();
    assert!((0..PATIENCE.as_millis() as i64).contains(&age), "{r}");

    // The edge without one: its checks run, its writes are refused by the
    // replica, and the primary never hears of it.
    let from = silent_progress.borrow().checks;
    let mut rx = silent_progress.clone();
    // The borrow `wait_for` returns holds the channel's lock: dropped here.
    let checked = tokio::time::timeout(PATIENCE, async {
        rx.wait_for(|p| p.checks >= from + 3).await.is_ok()
    })
    .await;
    assert_eq!(checked, Ok(true), "the silent edge stopped checking");
    assert_eq!(p.report(&silent.sync.edge_id).await, None);
    let on_replica: Option<String> =
        to_replica.hget(p.keys.edges(), silent.sync.edge_id.as_str()).await.unwrap();
    assert_eq!(on_replica, None);
}

/// The binary on the replica, reporting through `report` when given.
fn edge_binary(
    replica: &str,
    prefix: &str,
    id: &str,
    report: Option<&str>,
) -> nexus_harness::process::EdgeProcess {
    let mut command = nexus_harness::process::command();
    command
        .env("REDIS_URL", replica)
        // The fake publisher signs with the development key.
        .env("NEXUS_INSECURE_DEV_KEYS", "1")
        .env("NEXUS_REDIS_PREFIX", prefix)
        .env("EDGE_CHECK_INTERVAL_MS", "200")
        .env("EDGE_ID", id)
        .env("EDGE_REGION", "far-away")
        .env("EDGE_AUTH", "off")
        .env("EDGE_QUIC", "off");
    if let Some(url) = report {
        command.env("EDGE_REPORT_REDIS_URL", url);
    }
    nexus_harness::process::EdgeProcess::start(&mut command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_through_edge_report_redis_url_and_warns_once_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Redis::start(&dir.path().join("primary")).unwrap();
    let replica = Redis::start(&dir.path().join("replica")).unwrap();
    let to_replica = client(&replica.url()).await;
    let args = vec!["127.0.0.1".to_owned(), primary.port().to_string()];
    let _: Value = to_replica.custom(cmd!("REPLICAOF"), args).await.unwrap();
    let p = FakePublisher {
        keys: RedisKeys::new("nexus-fleet-binary"),
        redis: client(&primary.url()).await,
        epoch: 1,
    };
    let records = || vec![rec("frontend", "cart", "https://a.example/v1", 1)];
    p.publish_snapshot(&p.snapshot(1, records())).await;

    let reporting =
        edge_binary(&replica.url(), p.keys.prefix(), "bin-reporting", Some(&primary.url()));
    let silent = edge_binary(&replica.url(), p.keys.prefix(), "bin-silent", None);
    let (_, _) = reporting.wait_for("listening", "addr");
    // Without EDGE_REPORT_REDIS_URL the replica refuses the report, and the
    // warning says what to set.
    // (fired by a READONLY refusal only: any other failure stays at debug).
    let (_, _) = silent.wait_for("set EDGE_REPORT_REDIS_URL to the Redis primary", "error");
    wait_until("the reporting edge at version 1 on the primary", || async {
        p.report("bin-reporting").await.is_some_and(|r| r["version"] == 1)
    })
    .await;
    p.publish_delta(&p.delta(1, vec![rec("frontend", "a2", "https://a.example", 2)], vec![])).await;
    wait_until("its report at version 2 with the lag", || async {
        p.report("bin-reporting").await.is_some_and(|r| {
            r["version"] == 2 && r["region"] == "far-away" && r["lag_ms_p99"].is_u64()
        })
    })
    .await;

    // Five more heartbeats of 200 ms (the reporting edge's report is the
    // clock), then a snapshot both edges log: the silent one warned once.
    let beat = |r: &serde_json::Value| r["heartbeat_ms"].as_i64().unwrap_or(0);
    let from = beat(&p.report("bin-reporting").await.unwrap());
    wait_until("five heartbeats", || async {
        p.report("bin-reporting").await.is_some_and(|r| beat(&r) >= from + 1_000)
    })
    .await;
    let mut next = records();
    next.push(rec("frontend", "a2", "https://a.example", 2));
    next.push(rec("frontend", "a3", "https://a.example", 3));
    p.publish_snapshot(&p.snapshot(3, next)).await;
    let (_, between) = silent.wait_for("state installed", "version");
    let again: Vec<_> = between.iter().filter(|l| l.contains("cannot be written")).collect();
    assert!(again.is_empty(), "warned again: {again:?}");
    assert_eq!(p.report("bin-silent").await, None);
}
