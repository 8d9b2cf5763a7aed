//! Snapshots at 1M aliases: signed encode (what the control plane
//! publishes), verified decode (what an edge does before applying: length,
//! BLAKE3 content hash, Ed25519 signature, bounded bincode) and apply (what
//! it does next: build the table, render every body, swap it in).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use nexus_edge::state::{SourceKind, State};
use nexus_protocol::Limits;
use nexus_protocol::envelope::{decode_snapshot, encode_snapshot};

const N: usize = 1_000_000;
const NOW_MS: i64 = 1_700_000_000_000;

fn codec(c: &mut Criterion) {
    let snapshot = nexus_bench::snapshot(N);
    let signing = SigningKey::from_bytes(&[7; 32]);
    let verifying = signing.verifying_key();
    let bytes = encode_snapshot(&snapshot, Some(&signing));

    let mut group = c.benchmark_group("snapshot_1m");
    // Each iteration takes a good fraction of a second: few, flat samples.
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode_signed", |b| {
        b.iter(|| black_box(encode_snapshot(black_box(&snapshot), Some(&signing))))
    });
    group.bench_function("decode_verified", |b| {
        b.iter(|| {
            let decoded = decode_snapshot(black_box(&bytes), &Limits::SNAPSHOT, Some(&verifying));
            black_box(decoded.map(|(_, s)| s.records.len()).unwrap_or(0))
        })
    });
    // From here on a sample is one record, not one byte.
    group.throughput(Throughput::Elements(N as u64));
    // Into an empty state, as at start: the state (and its table) is
    // dropped outside the timed part.
    group.bench_function("apply", |b| {
        b.iter_batched(
            || State::new(SourceKind::Redis),
            |state| {
                state.install_snapshot(black_box(&snapshot), NOW_MS);
                state
            },
            BatchSize::PerIteration,
        )
    });
    // Over a state that already holds 1M aliases, as on a resync: the swap
    // frees the old table on this thread, and that is part of the cost.
    let state = State::new(SourceKind::Redis);
    state.install_snapshot(&snapshot, NOW_MS);
    group.bench_function("apply_replacing", |b| {
        b.iter(|| black_box(state.install_snapshot(black_box(&snapshot), NOW_MS)))
    });
    group.finish();
    println!("snapshot_1m envelope: {} bytes for {N} records", bytes.len());
}

criterion_group!(benches, codec);
criterion_main!(benches);
