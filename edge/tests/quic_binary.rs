//! The `nexus-edge` binary serves QUIC when asked for the development
//! certificate, on the address of `EDGE_QUIC_ADDR`, and stops on SIGTERM.

use std::net::SocketAddr;

use nexus_edge::quic_client::{Client, Trust};
use nexus_protocol::quic::Status;

use nexus_harness::process::EdgeProcess;

#[test]
fn self_signed_quic_resolves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aliases.yaml");
    let yaml = "aliases:\n  - context: frontend\n    alias: one\n    canonical: https://x/1\n";
    std::fs::write(&file, yaml).unwrap();
    let mut running = EdgeProcess::start(
        nexus_harness::process::command()
            .arg("--aliases-file")
            .arg(&file)
            .env("EDGE_QUIC_ADDR", "127.0.0.1:0")
            .env("EDGE_QUIC_SELF_SIGNED", "true")
            .env("EDGE_AUTH", "off"),
    );
    let addr: SocketAddr = running.wait_for("QUIC ready", "udp").0.parse().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answer = rt.block_on(async {
        let client = Client::connect(addr, "localhost", &Trust::Insecure, None).await.unwrap();
        client.resolve("frontend", "one").await.unwrap()
    });
    assert_eq!((answer.status, answer.canonical()), (Status::Ok, Some("https://x/1")));

    running.signal("-TERM");
    running.exits_cleanly();
}
