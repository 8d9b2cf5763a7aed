//! Snapshot building: the encode and sign that a million aliases make slow,
//! so the periodic rebuild runs beside the delta loop instead of stalling
//! it. In steady state it encodes a clone of the [`Mirror`] (no PostgreSQL
//! read, no sort); without a mirror at the head it reads PostgreSQL as a
//! new leader does.

use nexus_protocol::envelope::encode_snapshot;
use nexus_protocol::signing::SigningKey;
use nexus_protocol::{AliasRecord, Credentials, Head, KnownContexts, Snapshot};
use tokio::task::JoinHandle;

use super::error::PublishError;
use super::mirror::Mirror;
use crate::store::Store;
use crate::store::changes::SnapshotRead;

/// A signed snapshot envelope and what it holds.
#[derive(Debug)]
pub struct Sealed {
    pub head: Head,
    pub envelope: Vec<u8>,
    pub records: usize,
    /// The state at `head`, when this snapshot was read from PostgreSQL and
    /// a mirror was asked for: what the publisher resets its mirror to.
    pub(crate) mirror: Option<Mirror>,
}

/// Sorts, encodes and signs on a blocking thread, off the async workers;
/// with `mirror`, also builds the [`Mirror`] of the same records, on a
/// second thread beside the encoding.
pub async fn seal(
    read: SnapshotRead,
    key: &SigningKey,
    intended_shrink: bool,
    mirror: bool,
) -> Result<Sealed, PublishError> {
    let key = key.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let head = Head { epoch: read.head.epoch, version: read.head.version };
        let mut records = read.records;
        // Byte order of the names: the same state always encodes to the
        // same bytes, so equal content hashes mean equal states. The
        // mirror's map keeps this order by itself.
        records.sort_unstable_by(|a, b| {
            (a.context.as_str(), a.alias.as_str()).cmp(&(b.context.as_str(), b.alias.as_str()))
        });
        let snapshot = snapshot_at(head, intended_shrink, records, read.contexts, read.credentials);
        let (envelope, mirror) = std::thread::scope(|s| {
            let built = mirror.then(|| {
                s.spawn(|| {
                    Mirror::new(head, snapshot.records.iter().cloned())
                        .with_contexts(snapshot.contexts.clone())
                        .with_credentials(snapshot.credentials.clone())
                })
            });
            let envelope = encode_snapshot(&snapshot, Some(&key));
            // A panicked build only costs the mirror: the next rebuild reads
            // PostgreSQL instead.
            (envelope, built.and_then(|b| b.join().ok()))
        });
        Sealed { head, envelope, records: snapshot.records.len(), mirror }
    })
    .await?;
    Ok(sealed)
}

/// Encodes and signs the mirror's records, already in snapshot order.
pub async fn seal_mirror(
    mirror: Mirror,
    key: &SigningKey,
    intended_shrink: bool,
) -> Result<Sealed, PublishError> {
    let key = key.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let head = mirror.head();
        let snapshot = snapshot_at(
            head,
            intended_shrink,
            mirror.records(),
            mirror.contexts().clone(),
            mirror.credentials().clone(),
        );
        // The clone's nodes are shared with the live mirror; let go of
        // them before the (large) encoding rather than after.
        drop(mirror);
        let envelope = encode_snapshot(&snapshot, Some(&key));
        Sealed { head, envelope, records: snapshot.records.len(), mirror: None }
    })
    .await?;
    Ok(sealed)
}

fn snapshot_at(
    head: Head,
    intended_shrink: bool,
    records: Vec<AliasRecord>,
    contexts: KnownContexts,
    mut credentials: Credentials,
) -> Snapshot {
    let now = chrono::Utc::now();
    // Revocations whose tokens have all expired refuse nothing any more.
    credentials.prune(now.timestamp());
    Snapshot {
        epoch: head.epoch,
        version: head.version,
        created_at_ms: now.timestamp_millis(),
        intended_shrink,
        records,
        contexts,
        credentials,
    }
}

/// A periodic rebuild running in the background. Periodic snapshots only
/// refresh `P:snapshot` for edges that (re)start; they are of the same
/// history, so they are marked as an intended shrink.
#[derive(Debug)]
pub(crate) struct Rebuild {
    task: JoinHandle<Result<Sealed, PublishError>>,
}

impl Rebuild {
    /// From `mirror` when there is one (it must be at the published head),
    /// else from a PostgreSQL read, which also yields a mirror to adopt.
    pub(crate) fn start(store: Store, key: SigningKey, mirror: Option<Mirror>) -> Self {
        Self {
            task: tokio::spawn(async move {
                match mirror {
                    Some(mirror) => seal_mirror(mirror, &key, true).await,
                    None => {
                        let read = store.snapshot_read().await?;
                        seal(read, &key, true, true).await
                    }
                }
            }),
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    pub(crate) async fn finish(mut self) -> Result<Sealed, PublishError> {
        (&mut self.task).await?
    }
}

impl Drop for Rebuild {
    fn drop(&mut self) {
        // A dropped rebuild (lost leadership, shutdown) is abandoned.
        self.task.abort();
    }
}
