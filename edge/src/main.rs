//! `nexus-edge`: wires the configuration, the alias file, the workers and
//! the signals together. Everything else lives in the library.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use nexus_edge::app::App;
use nexus_edge::auth::Authenticator;
use nexus_edge::clock::Clock;
use nexus_edge::config::{Args, AuthMode, Config, SourceConfig};
use nexus_edge::connections::ConnectionCap;
use nexus_edge::metrics::Metrics;
use nexus_edge::source::file::{FileSource, POLL_INTERVAL};
use nexus_edge::source::redis::{self, RedisSync};
use nexus_edge::source::{self, Applier, Source as _};
use nexus_edge::state::{SourceKind, State};
use nexus_edge::{tls, workers};
use nexus_protocol::TokenVerifier;
use nexus_protocol::signing;
use tokio::signal::unix::{SignalKind, signal};

/// What keeps the state current once the edge listens.
// One value, made once at start and moved into its task: its size is moot.
#[allow(clippy::large_enum_variant)]
enum Feed {
    File(FileSource, Applier),
    Redis(RedisSync),
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_parts(Args::parse(), |k| std::env::var(k).ok())?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log_level)
                .with_context(|| format!("LOG_LEVEL={:?}", config.log_level))?,
        )
        .init();
    let tls = match &config.tls {
        Some(f) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(&f.cert, &f.key)?)),
        None => None,
    };
    // Signals, the file watcher and shutdown run here; requests run on the
    // workers' own runtimes.
    let control = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    control.block_on(run(config, tls))
}

async fn run(config: Config, tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<()> {
    let auth = match &config.auth {
        AuthMode::Required(secret) => {
            Some(Authenticator::new(TokenVerifier::hs256(secret.as_bytes())))
        }
        AuthMode::Off => {
            tracing::warn!("EDGE_AUTH=off: resolve answers anyone, without a token");
            None
        }
    };
    let metrics = Arc::new(Metrics::new());
    let (state, feed) = match &config.source {
        SourceConfig::File(path) => {
            let state = Arc::new(State::new(SourceKind::File));
            let mut applier = Applier::new(state.clone(), metrics.clone(), Clock::system());
            let mut file = FileSource::new(path, POLL_INTERVAL).with_sighup()?;
            file.preload().await.context("initial alias file")?;
            // Served before the edge listens: the preloaded file.
            if let Some(first) = file.next(&applier).await {
                applier.apply(first);
            }
            (state, Feed::File(file, applier))
        }
        SourceConfig::Redis(sync) => {
            if signing::is_dev_verify_key(&sync.verify_key) {
                tracing::warn!(
                    "NEXUS_VERIFY_KEY is not set: accepting states signed with the PUBLIC \
                     DEVELOPMENT key, which anyone can sign with. Set NEXUS_VERIFY_KEY (or \
                     NEXUS_VERIFY_KEY_FILE) in any real deployment."
                );
            }
            tracing::info!(config = ?sync, "syncing from Redis");
            let state = Arc::new(State::new(SourceKind::Redis));
            let redis =
                redis::start(*sync.clone(), state.clone(), metrics.clone(), Clock::system())?;
            (state, Feed::Redis(redis))
        }
    };
    let app = Arc::new(App {
        state: state.clone(),
        auth,
        connections: ConnectionCap::new(config.max_connections, metrics.clone()),
        prometheus: config.prometheus,
        metrics: metrics.clone(),
    });
    let quic = nexus_edge::quic::prepare(&config.quic, config.tls.as_ref()).context("QUIC")?;
    let bound = workers::bind(config.http_addr, config.workers.get())
        .with_context(|| format!("binding {}", config.http_addr))?;
    let addr = bound.first().map(workers::Worker::local_addr).transpose()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let threads = workers::spawn(bound, app.clone(), tls.clone(), stop_rx.clone())?;
    let quic = match quic {
        Some(q) => {
            let (addr, thread) = nexus_edge::quic::spawn(config.quic.addr, q, app, stop_rx.clone())
                .with_context(|| format!("QUIC on {}", config.quic.addr))?;
            tracing::info!(udp = %addr, alpn = "nexus-resolve/1", "QUIC ready");
            Some(thread)
        }
        None => None,
    };
    tracing::info!(
        addr = %addr.map_or_else(|| "-".to_owned(), |a| a.to_string()),
        workers = threads.len(),
        tls = tls.is_some(),
        "listening"
    );
    let mut watcher_stop = stop_rx.clone();
    let stopped = async move {
        let _ = watcher_stop.wait_for(|s| *s).await;
    };
    let watcher = match feed {
        Feed::File(file, applier) => tokio::spawn(source::drive(file, applier, stopped)),
        Feed::Redis(redis) => tokio::spawn(redis.run(stopped)),
    };

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: draining"),
    }
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    for t in threads.into_iter().chain(quic) {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    tracing::info!("stopped");
    Ok(())
}
