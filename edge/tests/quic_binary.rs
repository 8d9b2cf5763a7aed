//! The `nexus-edge` binary serves QUIC when asked for the development
//! certificate, on the address of `EDGE_QUIC_ADDR`, and stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use nexus_edge::quic_client::{Client, Trust};
use nexus_protocol::quic::Status;

const BIN: &str = env!("CARGO_BIN_EXE_nexus-edge");

#[test]
fn self_signed_quic_resolves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aliases.yaml");
    let yaml = "aliases:\n  - context: frontend\n    alias: one\n    canonical: https://x/1\n";
    std::fs::write(&file, yaml).unwrap();
    let mut child = Command::new(BIN)
        .arg("--aliases-file")
        .arg(&file)
        .env_clear()
        .env("EDGE_HTTP_ADDR", "127.0.0.1:0")
        .env("EDGE_QUIC_ADDR", "127.0.0.1:0")
        .env("EDGE_QUIC_SELF_SIGNED", "true")
        .env("EDGE_WORKERS", "1")
        .env("EDGE_AUTH", "off")
        .env("NO_COLOR", "1")
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("QUIC ready")
                && let Some(rest) = line.split("udp=").nth(1)
            {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("edge did not log its QUIC address")
        .parse()
        .unwrap();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answer = rt.block_on(async {
        let client = Client::connect(addr, "localhost", &Trust::Insecure, None).await.unwrap();
        client.resolve("frontend", "one").await.unwrap()
    });
    assert_eq!((answer.status, answer.canonical()), (Status::Ok, Some("https://x/1")));

    let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(ok.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "edge exited with {status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "edge did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
