//! The publisher's side of propagation, over any
//! [`Transport`](nexus_runtime::bus::Transport) (Redis for a fleet, the
//! in-process bus in dev mode): what it means to publish deltas and
//! snapshots, to read the head edges would need, and to keep the fleet
//! hash tidy. The transport keeps the ordering contract (see
//! [`nexus_runtime::bus`]); this keeps the publisher's rules on top of it.

use std::sync::Arc;

use nexus_protocol::Head;
use nexus_runtime::bus::{BusError as TransportError, Fence, Transport, Written};

use super::batch::SealedDelta;

pub(crate) use nexus_runtime::bus::RING_LEN;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The bus no longer holds the head (or the snapshot) the deltas
    /// continue: it was emptied or written by someone else since the step
    /// looked.
    #[error("the bus moved away from the published head {expected}; deltas not written")]
    HeadMoved { expected: Head },
    /// A later leader (or epoch) wrote to the bus: this instance lost the
    /// lock, whatever it believes, and wrote nothing.
    #[error("fenced off: a later leader wrote to the bus (this one's fence is {fence})")]
    Fenced { fence: Fence },
    /// The head changed between the step's read and its snapshot write
    /// (another writer): nothing written; the next step reads again.
    #[error("the bus head changed since it read {}; snapshot not written",
            expected.map_or_else(|| "none".to_owned(), |h| h.to_string()))]
    Raced { expected: Option<Head> },
}

impl BusError {
    /// Whether the transport itself failed (rather than holding another
    /// state than the publisher expected).
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, BusError::Transport(TransportError::Unavailable { .. }))
    }
}

/// A handle on one registry's propagation transport. Clones share it.
#[derive(Debug, Clone)]
pub struct Bus {
    transport: Arc<dyn Transport>,
}

impl Bus {
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { transport }
    }

    /// The transport, for the fleet view and for an in-process edge.
    pub(crate) fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The head, or `None` when the bus has lost it (restarted empty) — or
    /// lost the snapshot behind it, which edges would need just the same.
    pub async fn head(&self) -> Result<Option<Head>, BusError> {
        let Some(head) = self.transport.head().await? else { return Ok(None) };
        Ok(self.transport.has_snapshot().await?.then_some(head))
    }

    /// The head as written, whether or not a snapshot is behind it: what a
    /// snapshot write compares against.
    pub(crate) async fn raw_head(&self) -> Result<Option<Head>, BusError> {
        Ok(self.transport.head().await?)
    }

    pub(crate) async fn has_snapshot(&self) -> Result<bool, BusError> {
        Ok(self.transport.has_snapshot().await?)
    }

    /// Appends `deltas` to the ring and moves the head from `from` to
    /// `head` — only if the bus still holds `from` and a snapshot
    /// ([`BusError::HeadMoved`] otherwise) — then announces each delta on
    /// the channel, or, for one larger than `max_message`, the head notice.
    pub async fn publish_deltas(
        &self,
        fence: Fence,
        deltas: &[SealedDelta],
        from: Head,
        head: Head,
        max_message: usize,
    ) -> Result<(), BusError> {
        let ring: Vec<(u64, Vec<u8>)> =
            deltas.iter().map(|d| (d.to_version, d.bytes.clone())).collect();
        match self.transport.append_deltas(fence, from, head, &ring).await? {
            Written::Done => {}
            Written::HeadMoved => return Err(BusError::HeadMoved { expected: from }),
            Written::Fenced => return Err(BusError::Fenced { fence }),
        }
        let messages = deltas.iter().map(|d| announcement(d, head, max_message)).collect();
        Ok(self.transport.announce(messages).await?)
    }

    /// Writes the snapshot, drops the ring when it would no longer continue
    /// into the snapshot (`reset_ring`), moves the head, and sends the head
    /// notice so subscribed edges catch up now rather than at their next
    /// check.
    pub async fn publish_snapshot(
        &self,
        fence: Fence,
        expected: Option<Head>,
        envelope: Vec<u8>,
        head: Head,
        reset_ring: bool,
    ) -> Result<(), BusError> {
        match self.transport.publish_snapshot(fence, expected, envelope, head, reset_ring).await? {
            Written::Done => Ok(()),
            Written::HeadMoved => Err(BusError::Raced { expected }),
            Written::Fenced => Err(BusError::Fenced { fence }),
        }
    }

    /// Replaces the leader's signed statement of the head.
    pub(crate) async fn publish_statement(
        &self,
        fence: Fence,
        envelope: Vec<u8>,
    ) -> Result<(), BusError> {
        match self.transport.publish_statement(fence, envelope).await? {
            Written::Done => Ok(()),
            Written::HeadMoved | Written::Fenced => Err(BusError::Fenced { fence }),
        }
    }

    /// Replaces only the snapshot, built at `at` (alone, it is what a
    /// periodic rebuild behind the published head writes: head and ring
    /// stay as they are). `false`: the head left `at`'s epoch meanwhile,
    /// nothing written.
    pub async fn refresh_snapshot(
        &self,
        fence: Fence,
        envelope: Vec<u8>,
        at: Head,
    ) -> Result<bool, BusError> {
        match self.transport.refresh_snapshot(fence, envelope, at).await? {
            Written::Done => Ok(true),
            Written::HeadMoved => Ok(false),
            Written::Fenced => Err(BusError::Fenced { fence }),
        }
    }

    /// Removes edge reports whose `heartbeat_ms` is before `cutoff_ms`.
    /// Reports that do not parse are left for the fleet view to show.
    /// Returns how many were removed.
    pub(crate) async fn prune_edges(&self, cutoff_ms: i64) -> Result<usize, BusError> {
        let all = self.transport.reports().await?;
        let old: Vec<String> = all
            .into_iter()
            .filter(|(_, report)| heartbeat_ms(report).is_some_and(|at| at < cutoff_ms))
            .map(|(id, _)| id)
            .collect();
        let n = old.len();
        self.transport.forget(old).await?;
        Ok(n)
    }

    /// The raw edge reports, at most `max` of them, by edge id.
    pub(crate) async fn edge_reports(&self, max: usize) -> Result<Vec<(String, String)>, BusError> {
        let mut out: Vec<(String, String)> = self.transport.reports().await?.into_iter().collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.truncate(max);
        Ok(out)
    }
}

/// The `heartbeat_ms` of a JSON edge report, if it has one.
fn heartbeat_ms(report: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(report).ok()?.get("heartbeat_ms")?.as_i64()
}

/// What the channel carries for `delta`: the envelope itself, or — when it
/// is larger than a channel message may be — the head notice, which sends
/// edges to the ring for it.
pub(crate) fn announcement(delta: &SealedDelta, head: Head, max_message: usize) -> Vec<u8> {
    if delta.bytes.len() <= max_message {
        delta.bytes.clone()
    } else {
        head.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use nexus_runtime::bus::memory::MemoryBus;

    use super::*;

    #[test]
    fn oversized_deltas_are_announced_by_the_head_notice() {
        let head = Head { epoch: 3, version: 9 };
        let delta = SealedDelta { from_version: 8, to_version: 9, bytes: vec![7; 100] };
        assert_eq!(announcement(&delta, head, 100), vec![7u8; 100]);
        let notice = announcement(&delta, head, 99);
        assert_eq!(Head::parse(&notice), Ok(head));
    }

    #[test]
    fn heartbeats_are_read_from_reports() {
        assert_eq!(heartbeat_ms(r#"{"id":"e","heartbeat_ms":42}"#), Some(42));
        assert_eq!(heartbeat_ms(r#"{"id":"e"}"#), None);
        assert_eq!(heartbeat_ms("not json"), None);
    }

    #[tokio::test]
    async fn silent_edges_are_pruned_and_unreadable_reports_kept() {
        let memory = MemoryBus::new(4);
        let bus = Bus::new(Arc::new(memory.clone()));
        let t = memory.clone();
        t.report("old", r#"{"heartbeat_ms":10}"#.into()).await.unwrap();
        t.report("new", r#"{"heartbeat_ms":99}"#.into()).await.unwrap();
        t.report("odd", "not json".into()).await.unwrap();
        assert_eq!(bus.prune_edges(50).await.unwrap(), 1);
        let left: Vec<String> =
            bus.edge_reports(10).await.unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(left, ["new", "odd"]);
    }

    #[tokio::test]
    async fn a_head_without_a_snapshot_is_no_head() {
        let memory = MemoryBus::new(4);
        let bus = Bus::new(Arc::new(memory.clone()));
        assert_eq!(bus.head().await.unwrap(), None);
        let head = Head { epoch: 1, version: 4 };
        let fence = Fence { epoch: 1, term: 1 };
        bus.publish_snapshot(fence, None, vec![1], head, true).await.unwrap();
        assert_eq!(bus.head().await.unwrap(), Some(head));
        let stale = Head { epoch: 1, version: 3 };
        let d = SealedDelta { from_version: 3, to_version: 4, bytes: vec![2] };
        let err = bus.publish_deltas(fence, &[d], stale, head, 1024).await.unwrap_err();
        assert!(matches!(err, BusError::HeadMoved { .. }), "{err}");
    }
}
