//! Compressed sealed segments (`storage::clog`, `storage::log::compact`):
//! reads of a compressed log equal a plain copy's record for record; each
//! crash point of the background swap recovers to every record, served
//! once; `redlog check` verifies compressed segments and reports damage.

use crate::storage_common as common;

use common::*;
use redlog::storage::clog::BlockFilter;
use redlog::storage::fs::{CrashMode, OpenMode};
use redlog::storage::log::compact::KillPoint;
use redlog::storage::{check_dir_with, FaultyFs, Fs, Record, SegmentedLog, SyncPolicy};
use std::path::Path;

const DIR: &str = "/data/streams/00000000000000000001";
const SEG: u64 = 64 * 1024;
const N: u64 = 6000;

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A stream entry value as `stream::codec::encode_entry` lays it out.
fn entry(i: u64) -> Vec<u8> {
    let level = ["INFO", "WARN", "ERROR"][(i % 7 % 3) as usize];
    let tid = (i % 5).to_string();
    let content = match i % 5 {
        0 => format!(
            "Receiving block blk_{} src: /10.250.{}.{}:50010",
            i * 7919,
            i % 13,
            i % 251
        ),
        1 => format!(
            "PacketResponder {} for block blk_{} terminating",
            i % 3,
            i * 31
        ),
        2 => format!(
            "Served block blk_{} to /10.251.{}.{}",
            i * 17,
            i % 9,
            i % 200
        ),
        3 => "Verification succeeded".to_string(),
        _ => format!(
            "Deleting block blk_{} file /mnt/hadoop/dfs/data/current/subdir{}/blk_{}",
            i,
            i % 64,
            i
        ),
    };
    let ts = format!("2008-11-09T20:{:02}:{:02}", i / 60 % 60, i % 60);
    let mut v = Vec::new();
    let pairs: [(&str, &str); 5] = [
        ("ts", &ts),
        ("level", level),
        ("component", "dfs.DataNode"),
        ("template_id", &tid),
        ("content", &content),
    ];
    v.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (n, x) in pairs {
        put(&mut v, n.as_bytes());
        put(&mut v, x.as_bytes());
    }
    v
}

fn key(i: u64) -> u128 {
    (u128::from(1_226_263_000_000 + i / 3) << 64) | u128::from(i % 3)
}

fn fill(log: &SegmentedLog) {
    let vals: Vec<Vec<u8>> = (0..N).map(entry).collect();
    for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<(u128, &[u8])> = chunk
            .iter()
            .map(|&i| (key(i), &vals[i as usize][..]))
            .collect();
        log.append_batch(&batch).expect("append");
    }
}

fn expected() -> Vec<Record> {
    (0..N)
        .map(|i| Record {
            key: key(i),
            value: entry(i),
        })
        .collect()
}

fn compressed_log(fs: &FaultyFs) -> SegmentedLog {
    let log = open(Path::new(DIR), faulty_opts(fs, SyncPolicy::No, SEG));
    fill(&log);
    log.set_compress_sealed().expect("enable");
    log.wait_compressed();
    log
}

fn files(fs: &FaultyFs, ext: &str) -> usize {
    fs.list_dir(Path::new(DIR))
        .expect("list")
        .iter()
        .filter(|e| e.name.ends_with(ext))
        .count()
}

#[test]
fn reads_equal_plain_copy() {
    let fs = FaultyFs::new();
    let log = compressed_log(&fs);
    let st = log.compressed_stats();
    let (segs, blocks) = (st.segments, st.blocks);
    assert!(segs >= 3, "sealed segments compressed: {segs}");
    assert!(blocks >= segs);
    assert_eq!(files(&fs, ".log"), 1, "only the active segment stays plain");
    let plain_fs = FaultyFs::new();
    let plain = open(Path::new(DIR), faulty_opts(&plain_fs, SyncPolicy::No, SEG));
    fill(&plain);
    let want = expected();
    assert_eq!(all(&log), want);
    assert_eq!(all(&plain), want);
    assert!(log.total_bytes() < plain.total_bytes() / 3);
    // Ranges, reverse ranges, point reads, starting inside blocks.
    for &(a, b) in &[
        (0u64, 10u64),
        (997, 2500),
        (4000, 5999),
        (1234, 1234),
        (5990, 5999),
    ] {
        let (lo, hi) = (key(a), key(b));
        assert_eq!(
            log.read_range(lo, hi, usize::MAX).expect("range"),
            plain.read_range(lo, hi, usize::MAX).expect("range")
        );
        assert_eq!(
            log.read_range_rev(hi, lo, 7).expect("rev"),
            plain.read_range_rev(hi, lo, 7).expect("rev")
        );
        assert_eq!(log.get(lo).expect("get"), plain.get(lo).expect("get"));
    }
    let rev: Vec<Record> = log
        .iter_rev_from(u128::MAX)
        .map(|r| r.expect("rev"))
        .collect();
    assert_eq!(rev, want.iter().rev().cloned().collect::<Vec<_>>());
    // A range read decodes only the blocks it covers.
    let before = log.compressed_stats().decoded;
    log.read_range(key(3000), key(3005), usize::MAX)
        .expect("range");
    let after = log.compressed_stats().decoded;
    assert!(after - before <= 1, "decoded {} blocks", after - before);
    // Appends continue; reopening serves the same records.
    drop(log);
    let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, SEG));
    assert!(log.compresses_sealed(), "the marker persists");
    assert_eq!(all(&log), want);
}

#[test]
fn filter_skips_blocks_that_cannot_match() {
    let fs = FaultyFs::new();
    let log = compressed_log(&fs);
    let f = BlockFilter {
        conds: vec![(b"template_id".to_vec(), b"9".to_vec(), false)],
    };
    let mut it = log.iter().with_filter(f);
    let got: Vec<Record> = it.by_ref().map(|r| r.expect("read")).collect();
    // Only the active (plain) segment's records come back; every block skipped.
    let blocks = log.compressed_stats().blocks;
    assert_eq!(it.blocks_skipped(), blocks);
    assert_eq!(log.compressed_stats().skipped, blocks);
    assert!(got.len() < N as usize / 3);
    let f = BlockFilter {
        conds: vec![(b"level".to_vec(), b"warn".to_vec(), true)],
    };
    let mut it = log.iter().with_filter(f);
    assert_eq!(it.by_ref().count(), N as usize);
    assert_eq!(it.blocks_skipped(), 0);
}

/// Each crash point of the swap, as a process kill (written files stay)
/// and as a power loss (only synced data and directory entries stay):
/// every record is served exactly once after reopening, and the files left
/// are what the rule says.
#[test]
fn crash_points_recover_every_record() {
    let points = [None, Some(KillPoint::TmpWritten), Some(KillPoint::Renamed)];
    for (kill, power) in points.iter().flat_map(|&k| [(k, false), (k, true)]) {
        let fs = FaultyFs::new();
        let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, SEG));
        log.set_compress_kill_point(kill);
        fill(&log);
        log.sync().expect("sync");
        log.set_compress_sealed().expect("enable");
        log.wait_compressed();
        std::mem::forget(log);
        if power {
            fs.crash(CrashMode::DropUnsynced);
        }
        match kill {
            Some(KillPoint::TmpWritten) if !power => {
                assert!(files(&fs, ".clog.tmp") > 0 && files(&fs, ".clog") == 0)
            }
            Some(KillPoint::TmpWritten) => assert_eq!(files(&fs, ".clog"), 0),
            Some(KillPoint::Renamed) => assert!(files(&fs, ".clog") > 0 && files(&fs, ".log") > 1),
            None => assert_eq!(files(&fs, ".log"), 1),
        }
        let (log, report) =
            SegmentedLog::open(DIR, faulty_opts(&fs, SyncPolicy::No, SEG)).expect("reopen");
        assert_eq!(all(&log), expected(), "kill point {kill:?}");
        if kill.is_some() && !(power && kill == Some(KillPoint::TmpWritten)) {
            assert!(
                !report.removed_files.is_empty(),
                "{kill:?}: leftovers removed"
            );
        }
        // The marker survived: the segments get compressed after the restart.
        log.wait_compressed();
        assert_eq!(files(&fs, ".tmp"), 0);
        assert_eq!(files(&fs, ".log"), 1, "{kill:?}");
        assert_eq!(all(&log), expected());
    }
}

/// A crash while the temp file was still being written (not fsynced).
#[test]
fn crash_with_unsynced_temp_file() {
    let fs = FaultyFs::new();
    let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, SEG));
    fill(&log);
    log.sync().expect("sync");
    fs.fail_syncs_after(0);
    log.set_compress_sealed().ok();
    log.wait_compressed();
    std::mem::forget(log);
    fs.crash(CrashMode::KeepTornPrefix { seed: 5 });
    let (log, _) = SegmentedLog::open(DIR, faulty_opts(&fs, SyncPolicy::No, SEG)).expect("reopen");
    assert_eq!(all(&log), expected());
}

#[test]
fn truncation_into_a_compressed_segment() {
    let fs = FaultyFs::new();
    let log = compressed_log(&fs);
    let cut = key(1000);
    log.truncate_after(cut).expect("truncate");
    let want: Vec<Record> = expected().into_iter().filter(|r| r.key <= cut).collect();
    assert_eq!(all(&log), want);
    log.append(key(N + 5), &entry(N + 5)).expect("append after");
    drop(log);
    let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, SEG));
    assert_eq!(all(&log).len(), want.len() + 1);
}

#[test]
fn newest_segment_compressed_and_retention() {
    let fs = FaultyFs::new();
    let log = compressed_log(&fs);
    // Drop whole segments below a key: compressed ones go like plain ones.
    let n = log.delete_segments_before(key(3000)).expect("delete");
    assert!(n >= 1);
    let rest = all(&log);
    assert!(rest.first().is_some_and(|r| r.key <= key(3000)));
    assert_eq!(rest.last().map(|r| r.key), Some(key(N - 1)));
    // A log whose newest segment on disk is compressed (the active one
    // removed): it opens with no active segment and appends after it.
    drop(log);
    let active = fs
        .list_dir(Path::new(DIR))
        .expect("list")
        .into_iter()
        .find(|e| e.name.ends_with(".log"))
        .expect("active");
    fs.remove_file(&Path::new(DIR).join(&active.name))
        .expect("rm");
    let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, SEG));
    let last = log.last_key().expect("last key");
    assert!(last < key(N - 1));
    log.append(key(N + 1), &entry(N + 1)).expect("append");
    assert_eq!(log.last_key(), Some(key(N + 1)));
}

#[test]
fn check_verifies_compressed_segments() {
    let fs = FaultyFs::new();
    drop(compressed_log(&fs));
    let mut out = Vec::new();
    let sum = check_dir_with(&fs, Path::new("/data"), false, &mut out).expect("check");
    assert!(sum.is_clean(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(sum.records, N);
    // Damage one byte inside a block of the first compressed segment.
    let name = fs
        .list_dir(Path::new(DIR))
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.ends_with(".clog"))
        .min()
        .expect("a clog");
    let path = Path::new(DIR).join(&name);
    let f = fs.open(&path, OpenMode::ReadWrite).expect("open");
    f.write_all_at(&[0x5a], 200).expect("write");
    f.sync_data().expect("sync");
    let mut out = Vec::new();
    let sum = check_dir_with(&fs, Path::new("/data"), false, &mut out).expect("check");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(sum.problems.len(), 1, "{text}");
    assert!(
        sum.problems[0].file.ends_with(&name) && sum.problems[0].data,
        "{text}"
    );
    assert!(text.contains("block CRC mismatch"), "{text}");
    // Reads report it as corruption, never skip it.
    let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, SEG));
    assert!(log.iter().any(|r| r.is_err()));
    drop(log);
    // Repair drops the damaged segment and everything after it, reported.
    let mut out = Vec::new();
    let sum = check_dir_with(&fs, Path::new("/data"), true, &mut out).expect("repair");
    assert!(!sum.dropped.is_empty());
    let log = open(Path::new(DIR), faulty_opts(&fs, SyncPolicy::No, SEG));
    assert!(log.iter().all(|r| r.is_ok()));
}
