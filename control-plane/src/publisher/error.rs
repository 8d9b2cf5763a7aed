//! Why a step failed, a leaf the publisher's parts import (never
//! `mod.rs`, which imports them), with the public summary of each kind.

use super::bus::BusError;
use super::election::ElectionError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Election(#[from] ElectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("snapshot encoding task failed: {0}")]
    Encode(#[from] tokio::task::JoinError),
}

impl PublishError {
    /// What `/api/aliases/status` shows (it is public): the kind of
    /// failure, never the database's or Redis's own text, which goes to
    /// the log.
    pub(crate) fn summary(&self) -> &'static str {
        match self {
            PublishError::Election(_) => "the leader election cannot reach the registry database",
            PublishError::Store(e) if e.is_unavailable() => "the registry database is unavailable",
            PublishError::Store(_) => "reading the registry failed",
            PublishError::Bus(e) if e.is_unavailable() => "redis is unavailable",
            PublishError::Bus(_) => "redis does not hold the published state",
            PublishError::Encode(_) => "snapshot encoding failed",
        }
    }
}
