//! Leader election: one publisher per registry, the holder of a PostgreSQL
//! session advisory lock (`store::leader` holds the SQL). When the leader's
//! process or connection dies, PostgreSQL releases the lock and the next
//! instance to try takes over.
//!
//! The same connection LISTENs on the outbox channel, so the leader wakes
//! the moment a change commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::store::StoreError;
use crate::store::leader::{LeaderConnection, LeaderDb};

/// How often a leader checks that its connection (and so its lock) is
/// still there.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a ping or a lock attempt may take before the connection is
/// considered dead.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("election connection to PostgreSQL failed: {0}")]
    Connect(#[source] StoreError),
    #[error("election query failed: {0}")]
    Query(#[source] StoreError),
    #[error("election connection timed out")]
    Timeout,
}

/// The advisory lock key for a Redis prefix: registries published under
/// different prefixes elect their leaders independently.
pub(crate) fn lock_key(prefix: &str) -> i64 {
    let digest = Sha256::digest(format!("nexus-publisher:{prefix}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

struct Session {
    conn: LeaderConnection,
    leader: bool,
    /// The term drawn when this session took the lock; every Redis write
    /// of its leadership is fenced with it.
    term: u64,
    last_ping: Instant,
}

/// One instance's candidacy.
pub struct Election {
    db: LeaderDb,
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
    pub fn new(db: LeaderDb, prefix: &str) -> Self {
        Self { db, key: lock_key(prefix), wake: Arc::new(Notify::new()), session: None }
    }

    /// Notified on every commit to the outbox (while connected).
    pub(crate) fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Whether this instance held the lock at the last [`Self::campaign`].
    pub(crate) fn is_leader(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.leader && !s.conn.is_closed())
    }

    /// This leadership's term, while leader: what its Redis writes are
    /// fenced with, so a deposed leader's are refused once a later one wrote.
    pub fn term(&self) -> Option<u64> {
        self.session.as_ref().filter(|s| s.leader && !s.conn.is_closed()).map(|s| s.term)
    }

    /// Gives up the lock (by closing the connection).
    pub(crate) fn resign(&mut self) {
        self.session = None;
    }

    /// Connects if needed, confirms a held lock or tries to take it.
    /// Returns whether this instance is the leader now. Any failure drops
    /// the connection, so a leader that cannot prove it still holds the
    /// lock stops publishing.
    pub(crate) async fn campaign(&mut self) -> Result<bool, ElectionError> {
        let result = self.try_campaign().await;
        if result.is_err() {
            self.session = None;
        }
        result
    }

    async fn try_campaign(&mut self) -> Result<bool, ElectionError> {
        if self.session.as_ref().is_none_or(|s| s.conn.is_closed()) {
            self.session = None;
            let conn = bounded(self.db.connect(self.wake.clone()))
                .await?
                .map_err(ElectionError::Connect)?;
            self.session =
                Some(Session { conn, leader: false, term: 0, last_ping: Instant::now() });
        }
        let Some(s) = self.session.as_mut() else { return Ok(false) };
        if s.leader {
            if s.last_ping.elapsed() >= PING_EVERY {
                bounded(s.conn.ping()).await?.map_err(ElectionError::Query)?;
                s.last_ping = Instant::now();
            }
            return Ok(true);
        }
        s.leader = bounded(s.conn.try_lock(self.key)).await?.map_err(ElectionError::Query)?;
        if s.leader {
            // Drawn after the lock is held: later than the term of any
            // leader before this one.
            s.term = bounded(s.conn.next_term()).await?.map_err(ElectionError::Query)?;
        }
        s.last_ping = Instant::now();
        Ok(s.leader)
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
