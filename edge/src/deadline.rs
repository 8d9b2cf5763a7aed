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
//!
//! The same wrapper keeps one connection from hogging its worker: a
//! connection that reads more than [`READ_SHARE`] bytes in a row, with no
//! other connection of the thread reading in between, yields once. Tokio's
//! budget counts reads, not bytes, so without it a flood of tiny HTTP/2
//! frames (SETTINGS, PING, HEADERS + RST_STREAM) was parsed by the hundred
//! thousand per turn while each legitimate connection got one request per
//! turn (`loadtest/abuse.sh`: 1–2 % of the legitimate throughput left).

use std::cell::Cell;
use std::future::Future;
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

/// Bytes one connection may read in a row (no other connection of its
/// thread reading in between) before it yields its turn. A request head
/// is far smaller; a flood fills it in one or two reads.
pub const READ_SHARE: usize = 8 * 1024;

thread_local! {
    /// The connection (its deadline's address) that read last on this
    /// thread, and how many bytes it has read since another one did.
    static LAST_READER: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Counts `n` bytes read by connection `id`; true when it has had its
/// share and must yield before reading on.
fn over_share(id: usize, n: usize) -> bool {
    LAST_READER.with(|last| {
        let (who, read) = last.get();
        let read = if who == id { read + n } else { n };
        if read > READ_SHARE {
            last.set((id, 0));
            true
        } else {
            last.set((id, read));
            false
        }
    })
}

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
pub struct Watched<S> {
    inner: S,
    deadline: Arc<Deadline>,
    /// Set when a read used up the connection's share ([`READ_SHARE`]):
    /// the next read waits for it first. Boxed: made once per share, and
    /// only by a connection that reads that much.
    pause: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Watched<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("inner", &self.inner)
            .field("deadline", &self.deadline)
            .field("paused", &self.pause.is_some())
            .finish()
    }
}

impl<S> Watched<S> {
    pub fn new(inner: S, deadline: Arc<Deadline>) -> Self {
        Self { inner, deadline, pause: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Had its share: the others run first. `yield_now` (not a bare
        // self-wake) puts this connection behind the I/O driver's next
        // poll, which is what wakes the other connections.
        if let Some(pause) = self.pause.as_mut() {
            std::task::ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        let id = Arc::as_ptr(&self.deadline) as usize;
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && over_share(id, buf.filled().len() - before) {
            self.pause = Some(Box::pin(tokio::task::yield_now()));
        }
        polled
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

    /// Polls one read of `io` (the wake a yield asks for is not needed here).
    fn poll_once(io: &mut Watched<tokio::io::DuplexStream>, out: &mut [u8]) -> Poll<usize> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut buf = ReadBuf::new(out);
        match Pin::new(io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(r) => {
                r.unwrap();
                Poll::Ready(buf.filled().len())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    #[tokio::test]
    async fn a_reader_past_its_share_yields_once_and_others_reset_it() {
        let (mut peer, a) = tokio::io::duplex(4 * READ_SHARE);
        let (mut other_peer, b) = tokio::io::duplex(64);
        let (mut a, mut b) = (Watched::new(a, Deadline::new()), Watched::new(b, Deadline::new()));
        peer.write_all(&vec![0u8; 3 * READ_SHARE]).await.unwrap();
        other_peer.write_all(b"GET").await.unwrap();
        let mut out = vec![0u8; READ_SHARE / 2];
        let mut read = 0;
        // Ready reads until the share is used up, then one Pending.
        while let Poll::Ready(n) = poll_once(&mut a, &mut out) {
            read += n;
            assert!(read <= READ_SHARE + out.len(), "never yielded after {read} bytes");
        }
        assert!(read > READ_SHARE);
        assert!(matches!(poll_once(&mut a, &mut out), Poll::Ready(_)), "yields only once");
        // Another connection's read starts a's count over.
        assert!(matches!(poll_once(&mut b, &mut out), Poll::Ready(3)));
        assert!(matches!(poll_once(&mut a, &mut out), Poll::Ready(_)));
    }
}
