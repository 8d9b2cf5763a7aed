//! Raw HTTP/2 frames (RFC 9113 §4.1) and the few HPACK encodings
//! (RFC 7541) the attacks need, written by hand: a real client library
//! would refuse to send most of what the attacks send.
//!
//! A frame is a 9-byte header (24-bit length, type, flags, 31-bit stream
//! id) and its payload. Header blocks use only indexed static-table
//! entries and literals without indexing, never Huffman, so no encoder
//! state is shared between frames.

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// RST_STREAM error code CANCEL.
pub const CANCEL: u32 = 0x8;
/// SETTINGS_INITIAL_WINDOW_SIZE.
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
/// Largest payload a peer must accept before SETTINGS say otherwise.
pub const DEFAULT_MAX_FRAME: usize = 16_384;

/// Appends one frame.
pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX).min(0x00ff_ffff);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&payload[..len as usize]);
}

/// The preface and an empty SETTINGS frame: what opens every connection.
pub fn opening(out: &mut Vec<u8>) {
    out.extend_from_slice(PREFACE);
    frame(out, SETTINGS, 0, 0, &[]);
}

/// A SETTINGS frame with one setting.
pub fn settings(out: &mut Vec<u8>, id: u16, value: u32) {
    let mut p = [0u8; 6];
    p[..2].copy_from_slice(&id.to_be_bytes());
    p[2..].copy_from_slice(&value.to_be_bytes());
    frame(out, SETTINGS, 0, 0, &p);
}

pub fn rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
    frame(out, RST_STREAM, 0, stream, &code.to_be_bytes());
}

pub fn ping(out: &mut Vec<u8>, data: u64) {
    frame(out, PING, 0, 0, &data.to_be_bytes());
}

/// An HPACK integer with a `prefix_bits`-bit prefix, `flags` in the bits
/// above it (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, flags: u8, prefix_bits: u8, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A string literal, not Huffman-coded.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// Literal without indexing, name from the static table (§6.2.2).
fn literal_indexed_name(out: &mut Vec<u8>, index: usize, value: &[u8]) {
    integer(out, 0x00, 4, index);
    string(out, value);
}

/// Literal without indexing, new name.
pub fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    string(out, name);
    string(out, value);
}

/// The header block of `GET http://{authority}{path}`, with a bearer
/// token when given.
pub fn get_block(authority: &str, path: &str, token: Option<&str>) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + path.len() + token.map_or(0, str::len));
    b.push(0x82); // :method GET (static index 2)
    b.push(0x86); // :scheme http (static index 6)
    literal_indexed_name(&mut b, 4, path.as_bytes()); // :path
    literal_indexed_name(&mut b, 1, authority.as_bytes()); // :authority
    if let Some(t) = token {
        literal(&mut b, b"authorization", format!("Bearer {t}").as_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_is_length_type_flags_stream() {
        let mut out = Vec::new();
        frame(&mut out, HEADERS, END_HEADERS | END_STREAM, 3, b"abc");
        assert_eq!(out, [0, 0, 3, 1, 5, 0, 0, 0, 3, b'a', b'b', b'c']);
        out.clear();
        rst_stream(&mut out, 5, CANCEL);
        assert_eq!(out, [0, 0, 4, 3, 0, 0, 0, 0, 5, 0, 0, 0, 8]);
    }

    #[test]
    fn hpack_integers_follow_rfc7541_examples() {
        // C.1.1 / C.1.2: 10 and 1337 with a 5-bit prefix.
        let mut out = Vec::new();
        integer(&mut out, 0, 5, 10);
        assert_eq!(out, [10]);
        out.clear();
        integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
    }

    #[test]
    fn get_block_starts_with_method_and_scheme() {
        let b = get_block("h:1", "/p", None);
        assert_eq!(b, [0x82, 0x86, 0x04, 2, b'/', b'p', 0x01, 3, b'h', b':', b'1']);
    }
}
