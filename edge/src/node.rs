//! A whole edge in one call: the state and what feeds it ([`open`]), then
//! the front ends over it — HTTP workers, QUIC — and the feed's task
//! ([`launch`]), until [`Node::stop`]. The `nexus-edge` binary is these two
//! calls and a signal handler; `nexus-control-plane dev` runs the same
//! edge in its own process, fed by the in-process bus.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context as _;
use nexus_protocol::TokenVerifier;
use nexus_protocol::signing;
use tokio::sync::watch;

use crate::app::App;
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::{AuthMode, Config, RedisSource, SourceConfig};
use crate::connections::ConnectionCap;
use crate::metrics::Metrics;
use crate::source::bus::{self, BusSync};
use crate::source::file::{FileSource, POLL_INTERVAL};
use crate::source::{self, Applier, Source as _};
use crate::state::{SourceKind, State};
use crate::sync::SyncConfig;
use crate::workers;
use nexus_runtime::bus::Transport;
use nexus_runtime::bus::redis::TLS_CHECK_TIMEOUT;
use nexus_runtime::tls;

/// What keeps the state current once the edge listens.
// One value, made once at start and moved into its task: its size is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Feed {
    File(FileSource, Applier),
    Bus(BusSync),
}

/// The state `config.source` describes and its feed: the alias file read
/// once (so the edge serves it from the first request), or the Redis
/// transport connected (the disk copy restored when there is one).
pub async fn open(config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<(Arc<State>, Feed)> {
    match &config.source {
        SourceConfig::File(path) => {
            let state = Arc::new(State::new(SourceKind::File));
            let mut applier = Applier::new(state.clone(), metrics.clone(), Clock::system());
            let mut file = FileSource::new(path, POLL_INTERVAL).with_sighup()?;
            file.preload().await.context("initial alias file")?;
            // Served before the edge listens: the preloaded file.
            if let Some(first) = file.next(&applier).await {
                applier.apply(first);
            }
            Ok((state, Feed::File(file, applier)))
        }
        SourceConfig::Redis(source) => {
            let RedisSource { redis, report, sync } = &**source;
            tracing::info!(config = ?sync, redis = ?redis, report = ?report, "syncing from Redis");
            let transport = Arc::new(redis.connect().context("REDIS_URL")?);
            transport.check_tls(TLS_CHECK_TIMEOUT).await.context("REDIS_URL")?;
            let report: Option<Arc<dyn Transport>> = match report {
                Some(r) => {
                    let bus = Arc::new(r.connect().context("EDGE_REPORT_REDIS_URL")?);
                    bus.check_tls(TLS_CHECK_TIMEOUT).await.context("EDGE_REPORT_REDIS_URL")?;
                    Some(bus)
                }
                None => None,
            };
            open_bus_reporting(sync, transport, report, SourceKind::Redis, metrics, Clock::system())
        }
        SourceConfig::Embedded => {
            anyhow::bail!("an embedded edge is fed by its host: use node::open_bus")
        }
    }
}

/// The state synced from `transport` (reported as `kind`) and its feed;
/// the edge report goes to `transport` too.
pub fn open_bus(
    sync: &SyncConfig,
    transport: Arc<dyn Transport>,
    kind: SourceKind,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Arc<State>, Feed)> {
    open_bus_reporting(sync, transport, None, kind, metrics, Clock::system())
}

/// [`open_bus`], with the edge report written through `report` when given
/// (`EDGE_REPORT_REDIS_URL`: the primary, for an edge on a read-only
/// replica), its times (the report's stamps among them) read from `clock`.
pub fn open_bus_reporting(
    sync: &SyncConfig,
    transport: Arc<dyn Transport>,
    report: Option<Arc<dyn Transport>>,
    kind: SourceKind,
    metrics: &Arc<Metrics>,
    clock: Clock,
) -> anyhow::Result<(Arc<State>, Feed)> {
    for key in &sync.verify_keys {
        warn_if_dev_key(key);
    }
    let state = Arc::new(State::new(kind));
    let mut sync = bus::start(sync.clone(), transport, state.clone(), metrics.clone(), clock)?;
    if let Some(report) = report {
        sync = sync.with_report(report);
    }
    Ok((state, Feed::Bus(sync)))
}

/// Says loudly that states signed with the public development key are
/// accepted.
pub fn warn_if_dev_key(key: &signing::VerifyingKey) {
    if signing::is_dev_verify_key(key) {
        tracing::warn!(
            "NEXUS_VERIFY_KEY is not set: accepting states signed with the PUBLIC DEVELOPMENT \
             key, which anyone can sign with. Set NEXUS_VERIFY_KEY (or NEXUS_VERIFY_KEY_FILE) \
             in any real deployment."
        );
    }
}

/// A running edge.
#[derive(Debug)]
pub struct Node {
    http: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    feed: tokio::task::JoinHandle<()>,
    threads: Vec<JoinHandle<()>>,
}

/// Binds the front ends `config` asks for (everything checked before
/// anything is bound), serves `state` on them and runs `feed` on the
/// current runtime. `config.source` is not read: [`open`] (or the
/// embedding program) made `state` and `feed`.
pub fn launch(
    config: &Config,
    state: Arc<State>,
    feed: Feed,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Node> {
    let auth = match &config.auth {
        AuthMode::Required(verifier) => {
            crate::config::tokens::log_mode(verifier);
            let verifier = TokenVerifier::clone(verifier);
            if let Some(l) = &config.rate_limit {
                tracing::info!(
                    rate = l.rate.count.get(),
                    per_s = l.rate.per.as_secs(),
                    burst = l.burst.get(),
                    "EDGE_RATE_LIMIT: each credential is limited on this edge (429 over it)"
                );
            }
            if let Some(l) = &config.auth_failures {
                tracing::info!(
                    rate = l.rate.count.get(),
                    per_s = l.rate.per.as_secs(),
                    burst = l.burst.get(),
                    "EDGE_AUTH_FAILURES: each client host's refused credentials are limited \
                     (429 unchecked over it)"
                );
            }
            Some(
                Authenticator::new(verifier)
                    .with_credentials(state.credentials().clone())
                    .with_rate_limit(config.rate_limit)
                    .with_failure_budget(config.auth_failures)
                    .with_counters(metrics.auth_refusals.clone()),
            )
        }
        AuthMode::Off => {
            tracing::warn!("EDGE_AUTH=off: resolve answers anyone, without a token");
            None
        }
    };
    let tls = match &config.tls {
        Some(f) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(&f.cert, &f.key)?)),
        None => None,
    };
    let app = Arc::new(App {
        state,
        auth,
        connections: ConnectionCap::new(config.max_connections, metrics.clone())
            .with_per_ip(config.max_connections_per_ip),
        prometheus: config.prometheus,
        metrics,
    });
    let quic = crate::quic::prepare(&config.quic, config.tls.as_ref()).context("QUIC")?;
    let bound = workers::bind(config.http_addr, config.workers.get())
        .with_context(|| format!("binding {}", config.http_addr))?;
    let http = bound.first().map(workers::Worker::local_addr).transpose()?;
    let (stop, stop_rx) = watch::channel(false);
    let mut threads = workers::spawn(bound, app.clone(), tls.clone(), stop_rx.clone())?;
    if let Some(q) = quic {
        let (addr, thread) = crate::quic::spawn(config.quic.addr, q, app, stop_rx.clone())
            .with_context(|| format!("QUIC on {}", config.quic.addr))?;
        tracing::info!(udp = %addr, alpn = "nexus-resolve/1", "QUIC ready");
        threads.push(thread);
    }
    tracing::info!(
        addr = %http.map_or_else(|| "-".to_owned(), |a| a.to_string()),
        workers = config.workers.get(),
        tls = tls.is_some(),
        "listening"
    );
    let mut feed_stop = stop_rx;
    let stopped = async move {
        let _ = feed_stop.wait_for(|s| *s).await;
    };
    let feed = match feed {
        Feed::File(file, applier) => tokio::spawn(source::drive(file, applier, stopped)),
        Feed::Bus(sync) => tokio::spawn(sync.run(stopped)),
    };
    Ok(Node { http, stop, feed, threads })
}

impl Node {
    /// The HTTP listener's address (the first worker's; they share it).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// Stops the feed, drains the connections and joins every thread.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.feed.await;
        for t in self.threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
