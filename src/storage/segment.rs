//! One segment on disk: `<name>.log` + `<name>.index`, file naming, and the
//! buffered record scanner shared by reads, recovery and `check`.
//!
//! File name rule: a segment is named after its base key (the key of its first
//! record) written as the two 64-bit halves of the `u128`, decimal,
//! zero-padded to 20 digits each: `<hi:020>-<lo:020>`. For a stream key
//! (`ms << 64 | seq`) that is exactly the stream ID `ms-seq`; for a WAL
//! sequence number `hi` is 0. Fixed width, so lexical order is key order, and
//! every `u128` fits.

use super::atomic::TMP_SUFFIX;
use super::error::Result;
use super::fs::{Fs, StorageFile};
use super::index::{wants_entry, IndexEntry};
use super::record::{decode_record, BadRecord, Decoded, FILE_HEADER_BYTES, RECORD_HEADER_BYTES};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Extension of segment log files.
pub const LOG_EXT: &str = "log";
/// Extension of segment index files.
pub const INDEX_EXT: &str = "index";
/// Read-ahead of the record scanner, bytes: large enough that a long scan
/// costs one `pread` per 64 KiB, small enough to keep many iterators cheap.
pub const SCAN_BUFFER_BYTES: usize = 64 * 1024;
/// First read of a scanner, bytes: one index interval plus a typical record,
/// so a point lookup reads ~8 KiB, not 64 KiB; later reads double up to
/// `SCAN_BUFFER_BYTES`.
pub const SCAN_FIRST_READ_BYTES: usize = 8 * 1024;
/// How many bytes after a bad record recovery searches for a valid record to
/// tell a torn tail from corruption. Equal to the default segment size: a torn
/// tail is at most the unsynced writes, far less; a longer region is called
/// corruption (refuse to start) rather than silently dropped.
pub const TORN_TAIL_SEARCH_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Bound on CRC work of that search, bytes, so adversarial tails stay cheap.
const TORN_TAIL_CRC_BUDGET_BYTES: u64 = 1024 * 1024 * 1024;

/// `<hi:020>-<lo:020>` for a base key.
pub fn segment_stem(base: u128) -> String {
    format!("{:020}-{:020}", (base >> 64) as u64, base as u64)
}

/// Paths of the log and index files of the segment `base` in `dir`.
pub fn segment_paths(dir: &Path, base: u128) -> (PathBuf, PathBuf) {
    let stem = segment_stem(base);
    (
        dir.join(format!("{stem}.{LOG_EXT}")),
        dir.join(format!("{stem}.{INDEX_EXT}")),
    )
}

/// Parses `<hi:020>-<lo:020>.<ext>`; returns the base key and the extension.
pub fn parse_segment_name(name: &str) -> Option<(u128, &str)> {
    let (stem, ext) = name.split_once('.')?;
    let (hi, lo) = stem.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hi) || !digits(lo) {
        return None;
    }
    let hi: u64 = hi.parse().ok()?;
    let lo: u64 = lo.parse().ok()?;
    Some(((u128::from(hi) << 64) | u128::from(lo), ext))
}

/// What the scanner found at its position.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned<'a> {
    Record {
        pos: u64,
        key: u128,
        value: &'a [u8],
        next: u64,
    },
    End,
    Bad {
        pos: u64,
        kind: BadRecord,
    },
}

/// Buffered forward reader of records in `[pos, end)` of one file.
#[derive(Debug)]
pub struct Scanner {
    file: Arc<dyn StorageFile>,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_off: u64,
    /// Size of the next read.
    readahead: usize,
}

impl Scanner {
    pub fn new(file: Arc<dyn StorageFile>, pos: u64, end: u64) -> Self {
        Scanner {
            file,
            pos,
            end,
            buf: Vec::new(),
            buf_off: pos,
            readahead: SCAN_FIRST_READ_BYTES,
        }
    }

    /// A scanner whose first read is `first` bytes (bounded by
    /// `SCAN_FIRST_READ_BYTES`; None: that size) when the caller knows how
    /// far its record can be.
    pub fn with_first_read(
        file: Arc<dyn StorageFile>,
        pos: u64,
        end: u64,
        first: Option<usize>,
    ) -> Self {
        let mut sc = Scanner::new(file, pos, end);
        if let Some(n) = first {
            sc.readahead = n.clamp(RECORD_HEADER_BYTES as usize + 16, SCAN_FIRST_READ_BYTES);
        }
        sc
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Raises the scan limit (the active segment grew).
    pub fn set_end(&mut self, end: u64) {
        self.end = end;
    }

    pub fn file(&self) -> &Arc<dyn StorageFile> {
        &self.file
    }

    /// Reads the next record. After `Bad` the scanner stays at the bad record.
    pub fn next_record(&mut self) -> io::Result<Scanned<'_>> {
        loop {
            if self.pos >= self.end {
                return Ok(Scanned::End);
            }
            let rel = usize::try_from(self.pos - self.buf_off).unwrap_or(usize::MAX);
            let avail = if self.pos >= self.buf_off && rel <= self.buf.len() {
                &self.buf[rel..]
            } else {
                &[][..]
            };
            match decode_record(avail) {
                Decoded::Record { key, total, .. } => {
                    let pos = self.pos;
                    self.pos += total;
                    let start = rel + RECORD_HEADER_BYTES as usize + 16;
                    let stop = rel + total as usize;
                    return Ok(Scanned::Record {
                        pos,
                        key,
                        value: &self.buf[start..stop],
                        next: self.pos,
                    });
                }
                Decoded::Bad(kind) => {
                    return Ok(Scanned::Bad {
                        pos: self.pos,
                        kind,
                    })
                }
                Decoded::Incomplete { need } => {
                    let left = self.end - self.pos;
                    if need > left {
                        return Ok(Scanned::Bad {
                            pos: self.pos,
                            kind: BadRecord::Short,
                        });
                    }
                    // need <= left <= file bytes, so this allocation is bounded
                    // by what the file really holds.
                    let want = (need.max(self.readahead as u64)).min(left) as usize;
                    self.readahead = (self.readahead * 2).min(SCAN_BUFFER_BYTES);
                    self.buf.resize(want, 0);
                    let got = super::fs::read_full_at(&*self.file, &mut self.buf, self.pos)?;
                    self.buf.truncate(got);
                    self.buf_off = self.pos;
                    if (got as u64) < need {
                        // The file is shorter than `end` (concurrently truncated).
                        return Ok(Scanned::Bad {
                            pos: self.pos,
                            kind: BadRecord::Short,
                        });
                    }
                }
            }
        }
    }
}

/// Result of scanning a segment's records.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// End of the last valid record (where a truncation would cut).
    pub valid_end: u64,
    pub first_key: Option<u128>,
    pub last_key: Option<u128>,
    /// Records read by this scan.
    pub records: u64,
    /// Index entries: the seed plus entries for the scanned records.
    pub index: Vec<IndexEntry>,
    /// First bad record, if any.
    pub bad: Option<(u64, BadRecord)>,
}

/// Scans records from `start.pos` (whose key must be `start.key`) to `end`,
/// checking CRCs and strictly increasing keys and extending `seed` (the index
/// entries before `start`, `start` included when it is an entry) by the index
/// rule.
pub fn scan_segment(
    file: &Arc<dyn StorageFile>,
    start: IndexEntry,
    end: u64,
    seed: Vec<IndexEntry>,
) -> io::Result<ScanOutcome> {
    let mut out = ScanOutcome {
        valid_end: start.pos,
        index: seed,
        ..ScanOutcome::default()
    };
    let mut sc = Scanner::new(file.clone(), start.pos, end);
    loop {
        match sc.next_record()? {
            Scanned::End => return Ok(out),
            Scanned::Bad { pos, kind } => {
                out.bad = Some((pos, kind));
                return Ok(out);
            }
            Scanned::Record { pos, key, next, .. } => {
                let in_order = match out.last_key {
                    None => key == start.key,
                    Some(prev) => key > prev,
                };
                if !in_order {
                    out.bad = Some((pos, BadRecord::KeyOrder));
                    return Ok(out);
                }
                if wants_entry(out.index.last(), pos) {
                    out.index.push(IndexEntry { key, pos });
                }
                out.first_key.get_or_insert(key);
                out.last_key = Some(key);
                out.records += 1;
                out.valid_end = next;
            }
        }
    }
}

/// Scans a whole segment from its first record.
pub fn scan_whole(file: &Arc<dyn StorageFile>, base: u128, end: u64) -> io::Result<ScanOutcome> {
    scan_segment(
        file,
        IndexEntry {
            key: base,
            pos: FILE_HEADER_BYTES,
        },
        end,
        Vec::new(),
    )
}

/// Torn-tail rule: a bad record at `bad_pos` of the newest segment is a torn
/// tail iff no valid record (length in range, CRC match, key > `prev_key`)
/// starts at any byte offset after it, up to `end`. A valid record after a bad
/// one means damage in the middle of the log (corruption), which a crash of an
/// append-only writer cannot produce. Regions longer than
/// `TORN_TAIL_SEARCH_BYTES_MAX` count as corruption.
pub fn valid_record_after(
    file: &dyn StorageFile,
    bad_pos: u64,
    end: u64,
    prev_key: Option<u128>,
) -> io::Result<bool> {
    let region_len = end.saturating_sub(bad_pos);
    if region_len > TORN_TAIL_SEARCH_BYTES_MAX {
        return Ok(true);
    }
    let mut region = vec![0u8; region_len as usize];
    let got = super::fs::read_full_at(file, &mut region, bad_pos)?;
    region.truncate(got);
    let mut budget = TORN_TAIL_CRC_BUDGET_BYTES;
    for off in 1..region.len() {
        let rest = &region[off..];
        if rest.len() < (RECORD_HEADER_BYTES + 16) as usize {
            break;
        }
        let len = u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
        if len < 16 || len + RECORD_HEADER_BYTES > rest.len() as u64 {
            continue;
        }
        if budget < len {
            return Ok(true);
        }
        budget -= len;
        if let Decoded::Record { key, .. } = decode_record(rest) {
            if prev_key.is_none_or(|p| key > p) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Bases of the segments in `dir` (sorted); removes stale temp files and
/// orphan indexes when `removed` is given (and lists them there).
pub(crate) fn list_segments(
    fs: &dyn Fs,
    dir: &Path,
    removed: Option<&mut Vec<PathBuf>>,
) -> Result<Vec<u128>> {
    let mut logs = BTreeSet::new();
    let mut indexes = BTreeSet::new();
    let mut stale = Vec::new();
    for e in fs.list_dir(dir)? {
        if e.is_dir {
            continue;
        }
        match parse_segment_name(&e.name) {
            Some((b, LOG_EXT)) => {
                logs.insert(b);
            }
            Some((b, INDEX_EXT)) => {
                indexes.insert(b);
            }
            Some((_, ext)) if ext.ends_with(TMP_SUFFIX) => stale.push(dir.join(&e.name)),
            _ => {}
        }
    }
    if let Some(removed) = removed {
        for b in indexes.difference(&logs) {
            stale.push(segment_paths(dir, *b).1);
        }
        for p in stale {
            tracing::warn!(file = %p.display(), "removing stale file");
            fs.remove_file(&p)?;
            removed.push(p);
        }
    }
    Ok(logs.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        for k in [
            0u128,
            42,
            u64::MAX as u128,
            (1_700_000_000_000u128 << 64) | 5,
            u128::MAX,
        ] {
            let (log, index) = segment_paths(Path::new("d"), k);
            let name = log.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            assert_eq!(parse_segment_name(name), Some((k, LOG_EXT)));
            let name = index
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            assert_eq!(parse_segment_name(name), Some((k, INDEX_EXT)));
        }
        assert_eq!(
            segment_stem(42),
            "00000000000000000000-00000000000000000042"
        );
        assert!(segment_stem(u64::MAX as u128) < segment_stem(1 << 64));
        assert_eq!(parse_segment_name("0-1.log"), None);
        assert_eq!(parse_segment_name("checkpoint"), None);
    }
}
