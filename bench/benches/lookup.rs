//! Resolve lookups in the edge's real table (`nexus_edge::table::Table`:
//! papaya keyed by `"{context}/{alias}"`, seeded foldhash, entries rendered
//! at load time into arena chunks) against `std::collections::HashMap`
//! holding the same keys and the same bytes (version, escaped canonical),
//! with std's SipHash and with foldhash. Hit and miss, at 10k and 1M
//! aliases. Each iteration looks up a batch of scattered keys sliced out of
//! resolve paths, as the request path does, and reads the canonical's bytes.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nexus_bench::{hit_paths, key_in, miss_paths, records};
use nexus_edge::table::{Table, key_of};

const BATCH: usize = 1024;

/// What the std maps hold per alias: the version and the escaped canonical.
type StdMap<S> = HashMap<Box<str>, (u64, Box<[u8]>), S>;

fn lookups(c: &mut Criterion) {
    for n in [10_000usize, 1_000_000] {
        let records = records(n);
        let table = Table::from_records(&records);
        let std_map: StdMap<std::hash::RandomState> = {
            let pinned = table.pin();
            records
                .iter()
                .map(|r| {
                    let key = key_of(r.context.as_str(), r.alias.as_str());
                    let hit = pinned.lookup(&key).expect("every record is in the table");
                    let value = (hit.version, hit.canonical_json().into());
                    (key, value)
                })
                .collect()
        };
        let fold_map: StdMap<foldhash::fast::RandomState> =
            std_map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
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
                            found += e.canonical_json().len();
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
                                found += e.canonical_json().len();
                            }
                        }
                        black_box(found)
                    })
                },
            );
            std_lookups(&mut group, "std_hashmap", n, &std_map, &paths);
            std_lookups(&mut group, "std_foldhash", n, &fold_map, &paths);
            group.finish();
        }
    }
}

/// Lookups in a std map under hasher `S`, reading what the table's do.
fn std_lookups<S: std::hash::BuildHasher>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    map: &StdMap<S>,
    paths: &[String],
) {
    group.bench_with_input(BenchmarkId::new(name, n), paths, |b, p| {
        b.iter(|| {
            let mut found = 0usize;
            for path in p {
                if let Some((_, canonical)) = map.get(key_in(path)) {
                    found += canonical.len();
                }
            }
            black_box(found)
        })
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
