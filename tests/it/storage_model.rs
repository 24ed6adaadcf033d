//! Property test: random appends, reads, truncations, trims and reopens
//! against a `Vec` model (redb-style reference model).

use crate::storage_common as common;

use common::*;
use proptest::prelude::*;
use redlog::storage::fs::CrashMode;
use redlog::storage::{FaultyFs, Record, SegmentedLog, SyncPolicy};
use std::path::Path;

#[derive(Debug, Clone)]
enum Op {
    /// Batch of (key gap, value length).
    Append(Vec<(u64, usize)>),
    Read {
        from: usize,
        span: u64,
        limit: usize,
    },
    ReadRev {
        from: usize,
        span: u64,
        limit: usize,
    },
    Truncate(usize),
    Trim(usize),
    Reopen,
    /// Power loss after a sync: everything synced survives.
    SyncCrash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((prop_oneof![3 => 1u64..5, 1 => 5u64..1_000_000], 0usize..300), 1..8).prop_map(Op::Append),
        2 => (any::<usize>(), 0u64..5000, 1usize..20).prop_map(|(from, span, limit)| Op::Read { from, span, limit }),
        2 => (any::<usize>(), 0u64..5000, 1usize..20).prop_map(|(from, span, limit)| Op::ReadRev { from, span, limit }),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => any::<usize>().prop_map(Op::Trim),
        1 => Just(Op::Reopen),
        1 => Just(Op::SyncCrash),
    ]
}

/// A key near the model's keys: an existing key, or one just off it.
fn pick(model: &[Record], i: usize) -> u128 {
    if model.is_empty() {
        return i as u128 % 7;
    }
    let k = model[i % model.len()].key;
    match (i / model.len().max(1)) % 3 {
        0 => k,
        1 => k.saturating_sub(1),
        _ => k.saturating_add(1),
    }
}

fn run(ops: Vec<Op>) {
    let fs = FaultyFs::new();
    let dir = Path::new("/m/log");
    let opts = || faulty_opts(&fs, SyncPolicy::No, 700);
    let mut log = open(dir, opts());
    let mut model: Vec<Record> = Vec::new();
    for op in ops {
        match op {
            Op::Append(batch) => {
                let mut k = model.last().map_or(0, |r| r.key);
                let recs: Vec<Record> = batch
                    .iter()
                    .map(|&(gap, len)| {
                        k += u128::from(gap);
                        Record {
                            key: k,
                            value: vec![(k % 251) as u8; len],
                        }
                    })
                    .collect();
                let refs: Vec<(u128, &[u8])> = recs.iter().map(|r| (r.key, &r.value[..])).collect();
                log.append_batch(&refs).expect("append");
                model.extend(recs);
            }
            Op::Read { from, span, limit } => {
                let from = pick(&model, from);
                let to = from.saturating_add(u128::from(span));
                let want: Vec<_> = model
                    .iter()
                    .filter(|r| r.key >= from && r.key <= to)
                    .take(limit)
                    .cloned()
                    .collect();
                assert_eq!(log.read_range(from, to, limit).expect("read"), want);
            }
            Op::ReadRev { from, span, limit } => {
                let hi = pick(&model, from);
                let lo = hi.saturating_sub(u128::from(span));
                let want: Vec<_> = model
                    .iter()
                    .rev()
                    .filter(|r| r.key <= hi && r.key >= lo)
                    .take(limit)
                    .cloned()
                    .collect();
                assert_eq!(log.read_range_rev(hi, lo, limit).expect("rev"), want);
            }
            Op::Truncate(i) => {
                let k = pick(&model, i);
                log.truncate_after(k).expect("truncate");
                model.retain(|r| r.key <= k);
            }
            Op::Trim(i) => {
                let k = pick(&model, i);
                log.delete_segments_before(k).expect("trim");
                let first = log.first_key();
                let removed: Vec<_> = model
                    .iter()
                    .filter(|r| first.is_none_or(|f| r.key < f))
                    .collect();
                assert!(
                    removed.iter().all(|r| r.key < k),
                    "trim removed a key >= {k}"
                );
                model.retain(|r| first.is_some_and(|f| r.key >= f));
                assert_eq!(
                    model.is_empty(),
                    log.last_key().is_none(),
                    "newest segment kept"
                );
            }
            Op::Reopen => {
                drop(log);
                log = open(dir, opts());
            }
            Op::SyncCrash => {
                log.sync().expect("sync");
                std::mem::forget(log);
                fs.crash(CrashMode::DropUnsynced);
                log = open(dir, opts());
            }
        }
        assert_eq!(log.last_key(), model.last().map(|r| r.key));
        if log.segment_count() > 0 {
            assert_eq!(log.first_key(), model.first().map(|r| r.key));
        }
    }
    assert_eq!(all(&log), model);
    let rev: Vec<_> = log
        .iter_rev_from(u128::MAX)
        .collect::<Result<_, _>>()
        .expect("rev");
    assert_eq!(rev, model.iter().rev().cloned().collect::<Vec<_>>());
    drop(log);
    let log: SegmentedLog = open(dir, opts());
    assert_eq!(all(&log), model);
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(256))]

    #[test]
    fn log_matches_vec_model(ops in prop::collection::vec(op(), 1..100)) {
        run(ops);
    }
}
