//! What every front end (HTTP in [`crate::service`], QUIC in
//! [`crate::quic`]) shares: the state, the policy and the counters.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::connections::ConnectionCap;
use crate::metrics::Metrics;
use crate::state::State;

/// The state and the policy, shared by the HTTP and QUIC servers.
#[derive(Debug)]
pub struct App {
    pub state: Arc<State>,
    /// `None` when authentication is switched off (`EDGE_AUTH=off`).
    pub auth: Option<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub connections: ConnectionCap,
    /// `PROMETHEUS_ENABLED`: whether `/metrics` is served (404 when not).
    pub prometheus: bool,
}
