//! The ledger: the one write primitive every mutation goes through.
//!
//! [`Ledger::open`] begins a transaction and locks the registry row, so
//! writers queue there and commit order is version order. The caller reads
//! what its plan needs through [`Ledger::tx`] and writes the rows of tables
//! that carry no version (conflicts, keys, governance, retention) there too;
//! then it stages the plan: alias rows ([`Ledger::create`],
//! [`Ledger::change`], [`Ledger::bulk`]), each taking the next version, and
//! audit rows ([`Ledger::note`]), each chained to the one before.
//! [`Ledger::commit`] writes all of it with one statement ([`COMMIT`]): the
//! alias rows, their outbox rows rendered from the rows as stored
//! (`alias_record()`, migration 0002: the only rendering of the record), the
//! audit rows, and the registry's new version and chain head. A ledger
//! dropped without `commit` rolls everything back.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use nexus_protocol::{AliasEntry, CredentialChange, KnownContexts};
use serde_json::Value;

use super::{Actor, StoreError};
use crate::audit::chain::Content;
use crate::domain::alias::{AliasWrite, StoredAlias};

/// The whole write, as one statement shape for every mutation. Alias rows
/// are upserted by id: a new row comes with a reserved id or takes the next
/// one from the sequence, and the actor's owner (`$25`: its team's name, or
/// NULL for migration 0006's trigger to make it the creator); a changed row
/// keeps its id, key, creation time, creator and owner. The unique index on active `(context, alias)` stays the last
/// line of defence: a plan that would break it fails the statement.
const COMMIT: &str = r#"
WITH w AS (
    INSERT INTO aliases AS x (id, context, alias, canonical, description, expires_at, is_active,
                              created_at, updated_at, created_by, updated_by, version, owner)
    SELECT COALESCE(t.id, nextval(pg_get_serial_sequence('aliases', 'id'))::INT),
           t.c, t.a, t.k, t.d, t.e, t.act, $9, $9, $10, $10, t.v, $25::TEXT
    FROM UNNEST($1::INT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TIMESTAMPTZ[],
                $7::BOOL[], $8::BIGINT[]) WITH ORDINALITY AS t(id, c, a, k, d, e, act, v, n)
    ORDER BY t.n
    ON CONFLICT (id) DO UPDATE SET canonical = EXCLUDED.canonical,
        description = EXCLUDED.description, expires_at = EXCLUDED.expires_at,
        is_active = EXCLUDED.is_active, updated_at = EXCLUDED.updated_at,
        updated_by = EXCLUDED.updated_by, version = EXCLUDED.version
    RETURNING x),
ch AS (
    INSERT INTO changes (version, epoch, committed_at, op, context, alias, record)
    SELECT (w.x).version, $11::BIGINT, $9::TIMESTAMPTZ, 'upsert', (w.x).context, (w.x).alias,
           alias_record(w.x)
    FROM w
    UNION ALL
    SELECT t.v, $11::BIGINT, $9::TIMESTAMPTZ, t.o, '', '', t.r
    FROM UNNEST($22::BIGINT[], $23::JSONB[], $24::TEXT[]) AS t(v, r, o)),
au AS (
    INSERT INTO audit_logs (action, "user", target, details, before_state, after_state,
                            request_id, created_at, prev_hash, row_hash)
    SELECT t.act, $10, t.tg, t.dt, t.b, t.af, $12, $9, t.ph, t.rh
    FROM UNNEST($13::TEXT[], $14::TEXT[], $15::TEXT[], $16::JSONB[], $17::JSONB[],
                $18::BYTEA[], $19::BYTEA[]) WITH ORDINALITY AS t(act, tg, dt, b, af, ph, rh, n)
    ORDER BY t.n
    RETURNING id)
UPDATE registry SET version = COALESCE($20::BIGINT, version),
    updated_at = CASE WHEN $20::BIGINT IS NULL THEN updated_at ELSE $9 END,
    audit_head_id = (SELECT max(id) FROM au), audit_head_hash = $21
WHERE id = 1"#;

/// What one audit row records.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditEntry {
    pub action: &'static str,
    pub target: Option<String>,
    pub details: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The registry versions a committed write took: `from` exclusive, `to`
/// inclusive (equal when it wrote no outbox row: no alias, no change of
/// the configured contexts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    pub from: i64,
    pub to: i64,
}

/// Staged alias rows, column by column, as [`COMMIT`] binds them.
#[derive(Debug, Default)]
struct Rows {
    ids: Vec<Option<i32>>,
    contexts: Vec<String>,
    aliases: Vec<String>,
    canonicals: Vec<String>,
    descriptions: Vec<Option<String>>,
    expires: Vec<Option<DateTime<Utc>>>,
    actives: Vec<bool>,
    versions: Vec<i64>,
}

/// Staged audit rows, chained.
#[derive(Debug, Default)]
struct Audit {
    actions: Vec<&'static str>,
    targets: Vec<Option<String>>,
    details: Vec<Option<String>>,
    before: Vec<Option<Value>>,
    after: Vec<Option<Value>>,
    prev: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

/// A write transaction holding the registry lock.
pub(crate) struct Ledger<'c> {
    tx: Transaction<'c>,
    actor: Actor,
    epoch: i64,
    /// The version the lock found; staged rows take the ones after it.
    base: i64,
    version: i64,
    head_hash: Vec<u8>,
    /// One clock reading for the whole write: row times, outbox and audit
    /// agree, to the millisecond the chain hashes.
    now: DateTime<Utc>,
    reserved: Vec<i32>,
    rows: Rows,
    /// Staged outbox rows that are not alias rows (`op = 'contexts'` or
    /// `'credentials'`): (version, the record as JSON, op).
    contexts: (Vec<i64>, Vec<Value>, Vec<&'static str>),
    audit: Audit,
}

impl<'c> Ledger<'c> {
    /// Begins the write: locks the registry row until commit or drop, and
    /// reserves `ids` alias ids for rows whose audit names their id (one
    /// round trip either way).
    pub(crate) async fn open(
        client: &'c mut deadpool_postgres::Client,
        actor: &Actor,
        ids: i32,
    ) -> Result<Self, StoreError> {
        let tx = client.transaction().await?;
        let st = tx
            .prepare_cached(
                "SELECT epoch, version, audit_head_hash, \
                        ARRAY(SELECT nextval(pg_get_serial_sequence('aliases', 'id'))::INT \
                              FROM generate_series(1, $1)) \
                 FROM registry WHERE id = 1 FOR UPDATE",
            )
            .await?;
        let row = tx.query_opt(&st, &[&ids]).await?.ok_or_else(StoreError::registry_missing)?;
        let version: i64 = row.get(1);
        Ok(Self {
            tx,
            actor: actor.clone(),
            epoch: row.get(0),
            base: version,
            version,
            head_hash: row.get(2),
            now: now_ms(),
            reserved: row.get(3),
            rows: Rows::default(),
            contexts: (Vec::new(), Vec::new(), Vec::new()),
            audit: Audit::default(),
        })
    }

    /// The transaction, for the plan's reads and for the rows of tables
    /// that carry no version.
    pub(crate) fn tx(&self) -> &Transaction<'c> {
        &self.tx
    }

    /// The registry version the lock found.
    pub(crate) fn base(&self) -> i64 {
        self.base
    }

    /// The registry's epoch as the lock found it.
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch
    }

    /// An id reserved by [`Ledger::open`].
    fn reserved_id(&mut self) -> Result<i32, StoreError> {
        self.reserved
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a new alias without a reserved id".into()))
    }

    /// Stages one alias write with its audit row (`alias.create`,
    /// `alias.update` or `alias.deactivate`) and returns the row as it will
    /// be stored.
    pub(crate) fn stage(&mut self, write: &AliasWrite) -> Result<StoredAlias, StoreError> {
        match write {
            AliasWrite::Create(entry) => {
                let id = self.reserved_id()?;
                Ok(self.create(id, entry))
            }
            AliasWrite::Change { current, next } => Ok(self.change(current, next)),
        }
    }

    /// Stages a new alias with reserved id `id`, audited.
    fn create(&mut self, id: i32, e: &AliasEntry) -> StoredAlias {
        let version = self.push(Some(id), e);
        let row = StoredAlias {
            id,
            context: e.context.clone(),
            alias: e.alias.clone(),
            canonical: e.canonical.clone(),
            description: e.description.clone(),
            expires_at: e.expires_at,
            is_active: e.is_active,
            created_at: self.now,
            updated_at: self.now,
            created_by: Some(self.actor.name.clone()),
            version,
        };
        self.note(AuditEntry {
            action: "alias.create",
            target: Some(format!("{}/{}", row.context, row.alias)),
            after: Some(row.to_json()),
            ..Default::default()
        });
        row
    }

    /// Stages `next` over `current` (same id and key), audited.
    fn change(&mut self, current: &StoredAlias, next: &StoredAlias) -> StoredAlias {
        let version = self.push(Some(current.id), &next.entry());
        let row = StoredAlias { version, updated_at: self.now, ..next.clone() };
        self.note(AuditEntry {
            action: if row.is_active { "alias.update" } else { "alias.deactivate" },
            target: Some(format!("{}/{}", row.context, row.alias)),
            before: Some(current.to_json()),
            after: Some(row.to_json()),
            ..Default::default()
        });
        row
    }

    /// Stages bulk rows without an audit row each: `creates` as new rows,
    /// `replaces` over the rows of the given ids. The caller notes one audit
    /// row that sums them up.
    pub(crate) fn bulk<'e>(
        &mut self,
        creates: impl IntoIterator<Item = &'e AliasEntry>,
        replaces: impl IntoIterator<Item = (i32, &'e AliasEntry)>,
    ) {
        for e in creates {
            self.push(None, e);
        }
        for (id, e) in replaces {
            self.push(Some(id), e);
        }
    }

    fn push(&mut self, id: Option<i32>, e: &AliasEntry) -> i64 {
        self.version += 1;
        let r = &mut self.rows;
        r.ids.push(id);
        r.contexts.push(e.context.to_string());
        r.aliases.push(e.alias.to_string());
        r.canonicals.push(e.canonical.to_string());
        r.descriptions.push(e.description.clone());
        r.expires.push(e.expires_at);
        r.actives.push(e.is_active);
        r.versions.push(self.version);
        self.version
    }

    /// Stages a change of the configured contexts: it takes the next
    /// version like an alias write, so edges receive the new set in version
    /// order, between the alias changes committed before and after it.
    pub(crate) fn contexts(&mut self, known: &KnownContexts) -> Result<i64, StoreError> {
        let json = serde_json::to_value(known).map_err(|e| StoreError::corrupt("contexts", e))?;
        Ok(self.outbox("contexts", json))
    }

    /// Stages a change of the credential set (a revocation, a key granted
    /// or revoked): the next version, like any change, so it reaches every
    /// edge in the same delta/snapshot stream as aliases (`op =
    /// 'credentials'`, migration 0008).
    pub(crate) fn credentials(&mut self, change: &CredentialChange) -> Result<i64, StoreError> {
        let json =
            serde_json::to_value(change).map_err(|e| StoreError::corrupt("credentials", e))?;
        Ok(self.outbox("credentials", json))
    }

    fn outbox(&mut self, op: &'static str, record: Value) -> i64 {
        self.version += 1;
        self.contexts.0.push(self.version);
        self.contexts.1.push(record);
        self.contexts.2.push(op);
        self.version
    }

    /// Stages an audit row, chained to the one before.
    pub(crate) fn note(&mut self, entry: AuditEntry) {
        let hash = audit_hash(&self.head_hash, &self.actor, &entry, self.now);
        let a = &mut self.audit;
        a.actions.push(entry.action);
        a.targets.push(entry.target);
        a.details.push(entry.details);
        a.before.push(entry.before);
        a.after.push(entry.after);
        a.prev.push(std::mem::replace(&mut self.head_hash, hash.clone()));
        a.hashes.push(hash);
    }

    /// Writes everything staged and commits. No write without audit: a
    /// ledger with no audit row staged rolls back whatever was done in its
    /// transaction.
    pub(crate) async fn commit(self) -> Result<Committed, StoreError> {
        let done = Committed { from: self.base, to: self.version };
        if self.audit.actions.is_empty() {
            debug_assert!(
                self.rows.ids.is_empty() && self.contexts.0.is_empty(),
                "outbox rows staged without an audit row"
            );
            return Ok(Committed { from: self.base, to: self.base });
        }
        let top = (self.version > self.base).then_some(self.version);
        let (r, a) = (&self.rows, &self.audit);
        let st = self.tx.prepare_cached(COMMIT).await?;
        self.tx
            .execute(
                &st,
                &[
                    &r.ids,
                    &r.contexts,
                    &r.aliases,
                    &r.canonicals,
                    &r.descriptions,
                    &r.expires,
                    &r.actives,
                    &r.versions,
                    &self.now,
                    &self.actor.name,
                    &self.epoch,
                    &self.actor.request_id,
                    &a.actions,
                    &a.targets,
                    &a.details,
                    &a.before,
                    &a.after,
                    &a.prev,
                    &a.hashes,
                    &top,
                    &self.head_hash,
                    &self.contexts.0,
                    &self.contexts.1,
                    &self.contexts.2,
                    &self.actor.owner,
                ],
            )
            .await?;
        self.tx.commit().await?;
        Ok(done)
    }
}

/// Now, truncated to the millisecond the chain hashes.
fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// The chain hash of an audit row appended after `prev`.
fn audit_hash(
    prev: &[u8],
    actor: &Actor,
    entry: &AuditEntry,
    created_at: DateTime<Utc>,
) -> Vec<u8> {
    let content = Content {
        action: entry.action,
        user: &actor.name,
        target: entry.target.as_deref(),
        details: entry.details.as_deref(),
        before: entry.before.as_ref(),
        after: entry.after.as_ref(),
        request_id: actor.request_id.as_deref(),
        created_at_ms: created_at.timestamp_millis(),
    };
    content.hash(prev).to_vec()
}
