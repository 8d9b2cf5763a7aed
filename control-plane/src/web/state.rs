//! The state every handler of the API and the console gets.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use nexus_protocol::TokenVerifier;

use super::fleet::Sightings;
use super::rate_limit::RateLimiter;
use crate::config::rate_limit::RateLimitConfig;
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
    /// When this process last heard each edge: the fleet's liveness, by
    /// this control plane's clock.
    pub(crate) sightings: Sightings,
    /// `PROMETHEUS_ENABLED`: whether `/metrics` is served. Set once at start
    /// (`serve` stores the configured value); true until then.
    pub prometheus_enabled: AtomicBool,
    /// The admin API's per-credential limit; swapped whole by
    /// [`AppState::set_rate_limit`].
    rate_limiter: RwLock<Arc<RateLimiter>>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(store: Store, verifier: TokenVerifier, governance: Governance) -> Shared {
        // The default limit until `server::start` sets the configured one.
        let limit = RateLimitConfig::default();
        Arc::new(Self {
            store,
            verifier,
            governance: RwLock::new(Arc::new(governance)),
            metrics: Metrics::new(),
            started: Instant::now(),
            propagation: Propagation::default(),
            sightings: Sightings::new(),
            prometheus_enabled: AtomicBool::new(true),
            rate_limiter: RwLock::new(Arc::new(RateLimiter::new(limit))),
        })
    }

    pub(crate) fn rate_limiter(&self) -> Arc<RateLimiter> {
        match self.rate_limiter.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the limit (and forgets every bucket).
    pub fn set_rate_limit(&self, config: RateLimitConfig) {
        let next = Arc::new(RateLimiter::new(config));
        match self.rate_limiter.write() {
            Ok(mut w) => *w = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    pub fn governance(&self) -> Arc<Governance> {
        match self.governance.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set_governance(&self, g: Governance) {
        let next = Arc::new(g);
        match self.governance.write() {
            Ok(mut w) => *w = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}
