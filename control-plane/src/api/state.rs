//! What every handler shares.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use nexus_protocol::TokenVerifier;

use crate::domain::governance::Governance;
use crate::metrics::Metrics;
use crate::publisher::Propagation;
use crate::store::Store;

#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub verifier: TokenVerifier,
    /// Swapped whole on `PUT /api/admin/governance`; readers clone the Arc
    /// and never hold the lock across an await.
    governance: RwLock<Arc<Governance>>,
    pub metrics: Metrics,
    pub started: Instant,
    /// The publisher's state and the Redis handle the fleet is read from.
    pub propagation: Propagation,
    /// `PROMETHEUS_ENABLED`: whether `/metrics` is served. Set once at start
    /// (`serve` stores the configured value); true until then.
    pub prometheus_enabled: AtomicBool,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(store: Store, verifier: TokenVerifier, governance: Governance) -> Shared {
        Arc::new(Self {
            store,
            verifier,
            governance: RwLock::new(Arc::new(governance)),
            metrics: Metrics::new(),
            started: Instant::now(),
            propagation: Propagation::default(),
            prometheus_enabled: AtomicBool::new(true),
        })
    }

    pub fn governance(&self) -> Arc<Governance> {
        match self.governance.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set_governance(&self, g: Governance) {
        let next = Arc::new(g);
        match self.governance.write() {
            Ok(mut w) => *w = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}
