//! The propagation transport: what the control plane's publisher writes
//! and what edges read, as one interface ([`Transport`]) with two
//! implementations — [`redis::RedisBus`] for fleets and
//! [`memory::MemoryBus`] in-process (`nexus-control-plane dev`, and a seam
//! for tests).
//!
//! The contract every implementation keeps (the propagation contract's
//! Redis keys, by name):
//!
//! - `head` is `epoch:version` of the newest published state; whatever it
//!   names exists (in the ring or the snapshot) before it is set.
//! - the ring holds recent signed deltas ordered by `to_version`, trimmed
//!   to the newest [`RING_LEN`]; [`Transport::append_deltas`] extends it
//!   and moves the head in one step, only if the head is still the one the
//!   deltas continue and a snapshot exists.
//! - the channel only announces what the ring or the snapshot already
//!   holds: a delta envelope, or a head notice (`epoch:version`) that sends
//!   edges to fetch.
//! - the fleet hash maps edge id → the edge's last JSON report.
//! - every write of snapshot, head and ring carries the writer's
//!   [`Fence`] (the epoch and the leader's term) and is refused
//!   ([`Written::Fenced`]) below the newest fence written, so a leader that
//!   lost its lock can never write over what a later leader published;
//!   and each is compare-and-set against the head the writer read, so two
//!   writers (or a writer and whoever else wrote Redis) cannot interleave.
//!
//! Whatever a transport does on the wire, its failures are one
//! [`BusError::Unavailable`] (with the cause) for the caller.

pub mod memory;
pub mod redis;

use std::collections::{HashMap, VecDeque};
use std::fmt;

use async_trait::async_trait;
use nexus_protocol::Head;

/// Deltas kept in the ring.
pub const RING_LEN: usize = 1024;

/// Channel messages a feed buffers for its reader before the oldest are
/// dropped (fred's default is 32; a drop is an [`Event::Lagged`], handled as
/// a gap either way).
pub const MESSAGE_BUFFER: usize = 4_096;

type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The transport could not be reached or refused the command.
    #[error("{transport}: {source}")]
    Unavailable { transport: &'static str, source: Cause },
    #[error("{key} holds {value:?}, not \"epoch:version\"")]
    BadHead { key: String, value: String },
    /// The server answers, but what it holds may be old: a replica whose
    /// link to its primary is down. Its head is not a confirmation, so the
    /// edge keeps serving its state and turns `degraded` in time.
    #[error("{transport}: {reason}")]
    Stale { transport: &'static str, reason: String },
}

/// Who writes: the registry's epoch and the leader's term (drawn from
/// PostgreSQL when the lock was taken). Ordered as `(epoch, term)`: a later
/// epoch (after `epoch bump`) passes whatever the term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fence {
    pub epoch: u64,
    pub term: u64,
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.term)
    }
}

/// What became of a fenced write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The head is not the one the write continues (deltas), or is ahead
    /// of the state written (a snapshot): nothing written.
    HeadMoved,
    /// A later leader (or epoch) has written: nothing written, and this
    /// writer is no longer the leader.
    Fenced,
}

/// One event of a [`Feed`].
#[derive(Debug)]
pub enum Event {
    /// A message on the channel: a delta envelope or a head notice.
    Message(Vec<u8>),
    /// The reader fell behind and `n` messages were dropped: a gap.
    Lagged(u64),
    /// The feed's connection is up (the first time too): subscribe, then
    /// check the head, since anything may have been missed.
    Connected,
    /// The feed's connection failed; it reconnects by itself.
    Failed(BusError),
}

/// The channel, as one edge reads it.
#[async_trait]
pub trait Feed: Send + Sync + fmt::Debug {
    /// Subscribes to the channel (again after each [`Event::Connected`]).
    async fn subscribe(&mut self) -> Result<(), BusError>;
    /// Waits for the next event. Never ends: a transport that goes away
    /// reports [`Event::Failed`] and, once back, [`Event::Connected`].
    async fn next(&mut self) -> Event;
    /// The name this feed's connection shows the server (`CLIENT LIST`),
    /// where there is one: operators and tests find an edge by it.
    fn name(&self) -> Option<String> {
        None
    }
}

/// Both sides of propagation. Each call is bounded in time by the
/// implementation, so a missing transport costs a timeout, never a hang.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// The head as written; `None` when there is none.
    async fn head(&self) -> Result<Option<Head>, BusError>;
    async fn has_snapshot(&self) -> Result<bool, BusError>;
    /// The whole snapshot envelope.
    async fn snapshot(&self) -> Result<Option<Vec<u8>>, BusError>;
    /// The snapshot's first `len` bytes (its envelope header names its
    /// version, hash and signature): enough to tell whether to fetch it.
    async fn snapshot_prefix(&self, len: usize) -> Result<Option<Vec<u8>>, BusError>;
    /// The ring's deltas with `to_version` above `version`, in order.
    async fn ring_after(&self, version: u64) -> Result<VecDeque<Vec<u8>>, BusError>;
    /// Appends `(to_version, envelope)` pairs to the ring and moves the
    /// head from `from` to `head`, only if `fence` holds, the head is still
    /// `from` and a snapshot exists.
    async fn append_deltas(
        &self,
        fence: Fence,
        from: Head,
        head: Head,
        deltas: &[(u64, Vec<u8>)],
    ) -> Result<Written, BusError>;
    /// Sends `messages` on the channel, in order.
    async fn announce(&self, messages: Vec<Vec<u8>>) -> Result<(), BusError>;
    /// Writes the snapshot, then — in this order — drops the ring when
    /// `reset_ring`, moves the head and announces the head notice; only if
    /// `fence` holds and the head is still `expected` (as the writer read
    /// it; `None`: no head).
    async fn publish_snapshot(
        &self,
        fence: Fence,
        expected: Option<Head>,
        envelope: Vec<u8>,
        head: Head,
        reset_ring: bool,
    ) -> Result<Written, BusError>;
    /// Replaces only the snapshot, built at `at` (a rebuild behind the
    /// published head): only if `fence` holds and the head is in `at`'s
    /// epoch, at or after it.
    async fn refresh_snapshot(
        &self,
        fence: Fence,
        envelope: Vec<u8>,
        at: Head,
    ) -> Result<Written, BusError>;
    /// The leader's newest signed statement of the head, as written.
    async fn statement(&self) -> Result<Option<Vec<u8>>, BusError>;
    /// Replaces the statement, only if `fence` holds.
    async fn publish_statement(&self, fence: Fence, envelope: Vec<u8>)
    -> Result<Written, BusError>;
    /// Writes `edge`'s report to the fleet hash.
    async fn report(&self, edge: &str, report: String) -> Result<(), BusError>;
    /// The whole fleet hash.
    async fn reports(&self) -> Result<HashMap<String, String>, BusError>;
    /// Removes these edges' reports.
    async fn forget(&self, edges: Vec<String>) -> Result<(), BusError>;
    /// Whether commands can be expected to succeed right now (a transport
    /// that knows it is disconnected says so, and callers skip work that
    /// would only time out).
    fn is_connected(&self) -> bool;
    /// A new subscription to the channel; it starts with
    /// [`Event::Connected`] once its connection is up.
    fn feed(&self) -> Result<Box<dyn Feed>, BusError>;
}
