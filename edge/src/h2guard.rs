//! HTTP/2 control-frame flood guard: a frame-boundary tracker for the read
//! side of an HTTP/2 connection. h2/hyper answer every SETTINGS and PING
//! without a rate limit, so a client sending them in a loop keeps its worker
//! busy at no cost to itself. The tracker walks the 9-byte frame headers as
//! the bytes pass (no copy, no allocation; a state machine across reads),
//! skips payloads, and charges each non-ACK SETTINGS, non-ACK PING, empty
//! DATA, WINDOW_UPDATE, PRIORITY and RST_STREAM frame to a per-connection
//! token bucket. When the bucket is empty the read fails and hyper closes
//! the connection (counted in `nexus_edge_h2_flood_closed_total{kind}`).
//!
//! It also adds up each header block (HEADERS and its CONTINUATIONs) from
//! the frame lengths and closes the connection once one passes
//! [`MAX_HEADER_BLOCK`]. h2 stops a CONTINUATION flood too, but only after
//! it has HPACK-decoded several full frames; here the bytes past the limit
//! never reach the decoder. HPACK never encodes a header in more bytes than
//! the 32 its list-size accounting adds to name and value, so a block that
//! long is far over the edge's header list limit and would be refused
//! anyway: the only thing lost is the 431 on that one stream.
//!
//! The tracker sniffs the client preface itself: a connection whose first
//! bytes are not `PRI * HTTP/2.0...` (HTTP/1.1, or h2 never started) turns
//! it off, and from then on a read costs one branch. So one wrapper,
//! [`Guarded`], sits on every plaintext stream hyper reads (under TLS: the
//! decrypted side), whatever protocol the connection turns out to speak.
//!
//! Defaults ([`BURST`], [`REFILL_PER_SEC`]) are far above what a legitimate
//! client sends: one SETTINGS at start, a keep-alive PING every few seconds,
//! WINDOW_UPDATEs per large body.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::Metrics;

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const PREFACE_LEN: usize = PREFACE.len();
/// Control frames one connection may send in a burst.
pub const BURST: u32 = 100;
/// Control frames one connection may send per second, sustained.
pub const REFILL_PER_SEC: u32 = 50;
/// Encoded bytes one header block may span: twice the header list limit
/// (padding and HPACK table-size updates come on top of the list).
pub const MAX_HEADER_BLOCK: usize = 2 * crate::limits::MAX_HEADER_BYTES;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Why the guard closed a connection: the control frame that emptied the
/// bucket, or a header block past [`MAX_HEADER_BLOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    Settings,
    Ping,
    EmptyData,
    WindowUpdate,
    Priority,
    Reset,
    /// A header block past [`MAX_HEADER_BLOCK`] (not a bucket).
    Continuation,
}

impl Flood {
    /// The `kind` label of `nexus_edge_h2_flood_closed_total`.
    pub fn label(self) -> &'static str {
        match self {
            Flood::Settings => "settings",
            Flood::Ping => "ping",
            Flood::EmptyData => "empty_data",
            Flood::WindowUpdate => "window_update",
            Flood::Priority => "priority",
            Flood::Reset => "rst_stream",
            Flood::Continuation => "continuation",
        }
    }
}

#[derive(Debug)]
enum State {
    /// Bytes of the preface still to check.
    Preface(usize),
    /// Not HTTP/2: nothing to track.
    Off,
    /// Collecting a frame header: bytes so far.
    Header(usize),
    /// Skipping a payload: bytes left.
    Payload(usize),
}

/// Per-connection tracker; feed it every chunk read, in order.
#[derive(Debug)]
pub struct H2Guard {
    state: State,
    header: [u8; 9],
    /// Encoded bytes of the header block still open (HEADERS without
    /// END_HEADERS, then its CONTINUATIONs); `None` between blocks.
    block: Option<usize>,
    tokens: u32,
    refilled: Option<Instant>,
    burst: u32,
    refill_per_sec: u32,
}

impl Default for H2Guard {
    fn default() -> Self {
        Self::new(BURST, REFILL_PER_SEC)
    }
}

impl H2Guard {
    pub fn new(burst: u32, refill_per_sec: u32) -> Self {
        Self {
            state: State::Preface(PREFACE_LEN),
            header: [0; 9],
            block: None,
            tokens: burst,
            refilled: None,
            burst,
            refill_per_sec,
        }
    }

    /// Walks `buf`; `Err` names the frame kind that exceeded the bucket.
    /// After an `Err` the tracker is spent: the connection is to be closed.
    pub fn feed(&mut self, mut buf: &[u8]) -> Result<(), Flood> {
        while !buf.is_empty() {
            match self.state {
                State::Off => return Ok(()),
                State::Preface(left) => {
                    let n = left.min(buf.len());
                    let at = PREFACE_LEN - left;
                    if buf[..n] != PREFACE[at..at + n] {
                        self.state = State::Off;
                        return Ok(());
                    }
                    buf = &buf[n..];
                    self.state =
                        if left == n { State::Header(0) } else { State::Preface(left - n) };
                }
                State::Payload(left) => {
                    let n = left.min(buf.len());
                    buf = &buf[n..];
                    self.state =
                        if left == n { State::Header(0) } else { State::Payload(left - n) };
                }
                State::Header(have) => {
                    let n = (9 - have).min(buf.len());
                    self.header[have..have + n].copy_from_slice(&buf[..n]);
                    buf = &buf[n..];
                    if have + n < 9 {
                        self.state = State::Header(have + n);
                        continue;
                    }
                    let h = self.header;
                    let len =
                        (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    self.state = if len == 0 { State::Header(0) } else { State::Payload(len) };
                    if matches!(h[3], HEADERS | CONTINUATION) {
                        self.header_block(h[3], h[4], len)?;
                    }
                    let kind = match (h[3], h[4] & ACK != 0) {
                        (SETTINGS, false) => Some(Flood::Settings),
                        (PING, false) => Some(Flood::Ping),
                        (DATA, _) if len == 0 => Some(Flood::EmptyData),
                        (WINDOW_UPDATE, _) => Some(Flood::WindowUpdate),
                        (PRIORITY, _) => Some(Flood::Priority),
                        (RST_STREAM, _) => Some(Flood::Reset),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        self.charge(kind)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds a HEADERS or CONTINUATION frame of `len` payload bytes to the
    /// open header block. Whether the frames are in a legal order is h2's
    /// business; a CONTINUATION with no block open counts from zero.
    fn header_block(&mut self, kind: u8, flags: u8, len: usize) -> Result<(), Flood> {
        let so_far = if kind == HEADERS { 0 } else { self.block.unwrap_or(0) };
        let total = so_far + len;
        if total > MAX_HEADER_BLOCK {
            return Err(Flood::Continuation);
        }
        self.block = (flags & END_HEADERS == 0).then_some(total);
        Ok(())
    }

    fn charge(&mut self, kind: Flood) -> Result<(), Flood> {
        if self.tokens == 0 {
            // The clock is read only once the burst is spent.
            let now = Instant::now();
            let since = *self.refilled.get_or_insert(now);
            let earned = (now.duration_since(since).as_millis() as u64
                * u64::from(self.refill_per_sec)
                / 1000) as u32;
            if earned > 0 {
                self.tokens = earned.min(self.burst);
                self.refilled = Some(now);
            }
        }
        if self.tokens == 0 {
            return Err(kind);
        }
        self.tokens -= 1;
        if self.refilled.is_none() && self.tokens == 0 {
            self.refilled = Some(Instant::now());
        }
        Ok(())
    }
}

/// A stream whose reads pass through an [`H2Guard`]; a flood fails the
/// read, which ends the connection.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    guard: H2Guard,
    metrics: Arc<Metrics>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        Self { inner, guard: H2Guard::default(), metrics }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        if let Err(kind) = this.guard.feed(&buf.filled()[before..]) {
            this.metrics.h2_flood_closed.get_or_create(&[("kind", kind.label())]).inc();
            tracing::debug!(kind = kind.label(), "HTTP/2 control-frame flood: connection closed");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("HTTP/2 {} flood", kind.label()),
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, 1];
        f.extend_from_slice(payload);
        f
    }

    fn preface() -> Vec<u8> {
        PREFACE.to_vec()
    }

    #[test]
    fn http1_is_not_tracked() {
        // Bytes that would be SETTINGS frames after a preface, on a
        // connection that did not send one.
        let mut bytes = b"GET /api/aliases/health HTTP/1.1\r\n\r\n".to_vec();
        for _ in 0..200 {
            bytes.extend(frame(SETTINGS, 0, &[]));
        }
        let mut g = H2Guard::new(1, 0);
        for c in bytes.chunks(7) {
            g.feed(c).expect("HTTP/1.1 is never charged");
        }
        // A preface that breaks off part-way is not HTTP/2 either.
        let mut g = H2Guard::new(1, 0);
        g.feed(&PREFACE[..10]).unwrap();
        g.feed(b"XX").unwrap();
        for _ in 0..10 {
            g.feed(&frame(PING, 0, &[0; 8])).unwrap();
        }
    }

    #[test]
    fn the_bucket_refills_over_time() {
        // 10 per second: a token every 100 ms, so the feeds after the wait
        // are far apart from the next token even on a loaded machine.
        let mut g = H2Guard::new(2, 10);
        g.feed(&preface()).unwrap();
        let ping = frame(PING, 0, &[0; 8]);
        g.feed(&ping).unwrap();
        g.feed(&ping).unwrap();
        // The burst is spent (an `Err` here would end the guard: the
        // connection closes on it). Long enough for more than the burst.
        std::thread::sleep(std::time::Duration::from_millis(250));
        g.feed(&ping).expect("refilled after 250 ms at 10/s");
        g.feed(&ping).expect("refill is capped at the burst, which is 2");
        assert_eq!(g.feed(&ping), Err(Flood::Ping));
    }

    #[test]
    fn settings_flood_is_caught_split_at_every_boundary() {
        let mut bytes = preface();
        for _ in 0..200 {
            bytes.extend(frame(SETTINGS, 0, &[0; 6]));
        }
        for chunk in [1, 2, 5, 9, 10, 17, 4096] {
            let mut g = H2Guard::new(100, 0);
            let r = bytes.chunks(chunk).try_for_each(|c| g.feed(c));
            assert_eq!(r, Err(Flood::Settings), "chunk {chunk}");
        }
    }

    #[test]
    fn acks_headers_and_big_data_pass() {
        let mut bytes = preface();
        bytes.extend(frame(SETTINGS, 0, &[0; 6]));
        // A DATA payload that looks like SETTINGS headers must be skipped.
        let mut fake = Vec::new();
        for _ in 0..2000 {
            fake.extend(frame(SETTINGS, 0, &[]));
        }
        for _ in 0..300 {
            bytes.extend(frame(SETTINGS, ACK, &[]));
            bytes.extend(frame(PING, ACK, &[0; 8]));
            bytes.extend(frame(0x1, 0x5, &[0x82, 0x84]));
        }
        bytes.extend(frame(DATA, 0, &fake));
        for chunk in [1, 3, 9, 1000, 70000] {
            let mut g = H2Guard::new(10, 0);
            for c in bytes.chunks(chunk) {
                g.feed(c).expect("legitimate traffic passes");
            }
        }
    }

    #[test]
    fn a_header_block_past_the_limit_closes_and_a_large_legal_one_passes() {
        let fragment = vec![0u8; 16_000];
        // A legal block of 30,000 bytes in three frames, then the same
        // block never ended.
        let mut legal = preface();
        legal.extend(frame(HEADERS, 0, &fragment[..10_000]));
        legal.extend(frame(CONTINUATION, 0, &fragment[..10_000]));
        legal.extend(frame(CONTINUATION, END_HEADERS, &fragment[..10_000]));
        let mut flood = legal.clone();
        flood.extend(frame(HEADERS, 0, &fragment[..100]));
        for _ in 0..3 {
            flood.extend(frame(CONTINUATION, 0, &fragment));
        }
        for chunk in [1, 9, 4096, 70_000] {
            let mut g = H2Guard::new(1, 0);
            for c in legal.chunks(chunk) {
                g.feed(c).expect("a block under the limit passes");
            }
            let mut g = H2Guard::new(1, 0);
            let r = flood.chunks(chunk).try_for_each(|c| g.feed(c));
            assert_eq!(r, Err(Flood::Continuation), "chunk {chunk}");
        }
        // Caught at the header of the frame that crosses the limit, before
        // its payload is read: h2 never decodes it.
        let mut g = H2Guard::new(1, 0);
        let crossing = legal.len() + 9 + 100 + 2 * (9 + 16_000) + 9;
        assert_eq!(g.feed(&flood[..crossing]), Err(Flood::Continuation));
    }

    #[test]
    fn rapid_resets_are_charged() {
        let mut g = H2Guard::new(3, 0);
        g.feed(&preface()).unwrap();
        for _ in 0..3 {
            g.feed(&frame(HEADERS, 0x5, &[0x82])).unwrap();
            g.feed(&frame(RST_STREAM, 0, &[0, 0, 0, 8])).unwrap();
        }
        g.feed(&frame(HEADERS, 0x5, &[0x82])).expect("HEADERS are not charged");
        assert_eq!(g.feed(&frame(RST_STREAM, 0, &[0, 0, 0, 8])), Err(Flood::Reset));
    }

    #[test]
    fn a_few_pings_never_trip() {
        let mut g = H2Guard::default();
        g.feed(&preface()).unwrap();
        for _ in 0..BURST {
            g.feed(&frame(PING, 0, &[0; 8])).unwrap();
        }
        assert_eq!(g.feed(&frame(PING, 0, &[0; 8])), Err(Flood::Ping));
    }
}
