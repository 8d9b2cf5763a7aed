//! Resolve lookups in the edge's real table (`nexus_edge::table::Table`:
//! papaya keyed by `"{context}/{alias}"`, responses rendered at load time)
//! against `std::collections::HashMap` holding the same keys and the same
//! `Entry` values. Hit and miss, at 10k and 1M aliases. Each iteration
//! looks up a batch of scattered keys sliced out of resolve paths, as the
//! request path does.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nexus_bench::{hit_paths, key_in, miss_paths, records};
use nexus_edge::table::{Entry, Table, key_of};

const BATCH: usize = 1024;

fn lookups(c: &mut Criterion) {
    for n in [10_000usize, 1_000_000] {
        let records = records(n);
        let table = Table::from_records(&records);
        let std_map: HashMap<Box<str>, Entry> = records
            .iter()
            .map(|r| (key_of(r.context.as_str(), r.alias.as_str()), Entry::from_record(r)))
            .collect();
        drop(records);
        for (kind, paths) in [("hit", hit_paths(n, BATCH)), ("miss", miss_paths(n, BATCH))] {
            let mut group = c.benchmark_group(format!("lookup_{kind}"));
            group.throughput(Throughput::Elements(BATCH as u64));
            group.sample_size(30).measurement_time(Duration::from_secs(3));
            group.warm_up_time(Duration::from_secs(1));
            group.bench_with_input(BenchmarkId::new("edge_table", n), &paths, |b, p| {
                b.iter(|| {
                    let mut found = 0usize;
                    for path in p {
                        // One pin per request, as the edge does.
                        if let Some(e) = table.pin().lookup(key_in(path)) {
                            found += e.body.len();
                        }
                    }
                    black_box(found)
                })
            });
            // The same without the per-request pin: what the pin itself costs.
            group.bench_with_input(
                BenchmarkId::new("edge_table_pinned_once", n),
                &paths,
                |b, p| {
                    let pinned = table.pin();
                    b.iter(|| {
                        let mut found = 0usize;
                        for path in p {
                            if let Some(e) = pinned.lookup(key_in(path)) {
                                found += e.body.len();
                            }
                        }
                        black_box(found)
                    })
                },
            );
            group.bench_with_input(BenchmarkId::new("std_hashmap", n), &paths, |b, p| {
                b.iter(|| {
                    let mut found = 0usize;
                    for path in p {
                        if let Some(e) = std_map.get(key_in(path)) {
                            found += e.body.len();
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
