//! The edge over QUIC (`nexus-resolve/1`), through the real endpoint on a
//! UDP port 0 and the client library: every answer, pipelining, tokens,
//! malformed and oversized frames, the connection cap, metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use nexus_edge::app::App;
use nexus_edge::quic;
use nexus_edge::quic_client::{Client, ClientError, Trust};
use nexus_harness::{Options, TestEdge, YAML, spawn_edge};
use nexus_protocol::quic::{ALPN, MAX_FRAME_LEN, Reply, Request, Status, decode_reply};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::watch;

/// A QUIC endpoint for `app` on 127.0.0.1:0 with a self-signed certificate;
/// it stops when the returned sender is dropped.
fn spawn_quic(app: Arc<App>) -> (SocketAddr, watch::Sender<bool>) {
    let (addr, stop, _) = spawn_quic_with_cert(app);
    (addr, stop)
}

/// [`spawn_quic`], also returning the certificate it serves.
fn spawn_quic_with_cert(
    app: Arc<App>,
) -> (SocketAddr, watch::Sender<bool>, CertificateDer<'static>) {
    let (tls, pem) = quic::cert::self_signed().unwrap();
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let config = quic::server_config(&tls).unwrap();
    let endpoint = quic::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let (stop, mut rx) = watch::channel(false);
    tokio::spawn(quic::serve(endpoint, app, async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    (addr, stop, cert)
}

/// A bare quinn connection offering `alpn`, trusting `cert`; the endpoint
/// comes back too, as dropping it would end the connection.
async fn raw_connect(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    alpn: &[u8],
) -> (Result<quinn::Connection, quinn::ConnectionError>, quinn::Endpoint) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
    ));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let connecting = endpoint.connect_with(config, addr, "localhost").unwrap();
    (connecting.await, endpoint)
}

/// The bare JWT (no `Bearer `) for `contexts`.
fn token(edge: &TestEdge, contexts: &[&str]) -> String {
    edge.bearer(contexts).trim_start_matches("Bearer ").to_owned()
}

async fn connect(addr: SocketAddr, token: Option<&str>) -> Result<Client, ClientError> {
    Client::connect(addr, "localhost", &Trust::Insecure, token).await
}

#[tokio::test]
async fn resolve_answers_every_status() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let (addr, _stop) = spawn_quic(edge.app.clone());
    let client = connect(addr, Some(&token(&edge, &["*"]))).await.unwrap();

    let a = client.resolve("frontend", "user-profile").await.unwrap();
    assert_eq!(a.status, Status::Ok);
    assert_eq!(a.canonical(), Some("https://api.nexus.com/v1/users/profile"));
    assert_eq!(a.version, 1);
    // Names are case-folded by the same rule as over HTTP.
    let folded = client.resolve("Frontend", "User-Profile").await.unwrap();
    assert_eq!(folded.canonical(), a.canonical());
    for (context, alias, status, code) in [
        ("frontend", "nope", Status::NotFound, "not_found"),
        ("frontend", "old-promo", Status::NotFound, "not_found"),
        ("backend", "retired", Status::NotFound, "not_found"),
        ("frontend", "bad name", Status::BadRequest, "bad_request"),
        ("frontend", "a/b", Status::BadRequest, "bad_request"),
        ("unknown-context", "user-profile", Status::BadRequest, "unknown_context"),
    ] {
        let a = client.resolve(context, alias).await.unwrap();
        assert_eq!((a.status, a.text.as_str()), (status, code), "{context}/{alias}: {a:?}");
        assert!(!a.message.is_empty() && a.canonical().is_none());
    }
    let text = edge.app.metrics.encode();
    assert!(text.contains("nexus_edge_resolve_total{outcome=\"ok\"} 2"), "{text}");
    assert!(text.contains("nexus_edge_resolve_total{outcome=\"not_found\"} 3"), "{text}");
    assert!(text.contains("nexus_edge_resolve_total{outcome=\"bad_request\"} 3"), "{text}");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let (addr, _stop) = spawn_quic(edge.app.clone());
    let client = connect(addr, Some(&token(&edge, &["*"]))).await.unwrap();
    let aliases = [("frontend", "user-profile"), ("backend", "billing"), ("frontend", "nope")];
    let mut pipeline = client.pipeline().await.unwrap();
    for i in 0..3000 {
        let (c, a) = aliases[i % aliases.len()];
        pipeline.send(c, a).unwrap();
    }
    pipeline.flush().await.unwrap();
    assert_eq!(pipeline.in_flight(), 3000);
    for i in 0..3000u64 {
        let a = pipeline.recv().await.unwrap();
        assert_eq!(a.id, i);
        let want = match i % 3 {
            0 => Some("https://api.nexus.com/v1/users/profile"),
            1 => Some("https://api.nexus.com/v1/billing"),
            _ => None,
        };
        assert_eq!(a.canonical(), want, "answer {i}");
    }
    // Many pipelines share the connection (and its token) concurrently.
    let client = Arc::new(client);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut p = client.pipeline().await.unwrap();
                for _ in 0..50 {
                    let a = p.resolve("backend", "billing").await.unwrap();
                    assert_eq!(a.status, Status::Ok);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn tokens_are_enforced_per_connection() {
    let edge = spawn_edge(YAML, Options::default()).await;
    let (addr, _stop) = spawn_quic(edge.app.clone());

    // No token: 401, like HTTP without a header.
    let anonymous = connect(addr, None).await.unwrap();
    let a = anonymous.resolve("frontend", "user-profile").await.unwrap();
    assert_eq!((a.status, a.text.as_str()), (Status::Unauthorized, "unauthorized"));

    // A token for another context: 403 there, 200 in its own.
    let backend = connect(addr, Some(&token(&edge, &["backend"]))).await.unwrap();
    let a = backend.resolve("frontend", "user-profile").await.unwrap();
    assert_eq!((a.status, a.text.as_str()), (Status::Forbidden, "forbidden"));
    assert_eq!(backend.resolve("backend", "billing").await.unwrap().status, Status::Ok);

    // A token signed with another secret is refused at AUTH...
    let forged = nexus_protocol::TokenSigner::hs256(b"another-secret").mint(
        "x",
        nexus_protocol::Role::Admin,
        nexus_protocol::ContextScope::All,
        chrono::Utc::now().timestamp(),
        60,
    );
    match connect(addr, Some(&forged)).await {
        Err(ClientError::Unauthorized(message)) => assert!(!message.is_empty()),
        other => panic!("forged token accepted: {other:?}"),
    }
    // ...and a connection that keeps it gets 401 on every resolve.
    let c = connect(addr, None).await.unwrap();
    assert!(matches!(c.authenticate(&forged).await, Err(ClientError::Unauthorized(_))));
    assert_eq!(c.resolve("backend", "billing").await.unwrap().status, Status::Unauthorized);
    // AUTH again replaces the token for the whole connection.
    c.authenticate(&token(&edge, &["*"])).await.unwrap();
    assert_eq!(c.resolve("backend", "billing").await.unwrap().status, Status::Ok);

    let text = edge.app.metrics.encode();
    assert!(text.contains("nexus_edge_resolve_total{outcome=\"unauthorized\"} 2"), "{text}");
    assert!(text.contains("nexus_edge_resolve_total{outcome=\"forbidden\"} 1"), "{text}");
}

#[tokio::test]
async fn malformed_and_oversized_frames_end_the_stream_not_the_edge() {
    let edge = spawn_edge(YAML, Options { auth: false, ..Options::default() }).await;
    let (addr, _stop) = spawn_quic(edge.app.clone());
    let client = connect(addr, None).await.unwrap();

    // A length prefix over the limit: refused before the body is sent, with
    // the requests before it still answered.
    let mut p = client.pipeline().await.unwrap();
    p.send("backend", "billing").unwrap();
    p.write_raw(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes()).await.unwrap();
    assert_eq!(p.recv().await.unwrap().status, Status::Ok);
    match p.recv().await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, "frame_too_large"),
        other => panic!("oversized frame not refused: {other:?}"),
    }

    // A frame of an unknown kind, and one whose fields overrun it.
    for raw in [vec![0, 0, 0, 1, 0x7f], vec![0, 0, 0, 4, 0x02, 0, 0, 0]] {
        let mut p = client.pipeline().await.unwrap();
        p.write_raw(&raw).await.unwrap();
        match p.recv().await {
            Err(ClientError::Closed { code, .. }) => assert_eq!(code, "malformed_frame"),
            other => panic!("{raw:?} not refused: {other:?}"),
        }
    }

    // A full-size frame is fine: it is a (bad) token, answered 200 with auth off.
    let mut p = client.pipeline().await.unwrap();
    // kind (1) + id (8) + token length (2) + token = MAX_FRAME_LEN.
    let big = "t".repeat(MAX_FRAME_LEN - 11);
    p.push(|id| Request::Auth { id, token: &big }).unwrap();
    p.flush().await.unwrap();
    assert_eq!(p.recv().await.unwrap().status, Status::Ok);

    // The connection and the edge still answer.
    assert_eq!(client.resolve("backend", "billing").await.unwrap().status, Status::Ok);
    let other = connect(addr, None).await.unwrap();
    assert_eq!(other.resolve("backend", "billing").await.unwrap().status, Status::Ok);
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_counted() {
    let edge =
        spawn_edge(YAML, Options { auth: false, max_connections: 1, ..Options::default() }).await;
    let (addr, _stop) = spawn_quic(edge.app.clone());
    let first = connect(addr, None).await.unwrap();
    assert_eq!(first.resolve("backend", "billing").await.unwrap().status, Status::Ok);
    assert!(connect(addr, None).await.is_err(), "a second connection got past a cap of 1");
    assert_eq!(edge.app.metrics.connections_refused.get(), 1);
    // The first is unaffected, and its place frees when it closes.
    assert_eq!(first.resolve("backend", "billing").await.unwrap().status, Status::Ok);
    first.close();
    nexus_harness::wait_until("the place to free", || async { edge.app.connections.open() == 0 })
        .await;
    let again = connect(addr, None).await.unwrap();
    assert_eq!(again.resolve("backend", "billing").await.unwrap().status, Status::Ok);
}

#[tokio::test]
async fn certificates_are_checked_and_only_our_alpn_is_spoken() {
    let edge = spawn_edge(YAML, Options { auth: false, ..Options::default() }).await;
    let (addr, _stop, cert) = spawn_quic_with_cert(edge.app.clone());
    // Trusting the edge's certificate as a root works without `insecure`.
    let trusted = Trust::Roots(vec![cert.clone()]);
    let client = Client::connect(addr, "localhost", &trusted, None).await.unwrap();
    assert_eq!(client.resolve("backend", "billing").await.unwrap().status, Status::Ok);
    // Another name than the certificate's is refused.
    assert!(Client::connect(addr, "edge.example", &trusted, None).await.is_err());

    // A client speaking another protocol is refused, the same client with
    // our ALPN is not.
    let attempt = |alpn: &'static [u8]| raw_connect(addr, &cert, alpn);
    assert!(attempt(ALPN).await.0.is_ok());
    assert!(attempt(b"h3").await.0.is_err(), "an h3 client was let in");
}

#[tokio::test]
async fn streams_per_connection_are_capped() {
    let edge = spawn_edge(YAML, Options { auth: false, ..Options::default() }).await;
    let (addr, _stop) = spawn_quic(edge.app.clone());
    let client = connect(addr, None).await.unwrap();
    let mut open = Vec::new();
    for _ in 0..quic::MAX_STREAMS {
        let mut p = client.pipeline().await.unwrap();
        assert_eq!(p.resolve("backend", "billing").await.unwrap().status, Status::Ok);
        open.push(p);
    }
    // One more has to wait for a place: the edge grants no more credit.
    let over = tokio::time::timeout(std::time::Duration::from_millis(300), client.pipeline()).await;
    assert!(over.is_err(), "stream {} was opened past the cap", quic::MAX_STREAMS + 1);
    // Ending streams frees places (quinn grants new credit once more than
    // an eighth of the cap is free, so end that many).
    for p in open.drain(..(quic::MAX_STREAMS as usize / 8 + 1)) {
        p.finish();
    }
    let mut p = tokio::time::timeout(std::time::Duration::from_secs(10), client.pipeline())
        .await
        .expect("a freed place was not granted")
        .unwrap();
    assert_eq!(p.resolve("backend", "billing").await.unwrap().status, Status::Ok);
}

#[tokio::test]
async fn a_client_that_reads_late_still_gets_every_answer_in_order() {
    // Far more answers (~2.6 MB) than the edge buffers for a connection
    // (512 KiB send window): the edge must stop reading requests while the
    // client does not read, and carry on where it stopped once it does.
    const N: u64 = 40_000;
    let edge = spawn_edge(YAML, Options { auth: false, ..Options::default() }).await;
    let (addr, _stop, cert) = spawn_quic_with_cert(edge.app.clone());
    let (conn, _endpoint) = raw_connect(addr, &cert, ALPN).await;
    let conn = conn.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let writer = tokio::spawn(async move {
        let mut requests = Vec::new();
        for id in 0..N {
            Request::Resolve { id, context: "backend", alias: "billing" }
                .encode(&mut requests)
                .unwrap();
        }
        send.write_all(&requests).await.unwrap();
        send.finish().unwrap();
        // Keeps the stream open until the answers are read.
        send
    });
    // The window: until the edge has filled what the client takes without
    // reading and then gone quiet. An edge that kept reading would still be
    // granting credit for more requests, and the writer would be done.
    stalled(&conn).await;
    assert!(!writer.is_finished(), "the edge read every request without room to answer them");

    read_answers(&mut recv, N, "https://api.nexus.com/v1/billing").await;
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn answers_held_back_by_flow_control_go_out_when_the_client_reads() {
    // Requests that all arrive at once (~40 KiB, inside the stream window)
    // asking for 4 MB of answers: after the first 512 KiB the edge can only
    // go on when the client's reading makes room, with no new data to wake
    // it up.
    const N: u64 = 2_000;
    let long = format!("https://api.nexus.com/{}", "x".repeat(2_000));
    let yaml = format!("aliases:\n  - context: backend\n    alias: long\n    canonical: {long}\n");
    let edge = spawn_edge(&yaml, Options { auth: false, ..Options::default() }).await;
    let (addr, _stop, cert) = spawn_quic_with_cert(edge.app.clone());
    let (conn, _endpoint) = raw_connect(addr, &cert, ALPN).await;
    let conn = conn.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut requests = Vec::new();
    for id in 0..N {
        Request::Resolve { id, context: "backend", alias: "long" }.encode(&mut requests).unwrap();
    }
    send.write_all(&requests).await.unwrap();
    send.finish().unwrap();
    // Only once the edge is held back: the client's reads must be what
    // wakes it up.
    stalled(&conn).await;
    read_answers(&mut recv, N, &long).await;
}

/// Answer bytes the edge sends at least before it can be held back: its
/// send window (512 KiB). The client takes more unread (quinn's default
/// stream window, 1.25 MB), so the edge stalls a little past that.
const HELD_BACK_AFTER: u64 = 512 * 1024;
/// How long nothing may arrive from the edge for it to count as stalled.
const QUIET: std::time::Duration = std::time::Duration::from_millis(100);

/// Waits until the edge has sent [`HELD_BACK_AFTER`] bytes on `conn` and
/// then nothing for [`QUIET`]: neither answers nor credit for more
/// requests, so it is waiting for the client to read.
async fn stalled(conn: &quinn::Connection) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = conn.stats().udp_rx.bytes;
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let now = conn.stats().udp_rx.bytes;
        if now != seen {
            (seen, since) = (now, tokio::time::Instant::now());
        } else if now >= HELD_BACK_AFTER && since.elapsed() >= QUIET {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the edge never stalled ({now} bytes in)");
    }
}

/// Reads the stream to its end and checks it holds exactly `n` answers,
/// ids 0.., all 200 with `canonical`.
async fn read_answers(recv: &mut quinn::RecvStream, n: u64, canonical: &str) {
    let answers =
        tokio::time::timeout(std::time::Duration::from_secs(30), recv.read_to_end(8 << 20))
            .await
            .expect("the answers stopped coming")
            .unwrap();
    let mut at = 0;
    let mut next = 0;
    while let Some((reply, used)) = decode_reply(&answers[at..]).unwrap() {
        match reply {
            Reply::Answer(a) => assert_eq!((a.id, a.status, a.text), (next, Status::Ok, canonical)),
            other => panic!("answer {next}: {other:?}"),
        }
        next += 1;
        at += used;
    }
    assert_eq!((next, at), (n, answers.len()), "every request answered once, nothing else sent");
}
