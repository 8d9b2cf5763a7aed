//! The `nexus-edge` binary: refuses to start without SECRET_KEY, reloads on
//! SIGHUP, drains and exits on SIGTERM.

mod process;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use process::Edge;

fn edge(file: &std::path::Path) -> Command {
    let mut c = process::command();
    c.arg("--aliases-file").arg(file);
    c
}

fn status_of(addr: SocketAddr, target: &str) -> u16 {
    let url = format!("http://{addr}/api/aliases/resolve/{target}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { reqwest::get(url).await.map_or(0, |r| r.status().as_u16()) })
}

#[test]
fn refuses_to_start_without_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, "aliases: []\n").unwrap();
    let out = edge(&file).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SECRET_KEY"), "{stderr}");
}

#[test]
fn sighup_reloads_and_sigterm_stops() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aliases.yaml");
    let v1 = "aliases:\n  - context: frontend\n    alias: one\n    canonical: https://x/1\n";
    std::fs::write(&file, v1).unwrap();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut running = Edge::start(edge(&file).env("EDGE_AUTH", "off"));
    let addr: SocketAddr = running.wait_for("listening", "addr").0.parse().unwrap();
    assert_eq!(status_of(addr, "frontend/one"), 200);
    assert_eq!(status_of(addr, "frontend/two"), 404);

    // Same length and modification time: the poller cannot see the change,
    // only SIGHUP can.
    let v2 = v1.replace("one", "two");
    std::fs::write(&file, &v2).unwrap();
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status_of(addr, "frontend/two"), 404, "poller should not have seen the change");
    running.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(addr, "frontend/two") != 200 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status_of(addr, "frontend/one"), 404);

    running.signal("-TERM");
    running.exits_cleanly();
}
