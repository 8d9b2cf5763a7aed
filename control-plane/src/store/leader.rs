//! The SQL behind the publisher's leader election: a PostgreSQL session
//! advisory lock, held on a dedicated connection (not the pool, whose
//! connections come and go), and a LISTEN on the outbox channel on that same
//! connection. When the connection dies, PostgreSQL releases the lock.
//!
//! What to do with the lock — when to try, how long a ping may take, when a
//! leader stops trusting it — is `publisher::election`'s business; this
//! module only opens the connection and asks.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client};

use super::StoreError;
use super::tls::PgTls;
use crate::config::DbConfig;

/// The NOTIFY channel the `changes` trigger signals (migration 0003).
pub(crate) const CHANNEL: &str = "nexus_changes";

/// Where leader connections go.
#[derive(Debug, Clone)]
pub struct LeaderDb {
    pg: tokio_postgres::Config,
    tls: PgTls,
}

impl LeaderDb {
    pub fn new(db: &DbConfig) -> Result<Self, StoreError> {
        let connection = db.connection().map_err(StoreError::Url)?;
        let tls = PgTls::new(&connection.tls).map_err(StoreError::Tls)?;
        Ok(Self { pg: connection.pg, tls })
    }

    /// Connects and LISTENs. `wake` is notified on every commit to the
    /// outbox, and once more when the connection ends, so the caller
    /// notices the loss at once.
    pub async fn connect(&self, wake: Arc<Notify>) -> Result<LeaderConnection, StoreError> {
        let (client, mut connection) = self.pg.connect(self.tls.clone()).await?;
        let task = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %crate::report::Chain(&e), "leader connection failed");
                        break;
                    }
                    None => break,
                }
            }
            wake.notify_one();
        });
        let conn = LeaderConnection { client, task };
        conn.client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(conn)
    }
}

/// One open leader connection; dropping it gives up the lock.
pub struct LeaderConnection {
    client: Client,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for LeaderConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderConnection").field("closed", &self.is_closed()).finish()
    }
}

impl Drop for LeaderConnection {
    fn drop(&mut self) {
        // Dropping the client already ends the connection; aborting the
        // task makes sure the lock goes with it even if the server is slow
        // to notice.
        self.task.abort();
    }
}

impl LeaderConnection {
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Tries for the session lock `key`; true when this connection holds
    /// it (also when it held it already).
    pub(crate) async fn try_lock(&self, key: i64) -> Result<bool, StoreError> {
        let row = self.client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).await?;
        Ok(row.try_get(0)?)
    }

    /// The next leader term (migration 0009), drawn once the lock is held:
    /// later than every term drawn before, by any instance.
    pub(crate) async fn next_term(&self) -> Result<u64, StoreError> {
        let row = self.client.query_one("SELECT nextval('leader_term')", &[]).await?;
        let term: i64 = row.try_get(0)?;
        Ok(u64::try_from(term).unwrap_or(0))
    }

    /// A round trip: proves the connection, and so a held lock, is there.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.client.simple_query("SELECT 1").await?;
        Ok(())
    }
}
