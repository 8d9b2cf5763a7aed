//! NEXUS SSOT edge: resolves aliases from an in-memory table, with no
//! database, over HTTP/1.1 and HTTP/2 (cleartext or TLS).
//!
//! What it shares with the control plane at run time (the bus client, TLS
//! set-up, logging, the token-key variables) is `nexus_runtime`'s; the
//! types and codecs are `nexus_protocol`'s.
//!
//! # Layout
//!
//! - [`config`]: the typed configuration, read once and checked at start.
//! - [`app`]: what the HTTP and QUIC front ends share (state, auth, metrics).
//! - [`clock`]: the wall clock, read once per request; injectable for tests.
//! - [`table`]: the wire-neutral alias table (papaya, private): escaped
//!   canonical and version digits in shared arena chunks, rendered at load
//!   time; [`table::Table`] is also what the benches measure.
//! - [`state`]: the current table and its `(epoch, version)`, swapped
//!   atomically on snapshots and patched by deltas.
//! - [`source`]: where states come from, file and Redis alike behind the
//!   [`source::Source`] trait and one [`source::drive`] loop; the Redis
//!   catch-up is a pure core ([`source::catchup`]).
//! - [`sync`]: the rules of applying: [`sync::apply::Applier`] (the only
//!   writer of the state, with an injected clock), shrink guard, report.
//! - [`persist`]: the last-known-good copy on disk.
//! - [`freshness`]: the age of the leader's newest signed statement of the
//!   head: `stale` past `EDGE_MAX_STALENESS`, whatever Redis says.
//! - [`resolve`]: the resolve decision as a plain function and the one
//!   table of refusals (status, code, message), shared by HTTP and QUIC.
//! - [`auth`]: bearer tokens and API keys, verified once and cached.
//! - [`credentials`]: revocations and API-key grants from the signed stream.
//! - [`refusals`]: what refused credentials cost: a bounded cache of recent
//!   refusals and each client host's budget of them.
//! - [`service`]: HTTP routes and answers.
//! - [`server`]: the hardened hyper server on an already-bound listener.
//! - [`workers`]: one single-threaded runtime per worker on `SO_REUSEPORT`.
//! - [`limits`]: how much one request may send (head, headers, streams).
//! - [`h2guard`]: the HTTP/2 control-frame flood guard.
//! - [`connections`]: the shared connection cap.
//! - [`deadline`]: the per-connection slow-client guard.
//! - [`quic`]: the QUIC front end (`nexus-resolve/1` on quinn).
//! - [`quic_client`]: a client library for that protocol.
//! - [`metrics`]: Prometheus metrics.
//! - [`node`]: a whole edge in one call (the binary, and dev mode's
//!   in-process edge).

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod connections;
pub mod credentials;
pub mod deadline;
pub mod freshness;
pub mod h2guard;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod persist;
pub mod quic;
pub mod quic_client;
pub mod refusals;
pub mod resolve;
pub mod server;
pub mod service;
pub mod source;
pub mod state;
pub mod sync;
pub mod table;
pub mod workers;
