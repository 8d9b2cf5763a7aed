//! What the driver needs from a protocol, and nothing more: open a
//! connection, then send resolves on it, one at a time or (where the
//! protocol pipelines) a batch at once, and keep it tended between them.
//! HTTP/1.1 and HTTP/2 live in [`crate::http`] and use the defaults for the
//! last two; QUIC ([`crate::quic`]) overrides them, and both reuse the
//! driver, recorder and report unchanged.

use std::future::Future;

use tokio::time::Instant;

use crate::recorder::Failure;

/// Opens connections to the server under test. Shared by all tasks.
pub trait Connector: Send + Sync + 'static {
    type Conn: Connection;

    /// A fresh connection (TCP/TLS/QUIC handshake included).
    fn connect(&self) -> impl Future<Output = Result<Self::Conn, Failure>> + Send;

    /// Short name for reports (`http1`, `h2c`, `h2`, `quic`, ...).
    fn name(&self) -> &'static str;
}

/// One open connection, owned by one task.
pub trait Connection: Send + 'static {
    /// Resolves key `index` of the key space and waits for the whole answer.
    /// `Ok` means a 2xx/3xx answer fully read.
    fn resolve(&mut self, index: usize) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Resolves every key of `keys` pipelined where the transport can
    /// (all requests out before the first answer is awaited), calling
    /// `answered` once per key, in order, as each outcome is known. A key
    /// whose answer never came gets the failure that ended the batch. The
    /// default sends them one after another; QUIC overrides it.
    fn resolve_pipelined(
        &mut self,
        keys: &[usize],
        answered: impl FnMut(Result<(), Failure>) + Send,
    ) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        one_by_one(self, keys, answered)
    }

    /// Waits until `until` between requests (open model). A transport
    /// whose connection needs tending meanwhile (QUIC: ACKs and timers) does
    /// it here. Returns whether the connection is still usable.
    fn idle_until(&mut self, until: Instant) -> impl Future<Output = bool> + Send {
        async move {
            tokio::time::sleep_until(until).await;
            true
        }
    }
}

/// [`Connection::resolve_pipelined`] for a transport that cannot pipeline:
/// one request after another; after a failure that breaks the connection
/// the rest get that failure without being sent.
async fn one_by_one<C: Connection>(
    conn: &mut C,
    keys: &[usize],
    mut answered: impl FnMut(Result<(), Failure>) + Send,
) {
    let mut broken = None;
    for &key in keys {
        let result = match broken {
            Some(failure) => Err(failure),
            None => conn.resolve(key).await,
        };
        if let Err(failure) = result
            && failure.breaks_connection()
        {
            broken = Some(failure);
        }
        answered(result);
    }
}

impl Failure {
    /// Whether the connection is unusable afterwards and must be reopened.
    /// A status is an answer: the connection stays good.
    pub fn breaks_connection(self) -> bool {
        !matches!(self, Failure::Status(_))
    }
}
