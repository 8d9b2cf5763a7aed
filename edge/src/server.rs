//! The HTTP server: HTTP/1.1 and HTTP/2 (prior knowledge) on one port,
//! optionally behind TLS with ALPN. It takes an already-bound listener and a
//! shutdown future, so tests bind port 0 and stop it when they like.
//!
//! Hardening: a per-connection deadline for slow clients (`deadline`), a
//! control-frame flood guard on the plaintext side (`h2guard`), bounded
//! header sizes and counts, h2 stream and reset limits, a TLS handshake
//! timeout, and the shared connection cap. Whatever the bytes, a bad
//! connection ends that connection only.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::deadline::{Deadline, REQUEST_DEADLINE, Watched};
use crate::h2guard::Guarded;
use crate::limits::{MAX_CONCURRENT_STREAMS, MAX_HEADER_BYTES, MAX_HEADERS};
use crate::metrics::Metrics;

/// Time allowed for a TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections accepted in a row before the accept loop yields its turn.
const ACCEPT_BATCH: u32 = 8;
/// How long open connections may finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection builder with every limit set.
fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // No `header_read_timeout`: it costs a timer-wheel entry per request;
    // `deadline` guards against slow clients per connection instead.
    b.http1()
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        // Responses are a few dozen bytes: one flat buffer and one write()
        // beat a two-entry writev().
        .writev(false)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(64)
        .max_local_error_reset_streams(256)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Serves `listener` until `shutdown` completes, then lets open connections
/// finish for up to [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let builder = Arc::new(builder());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    let mut accepted = 0u32;
    loop {
        // Accepting must not starve serving: under a connection flood
        // every accept is ready at once, and tokio's budget would let this
        // task take 128 per turn while each open connection gets one
        // request. Every [`ACCEPT_BATCH`] accepts the connections go first.
        accepted = accepted.wrapping_add(1);
        if accepted.is_multiple_of(ACCEPT_BATCH) {
            tokio::task::yield_now().await;
        }
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly
                    // instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Some(permit) = app.connections.try_acquire(peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let deadline = Deadline::new();
        let stream = Watched::new(stream, deadline.clone());
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let metrics = app.metrics.clone();
        let peer = Some(peer.ip());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                std::future::ready(Ok::<_, std::convert::Infallible>(app.handle(&req, peer)))
            });
            let result = match tls {
                None => {
                    let stream = Guarded::new(stream, metrics.clone());
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    guarded(watcher.watch(conn), &deadline, &metrics).await
                }
                Some(tls) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let stream = Guarded::new(stream, metrics.clone());
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            guarded(watcher.watch(conn), &deadline, &metrics).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                metrics.connection_errors.inc();
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}

/// Runs a connection until it ends or waits too long for its next
/// response (see [`crate::deadline`]); then it is dropped, which closes it.
async fn guarded<E>(
    conn: impl Future<Output = Result<(), E>>,
    deadline: &Deadline,
    metrics: &Metrics,
) -> Result<(), E> {
    tokio::select! {
        result = conn => result,
        () = deadline.expired(REQUEST_DEADLINE) => {
            metrics.connections_deadline_closed.inc();
            tracing::debug!("connection closed: no request answered within the deadline");
            Ok(())
        }
    }
}
