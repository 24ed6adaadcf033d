//! `redlog check [--repair] <dir>`: verify every segmented log under a data
//! dir, and optionally repair.
//!
//! A log is any directory holding `<hi:020>-<lo:020>.log` (or compressed
//! `.clog`) files (`wal/`,
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
use super::fs::{Fs, RealFs};
use super::segment::{parse_segment_name, LOG_EXT};
pub use super::verify::{drop_text, verify_log, Dropped, LogCheck, Problem};
use super::wal::is_base_file;
use super::wal_check::{check_wal, UnitKeys};
use std::io::Write;
use std::path::{Path, PathBuf};

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
        .any(|e| !e.is_dir && is_base_file(&e.name)))
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
            } else if matches!(
                parse_segment_name(&e.name),
                Some((_, LOG_EXT | super::clog::CLOG_EXT))
            ) || is_base_file(&e.name)
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
            check_wal(fs, &d, repair, opts.unit_keys, out)?
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
