//! The only place with SQL. Owns connections and transactions; every write
//! runs in one transaction that locks the registry row first, takes the next
//! version(s), writes the change to the outbox (`changes`) and appends its
//! audit row — so commit order is version order, and there is no write
//! without audit.
//!
//! The pool and the actor live here; the rest, one concept a module:
//!
//! - `ledger`: the one write path: registry lock, versions, outbox, audit.
//! - `alias_rows`: alias columns, row decoding and the lookups every alias
//!   plan starts from.
//! - `aliases`, `import`, `apply`, `conflicts`, `governance`, `keys`,
//!   `epoch`: the writes, each reading what its plan needs and handing the
//!   plan to the ledger.
//! - `audit`: the audit log: listing, chain verification, retention.
//! - `changes`: what the publisher reads: head, outbox, snapshot.
//! - `history`: the past of an alias, from the outbox.
//! - `export`: the active aliases as declarative entries.
//! - `service`, `console`: the reads behind resolve, metrics and status, and
//!   the admin console's counts and search.
//! - `consistent`: read-only REPEATABLE READ transactions and chunked reads.
//! - `decode`: `decode!`, a row into a struct by column name.
//! - `error`: `StoreError`, what every module here fails with.
//! - `migrate`: embedded migrations.
//! - `leader`: the publisher's lease: an advisory lock and LISTEN on a
//!   dedicated connection.
//! - `tls`: the rustls connector every connection goes through.

pub(crate) mod alias_rows;
pub(crate) mod aliases;
pub(crate) mod apply;
pub(crate) mod audit;
pub(crate) mod changes;
pub(crate) mod conflicts;
mod consistent;
pub(crate) mod console;
mod decode;
mod epoch;
mod error;
pub(crate) mod export;
pub(crate) mod governance;
pub(crate) mod history;
pub(crate) mod import;
pub(crate) mod keys;
pub mod leader;
pub(crate) mod ledger;
pub mod migrate;
pub(crate) mod service;
mod tls;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::config::DbConfig;

pub use error::{BoxError, StoreError};
pub use migrate::SchemaState;

/// Who does a write, and on behalf of which request: what the audit row
/// records.
#[derive(Debug, Clone)]
pub struct Actor {
    pub(crate) name: String,
    pub(crate) request_id: Option<String>,
    /// The owner of the rows this write creates when not `name` (a token's
    /// team, `team:<team>`); `None`: the creator, as migration 0006's
    /// trigger sets it.
    pub(crate) owner: Option<String>,
}

impl Actor {
    pub fn system(what: &str) -> Self {
        Self { name: format!("system:{what}"), request_id: None, owner: None }
    }

    /// The owner a row this write creates gets.
    pub(crate) fn owner_of_new(&self) -> &str {
        self.owner.as_deref().unwrap_or(&self.name)
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
        let connection = db.connection().map_err(StoreError::Url)?;
        let mut pg = connection.pg;
        // Bounds on a hung statement or a lock queue; generous enough for a
        // 100k-alias import.
        pg.options("-c statement_timeout=120000 -c lock_timeout=30000");
        let manager = Manager::from_config(
            pg,
            tls::PgTls::new(&connection.tls).map_err(StoreError::Tls)?,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(db.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(db.timeout))
            .create_timeout(Some(db.timeout))
            .recycle_timeout(Some(db.timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
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
