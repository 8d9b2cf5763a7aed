//! The generator against a synthetic server whose behaviour is known: a
//! fixed delay, given statuses, HTTP/1.1, h2c and HTTP/2 over TLS. Checks
//! what a user reads in the report: counts, error kinds, percentiles.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use nexus_loadtest::driver::{self, Counter, Model, Plan};
use nexus_loadtest::http::{HttpConnector, HttpOptions, Version};
use nexus_loadtest::keyspace::{KeyChoice, Keyspace};
use nexus_loadtest::recorder::Failure;
use nexus_loadtest::report::Report;
use nexus_loadtest::target::Target;
use nexus_loadtest::tls::Trust;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const TOKEN: &str = "test-token";

/// How the synthetic server answers.
#[derive(Clone, Copy)]
struct Behaviour {
    delay: Duration,
    /// Every n-th request (server-wide) gets a 503.
    unavailable_every: Option<u64>,
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    http2: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Seen {
    fn status(&self, code: u16) -> u64 {
        self.statuses.lock().unwrap().get(&code).copied().unwrap_or(0)
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    behaviour: Behaviour,
    seen: Arc<Seen>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = seen.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if req.version() == hyper::Version::HTTP_2 {
        seen.http2.fetch_add(1, Ordering::SeqCst);
    }
    // The delay is the server's behaviour under test, not a wait for state.
    tokio::time::sleep(behaviour.delay).await;
    let authorized = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
    let status = if !authorized {
        StatusCode::UNAUTHORIZED
    } else if req.uri().path().ends_with("/gone") {
        StatusCode::NOT_FOUND
    } else if behaviour.unavailable_every.is_some_and(|k| n.is_multiple_of(k)) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    *seen.statuses.lock().unwrap().entry(status.as_u16()).or_default() += 1;
    let mut resp = Response::new(Full::new(Bytes::from_static(br#"{"canonical_name":"x"}"#)));
    *resp.status_mut() = status;
    Ok(resp)
}

/// Starts the server on port 0; returns its port.
async fn spawn_server(behaviour: Behaviour, tls: Option<TlsAcceptor>) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (seen, tls) = (state.clone(), tls.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, behaviour, seen.clone()));
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = match tls {
                    None => builder.serve_connection(TokioIo::new(tcp), service).await,
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        builder.serve_connection(TokioIo::new(stream), service).await
                    }
                };
            });
        }
    });
    (port, seen)
}

fn tls_acceptor() -> TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

fn keys(aliases: &[&str]) -> Keyspace {
    Keyspace::from_paths(
        aliases.iter().map(|a| format!("/api/aliases/resolve/frontend/{a}")).collect(),
    )
    .unwrap()
}

struct Run {
    target: String,
    version: Version,
    model: Model,
    connections: usize,
    duration: Duration,
    token: Option<&'static str>,
}

async fn run(run: Run, keys: &Keyspace) -> Report {
    let target = Target::parse(&run.target).unwrap();
    let options = HttpOptions {
        target: target.clone(),
        version: run.version,
        token: run.token.map(str::to_owned),
        trust: Some(Trust::Insecure),
        timeout: Duration::from_secs(10),
    };
    let connector = Arc::new(HttpConnector::new(&options, keys).unwrap());
    let plan = Plan {
        model: run.model,
        connections: run.connections,
        duration: run.duration,
        keys: keys.len(),
        choice: KeyChoice::Uniform,
        seed: 42,
    };
    let counter = Arc::new(Counter::default());
    let outcome = driver::run(connector.clone(), &plan, counter.clone()).await.unwrap();
    assert_eq!(counter.get(), outcome.recorder.requests(), "progress counter agrees");
    use nexus_loadtest::transport::Connector;
    Report::new(target.to_string(), connector.name(), &plan, &outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_counts_every_request_and_percentiles_bracket_the_delay() {
    let delay = Duration::from_millis(20);
    let (port, seen) = spawn_server(Behaviour { delay, unavailable_every: None }, None).await;
    let report = run(
        Run {
            target: format!("http://127.0.0.1:{port}"),
            version: Version::Http1,
            model: Model::Closed,
            connections: 4,
            duration: Duration::from_secs(1),
            token: Some(TOKEN),
        },
        &keys(&["a-1", "a-2", "a-3"]),
    )
    .await;
    assert_eq!(report.requests, seen.requests.load(Ordering::SeqCst));
    assert_eq!(report.errors, 0, "{:?}", report.errors_by_kind);
    assert_eq!(report.successes, seen.status(200));
    // 4 connections of one 20 ms request at a time for 1 s: at most 200.
    assert!((40..=204).contains(&report.requests), "requests {}", report.requests);
    let l = &report.latency_ms;
    assert!(l.p50 >= 20.0 && l.p50 < 100.0, "p50 {}", l.p50);
    assert!(l.p90 >= l.p50 && l.p99 >= l.p90 && l.p999 >= l.p99 && l.max >= l.p999);
    assert!(report.rps > 30.0 && report.rps <= 210.0, "rps {}", report.rps);
    assert_eq!(report.transport, "http1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_by_status_over_h2c() {
    let behaviour = Behaviour { delay: Duration::ZERO, unavailable_every: Some(5) };
    let (port, seen) = spawn_server(behaviour, None).await;
    let report = run(
        Run {
            target: format!("http://127.0.0.1:{port}"),
            version: Version::Http2,
            model: Model::Closed,
            connections: 2,
            duration: Duration::from_millis(300),
            token: Some(TOKEN),
        },
        &keys(&["a-1", "gone"]),
    )
    .await;
    let total = seen.requests.load(Ordering::SeqCst);
    assert!(total > 20, "server saw {total}");
    assert_eq!(seen.http2.load(Ordering::SeqCst), total, "all requests over HTTP/2");
    assert_eq!(report.requests, total);
    assert_eq!(report.successes, seen.status(200));
    assert_eq!(report.errors_by_kind.get("status_404").copied(), Some(seen.status(404)));
    assert_eq!(report.errors_by_kind.get("status_503").copied(), Some(seen.status(503)));
    assert_eq!(report.errors, seen.status(404) + seen.status(503));
    assert!(seen.status(404) > 0 && seen.status(503) > 0);
    assert_eq!(report.transport, "h2c");
}

/// A pipelined run (2 connections, `depth` in flight each) against a
/// plain-HTTP synthetic server, with the checks every such run must pass:
/// whole batches, each request counted once with its own status.
async fn pipelined(
    version: Version,
    behaviour: Behaviour,
    depth: usize,
    duration: Duration,
    aliases: &[&str],
) -> (Report, Arc<Seen>) {
    let (port, seen) = spawn_server(behaviour, None).await;
    let report = run(
        Run {
            target: format!("http://127.0.0.1:{port}"),
            version,
            model: Model::Pipelined { depth },
            connections: 2,
            duration,
            token: Some(TOKEN),
        },
        &keys(aliases),
    )
    .await;
    let total = seen.requests.load(Ordering::SeqCst);
    assert_eq!((report.requests, total % depth as u64), (total, 0), "whole batches, all counted");
    assert_eq!(report.successes, seen.status(200));
    assert_eq!(report.errors_by_kind.get("status_503").copied(), Some(seen.status(503)));
    assert_eq!((report.model, report.pipeline), ("pipelined", Some(depth)));
    (report, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_http2_keeps_a_batch_of_streams_in_flight() {
    let behaviour = Behaviour { delay: Duration::from_millis(20), unavailable_every: Some(7) };
    let (report, seen) =
        pipelined(Version::Http2, behaviour, 8, Duration::from_millis(500), &["a-1"]).await;
    // One request at a time, 2 connections of 20 ms answers manage at most
    // 52 in 500 ms (the 2 in flight at the end included); with 8 streams
    // in flight each 20 ms carries 16 (at least 4 batches a connection even
    // on a loaded machine).
    assert!(report.requests >= 64, "server saw {}", report.requests);
    assert_eq!(seen.http2.load(Ordering::SeqCst), report.requests);
    assert!(report.latency_ms.p50 >= 20.0, "p50 {}", report.latency_ms.p50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_http1_answers_every_request_of_a_batch_in_order() {
    let behaviour = Behaviour { delay: Duration::ZERO, unavailable_every: Some(5) };
    let (report, seen) =
        pipelined(Version::Http1, behaviour, 10, Duration::from_millis(300), &["a-1", "gone"])
            .await;
    assert!(report.requests > 100, "server saw {}", report.requests);
    assert_eq!(report.errors_by_kind.get("status_404").copied(), Some(seen.status(404)));
    assert_eq!(report.errors, seen.status(404) + seen.status(503));
    assert_eq!(seen.http2.load(Ordering::SeqCst), 0);
    assert_eq!(report.transport, "http1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_shows_as_401_and_a_dead_port_as_connect_errors() {
    let (port, _) =
        spawn_server(Behaviour { delay: Duration::ZERO, unavailable_every: None }, None).await;
    let base = Run {
        target: format!("http://127.0.0.1:{port}"),
        version: Version::Http1,
        model: Model::Closed,
        connections: 1,
        duration: Duration::from_millis(200),
        token: None,
    };
    let report = run(base, &keys(&["a-1"])).await;
    assert!(report.requests > 0);
    assert_eq!(report.errors_by_kind.get("status_401").copied(), Some(report.requests));

    // A port that was just free and is now closed again.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let report = run(
        Run {
            target: format!("http://127.0.0.1:{dead}"),
            version: Version::Http1,
            model: Model::Closed,
            connections: 1,
            duration: Duration::from_millis(100),
            token: Some(TOKEN),
        },
        &keys(&["a-1"]),
    )
    .await;
    assert_eq!(report.successes, 0);
    assert!(report.errors > 0);
    assert_eq!(report.errors_by_kind.keys().collect::<Vec<_>>(), [&Failure::Connect.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_measures_from_the_scheduled_time() {
    // One connection, 100 req/s due, but each answer takes 50 ms: the
    // server can do 20/s, so requests queue and the k-th waits ~40k ms.
    let delay = Duration::from_millis(50);
    let (port, seen) = spawn_server(Behaviour { delay, unavailable_every: None }, None).await;
    let report = run(
        Run {
            target: format!("http://127.0.0.1:{port}"),
            version: Version::Http1,
            model: Model::Open { rate: 100.0 },
            connections: 1,
            duration: Duration::from_secs(1),
            token: Some(TOKEN),
        },
        &keys(&["a-1"]),
    )
    .await;
    assert_eq!(report.requests, seen.requests.load(Ordering::SeqCst));
    assert!(report.requests <= 21, "requests {}", report.requests);
    let l = &report.latency_ms;
    // A send-time measurement would say ~50 ms throughout.
    assert!(l.p50 > 150.0, "p50 {} hides the queueing", l.p50);
    assert!(l.max > 500.0, "max {}", l.max);
    assert_eq!(report.model, "open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_with_insecure_trust() {
    let behaviour = Behaviour { delay: Duration::ZERO, unavailable_every: None };
    let (port, seen) = spawn_server(behaviour, Some(tls_acceptor())).await;
    let report = run(
        Run {
            target: format!("https://localhost:{port}"),
            version: Version::Http2,
            model: Model::Closed,
            connections: 2,
            duration: Duration::from_millis(300),
            token: Some(TOKEN),
        },
        &keys(&["a-1"]),
    )
    .await;
    assert!(report.successes > 10, "{report}");
    assert_eq!(report.errors, 0, "{:?}", report.errors_by_kind);
    assert_eq!(seen.http2.load(Ordering::SeqCst), report.requests);
    assert_eq!(report.transport, "h2");
}
