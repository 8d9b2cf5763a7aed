//! The endpoint's UDP socket: batched receive (`recvmmsg`, GRO) and
//! segmented send (GSO) through quinn-udp, readiness through tokio.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;

/// Datagrams read per `recvmmsg`.
pub const BATCH: usize = quinn::udp::BATCH_SIZE;
/// One receive slot: the largest UDP payload, which also bounds what GRO
/// coalesces into one slot.
const SLOT: usize = 64 * 1024;
/// Datagrams one transmit may carry with GSO (quinn's own cap).
const MAX_SEGMENTS: usize = 10;

/// A bound UDP socket registered with the current tokio runtime.
#[derive(Debug)]
pub struct Socket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
}

impl Socket {
    /// Binds `addr`; call inside the runtime that will serve it.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let std = std::net::UdpSocket::bind(addr)?;
        let state = UdpSocketState::new((&std).into())?;
        std.set_nonblocking(true)?;
        Ok(Self { io: tokio::net::UdpSocket::from_std(std)?, state })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
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

    /// Waits until a receive may succeed.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Reads one batch without waiting (`WouldBlock` when there is none).
    pub fn try_recv(&self, bufs: &mut RecvBuffers) -> io::Result<usize> {
        let mut slices: [IoSliceMut<'_>; BATCH] = {
            let mut chunks = bufs.data.chunks_mut(SLOT).map(IoSliceMut::new);
            std::array::from_fn(|_| chunks.next().expect("BATCH slots"))
        };
        self.io.try_io(Interest::READABLE, || {
            self.state.recv((&self.io).into(), &mut slices, &mut bufs.meta)
        })
    }

    /// Sends without waiting (`WouldBlock` when the socket buffer is full).
    pub fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.io.try_io(Interest::WRITABLE, || self.state.send((&self.io).into(), transmit))
    }

    /// Sends, waiting for room in the socket buffer if need be. Every
    /// connection shares this socket, so when it is full nothing else
    /// could be sent anyway.
    pub async fn send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        loop {
            match self.try_send(transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.writable().await?,
                other => return other,
            }
        }
    }
}

/// Receive slots for one batch and what the kernel said of each.
#[derive(Debug)]
pub struct RecvBuffers {
    data: Vec<u8>,
    pub meta: [RecvMeta; BATCH],
}

impl Default for RecvBuffers {
    fn default() -> Self {
        Self { data: vec![0; SLOT * BATCH], meta: [RecvMeta::default(); BATCH] }
    }
}

impl RecvBuffers {
    /// The bytes received in slot `i` (possibly several GRO segments of
    /// `meta[i].stride` bytes each).
    pub fn slot(&self, i: usize) -> &[u8] {
        &self.data[i * SLOT..i * SLOT + self.meta[i].len]
    }
}
