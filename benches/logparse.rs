//! LOGPARSE throughput: PARSE + template mining of HDFS lines in process
//! (one core). Target: at least 1M lines/s.
//!
//! Run: `cargo bench --bench logparse -- --warm-up-time 1 --measurement-time 3`.
//! Lines come from Loghub's HDFS 2k sample (`tests/data/loghub`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redlog::logparse::{lines, Ingestor, Registry};
use std::hint::black_box;

fn hdfs_lines() -> Vec<Vec<u8>> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loghub/HDFS_2k.log");
    let text = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    lines(&text).map(|l| l.to_vec()).collect()
}

fn parse_and_mine(c: &mut Criterion) {
    let lines = hdfs_lines();
    let (format, _) = Registry::new().format(b"hdfs").expect("built-in hdfs");
    let mut ing = Ingestor::new(format);
    // Warm the miner: steady state is lines joining known templates.
    for l in &lines {
        let _ = ing.parse(l, 2024);
    }
    let mut g = c.benchmark_group("logparse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("hdfs_parse_mine_ts", |b| {
        b.iter(|| {
            let mut ids = 0u64;
            for l in &lines {
                let p = ing.parse(black_box(l), 2024).expect("parses");
                ids += p.learned.map_or(0, |l| l.id);
                black_box(p.record.ts);
            }
            ids
        })
    });
    g.finish();
}

criterion_group!(benches, parse_and_mine);
criterion_main!(benches);
