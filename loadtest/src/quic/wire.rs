//! One QUIC connection that its own task drives on quinn-proto: the
//! request is written, its packet sent, the answer's packet received and
//! decrypted, and the answer decoded, all in the caller's task.
//!
//! Why not the client library ([`nexus_edge::quic_client`], on quinn): as
//! for HTTP/1.1 (`h1.rs`), the generator must cost little per request or it
//! measures itself. quinn runs the endpoint, the connection and the stream
//! as three tasks, so each answer crosses two task wake-ups on the client
//! before the caller sees it, which HTTP/1.1 over TLS (one task) does not
//! pay. The wire format and TLS configuration are the library's.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use nexus_edge::quic::socket::{RecvBuffers, Socket, udp_transmit};
use nexus_protocol::quic::{FrameError, Reply, Request, Status, decode_reply};
use quinn::{ClientConfig, Dir, EndpointConfig, StreamId, VarInt};
use quinn_proto::{
    ConnectError, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Endpoint, Event,
    ReadError, WriteError,
};
use tokio::time::Sleep;

/// Datagrams read per `recvmmsg`; answers are small, a few slots do.
const SLOTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("UDP socket: {0}")]
    Io(#[from] io::Error),
    #[error("cannot connect: {0}")]
    Connect(#[from] ConnectError),
    #[error("connection: {0}")]
    Lost(#[from] ConnectionError),
    #[error("the edge sent a malformed frame: {0}")]
    Frame(#[from] FrameError),
    #[error("the edge closed the stream: {code}: {message}")]
    Closed { code: String, message: String },
    #[error("the edge ended the stream")]
    Finished,
    #[error("answer {got} arrived where {expected} was due")]
    OutOfOrder { expected: u64, got: u64 },
}

/// The status and id of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub id: u64,
    pub status: Status,
}

pub struct WireConnection {
    /// The edge's socket type: read-only registration, short batches
    /// clear readiness (see `nexus_edge::quic::socket`).
    socket: Socket,
    endpoint: Endpoint,
    handle: ConnectionHandle,
    conn: Connection,
    connected: bool,
    stream: Option<StreamId>,
    next_id: u64,
    /// Stream bytes received and not yet decoded.
    inbox: Vec<u8>,
    request: Vec<u8>,
    send_buf: Vec<u8>,
    recv: Box<RecvBuffers<SLOTS>>,
    segments: usize,
    sleep: Pin<Box<Sleep>>,
    /// When `sleep` is set to fire; only moved earlier between firings.
    armed: Option<Instant>,
}

impl std::fmt::Debug for WireConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireConnection").field("remote", &self.conn.remote_address()).finish()
    }
}

impl WireConnection {
    /// Handshakes with `addr` and opens the stream requests travel on.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        config: ClientConfig,
    ) -> Result<Self, WireError> {
        let local: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            ([0, 0, 0, 0], 0).into()
        };
        let socket = Socket::bind(local)?;
        let mut endpoint =
            Endpoint::new(Arc::new(EndpointConfig::default()), None, !socket.may_fragment(), None);
        let (handle, conn) = endpoint.connect(Instant::now(), config, addr, server_name)?;
        let mut wire = Self {
            segments: socket.max_segments(),
            socket,
            endpoint,
            handle,
            conn,
            connected: false,
            stream: None,
            next_id: 0,
            inbox: Vec::with_capacity(4096),
            request: Vec::with_capacity(256),
            send_buf: Vec::with_capacity(64 * 1024),
            recv: Box::default(),
            sleep: Box::pin(tokio::time::sleep_until(Instant::now().into())),
            armed: None,
        };
        loop {
            wire.drive().await?;
            if wire.connected
                && let Some(id) = wire.conn.streams().open(Dir::Bi)
            {
                wire.stream = Some(id);
                return Ok(wire);
            }
            wire.wait().await?;
        }
    }

    /// Resolves `context/alias` and waits for the answer.
    pub async fn resolve(&mut self, context: &str, alias: &str) -> Result<Answered, WireError> {
        self.call(|id, out| {
            // Names from the key space are far below the frame limit.
            let _ = Request::Resolve { id, context, alias }.encode(out);
        })
        .await
    }

    /// Sends the request `encode` writes for the id it is given, and waits
    /// for its answer.
    pub async fn call(
        &mut self,
        encode: impl FnOnce(u64, &mut Vec<u8>),
    ) -> Result<Answered, WireError> {
        let mut encode = Some(encode);
        let mut answer = None;
        self.call_many(
            1,
            |_, id, out| {
                if let Some(encode) = encode.take() {
                    encode(id, out);
                }
            },
            |a| answer = Some(a),
        )
        .await?;
        answer.ok_or(WireError::Finished)
    }

    /// Pipelines `count` requests: all of them (`encode(i, id, out)` writes
    /// the i-th) go out before any answer is awaited, and `answered` is
    /// called with each answer as it is decoded, in order.
    ///
    /// The last answer is handed back as soon as it is decoded, as a client
    /// library that wakes its reader before tidying up would: what the
    /// connection has left to do after it (an ACK it may owe, its timers)
    /// waits for the next call's [`Self::drive`], like everything else that
    /// happens between calls, and the next request carries those ACKs.
    pub async fn call_many(
        &mut self,
        count: usize,
        mut encode: impl FnMut(usize, u64, &mut Vec<u8>),
        mut answered: impl FnMut(Answered),
    ) -> Result<(), WireError> {
        let stream = self.stream.ok_or(WireError::Finished)?;
        let mut next = self.next_id;
        let end = next + count as u64;
        self.request.clear();
        for i in 0..count {
            encode(i, self.next_id, &mut self.request);
            self.next_id += 1;
        }
        let mut written = 0;
        loop {
            while written < self.request.len() {
                match self.conn.send_stream(stream).write(&self.request[written..]) {
                    Ok(n) => written += n,
                    Err(WriteError::Blocked) => break,
                    Err(_) => return Err(WireError::Finished),
                }
            }
            self.drive().await?;
            self.take_answers(&mut next, end, &mut answered)?;
            if next == end {
                return Ok(());
            }
            self.wait().await?;
            self.absorb()?;
            if written == self.request.len() {
                self.take_answers(&mut next, end, &mut answered)?;
                if next == end {
                    return Ok(());
                }
            }
        }
    }

    /// Hands every whole answer waiting in `inbox` to `answered`, checking
    /// each is the one to request `*next`, up to `end`.
    fn take_answers(
        &mut self,
        next: &mut u64,
        end: u64,
        answered: &mut impl FnMut(Answered),
    ) -> Result<(), WireError> {
        while *next < end {
            let Some(answer) = self.take_answer()? else {
                break;
            };
            answered(expected(answer, *next)?);
            *next += 1;
        }
        Ok(())
    }

    /// What quinn-proto counted on this connection (datagrams, frames).
    pub fn stats(&self) -> quinn_proto::ConnectionStats {
        self.conn.stats()
    }

    /// Decodes the next answer waiting in `inbox`, if whole.
    fn take_answer(&mut self) -> Result<Option<Answered>, WireError> {
        let Some((reply, used)) = decode_reply(&self.inbox)? else {
            return Ok(None);
        };
        let answer = match reply {
            Reply::Answer(a) => Answered { id: a.id, status: a.status },
            Reply::Closing { code, message } => {
                return Err(WireError::Closed {
                    code: code.to_owned(),
                    message: message.to_owned(),
                });
            }
        };
        self.inbox.drain(..used);
        Ok(Some(answer))
    }

    /// Everything that needs no waiting: endpoint bookkeeping, events,
    /// stream data into `inbox`, packets out, the timer.
    async fn drive(&mut self) -> Result<(), WireError> {
        loop {
            let mut busy = self.absorb()?;
            let now = Instant::now();
            loop {
                self.send_buf.clear();
                let Some(t) = self.conn.poll_transmit(now, self.segments, &mut self.send_buf)
                else {
                    break;
                };
                busy = true;
                self.socket.send(&udp_transmit(&t, &self.send_buf)).await?;
            }
            if !busy {
                break;
            }
        }
        if let Some(at) = self.conn.poll_timeout()
            && self.armed.is_none_or(|armed| at < armed)
        {
            self.sleep.as_mut().reset(at.into());
            self.armed = Some(at);
        }
        Ok(())
    }

    /// Takes in what the connection has for us (endpoint bookkeeping,
    /// events, stream data into `inbox`) without sending anything. Returns
    /// whether there was any of it.
    fn absorb(&mut self) -> Result<bool, WireError> {
        let mut busy = false;
        while let Some(event) = self.conn.poll_endpoint_events() {
            busy = true;
            if let Some(back) = self.endpoint.handle_event(self.handle, event) {
                self.conn.handle_event(back);
            }
        }
        while let Some(event) = self.conn.poll() {
            busy = true;
            match event {
                Event::Connected => self.connected = true,
                Event::ConnectionLost { reason } => return Err(reason.into()),
                _ => {}
            }
        }
        if let Some(stream) = self.stream {
            self.read_stream(stream)?;
        }
        Ok(busy)
    }

    fn read_stream(&mut self, stream: StreamId) -> Result<(), WireError> {
        let mut recv = self.conn.recv_stream(stream);
        let Ok(mut chunks) = recv.read(true) else {
            return Err(WireError::Finished);
        };
        let mut ended = false;
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => self.inbox.extend_from_slice(&chunk.bytes),
                Ok(None) | Err(ReadError::Reset(_)) => {
                    ended = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
            }
        }
        let _ = chunks.finalize();
        if ended {
            self.stream = None;
        }
        Ok(())
    }

    /// Keeps the connection serviced until `until`: ACKs go out when the
    /// edge expects them and timers run, as a client library's background
    /// driver would do. Without it, a connection idle for longer than the
    /// ACK delay makes the edge send probes, and the next request finds
    /// stale datagrams to work through before its answer.
    pub async fn idle_until(&mut self, until: Instant) -> Result<(), WireError> {
        loop {
            self.drive().await?;
            if !self.wait_until(Some(until)).await? {
                return Ok(());
            }
            self.absorb()?;
        }
    }

    /// Waits for a datagram or the connection's timer, and handles it.
    async fn wait(&mut self) -> Result<(), WireError> {
        self.wait_until(None).await.map(|_| ())
    }

    /// As [`Self::wait`], but gives up at `until`: `false` when it did.
    /// Once a datagram is taken it is handled whatever the time.
    async fn wait_until(&mut self, until: Option<Instant>) -> Result<bool, WireError> {
        // Made only when polled: the common case (`None`) costs nothing.
        let give_up = async {
            match until {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = self.socket.recv(&mut self.recv) => match received {
                Ok(count) => self.dispatch(count).await.map(|()| true),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(true),
                Err(e) => Err(e.into()),
            },
            () = &mut self.sleep, if self.armed.is_some() => {
                self.armed = None;
                let now = Instant::now();
                if self.conn.poll_timeout().is_some_and(|at| at <= now) {
                    self.conn.handle_timeout(now);
                }
                Ok(true)
            }
            () = give_up => Ok(false),
        }
    }

    async fn dispatch(&mut self, count: usize) -> Result<(), WireError> {
        let now = Instant::now();
        for i in 0..count {
            let m = self.recv.meta[i];
            let mut data = BytesMut::from(self.recv.slot(i));
            let ecn = m.ecn.and_then(|e| quinn::EcnCodepoint::from_bits(e as u8));
            while !data.is_empty() {
                let datagram = data.split_to(m.stride.max(1).min(data.len()));
                self.send_buf.clear();
                match self.endpoint.handle(now, m.addr, m.dst_ip, ecn, datagram, &mut self.send_buf)
                {
                    Some(DatagramEvent::ConnectionEvent(_, event)) => self.conn.handle_event(event),
                    Some(DatagramEvent::Response(t)) => {
                        self.socket.send(&udp_transmit(&t, &self.send_buf)).await?;
                    }
                    Some(DatagramEvent::NewConnection(_)) | None => {}
                }
            }
        }
        Ok(())
    }
}

/// `answer`, if it is the one to request `id`.
fn expected(answer: Answered, id: u64) -> Result<Answered, WireError> {
    if answer.id == id {
        Ok(answer)
    } else {
        Err(WireError::OutOfOrder { expected: id, got: answer.id })
    }
}

impl Drop for WireConnection {
    /// Tells the edge the connection is over, so it does not hold a place
    /// under its connection cap until the idle timeout.
    fn drop(&mut self) {
        let now = Instant::now();
        self.conn.close(now, VarInt::from_u32(0), Bytes::new());
        self.send_buf.clear();
        if let Some(t) = self.conn.poll_transmit(now, 1, &mut self.send_buf) {
            let _ = self.socket.try_send(&udp_transmit(&t, &self.send_buf));
        }
    }
}
