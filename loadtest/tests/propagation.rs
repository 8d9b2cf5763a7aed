//! `nexus-loadtest propagation` as an SRE runs it, against the real thing:
//! a control plane (the workspace's harness: a fresh PostgreSQL database,
//! the API on port 0) with its publisher on a fresh Redis prefix, and edges
//! on port 0 syncing from it. The probe runs as the
//! built binary; the checks are what a user reads: exit status, the table,
//! the JSON report, and what is left in the registry.

use std::process::Command;
use std::time::{Duration, Instant};

use fred::prelude::KeysInterface;
use nexus_protocol::keys::RedisKeys;
use reqwest::StatusCode;
use serde_json::Value;

use nexus_harness::LivePlane;
use nexus_harness::{FakePublisher, SyncEdge, rec, redis_url, sync_config, wait_until};

/// An edge syncing from this plane, holding a state with `frontend`
/// (so a miss there is a 404, as on any edge in service).
async fn seeded_edge(plane: &LivePlane) -> SyncEdge {
    let edge = SyncEdge::start(sync_config(&plane.keys, &redis_url(), None)).await;
    let (status, body) = plane.app.create("frontend", "seed", "https://api.nexus.com/s").await;
    assert!(status.is_success(), "{body}");
    let version =
        plane.app.get("/api/admin/aliases/frontend/seed").await.1["version"].as_u64().unwrap();
    wait_until("edge has the seed alias", || async {
        edge.state.is_loaded() && edge.state.version() >= version
    })
    .await;
    edge
}

fn api_url(plane: &LivePlane) -> String {
    format!("http://{}", plane.app.addr)
}

/// Active aliases of `frontend` whose name contains `part`.
async fn active(plane: &LivePlane, part: &str) -> usize {
    let path = format!("/api/admin/aliases?context=frontend&active=true&q={part}");
    let (status, body) = plane.app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().len()
}

/// Stops the edges and the publisher (awaited, so nothing writes
/// afterwards), then removes this plane's Redis keys; the database goes
/// with the app.
async fn shut(mut plane: LivePlane, edges: Vec<SyncEdge>) {
    drop(edges);
    plane.stop_publisher().await;
    forget(&plane.keys).await;
}

/// Deletes a prefix's keys until they stay deleted: an edge told to stop
/// may still land the heartbeat it had in flight (every 200 ms in the sync
/// rig, and the rig keeps no handle to await its task), so the keys must
/// stay absent for longer than one heartbeat interval.
async fn forget(keys: &RedisKeys) {
    let fake =
        FakePublisher { keys: keys.clone(), redis: nexus_harness::connect().await, epoch: 0 };
    let all = vec![keys.snapshot(), keys.head(), keys.deltas(), keys.edges()];
    let deadline = Instant::now() + nexus_harness::PATIENCE;
    let mut clean_since = Instant::now();
    loop {
        let left: i64 = fake.redis.exists(all.clone()).await.unwrap();
        if left > 0 {
            fake.cleanup().await;
            clean_since = Instant::now();
        } else if clean_since.elapsed() > Duration::from_millis(300) {
            return;
        }
        assert!(Instant::now() < deadline, "keys of {} keep coming back", keys.prefix());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a run of the binary left: exit code, stdout, stderr, JSON report.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Value,
}

async fn probe(args: Vec<String>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("prop.json");
    let mut all = vec!["propagation".to_owned(), "--report".to_owned()];
    all.push(report.display().to_string());
    all.extend(args);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_nexus-loadtest")).args(all).output()
    })
    .await
    .unwrap()
    .unwrap();
    let report = std::fs::read_to_string(&report)
        .map_or(Value::Null, |text| serde_json::from_str(&text).unwrap());
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

fn args(plane: &LivePlane, edges: &[String], rest: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--control-plane".to_owned(),
        api_url(plane),
        "--token".to_owned(),
        plane.app.admin.clone(),
    ];
    for e in edges {
        a.extend(["--edge".to_owned(), e.clone()]);
    }
    a.extend(rest.iter().map(|s| (*s).to_owned()));
    a
}

fn edge_url(e: &SyncEdge) -> String {
    format!("http://{}", e.addr)
}

/// A loopback URL nothing listens on (bound, then released).
fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Percentiles present, above zero and in order.
fn assert_ordered(latency: &Value) {
    let p: Vec<f64> = ["p50", "p90", "p99", "p999", "max"].iter().map(|k| f(&latency[k])).collect();
    assert!(p[0] > 0.0, "p50 must be > 0: {latency}");
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "percentiles out of order: {latency}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_shows_on_both_edges_and_the_report_says_so() {
    let plane = LivePlane::start("nexus-probe-test").await;
    let edges = vec![seeded_edge(&plane).await, seeded_edge(&plane).await];
    let urls: Vec<String> = edges.iter().map(edge_url).collect();

    let run = probe(args(
        &plane,
        &urls,
        &["--writes", "30", "--rate", "40", "--timeout", "5s", "--poll-interval", "0.5ms"],
    ))
    .await;
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    // The table, measured not asserted (see it with --nocapture).
    println!("{}", run.stdout);
    let r = &run.report;
    assert_eq!(r["mode"], "propagation");
    assert_eq!((r["writes"].as_u64(), r["committed"].as_u64()), (Some(30), Some(30)));
    assert_eq!(r["write_errors"], 0);
    assert_eq!((r["requests"].as_u64(), r["visible"].as_u64()), (Some(60), Some(60)));
    assert_eq!((r["errors"].as_u64(), r["timeouts"].as_u64()), (Some(0), Some(0)));
    assert_eq!(r["success"], true);
    assert!(r["time_origin"].as_str().unwrap().contains("response"));
    for key in ["latency_ms", "latency_from_sent_ms", "all_edges_latency_ms", "write_latency_ms"] {
        assert_ordered(&r[key]);
    }
    // Measured from the request, a write can only take longer.
    assert!(f(&r["latency_from_sent_ms"]["p50"]) >= f(&r["latency_ms"]["p50"]));
    assert!(f(&r["all_edges_latency_ms"]["max"]) >= f(&r["latency_ms"]["p50"]));
    let per_edge = r["per_edge"].as_object().unwrap();
    assert_eq!(per_edge.len(), 2);
    for url in &urls {
        let e = &per_edge[url];
        assert_eq!((e["requests"].as_u64(), e["visible"].as_u64()), (Some(30), Some(30)), "{e}");
        assert_eq!((e["timeouts"].as_u64(), e["errors"].as_u64()), (Some(0), Some(0)), "{e}");
        assert_ordered(&e["latency_ms"]);
        assert!(run.stdout.contains(url.as_str()), "{}", run.stdout);
    }
    assert!(run.stdout.contains("result      ok"), "{}", run.stdout);
    // Cleaned up: nothing the run wrote is still active.
    let prefix = r["alias_prefix"].as_str().unwrap().to_owned();
    assert!(prefix.starts_with("probe-"), "{prefix}");
    assert_eq!(active(&plane, &prefix).await, 0);

    // Updates: 3 aliases, each rewritten in turn; kept afterwards.
    let run = probe(args(
        &plane,
        &urls,
        &["--writes", "12", "--rate", "40", "--aliases", "3", "--keep", "--timeout", "5s"],
    ))
    .await;
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(
        (run.report["committed"].as_u64(), run.report["visible"].as_u64()),
        (Some(12), Some(24))
    );
    let prefix = run.report["alias_prefix"].as_str().unwrap().to_owned();
    assert_eq!(active(&plane, &prefix).await, 3);
    // Each edge resolves the last canonical written to each alias.
    for e in &edges {
        let c = e.canonical("frontend", &format!("{prefix}2")).await;
        assert!(c.as_ref().is_some_and(|c| c.ends_with("/11")), "{prefix}2 on {}: {c:?}", e.id);
    }
    shut(plane, edges).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_that_does_not_sync_times_out_and_fails_the_run() {
    let plane = LivePlane::start("nexus-probe-test").await;
    let good = seeded_edge(&plane).await;
    // A loaded edge on another Redis prefix: it answers, it never syncs.
    let other = FakePublisher::new().await;
    other
        .publish_snapshot(
            &other.snapshot(1, vec![rec("frontend", "elsewhere", "https://nexus.com/e", 1)]),
        )
        .await;
    let stuck = SyncEdge::start(sync_config(&other.keys, &redis_url(), None)).await;
    wait_until("stuck edge loaded", || async { stuck.state.is_loaded() }).await;
    let (good_url, stuck_url) = (edge_url(&good), edge_url(&stuck));

    let run = probe(args(
        &plane,
        &[good_url.clone(), stuck_url.clone()],
        &["--writes", "10", "--rate", "50", "--timeout", "2s"],
    ))
    .await;
    assert_eq!(run.code, Some(2), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let r = &run.report;
    assert_eq!(r["success"], false);
    assert_eq!((r["committed"].as_u64(), r["requests"].as_u64()), (Some(10), Some(20)));
    assert_eq!((r["visible"].as_u64(), r["timeouts"].as_u64()), (Some(10), Some(10)));
    assert_eq!(
        (r["errors"].as_u64(), r["errors_by_kind"]["timeout"].as_u64()),
        (Some(10), Some(10))
    );
    let (g, s) = (&r["per_edge"][&good_url], &r["per_edge"][&stuck_url]);
    assert_eq!((g["visible"].as_u64(), g["timeouts"].as_u64()), (Some(10), Some(0)), "{g}");
    assert_eq!((s["visible"].as_u64(), s["timeouts"].as_u64()), (Some(0), Some(10)), "{s}");
    assert_ordered(&g["latency_ms"]);
    // Nothing became visible on the stuck edge, so it has no latency and
    // no write was visible everywhere.
    assert_eq!(f(&s["latency_ms"]["max"]), 0.0);
    assert_eq!(f(&r["all_edges_latency_ms"]["max"]), 0.0);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(run.stderr.contains("not every write was visible"), "{}", run.stderr);
    assert_eq!(active(&plane, r["alias_prefix"].as_str().unwrap()).await, 0);
    shut(plane, vec![good]).await;
    drop(stuck);
    forget(&other.keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_stops_before_measuring_with_a_clear_message() {
    let plane = LivePlane::start("nexus-probe-test").await;
    let edge = seeded_edge(&plane).await;
    let good = vec![edge_url(&edge)];
    let refused = |run: &Run, needle: &str| {
        assert_eq!(run.code, Some(1), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(needle), "wanted {needle:?} in:\n{}", run.stderr);
        assert_eq!(run.report, Value::Null, "no report for a run that did not happen");
    };

    let mut unreachable = args(&plane, &good, &["--writes", "3"]);
    unreachable[1] = closed_url();
    refused(&probe(unreachable).await, "control plane unreachable");

    let mut bad_token = args(&plane, &good, &["--writes", "3"]);
    bad_token[3] = "not-a-token".to_owned();
    refused(&probe(bad_token).await, "refused the token (401)");

    let run = probe(args(&plane, &[good[0].clone(), closed_url()], &["--writes", "3"])).await;
    refused(&run, "not answering");

    // Governance refuses the canonical host: the first write says why and
    // the run stops there instead of failing every write.
    let run =
        probe(args(&plane, &good, &["--writes", "50", "--canonical-base", "https://evil.example"]))
            .await;
    refused(&run, "governance_violation");

    let run = probe(args(&plane, &good, &["--writes", "0"])).await;
    refused(&run, "--writes must be at least 1");
    assert_eq!(active(&plane, "probe-").await, 0);
    shut(plane, vec![edge]).await;
}
