//! `check_dir`: finds every log under a data dir, reports problems with file
//! and offset, and with repair keeps the valid prefix and says what it dropped.

use crate::storage_common as common;

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
        // The keyspace WAL's keys are consecutive unit seqs from 1.
        let shift = if sub == "wal" { 0 } else { 64 };
        for k in 1..=60u128 {
            log.append(k << shift, &value(k)).expect("append");
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
    // Precise: the damaged record is unreadable, the records after it in
    // the segment are counted (resynchronising past the damage).
    let mut sizes = Vec::new();
    let mut at = 32usize;
    while at + 8 <= b.len() {
        let n = 8 + u32::from_le_bytes(b[at..at + 4].try_into().expect("4")) as usize;
        sizes.push(n as u64);
        at += n;
    }
    assert_eq!(s.dropped[0].records, Some(sizes.len() as u64 - 3), "{out}");
    assert_eq!(s.dropped[0].unreadable_bytes, sizes[2], "{out}");
    assert!(s.dropped[1..]
        .iter()
        .all(|d| d.offset == 0 && d.records.is_some() && d.unreadable_bytes == 0));
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

mod wal {
    //! The keyspace WAL directory: bases and the unit log judged together.

    use redlog::storage::wal::{Wal, WalOptions};
    use redlog::storage::{check_dir_opts, CheckOptions, RealFs, RecoveryMode};
    use std::path::Path;
    use std::sync::Arc;

    /// Every unit is `key-<seq % 7>`: one key each, 7 distinct keys.
    fn unit(seq: u128) -> Vec<u8> {
        format!("key-{}", seq % 7).into_bytes()
    }

    /// A unit or chunk here is its keys joined by ','.
    fn keys_of(u: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
        Some(u.split(|&b| b == b',').map(|k| (0, k.to_vec())).collect())
    }

    /// Offset of unit `seq` in the single segment (records are 29 bytes).
    fn offset_of(seq: u128) -> u64 {
        32 + (seq as u64 - 1) * 29
    }

    fn open(dir: &Path) -> Wal {
        open_with(dir, 1 << 20)
    }

    fn open_with(dir: &Path, segment_bytes: u64) -> Wal {
        let opts = WalOptions {
            fs: Arc::new(RealFs),
            segment_bytes,
            recovery: RecoveryMode::TolerateTornTail,
        };
        Wal::open(dir, opts).expect("open").0
    }

    /// Units 1..=150 in one segment, a base at 101 (two chunks).
    fn make(root: &Path) -> std::path::PathBuf {
        make_with(root, 1 << 20)
    }

    fn make_with(root: &Path, segment_bytes: u64) -> std::path::PathBuf {
        let dir = root.join("wal");
        let w = open_with(&dir, segment_bytes);
        for s in 1..=100 {
            w.append(&[unit(s)]).expect("append");
        }
        let mut b = w.begin_base().expect("base");
        b.write_chunk(101, 3, b"a,b,c").expect("chunk");
        b.write_chunk(101, 4, b"d,e,f,g").expect("chunk");
        w.install_base(b).expect("install");
        for s in 101..=150 {
            w.append(&[unit(s)]).expect("append");
        }
        w.sync().expect("sync");
        let seg = dir.join("00000000000000000000-00000000000000000001.log");
        if segment_bytes < 1 << 20 {
            return seg;
        }
        assert_eq!(std::fs::metadata(&seg).expect("seg").len(), offset_of(151));
        seg
    }

    fn flip(path: &Path, at: u64) {
        let mut b = std::fs::read(path).expect("read");
        b[at as usize] ^= 0x41;
        std::fs::write(path, &b).expect("write");
    }

    fn run(root: &Path) -> (redlog::storage::CheckSummary, String) {
        let mut out = Vec::new();
        let opts = CheckOptions {
            repair: true,
            unit_keys: Some(&keys_of),
        };
        let s = check_dir_opts(&RealFs, root, &opts, &mut out).expect("check");
        (s, String::from_utf8(out).expect("utf8"))
    }

    fn units(dir: &Path) -> Vec<u128> {
        let w = open(dir);
        w.units().map(|u| u.expect("unit").0).collect()
    }

    #[test]
    fn damage_before_the_base_start_keeps_every_unit_after_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let seg = make(root.path());
        flip(&seg, offset_of(50) + 26);
        let (s, out) = run(root.path());
        assert_eq!(s.problems.len(), 1, "{out}");
        assert_eq!(s.problems[0].offset, offset_of(50));
        assert!(
            s.dropped.is_empty(),
            "units below the base are not needed: {out}"
        );
        assert!(out.contains("recovery: base "), "{out}");
        assert!(out.contains("then units 101..150"), "{out}");
        assert!(
            out.contains(&format!(
                "removed: {} from offset 0: {} bytes: 49 units and 29 unreadable bytes before seq 101",
                seg.display(),
                offset_of(51)
            )),
            "{out}"
        );
        assert!(!root.path().join("repair-report.txt").exists());
        let dir = root.path().join("wal");
        assert_eq!(units(&dir), (101..=150).collect::<Vec<_>>());
        assert_eq!(open(&dir).next_seq(), 151);
        let (s, out) = run(root.path());
        assert!(s.is_clean() && s.dropped.is_empty(), "idempotent: {out}");
    }

    #[test]
    fn damage_after_the_base_keeps_the_prefix_and_counts_what_follows() {
        let root = tempfile::tempdir().expect("tempdir");
        let seg = make(root.path());
        flip(&seg, offset_of(120) + 26);
        // Checked on `<dir>/wal`: the report still goes to the data dir.
        std::fs::write(root.path().join("LOCK"), b"").expect("lock file");
        let (s, out) = run(&root.path().join("wal"));
        assert_eq!(s.dropped.len(), 1, "{out}");
        let d = &s.dropped[0];
        assert_eq!((&d.file, d.offset), (&seg, offset_of(120)));
        assert_eq!(d.bytes, offset_of(151) - offset_of(120));
        assert_eq!(
            (d.records, d.keys, d.unreadable_bytes),
            (Some(30), Some(7), 29)
        );
        assert!(
            out.contains(
                "30 readable units (seq 121..150) touching 7 keys, 29 unreadable bytes (unit 120)"
            ),
            "{out}"
        );
        let report =
            std::fs::read_to_string(root.path().join("repair-report.txt")).expect("report");
        assert!(
            report.contains(&redlog::storage::check::drop_text(d)),
            "{report}"
        );
        let dir = root.path().join("wal");
        assert_eq!(units(&dir), (101..=119).collect::<Vec<_>>());
        assert_eq!(open(&dir).next_seq(), 120);
        let (s, out) = run(root.path());
        assert!(s.is_clean() && s.dropped.is_empty(), "idempotent: {out}");
    }

    #[test]
    fn damaged_base_keeps_the_chunks_after_the_damage() {
        let root = tempfile::tempdir().expect("tempdir");
        // Small segments: the compaction deleted the units before the base.
        make_with(root.path(), 256);
        assert!(!root
            .path()
            .join("wal/00000000000000000000-00000000000000000001.log")
            .exists());
        let base = root.path().join("wal/00000000000000000101.base");
        // Chunk 1's payload: damage it; chunk 2 must survive.
        flip(&base, 32 + 8 + 20);
        let (s, out) = run(root.path());
        assert_eq!(s.dropped.len(), 1, "{out}");
        assert_eq!(
            (s.dropped[0].records, s.dropped[0].keys),
            (Some(1), Some(3)),
            "{out}"
        );
        let w = open(&root.path().join("wal"));
        let mut r = w.base_reader().expect("reader").expect("base");
        assert_eq!(
            r.next_chunk().expect("chunk"),
            Some((101, b"d,e,f,g".to_vec()))
        );
        assert_eq!(r.next_chunk().expect("end"), None);
        assert_eq!(w.units().count(), 50);
        let (s, out) = run(root.path());
        assert!(s.is_clean() && s.dropped.is_empty(), "idempotent: {out}");
    }
}

mod wal_fuzz {
    //! Random damage anywhere in a WAL dir: repair never panics, leaves a
    //! WAL that opens and reads in full, and a second repair finds nothing.

    use proptest::prelude::*;
    use redlog::storage::wal::{Wal, WalOptions};
    use redlog::storage::{check_dir_opts, CheckOptions, RealFs, RecoveryMode};
    use std::path::Path;
    use std::sync::Arc;

    fn open(dir: &Path, segment_bytes: u64) -> redlog::storage::Result<Wal> {
        let opts = WalOptions {
            fs: Arc::new(RealFs),
            segment_bytes,
            recovery: RecoveryMode::TolerateTornTail,
        };
        Wal::open(dir, opts).map(|w| w.0)
    }

    fn repair(root: &Path) -> (redlog::storage::CheckSummary, String) {
        let mut out = Vec::new();
        let opts = CheckOptions {
            repair: true,
            unit_keys: None,
        };
        let s = check_dir_opts(&RealFs, root, &opts, &mut out).expect("check");
        (s, String::from_utf8(out).expect("utf8"))
    }

    proptest! {
        #![proptest_config(crate::common::proptest_cases(48))]
        #[test]
        fn repair_of_random_damage_is_sound_and_idempotent(
            segment_bytes in prop_oneof![Just(300u64), Just(1u64 << 20)],
            flips in proptest::collection::vec((0usize..4, any::<u32>(), 1u8..=255), 1..5),
            cut in proptest::option::of((0usize..4, any::<u32>())),
        ) {
            let root = tempfile::tempdir().expect("tempdir");
            let dir = root.path().join("wal");
            {
                let w = open(&dir, segment_bytes).expect("open");
                for s in 1..=60u32 {
                    w.append(&[format!("unit-{s}").into_bytes()]).expect("append");
                }
                let mut b = w.begin_base().expect("base");
                for i in 0..4 {
                    b.write_chunk(61, 1, format!("chunk-{i}").as_bytes()).expect("chunk");
                }
                w.install_base(b).expect("install");
                for s in 61..=90u32 {
                    w.append(&[format!("unit-{s}").into_bytes()]).expect("append");
                }
                w.sync().expect("sync");
            }
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .expect("ls")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "log" || x == "base"))
                .collect();
            files.sort();
            for (f, at, x) in flips {
                let path = &files[f % files.len()];
                let mut b = std::fs::read(path).expect("read");
                let i = at as usize % b.len();
                b[i] ^= x;
                std::fs::write(path, &b).expect("write");
            }
            if let Some((f, at)) = cut {
                let path = &files[f % files.len()];
                let b = std::fs::read(path).expect("read");
                std::fs::write(path, &b[..at as usize % b.len()]).expect("write");
            }
            let (_, out1) = repair(root.path());
            let (s, out2) = repair(root.path());
            prop_assert!(s.is_clean() && s.dropped.is_empty(), "first:\n{}\nsecond:\n{}", out1, out2);
            let w = open(&dir, segment_bytes).expect("opens after repair");
            let units: Vec<u128> = w.units().map(|u| u.expect("unit").0).collect();
            let from = w.base().map_or(1, |b| b.start_seq);
            prop_assert_eq!(units, (from..w.next_seq()).collect::<Vec<_>>(), "{}", out1);
            if let Some(mut r) = w.base_reader().expect("reader") {
                while r.next_chunk().expect("chunk").is_some() {}
            }
        }
    }
}

#[test]
fn a_missing_wal_segment_is_a_gap_that_repair_reports() {
    use redlog::storage::wal::{Wal, WalOptions};
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("wal");
    {
        let opts = WalOptions {
            segment_bytes: 256,
            ..WalOptions::default()
        };
        let (w, _) = Wal::open(&dir, opts).expect("open");
        for s in 1..=40u32 {
            w.append(&[format!("unit-{s:02}").into_bytes()])
                .expect("append");
        }
        w.sync().expect("sync");
    }
    let mut segs: Vec<_> = fs::read_dir(&dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 4);
    // The third segment goes: its units are missing, those after it cannot
    // be applied.
    let name = |p: &Path| -> u128 {
        p.file_stem().expect("stem").to_str().expect("utf8")[21..]
            .parse()
            .expect("seq")
    };
    let (gone_from, next_from) = (name(&segs[2]), name(&segs[3]));
    fs::remove_file(&segs[2]).expect("rm");
    fs::remove_file(segs[2].with_extension("index")).expect("rm");
    let (s, out) = run(root.path(), false);
    assert_eq!(s.problems.len(), 1, "{out}");
    assert_eq!((&s.problems[0].file, s.problems[0].offset), (&segs[3], 32));
    assert!(
        out.contains(&format!(
            "units {gone_from}..{} missing before this record (a gap in the log)",
            next_from - 1
        )),
        "{out}"
    );
    let (s, out) = run(root.path(), true);
    assert!(
        out.contains(&format!("then units 1..{}", gone_from - 1)),
        "{out}"
    );
    assert!(
        !s.dropped.is_empty() && s.dropped.iter().all(|d| d.offset == 0),
        "{out}"
    );
    assert_eq!(
        s.dropped
            .iter()
            .map(|d| d.records.expect("counted"))
            .sum::<u64>(),
        40 - (next_from as u64 - 1),
        "{out}"
    );
    let (s, out) = run(root.path(), true);
    assert!(s.is_clean() && s.dropped.is_empty(), "{out}");
}
