//! Deltas at the edge: `State::apply_delta` on a state holding 1M aliases,
//! for deltas of 1, 64 and 1024 changes (updates, re-creations and 1/16
//! removals; see `nexus_bench::DeltaChain`), and the signed delta envelope
//! an edge verifies and decodes before applying.
//!
//! Every iteration applies the next delta of a chain, so each is a real
//! apply, never a refused or stale one; the deltas are built outside the
//! timed part and dropped outside it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use nexus_bench::DeltaChain;
use nexus_edge::state::{Applied, SourceKind, State};
use nexus_protocol::Limits;
use nexus_protocol::envelope::{decode_delta, encode_delta};

const N: usize = 1_000_000;
const SIZES: [usize; 3] = [1, 64, 1024];
const NOW_MS: i64 = 1_700_000_000_000;

fn apply(c: &mut Criterion) {
    let snapshot = nexus_bench::snapshot(N);
    let mut group = c.benchmark_group("delta_apply_1m");
    group.sample_size(30).measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    for size in SIZES {
        // A fresh 1M state per size, so one size's removals cannot leave
        // holes that make another size's removals no-ops.
        let state = State::new(SourceKind::Redis);
        state.install_snapshot(&snapshot, NOW_MS);
        let mut chain = DeltaChain::new(N, size, state.epoch(), state.version());
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched_ref(
                || chain.next().expect("the chain is endless"),
                |delta| match state.apply_delta(black_box(delta), NOW_MS) {
                    Ok(Applied::Changed { aliases, .. }) => aliases,
                    // A refused delta would time nothing worth knowing.
                    other => panic!("delta to {} did not apply: {other:?}", delta.to_version),
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn envelope(c: &mut Criterion) {
    let signing = SigningKey::from_bytes(&[7; 32]);
    let verifying = signing.verifying_key();
    let mut group = c.benchmark_group("delta_envelope");
    group.sample_size(30).measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for size in SIZES {
        let delta = DeltaChain::new(N, size, 1, N as u64).next().expect("the chain is endless");
        let bytes = encode_delta(&delta, Some(&signing));
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("encode_signed", size), &delta, |b, d| {
            b.iter(|| black_box(encode_delta(black_box(d), Some(&signing))))
        });
        group.bench_with_input(BenchmarkId::new("decode_verified", size), &bytes, |b, bytes| {
            b.iter(|| {
                let decoded = decode_delta(black_box(bytes), &Limits::DELTA, Some(&verifying));
                black_box(decoded.map(|(_, d)| d.upserts.len()).unwrap_or(0))
            })
        });
        println!("delta_envelope: {} bytes for {size} changes", bytes.len());
    }
    group.finish();
}

criterion_group!(benches, apply, envelope);
criterion_main!(benches);
