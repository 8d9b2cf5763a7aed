//! The cap on open connections, shared by every worker, and optionally a
//! cap per client address (`EDGE_MAX_CONNECTIONS_PER_IP`), so one host
//! cannot take every place under the first. Over either cap a new
//! connection is closed at once and counted, rather than queued: a queue
//! of sockets is memory an attacker controls.
//!
//! Addresses are counted as hosts: IPv4 by address, IPv6 by /64 (one
//! subscriber's prefix; counting single v6 addresses would give an attacker
//! 2^64 caps), IPv4-mapped IPv6 as IPv4. The per-address count is a mutex'd
//! map touched twice per connection (open, close), never per request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;

/// Counts open connections against a maximum.
#[derive(Debug)]
pub struct ConnectionCap {
    open: Arc<AtomicUsize>,
    max: usize,
    per_ip: Option<PerIp>,
    metrics: Arc<Metrics>,
}

/// Open connections per host key (see [`host`]).
type HostCounts = Arc<Mutex<HashMap<IpAddr, u32>>>;

#[derive(Debug)]
struct PerIp {
    max: u32,
    open: HostCounts,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    open: Arc<AtomicUsize>,
    /// The address's count, when addresses are capped.
    host: Option<(IpAddr, HostCounts)>,
    metrics: Arc<Metrics>,
}

/// The key a peer is counted under.
pub(crate) fn host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

impl ConnectionCap {
    pub fn new(max: usize, metrics: Arc<Metrics>) -> Self {
        Self { open: Arc::new(AtomicUsize::new(0)), max, per_ip: None, metrics }
    }

    /// Also caps each client address at `max` connections (`None`: no cap).
    pub fn with_per_ip(mut self, max: Option<u32>) -> Self {
        self.per_ip = max.map(|max| PerIp { max, open: Arc::default() });
        self
    }

    /// A place for one more connection from `peer`, or `None` (counted as
    /// refused).
    pub fn try_acquire(&self, peer: IpAddr) -> Option<ConnectionPermit> {
        let taken = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            if n < self.max { Some(n + 1) } else { None }
        });
        if taken.is_err() {
            self.metrics.connections_refused.inc();
            return None;
        }
        let mut host = None;
        if let Some(per_ip) = &self.per_ip {
            let key = self::host(peer);
            let mut open = per_ip.open.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(key).or_insert(0);
            if *n >= per_ip.max {
                drop(open);
                // Gives the global place back: no permit exists to do it.
                self.open.fetch_sub(1, Ordering::AcqRel);
                self.metrics.connections_refused_per_ip.inc();
                return None;
            }
            *n += 1;
            host = Some((key, per_ip.open.clone()));
        }
        self.metrics.connections.inc();
        Some(ConnectionPermit { open: self.open.clone(), host, metrics: self.metrics.clone() })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if let Some((key, open)) = &self.host {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = open.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(key);
                }
            }
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.metrics.connections.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn refuses_over_the_cap_and_frees_on_drop() {
        let m = Arc::new(Metrics::new());
        let cap = ConnectionCap::new(1, m.clone());
        let p = cap.try_acquire(A).unwrap();
        assert!(cap.try_acquire(B).is_none());
        assert_eq!(m.connections_refused.get(), 1);
        drop(p);
        assert!(cap.try_acquire(A).is_some());
        assert_eq!(cap.open(), 0);
    }

    #[test]
    fn one_address_cannot_take_every_place() {
        let m = Arc::new(Metrics::new());
        let cap = ConnectionCap::new(10, m.clone()).with_per_ip(Some(2));
        let a1 = cap.try_acquire(A).unwrap();
        let _a2 = cap.try_acquire(A).unwrap();
        assert!(cap.try_acquire(A).is_none());
        assert_eq!(m.connections_refused_per_ip.get(), 1);
        assert_eq!(m.connections_refused.get(), 0);
        // The refusal gave its global place back; another host still gets in.
        assert_eq!(cap.open(), 2);
        assert_eq!(m.connections.get(), 2);
        let _b = cap.try_acquire(B).unwrap();
        drop(a1);
        let _a3 = cap.try_acquire(A).expect("a closed connection frees its host's place");
        assert_eq!(cap.open(), 3);
    }

    #[test]
    fn ipv6_counts_by_prefix_and_mapped_v4_as_v4() {
        let m = Arc::new(Metrics::new());
        let cap = ConnectionCap::new(10, m).with_per_ip(Some(1));
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _p = cap.try_acquire(one).unwrap();
        assert!(cap.try_acquire(same_64).is_none());
        assert!(cap.try_acquire(other_64).is_some());
        let _v4 = cap.try_acquire(A).unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(cap.try_acquire(mapped).is_none());
    }
}
