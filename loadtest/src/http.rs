//! HTTP/1.1 and HTTP/2 over TCP or TLS: one connection per task,
//! keep-alive, no pool, so the generator costs little next to a fast server
//! on the same machine. HTTP/1.1 writes prebuilt request bytes
//! ([`crate::h1`]); HTTP/2 uses hyper's client connection directly.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::h1;
use crate::keyspace::Keyspace;
use crate::recorder::Failure;
use crate::target::{Scheme, Target};
use crate::tls::{self, TlsError, Trust};
use crate::transport::{Connection, Connector};

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http1,
    /// HTTP/2: prior knowledge on `http://` (h2c), ALPN `h2` on `https://`.
    Http2,
}

/// Everything an HTTP run needs to know, parsed from the command line.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub target: Target,
    pub version: Version,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
    /// Required for `https://` targets.
    pub trust: Option<Trust>,
    /// Longest wait for a connection or a whole answer.
    pub timeout: Duration,
}

/// Why an HTTP connector could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("https target needs --insecure or --ca-file")]
    NoTrust,
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("host {0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("token is not a valid header value")]
    Token,
    #[error("path {0:?} is not a valid request URI")]
    Path(String),
}

/// Opens HTTP connections to one target.
#[derive(Debug)]
pub struct HttpConnector {
    addr: (String, u16),
    version: Version,
    tls: Option<tls::Connector>,
    shared: Arc<Requests>,
    timeout: Duration,
}

/// What every request reuses: per key, the whole HTTP/1.1 request, or the
/// URI plus the shared header values for HTTP/2.
#[derive(Debug)]
enum Requests {
    H1(Arc<h1::Requests>),
    H2 { uris: Vec<Uri>, auth: Option<HeaderValue> },
}

impl HttpConnector {
    pub fn new(options: &HttpOptions, keys: &Keyspace) -> Result<Self, SetupError> {
        let target = &options.target;
        let tls = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let trust = options.trust.as_ref().ok_or(SetupError::NoTrust)?;
                let alpn: &[&[u8]] = match options.version {
                    Version::Http1 => &[b"http/1.1"],
                    Version::Http2 => &[b"h2"],
                };
                let config = tls::client_config(trust, alpn)?;
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|_| SetupError::ServerName(target.host.clone()))?;
                Some(tls::Connector::new(config, name))
            }
        };
        let authority = target.authority();
        // Checked as header values, so no CR/LF can reach the raw HTTP/1.1
        // request bytes.
        HeaderValue::from_str(&authority).map_err(|_| SetupError::Path(authority.clone()))?;
        let bearer = options.token.as_ref().map(|t| format!("Bearer {t}"));
        let auth = bearer
            .as_deref()
            .map(|b| HeaderValue::from_str(b).map_err(|_| SetupError::Token))
            .transpose()?
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        // Every path must be a valid request target; HTTP/2 needs scheme
        // and authority in the URI for its pseudo-headers.
        let uris = keys
            .paths()
            .iter()
            .map(|p| {
                let raw = match options.version {
                    Version::Http1 => p.clone(),
                    Version::Http2 => format!("{}://{authority}{p}", target.scheme_str()),
                };
                raw.parse::<Uri>().map_err(|_| SetupError::Path(p.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shared = match options.version {
            Version::Http1 => Requests::H1(Arc::new(h1::Requests::build(
                keys.paths(),
                &authority,
                bearer.as_deref(),
            ))),
            Version::Http2 => Requests::H2 { uris, auth },
        };
        Ok(Self {
            addr: (target.host.clone(), target.port),
            version: options.version,
            tls,
            shared: Arc::new(shared),
            timeout: options.timeout,
        })
    }

    async fn open(&self) -> Result<Sender, Failure> {
        let requests = match &*self.shared {
            Requests::H1(r) => Some(r.clone()),
            Requests::H2 { .. } => None,
        };
        let tcp = TcpStream::connect((self.addr.0.as_str(), self.addr.1))
            .await
            .map_err(|_| Failure::Connect)?;
        // Small requests and answers: waiting for Nagle only adds latency.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp, requests).await,
            Some(tls) => {
                let stream = tls.connect(tcp).await.map_err(|_| Failure::Connect)?;
                let alpn = stream.get_ref().1.alpn_protocol();
                if self.version == Version::Http2 && alpn != Some(b"h2") {
                    // The server would read our preface as garbage.
                    return Err(Failure::Protocol);
                }
                handshake(stream, requests).await
            }
        }
    }
}

/// HTTP/1.1 when `h1` requests are given, else the HTTP/2 handshake.
async fn handshake<IO>(io: IO, h1: Option<Arc<h1::Requests>>) -> Result<Sender, Failure>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match h1 {
        Some(requests) => Ok(Sender::H1(h1::Conn::new(Box::new(io), requests))),
        None => {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .map_err(|_| Failure::Protocol)?;
            tokio::spawn(conn);
            Ok(Sender::H2(sender))
        }
    }
}

impl Connector for HttpConnector {
    type Conn = HttpConnection;

    async fn connect(&self) -> Result<HttpConnection, Failure> {
        let sender = tokio::time::timeout(self.timeout, self.open())
            .await
            .map_err(|_| Failure::Connect)??;
        Ok(HttpConnection { sender, shared: self.shared.clone(), timeout: self.timeout })
    }

    fn name(&self) -> &'static str {
        match (self.version, self.tls.is_some()) {
            (Version::Http1, false) => "http1",
            (Version::Http1, true) => "https1",
            (Version::Http2, false) => "h2c",
            (Version::Http2, true) => "h2",
        }
    }
}

#[derive(Debug)]
enum Sender {
    H1(h1::Conn),
    H2(http2::SendRequest<Empty<Bytes>>),
}

/// One keep-alive HTTP connection.
#[derive(Debug)]
pub struct HttpConnection {
    sender: Sender,
    shared: Arc<Requests>,
    timeout: Duration,
}

impl HttpConnection {
    async fn exchange(&mut self, index: usize) -> Result<(), Failure> {
        let status = match (&mut self.sender, &*self.shared) {
            (Sender::H1(conn), _) => conn.exchange(index).await?,
            (Sender::H2(s), Requests::H2 { uris, auth }) => {
                let request = h2_request(uris, auth.as_ref(), index)?;
                s.ready().await.map_err(|_| Failure::Protocol)?;
                h2_status(s.send_request(request)).await?
            }
            (Sender::H2(_), Requests::H1(_)) => return Err(Failure::Protocol),
        };
        outcome(status)
    }
}

/// The GET for key `index`, with the token if there is one.
fn h2_request(
    uris: &[Uri],
    auth: Option<&HeaderValue>,
    index: usize,
) -> Result<Request<Empty<Bytes>>, Failure> {
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = uris.get(index).ok_or(Failure::Protocol)?.clone();
    if let Some(auth) = auth {
        request.headers_mut().insert(AUTHORIZATION, auth.clone());
    }
    Ok(request)
}

/// Waits for a response and reads its whole body (so the stream is done,
/// and the answer is timed to its last byte); returns its status.
async fn h2_status(
    response: impl Future<Output = hyper::Result<hyper::Response<hyper::body::Incoming>>>,
) -> Result<u16, Failure> {
    let response = response.await.map_err(|_| Failure::Protocol)?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|_| Failure::Protocol)?;
    }
    Ok(status)
}

/// What a status counts as.
fn outcome(status: u16) -> Result<(), Failure> {
    if (200..400).contains(&status) { Ok(()) } else { Err(Failure::Status(status)) }
}

impl Connection for HttpConnection {
    async fn resolve(&mut self, index: usize) -> Result<(), Failure> {
        tokio::time::timeout(self.timeout, self.exchange(index))
            .await
            .map_err(|_| Failure::Timeout)?
    }

    /// HTTP/1.1 pipelines (every request of the batch in one write, the
    /// answers read in order); HTTP/2 multiplexes (every request on its own
    /// stream before the first response is awaited).
    async fn resolve_pipelined(
        &mut self,
        keys: &[usize],
        mut answered: impl FnMut(Result<(), Failure>) + Send,
    ) {
        let mut given = 0;
        let mut answer = |status| {
            given += 1;
            answered(outcome(status));
        };
        let batch = async {
            match (&mut self.sender, &*self.shared) {
                (Sender::H1(conn), _) => conn.exchange_many(keys, &mut answer).await,
                (Sender::H2(sender), Requests::H2 { uris, auth }) => {
                    let mut pending = Vec::with_capacity(keys.len());
                    for &key in keys {
                        let request = h2_request(uris, auth.as_ref(), key)?;
                        sender.ready().await.map_err(|_| Failure::Protocol)?;
                        pending.push(sender.send_request(request));
                    }
                    for response in pending {
                        answer(h2_status(response).await?);
                    }
                    Ok(())
                }
                (Sender::H2(_), Requests::H1(_)) => Err(Failure::Protocol),
            }
        };
        // The whole batch has one timeout: its answers come back together.
        let ended = match tokio::time::timeout(self.timeout, batch).await {
            Ok(Ok(())) => return,
            Ok(Err(failure)) => failure,
            Err(_) => Failure::Timeout,
        };
        for _ in given..keys.len() {
            answered(Err(ended));
        }
    }
}
