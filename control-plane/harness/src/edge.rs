//! The real edge in this process, two ways: [`spawn_edge`] serves an
//! alias file (HTTP on port 0, the file polled every 50 ms), and
//! [`launch_edge`] is a whole node syncing from a bus, as the control
//! plane's tests run one (one worker, QUIC and metrics off, no token check:
//! those tests look at what reaches the edges).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nexus_edge::app::App;
use nexus_edge::auth::Authenticator;
use nexus_edge::clock::Clock;
use nexus_edge::connections::ConnectionCap;
use nexus_edge::metrics::Metrics;
use nexus_edge::node::{self, Node};
use nexus_edge::server::serve;
use nexus_edge::source::{self, file::FileSource};
use nexus_edge::state::{SourceKind, State};
use nexus_edge::sync::SyncConfig;
use nexus_protocol::signing::VerifyingKey;
use nexus_protocol::{ContextScope, Role, TokenSigner, TokenVerifier};
use nexus_runtime::bus::Transport;
use tokio::sync::watch;

use crate::app::SECRET;
use crate::wait::{stopped, wait_until};

/// Edge `id` in `region`, syncing from `transport` (checking every
/// `check_interval`) and reporting to `report` when given, else to
/// `transport`; states must be signed by `verify_key`'s private half.
pub fn launch_edge(
    transport: Arc<dyn Transport>,
    report: Option<Arc<dyn Transport>>,
    verify_key: VerifyingKey,
    id: &str,
    region: &str,
    check_interval: Duration,
) -> Node {
    launch_edge_with_clock(
        transport,
        report,
        verify_key,
        id,
        region,
        check_interval,
        Clock::system(),
    )
}

/// [`launch_edge`] on `clock` (what the edge stamps its reports with): an
/// edge whose clock is wrong, as the control plane sees it.
pub fn launch_edge_with_clock(
    transport: Arc<dyn Transport>,
    report: Option<Arc<dyn Transport>>,
    verify_key: VerifyingKey,
    id: &str,
    region: &str,
    check_interval: Duration,
    clock: Clock,
) -> Node {
    let config = nexus_edge::config::Config::embedded(|k| match k {
        "EDGE_HTTP_ADDR" => Some("127.0.0.1:0".into()),
        "EDGE_WORKERS" => Some("1".into()),
        "EDGE_QUIC" => Some("off".into()),
        "EDGE_AUTH" => Some("off".into()),
        "PROMETHEUS_ENABLED" => Some("false".into()),
        _ => None,
    })
    .unwrap();
    let sync = SyncConfig {
        verify_keys: vec![verify_key],
        edge_id: id.into(),
        region: region.into(),
        state_dir: None,
        check_interval,
        max_staleness: nexus_edge::sync::MAX_STALENESS,
        stale_refuse: Vec::new(),
    };
    let metrics = Arc::new(Metrics::new());
    let (state, feed) =
        node::open_bus_reporting(&sync, transport, report, SourceKind::Redis, &metrics, clock)
            .unwrap();
    node::launch(&config, state, feed, metrics).unwrap()
}

pub const YAML: &str = "aliases:
  - context: frontend
    alias: user-profile
    canonical: https://api.nexus.com/v1/users/profile
  - context: frontend
    alias: old-promo
    canonical: https://api.nexus.com/v1/promo
    expires_at: 2020-01-01T00:00:00Z
  - context: backend
    alias: billing
    canonical: https://api.nexus.com/v1/billing
  - context: backend
    alias: retired
    canonical: https://api.nexus.com/v1/retired
    is_active: false
";

#[derive(Debug, Clone)]
pub struct Options {
    pub auth: bool,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub max_connections: usize,
    pub max_connections_per_ip: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self { auth: true, tls: None, max_connections: 1000, max_connections_per_ip: None }
    }
}

#[derive(Debug)]
pub struct TestEdge {
    pub addr: SocketAddr,
    pub path: PathBuf,
    pub app: Arc<App>,
    pub signer: TokenSigner,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts an edge serving `yaml`, polling the file every 50 ms.
pub async fn spawn_edge(yaml: &str, opts: Options) -> TestEdge {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aliases.yaml");
    std::fs::write(&path, yaml).unwrap();
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(State::new(SourceKind::File));
    let mut file = FileSource::new(&path, Duration::from_millis(50));
    file.preload().await.unwrap();
    let auth = opts.auth.then(|| Authenticator::new(TokenVerifier::hs256(SECRET)));
    let app = Arc::new(App {
        state: state.clone(),
        auth,
        connections: ConnectionCap::new(opts.max_connections, metrics.clone())
            .with_per_ip(opts.max_connections_per_ip),
        prometheus: true,
        metrics: metrics.clone(),
    });
    let (stop, rx) = watch::channel(false);
    let applier = source::Applier::new(state.clone(), metrics, nexus_edge::clock::Clock::system());
    tokio::spawn(source::drive(file, applier, stopped(rx.clone())));
    wait_until("first state loaded", || async { state.is_loaded() }).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = opts.tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(serve(listener, app.clone(), tls, stopped(rx)));
    TestEdge { addr, path, app, signer: TokenSigner::hs256(SECRET), stop, _dir: dir }
}

impl TestEdge {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A bearer header for `role` in `contexts` (`["*"]` for all).
    pub fn bearer(&self, contexts: &[&str]) -> String {
        let scope =
            ContextScope::try_from(contexts.iter().map(|c| c.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = chrono::Utc::now().timestamp();
        format!("Bearer {}", self.signer.mint("test", Role::Resolver, scope, now, 300))
    }

    /// Rewrites the alias file (the poller picks it up).
    pub fn write_file(&self, yaml: &str) {
        std::fs::write(&self.path, yaml).unwrap();
    }
}

/// GET `url` with an optional bearer header; (status, headers, body).
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = client.get(url);
    if let Some(b) = bearer {
        req = req.header("authorization", b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, body)
}
