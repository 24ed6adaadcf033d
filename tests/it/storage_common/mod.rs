//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use redlog::storage::{FaultyFs, LogOptions, Record, RecoveryMode, SegmentedLog, SyncPolicy};
use std::path::Path;
use std::sync::Arc;

/// Options on the real file system.
pub fn real_opts(sync: SyncPolicy, segment_bytes: u64) -> LogOptions {
    LogOptions {
        sync,
        segment_bytes,
        ..LogOptions::default()
    }
}

/// Options on a fault-injecting in-memory file system.
pub fn faulty_opts(fs: &FaultyFs, sync: SyncPolicy, segment_bytes: u64) -> LogOptions {
    LogOptions {
        fs: Arc::new(fs.clone()),
        sync,
        segment_bytes,
        segment_age_max: None,
        recovery: RecoveryMode::TolerateTornTail,
        preallocate: 0,
    }
}

/// Deterministic value for key `k` (length varies with `k`).
pub fn value(k: u128) -> Vec<u8> {
    let len = (k % 97) as usize + 1;
    (0..len)
        .map(|i| (k as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

pub fn rec(k: u128) -> Record {
    Record {
        key: k,
        value: value(k),
    }
}

/// Every record of the log, ascending; panics on an error (test helper).
pub fn all(log: &SegmentedLog) -> Vec<Record> {
    log.iter().collect::<Result<Vec<_>, _>>().expect("read log")
}

pub fn open(dir: &Path, opts: LogOptions) -> SegmentedLog {
    SegmentedLog::open(dir, opts).expect("open log").0
}
