//! # Streams: metadata in memory, entries on disk
//!
//! A stream key's value (`Value::Stream`) is a [`StreamRef`]: a shared handle
//! to a [`Stream`], which owns the directory `<dir>/streams/<stream-id:020>/`:
//!
//! - the *entry log* (the segmented log of `storage::log` in the directory
//!   itself): one record per XADD, keyed by the entry's id (`ms << 64 | seq`),
//!   so the log's sparse index finds any id without an in-memory copy;
//! - the *op log* (`ops/`, keyed by a per-stream op sequence): one record per
//!   XDEL, trim, XSETID or XCONFIG, holding the ids it deleted and the
//!   stream's metadata *after* it, plus `at`, the entry-log key when it ran;
//! - `checkpoint`: metadata, per-segment live counts and deleted ids as of
//!   an entry-log key and an op sequence, replaced atomically.
//!
//! Why two logs: the entry log's keys must increase, and a tombstone or trim
//! mark has no key of its own between entry ids (XADD after XDEL may reuse
//! the next id). `at` puts every op at its exact place between entries, so
//! opening a stream (checkpoint, then entries and ops after it merged by
//! `at`) rebuilds the metadata exactly as it was, without reading the
//! entries the checkpoint covers.
//!
//! Memory per stream: `Meta`, one `SegStat` per segment, the sparse index
//! of the logs (storage), and the ids deleted by XDEL that no trim has
//! passed yet. No entry is kept in memory.
//!
//! Durability: XADD leaves its entry pending in the stream; op records are
//! written (to the OS) by their command. The WAL holds only the key ->
//! stream-id mapping (value type 6). Streams written during a batch are
//! collected in `Keyspace::stream_writes` and handed to the durability
//! stage (`node::durability`) with the batch's WAL units: it writes their
//! pending entries after the keyspace lock is released and before the
//! replies (without a WAL, at the end of the batch under the lock); under
//! `appendfsync always` it fsyncs them with the WAL before replying; under
//! `everysec` its flusher syncs every open stream (`Registry::sync_all`)
//! once a second.
//!
//! Deletion: dropping the last handle of an open stream moves its logs to
//! the registry's doomed list; `Registry::reap` removes the directories,
//! and is only called after the WAL units of the batch that dropped them
//! were written. Directories no key references after replay are removed at
//! startup (`Registry::attach`).

pub mod codec;
mod error;
pub mod groups;
pub mod id;
pub mod idmap;
/// The block codec lives in `storage` (compressed segments decode it).
pub use crate::storage::clog::BlockFilter;
pub use crate::storage::logblock;
mod state;

pub use codec::{Meta, SegStat};
pub use error::StreamError;
pub use id::{fmt_id, id_ms, id_seq, make_id};
pub use state::{Inner, TrimSpec, TrimStrategy};

use crate::storage::streams::{
    copy_stream_dir, ensure_root, list_stream_ids, remove_stream_dir, stream_dir,
};
use crate::storage::{Fs, SegmentedLog, SEGMENT_BYTES_DEFAULT};
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// One stream: its id and, once opened, its logs and metadata.
#[derive(Debug)]
pub struct Stream {
    pub id: u64,
    registry: Mutex<Weak<Registry>>,
    inner: Mutex<Option<Inner>>,
    /// LOGPARSE INGEST's format and template miner for this stream (set by
    /// the first INGEST). Not in the stream's files: the WAL carries it
    /// (value type 7 and `Effect::StreamIngestLearn`).
    pub ingest: Mutex<Option<Box<IngestState>>>,
}

/// The format and miner LOGPARSE INGEST uses for one stream.
#[derive(Debug, Clone)]
pub struct IngestState {
    /// The format's name as INGEST named it.
    pub name: bytes::Bytes,
    pub ingestor: crate::logparse::Ingestor,
    /// Learning applied to the miner and not logged yet: INGEST mines a
    /// chunk off the keyspace lock and logs it when it takes the lock
    /// again (`commands::logingest`); whoever logs next for this stream
    /// under the lock logs every one of them, in order.
    pub pending: Vec<PendingLearn>,
}

/// One mined batch's learning, for `Effect::StreamIngestLearn`.
#[derive(Debug, Clone, Default)]
pub struct PendingLearn {
    /// The miner's generation after the batch.
    pub gen: u64,
    /// Masked tokens of each line that changed the miner, in order.
    pub learned: Vec<Vec<bytes::Bytes>>,
    /// (template id, lines) that joined a template unchanged.
    pub hits: Vec<(u64, u64)>,
}

impl IngestState {
    pub fn new(name: bytes::Bytes, ingestor: crate::logparse::Ingestor) -> IngestState {
        IngestState {
            name,
            ingestor,
            pending: Vec::new(),
        }
    }
}

/// The value of a stream key: a shared handle (clones are the same stream;
/// COPY makes a new one with `Registry::copy`).
#[derive(Clone, Debug)]
pub struct StreamRef(pub Arc<Stream>);

impl PartialEq for StreamRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl StreamRef {
    /// A handle to stream `id` whose files are not opened yet (WAL replay).
    pub fn unopened(id: u64) -> StreamRef {
        StreamRef(Arc::new(Stream {
            id,
            registry: Mutex::new(Weak::new()),
            inner: Mutex::new(None),
            ingest: Mutex::new(None),
        }))
    }

    /// Whether the stream's files are open (false for a handle decoded
    /// from a WAL unit and not resolved: `Registry::find_open`).
    pub fn is_open(&self) -> bool {
        self.0.inner.lock().is_some()
    }

    /// The open stream's state, with the entries pending from earlier
    /// commands of the batch written first. Errors when the stream could
    /// not be opened or the pending entries not written.
    pub fn lock(&self) -> Result<MappedInner<'_>, StreamError> {
        let mut g = self.lock_pending()?;
        g.flush()?;
        Ok(g)
    }

    /// The open stream's state, pending entries left pending: for XADD,
    /// whose appends the end of the batch writes together (`flush`).
    pub fn lock_pending(&self) -> Result<MappedInner<'_>, StreamError> {
        let g = self.0.inner.lock();
        if g.is_none() {
            return Err(StreamError::NotOpen(self.0.id));
        }
        Ok(MappedInner(g))
    }

    /// Writes the entries appended by the batch's commands (see
    /// `state::Inner::flush`). Called for every stream a batch wrote, after
    /// the keyspace lock is released and before any of its replies leaves.
    /// The error's text is what the server's refusals and MISCONF carry.
    pub fn flush(&self) -> Result<(), StreamError> {
        match self.0.inner.lock().as_mut() {
            Some(i) => i.flush(),
            None => Ok(()),
        }
    }

    /// Metadata without touching the files (None when not open).
    pub fn meta(&self) -> Option<Meta> {
        self.0.inner.lock().as_ref().map(|i| i.meta)
    }
}

/// Guard on an open stream's state.
pub struct MappedInner<'a>(MutexGuard<'a, Option<Inner>>);

impl std::ops::Deref for MappedInner<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.0.as_ref().expect("checked open in StreamRef::lock")
    }
}

impl std::ops::DerefMut for MappedInner<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.0.as_mut().expect("checked open in StreamRef::lock")
    }
}

impl Drop for Stream {
    /// The last handle of an open stream is gone (its key was deleted or
    /// overwritten): queue its directory for removal after the WAL unit
    /// recording the deletion is written (`Registry::reap`).
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.get_mut().take() else {
            return;
        };
        // Entries a batch appended and has not written yet (it writes them
        // after releasing the keyspace lock): write them before the stream
        // is dropped, so the batch can acknowledge them.
        if let Err(e) = inner.flush() {
            tracing::error!("stream {}: pending entries lost: {e}", self.id);
        }
        match self.registry.get_mut().upgrade() {
            Some(reg) => reg.doomed.lock().push(Doomed {
                dir: stream_dir(&reg.root, self.id),
                inner,
            }),
            None => drop(inner),
        }
    }
}

/// A dropped stream whose directory waits for the WAL unit recording the
/// drop (see [`Registry::take_doomed`]).
#[derive(Debug)]
pub struct Doomed {
    dir: PathBuf,
    inner: Inner,
}

/// Every open stream of a server: id allocation, the everysec sync, the
/// background checkpoints and retention, and directory removal.
#[derive(Debug)]
pub struct Registry {
    pub root: PathBuf,
    pub fs: Arc<dyn Fs>,
    /// Entry-log segment size, bytes (`stream-segment-bytes`).
    pub segment_bytes: AtomicU64,
    /// Global retention (`stream-retention-ms`, `stream-retention-bytes`; 0 = off).
    pub retention_ms: AtomicU64,
    pub retention_bytes: AtomicU64,
    next_id: AtomicU64,
    open: Mutex<Vec<Weak<Stream>>>,
    doomed: Mutex<Vec<Doomed>>,
    /// Set while a primary propagates stream changes: `maintain` then
    /// notes its retention trims in `retention_trims`.
    pub note_trims: std::sync::atomic::AtomicBool,
    /// Retention trims not yet propagated: (stream id, the MINID that
    /// trims a replica's copy the same), taken by the server cron
    /// (`replication::primary::propagate_retention`).
    retention_trims: Mutex<Vec<(u64, u128)>>,
}

impl Registry {
    pub fn new(data_dir: &std::path::Path, fs: Arc<dyn Fs>) -> Registry {
        Registry {
            root: data_dir.join("streams"),
            fs,
            segment_bytes: AtomicU64::new(SEGMENT_BYTES_DEFAULT),
            retention_ms: AtomicU64::new(0),
            retention_bytes: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            open: Mutex::new(Vec::new()),
            doomed: Mutex::new(Vec::new()),
            note_trims: std::sync::atomic::AtomicBool::new(false),
            retention_trims: Mutex::new(Vec::new()),
        }
    }

    /// The retention trims noted since the last call (see
    /// `retention_trims`).
    pub fn take_retention_trims(&self) -> Vec<(u64, u128)> {
        std::mem::take(&mut *self.retention_trims.lock())
    }

    fn register(self: &Arc<Self>, s: &Arc<Stream>) {
        *s.registry.lock() = Arc::downgrade(self);
        let mut open = self.open.lock();
        if open.len() > 64 && open.len().is_power_of_two() {
            open.retain(|w| w.strong_count() > 0);
        }
        open.push(Arc::downgrade(s));
    }

    /// The open stream `id`, while a handle to it is alive (the
    /// replication stream resolves the streams a WAL unit names).
    pub fn find_open(&self, id: u64) -> Option<StreamRef> {
        self.open
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| s.id == id)
            .map(StreamRef)
    }

    /// Creates a new, empty stream with a fresh id.
    pub fn create(self: &Arc<Self>) -> Result<StreamRef, StreamError> {
        ensure_root(&*self.fs, &self.root)?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let dir = stream_dir(&self.root, id);
        // A leftover directory with this id (never referenced) is removed.
        remove_stream_dir(&*self.fs, &dir)?;
        let inner = Inner::open(self, &dir)?;
        let s = Arc::new(Stream {
            id,
            registry: Mutex::new(Weak::new()),
            inner: Mutex::new(Some(inner)),
            ingest: Mutex::new(None),
        });
        self.register(&s);
        Ok(StreamRef(s))
    }

    /// COPY: a new stream with the same entries and metadata (files copied
    /// after syncing the source and writing its checkpoint).
    pub fn copy(self: &Arc<Self>, src: &StreamRef) -> Result<StreamRef, StreamError> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let dir = stream_dir(&self.root, id);
        {
            let mut g = src.lock()?;
            g.write_checkpoint_now()?;
            remove_stream_dir(&*self.fs, &dir)?;
            // The source's files stay still while they are copied.
            let _files = g.hold_files();
            copy_stream_dir(&*self.fs, &stream_dir(&self.root, src.0.id), &dir)?;
        }
        let inner = Inner::open(self, &dir)?;
        let s = Arc::new(Stream {
            id,
            registry: Mutex::new(Weak::new()),
            inner: Mutex::new(Some(inner)),
            // The copy's value is logged whole (a final-state Set): it
            // has no learning left to log.
            ingest: Mutex::new(src.0.ingest.lock().clone().map(|mut st| {
                st.pending.clear();
                st
            })),
        });
        self.register(&s);
        Ok(StreamRef(s))
    }

    /// After WAL replay: opens the streams of `refs` (the database index,
    /// key and stream of every key holding one), removes the directories
    /// none of them references, and starts ids after the largest one seen.
    /// A referenced stream that cannot be opened fails the start. Returns
    /// the keys whose stream has no directory (possible only after a power
    /// loss lost the WAL unit deleting them, under everysec): the caller
    /// removes them. The keyspace side is `db`'s `Registry::attach`.
    pub fn attach_refs(
        self: &Arc<Self>,
        refs: Vec<(usize, Bytes, StreamRef)>,
    ) -> Result<Vec<(usize, Bytes)>, StreamError> {
        let on_disk = list_stream_ids(&*self.fs, &self.root)?;
        let mut referenced = HashSet::new();
        let mut missing = Vec::new();
        let mut max_id = on_disk.last().copied().unwrap_or(0);
        for (dbi, key, s) in refs {
            max_id = max_id.max(s.0.id);
            if !referenced.insert(s.0.id) {
                return Err(StreamError::ReferencedTwice(s.0.id));
            }
            let dir = stream_dir(&self.root, s.0.id);
            if !self.fs.exists(&dir) {
                missing.push((dbi, key));
                continue;
            }
            let inner = Inner::open(self, &dir)
                .map_err(|source| StreamError::Open { id: s.0.id, source })?;
            *s.0.inner.lock() = Some(inner);
            self.register(&s.0);
        }
        for id in on_disk {
            if !referenced.contains(&id) {
                let dir = stream_dir(&self.root, id);
                tracing::info!(
                    "removing stream directory {} that no key references",
                    dir.display()
                );
                remove_stream_dir(&*self.fs, &dir)?;
            }
        }
        self.next_id.store(max_id + 1, Ordering::SeqCst);
        Ok(missing)
    }

    /// Removes the directories of streams whose last handle was dropped.
    /// Call only after the WAL units of the batch were written.
    pub fn reap(&self) {
        let doomed = self.take_doomed();
        self.reap_these(doomed);
    }

    /// The streams dropped so far. Taken under the keyspace lock with the
    /// WAL units of the batch that dropped them, and passed to
    /// [`Registry::reap_these`] once those units are written.
    pub fn take_doomed(&self) -> Vec<Doomed> {
        std::mem::take(&mut *self.doomed.lock())
    }

    /// Removes the directories of `doomed`.
    pub fn reap_these(&self, doomed: Vec<Doomed>) {
        for d in doomed {
            drop(d.inner);
            if let Err(e) = remove_stream_dir(&*self.fs, &d.dir) {
                tracing::warn!("cannot remove stream directory {}: {e}", d.dir.display());
            }
        }
    }

    /// Whether streams wait in the doomed list.
    pub fn has_doomed(&self) -> bool {
        !self.doomed.lock().is_empty()
    }

    fn live(&self) -> Vec<Arc<Stream>> {
        let mut open = self.open.lock();
        open.retain(|w| w.strong_count() > 0);
        open.iter().filter_map(|w| w.upgrade()).collect()
    }

    /// fdatasyncs every open stream's logs (everysec flusher, shutdown).
    pub fn sync_all(&self) -> Result<(), crate::storage::Error> {
        let mut first_err = None;
        for s in self.live() {
            if let Err(e) = StreamRef(s).sync() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Background work for every open stream: retention (redlog
    /// extension, by whole segments), checkpoints when enough was written
    /// since the last one, deletion of trimmed segments.
    ///
    /// Retention runs under the stream's own lock, not the keyspace lock:
    /// each command still sees a consistent stream, but a retention trim
    /// does not signal WATCH (as Redis's own background work, e.g. lazy
    /// freeing, does not).
    pub fn maintain(&self) {
        let global_ms = self.retention_ms.load(Ordering::Relaxed);
        let global_bytes = self.retention_bytes.load(Ordering::Relaxed);
        let now = now_ms();
        for s in self.live() {
            let r = StreamRef(s);
            let job = match r.0.inner.lock().as_mut() {
                Some(i) => {
                    // A batch's pending entries are written by the batch
                    // (or here, under the same lock) before retention or a
                    // checkpoint looks at the log.
                    if let Err(e) = i.flush() {
                        tracing::warn!("stream {} write failed: {e}", r.0.id);
                        continue;
                    }
                    let ms = i.retention_ms.or((global_ms > 0).then_some(global_ms));
                    let bytes = i
                        .retention_bytes
                        .or((global_bytes > 0).then_some(global_bytes));
                    if ms.is_some() || bytes.is_some() {
                        match i.apply_retention(ms, bytes, now) {
                            Ok(n) if n > 0 && self.note_trims.load(Ordering::Relaxed) => {
                                // Every entry below the first live one is
                                // gone (none live: below the next id).
                                let m = i.meta;
                                let min = if m.length > 0 {
                                    m.first
                                } else {
                                    m.last_id.saturating_add(1)
                                };
                                self.retention_trims.lock().push((r.0.id, min));
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!("stream {} retention failed: {e}", r.0.id)
                            }
                        }
                    }
                    i.checkpoint_job(false)
                }
                None => None,
            };
            if let Some(job) = job {
                if let Err(e) = job.run() {
                    tracing::warn!("stream {} checkpoint failed: {e}", r.0.id);
                }
            }
        }
    }

    /// Writes a checkpoint of every open stream (clean shutdown).
    pub fn checkpoint_all(&self) {
        for s in self.live() {
            let r = StreamRef(s);
            let job = match r.0.inner.lock().as_mut() {
                Some(i) => match i.flush() {
                    Ok(()) => i.checkpoint_job(true),
                    Err(e) => {
                        tracing::warn!("stream {} write failed: {e}", r.0.id);
                        None
                    }
                },
                None => None,
            };
            if let Some(job) = job {
                if let Err(e) = job.run() {
                    tracing::warn!("stream {} checkpoint failed: {e}", r.0.id);
                }
            }
        }
    }
}

impl StreamRef {
    /// fdatasync of both logs (group-committed in storage); runs without
    /// holding the stream's lock.
    /// The error's text is the server's MISCONF reason (as `flush`).
    pub fn sync(&self) -> Result<(), crate::storage::Error> {
        let logs = self.0.inner.lock().as_ref().map(|i| i.logs());
        if let Some((log, ops)) = logs {
            log.sync()?;
            ops.sync()?;
        }
        Ok(())
    }
}

/// Both logs of a stream, for syncing off its lock.
pub type Logs = (Arc<SegmentedLog>, Arc<SegmentedLog>);

/// Wall-clock milliseconds (the retention clock; as `db::now_ms`).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
