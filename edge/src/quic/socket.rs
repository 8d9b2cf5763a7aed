//! The endpoint's UDP socket: batched receive (`recvmmsg`, GRO) and
//! segmented send (GSO) through quinn-udp, readiness through tokio.
//!
//! A batch shorter than the slots means the queue was empty: tokio is told
//! so right away (see [`Socket::recv`]) instead of learning it from one
//! more `recvmmsg` returning `EAGAIN`, a syscall per request at low load.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

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
    io: UdpSocket,
    state: UdpSocketState,
}

impl Socket {
    /// Binds `addr`; call inside the runtime that will serve it.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let std = std::net::UdpSocket::bind(addr)?;
        let state = UdpSocketState::new((&std).into())?;
        std.set_nonblocking(true)?;
        Ok(Self { io: UdpSocket::from_std(std)?, state })
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

    /// Waits for datagrams and reads one batch of them.
    pub async fn recv(&self, bufs: &mut RecvBuffers) -> io::Result<usize> {
        loop {
            self.io.readable().await?;
            let mut slices: [IoSliceMut<'_>; BATCH] = {
                let mut chunks = bufs.data.chunks_mut(SLOT).map(IoSliceMut::new);
                std::array::from_fn(|_| chunks.next().expect("BATCH slots"))
            };
            let mut count = 0;
            let read = self.io.try_io(Interest::READABLE, || {
                count = self.state.recv((&self.io).into(), &mut slices, &mut bufs.meta)?;
                if count < BATCH {
                    // Drained: `WouldBlock` makes tokio clear the socket's
                    // readiness now (what we read is kept in `count`). A
                    // datagram landing after the read raises a new epoll
                    // event, so nothing is missed.
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match read {
                Ok(()) => return Ok(count),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if count > 0 {
                        return Ok(count);
                    }
                }
                Err(e) => return Err(e),
            }
        }
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
