//! One QUIC connection as the driver holds it: quinn-proto's state
//! machine, its place under the connection cap, the token its AUTH set,
//! and its open streams.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use nexus_protocol::quic::{ALPN, close};
use quinn::crypto::rustls::HandshakeData;
use quinn::{Dir, StreamId, VarInt};
use quinn_proto::{Connection, Event, StreamEvent};

use super::stream::{Credentials, Progress, Stream};
use crate::app::App;
use crate::connections::ConnectionPermit;

#[derive(Debug)]
pub struct Conn {
    pub proto: Connection,
    /// Released when the connection is forgotten.
    _permit: ConnectionPermit,
    credentials: Credentials,
    streams: HashMap<StreamId, Stream>,
    /// Handshake done and ALPN checked: streams may be served.
    ready: bool,
    /// quinn-proto's next timer, as last asked.
    pub timeout: Option<Instant>,
    /// Queued for [`super::driver`] to drive.
    pub queued: bool,
}

impl Conn {
    pub fn new(proto: Connection, permit: ConnectionPermit) -> Self {
        Self {
            proto,
            _permit: permit,
            credentials: None,
            streams: HashMap::new(),
            ready: false,
            timeout: None,
            queued: false,
        }
    }

    /// Handles what quinn-proto has to say to the application: the
    /// handshake's end, new streams, readable and writable ones. Returns
    /// how many events there were.
    pub fn handle_events(&mut self, app: &App, now: Instant) -> usize {
        let mut events = 0;
        while let Some(event) = self.proto.poll() {
            events += 1;
            match event {
                Event::Connected => self.connected(app, now),
                Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => self.accept(app),
                Event::Stream(StreamEvent::Readable { id } | StreamEvent::Writable { id }) => {
                    self.serve(id, app);
                }
                Event::Stream(StreamEvent::Stopped { id, error_code }) => {
                    // The client will not read our answers: reset our side
                    // (quinn-proto keeps the stream, and its place under
                    // MAX_STREAMS, until we do) and stop reading its requests.
                    self.streams.remove(&id);
                    let _ = self.proto.send_stream(id).reset(error_code);
                    let _ = self.proto.recv_stream(id).stop(VarInt::from_u32(0));
                }
                Event::ConnectionLost { reason } => {
                    tracing::debug!(error = %reason, "QUIC connection ended");
                    self.streams.clear();
                }
                _ => {}
            }
        }
        events
    }

    /// rustls refuses a client offering other protocols, but accepts one
    /// offering none: insist, so nothing else is spoken to this port.
    fn connected(&mut self, app: &App, now: Instant) {
        let alpn = self
            .proto
            .crypto_session()
            .handshake_data()
            .and_then(|d| d.downcast::<HandshakeData>().ok())
            .and_then(|d| d.protocol);
        if alpn.as_deref() == Some(ALPN) {
            self.ready = true;
            self.accept(app);
        } else {
            self.proto.close(
                now,
                VarInt::from_u32(close::PROTOCOL),
                Bytes::from_static(b"ALPN nexus-resolve/1 required"),
            );
        }
    }

    /// Takes every stream the client opened and serves what it sent.
    fn accept(&mut self, app: &App) {
        if !self.ready {
            // Picked up by `connected`.
            return;
        }
        while let Some(id) = self.proto.streams().accept(Dir::Bi) {
            self.streams.insert(id, Stream::default());
            self.serve(id, app);
        }
    }

    fn serve(&mut self, id: StreamId, app: &App) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.serve(&mut self.proto, id, app, &mut self.credentials) == Progress::Done {
            self.streams.remove(&id);
        }
    }

    /// Closes the connection (shutdown); it drains on its own timers.
    pub fn close(&mut self, now: Instant, code: u32, reason: &'static [u8]) {
        self.proto.close(now, VarInt::from_u32(code), Bytes::from_static(reason));
    }
}
