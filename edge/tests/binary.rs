//! The `nexus-edge` binary: refuses to start without SECRET_KEY, reloads on
//! SIGHUP, drains and exits on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nexus-edge");

fn edge(file: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--aliases-file")
        .arg(file)
        .env_clear()
        .env("EDGE_HTTP_ADDR", "127.0.0.1:0")
        .env("EDGE_WORKERS", "1")
        .env("NO_COLOR", "1")
        .env("LOG_LEVEL", "info");
    c
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").arg(sig).arg(child.id().to_string()).status().unwrap();
    assert!(ok.success());
}

/// Reads the log until the "listening" line and returns the address.
fn listening_addr(child: &mut Child) -> SocketAddr {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("listening")) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("edge did not log its address");
    addr.parse().unwrap()
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
    let mut child = edge(&file)
        .env("EDGE_AUTH", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child);
    assert_eq!(status_of(addr, "frontend/one"), 200);
    assert_eq!(status_of(addr, "frontend/two"), 404);

    // Same length and modification time: the poller cannot see the change,
    // only SIGHUP can.
    let v2 = v1.replace("one", "two");
    std::fs::write(&file, &v2).unwrap();
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status_of(addr, "frontend/two"), 404, "poller should not have seen the change");
    signal(&child, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(addr, "frontend/two") != 200 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status_of(addr, "frontend/one"), 404);

    signal(&child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "edge did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
