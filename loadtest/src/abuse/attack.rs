//! What every attack shares: where it aims, when it stops, and the counts
//! it keeps of what it did (atomics: attack tasks bump them concurrently,
//! the report reads them once at the end).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

/// Where the attacks aim and how hard.
#[derive(Debug, Clone)]
pub struct Aim {
    /// The edge's HTTP address (h2c and plain TCP attacks).
    pub http: SocketAddr,
    /// The edge's QUIC address (QUIC attacks).
    pub quic: Option<SocketAddr>,
    /// `host:port` as sent in `:authority`.
    pub authority: String,
    /// A resolve path the HTTP/2 attacks ask for (so the edge does the
    /// real work of a request before it is reset).
    pub path: String,
    /// The legitimate bearer token (rapid reset sends it: the worst case
    /// makes the edge check it).
    pub token: Option<String>,
    /// Attack connections for the HTTP/2 floods (and QUIC connections
    /// for abandoned streams).
    pub connections: usize,
    /// Idle connections held (idle scenario).
    pub idle: usize,
    /// Slowloris connections and the pause between their bytes.
    pub slowloris: usize,
    pub slowloris_every: Duration,
    /// Connection flood: connections held open (to fill the cap) and
    /// tasks opening and closing connections as fast as they can.
    pub flood_hold: usize,
    pub flood_tasks: usize,
    /// QUIC Initial flood: UDP sockets (each a source port, replaced
    /// every [`crate::abuse::quic::DATAGRAMS_PER_PORT`] datagrams).
    pub quic_sockets: usize,
}

/// Tells attack tasks to stop; cheap to clone.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub fn stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stop is asked (or the sender is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Sleeps `d`, or less if stop comes first; returns whether to go on.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => !self.stopped(),
            () = self.wait() => false,
        }
    }
}

/// What an attack did, counted as it went.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections_opened: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Connections the edge closed (EOF or reset seen by the attacker).
    pub closed_by_edge: AtomicU64,
    /// HTTP/2 frames, QUIC datagrams, or slowloris bytes written.
    pub units_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Most attack connections open at once (idle, slowloris, flood hold,
    /// QUIC); abandoned QUIC streams for that scenario.
    pub peak_held: AtomicU64,
    held: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sent(&self, units: u64, bytes: usize) {
        Self::add(&self.units_sent, units);
        Self::add(&self.bytes_sent, bytes as u64);
    }

    /// One more attack connection (or stream) held open.
    pub fn hold(&self) {
        let now = self.held.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_held.fetch_max(now, Ordering::Relaxed);
    }

    pub fn release(&self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, unit: &'static str) -> AttackStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AttackStats {
            unit,
            sent: get(&self.units_sent),
            bytes_sent: get(&self.bytes_sent),
            connections_opened: get(&self.connections_opened),
            connect_failures: get(&self.connect_failures),
            closed_by_edge: get(&self.closed_by_edge),
            peak_held: get(&self.peak_held),
        }
    }
}

/// [`Counters`] as reported.
#[derive(Debug, Clone, Serialize)]
pub struct AttackStats {
    /// What `sent` counts: `frames`, `datagrams`, `bytes`, `streams`, `connections`.
    pub unit: &'static str,
    pub sent: u64,
    pub bytes_sent: u64,
    pub connections_opened: u64,
    pub connect_failures: u64,
    pub closed_by_edge: u64,
    pub peak_held: u64,
}
