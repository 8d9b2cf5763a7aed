//! The edge's current registry state: one [`Table`] plus the `(epoch,
//! version)` it represents, swapped in whole when a snapshot arrives and
//! patched in place by deltas that fit.
//!
//! Readers load the table through an `ArcSwapOption` (no lock, no
//! contention between worker threads) and never see a half-built state: a
//! snapshot is turned into a complete table before the swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwapOption, Guard};
use nexus_protocol::{Delta, DeltaFit, Snapshot};

use crate::credentials::CredentialStore;
use crate::freshness::Freshness;
use crate::table::Table;

/// Where the state comes from, as `/api/aliases/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    File,
    Redis,
    /// The last-known-good copy on disk, while Redis is out of reach.
    Disk,
    /// The in-process bus of `nexus-control-plane dev`.
    InProcess,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Redis => "redis",
            SourceKind::Disk => "disk",
            SourceKind::InProcess => "in-process",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => SourceKind::File,
            1 => SourceKind::Redis,
            3 => SourceKind::InProcess,
            _ => SourceKind::Disk,
        }
    }
}

/// A state not confirmed current for this long is reported `degraded`,
/// unless the source sets its own bound ([`State::set_degraded_after_ms`]).
pub const DEGRADED_AFTER_MS: i64 = 30_000;

/// Why a delta was not applied; the state is unchanged in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeltaRefused {
    #[error("no state loaded yet; a snapshot is needed first")]
    NoState,
    #[error("delta does not follow the current version; catch up first")]
    Gap,
    #[error("delta belongs to another epoch; take a fresh snapshot")]
    OtherEpoch,
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state now is at this version.
    Changed { version: u64, aliases: usize },
    /// A duplicate or older delta: ignored.
    Stale,
}

/// The current state of this edge.
#[derive(Debug)]
pub struct State {
    table: ArcSwapOption<Table>,
    epoch: AtomicU64,
    version: AtomicU64,
    /// When the state was last known current (Unix ms).
    confirmed_at_ms: AtomicI64,
    source: AtomicU8,
    degraded_after_ms: AtomicI64,
    /// Revocations and API-key grants of the state, for the authenticator.
    credentials: Arc<CredentialStore>,
    /// The age of the leader's newest signed statement of the head.
    freshness: Freshness,
}

impl State {
    /// An empty state: health answers 503 until a snapshot is installed.
    pub fn new(source: SourceKind) -> Self {
        Self {
            table: ArcSwapOption::empty(),
            epoch: AtomicU64::new(0),
            version: AtomicU64::new(0),
            confirmed_at_ms: AtomicI64::new(0),
            source: AtomicU8::new(source as u8),
            degraded_after_ms: AtomicI64::new(DEGRADED_AFTER_MS),
            credentials: Arc::new(CredentialStore::new()),
            freshness: Freshness::default(),
        }
    }

    /// How fresh the leader's statements say the state is (see
    /// [`crate::freshness`]).
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The credential set that arrives with the state (see
    /// [`crate::credentials`]).
    pub fn credentials(&self) -> &Arc<CredentialStore> {
        &self.credentials
    }

    /// The current table, if a state is loaded. Cheap; hold it for one
    /// request, not across awaits that may last.
    pub fn table(&self) -> Guard<Option<Arc<Table>>> {
        self.table.load()
    }

    pub fn is_loaded(&self) -> bool {
        self.table.load().is_some()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn source(&self) -> SourceKind {
        SourceKind::from_u8(self.source.load(Ordering::Relaxed))
    }

    /// Records where the state now comes from (Redis sync falls back to
    /// its disk copy and back).
    pub fn set_source(&self, source: SourceKind) {
        self.source.store(source as u8, Ordering::Relaxed);
    }

    /// How long the state may go unconfirmed before it is `degraded`.
    pub fn degraded_after_ms(&self) -> i64 {
        self.degraded_after_ms.load(Ordering::Relaxed)
    }

    pub fn set_degraded_after_ms(&self, ms: i64) {
        self.degraded_after_ms.store(ms, Ordering::Relaxed);
    }

    /// Milliseconds since the state was last confirmed current; `None`
    /// before the first load.
    pub fn age_ms(&self, now_ms: i64) -> Option<i64> {
        self.is_loaded().then(|| (now_ms - self.confirmed_at_ms()).max(0))
    }

    /// Whether a loaded state has gone unconfirmed for too long.
    pub fn is_degraded(&self, now_ms: i64) -> bool {
        self.age_ms(now_ms).is_some_and(|a| a > self.degraded_after_ms())
    }

    /// When the state was last confirmed current (Unix ms; 0 = never).
    pub fn confirmed_at_ms(&self) -> i64 {
        self.confirmed_at_ms.load(Ordering::Relaxed)
    }

    /// Records that the source still agrees with the state at `now_ms`.
    pub fn confirm(&self, now_ms: i64) {
        self.confirmed_at_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Builds a table from `snapshot` and swaps it in.
    pub fn install_snapshot(&self, snapshot: &Snapshot, now_ms: i64) -> Applied {
        let started = Instant::now();
        let table = Table::from_records(&snapshot.records);
        table.set_contexts(&snapshot.contexts);
        let table = Arc::new(table);
        let aliases = table.len();
        self.credentials.install(&snapshot.credentials, now_ms.div_euclid(1000));
        if let Some(old) = self.table.swap(Some(table)) {
            retire(old);
        }
        self.epoch.store(snapshot.epoch, Ordering::Release);
        self.version.store(snapshot.version, Ordering::Release);
        self.confirm(now_ms);
        tracing::info!(
            epoch = snapshot.epoch,
            version = snapshot.version,
            aliases,
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "state installed"
        );
        Applied::Changed { version: snapshot.version, aliases }
    }

    /// Applies `delta` in place when it follows the current version.
    pub fn apply_delta(&self, delta: &Delta, now_ms: i64) -> Result<Applied, DeltaRefused> {
        let guard = self.table.load();
        let Some(table) = guard.as_ref() else {
            return Err(DeltaRefused::NoState);
        };
        match delta.fit(self.epoch(), self.version()) {
            DeltaFit::Stale => return Ok(Applied::Stale),
            DeltaFit::Gap => return Err(DeltaRefused::Gap),
            DeltaFit::OtherEpoch => return Err(DeltaRefused::OtherEpoch),
            DeltaFit::Next => {}
        }
        // One arena chunk for the delta's records (see `table`).
        table.upsert_all(&delta.upserts);
        for k in &delta.removals {
            table.remove(k);
        }
        if let Some(contexts) = &delta.contexts {
            table.set_contexts(contexts);
        }
        self.credentials.apply(&delta.credentials, now_ms.div_euclid(1000));
        self.version.store(delta.to_version, Ordering::Release);
        self.confirm(now_ms);
        Ok(Applied::Changed { version: delta.to_version, aliases: table.len() })
    }
}

/// How often a retiring table checks whether readers are done with it.
const RETIRE_POLL: Duration = Duration::from_millis(20);

/// Frees a replaced table on a thread of its own. At 1M aliases that takes
/// seconds (millions of small frees); whoever drops the last reference pays
/// it, and that could be a request worker still holding the table from a
/// request that began before the swap, or the sync task. Holding a
/// reference here until every reader is done makes this thread the last.
fn retire(old: Arc<Table>) {
    let spawned = std::thread::Builder::new().name("edge-retire".into()).spawn(move || {
        while Arc::strong_count(&old) > 1 {
            std::thread::sleep(RETIRE_POLL);
        }
        drop(old);
    });
    if let Err(e) = spawned {
        // The table is freed here instead, which is only slower.
        tracing::warn!(error = %e, "no thread to free the replaced table on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_protocol::{AliasName, AliasRecord, Canonical, Context};

    fn rec(alias: &str, version: u64) -> AliasRecord {
        AliasRecord {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse("https://x").unwrap(),
            description: None,
            expires_at_ms: None,
            is_active: true,
            version,
            updated_at_ms: 0,
        }
    }

    fn delta(from: u64, to: u64, upserts: Vec<AliasRecord>) -> Delta {
        Delta {
            epoch: 1,
            from_version: from,
            to_version: to,
            committed_at_ms: 0,
            upserts,
            removals: vec![],
            contexts: None,
            credentials: Default::default(),
        }
    }

    #[test]
    fn snapshot_then_deltas_in_order_only() {
        let s = State::new(SourceKind::Redis);
        assert!(!s.is_loaded());
        assert_eq!(s.apply_delta(&delta(0, 1, vec![]), 0), Err(DeltaRefused::NoState));
        let snap = Snapshot {
            epoch: 1,
            version: 5,
            created_at_ms: 0,
            intended_shrink: false,
            records: vec![rec("a", 5)],
            contexts: nexus_protocol::KnownContexts::Any,
            credentials: Default::default(),
        };
        s.install_snapshot(&snap, 10);
        assert_eq!((s.version(), s.confirmed_at_ms()), (5, 10));
        assert_eq!(s.apply_delta(&delta(6, 7, vec![]), 0), Err(DeltaRefused::Gap));
        assert_eq!(s.apply_delta(&delta(4, 5, vec![]), 0), Ok(Applied::Stale));
        let applied = s.apply_delta(&delta(5, 6, vec![rec("b", 6)]), 20).unwrap();
        assert_eq!(applied, Applied::Changed { version: 6, aliases: 2 });
        let t = s.table();
        let t = t.as_ref().unwrap().pin();
        assert_eq!(t.lookup("frontend/b").unwrap().version, 6);
    }

    #[test]
    fn a_replaced_table_is_freed_by_the_retire_thread_not_its_last_reader() {
        let s = State::new(SourceKind::Redis);
        let snap = |version| Snapshot {
            epoch: 1,
            version,
            created_at_ms: 0,
            intended_shrink: false,
            records: vec![rec("a", version)],
            contexts: nexus_protocol::KnownContexts::Any,
            credentials: Default::default(),
        };
        s.install_snapshot(&snap(1), 0);
        // A request that began before the swap.
        let reader = s.table();
        let old = Arc::downgrade(reader.as_ref().unwrap());
        s.install_snapshot(&snap(2), 0);
        drop(reader);
        assert!(old.strong_count() >= 1, "the reader dropped the last reference: it paid the free");
        let deadline = Instant::now() + Duration::from_secs(5);
        while old.strong_count() > 0 {
            assert!(Instant::now() < deadline, "the replaced table was never freed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(s.table().as_ref().unwrap().len(), 1);
    }
}
