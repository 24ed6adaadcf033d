//! LOGPARSE throughput: PARSE + template mining of HDFS lines in process
//! (one core), with the default (typed) miner and with `MINER DRAIN`.
//! Target: at least 2M lines/s per core for the engine.
//!
//! Run: `cargo bench --bench logparse -- --warm-up-time 1 --measurement-time 3`.
//! Lines come from Loghub's HDFS 2k sample (`tests/data/loghub`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redlog::logparse::{builtin, lines, Format, Ingestor, MinerKind};
use std::hint::black_box;
use std::sync::Arc;

fn hdfs_lines() -> Vec<Vec<u8>> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loghub/HDFS_2k.log");
    let text = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    lines(&text).map(|l| l.to_vec()).collect()
}

/// The built-in `hdfs` format (Loghub's settings) with miner `kind`.
fn hdfs(kind: MinerKind) -> Ingestor {
    let (_, mut spec) = builtin::specs()
        .into_iter()
        .find(|(n, _)| *n == "hdfs")
        .expect("built-in hdfs");
    spec.miner = kind;
    Ingestor::new(Arc::new(Format::compile(spec).expect("hdfs compiles")))
}

fn parse_and_mine(c: &mut Criterion) {
    let lines = hdfs_lines();
    let mut g = c.benchmark_group("logparse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    for (name, kind) in [
        ("hdfs_parse_mine_ts", MinerKind::Typed),
        ("hdfs_parse_mine_ts_drain", MinerKind::Drain),
    ] {
        let mut ing = hdfs(kind);
        // Warm the miner: steady state is lines joining known templates.
        for l in &lines {
            let _ = ing.parse(l, 2024);
        }
        g.bench_function(name, |b| {
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
    }
    g.finish();
}

criterion_group!(benches, parse_and_mine);
criterion_main!(benches);
