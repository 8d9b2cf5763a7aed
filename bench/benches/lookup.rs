//! Resolve lookups: the edge's table layout (papaya keyed by
//! `"{context}/{alias}"`, pinned per request, value rendered at load time)
//! against `std::collections::HashMap` with the same keys and values.
//! Hit and miss, at 10k and 1M aliases. Each iteration looks up a batch of
//! scattered keys sliced out of resolve paths, as the request path does.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nexus_bench::{hit_paths, key, key_in, miss_paths, record};

const BATCH: usize = 1024;

/// What the edge stores per alias: the rendered body and version header.
struct Entry {
    body: Box<[u8]>,
    version: Box<str>,
}

fn entry(i: usize) -> Entry {
    let r = record(i);
    Entry {
        body: format!("{{\"canonical_name\":\"{}\"}}", r.canonical).into_bytes().into(),
        version: r.version.to_string().into(),
    }
}

fn lookups(c: &mut Criterion) {
    for n in [10_000usize, 1_000_000] {
        let papaya: papaya::HashMap<Box<str>, Entry> = papaya::HashMap::with_capacity(n);
        let mut std_map: HashMap<Box<str>, Entry> = HashMap::with_capacity(n);
        {
            let pinned = papaya.pin();
            for i in 1..=n {
                pinned.insert(key(i).into(), entry(i));
                std_map.insert(key(i).into(), entry(i));
            }
        }
        for (kind, paths) in [("hit", hit_paths(n, BATCH)), ("miss", miss_paths(n, BATCH))] {
            let mut group = c.benchmark_group(format!("lookup_{kind}"));
            group.throughput(Throughput::Elements(BATCH as u64));
            group.sample_size(30).measurement_time(Duration::from_secs(3));
            group.warm_up_time(Duration::from_secs(1));
            group.bench_with_input(BenchmarkId::new("papaya_pin_per_lookup", n), &paths, |b, p| {
                b.iter(|| {
                    let mut found = 0usize;
                    for path in p {
                        // One pin per request, as the edge does.
                        if let Some(e) = papaya.pin().get(key_in(path)) {
                            found += e.body.len() + e.version.len();
                        }
                    }
                    black_box(found)
                })
            });
            // The same without the per-lookup pin: what the pin itself costs.
            group.bench_with_input(BenchmarkId::new("papaya_pinned_once", n), &paths, |b, p| {
                let pinned = papaya.pin();
                b.iter(|| {
                    let mut found = 0usize;
                    for path in p {
                        if let Some(e) = pinned.get(key_in(path)) {
                            found += e.body.len() + e.version.len();
                        }
                    }
                    black_box(found)
                })
            });
            group.bench_with_input(BenchmarkId::new("std_hashmap", n), &paths, |b, p| {
                b.iter(|| {
                    let mut found = 0usize;
                    for path in p {
                        if let Some(e) = std_map.get(key_in(path)) {
                            found += e.body.len() + e.version.len();
                        }
                    }
                    black_box(found)
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
