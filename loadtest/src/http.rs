//! HTTP/1.1 and HTTP/2 over TCP or TLS, with hyper's client connections
//! used directly: one connection per task, keep-alive, no pool, so the
//! generator costs little next to a fast server on the same machine.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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

struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Opens HTTP connections to one target.
#[derive(Debug)]
pub struct HttpConnector {
    addr: (String, u16),
    version: Version,
    tls: Option<Tls>,
    shared: Arc<Requests>,
    timeout: Duration,
}

/// What every request reuses: the URIs of the key space and the headers.
#[derive(Debug)]
struct Requests {
    uris: Vec<Uri>,
    host: HeaderValue,
    auth: Option<HeaderValue>,
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
                Some(Tls { connector: TlsConnector::from(config), name })
            }
        };
        let authority = target.authority();
        // HTTP/1.1 sends origin-form plus Host; HTTP/2 needs scheme and
        // authority in the URI for its pseudo-headers.
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
        let host = HeaderValue::from_str(&authority).map_err(|_| SetupError::Path(authority))?;
        let auth = options
            .token
            .as_ref()
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| SetupError::Token))
            .transpose()?
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        Ok(Self {
            addr: (target.host.clone(), target.port),
            version: options.version,
            tls,
            shared: Arc::new(Requests { uris, host, auth }),
            timeout: options.timeout,
        })
    }

    async fn open(&self) -> Result<Sender, Failure> {
        let tcp = TcpStream::connect((self.addr.0.as_str(), self.addr.1))
            .await
            .map_err(|_| Failure::Connect)?;
        // Small requests and answers: waiting for Nagle only adds latency.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp, self.version).await,
            Some(tls) => {
                let stream = tls
                    .connector
                    .connect(tls.name.clone(), tcp)
                    .await
                    .map_err(|_| Failure::Connect)?;
                let alpn = stream.get_ref().1.alpn_protocol();
                if self.version == Version::Http2 && alpn != Some(b"h2") {
                    // The server would read our preface as garbage.
                    return Err(Failure::Protocol);
                }
                handshake(stream, self.version).await
            }
        }
    }
}

async fn handshake<IO>(io: IO, version: Version) -> Result<Sender, Failure>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    match version {
        Version::Http1 => {
            let (sender, conn) = http1::handshake(io).await.map_err(|_| Failure::Protocol)?;
            tokio::spawn(conn);
            Ok(Sender::H1(sender))
        }
        Version::Http2 => {
            let (sender, conn) =
                http2::handshake(TokioExecutor::new(), io).await.map_err(|_| Failure::Protocol)?;
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
    H1(http1::SendRequest<Empty<Bytes>>),
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
        let uri = self.shared.uris.get(index).ok_or(Failure::Protocol)?.clone();
        let mut req = Request::new(Empty::<Bytes>::new());
        *req.uri_mut() = uri;
        if let Some(auth) = &self.shared.auth {
            req.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                req.headers_mut().insert(HOST, self.shared.host.clone());
                s.ready().await.map_err(|_| Failure::Protocol)?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|_| Failure::Protocol)?;
                s.send_request(req).await
            }
        }
        .map_err(|_| Failure::Protocol)?;
        let status = resp.status();
        // Read the whole body so the connection can carry the next request,
        // and so a response is timed to its last byte.
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(|_| Failure::Protocol)?;
        }
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(Failure::Status(status.as_u16()))
        }
    }
}

impl Connection for HttpConnection {
    async fn resolve(&mut self, index: usize) -> Result<(), Failure> {
        tokio::time::timeout(self.timeout, self.exchange(index))
            .await
            .map_err(|_| Failure::Timeout)?
    }
}
