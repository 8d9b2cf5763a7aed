//! A minimal HTTP/1.1 client connection: keep-alive GETs whose bytes are
//! built once per key, answers read into one reused buffer; one at a time,
//! or a pipelined batch in one write.
//!
//! Why not hyper here: its client hands every request and every body frame
//! through channels to a separately spawned connection task; measured on a
//! busy box, that cost nexus-loadtest ~35 % more CPU per request than wrk
//! and let the generator, not the server, set the rate (0.86x wrk's req/s;
//! see `loadtest/agree.sh`). With this client both cost about the same.
//! A resolve is a tiny GET with a tiny answer; writing prebuilt bytes and
//! parsing the head in place is all it needs, as in wrk.
//!
//! Answers must carry `Content-Length` (the edge and nginx's `return` do);
//! a chunked or otherwise framed answer counts as a `protocol` failure.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::recorder::Failure;

/// Longest response head read (status line plus headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest response body read; a resolve answer is ~100 bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Something to speak HTTP/1.1 over: TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The complete request bytes of every key, shared by all connections.
#[derive(Debug)]
pub struct Requests(Vec<Bytes>);

impl Requests {
    /// `GET {path} HTTP/1.1` with `Host` and, when given, `Authorization`.
    /// `host` and `auth` must already be valid header values (no CR/LF).
    pub fn build(paths: &[String], host: &str, auth: Option<&str>) -> Self {
        let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        Self(
            paths
                .iter()
                .map(|p| Bytes::from(format!("GET {p} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n")))
                .collect(),
        )
    }

    fn get(&self, index: usize) -> Option<&Bytes> {
        self.0.get(index)
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    io: Box<dyn Io>,
    requests: Arc<Requests>,
    buf: Vec<u8>,
    /// A pipelined batch's requests, written at once.
    out: Vec<u8>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}

/// What the head says about the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Bytes of the head, blank line included.
    len: usize,
    body: usize,
}

impl Conn {
    pub fn new(io: Box<dyn Io>, requests: Arc<Requests>) -> Self {
        Self { io, requests, buf: Vec::with_capacity(1024), out: Vec::new() }
    }

    /// Sends key `index` and reads the whole answer; its status.
    pub async fn exchange(&mut self, index: usize) -> Result<u16, Failure> {
        let request = self.requests.get(index).ok_or(Failure::Protocol)?;
        self.io.write_all(request).await.map_err(|_| Failure::Protocol)?;
        self.buf.clear();
        let status = self.answer().await?;
        self.nothing_left()?;
        Ok(status)
    }

    /// Pipelines keys `indices`: all their requests in one write, then the
    /// answers read in order, each status handed to `answered` as it is
    /// read. Stops at the first failure (the statuses handed over stand).
    pub async fn exchange_many(
        &mut self,
        indices: &[usize],
        mut answered: impl FnMut(u16),
    ) -> Result<(), Failure> {
        self.out.clear();
        for &index in indices {
            self.out.extend_from_slice(self.requests.get(index).ok_or(Failure::Protocol)?);
        }
        self.io.write_all(&self.out).await.map_err(|_| Failure::Protocol)?;
        self.buf.clear();
        for _ in indices {
            answered(self.answer().await?);
        }
        self.nothing_left()
    }

    /// Reads the answer at the front of `buf` (reading more as needed),
    /// removes it, and returns its status.
    async fn answer(&mut self) -> Result<u16, Failure> {
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            if self.buf.len() >= MAX_HEAD_BYTES {
                return Err(Failure::Protocol);
            }
            self.fill().await?;
        };
        let end = head.len + head.body;
        while self.buf.len() < end {
            self.fill().await?;
        }
        self.buf.drain(..end);
        Ok(head.status)
    }

    /// Every request has had its answer: bytes beyond them mean the
    /// framing is not what we think.
    fn nothing_left(&self) -> Result<(), Failure> {
        if self.buf.is_empty() { Ok(()) } else { Err(Failure::Protocol) }
    }

    async fn fill(&mut self) -> Result<(), Failure> {
        self.buf.reserve(4096);
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) | Err(_) => Err(Failure::Protocol),
            Ok(_) => Ok(()),
        }
    }
}

/// The head of `buf` once it is complete (`None` while it is not).
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failure> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| Failure::Protocol)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(Failure::Protocol)?;
    let mut parts = status_line.splitn(3, ' ');
    let status = match (parts.next(), parts.next()) {
        (Some("HTTP/1.1" | "HTTP/1.0"), Some(code)) if code.len() == 3 => {
            code.parse::<u16>().map_err(|_| Failure::Protocol)?
        }
        _ => return Err(Failure::Protocol),
    };
    let mut body = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(Failure::Protocol)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value.parse::<usize>().map_err(|_| Failure::Protocol)?;
            if n > MAX_BODY_BYTES || body.is_some_and(|b| b != n) {
                return Err(Failure::Protocol);
            }
            body = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Failure::Protocol);
        }
    }
    // 1xx, 204 and 304 answers never have a body.
    let body = if status < 200 || status == 204 || status == 304 {
        0
    } else {
        body.ok_or(Failure::Protocol)?
    };
    Ok(Some(Head { status, len: end + 4, body }))
}

#[cfg(test)]
mod tests {
    use tokio::io::duplex;

    use super::*;

    #[test]
    fn heads_are_read_only_when_complete_and_framed_by_length() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n"), Ok(None));
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        assert_eq!(head, Some(Head { status: 200, len: 38, body: 3 }));
        let head = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!(head.map(|h| h.body), Some(0));
        for bad in [
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert_eq!(parse_head(bad), Err(Failure::Protocol), "{}", String::from_utf8_lossy(bad));
        }
    }

    /// A scripted server on the other end of an in-memory pipe: checks each
    /// request and answers with the given bytes, written in two pieces.
    async fn serve(mut io: tokio::io::DuplexStream, answers: Vec<&'static [u8]>) -> Vec<String> {
        let mut seen = Vec::new();
        for answer in answers {
            let mut req = Vec::new();
            while !req.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if io.read_exact(&mut byte).await.is_err() {
                    return seen;
                }
                req.push(byte[0]);
            }
            seen.push(String::from_utf8_lossy(&req).into_owned());
            let (a, b) = answer.split_at(answer.len() / 2);
            let _ = io.write_all(a).await;
            let _ = io.flush().await;
            let _ = io.write_all(b).await;
        }
        seen
    }

    #[tokio::test]
    async fn a_pipelined_batch_is_written_before_any_answer_is_read() {
        let (client, mut server) = duplex(64 * 1024);
        let requests =
            Arc::new(Requests::build(&["/a".to_owned(), "/b".to_owned()], "127.0.0.1:8080", None));
        // This server answers nothing until it has all three requests: a
        // client waiting for the first answer before sending the second
        // would never get one.
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.windows(4).filter(|w| w == b"\r\n\r\n").count() < 3 {
                let mut chunk = [0u8; 256];
                let n = server.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed early");
                seen.extend_from_slice(&chunk[..n]);
            }
            server
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}\
                      HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n\
                      HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n",
                )
                .await
                .unwrap();
            server.write_all(b"x").await.unwrap();
            (server, String::from_utf8(seen).unwrap())
        });
        let mut conn = Conn::new(Box::new(client), requests);
        let mut statuses = Vec::new();
        let batch = conn.exchange_many(&[0, 1, 0], |s| statuses.push(s));
        tokio::time::timeout(std::time::Duration::from_secs(5), batch)
            .await
            .expect("the batch went out whole")
            .unwrap();
        assert_eq!(statuses, [200, 404, 200]);
        let (_server, seen) = server.await.unwrap();
        assert_eq!(seen.matches("GET /a ").count(), 2);
        assert_eq!(seen.matches("GET /b ").count(), 1);
    }

    #[tokio::test]
    async fn keeps_the_connection_across_answers_and_reports_statuses() {
        let (client, server) = duplex(64 * 1024);
        let requests = Arc::new(Requests::build(
            &["/api/aliases/resolve/frontend/a-1".to_owned(), "/x".to_owned()],
            "127.0.0.1:8080",
            Some("Bearer t0k"),
        ));
        let server = tokio::spawn(serve(
            server,
            vec![
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!",
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n{}",
            ],
        ));
        let mut conn = Conn::new(Box::new(client), requests);
        assert_eq!(conn.exchange(0).await, Ok(200));
        assert_eq!(conn.exchange(1).await, Ok(404));
        // Two bytes short, then the server is gone: not a success.
        assert_eq!(conn.exchange(0).await, Err(Failure::Protocol));
        assert_eq!(conn.exchange(7).await, Err(Failure::Protocol));
        let seen = server.await.unwrap();
        assert_eq!(
            seen[0],
            "GET /api/aliases/resolve/frontend/a-1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
             Authorization: Bearer t0k\r\n\r\n"
        );
        assert!(seen[1].starts_with("GET /x HTTP/1.1\r\n"));
    }
}
