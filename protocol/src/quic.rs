//! The QUIC resolve protocol (`nexus-resolve/1`): binary frames, no I/O.
//!
//! The edge serves it with quinn; this module only turns frames into typed
//! values and back, so both ends (and tests) share one definition.
//!
//! # Connection
//!
//! TLS 1.3 with ALPN [`ALPN`]. The client opens bidirectional streams (one
//! per pipeline; many requests travel on each). Every frame on a stream is
//!
//! ```text
//! len: u32 BE | body: len bytes          (1 <= len <= MAX_FRAME_LEN)
//! body = kind: u8 | fields...            (integers big-endian)
//! ```
//!
//! Client to server:
//!
//! ```text
//! 0x01 AUTH     id: u64 | token_len: u16 | token (UTF-8, the bare JWT)
//! 0x02 RESOLVE  id: u64 | context_len: u8 | context | alias_len: u8 | alias
//! ```
//!
//! Server to client:
//!
//! ```text
//! 0x81 ANSWER   id: u64 | status: u16 | version: u64
//!               | text_len: u16 | text | message_len: u16 | message
//! 0x82 CLOSING  code_len: u8 | code | message_len: u16 | message
//! ```
//!
//! Every request gets exactly one ANSWER, in the order the requests were
//! sent on that stream. `status` mirrors HTTP (see [`Status`]); on 200
//! `text` is the canonical endpoint and `version` the record's registry
//! version, otherwise `text` is the error code the HTTP API would put in
//! `{"error": ...}` and `message` explains it.
//!
//! AUTH sets the token for the whole **connection** (every stream, later
//! requests only) and is answered like a request: 200 if the token verifies,
//! 401 otherwise. A client sends it once, waits for its answer, then
//! pipelines resolves on as many streams as it likes; AUTH again replaces
//! the token (for refreshing a long-lived connection). Without AUTH every
//! resolve is answered 401 when the edge requires tokens.
//!
//! Names travel as sent: the name rule is applied by the edge's resolve
//! decision, so a bad name is a 400 ANSWER, exactly as over HTTP. A frame
//! that cannot be decoded (too long, unknown kind, truncated, not UTF-8)
//! is a protocol error: the server sends CLOSING with a code from
//! [`FrameError::code`] and ends the stream; the connection stays open.

use std::fmt;

/// The ALPN protocol name; a connection without it is refused.
pub const ALPN: &[u8] = b"nexus-resolve/1";
/// Largest frame body, either direction. A 16 KiB header bound on the
/// HTTP side gives a token the same room here.
pub const MAX_FRAME_LEN: usize = 16 * 1024;
/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

const AUTH: u8 = 0x01;
const RESOLVE: u8 = 0x02;
const ANSWER: u8 = 0x81;
const CLOSING: u8 = 0x82;

/// Application error codes of QUIC stream resets and connection closes.
pub mod close {
    /// The edge is shutting down.
    pub const SHUTDOWN: u32 = 0x1;
    /// The peer sent a frame that could not be decoded.
    pub const PROTOCOL: u32 = 0x2;
}

/// The status of an answer, with HTTP's meaning and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    /// Over the edge's per-credential limit (`EDGE_RATE_LIMIT`).
    TooManyRequests,
    /// The edge holds no state yet.
    Unavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::TooManyRequests => 429,
            Status::Unavailable => 503,
        }
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            200 => Status::Ok,
            400 => Status::BadRequest,
            401 => Status::Unauthorized,
            403 => Status::Forbidden,
            404 => Status::NotFound,
            429 => Status::TooManyRequests,
            503 => Status::Unavailable,
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// A frame from client to server, borrowing from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// The bare token (no `Bearer `).
    Auth {
        id: u64,
        token: &'a str,
    },
    Resolve {
        id: u64,
        context: &'a str,
        alias: &'a str,
    },
}

/// An answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    pub id: u64,
    pub status: Status,
    /// Registry version of the record on 200, else 0.
    pub version: u64,
    /// The canonical endpoint on 200, else the error code.
    pub text: &'a str,
    /// Empty on 200, else why.
    pub message: &'a str,
}

/// A frame from server to client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    Answer(Answer<'a>),
    /// The server ends the stream after this frame.
    Closing {
        code: &'a str,
        message: &'a str,
    },
}

/// Why bytes are not a valid frame. Any of these ends the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("frame ends inside a field")]
    Truncated,
    #[error("{0} bytes left over after the frame's last field")]
    Trailing(usize),
    #[error("text field is not UTF-8")]
    NotUtf8,
    #[error("unknown status {0}")]
    BadStatus(u16),
}

impl FrameError {
    /// The code a CLOSING frame carries for this error.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } => "frame_too_large",
            _ => "malformed_frame",
        }
    }
}

/// Why a frame could not be encoded (a field longer than its length prefix
/// allows, or a frame over [`MAX_FRAME_LEN`]). Nothing is written then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} of {len} bytes does not fit in a frame")]
pub struct TooLong {
    pub field: &'static str,
    pub len: usize,
}

/// A complete frame: its kind, its fields, and the bytes it used.
type Split<'a> = (u8, &'a [u8], usize);

/// Splits the first complete frame off `buf`: `Ok(None)` when more bytes
/// are needed; otherwise the kind, the fields and the bytes consumed. The
/// length is checked as soon as the prefix is in, before the body arrives.
fn split(buf: &[u8]) -> Result<Option<Split<'_>>, FrameError> {
    let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len, max: MAX_FRAME_LEN });
    }
    let Some(body) = buf.get(LEN_PREFIX..LEN_PREFIX + len) else {
        return Ok(None);
    };
    let (&kind, fields) = body.split_first().ok_or(FrameError::Empty)?;
    Ok(Some((kind, fields, LEN_PREFIX + len)))
}

/// A cursor over a frame's fields.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(FrameError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(FrameError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        self.array().map(u64::from_be_bytes)
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        self.array().map(u16::from_be_bytes)
    }

    fn str8(&mut self) -> Result<&'a str, FrameError> {
        let [n] = self.array()?;
        self.text(usize::from(n))
    }

    fn str16(&mut self) -> Result<&'a str, FrameError> {
        let n = self.u16()?;
        self.text(usize::from(n))
    }

    fn text(&mut self, n: usize) -> Result<&'a str, FrameError> {
        std::str::from_utf8(self.take(n)?).map_err(|_| FrameError::NotUtf8)
    }

    fn end(self) -> Result<(), FrameError> {
        if self.0.is_empty() { Ok(()) } else { Err(FrameError::Trailing(self.0.len())) }
    }
}

/// Decodes the first request in `buf`; `Ok(None)` until it is complete.
/// Returns the request and how many bytes of `buf` it used.
pub fn decode_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, FrameError> {
    let Some((kind, fields, used)) = split(buf)? else {
        return Ok(None);
    };
    let mut f = Fields(fields);
    let request = match kind {
        AUTH => Request::Auth { id: f.u64()?, token: f.str16()? },
        RESOLVE => Request::Resolve { id: f.u64()?, context: f.str8()?, alias: f.str8()? },
        other => return Err(FrameError::UnknownKind(other)),
    };
    f.end()?;
    Ok(Some((request, used)))
}

/// Decodes the first reply in `buf`; `Ok(None)` until it is complete.
pub fn decode_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, FrameError> {
    let Some((kind, fields, used)) = split(buf)? else {
        return Ok(None);
    };
    let mut f = Fields(fields);
    let reply = match kind {
        ANSWER => {
            let id = f.u64()?;
            let code = f.u16()?;
            let status = Status::from_code(code).ok_or(FrameError::BadStatus(code))?;
            let version = f.u64()?;
            Reply::Answer(Answer { id, status, version, text: f.str16()?, message: f.str16()? })
        }
        CLOSING => Reply::Closing { code: f.str8()?, message: f.str16()? },
        other => return Err(FrameError::UnknownKind(other)),
    };
    f.end()?;
    Ok(Some((reply, used)))
}

/// Appends one frame to `out`; `body` writes the kind and fields into it.
/// On error `out` is left as it was.
fn frame(
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), TooLong>,
) -> Result<(), TooLong> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    let written = body(out).and_then(|()| {
        let len = out.len() - start - LEN_PREFIX;
        if len > MAX_FRAME_LEN {
            return Err(TooLong { field: "frame", len });
        }
        // `len` fits: it is at most MAX_FRAME_LEN.
        out[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    });
    if written.is_err() {
        out.truncate(start);
    }
    written
}

fn put8(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), TooLong> {
    let n = u8::try_from(s.len()).map_err(|_| TooLong { field, len: s.len() })?;
    out.push(n);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put16(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), TooLong> {
    let n = u16::try_from(s.len()).map_err(|_| TooLong { field, len: s.len() })?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

impl Request<'_> {
    /// Appends this request, framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        frame(out, |out| match *self {
            Request::Auth { id, token } => {
                out.push(AUTH);
                out.extend_from_slice(&id.to_be_bytes());
                put16(out, "token", token)
            }
            Request::Resolve { id, context, alias } => {
                out.push(RESOLVE);
                out.extend_from_slice(&id.to_be_bytes());
                put8(out, "context", context)?;
                put8(out, "alias", alias)
            }
        })
    }

    pub fn id(&self) -> u64 {
        match *self {
            Request::Auth { id, .. } | Request::Resolve { id, .. } => id,
        }
    }
}

impl Reply<'_> {
    /// Appends this reply, framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        frame(out, |out| match *self {
            Reply::Answer(a) => {
                out.push(ANSWER);
                out.extend_from_slice(&a.id.to_be_bytes());
                out.extend_from_slice(&a.status.code().to_be_bytes());
                out.extend_from_slice(&a.version.to_be_bytes());
                put16(out, "text", a.text)?;
                put16(out, "message", a.message)
            }
            Reply::Closing { code, message } => {
                out.push(CLOSING);
                put8(out, "code", code)?;
                put16(out, "message", message)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one_request(r: Request<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn requests_and_replies_round_trip_in_a_pipeline() {
        let mut buf = Vec::new();
        let reqs = [
            Request::Auth { id: 0, token: "eyJ.x.y" },
            Request::Resolve { id: 1, context: "frontend", alias: "user-profile" },
            Request::Resolve { id: u64::MAX, context: "", alias: "é" },
        ];
        for r in &reqs {
            r.encode(&mut buf).unwrap();
        }
        let mut at = 0;
        for r in &reqs {
            let (got, used) = decode_request(&buf[at..]).unwrap().unwrap();
            assert_eq!(&got, r);
            at += used;
        }
        assert_eq!(at, buf.len());
        assert_eq!(decode_request(&buf[at..]), Ok(None));

        let answer = Answer {
            id: 7,
            status: Status::Ok,
            version: 42,
            text: "https://api.nexus.com/v1/users/profile",
            message: "",
        };
        let closing = Reply::Closing { code: "frame_too_large", message: "bye" };
        let mut out = Vec::new();
        Reply::Answer(answer).encode(&mut out).unwrap();
        closing.encode(&mut out).unwrap();
        let (first, used) = decode_reply(&out).unwrap().unwrap();
        assert_eq!(first, Reply::Answer(answer));
        assert_eq!(decode_reply(&out[used..]).unwrap().unwrap().0, closing);
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let buf = one_request(Request::Resolve { id: 3, context: "a", alias: "b" });
        for cut in 0..buf.len() {
            assert_eq!(decode_request(&buf[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let too_big = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        // Refused from the prefix alone, before any body arrives.
        assert_eq!(
            decode_request(&too_big),
            Err(FrameError::TooLarge { len: MAX_FRAME_LEN + 1, max: MAX_FRAME_LEN })
        );
        assert_eq!(decode_request(&[0, 0, 0, 0]), Err(FrameError::Empty));
        assert_eq!(decode_request(&[0, 0, 0, 1, 0x7f]), Err(FrameError::UnknownKind(0x7f)));
        // A reply kind sent to the server is not a request.
        assert_eq!(decode_request(&[0, 0, 0, 1, ANSWER]), Err(FrameError::UnknownKind(ANSWER)));
        assert_eq!(decode_request(&[0, 0, 0, 3, RESOLVE, 0, 0]), Err(FrameError::Truncated));
        let mut bad = one_request(Request::Resolve { id: 1, context: "ab", alias: "c" });
        bad[4 + 1 + 8 + 1] = 0xff;
        assert_eq!(decode_request(&bad), Err(FrameError::NotUtf8));
        let mut trailing = one_request(Request::Resolve { id: 1, context: "a", alias: "b" });
        trailing[3] += 1;
        trailing.push(0);
        assert_eq!(decode_request(&trailing), Err(FrameError::Trailing(1)));
        let mut answer = Vec::new();
        let a = Answer { id: 1, status: Status::NotFound, version: 0, text: "", message: "" };
        Reply::Answer(a).encode(&mut answer).unwrap();
        answer[4 + 1 + 8..4 + 1 + 8 + 2].copy_from_slice(&302u16.to_be_bytes());
        assert_eq!(decode_reply(&answer), Err(FrameError::BadStatus(302)));
        assert_eq!(FrameError::TooLarge { len: 1, max: 0 }.code(), "frame_too_large");
        assert_eq!(FrameError::Truncated.code(), "malformed_frame");
    }

    #[test]
    fn fields_too_long_are_refused_and_nothing_is_written() {
        let mut out = vec![9];
        let long = "a".repeat(256);
        let r = Request::Resolve { id: 1, context: &long, alias: "x" };
        assert_eq!(r.encode(&mut out), Err(TooLong { field: "context", len: 256 }));
        let token = "t".repeat(MAX_FRAME_LEN);
        assert!(Request::Auth { id: 1, token: &token }.encode(&mut out).is_err());
        assert_eq!(out, [9]);
    }

    #[test]
    fn statuses_mirror_http() {
        for s in [
            Status::Ok,
            Status::BadRequest,
            Status::Unauthorized,
            Status::Forbidden,
            Status::NotFound,
            Status::TooManyRequests,
            Status::Unavailable,
        ] {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        assert_eq!(Status::from_code(500), None);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request(&bytes);
            let _ = decode_reply(&bytes);
        }

        #[test]
        fn framed_garbage_never_panics(kind in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = ((body.len() + 1) as u32).to_be_bytes().to_vec();
            buf.push(kind);
            buf.extend_from_slice(&body);
            let _ = decode_request(&buf);
            let _ = decode_reply(&buf);
        }

        #[test]
        fn any_resolve_round_trips(id in any::<u64>(), context in "\\PC{0,40}", alias in "\\PC{0,60}") {
            let r = Request::Resolve { id, context: &context, alias: &alias };
            let mut out = Vec::new();
            if r.encode(&mut out).is_ok() {
                let (got, used) = decode_request(&out).unwrap().unwrap();
                prop_assert_eq!(got, r);
                prop_assert_eq!(used, out.len());
            }
        }
    }
}
