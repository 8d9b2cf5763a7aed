//! The slowloris guard: a connection must be answered within
//! [`REQUEST_DEADLINE`] of starting to wait for a request — from accept, and
//! again after every response it is sent. A client that trickles a request
//! head, sends nothing, or stops reading its answers is closed; an idle
//! keep-alive connection goes the same way.
//!
//! Why not hyper's `header_read_timeout`: it arms and cancels a timer on the
//! runtime's timer wheel for every request, which measured ~13 % of the
//! edge's throughput and gave it p99 tails of 3 ms under load (see the
//! README's reference runs). Here a response costs one relaxed store (no
//! clock read: the request path reads the clock once, in the resolve), and
//! each connection's watchdog wakes once per [`CHECK_EVERY`], reads the
//! clock and, if something was written since, restarts the wait there. A
//! wait thus starts up to one check late: a connection gets between
//! [`REQUEST_DEADLINE`] and that plus [`CHECK_EVERY`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a connection may wait for its next response.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How often a connection's watchdog looks at the clock.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// When a connection last started waiting for a request.
#[derive(Debug)]
pub struct Deadline {
    origin: Instant,
    /// Milliseconds since `origin`, as of the last check that saw a write.
    waiting_since_ms: AtomicU64,
    /// Something was written since the last check.
    wrote: AtomicBool,
}

impl Deadline {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            waiting_since_ms: AtomicU64::new(0),
            wrote: AtomicBool::new(false),
        })
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A response went out: the wait for the next request starts (as far
    /// as the next check can tell) now.
    fn touch(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// How long the connection has been waiting, as of the last write this
    /// call or an earlier one noticed.
    pub fn waited(&self) -> Duration {
        let now = self.elapsed_ms();
        if self.wrote.swap(false, Ordering::Relaxed) {
            self.waiting_since_ms.store(now, Ordering::Relaxed);
        }
        let since = self.waiting_since_ms.load(Ordering::Relaxed);
        Duration::from_millis(now.saturating_sub(since))
    }

    /// Resolves once the connection has waited longer than `limit`.
    pub async fn expired(&self, limit: Duration) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.waited() > limit {
                return;
            }
        }
    }
}

/// A stream that tells its [`Deadline`] whenever bytes are written.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    deadline: Arc<Deadline>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, deadline: Arc<Deadline>) -> Self {
        Self { inner, deadline }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.deadline.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.deadline.touch();
        }
        polled
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
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_response_restarts_the_wait() {
        let deadline = Deadline::new();
        let (a, _b) = tokio::io::duplex(64);
        let mut io = Watched::new(a, deadline.clone());
        std::thread::sleep(Duration::from_millis(30));
        assert!(deadline.waited() >= Duration::from_millis(30));
        io.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        assert!(deadline.waited() < Duration::from_millis(30));
    }
}
