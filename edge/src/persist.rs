//! Last-known-good state on disk (`EDGE_STATE_DIR`), so an edge restarted
//! while Redis and the control plane are down still serves.
//!
//! What is stored is the signed envelopes exactly as received: they carry
//! their content hash and signature, so the disk copy is checked exactly
//! like one read from Redis, and a torn or tampered file is refused rather
//! than served.
//!
//! - `snapshot.nxus`: the last snapshot envelope, replaced atomically (temp
//!   file, fsync, rename, fsync of the directory).
//! - `deltas.log`: the delta envelopes applied since, each as a 4-byte
//!   little-endian length and the envelope. A torn tail (crash mid-append)
//!   ends the log at the last whole record. When a snapshot is written, the
//!   log is rewritten without the deltas the snapshot already contains.
//!
//! Writes happen on one background thread fed by a channel, in order, so
//! the sync loop never waits for a disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use nexus_protocol::envelope;

const SNAPSHOT: &str = "snapshot.nxus";
const LOG: &str = "deltas.log";
/// A log record longer than this is not a delta envelope: the log ends.
const MAX_RECORD: usize = 64 << 20;

/// What was found on disk; nothing in it is verified yet.
#[derive(Debug)]
pub struct Saved {
    pub snapshot: Vec<u8>,
    pub deltas: Vec<Vec<u8>>,
    /// When the newest file was last written (Unix ms).
    pub saved_at_ms: i64,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Disk {
    dir: PathBuf,
}

impl Disk {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the snapshot, then drops from the log every delta it
    /// already contains (`to_version <= version`, or another epoch).
    pub fn write_snapshot(&self, envelope: &[u8], epoch: u64, version: u64) -> io::Result<()> {
        self.replace(SNAPSHOT, envelope)?;
        let kept: Vec<Vec<u8>> = self
            .read_log()?
            .into_iter()
            .filter(|d| header_of(d).is_some_and(|(e, v)| e == epoch && v > version))
            .collect();
        let mut bytes = Vec::new();
        for d in &kept {
            push_record(&mut bytes, d);
        }
        self.replace(LOG, &bytes)
    }

    /// Appends one delta envelope to the log.
    pub fn append_delta(&self, envelope: &[u8]) -> io::Result<()> {
        let mut record = Vec::with_capacity(4 + envelope.len());
        push_record(&mut record, envelope);
        let mut f = OpenOptions::new().create(true).append(true).open(self.dir.join(LOG))?;
        f.write_all(&record)?;
        f.sync_data()
    }

    /// The saved snapshot and the deltas after it, if a snapshot exists.
    pub fn load(&self) -> io::Result<Option<Saved>> {
        let path = self.dir.join(SNAPSHOT);
        let snapshot = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut saved_at_ms = modified_ms(&path);
        if let Ok(m) = fs::metadata(self.dir.join(LOG)) {
            saved_at_ms = saved_at_ms.max(m.modified().map_or(0, ms_of));
        }
        Ok(Some(Saved { snapshot, deltas: self.read_log()?, saved_at_ms }))
    }

    fn read_log(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut bytes = Vec::new();
        match File::open(self.dir.join(LOG)) {
            Ok(mut f) => f.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(split_log(&bytes))
    }

    /// Writes `name` atomically: a crash leaves the old file or the new one.
    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.dir.join(name))?;
        // The rename itself is durable only once the directory is synced.
        File::open(&self.dir)?.sync_all()
    }
}

fn push_record(out: &mut Vec<u8>, envelope: &[u8]) {
    // Envelopes on this path are bounded by the delta limit, far below 4 GiB.
    let len = u32::try_from(envelope.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(envelope);
}

/// Whole records of a log, stopping at the first torn or absurd one.
fn split_log(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((len, rest)) = bytes.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_RECORD || len > rest.len() {
            break;
        }
        let (record, rest) = rest.split_at(len);
        out.push(record.to_vec());
        bytes = rest;
    }
    out
}

/// `(epoch, version)` of an envelope whose hash checks (no signature check:
/// this only decides what to keep; loading verifies everything).
fn header_of(envelope: &[u8]) -> Option<(u64, u64)> {
    envelope::open(envelope, MAX_RECORD, None).ok().map(|(h, _)| (h.epoch, h.version))
}

fn modified_ms(path: &Path) -> i64 {
    fs::metadata(path).and_then(|m| m.modified()).map_or(0, ms_of)
}

fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

enum Job {
    Snapshot { envelope: Vec<u8>, epoch: u64, version: u64 },
    Delta(Vec<u8>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Hands writes to the background thread; dropping it stops the thread.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Snapshot { version, .. } => write!(f, "Snapshot({version})"),
            Job::Delta(b) => write!(f, "Delta({} bytes)", b.len()),
            Job::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Writer {
    /// Starts the writer thread for `disk`.
    pub fn spawn(disk: Disk) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("edge-persist".into()).spawn(move || {
            for job in rx {
                let done = match job {
                    Job::Snapshot { envelope, epoch, version } => {
                        disk.write_snapshot(&envelope, epoch, version)
                    }
                    Job::Delta(envelope) => disk.append_delta(&envelope),
                    Job::Flush(done) => {
                        let _ = done.send(());
                        Ok(())
                    }
                };
                if let Err(e) = done {
                    // Serving goes on; the disk copy is only older than it could be.
                    tracing::warn!(dir = %disk.dir().display(), error = %e, "state not persisted");
                }
            }
        })?;
        Ok(Self { tx })
    }

    pub fn snapshot(&self, envelope: Vec<u8>, epoch: u64, version: u64) {
        let _ = self.tx.send(Job::Snapshot { envelope, epoch, version });
    }

    pub fn delta(&self, envelope: Vec<u8>) {
        let _ = self.tx.send(Job::Delta(envelope));
    }

    /// Resolves once every write queued before it is done.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_protocol::envelope::{encode_delta, encode_snapshot};
    use nexus_protocol::{Delta, Snapshot};

    fn snap(version: u64) -> Vec<u8> {
        let s = Snapshot {
            epoch: 1,
            version,
            created_at_ms: 0,
            intended_shrink: false,
            records: vec![],
            contexts: nexus_protocol::KnownContexts::Any,
            credentials: Default::default(),
        };
        encode_snapshot(&s, None)
    }

    fn delta(epoch: u64, to: u64) -> Vec<u8> {
        let d = Delta {
            epoch,
            from_version: to - 1,
            to_version: to,
            committed_at_ms: 0,
            upserts: vec![],
            removals: vec![],
            contexts: None,
            credentials: Default::default(),
        };
        encode_delta(&d, None)
    }

    #[test]
    fn snapshot_and_log_round_trip_and_snapshot_trims_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("state")).unwrap();
        assert!(disk.load().unwrap().is_none());
        disk.write_snapshot(&snap(3), 1, 3).unwrap();
        for v in 4..=6 {
            disk.append_delta(&delta(1, v)).unwrap();
        }
        let saved = disk.load().unwrap().unwrap();
        assert_eq!(saved.snapshot, snap(3));
        assert_eq!(saved.deltas, vec![delta(1, 4), delta(1, 5), delta(1, 6)]);
        assert!(saved.saved_at_ms > 0);
        disk.write_snapshot(&snap(5), 1, 5).unwrap();
        assert_eq!(disk.load().unwrap().unwrap().deltas, vec![delta(1, 6)]);
    }

    #[test]
    fn a_torn_tail_ends_the_log_at_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        disk.write_snapshot(&snap(1), 1, 1).unwrap();
        disk.append_delta(&delta(1, 2)).unwrap();
        disk.append_delta(&delta(1, 3)).unwrap();
        let log = dir.path().join(LOG);
        let len = fs::metadata(&log).unwrap().len();
        OpenOptions::new().write(true).open(&log).unwrap().set_len(len - 5).unwrap();
        assert_eq!(disk.load().unwrap().unwrap().deltas, vec![delta(1, 2)]);
        // An absurd length prefix is a torn log too, not an allocation.
        fs::write(&log, u32::MAX.to_le_bytes()).unwrap();
        assert!(disk.load().unwrap().unwrap().deltas.is_empty());
    }

    #[tokio::test]
    async fn the_writer_applies_jobs_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        let w = Writer::spawn(disk.clone()).unwrap();
        w.snapshot(snap(1), 1, 1);
        w.delta(delta(1, 2));
        w.flush().await;
        let saved = disk.load().unwrap().unwrap();
        assert_eq!((saved.snapshot, saved.deltas), (snap(1), vec![delta(1, 2)]));
    }
}
