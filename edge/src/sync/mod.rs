//! Edge sync from the control plane through Redis (the contract is in the
//! propagation notes): the rules of applying ([`apply`], [`guard`]), the
//! edge report ([`report`]) and the settings. The Redis I/O loop that drives
//! them lives in [`crate::source::redis`].
//!
//! Redis sync does not go through [`crate::source::drive`]: what to fetch
//! next depends on how the last envelope fitted (a gap means "read the
//! ring"), so the loop talks to an [`apply::Applier`] directly.

pub mod apply;
pub mod guard;
pub mod report;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nexus_protocol::keys::RedisKeys;
use nexus_protocol::signing::VerifyingKey;

use crate::metrics::Metrics;
use crate::persist::{Disk, Writer};
use crate::source::redis::RedisSync;
use crate::state::State;
use apply::Applier;

/// Pub/sub messages buffered for the sync loop before the oldest are
/// dropped (fred's default is 32; a drop is handled as a gap either way).
pub const MESSAGE_BUFFER: usize = 4_096;

/// Default `EDGE_CHECK_INTERVAL_MS`.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(2_000);

/// Everything Redis sync needs, read once from the environment.
#[derive(Clone)]
pub struct SyncConfig {
    /// `REDIS_URL`; may hold a password, so it is never printed.
    pub redis_url: String,
    pub keys: RedisKeys,
    pub verify_key: VerifyingKey,
    pub edge_id: String,
    pub region: String,
    /// Last-known-good directory (`EDGE_STATE_DIR`); `None`: no persistence.
    pub state_dir: Option<PathBuf>,
    /// How often `P:head` is compared and the report written.
    pub check_interval: Duration,
    /// See [`MESSAGE_BUFFER`]; tests make it tiny to force drops.
    pub message_buffer: usize,
}

impl fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConfig")
            .field("redis_url", &"<redacted>")
            .field("prefix", &self.keys.prefix())
            .field("edge_id", &self.edge_id)
            .field("region", &self.region)
            .field("state_dir", &self.state_dir)
            .field("check_interval", &self.check_interval)
            .finish_non_exhaustive()
    }
}

impl SyncConfig {
    /// Cut off from Redis for longer than this, the edge reports `degraded`.
    pub fn degraded_after(&self) -> Duration {
        self.check_interval * 3
    }
}

/// Why Redis sync could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("EDGE_STATE_DIR {dir:?}: {source}")]
    StateDir { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Redis(#[from] crate::source::redis::SyncError),
}

/// Prepares Redis sync for `state`: restores the last-known-good copy when
/// there is one (so the edge serves before Redis answers, and even if it
/// never does), starts the disk writer and the Redis clients. Run the
/// returned loop to sync.
pub fn start(
    config: SyncConfig,
    state: Arc<State>,
    metrics: Arc<Metrics>,
) -> Result<RedisSync, StartError> {
    state.set_degraded_after_ms(
        i64::try_from(config.degraded_after().as_millis()).unwrap_or(i64::MAX),
    );
    let mut writer = None;
    let mut saved = None;
    if let Some(dir) = &config.state_dir {
        let io = |source| StartError::StateDir { dir: dir.clone(), source };
        let disk = Disk::open(dir).map_err(io)?;
        saved = disk.load().map_err(io)?;
        writer = Some(Writer::spawn(disk).map_err(io)?);
    }
    let mut applier = Applier::new(state, metrics, config.verify_key, writer);
    if let Some(saved) = saved {
        match applier.restore(saved) {
            Ok(version) => tracing::warn!(
                version,
                "serving the last-known-good state from disk until Redis confirms it"
            ),
            Err(e) => tracing::error!(error = %e, "disk copy refused; waiting for Redis"),
        }
    }
    Ok(RedisSync::start(config, applier)?)
}
