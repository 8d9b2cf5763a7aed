//! Schema migrations: the SQL files of `migrations/`, embedded in the
//! binary, applied in order, each recorded in `schema_migrations` with the
//! SHA-256 of its text. Applying twice is a no-op; a recorded migration whose
//! text changed is an error rather than a silent drift.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::error::StoreError;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub(crate) fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// `migrations![1 "0001_name", ...]`: each version with the name of its
/// file in `migrations/`, its text embedded from that file.
macro_rules! migrations {
    ($($version:literal $name:literal),+ $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../../migrations/", $name, ".sql")),
        }),+]
    };
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = migrations![
    1 "0001_seed_tables",
    2 "0002_registry",
    3 "0003_changes_notify",
    4 "0004_changes_contexts",
    5 "0005_changes_key",
    6 "0006_ownership",
    7 "0007_console",
    8 "0008_credentials",
    9 "0009_leader_term",
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
pub(crate) async fn apply(client: &mut Client) -> Result<Vec<&'static str>, StoreError> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(CREATE_TABLE).await?;
    let applied = recorded(&tx).await?;
    let mut done = Vec::new();
    for m in MIGRATIONS {
        if is_applied(&applied, m)? {
            continue;
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
pub(crate) async fn state(client: &Client) -> Result<SchemaState, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    let applied = if exists { recorded(client).await? } else { Vec::new() };
    let mut missing = Vec::new();
    for m in MIGRATIONS {
        if !is_applied(&applied, m)? {
            missing.push(m.name);
        }
    }
    Ok(if missing.is_empty() { SchemaState::Current } else { SchemaState::Behind { missing } })
}

/// Whether `m` is among the `applied` (version, checksum) pairs; an error
/// when it is there with another text.
fn is_applied(applied: &[(i32, String)], m: &Migration) -> Result<bool, StoreError> {
    match applied.iter().find(|(v, _)| *v == m.version) {
        Some((_, sum)) if *sum == m.checksum() => Ok(true),
        Some(_) => Err(StoreError::MigrationChanged(m.name)),
        None => Ok(false),
    }
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
