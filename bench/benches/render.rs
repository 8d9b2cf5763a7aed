//! Rendering resolve responses, which the edge does once per alias when a
//! snapshot or delta is applied (never per request): one body, and every
//! body of a 100k-alias table. Two renderings of the same bytes are
//! compared: a `serde_json::json!` value and a borrowed derive struct.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;

#[derive(Serialize)]
struct Body<'a> {
    canonical_name: &'a str,
}

fn via_value(canonical: &str) -> Vec<u8> {
    serde_json::json!({ "canonical_name": canonical }).to_string().into_bytes()
}

fn via_struct(canonical: &str) -> Vec<u8> {
    serde_json::to_vec(&Body { canonical_name: canonical }).unwrap_or_default()
}

fn render(c: &mut Criterion) {
    let one = nexus_bench::record(42);
    let canonical = one.canonical.as_str();
    assert_eq!(via_value(canonical), via_struct(canonical), "same bytes either way");

    let mut group = c.benchmark_group("render_body");
    group.sample_size(50).measurement_time(Duration::from_secs(2));
    group.bench_function("json_value", |b| b.iter(|| black_box(via_value(black_box(canonical)))));
    group.bench_function("derive_struct", |b| {
        b.iter(|| black_box(via_struct(black_box(canonical))))
    });
    group.finish();

    let n = 100_000;
    let records = nexus_bench::records(n);
    let mut group = c.benchmark_group("render_table");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    for (name, f) in
        [("json_value", via_value as fn(&str) -> Vec<u8>), ("derive_struct", via_struct)]
    {
        group.bench_with_input(BenchmarkId::new(name, n), &records, |b, rs| {
            b.iter(|| {
                let bodies: Vec<Vec<u8>> = rs.iter().map(|r| f(r.canonical.as_str())).collect();
                black_box(bodies.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
