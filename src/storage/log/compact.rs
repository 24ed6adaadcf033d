//! Background compression of sealed segments into compressed segments
//! (`storage::clog`), for logs marked for it (`SegmentedLog::
//! set_compress_sealed`: the entry logs of streams LOGPARSE INGEST writes).
//! The active segment stays plain.
//!
//! One thread per log at most, started when a segment is queued and ending
//! when the queue is empty. For each queued sealed segment it:
//! 1. reads the plain segment's records (no lock held) and writes
//!    `<stem>.clog.tmp` block by block, then index and footer, fdatasync;
//! 2. under the log's `swap` mutex (which every other change of the segment
//!    list's files takes too: deletion, truncation, COPY's file copy)
//!    checks the segment is still sealed and plain, renames the temp file to
//!    `<stem>.clog`, fsyncs the directory, swaps the open segment in (under
//!    the log mutex, a moment), then deletes the plain `.log` and `.index`
//!    and fsyncs the directory.
//!
//! Crash points and what recovery makes of them (`recovery`): plain only:
//! plain; plain + `.clog.tmp`: the temp file is removed; plain + `.clog`
//! (renamed, plain not yet deleted): **the plain segment wins**, the
//! `.clog` is removed (and made again in the background): the plain file is
//! always whole when it exists (sealed, fsynced, only ever deleted whole),
//! so the rule never serves both and never loses a record; `.clog` only:
//! the compressed segment. A failure (I/O, records that are not stream
//! entries) leaves the plain segment in place and is logged.

use super::{Sealed, Shared};
use crate::storage::clog::{clog_path, Clog, ClogWriter, WriteError};
use crate::storage::error::{Error, Result};
use crate::storage::fs::{Fs, OpenMode};
use crate::storage::index::{encode_index, wants_entry, IndexData, IndexEntry};
use crate::storage::logblock::BLOCK_ENTRIES;
use crate::storage::record::{
    encode_file_header, encode_record, Record, FILE_HEADER_BYTES, LOG_MAGIC,
};
use crate::storage::segment::{segment_paths, Scanned, Scanner};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// Name of the file marking a log whose sealed segments are compressed.
pub const MARKER: &str = "compress-sealed";

/// Where a test stops the compressor, as if the process died there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillPoint {
    /// After the temp file was written and fsynced, before the rename.
    TmpWritten,
    /// After the rename and the directory fsync, before the plain files go.
    Renamed,
}

#[derive(Debug, Default)]
struct State {
    enabled: bool,
    queue: VecDeque<u128>,
    running: bool,
    stop: bool,
    kill: Option<KillPoint>,
}

/// The compression state of one log.
#[derive(Debug, Default)]
pub(crate) struct Compactor {
    state: Mutex<State>,
    cv: Condvar,
    /// Serialises changes of the segment files (see the module doc).
    pub swap: Mutex<()>,
    /// Segments compressed since open.
    pub compressed: AtomicU64,
    /// Blocks filtered readers skipped (`Iter::with_filter`) since open.
    pub skipped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Compactor {
    pub fn swap_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.swap)
    }

    pub fn enabled(&self) -> bool {
        lock(&self.state).enabled
    }

    pub fn set_kill(&self, k: Option<KillPoint>) {
        lock(&self.state).kill = k;
    }

    /// Stops the thread after its current block and waits for it to end.
    pub fn stop(&self) {
        let mut st = lock(&self.state);
        st.stop = true;
        st.queue.clear();
        while st.running {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until the queue is empty and the thread idle.
    pub fn wait_idle(&self) {
        let mut st = lock(&self.state);
        while st.running || !st.queue.is_empty() {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stopped(&self) -> bool {
        lock(&self.state).stop
    }
}

/// Marks the log (durably, once) and queues its plain sealed segments.
pub(crate) fn enable(s: &Arc<Shared>) -> Result<()> {
    {
        let mut st = lock(&s.compact.state);
        if st.enabled {
            return Ok(());
        }
        st.enabled = true;
    }
    let marker = s.dir.join(MARKER);
    if !s.fs().exists(&marker) {
        let f = s.fs().open(&marker, OpenMode::CreateTruncate)?;
        f.sync_data()?;
        s.fs().sync_dir(&s.dir)?;
    }
    let plain: Vec<u128> = s
        .lock()
        .sealed
        .iter()
        .filter(|x| x.clog.is_none())
        .map(|x| x.base)
        .collect();
    for b in plain {
        enqueue(s, b);
    }
    Ok(())
}

/// Whether `dir` carries the marker.
pub(crate) fn marked(fs: &dyn Fs, dir: &Path) -> bool {
    fs.exists(&dir.join(MARKER))
}

/// Queues a sealed segment (if compression is on) and starts the thread.
pub(crate) fn enqueue(s: &Arc<Shared>, base: u128) {
    let mut st = lock(&s.compact.state);
    if !st.enabled || st.stop {
        return;
    }
    st.queue.push_back(base);
    if st.running {
        return;
    }
    st.running = true;
    let shared = s.clone();
    let spawned = std::thread::Builder::new()
        .name("redlog-compress".into())
        .spawn(move || run(&shared));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start segment compression");
        st.running = false;
        st.queue.clear();
    }
}

fn run(s: &Shared) {
    loop {
        let base = {
            let mut st = lock(&s.compact.state);
            match st.queue.pop_front().filter(|_| !st.stop) {
                Some(b) => b,
                None => {
                    st.running = false;
                    s.compact.cv.notify_all();
                    return;
                }
            }
        };
        if let Err(e) = compress(s, base) {
            tracing::warn!(dir = %s.dir.display(), error = %e, "segment left uncompressed");
        }
        s.compact.cv.notify_all();
    }
}

/// Compresses the sealed segment `base` (see the module doc).
fn compress(s: &Shared, base: u128) -> std::result::Result<(), String> {
    let seg = s
        .lock()
        .sealed
        .iter()
        .find(|x| x.base == base && x.clog.is_none())
        .cloned();
    let Some(seg) = seg else {
        return Ok(());
    };
    let fs = s.fs();
    let path = clog_path(&s.dir, base);
    let tmp = crate::storage::atomic::tmp_path(&path);
    let written = write_clog(s, &seg, &tmp);
    match written {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            let _ = fs.remove_file(&tmp);
            return written.map(|_| ());
        }
    }
    let kill = lock(&s.compact.state).kill;
    if kill == Some(KillPoint::TmpWritten) {
        return Ok(());
    }
    let _g = s.compact.swap_lock();
    let still = s
        .lock()
        .sealed
        .iter()
        .any(|x| x.base == base && x.clog.is_none());
    if !still {
        let _ = fs.remove_file(&tmp);
        return Ok(());
    }
    let e = |e: std::io::Error| format!("{}: {e}", path.display());
    fs.rename(&tmp, &path).map_err(e)?;
    fs.sync_dir(&s.dir).map_err(e)?;
    if kill == Some(KillPoint::Renamed) {
        return Ok(());
    }
    let clog = match Clog::open(fs, &path, base) {
        Ok(c) => Arc::new(c),
        Err(err) => {
            let _ = fs.remove_file(&path);
            return Err(err.to_string());
        }
    };
    {
        let mut inner = s.lock();
        if let Some(slot) = inner.sealed.iter_mut().find(|x| x.base == base) {
            let len = clog.len;
            *slot = Arc::new(sealed_of(clog, seg.index_path.clone()));
            inner.sealed_bytes = inner.sealed_bytes - seg.len + len;
        }
    }
    fs.remove_file(&seg.log_path).map_err(e)?;
    let _ = fs.remove_file(&seg.index_path);
    fs.sync_dir(&s.dir).map_err(e)?;
    s.compact.compressed.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The segment-list entry of a compressed segment.
pub(crate) fn sealed_of(clog: Arc<Clog>, index_path: PathBuf) -> Sealed {
    let last = OnceLock::new();
    let _ = last.set(clog.last_key());
    Sealed {
        base: clog.base,
        log_path: clog.path.clone(),
        index_path,
        file: clog.file.clone(),
        len: clog.len,
        index: IndexData::Owned(Vec::new()),
        last_key: last,
        clog: Some(clog),
    }
}

/// Writes the compressed form of `seg` to `tmp`; false: stopped meanwhile.
fn write_clog(s: &Shared, seg: &Sealed, tmp: &Path) -> std::result::Result<bool, String> {
    let e = |e: std::io::Error| format!("{}: {e}", tmp.display());
    let mut w = ClogWriter::create(s.fs(), tmp, seg.base).map_err(e)?;
    let mut sc = Scanner::new(seg.file.clone(), FILE_HEADER_BYTES, seg.len);
    let mut chunk: Vec<Record> = Vec::with_capacity(BLOCK_ENTRIES);
    let add = |w: &mut ClogWriter, chunk: &mut Vec<Record>| -> std::result::Result<(), String> {
        match w.add(chunk) {
            Ok(()) => {}
            Err(WriteError::Io(err)) => return Err(e(err)),
            Err(WriteError::NotEntries) => {
                return Err(format!(
                    "{}: records that are not stream entries",
                    seg.log_path.display()
                ))
            }
        }
        chunk.clear();
        Ok(())
    };
    loop {
        match sc.next_record().map_err(e)? {
            Scanned::Record { key, value, .. } => {
                chunk.push(Record {
                    key,
                    value: value.to_vec(),
                });
                if chunk.len() == BLOCK_ENTRIES {
                    if s.compact.stopped() {
                        return Ok(false);
                    }
                    add(&mut w, &mut chunk)?;
                }
            }
            Scanned::End => break,
            Scanned::Bad { pos, kind } => {
                return Err(Error::corruption(&seg.log_path, pos, kind.describe()).to_string())
            }
        }
    }
    add(&mut w, &mut chunk)?;
    w.finish().map_err(e)?;
    Ok(true)
}

/// Turns the compressed segment `c` back into a plain one (a truncation is
/// about to make it the active segment): `.log` and `.index` written through
/// temp files and renamed, directory fsynced, then the `.clog` deleted (a
/// crash in between leaves plain + `.clog`: plain wins, as above).
pub(crate) fn to_plain(fs: &dyn Fs, dir: &Path, c: &Clog) -> Result<()> {
    let (log_path, index_path) = segment_paths(dir, c.base);
    let mut buf = encode_file_header(LOG_MAGIC, c.base).to_vec();
    let mut index: Vec<IndexEntry> = Vec::new();
    for i in 0..c.blocks.len() {
        for r in c.decode_block(i)? {
            let pos = buf.len() as u64;
            if wants_entry(index.last(), pos) {
                index.push(IndexEntry { key: r.key, pos });
            }
            encode_record(&mut buf, r.key, &r.value);
        }
    }
    crate::storage::atomic::atomic_write_with(fs, &index_path, &encode_index(c.base, &index))?;
    crate::storage::atomic::atomic_write_with(fs, &log_path, &buf)?;
    fs.remove_file(&c.path)?;
    fs.sync_dir(dir)?;
    Ok(())
}
