//! The `nexus-edge` binary: refuses to start without SECRET_KEY (or with one
//! too short), or in sync mode without the state verify key; reloads on
//! SIGHUP, drains and exits on SIGTERM.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use nexus_harness::process::EdgeProcess;

fn edge(file: &std::path::Path) -> Command {
    let mut c = nexus_harness::process::command();
    c.arg("--aliases-file").arg(file);
    c
}

fn status_of(addr: SocketAddr, target: &str) -> u16 {
    let url = format!("http://{addr}/api/aliases/resolve/{target}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { reqwest::get(url).await.map_or(0, |r| r.status().as_u16()) })
}

fn wall_ms() -> i64 {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// When the edge last confirmed its state current (a poll that found the
/// file unchanged, or a load), in wall-clock ms, as bounds `(earliest,
/// latest)`: its status gives the age, not the instant.
fn confirmed_at(addr: SocketAddr) -> (i64, i64) {
    let url = format!("http://{addr}/api/aliases/status");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let before = wall_ms();
    let status: serde_json::Value =
        rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() });
    let after = wall_ms();
    let age_s = status["status"]["state_age_seconds"].as_f64().expect("a loaded state has an age");
    let age_ms = (age_s * 1000.0).round() as i64;
    // One more millisecond each way: both clocks are read truncated.
    (before - age_ms - 1, after - age_ms + 1)
}

/// Waits until the edge confirms its state at a time surely after `t`
/// (wall-clock ms); returns the latest that confirmation can have been.
fn confirmed_after(addr: SocketAddr, t: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (earliest, latest) = confirmed_at(addr);
        if earliest > t {
            return latest;
        }
        assert!(Instant::now() < deadline, "the poller stopped confirming the file");
        std::thread::sleep(Duration::from_millis(20));
    }
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
fn refuses_a_secret_key_too_short_to_be_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, "aliases: []\n").unwrap();
    let out = edge(&file).env("SECRET_KEY", "short-but-set").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SECRET_KEY") && stderr.contains("32"), "{stderr}");
    assert!(!stderr.contains("short-but-set"), "the secret was printed: {stderr}");
}

#[test]
fn refuses_to_sync_without_the_state_verify_key() {
    // Closed by default: no NEXUS_VERIFY_KEY, no start (the development
    // key only with the explicit test switch).
    let closed = || {
        let mut c = nexus_harness::process::command();
        c.env("REDIS_URL", "redis://127.0.0.1:1").env("EDGE_AUTH", "off");
        c
    };
    let out = closed().output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NEXUS_VERIFY_KEY"), "{stderr}");
    let out = closed().env("NEXUS_INSECURE_DEV_KEYS", "maybe").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("NEXUS_INSECURE_DEV_KEYS"));
}

#[test]
fn refuses_to_start_with_a_token_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, "aliases: []\n").unwrap();
    let key = nexus_protocol::signing::SigningKey::from_bytes(&[8; 32]);
    let pem = nexus_protocol::jwk::signing_key_pem(&key);
    let public = nexus_protocol::jwk::public_key_pem(&key.verifying_key());
    let out = edge(&file)
        .env("NEXUS_TOKEN_SIGNING_KEY", &pem)
        .env("NEXUS_TOKEN_VERIFY_KEYS", &public)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NEXUS_TOKEN_SIGNING_KEY") && stderr.contains("never"), "{stderr}");
    assert!(!stderr.contains(pem.lines().nth(1).unwrap()), "the key was printed: {stderr}");
}

#[test]
fn the_start_up_log_and_status_say_which_verification_is_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, "aliases: []\n").unwrap();
    let key = nexus_protocol::signing::SigningKey::from_bytes(&[9; 32]);
    let public = nexus_protocol::jwk::PublicKey::new(key.verifying_key());
    let jwks = nexus_protocol::jwk::jwks(std::slice::from_ref(&public)).to_string();
    let mut cmd = edge(&file);
    cmd.env("NEXUS_TOKEN_VERIFY_KEYS", &jwks).env("EDGE_HTTP_ADDR", "127.0.0.1:0");
    let mut running = EdgeProcess::start(&mut cmd);
    let (mode, seen) = running.wait_for("token verification", "mode");
    assert_eq!(mode, "eddsa");
    let (addr, more) = running.wait_for("listening", "addr");
    let logged = [seen, more].concat().join("\n");
    assert!(!logged.contains("SECRET_KEY is set"), "{logged}");
    let addr: SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status: serde_json::Value = rt.block_on(async {
        let url = format!("http://{addr}/api/aliases/status");
        reqwest::get(url).await.unwrap().json().await.unwrap()
    });
    assert_eq!(status["status"]["auth"]["mode"], "eddsa");
    assert_eq!(status["status"]["auth"]["keys"][0], public.kid.as_str());
    running.signal("-TERM");
    running.exits_cleanly();
}

#[test]
fn sighup_reloads_and_sigterm_stops() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aliases.yaml");
    let v1 = "aliases:\n  - context: frontend\n    alias: one\n    canonical: https://x/1\n";
    std::fs::write(&file, v1).unwrap();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut running = EdgeProcess::start(edge(&file).env("EDGE_AUTH", "off"));
    let addr: SocketAddr = running.wait_for("listening", "addr").0.parse().unwrap();
    assert_eq!(status_of(addr, "frontend/one"), 200);
    assert_eq!(status_of(addr, "frontend/two"), 404);

    // Same length and modification time: the poller cannot see the change,
    // only SIGHUP can.
    let v2 = v1.replace("one", "two");
    std::fs::write(&file, &v2).unwrap();
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
    // The window: two polls after the write. The first confirmation after
    // it may come from a look at the file taken just before it; the second
    // looked after the first, so at the new bytes.
    let written = wall_ms() + 1;
    let first = confirmed_after(addr, written);
    confirmed_after(addr, first);
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
