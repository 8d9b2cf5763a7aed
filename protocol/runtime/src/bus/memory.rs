//! The transport in one process: the head, the snapshot, the ring and the
//! fleet hash behind a mutex, the channel a tokio broadcast. What
//! `nexus-control-plane dev` runs its publisher and its edge on, and a
//! transport tests can use without a Redis.
//!
//! It keeps the same contract as Redis (see [`super`]): the lock is taken
//! once per call, so every call is atomic as a Redis script is, and the
//! channel announces only after the state is written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use nexus_protocol::Head;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{BusError, Event, Feed, Fence, RING_LEN, Transport, Written};

#[derive(Debug, Default)]
struct Store {
    /// The newest fence written (see [`super::Fence`]).
    fence: Option<Fence>,
    head: Option<Head>,
    snapshot: Option<Vec<u8>>,
    statement: Option<Vec<u8>>,
    /// `to_version` → envelope.
    ring: BTreeMap<u64, Vec<u8>>,
    edges: HashMap<String, String>,
}

/// An in-process bus. Clones share one state and one channel.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    store: Arc<Mutex<Store>>,
    channel: broadcast::Sender<Vec<u8>>,
}

impl MemoryBus {
    /// A new, empty bus; each feed buffers up to `buffer` messages before
    /// it reports [`Event::Lagged`].
    pub fn new(buffer: usize) -> Self {
        let (channel, _) = broadcast::channel(buffer.max(1));
        Self { store: Arc::default(), channel }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves whole values behind (every
        // write is one assignment), so the state is still usable.
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `fence` for a write, or says it is fenced off (the same rule
    /// as the Redis scripts'). The caller holds the lock for the write.
    fn admit(store: &mut Store, fence: Fence) -> bool {
        if store.fence.is_some_and(|f| fence < f) {
            return false;
        }
        store.fence = Some(fence);
        true
    }

    fn send(&self, message: Vec<u8>) {
        // No subscriber is not an error: edges that join later catch up.
        let _ = self.channel.send(message);
    }
}

#[async_trait]
impl Transport for MemoryBus {
    async fn head(&self) -> Result<Option<Head>, BusError> {
        Ok(self.store().head)
    }

    async fn has_snapshot(&self) -> Result<bool, BusError> {
        Ok(self.store().snapshot.is_some())
    }

    async fn snapshot(&self) -> Result<Option<Vec<u8>>, BusError> {
        Ok(self.store().snapshot.clone())
    }

    async fn snapshot_prefix(&self, len: usize) -> Result<Option<Vec<u8>>, BusError> {
        Ok(self.store().snapshot.as_ref().map(|s| s[..len.min(s.len())].to_vec()))
    }

    async fn ring_after(&self, version: u64) -> Result<VecDeque<Vec<u8>>, BusError> {
        let store = self.store();
        Ok(store.ring.range(version.saturating_add(1)..).map(|(_, d)| d.clone()).collect())
    }

    async fn append_deltas(
        &self,
        fence: Fence,
        from: Head,
        head: Head,
        deltas: &[(u64, Vec<u8>)],
    ) -> Result<Written, BusError> {
        let mut store = self.store();
        if store.head != Some(from) || store.snapshot.is_none() {
            return Ok(Written::HeadMoved);
        }
        if !Self::admit(&mut store, fence) {
            return Ok(Written::Fenced);
        }
        for (to_version, envelope) in deltas {
            store.ring.insert(*to_version, envelope.clone());
        }
        while store.ring.len() > RING_LEN {
            store.ring.pop_first();
        }
        store.head = Some(head);
        Ok(Written::Done)
    }

    async fn announce(&self, messages: Vec<Vec<u8>>) -> Result<(), BusError> {
        for m in messages {
            self.send(m);
        }
        Ok(())
    }

    async fn publish_snapshot(
        &self,
        fence: Fence,
        expected: Option<Head>,
        envelope: Vec<u8>,
        head: Head,
        reset_ring: bool,
    ) -> Result<Written, BusError> {
        {
            let mut store = self.store();
            if store.head != expected {
                return Ok(Written::HeadMoved);
            }
            if !Self::admit(&mut store, fence) {
                return Ok(Written::Fenced);
            }
            store.snapshot = Some(envelope);
            if reset_ring {
                store.ring.clear();
            }
            store.head = Some(head);
        }
        self.send(head.to_string().into_bytes());
        Ok(Written::Done)
    }

    async fn refresh_snapshot(
        &self,
        fence: Fence,
        envelope: Vec<u8>,
        at: Head,
    ) -> Result<Written, BusError> {
        let mut store = self.store();
        if !store.head.is_some_and(|h| h.epoch == at.epoch && h.version >= at.version) {
            return Ok(Written::HeadMoved);
        }
        if !Self::admit(&mut store, fence) {
            return Ok(Written::Fenced);
        }
        store.snapshot = Some(envelope);
        Ok(Written::Done)
    }

    async fn statement(&self) -> Result<Option<Vec<u8>>, BusError> {
        Ok(self.store().statement.clone())
    }

    async fn publish_statement(
        &self,
        fence: Fence,
        envelope: Vec<u8>,
    ) -> Result<Written, BusError> {
        let mut store = self.store();
        if !Self::admit(&mut store, fence) {
            return Ok(Written::Fenced);
        }
        store.statement = Some(envelope);
        Ok(Written::Done)
    }

    async fn report(&self, edge: &str, report: String) -> Result<(), BusError> {
        self.store().edges.insert(edge.to_owned(), report);
        Ok(())
    }

    async fn reports(&self) -> Result<HashMap<String, String>, BusError> {
        Ok(self.store().edges.clone())
    }

    async fn forget(&self, edges: Vec<String>) -> Result<(), BusError> {
        let mut store = self.store();
        for e in edges {
            store.edges.remove(&e);
        }
        Ok(())
    }

    fn is_connected(&self) -> bool {
        true
    }

    fn feed(&self) -> Result<Box<dyn Feed>, BusError> {
        Ok(Box::new(MemoryFeed { rx: self.channel.subscribe(), announced: false }))
    }
}

/// A subscription to a [`MemoryBus`]: connected from the start.
#[derive(Debug)]
struct MemoryFeed {
    rx: broadcast::Receiver<Vec<u8>>,
    announced: bool,
}

#[async_trait]
impl Feed for MemoryFeed {
    async fn subscribe(&mut self) -> Result<(), BusError> {
        Ok(())
    }

    async fn next(&mut self) -> Event {
        if !self.announced {
            self.announced = true;
            return Event::Connected;
        }
        match self.rx.recv().await {
            Ok(m) => Event::Message(m),
            Err(RecvError::Lagged(n)) => Event::Lagged(n),
            // The sender lives in the bus the feed came from; with every
            // clone of it gone nothing will ever be sent again.
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: Head = Head { epoch: 1, version: 1 };
    const H2: Head = Head { epoch: 1, version: 2 };
    const LEADER: Fence = Fence { epoch: 1, term: 1 };

    #[tokio::test]
    async fn deltas_continue_only_the_head_they_were_built_on() {
        let bus = MemoryBus::new(8);
        // No snapshot yet: nothing is written.
        assert_eq!(
            bus.append_deltas(LEADER, H1, H2, &[(2, vec![2])]).await.unwrap(),
            Written::HeadMoved
        );
        bus.publish_snapshot(LEADER, None, vec![1], H1, true).await.unwrap();
        assert_eq!(
            bus.append_deltas(LEADER, H1, H2, &[(2, vec![2])]).await.unwrap(),
            Written::Done
        );
        assert_eq!(bus.head().await.unwrap(), Some(H2));
        // The head moved on: a second writer from H1 is refused.
        assert_eq!(
            bus.append_deltas(LEADER, H1, H2, &[(2, vec![9])]).await.unwrap(),
            Written::HeadMoved
        );
        assert_eq!(bus.ring_after(1).await.unwrap(), VecDeque::from([vec![2]]));
        assert!(bus.ring_after(2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_ring_keeps_the_newest() {
        let bus = MemoryBus::new(8);
        bus.publish_snapshot(LEADER, None, vec![0], Head { epoch: 1, version: 0 }, true)
            .await
            .unwrap();
        let n = RING_LEN as u64 + 10;
        let deltas: Vec<(u64, Vec<u8>)> = (1..=n).map(|v| (v, v.to_le_bytes().to_vec())).collect();
        let to = Head { epoch: 1, version: n };
        let from = Head { epoch: 1, version: 0 };
        assert_eq!(bus.append_deltas(LEADER, from, to, &deltas).await.unwrap(), Written::Done);
        let ring = bus.ring_after(0).await.unwrap();
        assert_eq!(ring.len(), RING_LEN);
        assert_eq!(ring.front(), Some(&11u64.to_le_bytes().to_vec()));
    }

    #[tokio::test]
    async fn a_feed_connects_then_hears_what_is_announced() {
        let bus = MemoryBus::new(2);
        let mut feed = bus.feed().unwrap();
        assert!(matches!(feed.next().await, Event::Connected));
        bus.publish_snapshot(LEADER, None, vec![1], H1, true).await.unwrap();
        assert!(matches!(feed.next().await, Event::Message(m) if m == b"1:1"));
        bus.announce(vec![vec![1], vec![2], vec![3]]).await.unwrap();
        assert!(matches!(feed.next().await, Event::Lagged(1)));
        assert_eq!(bus.snapshot_prefix(10).await.unwrap(), Some(vec![1]));
    }

    #[tokio::test]
    async fn a_deposed_leader_writes_nothing_and_the_head_never_goes_back() {
        let bus = MemoryBus::new(8);
        let (old, new) = (LEADER, Fence { epoch: 1, term: 2 });
        assert_eq!(
            bus.publish_snapshot(old, None, vec![1], H1, true).await.unwrap(),
            Written::Done
        );
        let seen = Some(H1);
        assert_eq!(
            bus.publish_snapshot(new, seen, vec![2], H2, true).await.unwrap(),
            Written::Done
        );
        // The old leader, still believing it leads, cannot write anything,
        // even having read the head right before.
        let (h3, now) = (Head { epoch: 1, version: 3 }, Some(H2));
        assert_eq!(
            bus.publish_snapshot(old, now, vec![3], h3, true).await.unwrap(),
            Written::Fenced
        );
        assert_eq!(bus.append_deltas(old, H2, h3, &[(3, vec![3])]).await.unwrap(), Written::Fenced);
        assert_eq!(bus.refresh_snapshot(old, vec![9], H2).await.unwrap(), Written::Fenced);
        // A write from a stale read of the head is refused too.
        assert_eq!(
            bus.publish_snapshot(new, seen, vec![1], H1, true).await.unwrap(),
            Written::HeadMoved
        );
        assert_eq!(bus.head().await.unwrap(), Some(H2));
        assert_eq!(bus.snapshot().await.unwrap(), Some(vec![2]));
        // A later epoch (after `epoch bump`) passes whatever the term.
        let bumped = Fence { epoch: 2, term: 1 };
        let e2 = Head { epoch: 2, version: 2 };
        assert_eq!(
            bus.publish_snapshot(bumped, now, vec![5], e2, true).await.unwrap(),
            Written::Done
        );
    }
}
