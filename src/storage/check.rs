//! `redlog check [--repair] <dir>`: verify every segmented log under a data
//! dir, and optionally repair.
//!
//! A log is any directory holding `<hi:020>-<lo:020>.log` files (`wal/`,
//! `streams/<id>/`, ...), found recursively. For each log, every segment is
//! read in full: header, framing, CRC, keys strictly increasing across the
//! log, base key = first key; the index is compared with the one rebuilt from
//! the log.
//!
//! Repair keeps the valid prefix: the log is truncated at the first bad
//! record, every later segment of that log is deleted, and each drop is
//! printed (file, offset, bytes, records when known). An inconsistent or
//! missing index is rewritten (it is derived data; nothing is lost).

use super::atomic::atomic_write_with;
use super::error::Result;
use super::fs::{read_full_at, Fs, OpenMode, RealFs};
use super::index::encode_index;
use super::record::{decode_file_header, BadRecord, FILE_HEADER_BYTES, LOG_MAGIC};
use super::recovery::list_segments;
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

/// Data removed by a repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub file: PathBuf,
    /// Offset from which the file was cut (0: the whole file was deleted).
    pub offset: u64,
    pub bytes: u64,
    /// Whole records dropped, when they could be counted.
    pub records: Option<u64>,
}

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
    let mut sum = CheckSummary::default();
    let mut stack = vec![root.to_path_buf()];
    let mut log_dirs = Vec::new();
    let mut bases = Vec::new();
    while let Some(d) = stack.pop() {
        let mut has_log = false;
        for e in fs.list_dir(&d)? {
            if e.is_dir {
                stack.push(d.join(&e.name));
            } else if matches!(parse_segment_name(&e.name), Some((_, LOG_EXT))) {
                has_log = true;
            } else if crate::storage::wal::is_base_file(&e.name) {
                bases.push(d.join(&e.name));
            }
        }
        if has_log {
            log_dirs.push(d);
        }
    }
    log_dirs.sort();
    for d in log_dirs {
        let c = verify_log(fs, &d, repair, out)?;
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
    bases.sort();
    for path in bases {
        sum.files += 1;
        match crate::storage::wal::verify_base(fs, &path) {
            Ok(chunks) => writeln!(out, "base {}: {chunks} chunks, ok", path.display())?,
            Err(crate::storage::Error::Corruption {
                file,
                offset,
                reason,
            }) => {
                writeln!(out, "problem: {} offset {offset}: {reason}", file.display())?;
                sum.problems.push(Problem {
                    file: file.clone(),
                    offset,
                    reason,
                    data: true,
                });
                if repair {
                    let (kept, dropped) = crate::storage::wal::repair_base(fs, &path)?;
                    writeln!(
                        out,
                        "dropped: {} from offset {}: {} bytes (base keeps its first {kept} chunks)",
                        path.display(),
                        dropped.offset,
                        dropped.bytes
                    )?;
                    sum.dropped.push(dropped);
                }
            }
            Err(e) => return Err(e),
        }
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
    Ok(sum)
}

fn problem(
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

fn drop_line(out: &mut dyn Write, c: &mut LogCheck, d: Dropped) -> Result<()> {
    let records = d
        .records
        .map_or("an unknown number of".to_string(), |n| n.to_string());
    writeln!(
        out,
        "dropped: {} from offset {}: {} bytes, {records} records",
        d.file.display(),
        d.offset,
        d.bytes
    )?;
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
        let expected = encode_index(base, &scan.index);
        let actual = match fs.open(&index_path, OpenMode::Read) {
            Ok(f) => {
                c.files += 1;
                let mut b = vec![0u8; f.size()? as usize];
                let n = read_full_at(&*f, &mut b, 0)?;
                b.truncate(n);
                Some(b)
            }
            Err(_) => None,
        };
        if actual.as_ref() != Some(&expected) {
            let (offset, reason) = match &actual {
                None => (0, "index file missing".to_string()),
                Some(a) => {
                    let at = a
                        .iter()
                        .zip(&expected)
                        .position(|(x, y)| x != y)
                        .unwrap_or(a.len().min(expected.len()));
                    (at as u64, "index inconsistent with the log".to_string())
                }
            };
            problem(out, &mut c, &index_path, offset, reason, false)?;
            if repair {
                atomic_write_with(fs, &index_path, &expected)?;
                writeln!(out, "rewrote: {}", index_path.display())?;
            }
        }
    }
    let Some((i, cut, kept_index)) = bad_at.filter(|_| repair) else {
        return Ok(c);
    };
    for (j, &base) in bases.iter().enumerate().skip(i) {
        let (log_path, index_path) = segment_paths(dir, base);
        let file = fs.open(&log_path, OpenMode::ReadWrite)?;
        let len = file.size()?;
        if j == i && cut > 0 {
            file.set_len(cut)?;
            file.sync_data()?;
            atomic_write_with(fs, &index_path, &encode_index(base, &kept_index))?;
            let d = Dropped {
                file: log_path,
                offset: cut,
                bytes: len - cut,
                records: None,
            };
            drop_line(out, &mut c, d)?;
        } else {
            // A whole later segment: count its records if it reads cleanly.
            let s = scan_whole(&file, base, len)?;
            let records = if s.bad.is_none() && j > i {
                Some(s.records)
            } else {
                None
            };
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
                    records,
                },
            )?;
        }
    }
    fs.sync_dir(dir)?;
    Ok(c)
}
