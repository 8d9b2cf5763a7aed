//! The only place with SQL. Owns connections and transactions; every write
//! runs in one transaction that locks the registry row first, takes the next
//! version(s), writes the change to the outbox (`changes`) and appends its
//! audit row — so commit order is version order, and there is no write
//! without audit.
//!
//! - [`migrate`]: embedded migrations.
//! - [`registry`]: the registry lock and the audit append under it.
//! - [`aliases`], [`import`], [`conflicts`], [`audit`], [`keys`],
//!   [`governance`], [`service`]: one table or concern each.

pub mod aliases;
pub mod audit;
pub mod changes;
pub mod conflicts;
pub mod governance;
pub mod import;
pub mod keys;
pub mod migrate;
pub mod registry;
pub mod service;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::config::DbConfig;

pub use migrate::SchemaState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is shutting down; retrying later
    /// may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Db(#[source] tokio_postgres::Error),
    #[error("migration {0} was changed after it was applied; restore its original text")]
    MigrationChanged(&'static str),
    #[error("migration {0} failed: {1}")]
    Migration(&'static str, #[source] tokio_postgres::Error),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("invalid DATABASE_URL: {0}")]
    Url(#[source] tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let unavailable = e.is_closed()
            || match e.code() {
                None => io,
                Some(c) => {
                    let code = c.code();
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || *c == SqlState::TOO_MANY_CONNECTIONS
                        || *c == SqlState::QUERY_CANCELED
                        || *c == SqlState::LOCK_NOT_AVAILABLE
                }
            };
        if unavailable { StoreError::Unavailable(e.to_string()) } else { StoreError::Db(e) }
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// Who does a write, and on behalf of which request: what the audit row
/// records.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn system(what: &str) -> Self {
        Self { name: format!("system:{what}"), request_id: None }
    }
}

/// The PostgreSQL store: a pool with timeouts, so a database that is down
/// costs a request at most the timeout, and the pool reconnects by itself
/// when it returns.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Builds the pool; connects lazily, so this works with the database down.
    pub fn new(db: &DbConfig) -> Result<Self, StoreError> {
        let mut pg: tokio_postgres::Config = db.url.expose().parse().map_err(StoreError::Url)?;
        pg.connect_timeout(db.timeout);
        // Bounds on a hung statement or a lock queue; generous enough for a
        // 100k-alias import.
        pg.options("-c statement_timeout=120000 -c lock_timeout=30000");
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(db.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(db.timeout))
            .create_timeout(Some(db.timeout))
            .recycle_timeout(Some(db.timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self { pool })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        Ok(self.pool.get().await?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    pub async fn migrate(&self) -> Result<Vec<&'static str>, StoreError> {
        let mut client = self.client().await?;
        migrate::apply(&mut client).await
    }

    pub async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let client = self.client().await?;
        migrate::state(&client).await
    }
}
