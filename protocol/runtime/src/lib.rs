//! What both NEXUS planes run, beside the types they share
//! (`nexus-protocol`, which has no I/O): the control plane's publisher and
//! every edge speak through the same bus client, build TLS the same way,
//! log the same way and read the token-key variables the same way. Living
//! here, none of it makes one plane a library of the other.
//!
//! # Layout
//!
//! - [`bus`]: the propagation transport, one [`bus::Transport`] interface
//!   for the publisher and the edges: Redis ([`bus::redis`]), or in-process
//!   ([`bus::memory`], dev mode and tests).
//! - [`tls`]: rustls set-up (ring): the HTTPS server configuration (ALPN
//!   `h2`, `http/1.1`) and the trust roots every TLS client verifies with.
//! - [`logging`]: the logger both binaries install (`LOG_LEVEL`,
//!   `LOG_FORMAT=text|json`, colour only on a terminal).
//! - [`tokens`]: the token-key variables (`NEXUS_TOKEN_VERIFY_KEYS[_FILE]`,
//!   `NEXUS_TOKEN_SIGNING_KEY[_FILE]`) and how both planes read them.
//! - [`env`]: the typed environment parsers and their error, a leaf the
//!   others import.

pub mod bus;
pub mod env;
pub mod logging;
pub mod tls;
pub mod tokens;
