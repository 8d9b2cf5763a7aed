//! Hostile or oversized input: refused with the right status, and never
//! takes the server down.

use std::time::Duration;

use nexus_harness::{Options, TestEdge, YAML, spawn_edge};
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
    nexus_harness::wait_until("the place to free up", || async { health_ok(edge.addr).await })
        .await;
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

/// One raw HTTP/2 frame on stream 0.
fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    frame_on(0, kind, flags, payload)
}

/// One raw HTTP/2 frame on `stream` (below 256).
fn frame_on(stream: u8, kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, stream];
    f.extend_from_slice(payload);
    f
}

/// Sends `bytes` on a new connection and asserts that the edge closed it
/// within 5 s and counted it once more as a `label` flood.
async fn closed_as_flood(edge: &TestEdge, bytes: &[u8], label: &'static str) {
    let before = edge.app.metrics.h2_flood_closed.get_or_create(&[("kind", label)]).get();
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    // The edge may close before it has read everything: a failed write
    // is part of the expected outcome.
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "a {label} flood was still connected after 5 s");
    let counted = edge.app.metrics.h2_flood_closed.get_or_create(&[("kind", label)]).get();
    assert_eq!(counted, before + 1, "{label} flood closures");
}

#[tokio::test]
async fn http2_control_frame_floods_are_closed_and_counted() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let url = edge.url("/api/aliases/resolve/frontend/user-profile");
    let bearer = edge.bearer(&["*"]);
    // A legitimate HTTP/2 client, connected before the floods and after.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    assert_eq!(nexus_harness::get(&h2, &url, Some(&bearer)).await.0, 200);
    for (kind, label, payload) in [(0x4, "settings", &[][..]), (0x6, "ping", &[7; 8][..])] {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for _ in 0..1000 {
            bytes.extend(frame(kind, 0, payload));
        }
        closed_as_flood(&edge, &bytes, label).await;
        assert_eq!(nexus_harness::get(&h2, &url, Some(&bearer)).await.0, 200);
    }
    // A header block that never ends (CVE-2024-27316): closed once it
    // passes twice the header list limit, which is before h2's own limit
    // of five CONTINUATION frames.
    let mut literals = Vec::new();
    while literals.len() + 26 <= 16_000 {
        // Literal without indexing, new name: `x-flood: aaaa...` (16 a's).
        literals.extend([0x00, 7]);
        literals.extend(b"x-flood");
        literals.push(16);
        literals.extend([b'a'; 16]);
    }
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(frame(0x4, 0, &[]));
    // HEADERS on stream 1, END_STREAM without END_HEADERS: `:method GET`.
    bytes.extend(frame_on(1, 0x1, 0x1, &[0x82]));
    for _ in 0..8 {
        bytes.extend(frame_on(1, 0x9, 0, &literals));
    }
    closed_as_flood(&edge, &bytes, "continuation").await;
    assert_eq!(nexus_harness::get(&h2, &url, Some(&bearer)).await.0, 200);
    // Ordinary HTTP/2 use (one SETTINGS, a few requests) is never charged.
    let fresh = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    for _ in 0..150 {
        assert_eq!(nexus_harness::get(&fresh, &url, Some(&bearer)).await.0, 200);
    }
    let text = edge.app.metrics.encode();
    assert!(text.contains("nexus_edge_h2_flood_closed_total{kind=\"settings\"} 1"), "{text}");
}

#[tokio::test]
async fn one_host_cannot_take_every_connection() {
    let opts = Options { max_connections_per_ip: Some(2), ..Options::default() };
    let edge = spawn_edge(YAML, opts).await;
    let from = |ip: [u8; 4]| async move {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind((std::net::Ipv4Addr::from(ip), 0).into()).unwrap();
        s.connect(edge.addr).await.unwrap()
    };
    let health = b"GET /api/aliases/health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = from([127, 0, 0, 1]).await;
        s.write_all(health).await.unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // A third from the same host is closed unanswered...
    let mut third = from([127, 0, 0, 1]).await;
    let _ = third.write_all(health).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), third.read_to_end(&mut out)).await;
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(edge.app.metrics.connections_refused_per_ip.get(), 1);
    // ...while another host is served.
    let mut other = from([127, 0, 0, 2]).await;
    other.write_all(health).await.unwrap();
    let mut buf = [0u8; 512];
    let n = other.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Closing one frees the first host's place.
    held.pop();
    nexus_harness::wait_until("the host's place to free up", || async {
        let mut s = from([127, 0, 0, 1]).await;
        let _ = s.write_all(health).await;
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200"))
    })
    .await;
}
