//! Recovery on open: turn whatever a crash left in a log directory into a
//! valid log, or refuse with `Error::Corruption` naming file and offset.
//!
//! Rules (architecture.md, "Recovery policy"):
//! - Sealed segments were fsynced before the next segment was created, so
//!   they must be intact: a bad header is corruption. Their records are not
//!   scanned on open (a 100-million-entry stream must open in seconds); their
//!   index is validated (shape, order, bounds, last entry decodes with its
//!   key) and rebuilt from the log when missing or inconsistent. Reads and
//!   `redlog check` find a bad record in them later, as corruption.
//! - The newest segment is scanned from its last index entry that still
//!   matches the log. A bad record there is a *torn tail* iff no valid record
//!   starts anywhere after it (see `segment::valid_record_after`); a torn
//!   tail is truncated, fsynced, logged with `tracing::warn!` and reported.
//!   Anything else is corruption. A newest segment left with no record (or
//!   shorter than its header) is removed.
//! - `RecoveryMode::Repair` first runs the checker with repair on the log
//!   (truncate at the first bad record anywhere, drop what follows).
//! - Stale `*.tmp` files of interrupted atomic writes and index files without
//!   a log are removed.
//! - Compressed segments (`<stem>.clog`, `compact`): a `.clog` beside a
//!   plain `.log` of the same base is removed (the plain segment wins: the
//!   crash came between the rename and the plain file's deletion); a lone
//!   `.clog` is a sealed segment (header, footer and index checked on open,
//!   blocks when read). When the newest segment is compressed the log has
//!   no active segment; the next append creates one.

use super::{compact, entry_matches, load_index, Active, RecoveryMode, Sealed};
use crate::storage::atomic::atomic_write_with;
use crate::storage::clog::{clog_path, list_clogs, Clog};
use crate::storage::error::{Error, Result};
use crate::storage::fs::{read_full_at, Fs, OpenMode};
use crate::storage::index::{encode_index, valid_prefix, IndexEntry};
use crate::storage::record::{decode_file_header, FILE_HEADER_BYTES, LOG_MAGIC};
use crate::storage::segment::{
    list_segments, scan_segment, scan_whole, segment_paths, valid_record_after,
};
use crate::storage::verify::{verify_log, Dropped};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// A torn tail found and truncated by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    /// Offset where the bad record started (the new file length).
    pub offset: u64,
    /// Bytes removed.
    pub bytes_dropped: u64,
}

/// What recovery did on open.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub segments: usize,
    /// Records read while scanning the newest segment (or all, in Repair).
    pub records_scanned: u64,
    pub torn_tail: Option<TornTail>,
    /// Index files rebuilt from their logs.
    pub indexes_rebuilt: Vec<PathBuf>,
    /// Stale files removed (temp files, orphan indexes, empty segments).
    pub removed_files: Vec<PathBuf>,
    /// What `RecoveryMode::Repair` dropped.
    pub repaired: Vec<Dropped>,
}

pub(crate) struct Recovered {
    pub sealed: Vec<Arc<Sealed>>,
    pub active: Option<Active>,
    pub last_key: Option<u128>,
    pub report: RecoveryReport,
}

pub(crate) fn recover(fs: &dyn Fs, dir: &Path, mode: RecoveryMode) -> Result<Recovered> {
    let mut report = RecoveryReport::default();
    if !fs.exists(dir) {
        fs.create_dir_all(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent)?;
        }
    }
    if mode == RecoveryMode::Repair {
        let mut sink = std::io::sink();
        let check = verify_log(fs, dir, true, &mut sink)?;
        report.records_scanned = check.records;
        report.repaired = check.dropped;
    }
    let plain = list_segments(fs, dir, Some(&mut report.removed_files))?;
    let mut clogs = list_clogs(fs, dir)?;
    for b in &plain {
        if clogs.remove(b) {
            let p = clog_path(dir, *b);
            tracing::warn!(file = %p.display(), "removing compressed segment whose plain segment is still there (crash during the swap)");
            fs.remove_file(&p)?;
            report.removed_files.push(p);
        }
    }
    let mut dir_dirty = !report.removed_files.is_empty();
    // (base, compressed), ascending.
    let mut bases: Vec<(u128, bool)> = plain.iter().map(|&b| (b, false)).collect();
    bases.extend(clogs.iter().map(|&b| (b, true)));
    bases.sort_unstable();

    // The newest segment, scanned; older ones become empty newest segments'
    // predecessors if the newest turns out to hold nothing.
    let mut active = None;
    let mut last_key = None;
    while let Some(&(base, compressed)) = bases.last() {
        if compressed {
            break;
        }
        match recover_newest(fs, dir, base, mode, &mut report)? {
            Some((a, k)) => {
                active = Some(a);
                last_key = Some(k);
                bases.pop();
                break;
            }
            None => {
                bases.pop();
                dir_dirty = true;
            }
        }
    }
    let mut sealed = Vec::with_capacity(bases.len());
    for &(base, compressed) in &bases {
        sealed.push(Arc::new(if compressed {
            let c = Clog::open(fs, &clog_path(dir, base), base)?;
            compact::sealed_of(Arc::new(c), segment_paths(dir, base).1)
        } else {
            open_sealed(fs, dir, base, &mut report)?
        }));
    }
    if active.is_none() {
        if let Some(s) = sealed.last() {
            last_key = Some(s.last_key()?);
        }
    }
    if dir_dirty {
        fs.sync_dir(dir)?;
    }
    report.segments = sealed.len() + usize::from(active.is_some());
    Ok(Recovered {
        sealed,
        active,
        last_key,
        report,
    })
}

fn read_header(path: &Path, file: &dyn crate::storage::fs::StorageFile, base: u128) -> Result<()> {
    let mut h = [0u8; FILE_HEADER_BYTES as usize];
    let n = read_full_at(file, &mut h, 0)?;
    match decode_file_header(&h[..n], LOG_MAGIC) {
        Ok(b) if b == base => Ok(()),
        Ok(_) => Err(Error::corruption(
            path,
            16,
            "header base key differs from file name",
        )),
        Err(reason) => Err(Error::corruption(path, 0, reason)),
    }
}

/// Opens a sealed segment: header check, index validated or rebuilt, mapped.
fn open_sealed(fs: &dyn Fs, dir: &Path, base: u128, report: &mut RecoveryReport) -> Result<Sealed> {
    let (log_path, index_path) = segment_paths(dir, base);
    let file = fs.open(&log_path, OpenMode::ReadWrite)?;
    let len = file.size()?;
    read_header(&log_path, &*file, base)?;
    let index_ok = match fs.exists(&index_path).then(|| load_index(fs, &index_path)) {
        Some(Ok(idx)) => {
            let shape = idx.validate(base, len).is_ok() && !idx.is_empty();
            let last_ok = shape && entry_matches(&*file, idx.get(idx.len() - 1), len)?;
            last_ok.then_some(idx)
        }
        _ => None,
    };
    let index = match index_ok {
        Some(idx) => idx,
        None => {
            let out = scan_whole(&file, base, len)?;
            if let Some((pos, kind)) = out.bad {
                return Err(Error::corruption(&log_path, pos, kind.describe()));
            }
            if out.records == 0 {
                return Err(Error::corruption(
                    &log_path,
                    FILE_HEADER_BYTES,
                    "sealed segment has no records",
                ));
            }
            tracing::warn!(file = %index_path.display(), "index missing or inconsistent; rebuilt from the log");
            atomic_write_with(fs, &index_path, &encode_index(base, &out.index))?;
            report.indexes_rebuilt.push(index_path.clone());
            load_index(fs, &index_path)?
        }
    };
    Ok(Sealed {
        base,
        log_path,
        index_path,
        file,
        len,
        index,
        last_key: OnceLock::new(),
        clog: None,
    })
}

/// Recovers the newest segment. `None`: it held no record and was removed.
fn recover_newest(
    fs: &dyn Fs,
    dir: &Path,
    base: u128,
    mode: RecoveryMode,
    report: &mut RecoveryReport,
) -> Result<Option<(Active, u128)>> {
    let (log_path, index_path) = segment_paths(dir, base);
    let file = fs.open(&log_path, OpenMode::ReadWrite)?;
    let len = file.size()?;
    let remove = |report: &mut RecoveryReport| -> Result<()> {
        fs.remove_file(&log_path)?;
        if fs.exists(&index_path) {
            fs.remove_file(&index_path)?;
        }
        report.removed_files.push(log_path.clone());
        Ok(())
    };
    if len < FILE_HEADER_BYTES {
        // Crash while creating the segment: its header never became durable.
        if mode == RecoveryMode::Strict {
            return Err(Error::corruption(&log_path, 0, "short file header"));
        }
        tracing::warn!(file = %log_path.display(), bytes = len, "removing newest segment with a torn header");
        report.torn_tail = Some(TornTail {
            file: log_path.clone(),
            offset: 0,
            bytes_dropped: len,
        });
        remove(report)?;
        return Ok(None);
    }
    read_header(&log_path, &*file, base)?;

    // Index entries that still match the log; the scan resumes at the last.
    let mut entries = match fs.open(&index_path, OpenMode::Read) {
        Ok(f) => {
            let mut b = vec![0u8; f.size()? as usize];
            let n = read_full_at(&*f, &mut b, 0)?;
            b.truncate(n);
            valid_prefix(&b, base, len)
        }
        Err(_) => Vec::new(),
    };
    while let Some(&e) = entries.last() {
        if entry_matches(&*file, e, len)? {
            break;
        }
        entries.pop();
    }
    let start = entries.last().copied().unwrap_or(IndexEntry {
        key: base,
        pos: FILE_HEADER_BYTES,
    });
    let out = scan_segment(&file, start, len, entries)?;
    report.records_scanned += out.records;
    let mut valid_end = len;
    if let Some((pos, kind)) = out.bad {
        let torn = !valid_record_after(&*file, pos, len, out.last_key)?;
        if mode == RecoveryMode::Strict || !torn {
            let why = if torn {
                format!("{} (torn tail; strict recovery)", kind.describe())
            } else {
                format!("{} followed by valid records", kind.describe())
            };
            return Err(Error::corruption(&log_path, pos, why));
        }
        tracing::warn!(
            file = %log_path.display(),
            offset = pos,
            bytes = len - pos,
            reason = kind.describe(),
            "truncating torn tail of the newest segment"
        );
        file.set_len(pos)?;
        file.sync_data()?;
        report.torn_tail = Some(TornTail {
            file: log_path.clone(),
            offset: pos,
            bytes_dropped: len - pos,
        });
        valid_end = pos;
    }
    let Some(last_key) = out.last_key else {
        // No record after `start`; `start` is the header (entries are only
        // kept when their record decodes), so the segment is empty.
        tracing::warn!(file = %log_path.display(), "removing newest segment with no records");
        remove(report)?;
        return Ok(None);
    };
    // The active index is never mapped, so it is rewritten in place.
    let index_file = fs.open(&index_path, OpenMode::CreateTruncate)?;
    index_file.write_all_at(&encode_index(base, &out.index), 0)?;
    Ok(Some((
        Active {
            base,
            log_path,
            index_path,
            file,
            index_file,
            len: valid_end,
            reserved: 0,
            index: out.index,
            created: Instant::now(),
        },
        last_key,
    )))
}
