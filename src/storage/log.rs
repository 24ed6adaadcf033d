//! [`SegmentedLog`]: an append-only log of `(u128 key, value)` records split
//! into segments (Kafka partition model).
//!
//! Invariants:
//! - Keys strictly increase across the whole log; a segment's base key is the
//!   key of its first record and every segment on disk holds >= 1 record.
//! - Only the newest segment (the *active* one) is written. A segment is
//!   fdatasynced (log and index) before the next one is created, and a new
//!   segment's file and directory entry are synced before its first record
//!   is written; so after any crash, damage can only be at the tail of the
//!   newest segment, and damage anywhere else is corruption.
//! - Sealed segments are immutable; their indexes are memory-mapped.
//! - One mutex (`Inner`) serialises writers and segment-list changes;
//!   fdatasync runs outside it (group commit, see `sync.rs`), and readers hold
//!   it only to locate a segment and a start position, then read with `pread`.
//!   A reader sees the records present when it reaches them; a `truncate_after`
//!   concurrent with a reader of the truncated range is the caller's to
//!   serialise (the reader restarts from its next key if it notices).
//!
//! Children: `iter` (the lazy readers) and `recovery` (open-time recovery
//! of a directory into this log's segments); both use the log's private
//! segment structures, so they live under it.

pub mod compact;
pub mod iter;
pub mod recovery;

use super::clog::Clog;
use super::error::{Error, Result};
use super::fs::{read_full_at, Fs, OpenMode, RealFs, StorageFile};
use super::index::{
    encode_entry, encode_index, lookup_by, wants_entry, IndexData, IndexEntry, INDEX_ENTRY_BYTES,
};
use super::record::{
    decode_record, encode_file_header, encode_record, record_bytes, Decoded, Record,
    FILE_HEADER_BYTES, LOG_MAGIC, RECORD_VALUE_BYTES_MAX,
};
use super::segment::{segment_paths, Scanned, Scanner};
use super::sync::{GroupCommit, Sticky, SyncPolicy};
use iter::{Iter, RevIter};
use recovery::{recover, RecoveryReport};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default segment size, bytes: Kafka's `log.segment.bytes` is 1 GiB; 64 MiB
/// keeps retention and trimming granular for many small streams and bounds
/// the torn-tail search of recovery.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest accepted segment size, bytes: a header plus a small record
/// (tests use tiny segments to exercise rolling).
pub const SEGMENT_BYTES_MIN: u64 = 64;
/// Interval of the background fdatasync under `SyncPolicy::EverySec`, as in
/// Redis `appendfsync everysec`.
pub const EVERYSEC_INTERVAL: Duration = Duration::from_secs(1);

/// What recovery on open may do with damaged data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Any bad record fails the open, even a torn tail.
    Strict,
    /// A torn tail of the newest segment is truncated (with a warning); any
    /// other bad record fails the open with `Error::Corruption`.
    #[default]
    TolerateTornTail,
    /// Every segment is verified; the log is truncated at the first bad
    /// record and everything after it is dropped (reported).
    Repair,
}

/// Options of [`SegmentedLog::open`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// File system used for every file operation.
    pub fs: Arc<dyn Fs>,
    pub sync: SyncPolicy,
    /// A segment is rolled before an append would make it larger than this
    /// (a single batch larger than this gets a segment of its own).
    pub segment_bytes: u64,
    /// A segment older than this (since creation or since open) is rolled at
    /// the next append. `None`: no age limit.
    pub segment_age_max: Option<Duration>,
    pub recovery: RecoveryMode,
    /// Disk space is reserved this many bytes ahead of the append position
    /// (`StorageFile::preallocate`, not changing the file's size) and the
    /// reserve past the end released when the segment is sealed; 0: off.
    /// An fdatasync after an append into reserved space does not have to
    /// allocate blocks, which shortens it on ext4: the WAL sets it; a log
    /// per stream does not (thousands of small streams would reserve that
    /// much each).
    pub preallocate: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            fs: Arc::new(RealFs),
            sync: SyncPolicy::default(),
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            segment_age_max: None,
            recovery: RecoveryMode::default(),
            preallocate: 0,
        }
    }
}

/// Where a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Base key of the segment holding the record.
    pub segment_base: u128,
    /// Byte offset of the record in the segment's `.log` file.
    pub offset: u64,
}

/// [`SegmentedLog::compressed_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressStats {
    pub segments: u64,
    pub blocks: u64,
    pub bytes: u64,
    pub decoded: u64,
    pub skipped: u64,
}

/// Description of one segment, for stats and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base: u128,
    pub log_path: PathBuf,
    pub bytes: u64,
}

/// A sealed (immutable) segment.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub base: u128,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    pub len: u64,
    pub index: IndexData,
    pub last_key: OnceLock<u128>,
    /// A compressed segment (`log_path` is its `.clog` file, `file` that
    /// file, `len` its size, `index` empty).
    pub clog: Option<Arc<Clog>>,
}

impl Sealed {
    /// Key of the last record (scans from the last index entry once).
    pub fn last_key(&self) -> Result<u128> {
        if let Some(c) = &self.clog {
            return Ok(c.last_key());
        }
        if let Some(k) = self.last_key.get() {
            return Ok(*k);
        }
        let start = if self.index.is_empty() {
            IndexEntry {
                key: self.base,
                pos: FILE_HEADER_BYTES,
            }
        } else {
            self.index.get(self.index.len() - 1)
        };
        let out = super::segment::scan_segment(&self.file, start, self.len, Vec::new())?;
        match (out.bad, out.last_key) {
            (None, Some(k)) => {
                let _ = self.last_key.set(k);
                Ok(k)
            }
            (Some((pos, kind)), _) => Err(Error::corruption(&self.log_path, pos, kind.describe())),
            (None, None) => Err(Error::corruption(
                &self.log_path,
                FILE_HEADER_BYTES,
                "segment has no records",
            )),
        }
    }
}

/// The newest segment, open for appends.
#[derive(Debug)]
pub(crate) struct Active {
    pub base: u128,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    pub index_file: Arc<dyn StorageFile>,
    /// Bytes of the log file that hold whole records (the append position).
    pub len: u64,
    /// Disk space is reserved up to here (`LogOptions::preallocate`).
    pub reserved: u64,
    pub index: Vec<IndexEntry>,
    pub created: Instant,
}

/// Mutable state under the log mutex.
#[derive(Debug)]
pub(crate) struct Inner {
    /// Older segments, ascending base.
    pub sealed: Vec<Arc<Sealed>>,
    /// The newest segment; `None` only when the log is empty.
    pub active: Option<Active>,
    pub last_key: Option<u128>,
    /// Running count of appended bytes: the group-commit ticket.
    pub ticket: u64,
    /// Sum of the sealed segments' log sizes.
    pub sealed_bytes: u64,
    buf: Vec<u8>,
}

/// A segment chosen by a reader and where to start in it.
#[derive(Debug)]
pub(crate) struct Located {
    pub base: u128,
    pub log_path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    pub end: u64,
    /// Start position and the key the record there must have (an index entry
    /// or the first record).
    pub start: IndexEntry,
    /// Index of the entry `start` came from, if any.
    pub entry: Option<usize>,
    /// Position of the index entry after `start`'s, if any: a lookup's
    /// record lies before it, so a first read of about this much suffices.
    pub block_end: Option<u64>,
    /// The segment is compressed: read it block by block.
    pub clog: Option<Arc<Clog>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub opts: LogOptions,
    pub inner: Mutex<Inner>,
    pub commit: GroupCommit,
    pub sticky: Sticky,
    /// Bumped by every truncation, so readers can tell a vanished tail from
    /// corruption.
    pub truncations: AtomicU64,
    /// Background compression of sealed segments (`compact`).
    pub compact: compact::Compactor,
    stop: Mutex<bool>,
    stop_cv: Condvar,
}

/// A segmented, CRC-checked, append-only log. `Send + Sync`; all methods take
/// `&self` and block (call from `spawn_blocking` or a dedicated thread).
#[derive(Debug)]
pub struct SegmentedLog {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    destroyed: bool,
}

fn io_err(sticky: &Sticky) -> impl Fn(io::Error) -> Error + '_ {
    move |e| sticky.fail(e)
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // Inner is only mutated after the I/O it describes succeeded; a panic
        // while holding the lock (a bug) leaves it describing the files.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn fs(&self) -> &dyn Fs {
        &*self.opts.fs
    }

    /// Blocks until every append with a ticket <= `ticket` is durable.
    pub fn wait_durable(&self, ticket: u64) -> Result<()> {
        self.commit.wait_durable(ticket, &self.sticky, &|| {
            let (covered, file) = {
                let inner = self.lock();
                (inner.ticket, inner.active.as_ref().map(|a| a.file.clone()))
            };
            if let Some(f) = file {
                f.sync_data()?;
            }
            Ok(covered)
        })
    }

    /// Finds where a forward read of keys >= `key` starts, among segments
    /// with base > `after_base` (all segments if `None`).
    pub fn locate(&self, key: u128, after_base: Option<u128>) -> Option<Located> {
        let inner = self.lock();
        let n = inner.sealed.len() + usize::from(inner.active.is_some());
        let base_at = |i: usize| match inner.sealed.get(i) {
            Some(s) => s.base,
            None => inner.active.as_ref().map_or(0, |a| a.base),
        };
        let first = match after_base {
            None => 0,
            Some(b) => lookup_by(n, base_at, b).map_or(0, |i| i + 1),
        };
        if first >= n {
            return None;
        }
        let i = lookup_by(n, base_at, key)
            .filter(|&i| i >= first)
            .unwrap_or(first);
        Some(locate_in(&inner, i, key))
    }

    /// For a reverse read of keys <= `hi`: the segment holding `hi` among
    /// segments with base < `before_base`, starting at the block of `hi`.
    pub fn locate_rev(&self, hi: u128, before_base: Option<u128>) -> Option<Located> {
        let inner = self.lock();
        let n = inner.sealed.len() + usize::from(inner.active.is_some());
        let base_at = |i: usize| match inner.sealed.get(i) {
            Some(s) => s.base,
            None => inner.active.as_ref().map_or(0, |a| a.base),
        };
        let key = match before_base {
            Some(0) => return None,
            Some(b) => hi.min(b - 1),
            None => hi,
        };
        let i = lookup_by(n, base_at, key)?;
        Some(locate_in(&inner, i, key))
    }

    /// Index entry `i` of the segment `base` (for reverse block walks).
    pub fn entry_at(&self, base: u128, i: usize) -> Option<IndexEntry> {
        let inner = self.lock();
        if let Some(a) = inner.active.as_ref().filter(|a| a.base == base) {
            return a.index.get(i).copied();
        }
        let s = inner.sealed.binary_search_by(|s| s.base.cmp(&base)).ok()?;
        let s = &inner.sealed[s];
        (s.clog.is_none() && i < s.index.len()).then(|| s.index.get(i))
    }

    /// Current end of segment `base` if it is still the active segment.
    pub fn active_end(&self, base: u128) -> Option<u64> {
        let inner = self.lock();
        inner
            .active
            .as_ref()
            .filter(|a| a.base == base)
            .map(|a| a.len)
    }
}

/// Start of a forward read of keys >= `key` in segment `i`.
fn locate_in(inner: &Inner, i: usize, key: u128) -> Located {
    if let Some(c) = inner.sealed.get(i).and_then(|s| s.clog.as_ref()) {
        return Located {
            base: c.base,
            log_path: c.path.clone(),
            file: c.file.clone(),
            end: c.len,
            start: IndexEntry {
                key: c.base,
                pos: FILE_HEADER_BYTES,
            },
            entry: None,
            block_end: None,
            clog: Some(c.clone()),
        };
    }
    let (base, log_path, file, end, entry, block_end) = match inner.sealed.get(i) {
        Some(s) => {
            let e = s.index.lookup(key).map(|j| (j, s.index.get(j)));
            let next = e
                .map(|(j, _)| j + 1)
                .filter(|&j| j < s.index.len())
                .map(|j| s.index.get(j).pos);
            (s.base, s.log_path.clone(), s.file.clone(), s.len, e, next)
        }
        None => {
            let a = inner
                .active
                .as_ref()
                .expect("segment index < segment count");
            let e = lookup_by(a.index.len(), |j| a.index[j].key, key).map(|j| (j, a.index[j]));
            let next = e.and_then(|(j, _)| a.index.get(j + 1)).map(|x| x.pos);
            (a.base, a.log_path.clone(), a.file.clone(), a.len, e, next)
        }
    };
    Located {
        base,
        log_path,
        file,
        end,
        start: entry.map_or(
            IndexEntry {
                key: base,
                pos: FILE_HEADER_BYTES,
            },
            |(_, e)| e,
        ),
        entry: entry.map(|(j, _)| j),
        block_end,
        clog: None,
    }
}

/// Creates the files of a new segment: header written and synced, index
/// header written, directory synced.
fn create_segment(fs: &dyn Fs, dir: &Path, base: u128) -> io::Result<Active> {
    let (log_path, index_path) = segment_paths(dir, base);
    let file = fs.open(&log_path, OpenMode::CreateTruncate)?;
    file.write_all_at(&encode_file_header(LOG_MAGIC, base), 0)?;
    file.sync_data()?;
    let index_file = fs.open(&index_path, OpenMode::CreateTruncate)?;
    index_file.write_all_at(&encode_index(base, &[]), 0)?;
    fs.sync_dir(dir)?;
    Ok(Active {
        base,
        log_path,
        index_path,
        file,
        index_file,
        len: FILE_HEADER_BYTES,
        reserved: 0,
        index: Vec::new(),
        created: Instant::now(),
    })
}

/// Maps (or reads) an index file for a sealed segment.
pub(crate) fn load_index(fs: &dyn Fs, path: &Path) -> io::Result<IndexData> {
    let f = fs.open(path, OpenMode::Read)?;
    if let Some(m) = f.map()? {
        return Ok(IndexData::Mapped(m));
    }
    let mut b =
        vec![0u8; usize::try_from(f.size()?).map_err(|_| io::Error::other("index too large"))?];
    let n = read_full_at(&*f, &mut b, 0)?;
    b.truncate(n);
    Ok(IndexData::Owned(b))
}

/// Turns a sealed segment back into the active one (after a truncation or a
/// recovery removed newer segments). The index file is replaced by rename,
/// never modified in place, because readers may still map the old one.
pub(crate) fn reactivate(fs: &dyn Fs, s: &Sealed) -> Result<Active> {
    let index: Vec<IndexEntry> = (0..s.index.len()).map(|i| s.index.get(i)).collect();
    super::atomic::atomic_write_with(fs, &s.index_path, &encode_index(s.base, &index))?;
    Ok(Active {
        base: s.base,
        log_path: s.log_path.clone(),
        index_path: s.index_path.clone(),
        file: fs.open(&s.log_path, OpenMode::ReadWrite)?,
        index_file: fs.open(&s.index_path, OpenMode::ReadWrite)?,
        len: s.len,
        reserved: 0,
        index,
        created: Instant::now(),
    })
}

impl SegmentedLog {
    /// Opens (creating if needed) the log in `dir`, running recovery as
    /// `options.recovery` says. Returns the log and what recovery did.
    pub fn open(
        dir: impl AsRef<Path>,
        options: LogOptions,
    ) -> Result<(SegmentedLog, RecoveryReport)> {
        if options.segment_bytes < SEGMENT_BYTES_MIN {
            return Err(Error::InvalidArgument(format!(
                "segment_bytes {} is below the minimum {SEGMENT_BYTES_MIN}",
                options.segment_bytes
            )));
        }
        let dir = dir.as_ref().to_path_buf();
        let rec = recover(&*options.fs, &dir, options.recovery)?;
        let sealed_bytes = rec.sealed.iter().map(|s| s.len).sum();
        let shared = Arc::new(Shared {
            dir,
            inner: Mutex::new(Inner {
                sealed: rec.sealed,
                active: rec.active,
                last_key: rec.last_key,
                ticket: 0,
                sealed_bytes,
                buf: Vec::new(),
            }),
            commit: GroupCommit::default(),
            sticky: Sticky::default(),
            truncations: AtomicU64::new(0),
            compact: compact::Compactor::default(),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            opts: options,
        });
        let flusher = if shared.opts.sync == SyncPolicy::EverySec {
            let s = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("redlog-fsync".into())
                    .spawn(move || flusher(&s))?,
            )
        } else {
            None
        };
        if compact::marked(shared.fs(), &shared.dir) {
            compact::enable(&shared)?;
        }
        Ok((
            SegmentedLog {
                shared,
                flusher,
                destroyed: false,
            },
            rec.report,
        ))
    }

    /// Appends one record; see [`SegmentedLog::append_batch`].
    pub fn append(&self, key: u128, value: &[u8]) -> Result<Position> {
        self.append_batch(&[(key, value)])
    }

    /// Appends records with strictly increasing keys, all greater than the
    /// last key, in one write (and under `Always` one shared fdatasync).
    /// Returns the position of the last record. The batch goes to one
    /// segment: a torn write may keep a prefix of it, never a hole.
    pub fn append_batch(&self, records: &[(u128, &[u8])]) -> Result<Position> {
        let s = &*self.shared;
        let (ticket, position) = {
            let mut inner = s.lock();
            s.sticky.check()?;
            let Some(&(first_key, _)) = records.first() else {
                return Err(Error::InvalidArgument("empty batch".into()));
            };
            let mut prev = inner.last_key;
            let mut batch_bytes = 0u64;
            for &(key, value) in records {
                if let Some(last) = prev.filter(|&p| key <= p) {
                    return Err(Error::KeyOrder { key, last });
                }
                if value.len() > RECORD_VALUE_BYTES_MAX as usize {
                    return Err(Error::TooLarge {
                        len: value.len() as u64,
                        max: u64::from(RECORD_VALUE_BYTES_MAX),
                    });
                }
                prev = Some(key);
                batch_bytes += record_bytes(value.len());
            }
            self.roll_if_needed(&mut inner, batch_bytes, first_key)?;
            let mut buf = std::mem::take(&mut inner.buf);
            buf.clear();
            let inner = &mut *inner;
            let a = inner
                .active
                .as_mut()
                .expect("roll_if_needed leaves an active segment");
            let mut idx = Vec::new();
            let mut last_pos = a.len;
            for &(key, value) in records {
                last_pos = a.len + buf.len() as u64;
                if wants_entry(a.index.last(), last_pos) {
                    let e = IndexEntry { key, pos: last_pos };
                    a.index.push(e);
                    encode_entry(&mut idx, e);
                }
                encode_record(&mut buf, key, value);
            }
            let end = a.len + buf.len() as u64;
            if s.opts.preallocate > 0 && end > a.reserved {
                let upto = end + s.opts.preallocate;
                // Best effort: without the reserve, writes allocate as usual.
                if let Err(e) = a.file.preallocate(a.reserved.max(a.len), upto) {
                    tracing::debug!("reserving space in {}: {e}", a.log_path.display());
                }
                a.reserved = upto;
            }
            let written = a.file.write_all_at(&buf, a.len);
            let idx_written = match (&written, idx.is_empty()) {
                (Ok(()), false) => {
                    let n_before = (a.index.len() - idx.len() / INDEX_ENTRY_BYTES as usize) as u64;
                    a.index_file
                        .write_all_at(&idx, FILE_HEADER_BYTES + n_before * INDEX_ENTRY_BYTES)
                }
                _ => Ok(()),
            };
            if let Err(e) = written.and(idx_written) {
                let new = idx.len() / INDEX_ENTRY_BYTES as usize;
                a.index.truncate(a.index.len() - new);
                inner.buf = buf;
                return Err(s.sticky.fail(e));
            }
            a.len += buf.len() as u64;
            inner.ticket += buf.len() as u64;
            inner.last_key = prev;
            let position = Position {
                segment_base: a.base,
                offset: last_pos,
            };
            if buf.capacity() > 1 << 20 {
                buf = Vec::new(); // do not keep a huge batch buffer alive
            }
            inner.buf = buf;
            (inner.ticket, position)
        };
        if s.opts.sync == SyncPolicy::Always {
            s.wait_durable(ticket)?;
        }
        Ok(position)
    }

    /// Seals the active segment and creates a new one if the batch would not
    /// fit or the segment is too old; creates the first segment of an empty log.
    fn roll_if_needed(&self, inner: &mut Inner, batch_bytes: u64, first_key: u128) -> Result<()> {
        let s = &*self.shared;
        if let Some(a) = &inner.active {
            let full = a.len + batch_bytes > s.opts.segment_bytes;
            let old = s
                .opts
                .segment_age_max
                .is_some_and(|m| a.created.elapsed() >= m);
            if a.len == FILE_HEADER_BYTES || !(full || old) {
                return Ok(());
            }
            self.seal_active(inner)?;
        }
        let a = create_segment(s.fs(), &s.dir, first_key).map_err(io_err(&s.sticky))?;
        inner.active = Some(a);
        Ok(())
    }

    /// fdatasyncs the active segment (log and index) and moves it to the
    /// sealed list with its index mapped.
    fn seal_active(&self, inner: &mut Inner) -> Result<()> {
        let s = &*self.shared;
        let Some(a) = inner.active.as_ref() else {
            return Ok(());
        };
        if a.reserved > a.len {
            // Give back the reserve past the end (same size: content and
            // length unchanged).
            if let Err(e) = a.file.set_len(a.len) {
                tracing::debug!("releasing reserved space of {}: {e}", a.log_path.display());
            }
        }
        let synced = a.file.sync_data().and_then(|_| a.index_file.sync_data());
        synced.map_err(io_err(&s.sticky))?;
        let index = load_index(s.fs(), &a.index_path).map_err(io_err(&s.sticky))?;
        let a = inner.active.take().expect("checked above");
        let last = OnceLock::new();
        if let Some(k) = inner.last_key {
            let _ = last.set(k);
        }
        inner.sealed_bytes += a.len;
        let base = a.base;
        inner.sealed.push(Arc::new(Sealed {
            base: a.base,
            log_path: a.log_path,
            index_path: a.index_path,
            file: a.file,
            len: a.len,
            index,
            last_key: last,
            clog: None,
        }));
        compact::enqueue(&self.shared, base);
        Ok(())
    }

    /// Makes every append so far durable (fdatasync, group-committed).
    pub fn sync(&self) -> Result<()> {
        let ticket = self.shared.lock().ticket;
        self.shared.wait_durable(ticket)
    }

    /// Records with keys >= `from`, ascending, read lazily from the files.
    pub fn iter_from(&self, from: u128) -> Iter {
        Iter::new(self.shared.clone(), from)
    }

    /// All records, ascending.
    pub fn iter(&self) -> Iter {
        self.iter_from(0)
    }

    /// Records with keys <= `hi`, descending, read lazily block by block
    /// (one index interval at a time).
    pub fn iter_rev_from(&self, hi: u128) -> RevIter {
        RevIter::new(self.shared.clone(), hi)
    }

    /// Up to `limit` records with `from <= key <= to`, ascending (XRANGE).
    pub fn read_range(&self, from: u128, to: u128, limit: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        for r in self.iter_from(from) {
            let r = r?;
            if r.key > to || out.len() >= limit {
                break;
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Up to `limit` records with `to_lo <= key <= from_hi`, descending (XREVRANGE).
    pub fn read_range_rev(&self, from_hi: u128, to_lo: u128, limit: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        if to_lo > from_hi {
            return Ok(out);
        }
        for r in self.iter_rev_from(from_hi) {
            let r = r?;
            if r.key < to_lo || out.len() >= limit {
                break;
            }
            out.push(r);
        }
        Ok(out)
    }

    /// The record with exactly `key`, if present.
    pub fn get(&self, key: u128) -> Result<Option<Record>> {
        match self.iter_from(key).next() {
            Some(Ok(r)) if r.key == key => Ok(Some(r)),
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }

    /// Drops every record with key > `key` (newer segments are deleted, the
    /// segment holding `key` is cut after it) durably. Returns the number of
    /// log bytes removed.
    pub fn truncate_after(&self, key: u128) -> Result<u64> {
        let s = &*self.shared;
        let _files = s.compact.swap_lock();
        let mut inner = s.lock();
        s.sticky.check()?;
        if inner.last_key.is_none_or(|l| l <= key) {
            return Ok(0);
        }
        let fail = io_err(&s.sticky);
        let mut removed = 0u64;
        // Newest first, so a crash midway leaves a valid (longer) log.
        if inner.active.as_ref().is_some_and(|a| a.base > key) {
            let a = inner.active.take().expect("checked");
            remove_segment_files(s.fs(), &a.log_path, &a.index_path).map_err(&fail)?;
            removed += a.len;
        }
        while inner.sealed.last().is_some_and(|x| x.base > key) {
            let x = inner.sealed.pop().expect("checked");
            remove_segment_files(s.fs(), &x.log_path, &x.index_path).map_err(&fail)?;
            inner.sealed_bytes -= x.len;
            removed += x.len;
        }
        if removed > 0 {
            s.fs().sync_dir(&s.dir).map_err(&fail)?;
        }
        if inner.active.is_none() {
            if let Some(c) = inner.sealed.last().and_then(|x| x.clog.clone()) {
                // The active segment is always plain.
                compact::to_plain(s.fs(), &s.dir, &c).map_err(|e| match e {
                    Error::Io(e) => s.sticky.fail(e),
                    e => e,
                })?;
                let (log_path, index_path) = super::segment::segment_paths(&s.dir, c.base);
                let file = s.fs().open(&log_path, OpenMode::ReadWrite).map_err(&fail)?;
                let len = file.size().map_err(&fail)?;
                let index = load_index(s.fs(), &index_path).map_err(&fail)?;
                let n = inner.sealed.len() - 1;
                inner.sealed_bytes = inner.sealed_bytes - c.len + len;
                inner.sealed[n] = Arc::new(Sealed {
                    base: c.base,
                    log_path,
                    index_path,
                    file,
                    len,
                    index,
                    last_key: OnceLock::new(),
                    clog: None,
                });
            }
            if let Some(x) = inner.sealed.pop() {
                inner.sealed_bytes -= x.len;
                inner.active = Some(reactivate(s.fs(), &x).map_err(|e| match e {
                    Error::Io(e) => s.sticky.fail(e),
                    e => e,
                })?);
            }
        }
        let inner = &mut *inner;
        inner.last_key = None;
        if let Some(a) = inner.active.as_mut() {
            let j = lookup_by(a.index.len(), |j| a.index[j].key, key);
            let start = j.map_or(FILE_HEADER_BYTES, |j| a.index[j].pos);
            let mut sc = Scanner::new(a.file.clone(), start, a.len);
            let mut cut = a.len;
            let mut last = None;
            loop {
                match sc.next_record().map_err(Error::Io)? {
                    Scanned::Record { pos, key: k, .. } if k > key => {
                        cut = pos;
                        break;
                    }
                    Scanned::Record { key: k, .. } => last = Some(k),
                    Scanned::End => break,
                    Scanned::Bad { pos, kind } => {
                        return Err(Error::corruption(&a.log_path, pos, kind.describe()))
                    }
                }
            }
            if cut < a.len {
                a.file.set_len(cut).map_err(&fail)?;
                a.file.sync_data().map_err(&fail)?;
                removed += a.len - cut;
                a.len = cut;
                // The truncation freed the reserve past `cut` too.
                a.reserved = cut;
                a.index.retain(|e| e.pos < cut);
                let n = a.index.len() as u64;
                a.index_file
                    .set_len(FILE_HEADER_BYTES + n * INDEX_ENTRY_BYTES)
                    .map_err(&fail)?;
            }
            inner.last_key = last;
        }
        s.truncations.fetch_add(1, Ordering::SeqCst);
        Ok(removed)
    }

    /// Deletes whole segments whose keys are all < `key`, oldest first,
    /// never the newest segment (it holds the last key, which keeps later
    /// appends ordered). Returns the number of segments deleted.
    pub fn delete_segments_before(&self, key: u128) -> Result<usize> {
        let s = &*self.shared;
        let _files = s.compact.swap_lock();
        let gone = {
            let mut inner = s.lock();
            s.sticky.check()?;
            let mut n = 0;
            for x in &inner.sealed {
                if x.last_key()? >= key {
                    break;
                }
                n += 1;
            }
            let gone: Vec<_> = inner.sealed.drain(..n).collect();
            inner.sealed_bytes -= gone.iter().map(|x| x.len).sum::<u64>();
            gone
        };
        // The files go without the lock held: unlinking big files and the
        // directory fsync take milliseconds, and appends and size queries
        // (INFO, under the keyspace lock) must not wait for them. Readers
        // that still hold a segment keep reading its open file.
        for x in &gone {
            remove_segment_files(s.fs(), &x.log_path, &x.index_path).map_err(io_err(&s.sticky))?;
        }
        if !gone.is_empty() {
            s.fs().sync_dir(&s.dir).map_err(io_err(&s.sticky))?;
        }
        Ok(gone.len())
    }

    /// Bytes of all `.log` files (headers included).
    pub fn total_bytes(&self) -> u64 {
        let inner = self.shared.lock();
        inner.sealed_bytes + inner.active.as_ref().map_or(0, |a| a.len)
    }

    pub fn segment_count(&self) -> usize {
        let inner = self.shared.lock();
        inner.sealed.len() + usize::from(inner.active.is_some())
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let inner = self.shared.lock();
        let mut v: Vec<SegmentInfo> = inner
            .sealed
            .iter()
            .map(|s| SegmentInfo {
                base: s.base,
                log_path: s.log_path.clone(),
                bytes: s.len,
            })
            .collect();
        if let Some(a) = &inner.active {
            v.push(SegmentInfo {
                base: a.base,
                log_path: a.log_path.clone(),
                bytes: a.len,
            });
        }
        v
    }

    /// Key of the first record, `None` if the log is empty.
    pub fn first_key(&self) -> Option<u128> {
        let inner = self.shared.lock();
        inner
            .sealed
            .first()
            .map(|s| s.base)
            .or(inner.active.as_ref().map(|a| a.base))
    }

    /// Key of the last record, `None` if the log is empty.
    pub fn last_key(&self) -> Option<u128> {
        self.shared.lock().last_key
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Whether a write or fsync failed (the log then refuses writes).
    pub fn is_failed(&self) -> bool {
        self.shared.sticky.get().is_some()
    }

    /// The write or fsync error that failed the log, if any.
    pub fn failure(&self) -> Option<Arc<io::Error>> {
        self.shared.sticky.get()
    }

    /// Compresses this log's sealed segments from now on, in the
    /// background, and the ones already sealed (`compact`); persisted by a
    /// marker file in the log's directory.
    pub fn set_compress_sealed(&self) -> Result<()> {
        compact::enable(&self.shared)
    }

    /// Whether sealed segments are compressed.
    pub fn compresses_sealed(&self) -> bool {
        self.shared.compact.enabled()
    }

    /// Waits until every queued segment was compressed (tests, benches).
    pub fn wait_compressed(&self) {
        self.shared.compact.wait_idle();
    }

    /// Compressed segments, their blocks and bytes, blocks decoded (cache
    /// misses) and blocks skipped by filtered readers since open.
    pub fn compressed_stats(&self) -> CompressStats {
        let inner = self.shared.lock();
        let mut st = CompressStats {
            skipped: self.shared.compact.skipped.load(Ordering::Relaxed),
            ..CompressStats::default()
        };
        for c in inner.sealed.iter().filter_map(|s| s.clog.as_ref()) {
            st.segments += 1;
            st.blocks += c.blocks.len() as u64;
            st.bytes += c.len;
            st.decoded += c.decoded.load(Ordering::Relaxed);
        }
        st
    }

    /// Holds the segment files still (no compression swap, deletion or
    /// truncation) while the caller copies them.
    pub fn hold_files(&self) -> MutexGuard<'_, ()> {
        self.shared.compact.swap_lock()
    }

    /// Test hook: the compressor stops at `k` as if the process died there.
    #[doc(hidden)]
    pub fn set_compress_kill_point(&self, k: Option<compact::KillPoint>) {
        self.shared.compact.set_kill(k);
    }

    /// Closes the log and deletes its directory with everything in it.
    pub fn destroy(mut self) -> Result<()> {
        self.shared.compact.stop();
        self.stop_flusher();
        self.destroyed = true;
        let fs = self.shared.opts.fs.clone();
        fs.remove_dir_all(&self.shared.dir)?;
        if let Some(parent) = self
            .shared
            .dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            fs.sync_dir(parent)?;
        }
        Ok(())
    }

    fn stop_flusher(&mut self) {
        if let Some(h) = self.flusher.take() {
            *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
            self.shared.stop_cv.notify_all();
            if h.join().is_err() {
                tracing::error!("fsync thread panicked");
            }
        }
    }
}

impl Drop for SegmentedLog {
    /// Stops the fsync thread and, on a healthy log, syncs what was written
    /// (a clean shutdown loses nothing under any policy).
    fn drop(&mut self) {
        self.shared.compact.stop();
        self.stop_flusher();
        if !self.destroyed && !self.is_failed() {
            if let Err(e) = self.sync() {
                tracing::warn!(dir = %self.shared.dir.display(), error = %e, "final sync on close failed");
            }
        }
    }
}

fn remove_segment_files(fs: &dyn Fs, log: &Path, index: &Path) -> io::Result<()> {
    fs.remove_file(log)?;
    match fs.remove_file(index) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Background fdatasync once a second (`SyncPolicy::EverySec`).
fn flusher(s: &Shared) {
    let mut stop = s.stop.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let (guard, _) = s
            .stop_cv
            .wait_timeout(stop, EVERYSEC_INTERVAL)
            .unwrap_or_else(|p| p.into_inner());
        stop = guard;
        if *stop || s.sticky.get().is_some() {
            return;
        }
        let ticket = s.lock().ticket;
        if ticket > s.commit.durable() {
            if let Err(e) = s.wait_durable(ticket) {
                tracing::error!(dir = %s.dir.display(), error = %e, "background fsync failed");
                return;
            }
        }
    }
}

/// Checks that the record at `e.pos` of `file` decodes with key `e.key`.
pub(crate) fn entry_matches(file: &dyn StorageFile, e: IndexEntry, end: u64) -> io::Result<bool> {
    let mut head = [0u8; 8];
    if e.pos + 8 > end || read_full_at(file, &mut head, e.pos)? < 8 {
        return Ok(false);
    }
    let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    if e.pos + 8 + len > end || len > u64::from(super::record::RECORD_PAYLOAD_BYTES_MAX) {
        return Ok(false);
    }
    let mut buf = vec![0u8; 8 + len as usize];
    if read_full_at(file, &mut buf, e.pos)? < buf.len() {
        return Ok(false);
    }
    Ok(matches!(decode_record(&buf), Decoded::Record { key, .. } if key == e.key))
}
