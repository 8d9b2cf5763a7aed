//! Hostile or oversized input: refused with the right status, and never
//! takes the server down.

mod common;

use std::time::Duration;

use common::{Options, YAML, spawn_edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn health_ok(addr: std::net::SocketAddr) -> bool {
    let url = format!("http://{addr}/api/aliases/health");
    reqwest::get(url).await.is_ok_and(|r| r.status() == 200)
}

/// Writes `bytes` on a fresh connection and returns what comes back before
/// the server closes it (or 2 s pass).
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn long_uris_and_headers_are_refused() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let c = reqwest::Client::new();
    let long = edge.url(&format!("/api/aliases/resolve/frontend/{}", "a".repeat(3000)));
    let resp = c.get(&long).send().await.unwrap();
    assert_eq!(resp.status(), 414);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "uri_too_long");
    // Far past the read buffer: hyper refuses the head itself.
    let huge = edge.url(&format!("/api/aliases/resolve/frontend/{}", "a".repeat(40_000)));
    let status = c.get(&huge).send().await.unwrap().status().as_u16();
    assert!(matches!(status, 414 | 431), "{status}");
    let resp = c
        .get(edge.url("/api/aliases/health"))
        .header("x-padding", "p".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    assert!(health_ok(edge.addr).await);
}

#[tokio::test]
async fn garbage_bytes_do_not_kill_the_server() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..50 {
        // xorshift: reproducible noise without another dependency.
        let bytes: Vec<u8> = (0..(64 + round * 97))
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        raw(edge.addr, &bytes).await;
    }
    for probe in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"[..],
        b"GET /api/aliases/resolve/\xff\xfe/x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x08\x00\x00\x00\x00\x00garbage",
        b"GET /api/aliases/resolve/%00/%2e%2e HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        raw(edge.addr, probe).await;
    }
    let reply = raw(
        edge.addr,
        b"GET /api/aliases/resolve/a/%2e%2e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with(b"HTTP/1.1 401"), "{}", String::from_utf8_lossy(&reply));
    assert!(health_ok(edge.addr).await);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_counted() {
    let edge = spawn_edge(YAML, Options { max_connections: 1, ..Options::default() }).await;
    let mut held = TcpStream::connect(edge.addr).await.unwrap();
    held.write_all(b"GET /api/aliases/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = held.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // The held connection is open (keep-alive); the next one is refused.
    let reply = raw(edge.addr, b"GET /api/aliases/health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    assert_eq!(edge.app.metrics.connections_refused.get(), 1);
    drop(held);
    common::wait_until("the place to free up", || async { health_ok(edge.addr).await }).await;
}

#[tokio::test]
async fn slow_clients_are_closed_at_the_deadline() {
    use nexus_edge::deadline::{CHECK_EVERY, REQUEST_DEADLINE};
    let edge = spawn_edge(YAML, Options::default()).await;
    // Slowloris: half a request head, then silence.
    let mut slow = TcpStream::connect(edge.addr).await.unwrap();
    slow.write_all(b"GET /api/aliases/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // A client that is answered keeps its connection until it falls silent.
    let mut busy = TcpStream::connect(edge.addr).await.unwrap();
    busy.write_all(b"GET /api/aliases/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    assert!(busy.read(&mut buf).await.unwrap() > 0);

    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let limit = REQUEST_DEADLINE + 3 * CHECK_EVERY;
    let closed = tokio::time::timeout(limit, slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a trickling client is still connected after {limit:?}");
    assert!(started.elapsed() >= REQUEST_DEADLINE - CHECK_EVERY, "closed too early");
    assert!(rest.is_empty(), "nothing is answered to half a head");
    assert!(health_ok(edge.addr).await);
}
