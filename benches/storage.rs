//! Storage benchmarks (criterion).
//!
//! - `append/*`: sequential appends of 100 B and 1 KiB values under `No` and
//!   `EverySec`, one record per call and 64 KiB batches, in bytes/s of
//!   encoded records (compare with `benches/dd_compare.sh`).
//! - `always/*`: appends under `Always` from 1 and 50 threads (group commit).
//! - `lookup/*`: random key lookups in a large log (size from
//!   `REDLOG_BENCH_LOOKUP_MIB`, default 1024 MiB).
//!
//! Files go to `REDLOG_BENCH_DIR` (default `target/bench-data`), so the dd
//! comparison can use the same disk.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redlog::storage::record::record_bytes;
use redlog::storage::{LogOptions, SegmentedLog, SyncPolicy};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bench_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("REDLOG_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"));
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(name: &str, sync: SyncPolicy) -> SegmentedLog {
    let opts = LogOptions {
        sync,
        ..LogOptions::default()
    };
    SegmentedLog::open(bench_dir(name), opts).expect("open").0
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    for (policy, pname) in [(SyncPolicy::No, "no"), (SyncPolicy::EverySec, "everysec")] {
        for value_len in [100usize, 1024] {
            let value = vec![0xabu8; value_len];
            // One record per call.
            g.throughput(Throughput::Bytes(record_bytes(value_len)));
            let name = format!("{pname}-{value_len}B-single");
            let log = open(&name, policy);
            let mut k = 0u128;
            g.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter(|| {
                    k += 1;
                    log.append(k, &value).expect("append");
                })
            });
            log.destroy().expect("destroy");
            // 64 KiB batches (what a server flushing a pipeline writes).
            let per_batch = (64 * 1024 / record_bytes(value_len)) as usize;
            g.throughput(Throughput::Bytes(
                record_bytes(value_len) * per_batch as u64,
            ));
            let name = format!("{pname}-{value_len}B-batch64k");
            let log = open(&name, policy);
            let mut k = 0u128;
            g.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter(|| {
                    let batch: Vec<(u128, &[u8])> = (0..per_batch)
                        .map(|_| {
                            k += 1;
                            (k, &value[..])
                        })
                        .collect();
                    log.append_batch(&batch).expect("append");
                })
            });
            log.destroy().expect("destroy");
        }
    }
    g.finish();
}

fn always(c: &mut Criterion) {
    let mut g = c.benchmark_group("always");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 50] {
        let name = format!("{threads}-threads-100B");
        let log = Arc::new(open(&name, SyncPolicy::Always));
        let next = Arc::new(AtomicU64::new(1));
        g.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(threads as u64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        let (log, next) = (&log, &next);
                        s.spawn(move || {
                            let value = [7u8; 100];
                            let mut done = 0;
                            while done < per {
                                // Keys come from a shared counter; a thread that
                                // loses the race for a key takes the next one.
                                let k = u128::from(next.fetch_add(1, Ordering::SeqCst));
                                if log.append(k, &value).is_ok() {
                                    done += 1;
                                }
                            }
                        });
                    }
                });
                // Scale to `iters` appends (threads * per >= iters).
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per * threads as u64) as f64)
            })
        });
        drop(log);
    }
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let mib: u64 = std::env::var("REDLOG_BENCH_LOOKUP_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let value = vec![0x5au8; 1024];
    let n = mib * 1024 * 1024 / record_bytes(value.len());
    let log = open("lookup", SyncPolicy::No);
    let t = Instant::now();
    let chunk = 64u64;
    let mut k = 0u64;
    while k < n {
        let batch: Vec<(u128, &[u8])> = (k..(k + chunk).min(n))
            .map(|i| (u128::from(i) << 64, &value[..]))
            .collect();
        log.append_batch(&batch).expect("append");
        k += chunk;
    }
    log.sync().expect("sync");
    eprintln!(
        "lookup log: {} records, {} MiB, {} segments, built in {:?}",
        n,
        log.total_bytes() >> 20,
        log.segment_count(),
        t.elapsed()
    );
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(1));
    let mut x = 0x9e3779b97f4a7c15u64;
    g.bench_function(
        BenchmarkId::from_parameter(format!("{mib}MiB-1KiB-records")),
        |b| {
            b.iter(|| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = u128::from(x % n) << 64;
                let r = log.get(key).expect("get");
                black_box(r.map(|r| r.value.len()))
            })
        },
    );
    g.finish();
    log.destroy().expect("destroy");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = append, always, lookup
}
criterion_main!(benches);
