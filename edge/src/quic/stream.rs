//! One bidirectional stream of `nexus-resolve/1`: read what arrived, answer
//! every complete request in order into one buffer, write it in one go.
//! Pipelined requests thus cost one read and one write per batch, not per
//! request.
//!
//! A frame that does not decode ends the stream with a CLOSING frame naming
//! the error; the connection and its other streams carry on.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use nexus_protocol::quic::{
    Answer, FrameError, LEN_PREFIX, MAX_FRAME_LEN, Reply, Request, Status, close, decode_request,
};
use quinn::{RecvStream, SendStream, VarInt};

use crate::resolve::{Outcome, resolve};
use crate::service::{App, now_ms};

/// The connection's `Authorization` value (`Bearer <token>`), set by AUTH.
pub type Credentials = ArcSwapOption<Vec<u8>>;

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

/// Serves one stream until the client finishes it, it breaks, or a frame is
/// malformed.
pub async fn serve(
    app: Arc<App>,
    credentials: Arc<Credentials>,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let mut buf = vec![0u8; READ_BUF_START];
    let (mut start, mut end) = (0, 0);
    let mut out = Vec::with_capacity(4096);
    let mut target = String::with_capacity(128);
    loop {
        // After compaction at most one partial frame is kept, so a full
        // buffer can always grow within READ_BUF_MAX.
        if end == buf.len() {
            buf.resize((buf.len() * 2).min(READ_BUF_MAX), 0);
        }
        match recv.read(&mut buf[end..]).await {
            Ok(Some(n)) => end += n,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "QUIC stream read failed");
                return;
            }
        }
        let now = now_ms();
        loop {
            match decode_request(&buf[start..end]) {
                Ok(Some((request, used))) => {
                    answer(&app, &credentials, request, now, &mut target, &mut out);
                    start += used;
                    if out.len() >= FLUSH_AT && write(&mut send, &mut out).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    refuse(&mut send, &mut recv, &mut out, e).await;
                    return;
                }
            }
        }
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        if write(&mut send, &mut out).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

async fn write(send: &mut SendStream, out: &mut Vec<u8>) -> Result<(), quinn::WriteError> {
    if out.is_empty() {
        return Ok(());
    }
    let written = send.write_all(out).await;
    out.clear();
    if let Err(e) = &written {
        tracing::debug!(error = %e, "QUIC stream write failed");
    }
    written
}

/// Answers what was decoded so far, then says why the stream ends and
/// ends it.
async fn refuse(send: &mut SendStream, recv: &mut RecvStream, out: &mut Vec<u8>, e: FrameError) {
    tracing::debug!(error = %e, "malformed QUIC frame; closing the stream");
    let message = e.to_string();
    // Code and message are short and static in shape: they always fit.
    let _ = Reply::Closing { code: e.code(), message: &message }.encode(out);
    let _ = write(send, out).await;
    let _ = send.finish();
    let _ = recv.stop(VarInt::from_u32(close::PROTOCOL));
}

/// Appends the answer to one request to `out`.
fn answer(
    app: &App,
    credentials: &Credentials,
    request: Request<'_>,
    now_ms: i64,
    target: &mut String,
    out: &mut Vec<u8>,
) {
    match request {
        Request::Auth { id, token } => {
            let header = [b"Bearer ".as_slice(), token.as_bytes()].concat();
            let checked = match &app.auth {
                None => Ok(true),
                Some(auth) => auth.allows(Some(&header), None, now_ms.div_euclid(1000)),
            };
            // Stored even when refused: later resolves then get the same 401
            // an HTTP request with that header would.
            credentials.store(Some(Arc::new(header)));
            match checked {
                Ok(_) => encode(out, ok(id, 0, "authorized")),
                Err(e) => {
                    encode(out, error(id, Status::Unauthorized, "unauthorized", &e.to_string()))
                }
            }
        }
        Request::Resolve { id, context, alias } => {
            let started = Instant::now();
            target.clear();
            target.push_str(context);
            target.push('/');
            target.push_str(alias);
            let creds = credentials.load();
            let header = creds.as_deref().map(Vec::as_slice);
            let outcome = resolve(&app.state, app.auth.as_ref(), target, header, now_ms);
            encode_outcome(out, id, &outcome);
            app.metrics.record(&outcome, started.elapsed());
        }
    }
}

fn encode_outcome(out: &mut Vec<u8>, id: u64, outcome: &Outcome) {
    match outcome {
        Outcome::Found { body, version } => {
            let version = version.to_str().ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            encode(out, ok(id, version, &canonical(body)));
        }
        Outcome::NotFound => encode(out, error(id, Status::NotFound, "not_found", "no such alias")),
        Outcome::BadName => encode(
            out,
            error(
                id,
                Status::BadRequest,
                "bad_request",
                "context and alias must be a-z 0-9 - _ . starting with a letter or digit",
            ),
        ),
        Outcome::UnknownContext => {
            encode(out, error(id, Status::BadRequest, "bad_request", "unknown context"));
        }
        Outcome::Unauthorized(e) => {
            encode(out, error(id, Status::Unauthorized, "unauthorized", &e.to_string()));
        }
        Outcome::Forbidden => encode(
            out,
            error(id, Status::Forbidden, "forbidden", "token does not allow this context"),
        ),
        Outcome::Starting => {
            encode(out, error(id, Status::Unavailable, "starting", "no registry state loaded yet"))
        }
    }
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

/// The canonical endpoint inside a body rendered as
/// `{"canonical_name":"..."}`. serde_json escapes only `"`, `\` and control
/// characters, so a body without a backslash holds the canonical verbatim
/// and is sliced without allocating; anything else is parsed.
fn canonical(body: &[u8]) -> Cow<'_, str> {
    const HEAD: &[u8] = br#"{"canonical_name":""#;
    const TAIL: &[u8] = br#""}"#;
    let verbatim = body
        .strip_prefix(HEAD)
        .and_then(|rest| rest.strip_suffix(TAIL))
        .filter(|inner| !inner.contains(&b'\\'))
        .and_then(|inner| std::str::from_utf8(inner).ok());
    if let Some(c) = verbatim {
        return Cow::Borrowed(c);
    }
    #[derive(serde::Deserialize)]
    struct Body {
        canonical_name: String,
    }
    serde_json::from_slice::<Body>(body).map_or(Cow::Borrowed(""), |b| Cow::Owned(b.canonical_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Entry;
    use nexus_protocol::{AliasName, AliasRecord, Canonical, Context};

    fn body_of(canonical: &str) -> bytes::Bytes {
        let record = AliasRecord {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse("a").unwrap(),
            canonical: Canonical::parse(canonical).unwrap(),
            description: None,
            expires_at_ms: None,
            is_active: true,
            version: 1,
            updated_at_ms: 0,
        };
        Entry::from_record(&record).body
    }

    #[test]
    fn canonical_comes_back_from_the_rendered_body() {
        let plain = body_of("https://api.nexus.com/v1/users/profile");
        let c = canonical(&plain);
        assert_eq!(c, "https://api.nexus.com/v1/users/profile");
        assert!(matches!(c, Cow::Borrowed(_)), "a plain canonical is sliced, not copied");
        assert_eq!(canonical(br#"{"canonical_name":"https://x/\"q\"\\"}"#), r#"https://x/"q"\"#);
        assert_eq!(canonical(br#"{"canonical_name":"https://x/\u00e9"}"#), "https://x/\u{e9}");
    }
}
