//! A QUIC endpoint's UDP socket: batched receive (`recvmmsg`, GRO) and
//! segmented send (GSO) through quinn-udp, readiness through tokio. Used by
//! the edge's endpoint and by the load generator's QUIC connections.
//!
//! Two syscalls per request are saved against tokio's `UdpSocket`:
//! - the socket is registered for reading only. A UDP socket raises an
//!   `EPOLLOUT` edge every time a sent datagram leaves its buffer, and with
//!   write interest each one woke the thread for nothing (an extra
//!   `epoll_wait` per answer). Sends that find the buffer full wait a
//!   millisecond and retry: the buffer is full only under overload.
//! - a batch shorter than the slots means the queue was empty: tokio is
//!   told so at once (see [`Socket::recv`]) instead of learning it from one
//!   more `recvmmsg` returning `EAGAIN`.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::time::Duration;

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Datagrams read per `recvmmsg` on a server.
pub const BATCH: usize = quinn::udp::BATCH_SIZE;
/// One receive slot: the largest UDP payload, which also bounds what GRO
/// coalesces into one slot.
const SLOT: usize = 64 * 1024;
/// Datagrams one transmit may carry with GSO (quinn's own cap).
const MAX_SEGMENTS: usize = 10;
/// Pause before retrying a send that found the socket buffer full.
const SEND_RETRY: Duration = Duration::from_millis(1);

/// A bound UDP socket registered with the current tokio runtime.
#[derive(Debug)]
pub struct Socket {
    io: AsyncFd<std::net::UdpSocket>,
    state: UdpSocketState,
}

impl Socket {
    /// Binds `addr`; call inside the runtime that will serve it.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let std = std::net::UdpSocket::bind(addr)?;
        let state = UdpSocketState::new((&std).into())?;
        std.set_nonblocking(true)?;
        // Deprecated because a `T` that does not own its descriptor could
        // close it while registered; `std::net::UdpSocket` owns it and the
        // `AsyncFd` owns the socket, so that cannot happen here (the sound
        // replacement is `unsafe`, which this workspace forbids).
        #[allow(deprecated)]
        let io = AsyncFd::with_interest(std, Interest::READABLE)?;
        Ok(Self { io, state })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Whether the kernel may fragment what we send (then path MTU
    /// discovery must stay off).
    pub fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    /// Datagrams per transmit.
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, MAX_SEGMENTS)
    }

    /// Waits for datagrams and reads one batch of them.
    pub async fn recv<const N: usize>(&self, bufs: &mut RecvBuffers<N>) -> io::Result<usize> {
        loop {
            let mut ready = self.io.readable().await?;
            let mut slices: [IoSliceMut<'_>; N] = {
                let mut chunks = bufs.data.chunks_mut(SLOT).map(IoSliceMut::new);
                std::array::from_fn(|_| chunks.next().expect("N slots"))
            };
            let read = ready
                .try_io(|fd| self.state.recv(fd.get_ref().into(), &mut slices, &mut bufs.meta));
            match read {
                Ok(Ok(count)) => {
                    if count < N {
                        // Drained. A datagram landing after the read raises
                        // a new epoll event, so nothing is missed.
                        ready.clear_ready();
                    }
                    return Ok(count);
                }
                Ok(Err(e)) => return Err(e),
                // Readiness was stale and is now cleared: wait again.
                Err(_) => {}
            }
        }
    }

    /// Sends without waiting (`WouldBlock` when the socket buffer is full).
    pub fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.state.send(self.io.get_ref().into(), transmit)
    }

    /// Sends, waiting for room in the socket buffer if need be. On the
    /// edge every connection shares this socket, so when it is full nothing
    /// else could be sent anyway.
    pub async fn send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        loop {
            match self.try_send(transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(SEND_RETRY).await;
                }
                other => return other,
            }
        }
    }
}

/// Receive slots for one batch of `N` and what the kernel said of each.
#[derive(Debug)]
pub struct RecvBuffers<const N: usize = BATCH> {
    data: Vec<u8>,
    pub meta: [RecvMeta; N],
}

impl<const N: usize> Default for RecvBuffers<N> {
    fn default() -> Self {
        Self { data: vec![0; SLOT * N], meta: [RecvMeta::default(); N] }
    }
}

impl<const N: usize> RecvBuffers<N> {
    /// The bytes received in slot `i` (possibly several GRO segments of
    /// `meta[i].stride` bytes each).
    pub fn slot(&self, i: usize) -> &[u8] {
        &self.data[i * SLOT..i * SLOT + self.meta[i].len]
    }
}

/// What quinn-proto asks to send (`t`, its bytes at the start of
/// `contents`), as quinn-udp takes it.
pub fn udp_transmit<'a>(t: &quinn_proto::Transmit, contents: &'a [u8]) -> Transmit<'a> {
    Transmit {
        destination: t.destination,
        ecn: t.ecn.and_then(|e| quinn::udp::EcnCodepoint::from_bits(e as u8)),
        contents: &contents[..t.size],
        segment_size: t.segment_size,
        src_ip: t.src_ip,
    }
}
