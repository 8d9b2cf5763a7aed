//! `nexus-resolve/1` frames: the bytes of a stream, decoded as the edge
//! does (one frame after another from the front of its buffer), both as
//! requests and as replies.
//!
//! Properties: the format is canonical, so every decoded frame re-encodes
//! to exactly the bytes it was decoded from; a frame is complete only with
//! all its bytes (every shorter prefix asks for more); `TooLarge` is decided
//! from the 4-byte prefix alone; nothing is consumed beyond the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_protocol::quic::{
    FrameError, LEN_PREFIX, MAX_FRAME_LEN, Reply, decode_reply, decode_request,
};

fuzz_target!(|bytes: &[u8]| {
    let mut at = 0;
    loop {
        let buf = &bytes[at..];
        match decode_request(buf) {
            Ok(Some((r, used))) => {
                complete(buf, used);
                let mut out = Vec::new();
                r.encode(&mut out).expect("a decoded request re-encodes");
                assert_eq!(out, &buf[..used], "request encoding is canonical");
                assert_eq!(decode_request(&buf[..used - 1]), Ok(None));
                at += used;
            }
            Ok(None) => {
                incomplete(buf);
                break;
            }
            Err(e) => {
                refused(buf, e);
                break;
            }
        }
    }
    let mut at = 0;
    loop {
        let buf = &bytes[at..];
        match decode_reply(buf) {
            Ok(Some((r, used))) => {
                complete(buf, used);
                let mut out = Vec::new();
                r.encode(&mut out).expect("a decoded reply re-encodes");
                assert_eq!(out, &buf[..used], "reply encoding is canonical");
                if let Reply::Answer(a) = r {
                    assert_eq!(a.status.code(), u16::from_be_bytes([buf[13], buf[14]]));
                }
                at += used;
            }
            Ok(None) => {
                incomplete(buf);
                break;
            }
            Err(e) => {
                refused(buf, e);
                break;
            }
        }
    }
    // What the edge would send back for a request it cannot decode fits.
    if let Err(e) = decode_request(bytes) {
        let message = e.to_string();
        let mut out = Vec::new();
        Reply::Closing { code: e.code(), message: &message }.encode(&mut out).unwrap();
    }
});

fn prefix(buf: &[u8]) -> Option<usize> {
    buf.first_chunk::<LEN_PREFIX>().map(|p| u32::from_be_bytes(*p) as usize)
}

fn complete(buf: &[u8], used: usize) {
    assert!(used <= buf.len());
    assert_eq!(Some(used - LEN_PREFIX), prefix(buf));
    assert!(used > LEN_PREFIX && used - LEN_PREFIX <= MAX_FRAME_LEN);
}

fn incomplete(buf: &[u8]) {
    if let Some(len) = prefix(buf) {
        assert!(len <= MAX_FRAME_LEN && LEN_PREFIX + len > buf.len());
    }
}

fn refused(buf: &[u8], e: FrameError) {
    let len = prefix(buf).expect("a refusal needs at least the prefix");
    match e {
        FrameError::TooLarge { len: l, max } => assert!(l == len && l > max),
        FrameError::Empty => assert_eq!(len, 0),
        // Everything else is about a body that arrived whole.
        _ => assert!(len >= 1 && LEN_PREFIX + len <= buf.len(), "{e:?}"),
    }
    assert!(matches!(e.code(), "frame_too_large" | "malformed_frame"));
}
