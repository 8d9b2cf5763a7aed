//! Measures (does not assert) what a large snapshot costs an edge once the
//! bytes have arrived: verify + decode, building the table and swapping it
//! in, and the resident memory the table holds.
//!
//! ```text
//! cargo run --release -p nexus-edge --example snapshot_scale -- [ALIASES]
//! ```
//!
//! Aliases are spread over three contexts with canonicals shaped like real
//! endpoints; a quarter carry a description, a tenth are inactive.

use std::time::Instant;

use nexus_edge::state::{SourceKind, State};
use nexus_protocol::envelope::{decode_snapshot, encode_snapshot};
use nexus_protocol::signing::{dev_signing_key, dev_verify_key};
use nexus_protocol::{AliasName, AliasRecord, Canonical, Context, Limits, Snapshot};

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let contexts = ["frontend", "backend", "system"].map(|c| Context::parse(c).expect("static"));
    let records = (1..=n)
        .map(|i| {
            Ok(AliasRecord {
                id: i as i64,
                context: contexts[(i % 3) as usize].clone(),
                alias: AliasName::parse(&format!("alias-{i}"))?,
                canonical: Canonical::parse(&format!(
                    "https://api.nexus.com/v1/resources/{i}/profile"
                ))?,
                description: (i % 4 == 0).then(|| format!("Generated alias number {i}")),
                expires_at_ms: None,
                is_active: i % 10 != 0,
                version: i,
                updated_at_ms: 1_700_000_000_000,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let snapshot = Snapshot {
        epoch: 1,
        version: n,
        created_at_ms: 1_700_000_000_000,
        intended_shrink: false,
        contexts: nexus_protocol::KnownContexts::of_records(&records),
        records,
        credentials: Default::default(),
    };
    let bytes = encode_snapshot(&snapshot, Some(&dev_signing_key()));
    drop(snapshot);
    println!("envelope: {:.1} MiB for {n} aliases", bytes.len() as f64 / (1 << 20) as f64);

    let t = Instant::now();
    let (_, decoded) = decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&dev_verify_key()))?;
    println!("verify + decode: {:.0?}", t.elapsed());
    drop(bytes);

    let state = State::new(SourceKind::Redis);
    let t = Instant::now();
    state.install_snapshot(&decoded, 1_700_000_000_000);
    println!("build table + swap: {:.0?}", t.elapsed());
    drop(decoded);
    // An upper bound on what the table holds: the process also keeps what
    // the allocator retained from building the inputs and decoding.
    println!("resident memory with the table: {:.0} MiB", rss_mib());
    Ok(())
}

/// Resident set size of this process, from /proc (Linux).
fn rss_mib() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}
