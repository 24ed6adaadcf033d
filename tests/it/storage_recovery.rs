//! Recovery on open from damaged files on the real file system: every cut
//! point of the newest segment, garbage tails, flipped bits, lost indexes.

use crate::storage_common as common;

use common::*;
use redlog::storage::{Error, LogOptions, RecoveryMode, SegmentedLog, SyncPolicy};
use std::fs;
use std::path::{Path, PathBuf};

const SEGMENT_BYTES: u64 = 2048;

fn opts() -> LogOptions {
    real_opts(SyncPolicy::No, SEGMENT_BYTES)
}

/// A log with keys 1..=n (values vary in size); returns its segment paths.
fn build(dir: &Path, n: u128) -> Vec<PathBuf> {
    let log = open(dir, opts());
    for k in 1..=n {
        log.append(k, &value(k)).expect("append");
    }
    log.segments().into_iter().map(|s| s.log_path).collect()
}

fn index_of(log_path: &Path) -> PathBuf {
    log_path.with_extension("index")
}

/// Keys of the records whose frame ends at or before `cut` in `bytes`.
fn whole_records(bytes: &[u8], cut: usize) -> Vec<u128> {
    let mut out = Vec::new();
    let mut pos = 32;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if pos + 8 + len > cut {
            break;
        }
        out.push(u128::from_le_bytes(
            bytes[pos + 8..pos + 24].try_into().expect("16 bytes"),
        ));
        pos += 8 + len;
    }
    out
}

#[test]
fn truncate_newest_segment_at_every_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segs = build(dir.path(), 120);
    assert!(segs.len() >= 3);
    let newest = segs.last().expect("segments").clone();
    let log_bytes = fs::read(&newest).expect("read");
    let index_bytes = fs::read(index_of(&newest)).expect("read index");
    let older: Vec<u128> = {
        let log = open(dir.path(), opts());
        let first_newest = whole_records(&log_bytes, log_bytes.len())[0];
        all(&log)
            .into_iter()
            .map(|r| r.key)
            .filter(|&k| k < first_newest)
            .collect()
    };
    // Ends of the records of the newest segment.
    let boundaries: Vec<usize> = (33..=log_bytes.len())
        .filter(|&c| whole_records(&log_bytes, c).len() > whole_records(&log_bytes, c - 1).len())
        .collect();
    for cut in 0..=log_bytes.len() {
        fs::write(&newest, &log_bytes[..cut]).expect("cut");
        fs::write(index_of(&newest), &index_bytes).expect("restore index");
        let (log, report) =
            SegmentedLog::open(dir.path(), opts()).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let mut want = older.clone();
        if cut >= 32 {
            want.extend(whole_records(&log_bytes, cut));
        }
        let got: Vec<u128> = all(&log).into_iter().map(|r| r.key).collect();
        assert_eq!(got, want, "cut {cut}");
        for r in all(&log) {
            assert_eq!(r.value, value(r.key));
        }
        let damaged = report.torn_tail.is_some() || !report.removed_files.is_empty();
        let at_boundary = cut > 32 && boundaries.contains(&cut);
        assert_eq!(
            damaged, !at_boundary,
            "cut {cut}: torn tail reported iff not at a record boundary"
        );
        // A following append survives another reopen.
        let next = 1000 + cut as u128;
        log.append(next, &value(next))
            .expect("append after recovery");
        drop(log);
        let log = open(dir.path(), opts());
        let mut want2 = want.clone();
        want2.push(next);
        assert_eq!(
            all(&log).into_iter().map(|r| r.key).collect::<Vec<_>>(),
            want2,
            "cut {cut} after append"
        );
        drop(log);
        // Restore the original layout for the next cut.
        for e in fs::read_dir(dir.path()).expect("ls") {
            let p = e.expect("entry").path();
            let keep = segs.iter().any(|s| *s == p || index_of(s) == p);
            if !keep {
                fs::remove_file(&p).expect("rm");
            }
        }
    }
}

#[test]
fn garbage_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segs = build(dir.path(), 50);
    let newest = segs.last().expect("segs");
    let len = fs::metadata(newest).expect("meta").len();
    for garbage in [
        vec![0u8; 100],
        vec![0xffu8; 3],
        (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
    ] {
        let mut b = fs::read(newest).expect("read");
        b.truncate(len as usize);
        b.extend_from_slice(&garbage);
        fs::write(newest, &b).expect("write");
        let (log, report) = SegmentedLog::open(dir.path(), opts()).expect("open");
        let torn = report.torn_tail.expect("torn tail reported");
        assert_eq!(
            (torn.file.as_path(), torn.offset, torn.bytes_dropped),
            (newest.as_path(), len, garbage.len() as u64)
        );
        assert_eq!(all(&log).len(), 50);
        assert_eq!(fs::metadata(newest).expect("meta").len(), len);
    }
    // Strict refuses even a torn tail.
    let mut b = fs::read(newest).expect("read");
    b.extend_from_slice(&[1, 2, 3]);
    fs::write(newest, &b).expect("write");
    let strict = LogOptions {
        recovery: RecoveryMode::Strict,
        ..opts()
    };
    match SegmentedLog::open(dir.path(), strict) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file, offset), (newest.clone(), len))
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn flipped_bit_in_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segs = build(dir.path(), 50);
    let newest = segs.last().expect("segs");
    let mut b = fs::read(newest).expect("read");
    let last = b.len() - 3;
    b[last] ^= 0x04;
    let keys = whole_records(&b, b.len());
    fs::write(newest, &b).expect("write");
    let (log, report) = SegmentedLog::open(dir.path(), opts()).expect("open");
    assert!(report.torn_tail.is_some());
    assert_eq!(log.last_key(), Some(49));
    assert_eq!(keys.last(), Some(&50));
}

#[test]
fn flipped_bit_mid_newest_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segs = build(dir.path(), 50);
    let newest = segs.last().expect("segs");
    let mut b = fs::read(newest).expect("read");
    b[32 + 8 + 16] ^= 0x01; // value byte of the first record
    fs::write(newest, &b).expect("write");
    match SegmentedLog::open(dir.path(), opts()) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file.as_path(), offset), (newest.as_path(), 32))
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // Repair keeps the valid prefix (older segments).
    let repair = LogOptions {
        recovery: RecoveryMode::Repair,
        ..opts()
    };
    let (log, report) = SegmentedLog::open(dir.path(), repair).expect("repair");
    assert_eq!(report.repaired.len(), 1);
    assert_eq!(report.repaired[0].file, *newest);
    assert!(!newest.exists());
    let keys: Vec<u128> = all(&log).into_iter().map(|r| r.key).collect();
    assert_eq!(keys, (1..keys.len() as u128 + 1).collect::<Vec<_>>());
    assert!(keys.len() < 50);
}

#[test]
fn flipped_bit_in_older_segment_is_corruption_on_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segs = build(dir.path(), 80);
    let old = &segs[0];
    let mut b = fs::read(old).expect("read");
    let bad_record_pos = {
        // second record
        let len = u32::from_le_bytes(b[32..36].try_into().expect("4")) as usize;
        32 + 8 + len
    };
    b[bad_record_pos + 8 + 16] ^= 0x80; // first value byte of the second record
    fs::write(old, &b).expect("write");
    let log = open(dir.path(), opts()); // sealed segments are not scanned on open
    let err = log.iter().find_map(|r| r.err()).expect("read error");
    match err {
        Error::Corruption { file, offset, .. } => assert_eq!(
            (file.as_path(), offset),
            (old.as_path(), bad_record_pos as u64)
        ),
        other => panic!("expected corruption, got {other:?}"),
    }
    let err = log
        .read_range_rev(u128::MAX, 0, 1000)
        .expect_err("rev read error");
    assert!(matches!(err, Error::Corruption { .. }));
    // A garbled header of an older segment fails the open.
    b[0] ^= 1;
    fs::write(old, &b).expect("write");
    drop(log);
    match SegmentedLog::open(dir.path(), opts()) {
        Err(Error::Corruption {
            file, offset: 0, ..
        }) => assert_eq!(file, *old),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn index_deleted_or_garbled_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Large records so each segment has several index entries.
    let log = open(dir.path(), real_opts(SyncPolicy::No, 64 * 1024));
    let v = vec![3u8; 1500];
    for k in 1..=200u128 {
        log.append(k, &v).expect("append");
    }
    let segs: Vec<PathBuf> = log.segments().into_iter().map(|s| s.log_path).collect();
    let answers = |log: &SegmentedLog| -> Vec<Vec<u128>> {
        (0..=201u128)
            .step_by(7)
            .map(|k| {
                let mut a: Vec<u128> = log
                    .read_range(k, k + 20, 3)
                    .expect("range")
                    .iter()
                    .map(|r| r.key)
                    .collect();
                a.extend(
                    log.read_range_rev(k, 0, 3)
                        .expect("rev")
                        .iter()
                        .map(|r| r.key),
                );
                a
            })
            .collect()
    };
    let want = answers(&log);
    drop(log);
    assert!(segs.len() >= 3);
    let originals: Vec<Vec<u8>> = segs
        .iter()
        .map(|s| fs::read(index_of(s)).expect("index"))
        .collect();
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 5] = [
        ("deleted", |_| {}),
        ("truncated", |b| b.truncate(b.len() - 5)),
        ("header", |b| b[3] ^= 0xff),
        ("garbled entry position", |b| {
            let n = b.len();
            b[n - 8..].copy_from_slice(&1u64.to_le_bytes());
        }),
        ("swapped entries", |b| {
            // keep the shape (in-order) but point an entry into a value
            let at = 32 + 24 + 16;
            let pos = u64::from_le_bytes(b[at..at + 8].try_into().expect("8")) + 100;
            b[at..at + 8].copy_from_slice(&pos.to_le_bytes());
        }),
    ];
    for (name, damage) in damages {
        for (i, s) in segs.iter().enumerate() {
            let p = index_of(s);
            if name == "deleted" {
                fs::remove_file(&p).expect("rm");
            } else {
                let mut b = originals[i].clone();
                damage(&mut b);
                fs::write(&p, &b).expect("write");
            }
        }
        let (log, report) =
            SegmentedLog::open(dir.path(), real_opts(SyncPolicy::No, 64 * 1024)).expect(name);
        assert_eq!(answers(&log), want, "{name}");
        if name != "swapped entries" {
            assert!(!report.indexes_rebuilt.is_empty(), "{name}: rebuilt");
        }
        drop(log);
        // Rebuilt (or rewritten) indexes equal the originals for sealed segments.
        if name != "swapped entries" {
            for (i, s) in segs.iter().enumerate() {
                assert_eq!(
                    fs::read(index_of(s)).expect("index"),
                    originals[i],
                    "{name} segment {i}"
                );
            }
        }
    }
}
