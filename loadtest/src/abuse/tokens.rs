//! A credential flood: keep-alive HTTP/1.1 resolves whose bearer token is
//! the legitimate token's header and claims (so it names a real `kid`)
//! with a junk signature, a different one on every request, so no cache
//! of refusals can answer it and every request would cost the edge a full
//! signature check if nothing stopped it first.
//!
//! The flood comes from another loopback address than the legitimate load
//! (127.0.0.2 when the edge is on 127.0.0.1), as an attacker would be
//! another host: the edge's per-host failure budget is what is measured,
//! and the legitimate host must not pay for the attacker's refusals.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

use super::attack::{Aim, Counters, Stop};

/// The flood's source address for `target`: another loopback host when
/// the edge is on loopback, else whatever the kernel picks.
pub fn attacker_source(target: SocketAddr) -> Option<IpAddr> {
    match target.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let next = if v4.octets()[3] == 2 { 3 } else { 2 };
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, next)))
        }
        _ => None,
    }
}

/// The token with its signature replaced by junk of the same length that
/// encodes `n` (base64url characters only, so it still parses as a JWT).
pub fn junk_signature(token: &str, n: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (signed, sig) = token.rsplit_once('.').unwrap_or((token, ""));
    let mut junk: Vec<u8> = vec![b'A'; sig.len().max(16)];
    let mut x = n ^ 0x9e37_79b9_7f4a_7c15;
    for b in junk.iter_mut() {
        // splitmix64 steps: every request's signature differs everywhere.
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        *b = ALPHABET[((z ^ (z >> 31)) & 63) as usize];
    }
    format!("{signed}.{}", String::from_utf8_lossy(&junk))
}

/// `aim.connections` connections, each sending junk-signed resolves one at
/// a time as fast as the edge answers them, until `stop`.
pub async fn junk_tokens(aim: Aim, stop: Stop, counters: Arc<Counters>) {
    let Some(token) = aim.token.clone() else {
        eprintln!("junk-tokens needs --token (its header and claims are reused)");
        return;
    };
    let mut tasks = JoinSet::new();
    for c in 0..aim.connections.max(1) {
        let (aim, token, stop, counters) =
            (aim.clone(), token.clone(), stop.clone(), counters.clone());
        tasks.spawn(async move {
            // Requests of different connections never share a signature.
            let mut n = (c as u64) << 40;
            while !stop.stopped() {
                let Ok(mut conn) = connect(aim.http).await else {
                    Counters::add(&counters.connect_failures, 1);
                    if !stop.clone().sleep(std::time::Duration::from_millis(50)).await {
                        return;
                    }
                    continue;
                };
                Counters::add(&counters.connections_opened, 1);
                while !stop.stopped() {
                    n += 1;
                    let request = format!(
                        "GET {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
                        aim.path,
                        aim.authority,
                        junk_signature(&token, n)
                    );
                    if conn.write_all(request.as_bytes()).await.is_err()
                        || !read_answer(&mut conn).await
                    {
                        Counters::add(&counters.closed_by_edge, 1);
                        break;
                    }
                    counters.sent(1, request.len());
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(source) = attacker_source(addr) {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads one answer (head and `Content-Length` body); false when the
/// connection ended or the answer was not one.
async fn read_answer(conn: &mut TcpStream) -> bool {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let want = end + 4 + length;
            while buf.len() < want {
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            return true;
        }
        if buf.len() > crate::h1::MAX_HEAD_BYTES {
            return false;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_keeps_the_header_and_claims_and_changes_the_signature() {
        let token = "aGVhZA.Y2xhaW1z.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl";
        let (a, b) = (junk_signature(token, 1), junk_signature(token, 2));
        assert!(a.starts_with("aGVhZA.Y2xhaW1z.") && b.starts_with("aGVhZA.Y2xhaW1z."));
        assert_ne!(a, b);
        assert_eq!(a.len(), token.len());
        assert!(
            a.rsplit('.')
                .next()
                .unwrap()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let edge: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(attacker_source(edge), Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(attacker_source("10.0.0.1:80".parse().unwrap()), None);
    }
}
