//! Crash consistency through the fault-injecting file system: power loss
//! keeps only fsynced bytes, no acknowledged append is lost under `Always`,
//! failed writes and fsyncs are sticky, group commit shares fsyncs.

use crate::storage_common as common;

use common::*;
use redlog::storage::fs::CrashMode;
use redlog::storage::{Error, FaultyFs, SegmentedLog, SyncPolicy};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DIR: &str = "/data/wal";

fn keys(log: &SegmentedLog) -> Vec<u128> {
    all(log).into_iter().map(|r| r.key).collect()
}

#[test]
fn power_loss_keeps_only_synced_bytes() {
    for mode in [
        CrashMode::DropUnsynced,
        CrashMode::KeepTornPrefix { seed: 7 },
        CrashMode::KeepTornPrefix { seed: 99 },
    ] {
        let fs = FaultyFs::new();
        let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, 1 << 20));
        for k in 1..=50u128 {
            log.append(k, &value(k)).expect("append");
        }
        log.sync().expect("sync");
        for k in 51..=100u128 {
            log.append(k, &value(k)).expect("append");
        }
        std::mem::forget(log); // no clean-close sync: the power went out
        fs.crash(mode);
        let (log, report) =
            SegmentedLog::open(DIR, faulty_opts(&fs, SyncPolicy::No, 1 << 20)).expect("reopen");
        let got = keys(&log);
        match mode {
            CrashMode::DropUnsynced => {
                assert_eq!(got, (1..=50).collect::<Vec<_>>());
                assert!(report.torn_tail.is_none());
            }
            CrashMode::KeepTornPrefix { .. } => {
                assert!(got.len() >= 50, "synced records survive");
                assert_eq!(
                    got,
                    (1..=got.len() as u128).collect::<Vec<_>>(),
                    "a prefix survives"
                );
            }
        }
        for r in all(&log) {
            assert_eq!(r.value, value(r.key));
        }
    }
}

/// Appends from `threads` threads with keys from a shared counter; records
/// acknowledged keys. Stops when an append fails with an I/O error.
fn concurrent_appends(log: &Arc<SegmentedLog>, threads: usize, per_thread: usize) -> Vec<u128> {
    let next = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (log, next, acked) = (log.clone(), next.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut done = 0;
                while done < per_thread {
                    let k = u128::from(next.fetch_add(1, Ordering::SeqCst));
                    match log.append(k, &value(k)) {
                        Ok(_) => {
                            acked.lock().expect("lock").push(k);
                            done += 1;
                        }
                        Err(Error::KeyOrder { .. }) => {} // lost the race for this key
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("join");
    }
    let mut v = acked.lock().expect("lock").clone();
    v.sort_unstable();
    v
}

#[test]
fn always_loses_no_acknowledged_append() {
    for (i, mode) in [
        CrashMode::DropUnsynced,
        CrashMode::KeepTornPrefix { seed: 3 },
    ]
    .into_iter()
    .enumerate()
    {
        let fs = FaultyFs::new();
        fs.set_sync_latency(Duration::from_micros(200));
        let log = Arc::new(open(
            Path::new(DIR),
            faulty_opts(&fs, SyncPolicy::Always, 4096),
        ));
        // The disk dies after some syncs; appends in flight fail.
        fs.fail_syncs_after(40 + 25 * i as u64);
        let acked = concurrent_appends(&log, 8, 1000);
        assert!(!acked.is_empty());
        assert!(log.is_failed());
        drop(log);
        fs.crash(mode);
        let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::Always, 4096));
        let got = keys(&log);
        for k in &acked {
            assert!(got.binary_search(k).is_ok(), "acknowledged key {k} lost");
        }
    }
}

#[test]
fn group_commit_shares_fsyncs() {
    let fs = FaultyFs::new();
    fs.set_sync_latency(Duration::from_millis(1));
    let log = Arc::new(open(
        Path::new(DIR),
        faulty_opts(&fs, SyncPolicy::Always, 1 << 30),
    ));
    let before = fs.sync_count();
    let acked = concurrent_appends(&log, 16, 40);
    let syncs = fs.sync_count() - before;
    assert_eq!(acked.len(), 640);
    assert!(
        syncs * 4 <= acked.len() as u64,
        "{syncs} fsyncs for {} appends",
        acked.len()
    );
    assert_eq!(keys(&log), acked);
}

#[test]
fn eio_on_fsync_is_sticky_and_reopen_recovers_durable_prefix() {
    let fs = FaultyFs::new();
    let log = open(
        Path::new(DIR),
        faulty_opts(&fs, SyncPolicy::Always, 1 << 20),
    );
    for k in 1..=10u128 {
        log.append(k, &value(k)).expect("append");
    }
    fs.fail_syncs_after(0);
    assert!(matches!(log.append(11, b"x"), Err(Error::Io(_))));
    assert!(log.is_failed());
    assert!(log.failure().is_some());
    fs.clear_faults(); // the disk "works" again: the log must still refuse
    assert!(matches!(log.append(12, b"y"), Err(Error::PreviousIo(_))));
    assert!(matches!(log.sync(), Err(Error::PreviousIo(_))));
    assert!(matches!(log.truncate_after(5), Err(Error::PreviousIo(_))));
    // Reads still work.
    assert_eq!(log.read_range(1, 10, 100).expect("read").len(), 10);
    drop(log);
    fs.crash(CrashMode::DropUnsynced);
    let log = open(
        Path::new(DIR),
        faulty_opts(&fs, SyncPolicy::Always, 1 << 20),
    );
    assert_eq!(keys(&log), (1..=10).collect::<Vec<_>>());
    log.append(11, b"again").expect("append after restart");
}

#[test]
fn eio_on_write_and_torn_write_are_sticky() {
    let fs = FaultyFs::new();
    let log = open(
        Path::new(DIR),
        faulty_opts(&fs, SyncPolicy::EverySec, 1 << 20),
    );
    log.append(1, b"one").expect("append");
    fs.fail_writes_after(0);
    assert!(matches!(log.append(2, b"two"), Err(Error::Io(_))));
    fs.clear_faults();
    assert!(matches!(log.append(3, b"three"), Err(Error::PreviousIo(_))));
    drop(log);

    let log = open(
        Path::new(DIR),
        faulty_opts(&fs, SyncPolicy::EverySec, 1 << 20),
    );
    assert_eq!(keys(&log), vec![1]);
    fs.tear_next_write(5);
    assert!(matches!(log.append(2, b"a torn record"), Err(Error::Io(_))));
    assert!(matches!(log.append(3, b"x"), Err(Error::PreviousIo(_))));
    drop(log);
    // Without a crash the torn bytes are in the file: recovery cuts them.
    let (log, report) =
        SegmentedLog::open(DIR, faulty_opts(&fs, SyncPolicy::EverySec, 1 << 20)).expect("open");
    assert!(report.torn_tail.is_some());
    assert_eq!(keys(&log), vec![1]);
}

#[test]
fn crash_at_every_sync_point_with_rolls() {
    // Small segments: syncs happen in appends, rolls and directory updates.
    for n in 0..60u64 {
        for mode in [
            CrashMode::DropUnsynced,
            CrashMode::KeepTornPrefix { seed: n + 1 },
        ] {
            let fs = FaultyFs::new();
            let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::Always, 300));
            fs.fail_syncs_after(n);
            let mut acked = Vec::new();
            for k in 1..=200u128 {
                match log.append(k, &value(k)) {
                    Ok(_) => acked.push(k),
                    Err(_) => break,
                }
            }
            drop(log);
            fs.crash(mode);
            let (log, _) = SegmentedLog::open(DIR, faulty_opts(&fs, SyncPolicy::Always, 300))
                .unwrap_or_else(|e| panic!("sync point {n} {mode:?}: {e}"));
            let got = keys(&log);
            assert_eq!(
                got,
                (1..=got.len() as u128).collect::<Vec<_>>(),
                "prefix at {n}"
            );
            assert!(
                got.len() >= acked.len(),
                "acked lost at sync point {n} {mode:?}"
            );
            let next = got.len() as u128 + 1;
            log.append(next, &value(next))
                .expect("append after recovery");
        }
    }
}
