//! Watching one edge for the run's writes: one keep-alive HTTP/1.1
//! connection (hyper's client connection, TCP or TLS) that resolves the
//! oldest write still awaited every poll interval (and the next ones as
//! soon as it shows), until each shows or its deadline passes.
//!
//! Each edge is watched from its own thread with a current-thread runtime,
//! and the wait between polls is a thread sleep: tokio's timer wheel ticks
//! in whole milliseconds, so `tokio::time::sleep(200 µs)` would wait 1–2 ms
//! and set the resolution of every figure. Nothing else runs on that
//! runtime, so blocking it between polls holds up no one.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::recorder::Failure;
use crate::target::{Scheme, Target};
use crate::tls::{self, TlsError, Trust};

/// Largest answer body read; a resolve answer is ~100 bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// An idle connection is touched this often, so the edge's idle deadline
/// (10 s) does not close it and the next write does not pay a reconnect.
const KEEP_WARM: Duration = Duration::from_secs(3);
const HEALTH_PATH: &str = "/api/aliases/health";

/// One write the edge should show: `path` resolving to `canonical`, or at
/// a version of at least `version`, by `deadline`.
#[derive(Debug, Clone)]
pub struct Watch {
    pub write: usize,
    pub path: Arc<str>,
    pub canonical: Arc<str>,
    pub version: u64,
    pub deadline: Instant,
}

/// What became of one [`Watch`] on one edge.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub write: usize,
    /// When the answer that showed the write was read, or why it never was.
    pub outcome: Result<Instant, Failure>,
}

/// What one edge's watcher saw over the run.
#[derive(Debug, Default)]
pub struct Watched {
    pub seen: Vec<Seen>,
    /// Connections opened after the first (closed by the edge or broken).
    pub reconnects: u64,
}

/// Why the edge could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("https edge needs --insecure or --ca-file")]
    NoTrust,
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("host {0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("--edge-token is not a valid header value")]
    Token,
    #[error("path {0:?} is not a valid request target")]
    Path(String),
    #[error("not answering: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
    #[error("HTTP/1.1 exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("answer body unreadable: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// An answer to one resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `x-nexus-version`, when present and a number.
    pub version: Option<u64>,
    /// `canonical_name` of a 200 body.
    pub canonical: Option<String>,
}

/// What an answer says about a watched write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Visible,
    NotYet,
    /// The edge will not answer this credential (401/403): polling on
    /// cannot change that.
    Refused(u16),
}

/// Whether `answer` shows `watch`: a 200 at the write's version or later
/// (a later write to the same alias counts: the edge is past ours), or with
/// the canonical this write set. 404 and 400 (no alias yet in a context
/// the edge has not seen) and 503 (no state yet) mean not yet.
pub fn judge(answer: &Answer, watch: &Watch) -> Verdict {
    match answer.status {
        200 if answer.version.is_some_and(|v| v >= watch.version)
            || answer.canonical.as_deref() == Some(&*watch.canonical) =>
        {
            Verdict::Visible
        }
        401 | 403 => Verdict::Refused(answer.status),
        _ => Verdict::NotYet,
    }
}

/// One edge and, once opened, the connection to it.
#[derive(Debug)]
pub struct Edge {
    target: Target,
    tls: Option<tls::Connector>,
    host: HeaderValue,
    auth: Option<HeaderValue>,
    sender: Option<http1::SendRequest<Empty<Bytes>>>,
    opened: u64,
}

impl Edge {
    pub fn new(
        target: &Target,
        token: Option<&str>,
        trust: Option<&Trust>,
    ) -> Result<Self, EdgeError> {
        let tls = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let config = tls::client_config(trust.ok_or(EdgeError::NoTrust)?, &[b"http/1.1"])?;
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|_| EdgeError::ServerName(target.host.clone()))?;
                Some(tls::Connector::new(config, name))
            }
        };
        let authority = target.authority();
        let host =
            HeaderValue::from_str(&authority).map_err(|_| EdgeError::Path(authority.clone()))?;
        let auth = token
            .map(|t| {
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| EdgeError::Token)?;
                v.set_sensitive(true);
                Ok::<_, EdgeError>(v)
            })
            .transpose()?;
        Ok(Self { target: target.clone(), tls, host, auth, sender: None, opened: 0 })
    }

    /// GETs `path` and reads the whole answer, opening the connection first
    /// when there is none. A failed exchange drops the connection.
    pub async fn get(&mut self, path: &str, timeout: Duration) -> Result<Answer, EdgeError> {
        let answer = tokio::time::timeout(timeout, self.exchange(path))
            .await
            .unwrap_or(Err(EdgeError::Timeout(timeout)));
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }

    async fn exchange(&mut self, path: &str) -> Result<Answer, EdgeError> {
        let uri = Uri::from_str(path).map_err(|_| EdgeError::Path(path.to_owned()))?;
        let mut request = Request::get(uri)
            .header(HOST, self.host.clone())
            .body(Empty::new())
            .map_err(|_| EdgeError::Path(path.to_owned()))?;
        if let Some(auth) = &self.auth {
            request.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        let sender = self.connected().await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let version = response
            .headers()
            .get("x-nexus-version")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| EdgeError::Body(e.to_string()))?
            .to_bytes();
        let canonical = (status == 200).then(|| canonical_of(&body)).flatten();
        Ok(Answer { status, version, canonical })
    }

    /// The open connection, or a new one when the edge closed the last.
    async fn connected(&mut self) -> Result<&mut http1::SendRequest<Empty<Bytes>>, EdgeError> {
        if self.sender.as_ref().is_some_and(|s| s.is_closed()) {
            self.sender = None;
        }
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => {
                let sender = self.open().await?;
                self.opened += 1;
                sender
            }
        };
        Ok(self.sender.insert(sender))
    }

    async fn open(&self) -> Result<http1::SendRequest<Empty<Bytes>>, EdgeError> {
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(EdgeError::Connect)?;
        // Tiny requests and answers: waiting for Nagle only adds latency.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp).await,
            Some(tls) => {
                let stream = tls.connect(tcp).await.map_err(EdgeError::Handshake)?;
                handshake(stream).await
            }
        }
    }

    /// Watches for every [`Watch`] sent on `watches` until the channel
    /// closes and nothing is pending, polling every `interval`. Runs on its
    /// own thread (see the module comment); `runtime` must be a
    /// current-thread runtime with I/O and time enabled.
    pub fn spawn(
        self,
        runtime: tokio::runtime::Runtime,
        watches: mpsc::UnboundedReceiver<Watch>,
        interval: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<Watched>> {
        std::thread::Builder::new()
            .name(format!("watch {}", self.target))
            .spawn(move || runtime.block_on(self.watch(watches, interval)))
    }

    async fn watch(
        mut self,
        mut watches: mpsc::UnboundedReceiver<Watch>,
        interval: Duration,
    ) -> Watched {
        // Ordered by version (writes are answered in any order).
        let mut pending: VecDeque<Watch> = VecDeque::new();
        let mut seen = Vec::new();
        // Connected before the first write, so no write pays the handshake.
        let _ = self.get(HEALTH_PATH, KEEP_WARM).await;
        loop {
            if pending.is_empty() {
                match tokio::time::timeout(KEEP_WARM, watches.recv()).await {
                    Ok(Some(w)) => pending.push_back(w),
                    Ok(None) => break,
                    Err(_) => {
                        let _ = self.get(HEALTH_PATH, KEEP_WARM).await;
                        continue;
                    }
                }
            }
            while let Ok(w) = watches.try_recv() {
                let at = pending.partition_point(|p| p.version < w.version);
                pending.insert(at, w);
            }
            let round = Instant::now();
            self.poll_round(&mut pending, &mut seen).await;
            if !pending.is_empty() {
                std::thread::sleep(interval.saturating_sub(round.elapsed()));
            }
        }
        Watched { seen, reconnects: self.opened.saturating_sub(1) }
    }

    /// Resolves pending writes oldest version first and stops at the first
    /// one not visible yet: an edge applies versions in order, so a later
    /// write cannot show before it, and asking anyway would multiply the
    /// resolves per interval by the backlog, load that slows the very edge
    /// being measured (seen on a 2-core box: seconds of extra lag). The
    /// oldest is asked every interval; once it shows, the next ones are
    /// asked at once. Settled writes move to `seen`.
    async fn poll_round(&mut self, pending: &mut VecDeque<Watch>, seen: &mut Vec<Seen>) {
        let mut connect_failed = false;
        while let Some(w) = pending.front() {
            let left = w.deadline.saturating_duration_since(Instant::now());
            // After a failed connect, the round only settles what is past
            // its deadline: one connect attempt per interval.
            let verdict = if connect_failed || left.is_zero() {
                Verdict::NotYet
            } else {
                match self.get(&w.path, left).await {
                    Ok(answer) => judge(&answer, w),
                    Err(EdgeError::Connect(_) | EdgeError::Handshake(_)) => {
                        connect_failed = true;
                        Verdict::NotYet
                    }
                    Err(_) => Verdict::NotYet,
                }
            };
            let now = Instant::now();
            let outcome = match verdict {
                Verdict::Visible if now <= w.deadline => Ok(now),
                Verdict::Refused(status) => Err(Failure::Status(status)),
                _ if now >= w.deadline => {
                    Err(if connect_failed { Failure::Connect } else { Failure::Timeout })
                }
                _ => return,
            };
            let write = w.write;
            pending.pop_front();
            seen.push(Seen { write, outcome });
        }
    }
}

async fn handshake<IO>(io: IO) -> Result<http1::SendRequest<Empty<Bytes>>, EdgeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    // Ends when the connection closes; the sender then reports it closed.
    tokio::spawn(conn);
    Ok(sender)
}

fn canonical_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Resolved {
        canonical_name: String,
    }
    serde_json::from_slice::<Resolved>(body).ok().map(|r| r.canonical_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(version: u64) -> Watch {
        Watch {
            write: 0,
            path: "/api/aliases/resolve/frontend/probe-1".into(),
            canonical: "https://api.nexus.com/probe/1".into(),
            version,
            deadline: Instant::now(),
        }
    }

    fn answer(status: u16, version: Option<u64>, canonical: Option<&str>) -> Answer {
        Answer { status, version, canonical: canonical.map(str::to_owned) }
    }

    #[test]
    fn a_write_is_visible_at_its_version_or_later_or_by_its_canonical() {
        let w = watch(7);
        let old = Some("https://api.nexus.com/probe/0");
        assert_eq!(judge(&answer(200, Some(7), old), &w), Verdict::Visible);
        assert_eq!(judge(&answer(200, Some(9), old), &w), Verdict::Visible);
        assert_eq!(judge(&answer(200, Some(6), old), &w), Verdict::NotYet);
        // No version header (not a NEXUS edge): the canonical decides.
        assert_eq!(judge(&answer(200, None, Some(&w.canonical)), &w), Verdict::Visible);
        assert_eq!(judge(&answer(200, None, old), &w), Verdict::NotYet);
    }

    #[test]
    fn misses_wait_and_refusals_end_the_watch() {
        let w = watch(7);
        for status in [404, 400, 503, 500] {
            assert_eq!(judge(&answer(status, Some(9), None), &w), Verdict::NotYet, "{status}");
        }
        assert_eq!(judge(&answer(401, None, None), &w), Verdict::Refused(401));
        assert_eq!(judge(&answer(403, None, None), &w), Verdict::Refused(403));
    }

    #[test]
    fn canonical_is_read_from_the_resolve_body() {
        assert_eq!(
            canonical_of(br#"{"canonical_name":"https://a"}"#).as_deref(),
            Some("https://a")
        );
        assert_eq!(canonical_of(b"<html>"), None);
    }
}
