//! Redis for the rigs: the server is `nexus-local`'s
//! (`NEXUS_TEST_REDIS_URL`, else 127.0.0.1:6379, else a private
//! `redis-server` for the test binary); every test takes a fresh key
//! prefix, so tests share one server and run in parallel.

use std::time::Duration;

use fred::prelude::*;
use nexus_protocol::keys::RedisKeys;
use rand::RngCore;
use tokio::sync::broadcast;

/// How long any single wait for Redis may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// NEXUS_TEST_REDIS_URL, else 127.0.0.1:6379, else a private redis-server
/// for this test binary (nexus-local).
pub fn redis_url() -> String {
    nexus_local::test::redis_url()
}

/// A command client; fails the test with how to start Redis if it is down.
pub async fn connect() -> Client {
    let url = redis_url();
    let client = Builder::from_config(Config::from_url(&url).unwrap()).build().unwrap();
    let connected = tokio::time::timeout(Duration::from_secs(3), client.init()).await;
    if !matches!(connected, Ok(Ok(_))) {
        panic!(
            "Redis is unreachable at {url} ({connected:?}); unset NEXUS_TEST_REDIS_URL to let \
             the tests start a private server, or point it at a running one."
        );
    }
    client
}

/// A client that reconnects and never waits long: a sentinel promoting a
/// replica kills that replica's client connections.
pub async fn redis_client(url: &str) -> Client {
    let c = Builder::from_config(fred::prelude::Config::from_url(url).unwrap())
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
        .set_policy(ReconnectPolicy::new_constant(0, 100))
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), c.init()).await.unwrap().unwrap();
    c
}

/// Keys under a fresh prefix that begins with `tag`, so keys left behind
/// name their test.
pub fn fresh_keys(tag: &str) -> RedisKeys {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    RedisKeys::new(&format!("{tag}-{}", hex::encode(b)))
}

/// A port nothing listens on (bound, then released).
pub fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("redis://127.0.0.1:{port}")
}

/// A subscriber to the registry's channel.
#[derive(Debug)]
pub struct Channel {
    _client: Client,
    rx: broadcast::Receiver<fred::types::Message>,
}

impl Channel {
    pub async fn subscribe(keys: &RedisKeys) -> Self {
        let client = connect().await;
        let rx = client.message_rx();
        client.subscribe(keys.channel()).await.unwrap();
        Self { _client: client, rx }
    }

    pub async fn next(&mut self) -> Vec<u8> {
        let msg = tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("a message on the channel within 10 s")
            .expect("the subscriber keeps up");
        msg.value.as_bytes().unwrap().to_vec()
    }

    pub async fn take(&mut self, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// A message already received, if any.
    pub fn try_next(&mut self) -> Option<Vec<u8>> {
        self.rx.try_recv().ok().map(|m| m.value.as_bytes().unwrap().to_vec())
    }
}
