//! What the operator would see, sampled on a thread of its own (so a
//! flood on the generator's runtime cannot starve it): the health check
//! every [`TICK`] on one keep-alive connection, a health check on a fresh
//! connection every [`FRESH_EVERY`] ticks (what a load balancer that
//! reconnects sees, refused once the connection cap is full), the edge's
//! RSS, and its open-connections gauge from `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// Between two keep-alive health checks.
pub const TICK: Duration = Duration::from_millis(100);
/// A fresh-connection health check (and a `/metrics` scrape) every this many ticks.
const FRESH_EVERY: u32 = 5;
/// A health check slower than this failed.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
pub const HEALTH_PATH: &str = "/api/aliases/health";
pub const METRICS_PATH: &str = "/metrics";
/// The open-connections gauge.
const CONNECTIONS_GAUGE: &str = "nexus_edge_connections";

/// What was seen during one phase (before, during, after the attack).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Watch {
    /// Keep-alive health checks answered 200 within [`HEALTH_TIMEOUT`].
    pub health_ok: u64,
    pub health_failed: u64,
    pub health_max_ms: f64,
    /// Health checks each on a new connection.
    pub fresh_ok: u64,
    pub fresh_failed: u64,
    /// Edge RSS (VmRSS) at the first sample and the highest, in KiB.
    pub rss_first_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    /// Highest `nexus_edge_connections` scraped.
    pub peak_connections: Option<f64>,
}

/// The sampling thread; phases are switched by the caller.
#[derive(Debug)]
pub struct Monitor {
    phase: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    watches: Arc<Mutex<Vec<Watch>>>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts sampling `addr` (and `/proc/{pid}` when given) into phase 0
    /// of `phases`.
    pub fn start(addr: SocketAddr, pid: Option<u32>, phases: usize) -> std::io::Result<Self> {
        let phase = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let watches = Arc::new(Mutex::new(vec![Watch::default(); phases.max(1)]));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (p, d, w) = (phase.clone(), done.clone(), watches.clone());
        let thread = std::thread::Builder::new()
            .name("abuse-monitor".into())
            .spawn(move || runtime.block_on(sample(addr, pid, p, d, w)))?;
        Ok(Self { phase, done, watches, thread: Some(thread) })
    }

    pub fn phase(&self, phase: usize) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Stops sampling; the watch of every phase.
    pub fn finish(mut self) -> Vec<Watch> {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.watches.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

async fn sample(
    addr: SocketAddr,
    pid: Option<u32>,
    phase: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    watches: Arc<Mutex<Vec<Watch>>>,
) {
    let mut kept = Probe::new(addr);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u32;
    while !done.load(Ordering::Relaxed) {
        tick.tick().await;
        n = n.wrapping_add(1);
        let started = Instant::now();
        let health = kept.get(HEALTH_PATH).await;
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        let (fresh, gauge) = if n.is_multiple_of(FRESH_EVERY) {
            let fresh = Probe::new(addr).get(HEALTH_PATH).await;
            let gauge = match kept.get(METRICS_PATH).await {
                Ok((_, text)) => {
                    parse_metrics(&String::from_utf8_lossy(&text)).get(CONNECTIONS_GAUGE).copied()
                }
                Err(()) => None,
            };
            (Some(fresh.is_ok_and(|(s, _)| s == StatusCode::OK)), gauge)
        } else {
            (None, None)
        };
        let rss = pid.and_then(rss_kib);
        let Ok(mut all) = watches.lock() else { return };
        let i = phase.load(Ordering::Relaxed).min(all.len() - 1);
        let w = &mut all[i];
        if health.is_ok_and(|(s, _)| s == StatusCode::OK) {
            w.health_ok += 1;
        } else {
            w.health_failed += 1;
        }
        w.health_max_ms = w.health_max_ms.max(took_ms);
        match fresh {
            Some(true) => w.fresh_ok += 1,
            Some(false) => w.fresh_failed += 1,
            None => {}
        }
        if let Some(kib) = rss {
            w.rss_first_kib.get_or_insert(kib);
            w.rss_peak_kib = Some(w.rss_peak_kib.map_or(kib, |p| p.max(kib)));
        }
        if let Some(g) = gauge {
            w.peak_connections = Some(w.peak_connections.map_or(g, |p| p.max(g)));
        }
    }
}

/// A keep-alive HTTP/1.1 connection for GETs, reopened after a failure.
#[derive(Debug)]
pub struct Probe {
    addr: SocketAddr,
    sender: Option<http1::SendRequest<Empty<Bytes>>>,
}

impl Probe {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// Status and body of `GET path`, or `Err` on any failure within
    /// [`HEALTH_TIMEOUT`].
    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), ()> {
        let result = tokio::time::timeout(HEALTH_TIMEOUT, self.try_get(path)).await;
        match result {
            Ok(Ok(answer)) => Ok(answer),
            _ => {
                self.sender = None;
                Err(())
            }
        }
    }

    async fn try_get(&mut self, path: &str) -> Result<(StatusCode, Bytes), ()> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = TcpStream::connect(self.addr).await.map_err(|_| ())?;
            let _ = tcp.set_nodelay(true);
            let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await.map_err(|_| ())?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().ok_or(())?;
        sender.ready().await.map_err(|_| ())?;
        let req = Request::get(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .body(Empty::new())
            .map_err(|_| ())?;
        let resp = sender.send_request(req).await.map_err(|_| ())?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|_| ())?.to_bytes();
        Ok((status, body))
    }
}

/// `name{labels}` → value of every sample in a Prometheus text exposition.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The resident set of process `pid`, in KiB (VmRSS of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time process `pid` has used (utime + stime of /proc/PID/stat).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on (sysconf needs libc).
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_and_skips_comments() {
        let m = parse_metrics(
            "# HELP x y\nnexus_edge_connections 17\nnexus_edge_resolve_total{outcome=\"ok\"} 5\n",
        );
        assert_eq!(m["nexus_edge_connections"], 17.0);
        assert_eq!(m["nexus_edge_resolve_total{outcome=\"ok\"}"], 5.0);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|k| k > 0));
        assert!(cpu_time(me).is_some());
    }
}
