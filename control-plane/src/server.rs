//! Starting the control plane: governance loaded into the database, schema
//! checked, background jobs started, and the API and the console ([`router`])
//! served on a listener the caller bound (tests pass one on port 0), in
//! plaintext or — with `API_TLS_CERT`/`API_TLS_KEY` — over TLS with
//! HTTP/1.1 and h2 by ALPN.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::serve::ListenerExt as _;
use nexus_protocol::TokenVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::api::{self, barrier};
use crate::audit::retention::Retention;
use crate::domain::governance::{Governance, GovernanceError};
use crate::report::Chain;
use crate::store::{Actor, SchemaState, Store, StoreError};
use crate::web::error::ApiError;
use crate::web::{AppState, Shared, observe, throttle};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "database schema is behind this binary (missing {0}); run `nexus-control-plane migrate`"
    )]
    SchemaBehind(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("governance rules: {0}")]
    Governance(#[from] GovernanceError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Checks the schema, stores `governance` as the rules in force, and builds
/// the shared state.
pub async fn prepare(
    store: Store,
    verifier: TokenVerifier,
    governance: Governance,
) -> Result<Shared, StartError> {
    if let SchemaState::Behind { missing } = store.schema_state().await? {
        return Err(StartError::SchemaBehind(missing.join(", ")));
    }
    store.put_governance("file", governance.document(), &Actor::system("startup")).await?;
    Ok(AppState::new(store, verifier, governance))
}

/// The API's route table and the console's pages, under the middleware
/// every request passes (outermost first): the request id and metrics, the
/// rate limit, the body limit, the publish barrier.
pub(crate) fn router(state: Shared) -> Router {
    let (router, _) = api::routes().split_for_parts();
    router
        .merge(crate::console::router(state.clone()))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Innermost: the barrier waits only for a write that was let in.
        .layer(middleware::from_fn_with_state(state.clone(), barrier::wait))
        .layer(DefaultBodyLimit::max(api::BODY_LIMIT))
        // Inside `observe`: a 429 is counted, timed and has a request id.
        .layer(middleware::from_fn_with_state(state.clone(), throttle::limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe::observe))
        .with_state(state)
}

/// Serves the API and the retention job until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Shared,
    retention: Option<Retention>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    serve_on(listener, None, state, retention, shutdown).await
}

/// [`serve`], over TLS when `tls` is given.
pub(crate) async fn serve_on(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Shared,
    retention: Option<Retention>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(r) = retention {
        let store = state.store.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(r.run(store, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
    }
    {
        let state = state.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = follow_governance(&state, GOVERNANCE_REFRESH) => {}
                _ = rx.wait_for(|s| *s) => {}
            }
        });
    }
    let app = router(state);
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    // The peer address reaches the handlers (`ConnectInfo`): requests
    // without a valid credential are rate-limited by it (`web::throttle`).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await?,
        Some(tls) => {
            // `tap_io` only so axum knows how to name the peer of a TLS
            // stream (the listener's own address type).
            let listener = TlsListener::new(listener, tls)?.tap_io(|_| {});
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await?
        }
    }
    Ok(())
}

/// Time a client has to finish its TLS handshake.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS in front of a TCP listener, in the shape `axum::serve` takes (axum
/// does not do TLS itself). Handshakes run in their own tasks, so a slow or
/// silent client does not hold up the others; finished ones queue for
/// `accept`. HTTP/1.1 or h2 is then chosen by ALPN (hyper's auto builder in
/// axum reads the h2 preface).
struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(listener: TcpListener, tls: TlsAcceptor) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local, ready, accepting })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Serving is over: stop accepting (and close the socket).
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task never ends while this listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Keeps the rules in force equal to the active row of `governance_rules`,
/// so a `PUT /api/admin/governance` taken by one control plane reaches the
/// others within `every`.
async fn follow_governance(state: &Shared, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match state.store.governance().await {
            Ok(Some(doc)) if doc != *state.governance().document() => {
                match Governance::compile(doc) {
                    Ok(g) => {
                        tracing::info!("governance rules changed in the database; applied");
                        state.set_governance(g);
                    }
                    Err(e) => {
                        tracing::warn!(error = %Chain(&e), "stored governance rules do not compile")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %Chain(&e), "governance refresh failed"),
        }
    }
}

/// How often the stored governance rules are re-read.
pub(crate) const GOVERNANCE_REFRESH: Duration = Duration::from_secs(5);

/// How often retention runs in production.
pub(crate) const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// The control plane checked and started, not yet listening: what
/// `nexus-control-plane serve` and `dev` run.
#[derive(Debug)]
pub struct Service {
    state: Shared,
    retention: Retention,
    publisher: Option<tokio::task::JoinHandle<()>>,
    stop_publisher: tokio::sync::watch::Sender<bool>,
    /// `API_TLS_CERT`/`API_TLS_KEY`, loaded (rustls' `Debug` shows no key).
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// Checks everything `config` names (secret, governance, database schema)
/// and starts the publisher on `bus` — or on `REDIS_URL` when `bus` is
/// `None` — so that only binding is left. Nothing is bound here.
pub async fn start(
    config: &crate::config::Config,
    bus: Option<crate::publisher::bus::Bus>,
) -> anyhow::Result<Service> {
    let verifier = config.tokens.announced_verifier()?;
    let tls = match &config.api_tls {
        Some(files) => Some(files.server_config()?),
        None => None,
    };
    let governance = crate::config::load_governance(config)?;
    let store = Store::new(&config.db)?;
    let state = prepare(store, verifier, governance).await?;
    state.set_rate_limit(config.rate_limit);
    state.prometheus_enabled.store(config.prometheus_enabled, std::sync::atomic::Ordering::Relaxed);
    // Propagation: the bus for the fleet view, and the publisher (one leader).
    let (stop_publisher, mut stopped) = tokio::sync::watch::channel(false);
    let stopped = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let (p, db, metrics) = (&config.propagation, &config.db, state.metrics.publish.clone());
    let publisher = match bus {
        Some(bus) => crate::publisher::start::start_on(
            bus,
            p,
            db,
            &state.store,
            &state.propagation,
            metrics,
            stopped,
        )?,
        None => {
            crate::publisher::start::start(
                p,
                db,
                &state.store,
                &state.propagation,
                metrics,
                stopped,
            )
            .await?
        }
    };
    let retention = Retention {
        archive_after_days: config.audit_archive_after_days,
        purge_after_days: config.audit_purge_after_days,
        interval: RETENTION_INTERVAL,
    };
    Ok(Service { state, retention, publisher, stop_publisher, tls })
}

impl Service {
    pub fn state(&self) -> &Shared {
        &self.state
    }

    /// Serves on `listener` until `shutdown`, then stops the publisher
    /// (which gives up the leader lock).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let served = serve_on(
            listener,
            self.tls.map(TlsAcceptor::from),
            self.state,
            Some(self.retention),
            shutdown,
        )
        .await;
        let _ = self.stop_publisher.send(true);
        if let Some(task) = self.publisher {
            let _ = task.await;
        }
        served
    }
}

/// Resolves at Ctrl-C or SIGTERM (an orchestrator's stop): both drain and
/// stop.
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
