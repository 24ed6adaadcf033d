//! Basic behaviour of `SegmentedLog`: append, read forwards and backwards,
//! rolling, trimming, truncation, errors, stats, atomic_write.

use crate::storage_common as common;

use common::*;
use redlog::storage::{
    atomic_write, Error, LogOptions, SegmentedLog, SyncPolicy, INDEX_INTERVAL_BYTES,
};
use std::time::Duration;

#[test]
fn append_and_read_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), real_opts(SyncPolicy::No, 1024));
    assert_eq!(
        (log.first_key(), log.last_key(), log.segment_count()),
        (None, None, 0)
    );
    let keys: Vec<u128> = (0..300).map(|i| (i as u128) * 3 + 10).collect();
    for &k in &keys {
        log.append(k, &value(k)).expect("append");
    }
    assert!(
        log.segment_count() > 5,
        "rolled by size: {}",
        log.segment_count()
    );
    assert_eq!(log.first_key(), Some(10));
    assert_eq!(log.last_key(), keys.last().copied());
    let expected: Vec<_> = keys.iter().map(|&k| rec(k)).collect();
    assert_eq!(all(&log), expected);

    // Every start key, present or absent, forwards and backwards.
    for from in 0..keys.last().copied().unwrap_or(0) + 3 {
        let fwd = log.read_range(from, from + 30, 4).expect("range");
        let want: Vec<_> = expected
            .iter()
            .filter(|r| r.key >= from && r.key <= from + 30)
            .take(4)
            .cloned()
            .collect();
        assert_eq!(fwd, want, "from {from}");
        let rev = log
            .read_range_rev(from, from.saturating_sub(30), 4)
            .expect("rev");
        let want: Vec<_> = expected
            .iter()
            .rev()
            .filter(|r| r.key <= from && r.key >= from.saturating_sub(30))
            .take(4)
            .cloned()
            .collect();
        assert_eq!(rev, want, "rev from {from}");
    }
    let rev_all: Vec<_> = log
        .iter_rev_from(u128::MAX)
        .collect::<Result<_, _>>()
        .expect("rev all");
    assert_eq!(rev_all, expected.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(log.get(13).expect("get"), Some(rec(13)));
    assert_eq!(log.get(14).expect("get"), None);

    // Reopen: same answers.
    let total = log.total_bytes();
    drop(log);
    let log = open(dir.path(), real_opts(SyncPolicy::No, 1024));
    assert_eq!(all(&log), expected);
    assert_eq!(log.total_bytes(), total);
}

/// Space reserved ahead of the append position (the WAL's setting) changes
/// neither the files' sizes nor what is read back, and sealed segments give
/// the reserve past their end back.
#[test]
fn preallocated_segments_keep_their_size_and_release_the_reserve() {
    use std::os::unix::fs::MetadataExt;
    const RESERVE: u64 = 256 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions {
        preallocate: RESERVE,
        ..real_opts(SyncPolicy::Always, 4096)
    };
    let log = open(dir.path(), opts.clone());
    let keys: Vec<u128> = (1..=400).collect();
    for &k in &keys[..300] {
        log.append(k, &value(k)).expect("append");
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let logs = |dir: &std::path::Path| -> Vec<std::fs::Metadata> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        v.sort();
        v.iter()
            .map(|p| std::fs::metadata(p).expect("metadata"))
            .collect()
    };
    let files = logs(dir.path());
    let sizes: u64 = files.iter().map(|m| m.len()).sum();
    assert_eq!(sizes, log.total_bytes(), "sizes are the bytes appended");
    for m in &files[..files.len() - 1] {
        // Sealed: at most the file's own blocks (rounded to 4 KiB pages),
        // not the 256 KiB reserve.
        assert!(
            m.blocks() * 512 < m.len().next_multiple_of(4096) + RESERVE / 2,
            "sealed segment of {} bytes holds {} bytes",
            m.len(),
            m.blocks() * 512
        );
    }
    drop(log);
    // Reopened: the same records; appends into a recovered segment work.
    let log = open(dir.path(), opts);
    for &k in &keys[300..] {
        log.append(k, &value(k)).expect("append");
    }
    let expected: Vec<_> = keys.iter().map(|&k| rec(k)).collect();
    assert_eq!(all(&log), expected);
    let sizes: u64 = logs(dir.path()).iter().map(|m| m.len()).sum();
    assert_eq!(sizes, log.total_bytes());
}

#[test]
fn large_segment_uses_index_for_reverse_and_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), real_opts(SyncPolicy::No, 1 << 30));
    let big = vec![7u8; 1000];
    let n = 200u128;
    let batch: Vec<(u128, &[u8])> = (0..n).map(|k| (k << 64 | 1, &big[..])).collect();
    log.append_batch(&batch).expect("batch");
    assert_eq!(log.segment_count(), 1);
    assert!(log.total_bytes() > 40 * INDEX_INTERVAL_BYTES);
    for k in [0u128, 1, 57, 199] {
        let r = log.read_range(k << 64, u128::MAX, 1).expect("range");
        assert_eq!(r[0].key, k << 64 | 1);
        let r = log.read_range_rev(k << 64 | 5, 0, 2).expect("rev");
        assert_eq!(r[0].key, k << 64 | 1);
        if k > 0 {
            assert_eq!(r[1].key, (k - 1) << 64 | 1);
        }
    }
}

#[test]
fn key_order_and_size_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), real_opts(SyncPolicy::No, 4096));
    log.append(5, b"a").expect("append");
    assert!(matches!(
        log.append(5, b"b"),
        Err(Error::KeyOrder { key: 5, last: 5 })
    ));
    assert!(matches!(log.append(4, b"b"), Err(Error::KeyOrder { .. })));
    assert!(matches!(
        log.append_batch(&[(6, b"x"), (6, b"y")]),
        Err(Error::KeyOrder { .. })
    ));
    assert!(matches!(
        log.append_batch(&[]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(all(&log).len(), 1, "a rejected batch writes nothing");
    assert!(!log.is_failed());
    log.append(u128::MAX, b"max").expect("append max");
    assert!(matches!(
        log.append(u128::MAX, b""),
        Err(Error::KeyOrder { .. })
    ));
    assert_eq!(
        log.read_range(6, u128::MAX, 10).expect("range"),
        vec![redlog::storage::Record {
            key: u128::MAX,
            value: b"max".to_vec()
        }]
    );
}

#[test]
fn roll_by_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = real_opts(SyncPolicy::No, 1 << 30);
    opts.segment_age_max = Some(Duration::from_millis(30));
    let log = open(dir.path(), opts);
    log.append(1, b"a").expect("append");
    log.append(2, b"b").expect("append");
    assert_eq!(log.segment_count(), 1);
    std::thread::sleep(Duration::from_millis(40));
    log.append(3, b"c").expect("append");
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.segments()[1].base, 3);
}

#[test]
fn truncate_and_trim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), real_opts(SyncPolicy::No, 512));
    for k in 1..=100u128 {
        log.append(k * 2, &value(k * 2)).expect("append");
    }
    let segs = log.segments();
    assert!(segs.len() > 4);
    // Truncate into the middle of an older segment.
    let cut = segs[2].base + 3;
    let removed = log.truncate_after(cut).expect("truncate");
    assert!(removed > 0);
    let want: Vec<_> = (1..=100u128)
        .map(|k| k * 2)
        .filter(|&k| k <= cut)
        .map(rec)
        .collect();
    assert_eq!(all(&log), want);
    assert_eq!(log.last_key(), want.last().map(|r| r.key));
    assert_eq!(log.segment_count(), 3);
    // Appending after truncation may reuse truncated keys (> new last key).
    let next = log.last_key().unwrap_or(0) + 1;
    log.append(next, &value(next))
        .expect("append after truncate");
    assert_eq!(log.truncate_after(u128::MAX).expect("noop"), 0);

    // Trim: segments whose keys are all below the bound, never the newest.
    let second = log.segments()[1].base;
    assert_eq!(log.delete_segments_before(second).expect("trim"), 1);
    assert_eq!(log.first_key(), Some(second));
    assert_eq!(log.delete_segments_before(u128::MAX).expect("trim all"), 1);
    assert_eq!(log.segment_count(), 1);
    drop(log);
    let log = open(dir.path(), real_opts(SyncPolicy::No, 512));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.last_key(), Some(next));
    // Truncating everything leaves an empty log that accepts any key.
    log.truncate_after(0).expect("truncate all");
    assert_eq!((log.last_key(), log.segment_count()), (None, 0));
    log.append(1, b"again").expect("append");
    log.destroy().expect("destroy");
    assert!(!dir.path().join("x").exists());
}

#[test]
fn destroy_removes_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("streams").join("00000000000000000001");
    let log = open(&path, real_opts(SyncPolicy::EverySec, 4096));
    log.append(1, b"x").expect("append");
    log.destroy().expect("destroy");
    assert!(!path.exists());
}

#[test]
fn everysec_syncs_in_background_and_sync_works() {
    let fs = redlog::storage::FaultyFs::new();
    let (log, _) =
        SegmentedLog::open("/d", faulty_opts(&fs, SyncPolicy::EverySec, 4096)).expect("open");
    log.append(1, b"x").expect("append");
    let before = fs.sync_count();
    std::thread::sleep(Duration::from_millis(1300));
    assert!(fs.sync_count() > before, "background fdatasync ran");
    log.append(2, b"y").expect("append");
    log.sync().expect("sync");
    drop(log);
    fs.crash(redlog::storage::fs::CrashMode::DropUnsynced);
    let log = open("/d".as_ref(), faulty_opts(&fs, SyncPolicy::EverySec, 4096));
    assert_eq!(log.last_key(), Some(2));
}

#[test]
fn atomic_write_replaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("checkpoint");
    atomic_write(&p, b"one").expect("write");
    atomic_write(&p, b"two").expect("write");
    assert_eq!(std::fs::read(&p).expect("read"), b"two");
    assert!(!dir.path().join("checkpoint.tmp").exists());
}

#[test]
fn log_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<SegmentedLog>();
}
