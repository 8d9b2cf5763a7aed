//! The dev state directory (`.nexus-dev/` by default): one running `dev`
//! per directory (a lock), the secrets that make tokens and the disk copy
//! survive a restart, and where PostgreSQL and the edge keep their data.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// A state directory this process holds the lock of.
#[derive(Debug)]
pub(crate) struct Home {
    dir: PathBuf,
    /// Held open for the lock; the kernel drops the lock when the process
    /// ends, however it ends.
    _lock: File,
}

/// What is generated once per directory and kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Secrets {
    /// `NEXUS_SIGNING_KEY`: the seed that signs snapshots and deltas.
    pub signing_key: String,
    /// `NEXUS_TOKEN_SIGNING_KEY`: the Ed25519 key (PKCS#8 PEM) that signs
    /// tokens; the edge holds only its public half. Added to an older
    /// directory's file on first use.
    #[serde(default)]
    pub token_signing_key: Option<String>,
}

impl Home {
    /// Creates `dir` if needed and takes its lock; with `reset`, removes
    /// everything else in it first. Refuses when another `dev` holds it.
    pub(crate) fn open(dir: &Path, reset: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
        let path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
                bail!(
                    "nexus dev is already running on {} (pid {}); stop it first, or pass \
                     --dir to run another one",
                    dir.display(),
                    pid.trim()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        if reset {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_name() == "lock" {
                    continue;
                }
                let p = entry.path();
                let removed =
                    if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                removed.with_context(|| format!("--reset: removing {}", p.display()))?;
            }
        }
        std::fs::write(dir.join("pid"), std::process::id().to_string())?;
        Ok(Self { dir, _lock: lock })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// PostgreSQL's data directory, when dev runs its own.
    pub(crate) fn postgres(&self) -> PathBuf {
        self.dir.join("postgres")
    }

    /// The edge's last-known-good copy.
    pub(crate) fn edge(&self) -> PathBuf {
        self.dir.join("edge")
    }

    /// The secrets of this directory, made on first use (readable by the
    /// owner only).
    pub(crate) fn secrets(&self) -> anyhow::Result<Secrets> {
        let path = self.dir.join("secrets.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut secrets: Secrets = serde_json::from_str(&text).with_context(|| {
                    format!("{} is damaged; start with --reset", path.display())
                })?;
                if secrets.token_signing_key.is_none() {
                    secrets.token_signing_key = Some(token_key());
                    let tmp = self.dir.join("secrets.json.tmp");
                    write_private(&tmp, &secrets, false)?;
                    std::fs::rename(&tmp, &path)
                        .with_context(|| format!("replacing {}", path.display()))?;
                }
                Ok(secrets)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secrets =
                    Secrets { signing_key: random_hex(), token_signing_key: Some(token_key()) };
                write_private(&path, &secrets, true)?;
                Ok(secrets)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Writes `secrets` readable by the owner only.
fn write_private(path: &Path, secrets: &Secrets, new: bool) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .create_new(new)
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(serde_json::to_string_pretty(secrets)?.as_bytes())?;
    Ok(())
}

/// A fresh Ed25519 token signing key, as PKCS#8 PEM.
fn token_key() -> String {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    nexus_protocol::jwk::signing_key_pem(&nexus_protocol::signing::SigningKey::from_bytes(&seed))
}

/// 32 random bytes as 64 hex digits.
fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dev_per_directory_and_secrets_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::open(tmp.path(), false).unwrap();
        let e = Home::open(tmp.path(), false).unwrap_err().to_string();
        assert!(
            e.contains("already running") && e.contains(&std::process::id().to_string()),
            "{e}"
        );
        let first = home.secrets().unwrap();
        assert_eq!(first.signing_key.len(), 64);
        assert_eq!(home.secrets().unwrap().signing_key, first.signing_key);
        let token_key = first.token_signing_key.clone().unwrap();
        assert!(nexus_protocol::jwk::parse_signing_key(&token_key).is_ok());
        assert_eq!(home.secrets().unwrap().token_signing_key, Some(token_key));
        // A directory from before token keys gets one, kept from then on
        // (its `secret_key`, no longer used, is read past and dropped).
        let old = serde_json::json!({"secret_key": "a", "signing_key": "b"});
        std::fs::write(tmp.path().join("secrets.json"), old.to_string()).unwrap();
        let added = home.secrets().unwrap().token_signing_key.unwrap();
        assert_eq!(home.secrets().unwrap().token_signing_key, Some(added));
        drop(home);
        // --reset keeps nothing but the lock.
        let home = Home::open(tmp.path(), true).unwrap();
        assert_ne!(home.secrets().unwrap().signing_key, first.signing_key);
    }
}
