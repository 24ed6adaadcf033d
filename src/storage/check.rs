//! `redlog check [--repair] <dir>`: verify every segmented log under a data
//! dir, and optionally repair.
//!
//! A log is any directory holding `<hi:020>-<lo:020>.log` files (`wal/`,
//! `streams/<id>/`, ...), found recursively. For each log, every segment is
//! read in full: header, framing, CRC, keys strictly increasing across the
//! log, base key = first key; the index is compared with the one rebuilt from
//! the log.
//!
//! The keyspace WAL (`wal/`, a directory with base files) is checked and
//! repaired by `wal_check`: bases and units together, keeping every record
//! the chosen recovery needs. Other logs (streams) are repaired by keeping
//! their valid prefix: the log is truncated at the first bad record and every
//! later segment of that log is deleted. Each drop is printed with file,
//! offset, bytes, the readable records it held (counted past the damage) and
//! its unreadable bytes, and appended to `repair-report.txt` in the data
//! directory, which the next server start logs as warnings. An inconsistent
//! or missing index is rewritten (it is derived data; nothing is lost).

use super::atomic::atomic_write_with;
use super::error::Result;
use super::fs::{read_full_at, Fs, OpenMode, RealFs};
use super::index::encode_index;
use super::record::{decode_file_header, BadRecord, FILE_HEADER_BYTES, LOG_MAGIC};
use super::recovery::list_segments;
use super::salvage::{fmt_key, scan_file};
use super::segment::{parse_segment_name, scan_whole, segment_paths, valid_record_after, LOG_EXT};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One problem found by the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
    /// False for index problems (derived data, nothing lost).
    pub data: bool,
}

/// Data lost by a repair: removed bytes whose content no kept file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub file: PathBuf,
    /// Offset from which bytes were removed (0 with `bytes` = the file's
    /// size: the whole file was deleted).
    pub offset: u64,
    pub bytes: u64,
    /// Records lost: the readable records (WAL units, stream entries or ops)
    /// in the removed bytes, or for a base kept with its readable chunks the
    /// chunks its footer counts beyond them; None when they cannot be
    /// counted (a base without a readable footer).
    pub records: Option<u64>,
    /// Removed bytes that held no readable record (the damage itself).
    pub unreadable_bytes: u64,
    /// Keyspace keys the removed records held (base chunks) or touched (WAL
    /// units); None when not counted (stream logs, no decoder given).
    pub keys: Option<u64>,
    /// What the bytes held, in words (unit, chunk or key ranges).
    pub detail: String,
}

/// Decodes a WAL unit (or base chunk) into the `(db, key)` pairs it
/// touches; None when the bytes do not decode. Supplied by the caller
/// (`server::persist::unit_keys`): storage itself only stores bytes.
pub type UnitKeys<'a> = &'a dyn Fn(&[u8]) -> Option<Vec<(u8, Vec<u8>)>>;

/// Options of [`check_dir_opts`].
#[derive(Clone, Copy, Default)]
pub struct CheckOptions<'a> {
    pub repair: bool,
    /// Counts the keys of dropped WAL units and base chunks.
    pub unit_keys: Option<UnitKeys<'a>>,
}

/// Name of the file, in the checked directory, where a repair that dropped
/// data writes what it dropped; the next server start logs it as a warning
/// and renames it to [`REPAIR_REPORT_SEEN`].
pub const REPAIR_REPORT: &str = "repair-report.txt";
/// A repair report the server has logged.
pub const REPAIR_REPORT_SEEN: &str = "repair-report.seen.txt";

/// Totals of one checked log.
#[derive(Debug, Clone, Default)]
pub struct LogCheck {
    pub files: u64,
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub dropped: Vec<Dropped>,
}

/// Totals of [`check_dir`].
#[derive(Debug, Clone, Default)]
pub struct CheckSummary {
    pub logs: u64,
    pub files: u64,
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub dropped: Vec<Dropped>,
}

impl CheckSummary {
    /// No problem found (after a repair: none was found before repairing).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks (and with `repair`, repairs) every log under `root` on the real
/// file system, printing problems, drops and a summary to `out`.
pub fn check_dir(root: &Path, repair: bool, out: &mut dyn Write) -> Result<CheckSummary> {
    check_dir_with(&RealFs, root, repair, out)
}

/// [`check_dir`] through any [`Fs`].
pub fn check_dir_with(
    fs: &dyn Fs,
    root: &Path,
    repair: bool,
    out: &mut dyn Write,
) -> Result<CheckSummary> {
    let opts = CheckOptions {
        repair,
        unit_keys: None,
    };
    check_dir_opts(fs, root, &opts, out)
}

/// True for a keyspace WAL directory: named `wal`, or holding base files.
fn is_wal_dir(fs: &dyn Fs, dir: &Path) -> Result<bool> {
    if dir.file_name().is_some_and(|n| n == "wal") {
        return Ok(true);
    }
    Ok(fs
        .list_dir(dir)?
        .iter()
        .any(|e| !e.is_dir && crate::storage::wal::is_base_file(&e.name)))
}

/// [`check_dir_with`] with options. A repair that dropped data appends what
/// it dropped to `repair-report.txt` ([`REPAIR_REPORT`]) in the data
/// directory: `root`, or its nearest ancestor (up to three levels) holding
/// the server's `LOCK` file.
pub fn check_dir_opts(
    fs: &dyn Fs,
    root: &Path,
    opts: &CheckOptions<'_>,
    out: &mut dyn Write,
) -> Result<CheckSummary> {
    let repair = opts.repair;
    let mut sum = CheckSummary::default();
    let mut stack = vec![root.to_path_buf()];
    let mut log_dirs = Vec::new();
    while let Some(d) = stack.pop() {
        let mut has_log = false;
        for e in fs.list_dir(&d)? {
            if e.is_dir {
                stack.push(d.join(&e.name));
            } else if matches!(parse_segment_name(&e.name), Some((_, LOG_EXT)))
                || crate::storage::wal::is_base_file(&e.name)
            {
                has_log = true;
            }
        }
        if has_log {
            log_dirs.push(d);
        }
    }
    log_dirs.sort();
    for d in log_dirs {
        let c = if is_wal_dir(fs, &d)? {
            super::wal_check::check_wal(fs, &d, repair, opts.unit_keys, out)?
        } else {
            verify_log(fs, &d, repair, out)?
        };
        writeln!(
            out,
            "log {}: {} segments, {} records, {} bytes, {} problems",
            d.display(),
            c.segments,
            c.records,
            c.bytes,
            c.problems.len()
        )?;
        sum.logs += 1;
        sum.files += c.files;
        sum.segments += c.segments;
        sum.records += c.records;
        sum.bytes += c.bytes;
        sum.problems.extend(c.problems);
        sum.dropped.extend(c.dropped);
    }
    writeln!(
        out,
        "checked {} logs: {} files, {} segments, {} records, {} bytes; {} problems{}",
        sum.logs,
        sum.files,
        sum.segments,
        sum.records,
        sum.bytes,
        sum.problems.len(),
        if repair {
            format!(", {} drops", sum.dropped.len())
        } else {
            String::new()
        }
    )?;
    if repair && !sum.dropped.is_empty() {
        let path = write_report(fs, root, &sum.dropped)?;
        writeln!(
            out,
            "wrote {}: the next server start logs it as a warning",
            path.display()
        )?;
    }
    Ok(sum)
}

/// The text of one drop, as printed and as the repair report holds it.
pub fn drop_text(d: &Dropped) -> String {
    format!(
        "dropped: {} from offset {}: {} bytes: {}",
        d.file.display(),
        d.offset,
        d.bytes,
        d.detail
    )
}

/// Appends the drops to `<root>/repair-report.txt` (atomically replaced, so
/// an unseen report of an earlier repair is kept).
fn write_report(fs: &dyn Fs, root: &Path, dropped: &[Dropped]) -> Result<PathBuf> {
    // The data directory (it holds `LOCK`) when the check ran on a part of
    // it (`<dir>/wal`, `<dir>/streams/<id>`), so the server finds the report.
    let dir = root
        .ancestors()
        .take(4)
        .find(|d| fs.exists(&d.join("LOCK")))
        .unwrap_or(root);
    let path = dir.join(REPAIR_REPORT);
    let mut text = crate::storage::streams::read_small_file(fs, &path)?.unwrap_or_default();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    text.extend_from_slice(
        format!(
            "redlog check --repair at unix time {secs} dropped data ({} drops):\n",
            dropped.len()
        )
        .as_bytes(),
    );
    for d in dropped {
        text.extend_from_slice(drop_text(d).as_bytes());
        text.push(b'\n');
    }
    atomic_write_with(fs, &path, &text)?;
    Ok(path)
}

pub(crate) fn problem(
    out: &mut dyn Write,
    c: &mut LogCheck,
    file: &Path,
    offset: u64,
    reason: String,
    data: bool,
) -> Result<()> {
    writeln!(out, "problem: {} offset {offset}: {reason}", file.display())?;
    c.problems.push(Problem {
        file: file.to_path_buf(),
        offset,
        reason,
        data,
    });
    Ok(())
}

pub(crate) fn drop_line(out: &mut dyn Write, c: &mut LogCheck, d: Dropped) -> Result<()> {
    writeln!(out, "{}", drop_text(&d))?;
    tracing::warn!(file = %d.file.display(), offset = d.offset, bytes = d.bytes, "repair dropped data");
    c.dropped.push(d);
    Ok(())
}

/// Verifies one log directory; with `repair`, fixes it (see the module doc).
pub fn verify_log(fs: &dyn Fs, dir: &Path, repair: bool, out: &mut dyn Write) -> Result<LogCheck> {
    let mut c = LogCheck::default();
    let bases = list_segments(fs, dir, None)?;
    let mode = if repair {
        OpenMode::ReadWrite
    } else {
        OpenMode::Read
    };
    let mut prev_last: Option<u128> = None;
    // (segment index, cut offset, kept records' index entries)
    let mut bad_at = None;
    for (i, &base) in bases.iter().enumerate() {
        let (log_path, index_path) = segment_paths(dir, base);
        let file = fs.open(&log_path, mode)?;
        let len = file.size()?;
        c.files += 1;
        c.segments += 1;
        c.bytes += len;
        let newest = i + 1 == bases.len();
        let mut h = [0u8; FILE_HEADER_BYTES as usize];
        let n = read_full_at(&*file, &mut h, 0)?;
        match decode_file_header(&h[..n], LOG_MAGIC) {
            Ok(b) if b == base => {}
            Ok(_) => {
                problem(
                    out,
                    &mut c,
                    &log_path,
                    16,
                    "header base key differs from file name".into(),
                    true,
                )?;
                bad_at = Some((i, 0, Vec::new()));
                break;
            }
            Err(reason) => {
                problem(out, &mut c, &log_path, 0, reason.into(), true)?;
                bad_at = Some((i, 0, Vec::new()));
                break;
            }
        }
        if prev_last.is_some_and(|p| base <= p) {
            let reason = "segment base key not above the previous segment's last key".to_string();
            problem(out, &mut c, &log_path, FILE_HEADER_BYTES, reason, true)?;
            bad_at = Some((i, 0, Vec::new()));
            break;
        }
        let scan = scan_whole(&file, base, len)?;
        c.records += scan.records;
        if let Some((pos, kind)) = scan.bad {
            let mut reason = kind.describe().to_string();
            if kind == BadRecord::KeyOrder && pos == FILE_HEADER_BYTES {
                reason = "first record's key differs from the base key".into();
            }
            if newest && !valid_record_after(&*file, pos, len, scan.last_key)? {
                reason.push_str(" (torn tail)");
            }
            problem(out, &mut c, &log_path, pos, reason, true)?;
            let cut = if scan.records == 0 { 0 } else { pos };
            bad_at = Some((i, cut, scan.index));
            break;
        }
        if scan.records == 0 {
            problem(
                out,
                &mut c,
                &log_path,
                FILE_HEADER_BYTES,
                "segment has no records".into(),
                true,
            )?;
            bad_at = Some((i, 0, Vec::new()));
            break;
        }
        prev_last = scan.last_key;
        compare_index(
            fs,
            out,
            &mut c,
            &index_path,
            &encode_index(base, &scan.index),
            repair,
        )?;
    }
    let Some((i, cut, kept_index)) = bad_at.filter(|_| repair) else {
        return Ok(c);
    };
    for (j, &base) in bases.iter().enumerate().skip(i) {
        let (log_path, index_path) = segment_paths(dir, base);
        let file = fs.open(&log_path, OpenMode::ReadWrite)?;
        let len = file.size()?;
        // What the removed bytes hold: readable records are counted past
        // the damage (resynchronising), the rest is unreadable.
        let from = if j == i { cut } else { 0 };
        let (pieces, _) = if len >= FILE_HEADER_BYTES {
            scan_file(
                &file,
                FILE_HEADER_BYTES,
                len,
                Some(base),
                false,
                &mut |_, _, _| {},
            )?
        } else {
            (Vec::new(), Vec::new())
        };
        let gone: Vec<_> = pieces.iter().filter(|p| p.start >= from).collect();
        let records: u64 = gone.iter().map(|p| p.records).sum();
        let readable: u64 = gone.iter().map(|p| p.end - p.start).sum();
        // A valid file header is not damage.
        let mut h = [0u8; FILE_HEADER_BYTES as usize];
        let n = read_full_at(&*file, &mut h, 0)?;
        let header_ok = decode_file_header(&h[..n], LOG_MAGIC) == Ok(base);
        let header = if from == 0 && header_ok {
            FILE_HEADER_BYTES
        } else {
            0
        };
        let unreadable = (len - from).saturating_sub(readable + header);
        let mut detail = format!("{records} readable records");
        if let (Some(a), Some(b)) = (gone.first(), gone.last()) {
            detail.push_str(&format!(
                " (keys {}..{})",
                fmt_key(a.first),
                fmt_key(b.last)
            ));
        }
        detail.push_str(&format!(", {unreadable} unreadable bytes"));
        if j == i && cut > 0 {
            file.set_len(cut)?;
            file.sync_data()?;
            atomic_write_with(fs, &index_path, &encode_index(base, &kept_index))?;
            let d = Dropped {
                file: log_path,
                offset: cut,
                bytes: len - cut,
                records: Some(records),
                unreadable_bytes: unreadable,
                keys: None,
                detail,
            };
            drop_line(out, &mut c, d)?;
        } else {
            drop(file);
            fs.remove_file(&log_path)?;
            if fs.exists(&index_path) {
                fs.remove_file(&index_path)?;
            }
            drop_line(
                out,
                &mut c,
                Dropped {
                    file: log_path,
                    offset: 0,
                    bytes: len,
                    records: Some(records),
                    unreadable_bytes: unreadable,
                    keys: None,
                    detail,
                },
            )?;
        }
    }
    fs.sync_dir(dir)?;
    Ok(c)
}

/// Compares a segment's index with the one rebuilt from its log (derived
/// data: a difference is a problem that loses nothing); with `repair`,
/// rewrites it.
pub(crate) fn check_index(
    fs: &dyn Fs,
    out: &mut dyn Write,
    c: &mut LogCheck,
    log_path: &Path,
    index_path: &Path,
    base: u128,
    repair: bool,
) -> Result<()> {
    let file = fs.open(log_path, OpenMode::Read)?;
    let len = file.size()?;
    let scan = scan_whole(&file, base, len)?;
    compare_index(
        fs,
        out,
        c,
        index_path,
        &encode_index(base, &scan.index),
        repair,
    )
}

pub(crate) fn compare_index(
    fs: &dyn Fs,
    out: &mut dyn Write,
    c: &mut LogCheck,
    index_path: &Path,
    expected: &[u8],
    repair: bool,
) -> Result<()> {
    let actual = match fs.open(index_path, OpenMode::Read) {
        Ok(f) => {
            c.files += 1;
            let mut b = vec![0u8; f.size()? as usize];
            let n = read_full_at(&*f, &mut b, 0)?;
            b.truncate(n);
            Some(b)
        }
        Err(_) => None,
    };
    if actual.as_deref() != Some(expected) {
        let (offset, reason) = match &actual {
            None => (0, "index file missing".to_string()),
            Some(a) => {
                let at = a
                    .iter()
                    .zip(expected)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(expected.len()));
                (at as u64, "index inconsistent with the log".to_string())
            }
        };
        problem(out, c, index_path, offset, reason, false)?;
        if repair {
            atomic_write_with(fs, index_path, expected)?;
            writeln!(out, "rewrote: {}", index_path.display())?;
        }
    }
    Ok(())
}
