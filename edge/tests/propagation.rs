//! End to end: the real control plane (the workspace's harness: a fresh
//! PostgreSQL database per test, the API on port 0), its publisher on a
//! random Redis prefix, and several edges on port 0 syncing from it.
//!
//! The figures printed by `commit_to_visible_on_every_edge` are measured,
//! not asserted (run with `--nocapture` to see them).

use std::time::{Duration, Instant};

use nexus_protocol::keys::RedisKeys;
use reqwest::StatusCode;
use serde_json::json;

use nexus_harness::LivePlane;
use nexus_harness::{FakePublisher, SyncEdge, redis_url, sync_config, wait_until};

async fn wait_all(edges: &[SyncEdge], version: u64) {
    for e in edges {
        wait_until(&format!("{} at version {version}", e.id), || async {
            e.state.is_loaded() && e.state.version() >= version
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_deactivate_reach_every_edge_and_survive_the_control_plane() {
    let mut plane = LivePlane::start("nexus-e2e").await;
    let edges = vec![plane.edge().await, plane.edge().await, plane.edge().await];
    let v =
        plane.create("frontend", "user-profile", "https://api.nexus.com/v1/users/profile").await;
    wait_all(&edges, v).await;
    for e in &edges {
        let (status, headers, body) = e.get("/api/aliases/resolve/frontend/user-profile").await;
        assert_eq!(status, 200);
        assert_eq!(body["canonical_name"], "https://api.nexus.com/v1/users/profile");
        assert_eq!(headers["x-nexus-version"], v.to_string().as_str());
    }

    let (status, body) = plane
        .app
        .put(
            "/api/admin/aliases/frontend/user-profile",
            &json!({"canonical": "https://api.nexus.com/v2/users/profile"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_all(&edges, body["version"].as_u64().unwrap()).await;
    for e in &edges {
        let c = e.canonical("frontend", "user-profile").await;
        assert_eq!(c.as_deref(), Some("https://api.nexus.com/v2/users/profile"));
    }

    plane.create("backend", "billing", "https://api.nexus.com/v1/billing").await;
    let (status, _) = plane.app.delete("/api/admin/aliases/frontend/user-profile").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, record) = plane.app.get("/api/admin/aliases/frontend/user-profile").await;
    wait_all(&edges, record["version"].as_u64().unwrap()).await;
    for e in &edges {
        assert_eq!(e.canonical("frontend", "user-profile").await, None);
        assert!(e.canonical("backend", "billing").await.is_some());
    }

    // The fleet view lists every edge at the head.
    let head = edges[0].state.version();
    wait_until("fleet view", || async {
        let (_, fleet) = plane.app.get("/api/admin/edges").await;
        let text = fleet.to_string();
        edges.iter().all(|e| text.contains(&e.id)) && text.contains(&format!("{head}"))
    })
    .await;

    // Control plane gone: edges keep serving, and a new edge starts from
    // what Redis holds.
    plane.stop_publisher().await;
    let keys = plane.keys.clone();
    drop(plane);
    // Two more checks each: every edge has looked at Redis since the
    // control plane went away, and still serves.
    for e in &edges {
        e.wait_checks(2).await;
    }
    for e in &edges {
        assert!(e.canonical("backend", "billing").await.is_some());
    }
    let late = SyncEdge::start(sync_config(&keys, &redis_url(), None)).await;
    late.wait_version(edges[0].state.epoch(), head).await;
    assert!(late.canonical("backend", "billing").await.is_some());
    assert_eq!(late.canonical("frontend", "user-profile").await, None);
    cleanup(&keys).await;
}

/// Measures commit → visible on all edges over a few hundred writes, and
/// convergence after the edges' pub/sub connections are cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_to_visible_on_every_edge() {
    let plane = LivePlane::start("nexus-e2e").await;
    let edges = vec![plane.edge().await, plane.edge().await, plane.edge().await];
    let v = plane.create("frontend", "warm-up", "https://api.nexus.com/w").await;
    wait_all(&edges, v).await;

    let writes = 300;
    let mut lags = Vec::with_capacity(writes);
    for i in 0..writes {
        let v = plane.create("frontend", &format!("a{i}"), "https://api.nexus.com/a").await;
        // The response comes after the commit: from here to all edges.
        let t = Instant::now();
        // Woken by each edge's applier, so the figure is not a polling period.
        for e in &edges {
            let mut progress = e.progress.clone();
            let arrived = async { progress.wait_for(|s| s.version >= v).await.is_ok() };
            let left = Duration::from_secs(10).saturating_sub(t.elapsed());
            let arrived = tokio::time::timeout(left, arrived).await;
            assert!(arrived == Ok(true), "write {i} never arrived");
        }
        lags.push(t.elapsed());
    }
    lags.sort_unstable();
    let pct = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
    println!(
        "commit→visible on all 3 edges over {writes} writes: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        lags[lags.len() - 1]
    );

    // Cut every edge's pub/sub connection, then write at once.
    let fake =
        FakePublisher { keys: plane.keys.clone(), redis: nexus_harness::connect().await, epoch: 0 };
    let mut cuts = Vec::new();
    for i in 0..5 {
        for e in &edges {
            // Once it is back from the previous cut.
            wait_until("subscriber connected", || async {
                fake.kill_client(&e.subscriber).await == 1
            })
            .await;
        }
        let t = Instant::now();
        let v = plane.create("backend", &format!("cut{i}"), "https://api.nexus.com/c").await;
        wait_all(&edges, v).await;
        cuts.push(t.elapsed());
    }
    println!("write right after a pub/sub cut, visible on all edges after: {cuts:?}");
    for e in &edges {
        assert!(e.canonical("backend", "cut4").await.is_some());
    }
    cleanup(&plane.keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_registry_stays_fresh_and_a_silent_leader_leaves_edges_stale() {
    // The real publisher signs a statement of the head every 2 s even when
    // nothing changes; an edge with a 3 s bound must stay fresh through a
    // quiet spell, and turn stale once the leader falls silent while Redis
    // keeps answering the same head.
    let mut plane = LivePlane::start("nexus-stale-test").await;
    let mut config = sync_config(&plane.keys, &redis_url(), None);
    config.sync.max_staleness = Duration::from_secs(3);
    let edge = SyncEdge::start(config).await;
    let v = plane.create("frontend", "quiet", "https://api.nexus.com/q").await;
    wait_all(std::slice::from_ref(&edge), v).await;
    let health = || async { edge.get("/api/aliases/status").await.2["status"]["health"].clone() };
    // 25 checks at 200 ms: 5 s of nothing but statements, past the bound.
    for _ in 0..5 {
        edge.wait_checks(5).await;
        assert_eq!(health().await, "healthy", "a quiet registry is not stale");
    }
    plane.stop_publisher().await;
    let silent = Instant::now();
    wait_until("the edge reports stale", || async { health().await == "stale" }).await;
    let (status, headers, _) = edge.get("/api/aliases/resolve/frontend/quiet").await;
    assert_eq!(status, 200, "still serving");
    assert!(headers.get("x-nexus-stale").is_some());
    println!("silent leader: stale {:?} after the publisher stopped (bound 3 s)", silent.elapsed());
    cleanup(&plane.keys).await;
}

async fn cleanup(keys: &RedisKeys) {
    FakePublisher { keys: keys.clone(), redis: nexus_harness::connect().await, epoch: 0 }
        .cleanup()
        .await;
}
