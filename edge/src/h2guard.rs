//! HTTP/2 control-frame flood guard: a frame-boundary tracker for the read
//! side of an HTTP/2 connection. h2/hyper answer every SETTINGS and PING
//! without a rate limit, so a client sending them in a loop keeps its worker
//! busy at no cost to itself. The tracker walks the 9-byte frame headers as
//! the bytes pass (no copy, no allocation; a state machine across reads),
//! skips payloads, and charges each non-ACK SETTINGS, non-ACK PING, empty
//! DATA, WINDOW_UPDATE and PRIORITY frame to a per-connection token bucket.
//! When the bucket is empty the caller errors the read and closes.
//!
//! Defaults ([`BURST`], [`REFILL_PER_SEC`]) are far above what a legitimate
//! client sends: one SETTINGS at start, a keep-alive PING every few seconds,
//! WINDOW_UPDATEs per large body.

use std::time::Instant;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE_LEN: usize = 24;
/// Control frames one connection may send in a burst.
pub const BURST: u32 = 100;
/// Control frames one connection may send per second, sustained.
pub const REFILL_PER_SEC: u32 = 50;

const DATA: u8 = 0x0;
const PRIORITY: u8 = 0x2;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const ACK: u8 = 0x1;

/// Which control frame emptied the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    Settings,
    Ping,
    EmptyData,
    WindowUpdate,
    Priority,
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
        }
    }
}

#[derive(Debug)]
enum State {
    /// Bytes of the preface still to pass.
    Preface(usize),
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
            tokens: burst,
            refilled: None,
            burst,
            refill_per_sec,
        }
    }

    /// Walks `buf`; `Err` names the frame kind that exceeded the bucket.
    pub fn feed(&mut self, mut buf: &[u8]) -> Result<(), Flood> {
        while !buf.is_empty() {
            match self.state {
                State::Preface(left) => {
                    let n = left.min(buf.len());
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
                    let kind = match (h[3], h[4] & ACK != 0) {
                        (SETTINGS, false) => Some(Flood::Settings),
                        (PING, false) => Some(Flood::Ping),
                        (DATA, _) if len == 0 => Some(Flood::EmptyData),
                        (WINDOW_UPDATE, _) => Some(Flood::WindowUpdate),
                        (PRIORITY, _) => Some(Flood::Priority),
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
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()
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
    fn a_few_pings_never_trip() {
        let mut g = H2Guard::default();
        g.feed(&preface()).unwrap();
        for _ in 0..BURST {
            g.feed(&frame(PING, 0, &[0; 8])).unwrap();
        }
        assert_eq!(g.feed(&frame(PING, 0, &[0; 8])), Err(Flood::Ping));
    }
}
