//! `nexus-loadtest`: load generation against NEXUS edges (and anything that
//! answers the resolve contract, nginx included), with reports.
//!
//! - [`synthetic`]: synthetic aliases files plus matching nginx map and wrk script.
//! - [`keyspace`]: the aliases a run asks for, uniform or Zipf.
//! - [`target`]: the `--target` URL.
//! - [`transport`]: the `Connector`/`Connection` traits a protocol implements.
//! - [`http`]: HTTP/1.1 and HTTP/2 (h2c or TLS+ALPN) connections; [`h1`]: the
//!   prebuilt-bytes HTTP/1.1 client it uses.
//! - [`tls`]: rustls (ring) client configs, including `--insecure`.
//! - [`quic`]: the edge's QUIC protocol, through `nexus_edge::quic_client`.
//! - [`driver`]: closed and open (coordinated-omission-free) load models.
//! - [`recorder`]: per-task histogram and failure counts.
//! - [`report`]: the JSON/text report; [`plot`]: its SVG latency plot.
//! - [`peer`]: `hyper-peer`, bare hyper serving pre-rendered answers, the
//!   floor under the edge in `compare-nginx.sh --with-hyper`.
//! - [`propagation`]: the propagation probe: writes through the control
//!   plane, measures commit→visible on each edge (its own driver, reusing
//!   `recorder`, `target`, `tls` and the report's `Latency`).
//!
//! - [`attack`]: an attacker with full Redis access against the edges:
//!   rollback, freeze, mix-and-match, endless data, untrusted keys.
//! - [`abuse`]: the edge under protocol attacks (rapid reset, floods,
//!   slowloris, QUIC) while it serves legitimate load.
//!
//! A new mode adds a `Connector` or its own driver and reuses `recorder`,
//! `report` and `plot`.

pub mod abuse;
pub mod attack;
pub mod driver;
pub mod h1;
pub mod http;
pub mod keyspace;
pub mod peer;
pub mod plot;
pub mod propagation;
pub mod quic;
pub mod recorder;
pub mod report;
pub mod synthetic;
pub mod target;
pub mod tls;
pub mod transport;
