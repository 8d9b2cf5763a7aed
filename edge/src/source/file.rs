//! The declarative file as a source: loaded at start, reloaded on SIGHUP
//! (when registered) and whenever its modification time or length changes
//! (polled). A file that does not parse is refused with one log line and the
//! state already served stays in place.
//!
//! File mode has no registry: the version counts successful loads from 1,
//! and the epoch is the process start time in seconds, since versions start
//! again at 1 with every process.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nexus_protocol::{AliasFile, FileError, Snapshot};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{Applier, Source, Update};
use crate::clock::now_ms;

/// How often the file's metadata is checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why the file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    // Boxed: a parse error is large and rare.
    Parse { path: PathBuf, source: Box<FileError> },
}

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(m: &Metadata) -> Self {
        Self { modified: m.modified().ok(), len: m.len() }
    }
}

/// The alias file, watched.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    epoch: u64,
    version: u64,
    stamp: Option<Stamp>,
    interval: tokio::time::Interval,
    hangup: Option<Signal>,
    /// A snapshot loaded before the source started, handed out first.
    pending: Option<Snapshot>,
}

impl FileSource {
    /// A source for `path`; nothing is read yet.
    pub fn new(path: impl Into<PathBuf>, poll: Duration) -> Self {
        let mut interval = tokio::time::interval(poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            path: path.into(),
            epoch: u64::try_from(now_ms() / 1000).unwrap_or(0),
            version: 0,
            stamp: None,
            interval,
            hangup: None,
            pending: None,
        }
    }

    /// Also reload on SIGHUP. Only the binary should ask for this: a
    /// process has one set of signal handlers.
    pub fn with_sighup(mut self) -> std::io::Result<Self> {
        self.hangup = Some(signal(SignalKind::hangup())?);
        Ok(self)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the file now, off the async threads. On success the
    /// snapshot carries the next version.
    pub async fn load(&mut self) -> Result<Snapshot, LoadError> {
        let started = std::time::Instant::now();
        let path = self.path.clone();
        let version = self.version + 1;
        let epoch = self.epoch;
        let loaded = tokio::task::spawn_blocking(move || read(&path, epoch, version)).await;
        let (snapshot, stamp) = match loaded {
            Ok(r) => r?,
            Err(e) => {
                let source = std::io::Error::other(e.to_string());
                return Err(LoadError::Read { path: self.path.clone(), source });
            }
        };
        self.version = version;
        self.stamp = Some(stamp);
        tracing::info!(
            path = %self.path.display(),
            version,
            aliases = snapshot.records.len(),
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "alias file read and parsed"
        );
        Ok(snapshot)
    }

    /// Loads the file now and hands the snapshot out as the first update.
    pub async fn preload(&mut self) -> Result<(), LoadError> {
        self.pending = Some(self.load().await?);
        Ok(())
    }

    async fn reload(&mut self, why: &str) -> Update {
        match self.load().await {
            Ok(s) => {
                tracing::info!(path = %self.path.display(), version = s.version, why, "aliases reloaded");
                Update::Snapshot(s)
            }
            Err(e) => {
                // Remember the stamp of the bad file so it is refused once,
                // not every poll; the next edit is looked at again.
                self.stamp = std::fs::metadata(&self.path).ok().map(|m| Stamp::of(&m));
                // The applier logs the refusal (once) and counts it.
                Update::Rejected(Box::new(e))
            }
        }
    }
}

/// Reads and parses the file; the stamp is taken before reading, so a write
/// that races with the read shows up as a change at the next poll.
fn read(path: &Path, epoch: u64, version: u64) -> Result<(Snapshot, Stamp), LoadError> {
    let io = |source| LoadError::Read { path: path.to_owned(), source };
    let stamp = Stamp::of(&std::fs::metadata(path).map_err(io)?);
    let text = std::fs::read_to_string(path).map_err(io)?;
    let file = AliasFile::parse(&text)
        .map_err(|e| LoadError::Parse { path: path.to_owned(), source: Box::new(e) })?;
    let now = now_ms();
    let records: Vec<_> =
        file.aliases.iter().zip(1..).map(|(entry, id)| entry.to_record(id, version, now)).collect();
    // No governance in file mode: a context is known when the file has an
    // alias in it.
    let contexts = nexus_protocol::KnownContexts::of_records(&records);
    let snapshot = Snapshot {
        epoch,
        version,
        created_at_ms: now,
        intended_shrink: true,
        records,
        contexts,
        credentials: Default::default(),
    };
    Ok((snapshot, stamp))
}

impl Source for FileSource {
    async fn next(&mut self, applier: &Applier) -> Option<Update> {
        if let Some(s) = self.pending.take() {
            return Some(Update::Snapshot(s));
        }
        loop {
            let hangup = async {
                match self.hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hung_up = tokio::select! {
                _ = hangup => true,
                _ = self.interval.tick() => false,
            };
            if hung_up {
                return Some(self.reload("SIGHUP").await);
            }
            applier.note_check();
            match std::fs::metadata(&self.path).map(|m| Stamp::of(&m)) {
                Ok(now) if Some(now) != self.stamp => {
                    return Some(self.reload("file changed").await);
                }
                Ok(_) => return Some(Update::Unchanged),
                // Gone or unreadable: keep serving and say nothing, so the
                // state ages and status reports it as degraded.
                Err(_) => {}
            }
        }
    }
}
