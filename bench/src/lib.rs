//! Inputs for the criterion suites in `benches/`, built outside the timed
//! loops and shared so every suite measures the same registry shape:
//! aliases `a-{i}` spread round-robin over `frontend`, `backend`, `system`,
//! as `nexus-loadtest gen` writes them.
//!
//! - `lookup`: the edge table (keyed `"{context}/{alias}"`) hit and miss at
//!   10k and 1M aliases, against `std::collections::HashMap`.
//! - `snapshot`: signed encode, verified decode and apply (building the
//!   edge's table) of a 1M-alias snapshot.
//! - `delta`: applying deltas of 1, 64 and 1024 changes to an edge holding
//!   1M aliases, and the signed delta envelope; inputs from [`delta`].
//! - `token`: bearer-token checks, cached (the edge's request path) and
//!   uncached (HS256 and claims every time).
//! - `render`: rendering resolve bodies (per alias, and a whole table).
//! - `declarative`: loading the alias file at 100k aliases.
//!
//! Run: `cargo bench -p nexus-bench` (a few minutes), or one suite with
//! `cargo bench -p nexus-bench --bench lookup`.

pub mod delta;

pub use delta::DeltaChain;

use nexus_protocol::{AliasName, AliasRecord, Canonical, Context, Snapshot};

/// Contexts of the synthetic registry.
pub const CONTEXTS: [&str; 3] = ["frontend", "backend", "system"];
/// The resolve path prefix; the edge's table key is what follows it.
pub const RESOLVE_PREFIX: &str = "/api/aliases/resolve/";

/// Record `i` (1-based) of the synthetic registry.
pub fn record(i: usize) -> AliasRecord {
    let context = CONTEXTS[(i - 1) % CONTEXTS.len()];
    let alias = format!("a-{i}");
    let canonical = format!("https://api.nexus.com/v1/{context}/{alias}");
    AliasRecord {
        id: i as i64,
        context: Context::parse(context).expect("static context is valid"),
        alias: AliasName::parse(&alias).expect("generated alias is valid"),
        canonical: Canonical::parse(&canonical).expect("generated canonical is valid"),
        description: None,
        expires_at_ms: None,
        is_active: true,
        version: i as u64,
        updated_at_ms: 1_700_000_000_000,
    }
}

/// `n` records.
pub fn records(n: usize) -> Vec<AliasRecord> {
    (1..=n).map(record).collect()
}

/// A snapshot of `n` records at version `n`.
pub fn snapshot(n: usize) -> Snapshot {
    Snapshot {
        epoch: 1,
        version: n as u64,
        created_at_ms: 1_700_000_000_000,
        intended_shrink: false,
        records: records(n),
        contexts: nexus_protocol::KnownContexts::Any,
        credentials: Default::default(),
    }
}

/// The table key of record `i`: `"{context}/{alias}"`.
pub fn key(i: usize) -> String {
    format!("{}/a-{i}", CONTEXTS[(i - 1) % CONTEXTS.len()])
}

/// `count` resolve paths of existing aliases among `1..=n`, in a
/// scattered order so consecutive lookups do not walk memory in order.
pub fn hit_paths(n: usize, count: usize) -> Vec<String> {
    scatter(n, count).map(|i| format!("{RESOLVE_PREFIX}{}", key(i))).collect()
}

/// `count` resolve paths in known contexts of aliases that do not exist.
pub fn miss_paths(n: usize, count: usize) -> Vec<String> {
    scatter(n, count)
        .map(|i| format!("{RESOLVE_PREFIX}{}/missing-{i}", CONTEXTS[i % CONTEXTS.len()]))
        .collect()
}

/// The table key within a resolve path (what the edge borrows per request).
pub fn key_in(path: &str) -> &str {
    path.strip_prefix(RESOLVE_PREFIX).unwrap_or(path)
}

/// `count` indices in `1..=n` from a fixed xorshift sequence: reproducible,
/// and free of a dependency on a random crate.
fn scatter(n: usize, count: usize) -> impl Iterator<Item = usize> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count).map(move |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize + 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_name_existing_keys_and_misses_do_not() {
        let n = 1000;
        let keys: std::collections::HashSet<String> = (1..=n).map(key).collect();
        let hits = hit_paths(n, 500);
        assert!(hits.iter().all(|p| keys.contains(key_in(p))));
        // Scattered, not sequential.
        assert!(hits.windows(2).filter(|w| w[0] < w[1]).count() < 400);
        assert!(miss_paths(n, 500).iter().all(|p| !keys.contains(key_in(p))));
        let r = record(4);
        assert_eq!(key(4), format!("{}/{}", r.context, r.alias));
        assert_eq!(r.context.as_str(), "frontend");
    }
}
