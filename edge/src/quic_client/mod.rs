//! A client for the edge's QUIC resolve protocol, `nexus-resolve/1`.
//!
//! Connect once (TLS 1.3 over UDP, one handshake), send the token once,
//! then resolve as much as you like: one request at a time with
//! [`Client::resolve`], or many in flight on a [`Pipeline`] (requests are
//! answered in order, so a pipeline of N costs about one round trip).
//! The wire format is documented in [`nexus_protocol::quic`].
//!
//! ```no_run
//! use nexus_edge::quic_client::{Client, Trust};
//! use nexus_protocol::quic::Status;
//!
//! # async fn demo(token: &str) -> Result<(), nexus_edge::quic_client::ClientError> {
//! // An edge with a real certificate: Trust::from_pem_file("ca.pem")?.
//! // A development edge (EDGE_QUIC_SELF_SIGNED=true): Trust::Insecure.
//! let addr = "127.0.0.1:8443".parse().expect("a socket address");
//! let client = Client::connect(addr, "localhost", &Trust::Insecure, Some(token)).await?;
//!
//! let answer = client.resolve("frontend", "user-profile").await?;
//! match answer.canonical() {
//!     Some(url) => println!("{url} (version {})", answer.version),
//!     None => println!("{} {}: {}", answer.status, answer.text, answer.message),
//! }
//!
//! // Pipelining: send a batch, then read the answers in the same order.
//! let mut pipeline = client.pipeline().await?;
//! for alias in ["user-profile", "billing", "nope"] {
//!     pipeline.send("frontend", alias)?;
//! }
//! pipeline.flush().await?;
//! for _ in 0..3 {
//!     let a = pipeline.recv().await?;
//!     assert!(a.status == Status::Ok || a.status == Status::NotFound);
//! }
//! client.close();
//! # Ok(())
//! # }
//! ```
//!
//! Statuses mirror the HTTP API: 200 with the canonical, 400 bad name or
//! unknown context, 401 no or bad token, 403 context outside the token's
//! scope, 404 unknown alias, 503 edge not loaded yet. These are answers,
//! not errors; [`ClientError`] is for the connection itself.

mod tls;

pub use tls::AnyCertificate;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nexus_protocol::quic::{
    FrameError, LEN_PREFIX, MAX_FRAME_LEN, Reply, Request, Status, TooLong, decode_reply,
};
use quinn::crypto::rustls::{NoInitialCipherSuite, QuicClientConfig};
use quinn::{Connection, Endpoint, RecvStream, SendStream, TransportConfig, VarInt};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Pings sent on a quiet connection so the edge's idle timeout (30 s)
/// does not close it under a client that is merely paused.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
const READ_BUF: usize = LEN_PREFIX + MAX_FRAME_LEN + 16 * 1024;

/// The quinn (and quinn-proto) client configuration this library connects
/// with: TLS 1.3 with ALPN `nexus-resolve/1` checked per `trust`, and
/// keep-alive pings. For clients that drive quinn-proto themselves.
pub fn client_config(trust: &Trust) -> Result<quinn::ClientConfig, ClientError> {
    let mut config =
        quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls::config(trust)?)?));
    let mut transport = TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// How the edge's certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Chain to these root certificates.
    Roots(Vec<CertificateDer<'static>>),
    /// Accept any certificate (handshake signatures are still checked):
    /// for development edges with a self-signed certificate.
    Insecure,
}

impl Trust {
    /// The certificates of a PEM file as roots.
    pub fn from_pem_file(path: &Path) -> Result<Self, ClientError> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(ClientError::Pem)?;
        Ok(Trust::Roots(certs))
    }
}

/// Why the connection or a stream failed (answers, 4xx included, are not
/// errors).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS configuration: {0}")]
    Cipher(#[from] NoInitialCipherSuite),
    #[error("reading certificates: {0}")]
    Pem(rustls_pki_types::pem::Error),
    #[error("UDP socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("sending: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("receiving: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("the edge sent a malformed frame: {0}")]
    Frame(#[from] FrameError),
    #[error(transparent)]
    TooLong(#[from] TooLong),
    #[error("the edge closed the stream: {code}: {message}")]
    Closed { code: String, message: String },
    #[error("the edge ended the stream before answering")]
    Finished,
    #[error("answer {got} arrived where {expected} was due")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("token refused: {0}")]
    Unauthorized(String),
}

/// One answer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The request it answers (per pipeline, counting from 0).
    pub id: u64,
    pub status: Status,
    /// Registry version of the record on 200, else 0.
    pub version: u64,
    /// The canonical endpoint on 200, else the error code (`not_found`, ...).
    pub text: String,
    /// Empty on 200, else why.
    pub message: String,
}

impl Answer {
    /// The canonical endpoint, on 200.
    pub fn canonical(&self) -> Option<&str> {
        (self.status == Status::Ok).then_some(self.text.as_str())
    }
}

/// A connection to one edge.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    conn: Connection,
}

impl Client {
    /// Connects to `addr`, checking its certificate for `server_name`, and
    /// sends `token` (the bare JWT) when given; a refused token is
    /// [`ClientError::Unauthorized`].
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        trust: &Trust,
        token: Option<&str>,
    ) -> Result<Self, ClientError> {
        let local: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            ([0, 0, 0, 0], 0).into()
        };
        let endpoint = Endpoint::client(local)?;
        let conn = endpoint.connect_with(client_config(trust)?, addr, server_name)?.await?;
        let client = Self { endpoint, conn };
        if let Some(token) = token {
            client.authenticate(token).await?;
        }
        Ok(client)
    }

    /// Sends `token` for this connection (replacing any earlier one) and
    /// waits until the edge has taken it.
    pub async fn authenticate(&self, token: &str) -> Result<(), ClientError> {
        let mut p = self.pipeline().await?;
        p.push(|id| Request::Auth { id, token })?;
        p.flush().await?;
        let answer = p.recv().await?;
        p.finish();
        match answer.status {
            Status::Ok => Ok(()),
            _ => Err(ClientError::Unauthorized(answer.message)),
        }
    }

    /// Resolves one alias on a stream of its own (opening a stream costs no
    /// round trip). Concurrent calls run in parallel.
    pub async fn resolve(&self, context: &str, alias: &str) -> Result<Answer, ClientError> {
        let mut p = self.pipeline().await?;
        let answer = p.resolve(context, alias).await?;
        p.finish();
        Ok(answer)
    }

    /// A new stream for pipelined requests.
    pub async fn pipeline(&self) -> Result<Pipeline, ClientError> {
        let (send, recv) = self.conn.open_bi().await?;
        Ok(Pipeline {
            send,
            recv,
            out: Vec::with_capacity(1024),
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
            sent: 0,
            answered: 0,
        })
    }

    /// The edge's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// Closes the connection at once.
    pub fn close(&self) {
        self.conn.close(VarInt::from_u32(0), b"done");
        self.endpoint.close(VarInt::from_u32(0), b"done");
    }
}

/// One stream: requests go out in order and answers come back in order.
#[derive(Debug)]
pub struct Pipeline {
    send: SendStream,
    recv: RecvStream,
    out: Vec<u8>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    sent: u64,
    answered: u64,
}

impl Pipeline {
    /// Queues a resolve (sent on the next [`flush`](Self::flush)); returns
    /// its id.
    pub fn send(&mut self, context: &str, alias: &str) -> Result<u64, ClientError> {
        self.push(|id| Request::Resolve { id, context, alias })
    }

    /// Queues a raw request (an AUTH, say) under the next id.
    pub fn push<'a>(
        &mut self,
        request: impl FnOnce(u64) -> Request<'a>,
    ) -> Result<u64, ClientError> {
        let id = self.sent;
        request(id).encode(&mut self.out)?;
        self.sent += 1;
        Ok(id)
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.out.is_empty() {
            self.send.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Writes raw bytes, framed or not (for tests of the edge's defences).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.flush().await?;
        self.send.write_all(bytes).await?;
        Ok(())
    }

    /// The next answer, in the order the requests were sent.
    pub async fn recv(&mut self) -> Result<Answer, ClientError> {
        loop {
            if let Some((reply, used)) = decode_reply(&self.buf[self.start..self.end])? {
                self.start += used;
                return match reply {
                    Reply::Answer(a) => {
                        if a.id != self.answered {
                            return Err(ClientError::OutOfOrder {
                                expected: self.answered,
                                got: a.id,
                            });
                        }
                        self.answered += 1;
                        Ok(Answer {
                            id: a.id,
                            status: a.status,
                            version: a.version,
                            text: a.text.to_owned(),
                            message: a.message.to_owned(),
                        })
                    }
                    Reply::Closing { code, message } => Err(ClientError::Closed {
                        code: code.to_owned(),
                        message: message.to_owned(),
                    }),
                };
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            match self.recv.read(&mut self.buf[self.end..]).await? {
                Some(n) => self.end += n,
                None => return Err(ClientError::Finished),
            }
        }
    }

    /// Sends one resolve and waits for its answer (anything queued before
    /// it is sent too, and must have been received first).
    pub async fn resolve(&mut self, context: &str, alias: &str) -> Result<Answer, ClientError> {
        self.send(context, alias)?;
        self.flush().await?;
        self.recv().await
    }

    /// Requests sent and not answered yet.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.answered
    }

    /// Tells the edge no more requests come on this stream.
    pub fn finish(mut self) {
        let _ = self.send.finish();
    }
}
