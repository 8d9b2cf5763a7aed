//! The rules of keeping the state current, whatever the source: the one
//! apply path ([`apply::Applier`], fed [`update::Update`]s and answering
//! one [`update::Step`]), the shrink guard ([`guard`]), the edge report
//! ([`report`]) with the commit→applied lag it carries ([`lag`]) and the
//! sync settings ([`SyncConfig`]).
//!
//! No I/O and no sources here: [`crate::source`] holds the sources (the
//! file, Redis) and drives them into an applier; this module imports
//! nothing from it, so the dependency runs one way.

pub mod apply;
pub mod guard;
pub mod lag;
pub mod report;
pub mod update;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nexus_protocol::signing::VerifyingKey;

/// Default `EDGE_CHECK_INTERVAL_MS`.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(2_000);
/// Default `EDGE_MAX_STALENESS`: past this age of the leader's newest
/// signed statement, the edge reports `stale`.
pub const MAX_STALENESS: Duration = Duration::from_secs(60);

/// Everything sync needs whatever the transport, read once from the
/// environment (the transport's own settings are [`nexus_runtime::bus::redis::RedisConfig`]).
#[derive(Clone)]
pub struct SyncConfig {
    /// The state signature's public keys: several during a rotation (the
    /// control plane signs with one; the edge accepts any of them).
    pub verify_keys: Vec<VerifyingKey>,
    pub edge_id: String,
    pub region: String,
    /// Last-known-good directory (`EDGE_STATE_DIR`); `None`: no persistence.
    pub state_dir: Option<PathBuf>,
    /// How often `P:head` is compared and the report written.
    pub check_interval: Duration,
    /// `EDGE_MAX_STALENESS`: the age of the newest signed statement of the
    /// head past which the edge reports `stale` (see [`crate::freshness`]).
    pub max_staleness: Duration,
    /// `EDGE_STALE_REFUSE`: contexts (or `*`) answered 503 `stale` rather
    /// than served while stale; empty: serve stale everywhere.
    pub stale_refuse: Vec<String>,
}

impl fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConfig")
            .field("edge_id", &self.edge_id)
            .field("region", &self.region)
            .field("state_dir", &self.state_dir)
            .field("check_interval", &self.check_interval)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl SyncConfig {
    /// Cut off from the bus for longer than this, the edge reports `degraded`.
    pub fn degraded_after(&self) -> Duration {
        self.check_interval * 3
    }
}
