//! Waiting on a condition with a deadline, never a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How long [`wait_until`] waits.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `cond` every 10 ms until it holds; fails the test after [`WAIT`].
pub async fn wait_until<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until_within(what, WAIT, cond).await;
}

/// Polls `cond` every 10 ms until it holds; fails the test after `within`.
pub async fn wait_until_within<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Resolves once `rx` turns true: the stop signal the rigs hand servers.
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
