//! Waiting on a condition with a deadline (never a fixed sleep), and a
//! Redis command client that survives the servers these tests kill.

use std::time::{Duration, Instant};

use fred::prelude::*;

/// Polls `cond` every 50 ms until it holds; fails the test after `within`.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client that reconnects and never waits long: a sentinel promoting a
/// replica kills that replica's client connections.
pub async fn client(url: &str) -> Client {
    let c = Builder::from_config(fred::prelude::Config::from_url(url).unwrap())
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
        .set_policy(ReconnectPolicy::new_constant(0, 100))
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), c.init()).await.unwrap().unwrap();
    c
}
