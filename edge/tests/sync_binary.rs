//! The `nexus-edge` binary in Redis sync mode (`REDIS_URL`, no file): it
//! syncs, persists its last-known-good state, serves that copy when
//! restarted with Redis down, and stays not-ready with neither.

use std::net::SocketAddr;
use std::path::Path;

use nexus_harness::process::EdgeProcess;
use nexus_harness::{FakePublisher, closed_port_url, rec, redis_url, wait_until};

/// The edge syncing from `url` under `prefix`; also the log lines before
/// the one saying where it listens.
fn start(url: &str, prefix: &str, state_dir: &Path) -> (EdgeProcess, SocketAddr, Vec<String>) {
    let running = EdgeProcess::start(
        nexus_harness::process::command()
            .env("REDIS_URL", url)
            // The fake publisher signs with the development key.
            .env("NEXUS_INSECURE_DEV_KEYS", "1")
            .env("NEXUS_REDIS_PREFIX", prefix)
            .env("EDGE_STATE_DIR", state_dir)
            .env("EDGE_CHECK_INTERVAL_MS", "200")
            .env("EDGE_ID", "binary-edge")
            .env("EDGE_AUTH", "off")
            .env("EDGE_QUIC", "off"),
    );
    let (addr, lines) = running.wait_for("listening", "addr");
    (running, addr.parse().unwrap(), lines)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_then_serves_its_disk_copy_with_redis_down_and_stays_not_ready_with_neither() {
    let p = FakePublisher::new().await;
    let records = vec![
        rec("frontend", "user-profile", "https://api.nexus.com/v1/users/profile", 1),
        rec("backend", "billing", "https://api.nexus.com/v1/billing", 1),
    ];
    p.publish_snapshot(&p.snapshot(1, records)).await;
    let dir = tempfile::tempdir().unwrap();

    let (running, addr, log) = start(&redis_url(), p.keys.prefix(), dir.path());
    assert!(log.iter().any(|l| l.contains("DEVELOPMENT key")), "no dev key warning in {log:?}");
    wait_until("ready", || async { get(addr, "/api/aliases/health").await.0 == 200 }).await;
    p.publish_delta(&p.delta(1, vec![rec("system", "late", "https://api.nexus.com/l", 2)], vec![]))
        .await;
    wait_until("delta applied", || async {
        get(addr, "/api/aliases/resolve/system/late").await.0 == 200
    })
    .await;
    wait_until("reported", || async { p.report("binary-edge").await.is_some() }).await;
    wait_until("delta on disk", || async {
        std::fs::metadata(dir.path().join("deltas.log")).is_ok_and(|m| m.len() > 0)
    })
    .await;
    drop(running);

    let (_running, addr, _) = start(&closed_port_url(), p.keys.prefix(), dir.path());
    let (status, body) = get(addr, "/api/aliases/resolve/system/late").await;
    assert_eq!((status, body["canonical_name"].as_str()), (200, Some("https://api.nexus.com/l")));
    assert_eq!(get(addr, "/api/aliases/health").await.0, 200);
    wait_until("degraded from disk", || async {
        let (_, s) = get(addr, "/api/aliases/status").await;
        s["status"]["health"] == "degraded" && s["status"]["source"] == "disk"
    })
    .await;

    let empty = tempfile::tempdir().unwrap();
    let (_running, addr, _) = start(&closed_port_url(), p.keys.prefix(), empty.path());
    assert_eq!(get(addr, "/api/aliases/health").await.0, 503);
    assert_eq!(get(addr, "/api/aliases/resolve/backend/billing").await.0, 503);
    p.cleanup().await;
}
