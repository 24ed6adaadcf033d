//! Verifying one segmented log, the reader `redlog check` and
//! `RecoveryMode::Repair` share: every segment read in full (header,
//! framing, CRC, keys strictly increasing across the log, base key = first
//! key), its index compared with the one rebuilt from the log; with repair,
//! the log is truncated at the first bad record and every later segment is
//! deleted, each drop reported with the readable records it held.
//!
//! A compressed segment (`<stem>.clog`, one without a plain segment of the
//! same base: that one would win on open) is checked whole with
//! `clog::verify`: header, footer, index CRC and shape, and every block
//! (CRC, decoding, count and keys against the index); its damage is a
//! problem like a bad record's, and a repair drops the whole file (a
//! compressed segment is not cut inside) and every later segment.
//!
//! Below `recovery` (which runs it in Repair mode) and `check` (which runs
//! it on every log of a data dir that is not the keyspace WAL): neither is
//! imported here.

use super::atomic::atomic_write_with;
use super::clog::{clog_path, list_clogs};
use super::error::Result;
use super::fs::{read_full_at, Fs, OpenMode};
use super::index::encode_index;
use super::record::{decode_file_header, BadRecord, FILE_HEADER_BYTES, LOG_MAGIC};
use super::salvage::{fmt_key, scan_file};
use super::segment::{list_segments, scan_whole, segment_paths, valid_record_after};
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
    let plain = list_segments(fs, dir, None)?;
    let mut clogs = list_clogs(fs, dir)?;
    for b in &plain {
        clogs.remove(b);
    }
    let mut bases = plain.clone();
    bases.extend(clogs.iter().copied());
    bases.sort_unstable();
    let mode = if repair {
        OpenMode::ReadWrite
    } else {
        OpenMode::Read
    };
    let mut prev_last: Option<u128> = None;
    // (segment index, cut offset, kept records' index entries)
    let mut bad_at = None;
    for (i, &base) in bases.iter().enumerate() {
        if clogs.contains(&base) {
            let path = clog_path(dir, base);
            c.files += 1;
            c.segments += 1;
            c.bytes += fs.open(&path, OpenMode::Read)?.size()?;
            match super::clog::verify(fs, &path, base) {
                Ok((records, last)) => {
                    c.records += records;
                    if prev_last.is_some_and(|p| base <= p) {
                        let reason =
                            "segment base key not above the previous segment's last key".into();
                        problem(out, &mut c, &path, FILE_HEADER_BYTES, reason, true)?;
                        bad_at = Some((i, 0, Vec::new()));
                        break;
                    }
                    prev_last = Some(last);
                }
                Err((offset, reason, records)) => {
                    c.records += records;
                    problem(out, &mut c, &path, offset, reason, true)?;
                    bad_at = Some((i, 0, Vec::new()));
                    break;
                }
            }
            continue;
        }
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
        if clogs.contains(&base) {
            let path = clog_path(dir, base);
            let len = fs.open(&path, OpenMode::Read)?.size()?;
            let records = match super::clog::verify(fs, &path, base) {
                Ok((n, _)) => n,
                Err((_, _, n)) => n,
            };
            fs.remove_file(&path)?;
            let detail = format!("compressed segment: {records} readable records");
            drop_line(
                out,
                &mut c,
                Dropped {
                    file: path,
                    offset: 0,
                    bytes: len,
                    records: Some(records),
                    unreadable_bytes: 0,
                    keys: None,
                    detail,
                },
            )?;
            continue;
        }
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
