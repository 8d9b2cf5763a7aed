//! Leader election: one publisher per registry, chosen by a PostgreSQL
//! session advisory lock held on a dedicated connection (not the pool, whose
//! connections come and go). When the leader's process or connection dies,
//! PostgreSQL releases the lock and the next instance to try takes over.
//!
//! The same connection LISTENs on `nexus_changes`, so the leader wakes the
//! moment a change commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The NOTIFY channel the `changes` trigger signals (migration 0003).
pub const CHANNEL: &str = "nexus_changes";
/// How often a leader checks that its connection (and so its lock) is
/// still there.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a ping or a lock attempt may take before the connection is
/// considered dead.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("election connection to PostgreSQL failed: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("election query failed: {0}")]
    Query(#[source] tokio_postgres::Error),
    #[error("election connection timed out")]
    Timeout,
}

/// The advisory lock key for a Redis prefix: registries published under
/// different prefixes elect their leaders independently.
pub fn lock_key(prefix: &str) -> i64 {
    let digest = Sha256::digest(format!("nexus-publisher:{prefix}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

struct Session {
    client: Client,
    task: JoinHandle<()>,
    leader: bool,
    last_ping: Instant,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping the client already ends the connection; aborting the
        // task makes sure the lock goes with it even if the server is slow
        // to notice.
        self.task.abort();
    }
}

/// One instance's candidacy.
pub struct Election {
    pg: tokio_postgres::Config,
    key: i64,
    wake: Arc<Notify>,
    session: Option<Session>,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("key", &self.key)
            .field("connected", &self.session.is_some())
            .field("leader", &self.is_leader())
            .finish_non_exhaustive()
    }
}

impl Election {
    pub fn new(pg: tokio_postgres::Config, prefix: &str) -> Self {
        Self { pg, key: lock_key(prefix), wake: Arc::new(Notify::new()), session: None }
    }

    /// Notified on every commit to the outbox (while connected).
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Whether this instance held the lock at the last [`Self::campaign`].
    pub fn is_leader(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.leader && !s.client.is_closed())
    }

    /// Gives up the lock (by closing the connection).
    pub fn resign(&mut self) {
        self.session = None;
    }

    /// Connects if needed, confirms a held lock or tries to take it.
    /// Returns whether this instance is the leader now. Any failure drops
    /// the connection, so a leader that cannot prove it still holds the
    /// lock stops publishing.
    pub async fn campaign(&mut self) -> Result<bool, ElectionError> {
        let result = self.try_campaign().await;
        if result.is_err() {
            self.session = None;
        }
        result
    }

    async fn try_campaign(&mut self) -> Result<bool, ElectionError> {
        if self.session.as_ref().is_none_or(|s| s.client.is_closed()) {
            self.session = None;
            self.session = Some(self.connect().await?);
        }
        let Some(s) = self.session.as_mut() else { return Ok(false) };
        if s.leader {
            if s.last_ping.elapsed() >= PING_EVERY {
                bounded(s.client.simple_query("SELECT 1")).await?.map_err(ElectionError::Query)?;
                s.last_ping = Instant::now();
            }
            return Ok(true);
        }
        let row = bounded(s.client.query_one("SELECT pg_try_advisory_lock($1)", &[&self.key]))
            .await?
            .map_err(ElectionError::Query)?;
        s.leader = row.try_get(0).map_err(ElectionError::Query)?;
        s.last_ping = Instant::now();
        Ok(s.leader)
    }

    async fn connect(&self) -> Result<Session, ElectionError> {
        let (client, mut connection) =
            bounded(self.pg.connect(NoTls)).await?.map_err(ElectionError::Connect)?;
        let wake = self.wake.clone();
        let task = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "publisher election connection failed");
                        break;
                    }
                    None => break,
                }
            }
            // Wake the loop so it notices the loss at once.
            wake.notify_one();
        });
        let session = Session { client, task, leader: false, last_ping: Instant::now() };
        bounded(session.client.batch_execute(&format!("LISTEN {CHANNEL}")))
            .await?
            .map_err(ElectionError::Query)?;
        Ok(session)
    }
}

async fn bounded<T>(f: impl Future<Output = T>) -> Result<T, ElectionError> {
    tokio::time::timeout(PING_TIMEOUT, f).await.map_err(|_| ElectionError::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_prefix_and_are_stable() {
        assert_eq!(lock_key("nexus"), lock_key("nexus"));
        assert_ne!(lock_key("nexus"), lock_key("nexus-test-1"));
    }
}
