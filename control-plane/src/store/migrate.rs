//! Schema migrations: the SQL files of `migrations/`, embedded in the
//! binary, applied in order, each recorded in `schema_migrations` with the
//! SHA-256 of its text. Applying twice is a no-op; a recorded migration whose
//! text changed is an error rather than a silent drift.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::StoreError;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_seed_tables",
        sql: include_str!("../../../migrations/0001_seed_tables.sql"),
    },
    Migration {
        version: 2,
        name: "0002_registry",
        sql: include_str!("../../../migrations/0002_registry.sql"),
    },
    Migration {
        version: 3,
        name: "0003_changes_notify",
        sql: include_str!("../../../migrations/0003_changes_notify.sql"),
    },
    Migration {
        version: 4,
        name: "0004_changes_contexts",
        sql: include_str!("../../../migrations/0004_changes_contexts.sql"),
    },
    Migration {
        version: 5,
        name: "0005_changes_key",
        sql: include_str!("../../../migrations/0005_changes_key.sql"),
    },
    Migration {
        version: 6,
        name: "0006_ownership",
        sql: include_str!("../../../migrations/0006_ownership.sql"),
    },
    Migration {
        version: 7,
        name: "0007_console",
        sql: include_str!("../../../migrations/0007_console.sql"),
    },
    Migration {
        version: 8,
        name: "0008_credentials",
        sql: include_str!("../../../migrations/0008_credentials.sql"),
    },
];

/// Whatever lock id: concurrent `migrate` runs queue behind it.
const MIGRATION_LOCK: i64 = 0x6e65_7875_735f_6d67;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/// Where the schema stands relative to this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    /// Migrations this binary has and the database lacks.
    Behind {
        missing: Vec<&'static str>,
    },
}

/// Applies every missing migration, each in its own transaction, under an
/// advisory lock. Returns the names it applied.
pub async fn apply(client: &mut Client) -> Result<Vec<&'static str>, StoreError> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(CREATE_TABLE).await?;
    let applied = recorded(&tx).await?;
    let mut done = Vec::new();
    for m in MIGRATIONS {
        match applied.iter().find(|(v, _)| *v == m.version) {
            Some((_, sum)) if *sum == m.checksum() => continue,
            Some(_) => return Err(StoreError::MigrationChanged(m.name)),
            None => {}
        }
        tx.batch_execute(m.sql).await.map_err(|e| StoreError::Migration(m.name, e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &m.checksum()],
        )
        .await?;
        done.push(m.name);
    }
    tx.commit().await?;
    Ok(done)
}

/// Compares the database with the embedded migrations without changing it.
pub async fn state(client: &Client) -> Result<SchemaState, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    let applied = if exists { recorded(client).await? } else { Vec::new() };
    let mut missing = Vec::new();
    for m in MIGRATIONS {
        match applied.iter().find(|(v, _)| *v == m.version) {
            Some((_, sum)) if *sum == m.checksum() => {}
            Some(_) => return Err(StoreError::MigrationChanged(m.name)),
            None => missing.push(m.name),
        }
    }
    Ok(if missing.is_empty() { SchemaState::Current } else { SchemaState::Behind { missing } })
}

async fn recorded(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Vec<(i32, String)>, StoreError> {
    let rows = client.query("SELECT version, checksum FROM schema_migrations", &[]).await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_named_after_their_files() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            assert!(!m.sql.trim().is_empty());
        }
    }
}
