//! Loading the declarative alias file at 100k aliases: what an edge in
//! database-less mode pays at start and on every reload, YAML and JSON.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use nexus_protocol::AliasFile;

const N: usize = 100_000;

fn yaml(n: usize) -> String {
    let mut text = String::from("aliases:\n");
    for r in nexus_bench::records(n) {
        text.push_str(&format!(
            "  - context: {}\n    alias: {}\n    canonical: {}\n",
            r.context, r.alias, r.canonical
        ));
    }
    text
}

fn parse(c: &mut Criterion) {
    let yaml = yaml(N);
    let json = serde_json::to_string(&AliasFile::parse(&yaml).expect("generated file parses"))
        .expect("serialising a parsed file cannot fail");

    let mut group = c.benchmark_group("declarative_100k");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("yaml", |b| {
        b.iter(|| black_box(AliasFile::parse(black_box(&yaml)).map(|f| f.aliases.len())))
    });
    group.bench_function("json", |b| {
        b.iter(|| black_box(AliasFile::parse(black_box(&json)).map(|f| f.aliases.len())))
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
