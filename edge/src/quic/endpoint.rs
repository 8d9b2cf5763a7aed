//! The QUIC endpoint: server configuration (ALPN, TLS 1.3, limits), the
//! accept loop with the shared connection cap, and the thread it runs on.
//!
//! One endpoint owns the UDP socket. Unlike TCP, a QUIC endpoint cannot be
//! split over `SO_REUSEPORT` sockets without routing packets by connection
//! id, so it runs on its own runtime: current-thread with
//! `EDGE_WORKERS=1`, else multi-threaded with that many workers.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwapOption;
use nexus_protocol::quic::{ALPN, close};
use quinn::crypto::rustls::{HandshakeData, QuicServerConfig};
use quinn::{Endpoint, IdleTimeout, Incoming, TransportConfig, VarInt};
use tokio::sync::watch;

use super::{DRAIN_TIMEOUT, IDLE_TIMEOUT, MAX_STREAMS, stream};
use crate::service::App;

/// Bytes a peer may have in flight on one stream, and on a connection.
/// Requests are tens of bytes (64 KiB is a pipeline of ~2000); this bounds
/// what a client can park in the edge's memory per connection.
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 256 * 1024;
/// Answers buffered per connection before writes wait for the client to
/// read (a client that never reads stops being read from).
const SEND_WINDOW: u64 = 512 * 1024;

/// Why the QUIC front end could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error("TLS configuration is not usable for QUIC (TLS 1.3 needed): {0}")]
    Tls(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("EDGE_TLS_CERT/EDGE_TLS_KEY: {0}")]
    Files(#[from] crate::tls::TlsError),
    #[error("self-signed certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("binding UDP {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The quinn server configuration: `tls` (its certificate and key) with the
/// ALPN replaced by [`ALPN`], and the transport limits of this module.
pub fn server_config(tls: &rustls::ServerConfig) -> Result<quinn::ServerConfig, QuicError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // No 0-RTT: a replayed request would be harmless, but a replayed AUTH
    // is not worth reasoning about.
    tls.max_early_data_size = 0;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    let mut transport = TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
        .send_window(SEND_WINDOW)
        .max_idle_timeout(IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Binds the endpoint on `addr`; call inside the runtime that will serve it.
pub fn bind(addr: SocketAddr, config: quinn::ServerConfig) -> Result<Endpoint, QuicError> {
    Endpoint::server(config, addr).map_err(|source| QuicError::Bind { addr, source })
}

/// Binds `addr` on a new runtime (`workers` threads) and serves it on its
/// own thread until `shutdown` turns true. Returns the bound address.
pub fn spawn(
    addr: SocketAddr,
    config: quinn::ServerConfig,
    app: Arc<App>,
    workers: usize,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), QuicError> {
    let runtime = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("edge-quic")
            .enable_all()
            .build()?
    };
    let endpoint = {
        let _entered = runtime.enter();
        bind(addr, config)?
    };
    let local = endpoint.local_addr()?;
    let thread = std::thread::Builder::new().name("edge-quic".into()).spawn(move || {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        runtime.block_on(serve(endpoint, app, stop));
    })?;
    Ok((local, thread))
}

/// Accepts connections on `endpoint` until `shutdown` completes, then
/// closes them and waits up to [`DRAIN_TIMEOUT`] for the peers to hear it.
pub async fn serve(endpoint: Endpoint, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let incoming = tokio::select! {
            biased;
            () = &mut shutdown => break,
            incoming = endpoint.accept() => match incoming {
                Some(i) => i,
                None => break,
            },
        };
        tokio::spawn(connection(incoming, app.clone()));
    }
    endpoint.close(VarInt::from_u32(close::SHUTDOWN), b"shutting down");
    if tokio::time::timeout(DRAIN_TIMEOUT, endpoint.wait_idle()).await.is_err() {
        tracing::warn!("QUIC connections still open after the drain timeout");
    }
}

/// One connection: a place under the cap, the handshake, then one task per
/// stream. The token sent by AUTH is shared by the connection's streams.
async fn connection(incoming: Incoming, app: Arc<App>) {
    let Some(permit) = app.connections.try_acquire() else {
        incoming.refuse();
        return;
    };
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "QUIC handshake failed");
            return;
        }
    };
    // rustls refuses a client offering other protocols, but accepts one
    // offering none: insist, so nothing else is spoken to this port.
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol);
    if alpn.as_deref() != Some(ALPN) {
        conn.close(VarInt::from_u32(close::PROTOCOL), b"ALPN nexus-resolve/1 required");
        return;
    }
    let credentials = Arc::new(ArcSwapOption::empty());
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(stream::serve(app.clone(), credentials.clone(), send, recv));
            }
            Err(e) => {
                tracing::debug!(error = %e, "QUIC connection ended");
                break;
            }
        }
    }
    drop(permit);
}
