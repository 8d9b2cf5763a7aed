//! The QUIC front end: the `nexus-resolve/1` protocol (frames defined in
//! [`nexus_protocol::quic`]) on quinn, answering from the same state, with
//! the same token cache, connection cap and metrics as HTTP, through the
//! same [`crate::resolve::resolve`] decision.
//!
//! - [`endpoint`]: TLS and transport limits, the serving thread.
//! - [`driver`]: the endpoint driven from one task: UDP in, quinn-proto,
//!   answers, UDP out.
//! - [`conn`]: one connection: handshake check, token, streams.
//! - [`stream`]: one bidirectional stream: decode, resolve, answer in order.
//! - [`socket`]: the UDP socket (batched receive, GSO send).
//! - [`config`]: `EDGE_QUIC_ADDR` and friends, and the TLS it serves.
//! - [`cert`]: the development self-signed certificate.
//!
//! TLS: the certificate and key of `EDGE_TLS_CERT`/`EDGE_TLS_KEY` (QUIC
//! always runs TLS 1.3). Without them QUIC is off, unless
//! `EDGE_QUIC_SELF_SIGNED=true` asks for a self-signed certificate for
//! `localhost` made at start (development only: clients must then connect
//! with `insecure`).
//!
//! Limits: frames of at most [`nexus_protocol::quic::MAX_FRAME_LEN`] bytes
//! (a larger one ends its stream with a CLOSING frame), at most
//! [`MAX_STREAMS`] concurrent streams per connection, connections idle for
//! [`IDLE_TIMEOUT`] are closed, and every connection (handshake included)
//! holds a place under the edge's shared connection cap (`EDGE_MAX_CONNECTIONS`,
//! HTTP and QUIC together); over it, a new connection is refused at once.

pub mod cert;
pub mod config;
pub mod conn;
pub mod driver;
pub mod endpoint;
pub mod socket;
pub mod stream;

use std::time::Duration;

pub use config::{QuicCert, QuicConfig, prepare};
pub use driver::{Endpoint, bind, serve};
pub use endpoint::{QuicError, server_config, spawn};

/// Concurrent bidirectional streams a client may open on one connection.
pub const MAX_STREAMS: u32 = 64;
/// A connection silent for this long is closed (handshake included).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections may finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
