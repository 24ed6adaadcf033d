//! The keyspace write-ahead log: effect units in a segmented log keyed by
//! a sequence number, plus the base snapshot written by compaction.
//!
//! ```text
//! <dir>/wal/
//!   <hi:020>-<lo:020>.log / .index   the unit log (segmented log, key = unit seq)
//!   <seq:020>.base                   base: the keyspace captured from unit seq `seq` on
//!   <seq:020>.base.tmp               a base being written; removed at open
//! ```
//!
//! A unit is one atomic group of effects (one command, one EXEC block)
//! encoded by `db::effect`; this module only stores bytes.
//!
//! Base file (little-endian; the same grammar is in docs/format.md):
//!
//! ```text
//! base    = file_header(magic "RDLGBASE", base_key = start_seq) record* footer
//! record  = { u32 len | u32 crc32c(payload) | payload = { u128 chunk_no | chunk } }
//!           chunk_no = 1, 2, 3 ... (strictly increasing)
//! chunk   = { u128 captured_seq | unit }
//!           captured_seq: the next unit seq at the moment the chunk's keys were
//!           read; units with seq >= captured_seq happened after the capture
//! footer  = { u64 chunks | u64 keys | u128 max_captured_seq | u32 crc32c(first 32 bytes)
//!             | magic "BEND" }   (40 bytes, at the very end of the file)
//! ```
//!
//! A base is written to `.base.tmp`, fdatasynced, renamed, and the directory
//! fsynced; only then are older bases and the log segments wholly before
//! `start_seq` deleted. A crash at any step leaves either the old base with
//! its full log, or the new base with the log from `start_seq`: never a mix.
//! An older base left by such a crash is deleted only once the newest one
//! has been read in full (`Wal::remove_older_bases`, after replay), so a
//! damaged newest base still has a fallback for `redlog check --repair`
//! (`wal_check`).

use super::fs::{read_full_at, Fs, OpenMode, RealFs, StorageFile};
use super::log::recovery::RecoveryReport;
use super::log::{LogOptions, RecoveryMode, SegmentedLog};
use super::record::{
    decode_file_header, decode_record, encode_file_header, encode_record, Decoded,
    FILE_HEADER_BYTES,
};
use super::sync::SyncPolicy;
use super::{Error, Result, RECORD_VALUE_BYTES_MAX};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Magic of a base file's header.
pub const BASE_MAGIC: [u8; 8] = *b"RDLGBASE";
/// Last four bytes of a complete base file.
pub(crate) const FOOTER_MAGIC: [u8; 4] = *b"BEND";
/// Size of the base footer, bytes.
pub const BASE_FOOTER_BYTES: u64 = 40;
const BASE_SUFFIX: &str = ".base";
const TMP_SUFFIX: &str = ".base.tmp";
/// Base writes are buffered up to this size, then written in one call.
const BASE_WRITE_BUF_BYTES: usize = 1 << 20;
/// Base reads fetch this much at a time.
const BASE_READ_BUF_BYTES: usize = 1 << 20;
/// Disk space reserved ahead of the WAL's append position
/// (`LogOptions::preallocate`).
const WAL_PREALLOCATE: u64 = 4 << 20;

/// Options of [`Wal::open`].
#[derive(Debug, Clone)]
pub struct WalOptions {
    pub fs: Arc<dyn Fs>,
    /// Segment size of the unit log.
    pub segment_bytes: u64,
    pub recovery: RecoveryMode,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            fs: Arc::new(RealFs),
            segment_bytes: super::SEGMENT_BYTES_DEFAULT,
            recovery: RecoveryMode::TolerateTornTail,
        }
    }
}

/// The current base file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseInfo {
    pub start_seq: u128,
    pub path: PathBuf,
    pub bytes: u64,
    pub chunks: u64,
    pub keys: u64,
    pub max_captured_seq: u128,
}

#[derive(Debug)]
struct State {
    next_seq: u128,
    base: Option<BaseInfo>,
}

/// The keyspace WAL. `Send + Sync`; methods block.
#[derive(Debug)]
pub struct Wal {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    log: SegmentedLog,
    state: Mutex<State>,
}

pub(crate) fn base_name(seq: u128) -> String {
    format!("{seq:020}{BASE_SUFFIX}")
}

pub(crate) fn parse_base_name(name: &str) -> Option<u128> {
    let digits = name.strip_suffix(BASE_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn footer_bytes(
    chunks: u64,
    keys: u64,
    max_captured_seq: u128,
) -> [u8; BASE_FOOTER_BYTES as usize] {
    let mut f = [0u8; BASE_FOOTER_BYTES as usize];
    f[0..8].copy_from_slice(&chunks.to_le_bytes());
    f[8..16].copy_from_slice(&keys.to_le_bytes());
    f[16..32].copy_from_slice(&max_captured_seq.to_le_bytes());
    let crc = crc32c::crc32c(&f[0..32]);
    f[32..36].copy_from_slice(&crc.to_le_bytes());
    f[36..40].copy_from_slice(&FOOTER_MAGIC);
    f
}

/// Reads and checks a base file's header and footer.
fn read_base_info(fs: &dyn Fs, path: &Path) -> Result<BaseInfo> {
    let file = fs.open(path, OpenMode::Read)?;
    let bytes = file.size()?;
    let corrupt = |offset: u64, reason: &str| Error::Corruption {
        file: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };
    if bytes < FILE_HEADER_BYTES + BASE_FOOTER_BYTES {
        return Err(corrupt(0, "base file too short for header and footer"));
    }
    let mut h = [0u8; FILE_HEADER_BYTES as usize];
    read_full_at(&*file, &mut h, 0)?;
    let start_seq = decode_file_header(&h, BASE_MAGIC).map_err(|r| corrupt(0, r))?;
    let mut f = [0u8; BASE_FOOTER_BYTES as usize];
    let at = bytes - BASE_FOOTER_BYTES;
    read_full_at(&*file, &mut f, at)?;
    if f[36..40] != FOOTER_MAGIC
        || crc32c::crc32c(&f[0..32]) != u32::from_le_bytes([f[32], f[33], f[34], f[35]])
    {
        return Err(corrupt(
            at,
            "missing or damaged base footer (incomplete base)",
        ));
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&f[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let mut m = [0u8; 16];
    m.copy_from_slice(&f[16..32]);
    Ok(BaseInfo {
        start_seq,
        path: path.to_path_buf(),
        bytes,
        chunks: u64_at(0),
        keys: u64_at(8),
        max_captured_seq: u128::from_le_bytes(m),
    })
}

/// Sequential reader of a base file's chunks: `(captured_seq, unit bytes)`.
pub struct BaseReader {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
    next_chunk: u128,
    chunks_left: u64,
}

impl BaseReader {
    fn open(fs: &dyn Fs, info: &BaseInfo) -> Result<BaseReader> {
        Ok(BaseReader {
            file: fs.open(&info.path, OpenMode::Read)?,
            path: info.path.clone(),
            pos: FILE_HEADER_BYTES,
            end: info.bytes - BASE_FOOTER_BYTES,
            buf: Vec::new(),
            buf_start: FILE_HEADER_BYTES,
            next_chunk: 1,
            chunks_left: info.chunks,
        })
    }

    fn corrupt(&self, reason: &str) -> Error {
        Error::Corruption {
            file: self.path.clone(),
            offset: self.pos,
            reason: reason.to_string(),
        }
    }

    /// The next chunk, or None after the last one.
    pub fn next_chunk(&mut self) -> Result<Option<(u128, Vec<u8>)>> {
        if self.pos >= self.end {
            if self.chunks_left != 0 {
                return Err(self.corrupt("base ends before the chunk count of its footer"));
            }
            return Ok(None);
        }
        loop {
            let off = (self.pos - self.buf_start) as usize;
            let avail = &self.buf[off.min(self.buf.len())..];
            // Never decode past the footer.
            let limit = (self.end - self.pos) as usize;
            let view = &avail[..avail.len().min(limit)];
            match decode_record(view) {
                Decoded::Record { key, value, total } => {
                    if key != self.next_chunk {
                        return Err(self.corrupt("base chunk out of order"));
                    }
                    if value.len() < 16 {
                        return Err(self.corrupt("base chunk too short"));
                    }
                    let mut s = [0u8; 16];
                    s.copy_from_slice(&value[..16]);
                    let unit = value[16..].to_vec();
                    self.pos += total;
                    self.next_chunk += 1;
                    self.chunks_left = self.chunks_left.saturating_sub(1);
                    return Ok(Some((u128::from_le_bytes(s), unit)));
                }
                Decoded::Incomplete { need } => {
                    if need > limit as u64 {
                        return Err(self.corrupt("short record in base"));
                    }
                    // Refill from pos, at least `need` bytes.
                    let want = (need as usize).max(BASE_READ_BUF_BYTES).min(limit);
                    let mut buf = vec![0u8; want];
                    let n = read_full_at(&*self.file, &mut buf, self.pos)?;
                    if n < need as usize {
                        return Err(self.corrupt("short record in base"));
                    }
                    buf.truncate(n);
                    self.buf = buf;
                    self.buf_start = self.pos;
                }
                Decoded::Bad(b) => return Err(self.corrupt(b.describe())),
            }
        }
    }
}

/// Writes a new base; see [`Wal::begin_base`] and [`Wal::install_base`].
pub struct BaseWriter {
    file: Arc<dyn StorageFile>,
    tmp: PathBuf,
    start_seq: u128,
    pos: u64,
    buf: Vec<u8>,
    chunks: u64,
    keys: u64,
    max_captured_seq: u128,
    scratch: Vec<u8>,
}

impl BaseWriter {
    pub fn start_seq(&self) -> u128 {
        self.start_seq
    }

    /// Adds a chunk holding `keys` keys, captured when the next unit seq was
    /// `captured_seq`.
    pub fn write_chunk(&mut self, captured_seq: u128, keys: u64, unit: &[u8]) -> Result<()> {
        if unit.len() + 16 > RECORD_VALUE_BYTES_MAX as usize {
            return Err(Error::TooLarge {
                len: unit.len() as u64 + 16,
                max: u64::from(RECORD_VALUE_BYTES_MAX),
            });
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&captured_seq.to_le_bytes());
        self.scratch.extend_from_slice(unit);
        self.chunks += 1;
        self.keys += keys;
        self.max_captured_seq = self.max_captured_seq.max(captured_seq);
        encode_record(&mut self.buf, u128::from(self.chunks), &self.scratch);
        if self.buf.len() >= BASE_WRITE_BUF_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.pos)?;
            self.pos += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.pos + self.buf.len() as u64
    }
}

impl Wal {
    /// Opens (creating) the WAL in `dir`: removes unfinished bases, makes the
    /// newest base current (older ones stay until `remove_older_bases`),
    /// opens the unit log with recovery.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<(Wal, RecoveryReport)> {
        let dir = dir.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        fs.create_dir_all(&dir)?;
        let mut bases = Vec::new();
        for e in fs.list_dir(&dir)? {
            if e.is_dir {
                continue;
            }
            if e.name.ends_with(TMP_SUFFIX) {
                tracing::info!("removing unfinished base {}", dir.join(&e.name).display());
                fs.remove_file(&dir.join(&e.name))?;
            } else if let Some(seq) = parse_base_name(&e.name) {
                bases.push(seq);
            }
        }
        bases.sort_unstable();
        let base = match bases.last() {
            Some(&seq) => Some(read_base_info(&*fs, &dir.join(base_name(seq)))?),
            None => None,
        };
        // Older bases (a crash between installing a base and deleting its
        // predecessor leaves one behind) stay until the newest base has been
        // read in full (`remove_older_bases`): if it turns out damaged,
        // `redlog check --repair` can still recover from an older one.
        let log_opts = LogOptions {
            fs: fs.clone(),
            // Durability is driven by the caller (`sync`), so the policy can
            // change at run time (CONFIG SET appendfsync).
            sync: SyncPolicy::No,
            segment_bytes: opts.segment_bytes,
            segment_age_max: None,
            recovery: opts.recovery,
            preallocate: WAL_PREALLOCATE,
        };
        let (log, report) = SegmentedLog::open(&dir, log_opts)?;
        let after_log = log.last_key().map_or(1, |k| k + 1);
        let next_seq = after_log
            .max(base.as_ref().map_or(1, |b| b.start_seq))
            .max(1);
        Ok((
            Wal {
                fs,
                dir,
                log,
                state: Mutex::new(State { next_seq, base }),
            },
            report,
        ))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current base, if any.
    pub fn base(&self) -> Option<BaseInfo> {
        self.state().base.clone()
    }

    /// A reader of the current base's chunks.
    pub fn base_reader(&self) -> Result<Option<BaseReader>> {
        match self.base() {
            Some(b) => Ok(Some(BaseReader::open(&*self.fs, &b)?)),
            None => Ok(None),
        }
    }

    /// Units with seq >= the current base's start (all units when there is
    /// no base), ascending: `(seq, unit bytes)`.
    pub fn units(&self) -> impl Iterator<Item = Result<(u128, Vec<u8>)>> {
        let from = self.base().map_or(0, |b| b.start_seq);
        self.log
            .iter_from(from)
            .map(|r| r.map(|rec| (rec.key, rec.value)))
    }

    /// The seq the next appended unit gets.
    pub fn next_seq(&self) -> u128 {
        self.state().next_seq
    }

    /// Appends units in one write (handed to the OS when this returns; call
    /// `sync` for durability). Callers serialise appends (the keyspace lock)
    /// so units are stored in execution order.
    pub fn append(&self, units: &[Vec<u8>]) -> Result<()> {
        if units.is_empty() {
            return Ok(());
        }
        let mut st = self.state();
        let first = st.next_seq;
        let records: Vec<(u128, &[u8])> = units
            .iter()
            .enumerate()
            .map(|(i, u)| (first + i as u128, u.as_slice()))
            .collect();
        self.log.append_batch(&records)?;
        st.next_seq = first + units.len() as u128;
        Ok(())
    }

    /// fdatasyncs everything appended so far; concurrent callers share one
    /// fdatasync (group commit).
    pub fn sync(&self) -> Result<()> {
        self.log.sync()
    }

    /// The error that put the log in the failed state, if any.
    pub fn failure(&self) -> Option<Arc<std::io::Error>> {
        self.log.failure()
    }

    /// Bytes in the unit log.
    pub fn log_bytes(&self) -> u64 {
        self.log.total_bytes()
    }

    /// Bytes of the current base.
    pub fn base_bytes(&self) -> u64 {
        self.base().map_or(0, |b| b.bytes)
    }

    /// Starts a new base covering units from `next_seq` on. Call it while
    /// appends are held off (under the keyspace lock) so the capture and the
    /// start seq agree.
    pub fn begin_base(&self) -> Result<BaseWriter> {
        self.begin_base_at(self.next_seq())
    }

    /// `begin_base` for a caller that queues units before appending them:
    /// `start_seq` is the seq its next queued unit gets (units below it that
    /// are appended later are covered by the base and skipped by replay).
    pub fn begin_base_at(&self, start_seq: u128) -> Result<BaseWriter> {
        let tmp = self.dir.join(format!("{start_seq:020}{TMP_SUFFIX}"));
        let file = self.fs.open(&tmp, OpenMode::CreateTruncate)?;
        file.write_all_at(&encode_file_header(BASE_MAGIC, start_seq), 0)?;
        Ok(BaseWriter {
            file,
            tmp,
            start_seq,
            pos: FILE_HEADER_BYTES,
            buf: Vec::with_capacity(BASE_WRITE_BUF_BYTES),
            chunks: 0,
            keys: 0,
            max_captured_seq: start_seq,
            scratch: Vec::new(),
        })
    }

    /// Finishes a base (footer, fdatasync, rename, directory fsync), makes it
    /// current, then deletes the older base and the log segments wholly
    /// before its start.
    pub fn install_base(&self, mut w: BaseWriter) -> Result<BaseInfo> {
        let footer = footer_bytes(w.chunks, w.keys, w.max_captured_seq);
        w.buf.extend_from_slice(&footer);
        w.flush()?;
        w.file.sync_data()?;
        let path = self.dir.join(base_name(w.start_seq));
        self.fs.rename(&w.tmp, &path)?;
        self.fs.sync_dir(&self.dir)?;
        let info = BaseInfo {
            start_seq: w.start_seq,
            path,
            bytes: w.pos,
            chunks: w.chunks,
            keys: w.keys,
            max_captured_seq: w.max_captured_seq,
        };
        self.state().base = Some(info.clone());
        self.remove_older_bases()?;
        self.log.delete_segments_before(info.start_seq)?;
        Ok(info)
    }

    /// Deletes the bases older than the current one; call it once the
    /// current base has been read in full.
    pub fn remove_older_bases(&self) -> Result<()> {
        let Some(cur) = self.base() else {
            return Ok(());
        };
        let mut removed = false;
        for e in self.fs.list_dir(&self.dir)? {
            if let Some(seq) = parse_base_name(&e.name).filter(|&s| !e.is_dir && s < cur.start_seq)
            {
                tracing::info!(
                    "removing obsolete base {}",
                    self.dir.join(base_name(seq)).display()
                );
                self.fs.remove_file(&self.dir.join(&e.name))?;
                removed = true;
            }
        }
        if removed {
            self.fs.sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Drops an unfinished base.
    pub fn abort_base(&self, w: BaseWriter) {
        if let Err(e) = self.fs.remove_file(&w.tmp) {
            tracing::warn!("could not remove {}: {e}", w.tmp.display());
        }
    }
}

/// Verifies a base file completely (framing, CRCs, chunk order, footer);
/// returns the number of chunks. Used by `redlog check`.
pub fn verify_base(fs: &dyn Fs, path: &Path) -> Result<u64> {
    let info = read_base_info(fs, path)?;
    let mut r = BaseReader::open(fs, &info)?;
    let mut n = 0;
    while r.next_chunk()?.is_some() {
        n += 1;
    }
    if n != info.chunks {
        return Err(Error::Corruption {
            file: path.to_path_buf(),
            offset: info.bytes - BASE_FOOTER_BYTES,
            reason: format!("footer says {} chunks, file holds {n}", info.chunks),
        });
    }
    Ok(n)
}

/// True for a base file name (`<seq:020>.base`).
pub fn is_base_file(name: &str) -> bool {
    parse_base_name(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FaultyFs;

    fn opts(fs: &FaultyFs) -> WalOptions {
        WalOptions {
            fs: Arc::new(fs.clone()),
            segment_bytes: 256,
            recovery: RecoveryMode::TolerateTornTail,
        }
    }

    fn units(w: &Wal) -> Vec<(u128, Vec<u8>)> {
        w.units().collect::<Result<Vec<_>>>().unwrap()
    }

    #[test]
    fn append_reopen_and_base_replacement() {
        let fs = FaultyFs::new();
        let dir = Path::new("/d/wal");
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        for i in 0..50u8 {
            w.append(&[vec![i; 20]]).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(w.next_seq(), 51);
        let mut b = w.begin_base().unwrap();
        assert_eq!(b.start_seq(), 51);
        b.write_chunk(51, 2, b"chunk-one").unwrap();
        b.write_chunk(52, 1, b"chunk-two").unwrap();
        w.append(&[vec![99; 20]]).unwrap();
        let info = w.install_base(b).unwrap();
        assert_eq!((info.chunks, info.keys, info.max_captured_seq), (2, 3, 52));
        assert_eq!(units(&w), vec![(51, vec![99; 20])]);
        w.sync().unwrap();
        drop(w);
        fs.crash(crate::storage::fs::CrashMode::DropUnsynced);
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        assert_eq!(w.base().map(|b| b.start_seq), Some(51));
        let mut r = w.base_reader().unwrap().unwrap();
        assert_eq!(r.next_chunk().unwrap(), Some((51, b"chunk-one".to_vec())));
        assert_eq!(r.next_chunk().unwrap(), Some((52, b"chunk-two".to_vec())));
        assert_eq!(r.next_chunk().unwrap(), None);
        assert_eq!(units(&w), vec![(51, vec![99; 20])]);
        assert_eq!(w.next_seq(), 52);
        assert_eq!(verify_base(&fs, &info.path).unwrap(), 2);
    }

    #[test]
    fn older_base_stays_until_the_newest_was_read() {
        let fs = FaultyFs::new();
        let dir = Path::new("/d/wal");
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        w.append(&[b"a".to_vec()]).unwrap();
        let mut b = w.begin_base().unwrap();
        b.write_chunk(2, 1, b"old").unwrap();
        let old = w.install_base(b).unwrap();
        let old_bytes = fs.read_file(&old.path).unwrap();
        w.append(&[b"b".to_vec()]).unwrap();
        let mut b = w.begin_base().unwrap();
        b.write_chunk(3, 1, b"new").unwrap();
        let new = w.install_base(b).unwrap();
        assert!(!fs.exists(&old.path), "install deletes older bases");
        drop(w);
        // A crash between the rename and the deletion left the older one.
        fs.write_file(&old.path, &old_bytes);
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        assert_eq!(w.base().map(|b| b.path), Some(new.path.clone()));
        assert!(fs.exists(&old.path), "kept as a fallback while unread");
        w.remove_older_bases().unwrap();
        assert!(!fs.exists(&old.path));
        assert!(fs.exists(&new.path));
    }

    #[test]
    fn unfinished_base_is_ignored_and_removed() {
        let fs = FaultyFs::new();
        let dir = Path::new("/d/wal");
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        w.append(&[b"a".to_vec(), b"b".to_vec()]).unwrap();
        let mut b = w.begin_base().unwrap();
        b.write_chunk(3, 1, b"x").unwrap();
        b.flush().unwrap();
        w.sync().unwrap();
        drop(b);
        drop(w);
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        assert!(w.base().is_none());
        assert_eq!(units(&w).len(), 2);
        assert!(!fs
            .files()
            .iter()
            .any(|p| p.to_string_lossy().ends_with(TMP_SUFFIX)));
    }

    #[test]
    fn damaged_base_is_corruption() {
        let fs = FaultyFs::new();
        let dir = Path::new("/d/wal");
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        let mut b = w.begin_base().unwrap();
        b.write_chunk(1, 1, &[5u8; 100]).unwrap();
        let info = w.install_base(b).unwrap();
        drop(w);
        let mut bytes = fs.read_file(&info.path).unwrap();
        bytes[FILE_HEADER_BYTES as usize + 40] ^= 1;
        fs.write_file(&info.path, &bytes);
        let (w, _) = Wal::open(dir, opts(&fs)).unwrap();
        let mut r = w.base_reader().unwrap().unwrap();
        assert!(matches!(r.next_chunk(), Err(Error::Corruption { .. })));
        assert!(matches!(
            verify_base(&fs, &info.path),
            Err(Error::Corruption { .. })
        ));
        // A base cut short (no footer) refuses to open.
        let cut = bytes.len() - 10;
        fs.write_file(&info.path, &bytes[..cut]);
        assert!(matches!(
            Wal::open(dir, opts(&fs)),
            Err(Error::Corruption { .. })
        ));
    }
}
