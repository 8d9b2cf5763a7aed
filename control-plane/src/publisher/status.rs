//! What the API shows of propagation: the publisher's state (for
//! `/api/aliases/status`) and the Redis handle the fleet is read from (for
//! `/api/admin/edges`). Shared between the publisher task and the handlers;
//! the lock is never held across an await.

use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use super::bus::Bus;

/// The publisher's state as last reported by its loop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PublisherState {
    /// Whether this instance runs a publisher at all (`NEXUS_PUBLISH`).
    pub enabled: bool,
    pub leader: bool,
    pub epoch: Option<u64>,
    pub published_version: Option<u64>,
    pub snapshot_version: Option<u64>,
    /// Unix ms of the last delta or snapshot written to Redis.
    pub last_publish_ms: Option<i64>,
    /// The last failure, cleared by the next successful step.
    pub last_error: Option<String>,
    /// The signing key is the public development key.
    pub dev_key: bool,
}

/// Propagation state shared by the publisher and the API.
#[derive(Debug, Default)]
pub struct Propagation {
    bus: OnceLock<Bus>,
    state: Arc<Mutex<PublisherState>>,
}

impl Propagation {
    /// Gives the API a Redis handle to read the fleet from. The first call
    /// wins; later ones are ignored.
    pub fn attach(&self, bus: Bus) {
        let _ = self.bus.set(bus);
    }

    pub(crate) fn bus(&self) -> Option<&Bus> {
        self.bus.get()
    }

    /// The handle the publisher reports through.
    pub fn reporter(&self) -> Reporter {
        Reporter(self.state.clone())
    }

    pub(crate) fn state(&self) -> PublisherState {
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Where the publisher writes its state.
#[derive(Debug, Clone, Default)]
pub struct Reporter(Arc<Mutex<PublisherState>>);

impl Reporter {
    pub(crate) fn update(&self, f: impl FnOnce(&mut PublisherState)) {
        match self.0.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}
