//! `check_dir`: finds every log under a data dir, reports problems with file
//! and offset, and with repair keeps the valid prefix and says what it dropped.

#[path = "storage_common/mod.rs"]
mod common;

use common::*;
use redlog::storage::{check_dir, SyncPolicy};
use std::fs;
use std::path::Path;

fn make_data_dir(root: &Path) {
    for sub in [
        "wal",
        "streams/00000000000000000001",
        "streams/00000000000000000002",
    ] {
        let log = open(&root.join(sub), real_opts(SyncPolicy::No, 1024));
        for k in 1..=60u128 {
            log.append(k << 64, &value(k)).expect("append");
        }
    }
    fs::write(
        root.join("streams/00000000000000000001/checkpoint"),
        b"not a log",
    )
    .expect("write");
}

fn run(root: &Path, repair: bool) -> (redlog::storage::CheckSummary, String) {
    let mut out = Vec::new();
    let s = check_dir(root, repair, &mut out).expect("check");
    (s, String::from_utf8(out).expect("utf8"))
}

#[test]
fn clean_dir_reports_totals() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_data_dir(dir.path());
    let (s, out) = run(dir.path(), false);
    assert!(s.is_clean(), "{out}");
    assert_eq!((s.logs, s.records), (3, 180));
    assert!(s.segments >= 6 && s.files == 2 * s.segments);
    assert!(out.contains("checked 3 logs"), "{out}");
}

#[test]
fn corruption_is_reported_and_repaired() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_data_dir(dir.path());
    let stream = dir.path().join("streams/00000000000000000002");
    let mut segs: Vec<_> = fs::read_dir(&stream)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3);
    // Flip a value bit of the 3rd record of the 2nd segment.
    let victim = &segs[1];
    let mut b = fs::read(victim).expect("read");
    let mut pos = 32usize;
    for _ in 0..2 {
        pos += 8 + u32::from_le_bytes(b[pos..pos + 4].try_into().expect("4")) as usize;
    }
    b[pos + 8 + 16] ^= 0x20;
    fs::write(victim, &b).expect("write");
    // And garble an index of the WAL (derived data: no loss).
    let wal_index = fs::read_dir(dir.path().join("wal"))
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "index"))
        .expect("index");
    fs::write(&wal_index, b"garbage").expect("write");

    let (s, out) = run(dir.path(), false);
    let data: Vec<_> = s.problems.iter().filter(|p| p.data).collect();
    assert_eq!(data.len(), 1, "{out}");
    assert_eq!((&data[0].file, data[0].offset), (victim, pos as u64));
    assert!(
        out.contains(&format!(
            "problem: {} offset {pos}: record CRC mismatch",
            victim.display()
        )),
        "{out}"
    );
    assert!(
        s.problems.iter().any(|p| !p.data && p.file == wal_index),
        "{out}"
    );
    assert!(s.dropped.is_empty());
    assert_eq!(
        fs::read(victim).expect("read"),
        b,
        "check without repair changes nothing"
    );

    let (s, out) = run(dir.path(), true);
    assert_eq!(s.dropped.len(), segs.len() - 1, "{out}");
    assert_eq!(
        (&s.dropped[0].file, s.dropped[0].offset),
        (victim, pos as u64)
    );
    assert_eq!(s.dropped[0].bytes, b.len() as u64 - pos as u64);
    assert!(s.dropped[1..]
        .iter()
        .all(|d| d.offset == 0 && d.records.is_some()));
    assert!(
        out.contains(&format!("dropped: {} from offset {pos}", victim.display())),
        "{out}"
    );
    assert!(out.contains("rewrote: "), "{out}");
    assert!(!segs[2].exists());

    let (s, out) = run(dir.path(), false);
    assert!(s.is_clean(), "clean after repair: {out}");
    let log = open(&stream, real_opts(SyncPolicy::No, 1024));
    let keys: Vec<u128> = all(&log).iter().map(|r| r.key >> 64).collect();
    assert_eq!(keys, (1..=keys.len() as u128).collect::<Vec<_>>());
    log.append(1000 << 64, b"x").expect("append after repair");
}

#[test]
fn torn_tail_is_a_problem_that_repair_cuts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = dir.path().join("wal");
    let log = open(&wal, real_opts(SyncPolicy::No, 1 << 20));
    for k in 1..=10u128 {
        log.append(k, &value(k)).expect("append");
    }
    let path = log.segments()[0].log_path.clone();
    drop(log);
    let mut b = fs::read(&path).expect("read");
    let len = b.len();
    b.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    fs::write(&path, &b).expect("write");
    let (s, out) = run(dir.path(), true);
    assert_eq!(s.problems.len(), 1, "{out}");
    assert!(s.problems[0].reason.contains("torn tail"), "{out}");
    assert_eq!(s.dropped[0].offset, len as u64);
    assert_eq!(fs::metadata(&path).expect("meta").len(), len as u64);
}
