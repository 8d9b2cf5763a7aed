//! One bidirectional stream of `nexus-resolve/1`: read what arrived, answer
//! every complete request in order into one buffer, write it in one go.
//! Pipelined requests thus cost one read and one write per batch, not per
//! request.
//!
//! Everything here is synchronous: the connection driver
//! ([`super::driver`]) calls [`Stream::serve`] when the stream is opened,
//! has new data, or has room to write again, and it does what it can
//! without waiting. A client that does not read its answers stops being
//! read from (the answers wait in `out`, quinn's flow control stops the
//! client), so a stream holds at most one read buffer and one batch of
//! answers.
//!
//! A frame that does not decode ends the stream with a CLOSING frame naming
//! the error; the connection and its other streams carry on.

use nexus_protocol::quic::{
    Answer, FrameError, LEN_PREFIX, MAX_FRAME_LEN, Reply, Request, Status, close, decode_request,
};
use quinn::{StreamId, VarInt};
use quinn_proto::{Connection, FinishError, ReadError, WriteError};

use crate::app::App;
use crate::clock::now_ms;
use crate::metrics::sample_timer;
use crate::resolve::{Outcome, Refusal, resolve};
use crate::table::TableRef;

/// The connection's `Authorization` value (`Bearer <token>`), set by AUTH
/// and shared by the connection's streams.
pub type Credentials = Option<Vec<u8>>;

/// Read buffer at the start of a stream: a batch of ordinary requests.
const READ_BUF_START: usize = 4 * 1024;
/// Largest read buffer: one largest frame plus room for a batch behind it.
/// It only grows this far for a stream that sends large AUTH frames, so an
/// idle stream costs 4 KiB, and a connection at most
/// `MAX_STREAMS` × 32 KiB plus quinn's windows (see `endpoint`).
const READ_BUF_MAX: usize = LEN_PREFIX + MAX_FRAME_LEN + 16 * 1024;
/// Answers are written out once this many bytes are waiting, even mid-batch,
/// so small requests asking for long canonicals cannot grow the buffer
/// without bound.
const FLUSH_AT: usize = 64 * 1024;

/// Whether the driver must keep the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for data or for room to write.
    Open,
    /// Finished, refused or gone: forget it.
    Done,
}

/// What one stream has read and not yet answered, and answered and not
/// yet written.
#[derive(Debug)]
pub struct Stream {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    /// Bytes of `out` already handed to quinn.
    written: usize,
    /// The client finished (or reset) its side: answer what is buffered,
    /// then finish ours.
    recv_done: bool,
    /// A malformed frame was answered with CLOSING: write it, then finish.
    closing: bool,
    /// `context/alias` of the request being answered, reused.
    target: String,
}

impl Default for Stream {
    fn default() -> Self {
        Self {
            buf: vec![0; READ_BUF_START],
            start: 0,
            end: 0,
            out: Vec::new(),
            written: 0,
            recv_done: false,
            closing: false,
            target: String::with_capacity(128),
        }
    }
}

enum Flush {
    Done,
    Blocked,
    Gone,
}

impl Stream {
    /// Answers everything that can be answered now: writes what is
    /// waiting, reads what arrived, decodes and answers it, until the
    /// stream would have to wait.
    pub fn serve(
        &mut self,
        conn: &mut Connection,
        id: StreamId,
        app: &App,
        credentials: &mut Credentials,
    ) -> Progress {
        loop {
            match self.flush(conn, id) {
                Flush::Done => {}
                Flush::Blocked => return Progress::Open,
                Flush::Gone => {
                    let _ = conn.send_stream(id).reset(VarInt::from_u32(0));
                    let _ = conn.recv_stream(id).stop(VarInt::from_u32(0));
                    return Progress::Done;
                }
            }
            if self.closing {
                end(conn, id);
                let _ = conn.recv_stream(id).stop(VarInt::from_u32(close::PROTOCOL));
                return Progress::Done;
            }
            // `out` is empty here, so answering nothing means no complete
            // frame is buffered (not that FLUSH_AT was already reached).
            if self.answer_buffered(app, credentials, Some(conn.remote_address().ip())) {
                continue;
            }
            if self.recv_done {
                end(conn, id);
                return Progress::Done;
            }
            if !self.fill(conn, id) && !self.recv_done {
                return Progress::Open;
            }
        }
    }

    /// The request parser without a QUIC connection, for the fuzz target in
    /// `edge/fuzz` (a quinn `Connection` needs a handshake): takes `bytes`
    /// as [`Self::fill`] would, answers what is complete, and returns the
    /// answers, whether the stream now ends with CLOSING, and how many
    /// bytes it could not take (0 unless closing).
    #[doc(hidden)]
    pub fn feed(
        &mut self,
        app: &App,
        credentials: &mut Credentials,
        mut bytes: &[u8],
    ) -> (Vec<u8>, bool, usize) {
        let mut answers = Vec::new();
        loop {
            if self.end == self.buf.len() {
                self.buf.resize((self.buf.len() * 2).min(READ_BUF_MAX), 0);
            }
            let n = bytes.len().min(self.buf.len() - self.end);
            self.buf[self.end..self.end + n].copy_from_slice(&bytes[..n]);
            self.end += n;
            bytes = &bytes[n..];
            let answered = self.answer_buffered(app, credentials, None);
            answers.append(&mut self.out);
            if self.closing || (!answered && n == 0) {
                return (answers, self.closing, bytes.len());
            }
        }
    }

    /// Reads what quinn holds for the stream into `buf`. True if anything
    /// was read.
    fn fill(&mut self, conn: &mut Connection, id: StreamId) -> bool {
        // After compaction at most one partial frame is kept, so a full
        // buffer can always grow within READ_BUF_MAX.
        if self.end == self.buf.len() {
            self.buf.resize((self.buf.len() * 2).min(READ_BUF_MAX), 0);
        }
        let mut recv = conn.recv_stream(id);
        let Ok(mut chunks) = recv.read(true) else {
            // Already finished and forgotten by quinn.
            self.recv_done = true;
            return false;
        };
        let mut got = false;
        while self.end < self.buf.len() {
            match chunks.next(self.buf.len() - self.end) {
                Ok(Some(chunk)) => {
                    let n = chunk.bytes.len();
                    self.buf[self.end..self.end + n].copy_from_slice(&chunk.bytes);
                    self.end += n;
                    got = true;
                }
                Ok(None) | Err(ReadError::Reset(_)) => {
                    self.recv_done = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
            }
        }
        // Credit flows back with the next transmit, which the driver polls
        // after every event anyway.
        let _ = chunks.finalize();
        got
    }

    /// Decodes and answers the complete frames in `buf`, up to FLUSH_AT
    /// bytes of answers. True if it wrote anything to `out` (answers, or
    /// the CLOSING frame for a malformed one).
    fn answer_buffered(
        &mut self,
        app: &App,
        credentials: &mut Credentials,
        peer: Option<std::net::IpAddr>,
    ) -> bool {
        if self.closing {
            return false;
        }
        // One clock read and one pin of the table for the whole batch.
        let now = now_ms();
        let guard = app.state.table();
        let pinned = guard.as_ref().map(|t| t.pin());
        let mut answered = false;
        while self.out.len() < FLUSH_AT {
            match decode_request(&self.buf[self.start..self.end]) {
                Ok(Some((request, used))) => {
                    let batch = Batch { app, table: pinned.as_ref(), peer, now_ms: now };
                    batch.answer(credentials, request, &mut self.target, &mut self.out);
                    self.start += used;
                    answered = true;
                }
                Ok(None) => break,
                Err(e) => {
                    refuse(&mut self.out, &e);
                    self.closing = true;
                    answered = true;
                    break;
                }
            }
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        answered
    }

    fn flush(&mut self, conn: &mut Connection, id: StreamId) -> Flush {
        let mut send = conn.send_stream(id);
        while self.written < self.out.len() {
            match send.write(&self.out[self.written..]) {
                Ok(n) => self.written += n,
                Err(WriteError::Blocked) => return Flush::Blocked,
                Err(e) => {
                    tracing::debug!(error = %e, "QUIC stream write failed");
                    return Flush::Gone;
                }
            }
        }
        self.out.clear();
        self.written = 0;
        Flush::Done
    }
}

/// Finishes our side; if the client already stopped it, resets it instead
/// (quinn-proto holds a stopped stream until one or the other is done).
fn end(conn: &mut Connection, id: StreamId) {
    let mut send = conn.send_stream(id);
    if let Err(FinishError::Stopped(code)) = send.finish() {
        let _ = send.reset(code);
    }
}

/// Appends the CLOSING frame that says why the stream ends.
fn refuse(out: &mut Vec<u8>, e: &FrameError) {
    tracing::debug!(error = %e, "malformed QUIC frame; closing the stream");
    let message = e.to_string();
    // Code and message are short and static in shape: they always fit.
    let _ = Reply::Closing { code: e.code(), message: &message }.encode(out);
}

/// What every request of one batch is answered from.
struct Batch<'a, 't> {
    app: &'a App,
    table: Option<&'a TableRef<'t>>,
    /// The client's address: refused credentials are charged to it.
    peer: Option<std::net::IpAddr>,
    now_ms: i64,
}

impl Batch<'_, '_> {
    /// Appends the answer to one request to `out`.
    fn answer(
        &self,
        credentials: &mut Credentials,
        request: Request<'_>,
        target: &mut String,
        out: &mut Vec<u8>,
    ) {
        let app = self.app;
        match request {
            Request::Auth { id, token } => {
                let header = [b"Bearer ".as_slice(), token.as_bytes()].concat();
                let checked = match &app.auth {
                    None => Ok(crate::auth::Access::Allowed),
                    Some(auth) => {
                        auth.allows(Some(&header), None, self.now_ms.div_euclid(1000), self.peer)
                    }
                };
                // Stored even when refused: later resolves then get the same
                // 401 an HTTP request with that header would.
                *credentials = Some(header);
                match checked {
                    Ok(crate::auth::Access::Limited(wait)) => encode_limited(out, id, wait),
                    Ok(_) => encode(out, ok(id, 0, "authorized")),
                    Err(e) => {
                        let code = Refusal::Unauthorized.code();
                        encode(out, error(id, Status::Unauthorized, code, &e.to_string()));
                    }
                }
            }
            Request::Resolve { id, context, alias } => {
                let timer = sample_timer();
                target.clear();
                target.push_str(context);
                target.push('/');
                target.push_str(alias);
                let header = credentials.as_deref();
                let outcome =
                    resolve(self.table, app.auth.as_ref(), target, header, self.peer, self.now_ms);
                encode_outcome(out, id, &outcome);
                app.metrics.record(&outcome, timer.map(|t| t.elapsed()));
            }
        }
    }
}

/// The ANSWER frame of an outcome: the canonical and version straight from
/// the table on 200, the refusal table's status, code and message otherwise.
fn encode_outcome(out: &mut Vec<u8>, id: u64, outcome: &Outcome<'_>) {
    match outcome {
        Outcome::Found(hit) => {
            // The table's bytes came from a `str`: the check always passes.
            let canonical = std::str::from_utf8(hit.canonical()).unwrap_or_default();
            encode(out, ok(id, hit.version, canonical));
        }
        Outcome::Unauthorized(e) => {
            let r = Refusal::Unauthorized;
            encode(out, error(id, r.status(), r.code(), &e.to_string()));
        }
        Outcome::Limited(wait) => encode_limited(out, id, *wait),
        Outcome::Refused(r) => encode(out, error(id, r.status(), r.code(), r.message())),
    }
}

/// 429 over `EDGE_RATE_LIMIT` or a spent failure budget. The ANSWER frame has no headers, so the
/// wait HTTP sends as `Retry-After` is in the message, in whole seconds
/// rounded up.
fn encode_limited(out: &mut Vec<u8>, id: u64, wait: std::time::Duration) {
    let r = Refusal::RateLimited;
    let secs = crate::resolve::retry_after_secs(wait);
    let message = format!("too many requests; retry after {secs} s");
    encode(out, error(id, r.status(), r.code(), &message));
}

fn ok(id: u64, version: u64, canonical: &str) -> Answer<'_> {
    Answer { id, status: Status::Ok, version, text: canonical, message: "" }
}

fn error<'a>(id: u64, status: Status, code: &'a str, message: &'a str) -> Answer<'a> {
    Answer { id, status, version: 0, text: code, message }
}

fn encode(out: &mut Vec<u8>, answer: Answer<'_>) {
    if Reply::Answer(answer).encode(out).is_err() {
        // Only a message over 64 KiB could get here; the request still gets
        // its one answer, without the message.
        let _ = Reply::Answer(Answer { message: "", ..answer }).encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_protocol::quic::decode_reply;
    use nexus_protocol::{AliasName, AliasRecord, Canonical, Context};

    use crate::table::Table;

    #[test]
    fn a_found_answer_carries_the_canonical_as_is_and_the_version() {
        let record = AliasRecord {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse("a").unwrap(),
            canonical: Canonical::parse(r#"https://x/"q"\"#).unwrap(),
            description: None,
            expires_at_ms: None,
            is_active: true,
            version: 42,
            updated_at_ms: 0,
        };
        let table = Table::from_records([&record]);
        let pinned = table.pin();
        let mut out = Vec::new();
        encode_outcome(&mut out, 9, &resolve(Some(&pinned), None, "frontend/a", None, None, 0));
        encode_outcome(&mut out, 10, &resolve(Some(&pinned), None, "nowhere/a", None, None, 0));
        let (first, used) = decode_reply(&out).unwrap().unwrap();
        let want = Answer {
            id: 9,
            status: Status::Ok,
            version: 42,
            text: r#"https://x/"q"\"#,
            message: "",
        };
        assert_eq!(first, Reply::Answer(want));
        let (second, _) = decode_reply(&out[used..]).unwrap().unwrap();
        let Reply::Answer(second) = second else { panic!("{second:?}") };
        assert_eq!((second.status, second.text), (Status::BadRequest, "unknown_context"));
    }
}
