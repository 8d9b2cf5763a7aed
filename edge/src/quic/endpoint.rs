//! The QUIC endpoint's server configuration (ALPN, TLS 1.3, limits) and
//! the thread it runs on.
//!
//! One endpoint owns the UDP socket. Unlike TCP, a QUIC endpoint cannot be
//! split over `SO_REUSEPORT` sockets without routing packets by connection
//! id, and [`super::driver`] serves it from one task, so it gets its own
//! current-thread runtime on its own thread.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use nexus_protocol::quic::ALPN;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};
use tokio::sync::watch;

use super::driver::{bind, serve};
use super::{IDLE_TIMEOUT, MAX_STREAMS};
use crate::app::App;

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
    Files(#[from] nexus_runtime::tls::TlsError),
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

/// Binds `addr` on a new current-thread runtime and serves it on its own
/// thread until `shutdown` turns true. Returns the bound address.
pub fn spawn(
    addr: SocketAddr,
    config: quinn::ServerConfig,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), QuicError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
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
