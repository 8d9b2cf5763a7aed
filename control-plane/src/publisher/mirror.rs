//! The registry exactly as the edges hold it: the records of the last
//! snapshot the publisher wrote plus every delta it published since.
//!
//! A persistent ordered map, so the periodic rebuild takes an O(1) clone at
//! the published head and encodes it on a blocking thread while the delta
//! loop goes on applying batches to its own copy: no PostgreSQL read and no
//! sort (the map's order, `(context, alias)` bytes, is the snapshot's).

use imbl::OrdMap;
use nexus_protocol::{AliasKey, AliasRecord, Credentials, Head, KnownContexts};

use crate::store::changes::{ChangeOp, ChangeRow};

/// Why a batch could not be applied; the mirror is then of no use until the
/// next snapshot from PostgreSQL resets it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MirrorError {
    #[error("rows do not continue the mirror: expected {expected}, found {found} (epoch {epoch})")]
    Gap { expected: u64, found: u64, epoch: u64 },
    #[error("rows end at {ended}, not at the published head {head}")]
    Head { ended: u64, head: Head },
}

/// What the edges hold at [`Mirror::head`].
#[derive(Debug, Clone)]
pub struct Mirror {
    head: Head,
    records: OrdMap<AliasKey, AliasRecord>,
    contexts: KnownContexts,
    /// Small (revocations live a day at most): cloned whole with the rest.
    credentials: Credentials,
}

impl Mirror {
    /// The state a snapshot at `head` holds; one record per key (a later
    /// record for the same key replaces an earlier one, as on an edge).
    /// Every context is known until [`Mirror::with_contexts`] says otherwise.
    pub fn new(head: Head, records: impl IntoIterator<Item = AliasRecord>) -> Self {
        let records = records.into_iter().map(|r| (r.key(), r)).collect();
        Self { head, records, contexts: KnownContexts::Any, credentials: Credentials::default() }
    }

    /// The same state with `contexts` configured.
    pub(crate) fn with_contexts(self, contexts: KnownContexts) -> Self {
        Self { contexts, ..self }
    }

    /// The same state with these credentials.
    pub(crate) fn with_credentials(self, credentials: Credentials) -> Self {
        Self { credentials, ..self }
    }

    /// The credentials at the head.
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The contexts configured at the head.
    pub(crate) fn contexts(&self) -> &KnownContexts {
        &self.contexts
    }

    pub(crate) fn head(&self) -> Head {
        self.head
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.len()
    }

    /// Applies a published batch of outbox rows, which must continue the
    /// head and end at `head`. Checked before anything changes, so on error
    /// the mirror still holds its old state.
    pub(crate) fn apply(&mut self, rows: &[ChangeRow], head: Head) -> Result<(), MirrorError> {
        for (expected, r) in (self.head.version + 1..).zip(rows) {
            if r.epoch != self.head.epoch || r.version != expected {
                return Err(MirrorError::Gap { expected, found: r.version, epoch: r.epoch });
            }
        }
        let ended = rows.last().map_or(self.head.version, |r| r.version);
        if head.epoch != self.head.epoch || ended != head.version {
            return Err(MirrorError::Head { ended, head });
        }
        for r in rows {
            match &r.op {
                ChangeOp::Upsert(record) => {
                    self.records.insert(record.key(), record.clone());
                }
                ChangeOp::Remove(key) => {
                    self.records.remove(key);
                }
                ChangeOp::Contexts(known) => self.contexts = known.clone(),
                ChangeOp::Credentials(change) => self.credentials.apply(change),
            }
        }
        self.head = head;
        Ok(())
    }

    /// Every record in `(context, alias)` byte order: the order a snapshot
    /// is encoded in.
    pub(crate) fn records(&self) -> Vec<AliasRecord> {
        self.records.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use nexus_protocol::{AliasName, Canonical, Context};

    use super::*;

    fn record(context: &str, alias: &str, version: u64, active: bool) -> AliasRecord {
        AliasRecord {
            id: i64::try_from(version).unwrap_or_default(),
            context: Context::parse(context).unwrap_or_else(|e| panic!("{e}")),
            alias: AliasName::parse(alias).unwrap_or_else(|e| panic!("{e}")),
            canonical: Canonical::parse(&format!("https://example.com/{alias}/{version}"))
                .unwrap_or_else(|e| panic!("{e}")),
            description: None,
            expires_at_ms: None,
            is_active: active,
            version,
            updated_at_ms: 1_700_000_000_000,
        }
    }

    fn row(version: u64, op: ChangeOp) -> ChangeRow {
        ChangeRow { version, epoch: 1, committed_at_ms: 0, op }
    }

    fn head(version: u64) -> Head {
        Head { epoch: 1, version }
    }

    #[test]
    fn records_come_out_in_name_byte_order() {
        let m = Mirror::new(
            head(3),
            [
                record("system", "b", 1, true),
                record("backend", "z", 2, true),
                record("backend", "a", 3, true),
            ],
        );
        let names: Vec<_> =
            m.records().iter().map(|r| format!("{}/{}", r.context, r.alias)).collect();
        assert_eq!(names, ["backend/a", "backend/z", "system/b"]);
    }

    #[test]
    fn upserts_replace_and_removes_remove_by_key() {
        let mut m = Mirror::new(
            head(2),
            [record("backend", "a", 1, true), record("backend", "b", 2, true)],
        );
        let rows = [
            row(3, ChangeOp::Upsert(record("backend", "a", 3, false))),
            row(4, ChangeOp::Remove(record("backend", "b", 2, true).key())),
            row(5, ChangeOp::Upsert(record("frontend", "c", 5, true))),
            row(6, ChangeOp::Contexts(KnownContexts::only([Context::parse("frontend").unwrap()]))),
        ];
        assert_eq!(m.apply(&rows, head(6)), Ok(()));
        assert_eq!(m.head(), head(6));
        assert_eq!(m.contexts(), &KnownContexts::only([Context::parse("frontend").unwrap()]));
        assert_eq!(
            m.records(),
            [record("backend", "a", 3, false), record("frontend", "c", 5, true)]
        );
    }

    #[test]
    fn a_gap_or_wrong_head_leaves_the_state_alone() {
        let mut m = Mirror::new(head(2), [record("backend", "a", 1, true)]);
        let gap = [row(4, ChangeOp::Upsert(record("backend", "x", 4, true)))];
        assert_eq!(
            m.apply(&gap, head(4)),
            Err(MirrorError::Gap { expected: 3, found: 4, epoch: 1 })
        );
        let short = [row(3, ChangeOp::Upsert(record("backend", "x", 3, true)))];
        assert!(matches!(m.apply(&short, head(4)), Err(MirrorError::Head { ended: 3, .. })));
        assert_eq!((m.head(), m.len()), (head(2), 1));
    }
}
