//! The aliases a run asks for, and how it picks the next one.

use std::path::Path;

use nexus_protocol::AliasFile;
use nexus_protocol::declarative::MAX_FILE_BYTES;
use rand::Rng;
use rand_distr::{Distribution, Zipf};

/// The resolve path prefix of the design's contract.
pub const RESOLVE_PREFIX: &str = "/api/aliases/resolve";

/// Why the key space could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyspaceError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is {len} bytes; at most {MAX_FILE_BYTES} are read")]
    TooLarge { path: String, len: u64 },
    #[error("{path}: {source}")]
    Parse { path: String, source: Box<nexus_protocol::FileError> },
    #[error("no live alias to ask for (all inactive or expired, or the file is empty)")]
    Empty,
    #[error("zipf exponent must be a finite number > 0, got {0}")]
    BadZipf(f64),
}

/// The resolve path and canonical of every live alias of a declarative
/// file, in file order.
pub fn live_aliases(path: &Path) -> Result<Vec<(String, String)>, KeyspaceError> {
    let shown = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|source| KeyspaceError::Read { path: shown.clone(), source })?
        .len();
    if len > MAX_FILE_BYTES as u64 {
        return Err(KeyspaceError::TooLarge { path: shown, len });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| KeyspaceError::Read { path: shown.clone(), source })?;
    let file = AliasFile::parse(&text)
        .map_err(|source| KeyspaceError::Parse { path: shown, source: Box::new(source) })?;
    let now = unix_now_secs();
    Ok(file
        .aliases
        .iter()
        .filter(|e| e.is_active && e.expires_at.is_none_or(|t| t.timestamp() > now))
        .map(|e| {
            (resolve_path(e.context.as_str(), e.alias.as_str()), e.canonical.as_str().to_owned())
        })
        .collect())
}

/// Resolve paths (`/api/aliases/resolve/{context}/{alias}`), in file order.
#[derive(Debug, Clone)]
pub struct Keyspace {
    paths: Vec<String>,
}

impl Keyspace {
    /// The live aliases of a declarative file (inactive or expired ones would
    /// only measure 404s).
    pub fn load(path: &Path) -> Result<Self, KeyspaceError> {
        Self::from_paths(live_aliases(path)?.into_iter().map(|(path, _)| path).collect())
    }

    pub fn from_paths(paths: Vec<String>) -> Result<Self, KeyspaceError> {
        if paths.is_empty() {
            return Err(KeyspaceError::Empty);
        }
        Ok(Self { paths })
    }

    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// `/api/aliases/resolve/{context}/{alias}`.
pub fn resolve_path(context: &str, alias: &str) -> String {
    format!("{RESOLVE_PREFIX}/{context}/{alias}")
}

fn unix_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How the next key is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyChoice {
    Uniform,
    /// Zipf with exponent `s`: the first alias of the file is the hottest.
    Zipf(f64),
}

/// A per-task picker of key indices.
#[derive(Debug, Clone)]
pub enum Picker {
    Uniform(usize),
    Zipf(Zipf<f64>),
}

impl Picker {
    pub fn new(choice: KeyChoice, len: usize) -> Result<Self, KeyspaceError> {
        if len == 0 {
            return Err(KeyspaceError::Empty);
        }
        match choice {
            KeyChoice::Uniform => Ok(Picker::Uniform(len)),
            KeyChoice::Zipf(s) => {
                if !(s.is_finite() && s > 0.0) {
                    return Err(KeyspaceError::BadZipf(s));
                }
                Zipf::new(len as f64, s).map(Picker::Zipf).map_err(|_| KeyspaceError::BadZipf(s))
            }
        }
    }

    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match self {
            Picker::Uniform(len) => rng.random_range(0..*len),
            // Zipf yields a rank in 1..=n as a float.
            Picker::Zipf(z) => (z.sample(rng) as usize).saturating_sub(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    #[test]
    fn zipf_prefers_the_first_keys_and_stays_in_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        let picker = Picker::new(KeyChoice::Zipf(1.1), 1000).unwrap();
        let mut hits = vec![0u32; 1000];
        for _ in 0..20_000 {
            hits[picker.pick(&mut rng)] += 1;
        }
        assert!(hits[0] > 10 * hits[500].max(1), "rank 1 {} rank 501 {}", hits[0], hits[500]);
        let uniform = Picker::new(KeyChoice::Uniform, 3).unwrap();
        assert!((0..100).all(|_| uniform.pick(&mut rng) < 3));
        assert!(Picker::new(KeyChoice::Zipf(0.0), 3).is_err());
    }

    #[test]
    fn load_keeps_only_live_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aliases.yaml");
        std::fs::write(
            &path,
            "aliases:
  - {context: frontend, alias: a-1, canonical: 'https://x/1'}
  - {context: backend, alias: a-2, canonical: 'https://x/2', is_active: false}
  - {context: system, alias: a-3, canonical: 'https://x/3', expires_at: 2001-01-01T00:00:00Z}
",
        )
        .unwrap();
        let keys = Keyspace::load(&path).unwrap();
        assert_eq!(keys.paths(), ["/api/aliases/resolve/frontend/a-1"]);
    }
}
