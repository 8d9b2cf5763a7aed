//! The cap on open connections, shared by every worker. Over the cap a new
//! connection is closed at once and counted, rather than queued: a queue of
//! sockets is memory an attacker controls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::metrics::Metrics;

/// Counts open connections against a maximum.
#[derive(Debug)]
pub struct ConnectionCap {
    open: Arc<AtomicUsize>,
    max: usize,
    metrics: Arc<Metrics>,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl ConnectionCap {
    pub fn new(max: usize, metrics: Arc<Metrics>) -> Self {
        Self { open: Arc::new(AtomicUsize::new(0)), max, metrics }
    }

    /// A place for one more connection, or `None` (counted as refused).
    pub fn try_acquire(&self) -> Option<ConnectionPermit> {
        let taken = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            if n < self.max { Some(n + 1) } else { None }
        });
        if taken.is_err() {
            self.metrics.connections_refused.inc();
            return None;
        }
        self.metrics.connections.inc();
        Some(ConnectionPermit { open: self.open.clone(), metrics: self.metrics.clone() })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.metrics.connections.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_cap_and_frees_on_drop() {
        let m = Arc::new(Metrics::new());
        let cap = ConnectionCap::new(1, m.clone());
        let p = cap.try_acquire().unwrap();
        assert!(cap.try_acquire().is_none());
        assert_eq!(m.connections_refused.get(), 1);
        drop(p);
        assert!(cap.try_acquire().is_some());
        assert_eq!(cap.open(), 0);
    }
}
