//! How much one request may send, in one place: the hyper server
//! ([`crate::server`]) enforces these and the HTTP/2 flood guard
//! ([`crate::h2guard`]) sizes its header-block cut from them, so neither
//! imports the other.

/// Largest HTTP/1 read buffer, which bounds the request head (431 beyond),
/// and the HTTP/2 header list.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;
/// Concurrent HTTP/2 streams per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
