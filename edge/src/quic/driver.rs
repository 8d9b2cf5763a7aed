//! The QUIC endpoint, driven by hand: one task owns the UDP socket,
//! quinn-proto's endpoint and every connection, and does all the work of
//! a request (receive, decrypt, answer, encrypt, send) in one go.
//!
//! Why not quinn's own driver: it runs the endpoint, each connection and
//! each stream as separate tasks, so one request costs three task wake-ups
//! and a timer reset per packet; at low load that was a measurable share
//! of the QUIC round trip (see README "Measuring"). Here a request is one
//! readiness event, one `recvmmsg`, the answer and one `sendmsg`.
//!
//! Initial packets (a client's first flight) cost quinn-proto a key
//! derivation and a decryption each, before it can tell a real client from
//! a flood of 1200-byte datagrams. They are held to [`INITIALS_PER_SEC`]
//! (burst the same) by a GCRA bucket checked on the first byte alone; over
//! it they are dropped unread and counted with the other dropped datagrams.
//! Packets of established connections (short headers) are never charged.
//!
//! Timers: each connection's next quinn-proto deadline is kept beside it.
//! One tokio sleep is armed for the earliest known deadline and only moved
//! earlier, never pushed back per packet; when it fires, every connection
//! is checked and the sleep re-armed for the true earliest. Deadlines
//! mostly move later as traffic flows, so that scan runs about once per
//! ack delay, not per packet.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use governor::{DefaultDirectRateLimiter, Quota};
use nexus_protocol::quic::close;
use quinn::{EcnCodepoint, EndpointConfig, ServerConfig};
use quinn_proto::{ConnectionHandle, DatagramEvent, Incoming, Transmit};

use super::conn::Conn;
use super::socket::{RecvBuffers, Socket, udp_transmit};
use super::{DRAIN_TIMEOUT, QuicError};
use crate::app::App;

/// Initial packets accepted per second (and at once). A connection's
/// handshake sends one or two; far above what an edge's clients open, far
/// below what a flood sends (`loadtest/abuse.sh`: ~55,000 per second).
pub const INITIALS_PER_SEC: u32 = 4096;

/// A QUIC v1 long-header Initial packet (RFC 9000 §17.2: form bit set,
/// type bits 00), by its first byte.
fn is_initial(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| b & 0xB0 == 0x80)
}

/// A bound QUIC endpoint, ready for [`serve`].
#[derive(Debug)]
pub struct Endpoint {
    socket: Socket,
    proto: quinn_proto::Endpoint,
}

impl Endpoint {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// Binds the endpoint on `addr`; call inside the runtime that will serve it.
pub fn bind(addr: SocketAddr, config: ServerConfig) -> Result<Endpoint, QuicError> {
    let socket = Socket::bind(addr).map_err(|source| QuicError::Bind { addr, source })?;
    let proto = quinn_proto::Endpoint::new(
        Arc::new(EndpointConfig::default()),
        Some(Arc::new(config)),
        !socket.may_fragment(),
        None,
    );
    Ok(Endpoint { socket, proto })
}

/// Serves connections on `endpoint` until `shutdown` completes, then
/// closes them and waits up to [`DRAIN_TIMEOUT`] for the peers to hear it.
pub async fn serve(endpoint: Endpoint, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let mut driver = Driver {
        segments: endpoint.socket.max_segments(),
        socket: endpoint.socket,
        proto: endpoint.proto,
        app,
        conns: HashMap::new(),
        queue: Vec::new(),
        recv: Box::default(),
        send_buf: Vec::with_capacity(64 * 1024),
        response_buf: Vec::new(),
        earliest: None,
        closing_since: None,
        initials: {
            let n =
                std::num::NonZeroU32::new(INITIALS_PER_SEC).unwrap_or(std::num::NonZeroU32::MIN);
            DefaultDirectRateLimiter::direct(Quota::per_second(n))
        },
    };
    driver.run(shutdown).await;
}

struct Driver {
    socket: Socket,
    proto: quinn_proto::Endpoint,
    app: Arc<App>,
    conns: HashMap<ConnectionHandle, Conn>,
    /// Connections with something to do since they were last driven.
    queue: Vec<ConnectionHandle>,
    recv: Box<RecvBuffers>,
    segments: usize,
    send_buf: Vec<u8>,
    /// For the endpoint's own answers (refusals, version negotiation).
    response_buf: Vec<u8>,
    /// No connection deadline is earlier than this.
    earliest: Option<Instant>,
    closing_since: Option<Instant>,
    /// The Initial packets' budget ([`INITIALS_PER_SEC`]).
    initials: DefaultDirectRateLimiter,
}

impl Driver {
    async fn run(&mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let far = Instant::now() + std::time::Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far.into());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown, if self.closing_since.is_none() => self.begin_close(),
                received = self.socket.recv(&mut self.recv) => match received {
                    Ok(count) => self.dispatch(count),
                    // ICMP errors from earlier sends say nothing reliable.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    Err(e) => tracing::warn!(error = %e, "QUIC receive failed"),
                },
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.expire(Instant::now());
                }
            }
            self.drive_queued().await;
            if let Some(since) = self.closing_since {
                if self.conns.is_empty() {
                    break;
                }
                if since.elapsed() >= DRAIN_TIMEOUT {
                    tracing::warn!("QUIC connections still open after the drain timeout");
                    break;
                }
                // Wake for the drain timeout even if no connection timer does.
                let drain_end = since + DRAIN_TIMEOUT;
                self.earliest = sooner(self.earliest, drain_end);
            }
            if self.earliest != armed {
                if let Some(at) = self.earliest {
                    sleep.as_mut().reset(at.into());
                }
                armed = self.earliest;
            }
        }
    }

    /// Stops accepting and closes every connection.
    fn begin_close(&mut self) {
        let now = Instant::now();
        self.closing_since = Some(now);
        for (handle, conn) in &mut self.conns {
            conn.close(now, close::SHUTDOWN, b"shutting down");
            enqueue(&mut self.queue, *handle, conn);
        }
    }

    /// Hands each datagram of a received batch to quinn-proto. A full
    /// batch leaves the socket ready, so the next turn reads on after
    /// timers and sends have had theirs.
    fn dispatch(&mut self, count: usize) {
        let now = Instant::now();
        for i in 0..count {
            let meta = self.recv.meta[i];
            let stride = meta.stride.max(1);
            let ecn = meta.ecn.and_then(|e| EcnCodepoint::from_bits(e as u8));
            // One copy out of the receive slot; GRO segments share it.
            let mut data = BytesMut::from(self.recv.slot(i));
            while !data.is_empty() {
                let datagram = data.split_to(stride.min(data.len()));
                self.datagram(now, meta.addr, meta.dst_ip, ecn, datagram);
            }
        }
    }

    fn datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<std::net::IpAddr>,
        ecn: Option<EcnCodepoint>,
        data: BytesMut,
    ) {
        if is_initial(&data) && self.initials.check().is_err() {
            self.app.metrics.quic_datagrams_dropped.inc();
            return;
        }
        self.response_buf.clear();
        match self.proto.handle(now, remote, local_ip, ecn, data, &mut self.response_buf) {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(conn) = self.conns.get_mut(&handle) {
                    conn.proto.handle_event(event);
                    enqueue(&mut self.queue, handle, conn);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => self.incoming(now, incoming),
            Some(DatagramEvent::Response(transmit)) => self.respond(&transmit),
            None => {
                self.app.metrics.quic_datagrams_dropped.inc();
            }
        }
    }

    /// A client's first packet: a place under the cap, or a refusal.
    fn incoming(&mut self, now: Instant, incoming: Incoming) {
        let permit = match self.closing_since {
            Some(_) => None,
            None => self.app.connections.try_acquire(incoming.remote_address().ip()),
        };
        let Some(permit) = permit else {
            self.response_buf.clear();
            let transmit = self.proto.refuse(incoming, &mut self.response_buf);
            self.respond(&transmit);
            return;
        };
        self.response_buf.clear();
        match self.proto.accept(incoming, now, &mut self.response_buf, None) {
            Ok((handle, proto)) => {
                let conn = self.conns.entry(handle).or_insert(Conn::new(proto, permit));
                enqueue(&mut self.queue, handle, conn);
            }
            Err(e) => {
                tracing::debug!(error = %e.cause, "QUIC connection not accepted");
                if let Some(transmit) = e.response {
                    self.respond(&transmit);
                }
            }
        }
    }

    /// The endpoint's own answers are best effort, as any datagram is:
    /// dropped if the socket buffer is full.
    fn respond(&self, transmit: &Transmit) {
        let _ = self.socket.try_send(&udp_transmit(transmit, &self.response_buf));
    }

    /// Runs the timers that are due, and recomputes the earliest.
    fn expire(&mut self, now: Instant) {
        let mut earliest: Option<Instant> = None;
        for (handle, conn) in &mut self.conns {
            match conn.timeout {
                Some(at) if at <= now => {
                    conn.proto.handle_timeout(now);
                    enqueue(&mut self.queue, *handle, conn);
                }
                Some(at) => earliest = sooner(earliest, at),
                None => {}
            }
        }
        self.earliest = earliest;
    }

    /// Lets every queued connection do all it can: endpoint bookkeeping,
    /// application events (requests answered here), then its packets.
    async fn drive_queued(&mut self) {
        while let Some(handle) = self.queue.pop() {
            let now = Instant::now();
            let Some(conn) = self.conns.get_mut(&handle) else {
                continue;
            };
            conn.queued = false;
            loop {
                let mut busy = false;
                while let Some(event) = conn.proto.poll_endpoint_events() {
                    busy = true;
                    if let Some(back) = self.proto.handle_event(handle, event) {
                        conn.proto.handle_event(back);
                    }
                }
                busy |= conn.handle_events(&self.app, now) > 0;
                loop {
                    self.send_buf.clear();
                    let Some(t) = conn.proto.poll_transmit(now, self.segments, &mut self.send_buf)
                    else {
                        break;
                    };
                    busy = true;
                    if let Err(e) = self.socket.send(&udp_transmit(&t, &self.send_buf)).await {
                        tracing::warn!(error = %e, "QUIC send failed");
                    }
                }
                if !busy {
                    break;
                }
            }
            if conn.proto.is_drained() {
                self.conns.remove(&handle);
                continue;
            }
            conn.timeout = conn.proto.poll_timeout();
            if let Some(at) = conn.timeout {
                self.earliest = sooner(self.earliest, at);
            }
        }
    }
}

/// Queues `conn` for driving, once.
fn enqueue(queue: &mut Vec<ConnectionHandle>, handle: ConnectionHandle, conn: &mut Conn) {
    if !conn.queued {
        conn.queued = true;
        queue.push(handle);
    }
}

/// The earlier of a known deadline and `at`.
fn sooner(known: Option<Instant>, at: Instant) -> Option<Instant> {
    Some(known.map_or(at, |k| k.min(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_header_initials_are_charged() {
        // Initial (0xc0 | pn length), with and without the fixed bit.
        assert!(is_initial(&[0xc3, 0, 0, 0, 1]));
        assert!(is_initial(&[0x83]));
        // 0-RTT (01), Handshake (10), Retry (11), short header, empty.
        for first in [0xd0u8, 0xe0, 0xf0, 0x40, 0x5f] {
            assert!(!is_initial(&[first]), "{first:#x}");
        }
        assert!(!is_initial(&[]));
    }
}
