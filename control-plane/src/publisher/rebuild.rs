//! Snapshot building: the read, encode and sign that a million aliases make
//! slow (seconds), so the periodic rebuild runs beside the delta loop
//! instead of stalling it.

use nexus_protocol::envelope::encode_snapshot;
use nexus_protocol::signing::SigningKey;
use nexus_protocol::{Head, Snapshot};
use tokio::task::JoinHandle;

use super::PublishError;
use crate::store::Store;
use crate::store::changes::SnapshotRead;

/// A signed snapshot envelope and what it holds.
#[derive(Debug)]
pub struct Sealed {
    pub head: Head,
    pub envelope: Vec<u8>,
    pub records: usize,
}

/// Encodes and signs on a blocking thread, off the async workers.
pub async fn seal(
    read: SnapshotRead,
    key: &SigningKey,
    intended_shrink: bool,
) -> Result<Sealed, PublishError> {
    let key = key.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let head = Head { epoch: read.head.epoch, version: read.head.version };
        let records = read.records.len();
        let mut read = read;
        // Byte order of the names: the same state always encodes to the
        // same bytes, so equal content hashes mean equal states.
        read.records.sort_unstable_by(|a, b| {
            (a.context.as_str(), a.alias.as_str()).cmp(&(b.context.as_str(), b.alias.as_str()))
        });
        let snapshot = Snapshot {
            epoch: head.epoch,
            version: head.version,
            created_at_ms: chrono::Utc::now().timestamp_millis(),
            intended_shrink,
            records: read.records,
        };
        Sealed { head, envelope: encode_snapshot(&snapshot, Some(&key)), records }
    })
    .await?;
    Ok(sealed)
}

/// A periodic rebuild running in the background. Periodic snapshots only
/// refresh `P:snapshot` for edges that (re)start; they are of the same
/// history, so they are marked as an intended shrink.
#[derive(Debug)]
pub struct Rebuild {
    task: JoinHandle<Result<Sealed, PublishError>>,
}

impl Rebuild {
    pub fn start(store: Store, key: SigningKey) -> Self {
        Self {
            task: tokio::spawn(async move {
                let read = store.snapshot_read().await?;
                seal(read, &key, true).await
            }),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    pub async fn finish(mut self) -> Result<Sealed, PublishError> {
        (&mut self.task).await?
    }
}

impl Drop for Rebuild {
    fn drop(&mut self) {
        // A dropped rebuild (lost leadership, shutdown) is abandoned.
        self.task.abort();
    }
}
