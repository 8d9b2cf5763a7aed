//! What the store can fail with, as a leaf: `mod.rs` re-exports it and
//! calls into `migrate`, so `migrate` takes its error from here rather than
//! from its parent, and the two do not import each other.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// The cause an error carries when its type is not ours to name.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the store can fail with. Every variant with a cause keeps it as its
/// `source()`; the messages carry database text and are for logs only (the
/// API never puts them into a response body).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, is shutting down, or timed out;
    /// retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("database error: {0}")]
    Db(#[source] tokio_postgres::Error),
    #[error("migration {0} was changed after it was applied; restore its original text")]
    MigrationChanged(&'static str),
    #[error("migration {0} failed: {1}")]
    Migration(&'static str, #[source] tokio_postgres::Error),
    /// Stored data breaks an invariant, with no underlying error to keep.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// A stored value did not decode; `what` names the row and the field.
    #[error("stored data is not valid: {what}: {source}")]
    CorruptValue {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("invalid DATABASE_URL: {0}")]
    Url(#[source] crate::config::DbUrlError),
    #[error("DATABASE_URL: cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
}

impl StoreError {
    /// A stored value that did not decode, keeping why as the source.
    pub(crate) fn corrupt(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::CorruptValue { what: what.into(), source: source.into() }
    }

    /// The registry row is missing: the database was never migrated.
    pub(crate) fn registry_missing() -> Self {
        StoreError::Corrupt("registry row is missing; run nexus-control-plane migrate".into())
    }

    /// Whether retrying later may work (a 503 rather than a 500).
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
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
        if unavailable { StoreError::Unavailable(Box::new(e)) } else { StoreError::Db(e) }
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            // Timeouts, a closed pool: the pool's own error is the cause.
            other => StoreError::Unavailable(Box::new(other)),
        }
    }
}
