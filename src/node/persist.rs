//! Durability of the keyspace: the WAL append after each batch, the fsync
//! policy, replay at startup, and compaction (the AOF-rewrite analogue).
//!
//! Write path: `node::durability`, the stage between the keyspace lock
//! and the replies (group write, group commit, the everysec flusher, the
//! sticky failure); this module gives it the WAL to write ([`WalSink`]).
//!
//! Compaction writes a base snapshot without stopping clients: it reads the
//! keyspace in chunks of at most `CHUNK_KEYS_MAX` keys (one short lock hold
//! each) and writes each chunk off the lock, noting the WAL seq at which the
//! chunk was captured. Replay loads the base, then the units from the base's
//! start seq, skipping for each key the effects older than that key's
//! capture. A SWAPDB during a compaction makes the capture inconsistent; the
//! compaction is abandoned and retried.

use super::durability::{Durability, Sink, SinkError};
use crate::db::effect::{apply, decode_unit, encode_unit, Effect};
use crate::db::{Keyspace, DATABASES};
use crate::storage::dirlock::{lock_dir, DirLock};
use crate::storage::wal::{Wal, WalOptions};
use crate::storage::Fs;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Keys per base chunk: bounds how long one capture holds the keyspace lock.
pub const CHUNK_KEYS_MAX: usize = 1000;
/// Value bytes per base chunk: large values end a chunk early so a chunk
/// stays a bounded record.
pub const CHUNK_BYTES_MAX: usize = 4 << 20;

/// Why opening, replaying or compacting the WAL failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot lock {}: {source}", .dir.display())]
    Lock {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    #[error("WAL sequence numbers past 2^64")]
    SeqOverflow,
    #[error("WAL {what} {seq} cannot be decoded: {reason} (run `redlog check` on the data dir)")]
    Corrupt {
        what: &'static str,
        seq: u128,
        reason: String,
    },
    #[error("WAL unit {0}: SWAPDB inside a base capture window")]
    SwapInCaptureWindow(u128),
    #[error("SWAPDB ran during the rewrite; it will be retried")]
    SwapDuringRewrite,
}

/// Text of an I/O error as C's strerror prints it (Redis's MISCONF text
/// uses strerror): Rust's "(os error N)" suffix removed.
fn strerror(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The I/O error under a storage error (what strerror would print), or the
/// storage error itself.
fn io_cause(e: &crate::storage::Error) -> String {
    match e {
        crate::storage::Error::Io(io) => io.to_string(),
        crate::storage::Error::PreviousIo(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The WAL and its compaction state, shared by the server (the write path
/// is `node::durability`).
#[derive(Debug)]
pub struct Persistence {
    pub wal: Wal,
    /// Seq of the WAL's next unit when it was opened (where the durability
    /// stage starts).
    pub opened_at_seq: u64,
    pub loading: AtomicBool,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    pub last_rewrite_time_sec: AtomicI64,
    pub last_rewrite_ok: AtomicBool,
    pub rewrites: AtomicU64,
    /// WAL size (base + log) right after the last compaction or load;
    /// the auto-rewrite growth is measured against it (`aof_base_size`).
    pub base_size: AtomicU64,
    /// Unix seconds of the last completed base (LASTSAVE).
    pub last_save_unix: AtomicU64,
    /// Held while the server runs; released by `release`.
    lock: Mutex<Option<DirLock>>,
}

/// What replay did, for the startup log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayStats {
    pub base_chunks: u64,
    pub units: u64,
    pub bytes: u64,
    pub seconds: f64,
}

impl Persistence {
    /// Locks `<dir>`, opens `<dir>/wal` with recovery.
    pub fn open(dir: &Path, fs: Arc<dyn Fs>) -> Result<Persistence, PersistError> {
        let lock = lock_dir(dir).map_err(|source| PersistError::Lock {
            dir: dir.to_path_buf(),
            source,
        })?;
        let opts = WalOptions {
            fs,
            ..WalOptions::default()
        };
        log_repair_report(&*opts.fs, dir);
        let (wal, report) = Wal::open(dir.join("wal"), opts)?;
        if let Some(t) = &report.torn_tail {
            tracing::warn!(
                "WAL had a torn tail (an incomplete write at a crash): truncated {} at offset {}, {} bytes dropped",
                t.file.display(),
                t.offset,
                t.bytes_dropped
            );
        }
        let size = wal.log_bytes() + wal.base_bytes();
        let opened_at_seq = u64::try_from(wal.next_seq()).map_err(|_| PersistError::SeqOverflow)?;
        Ok(Persistence {
            wal,
            opened_at_seq,
            loading: AtomicBool::new(false),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            last_rewrite_time_sec: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            base_size: AtomicU64::new(size),
            last_save_unix: AtomicU64::new(crate::db::now_ms() / 1000),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// Releases the data directory at shutdown, after the durability
    /// stage's `close` (which refuses later writes).
    pub fn release(&self) {
        self.lock.lock().take();
    }

    /// `aof_current_size`: base plus log bytes.
    pub fn current_size(&self) -> u64 {
        self.wal.log_bytes() + self.wal.base_bytes()
    }
}

/// The WAL as the durability stage writes it.
#[derive(Debug)]
pub struct WalSink(pub Arc<Persistence>);

impl Sink for WalSink {
    fn write(&self, first: u64, units: &[Vec<u8>]) -> Result<(), SinkError> {
        let next = self.0.wal.next_seq();
        if next != u128::from(first) {
            // Cannot happen while every queued unit is written in order.
            return Err(SinkError::OutOfOrder { first, log: next });
        }
        self.0
            .wal
            .append(units)
            .map_err(|e| SinkError::Io(strerror(&io_cause(&e))))
    }

    fn sync(&self) -> Result<(), SinkError> {
        self.0
            .wal
            .sync()
            .map_err(|e| SinkError::Io(strerror(&io_cause(&e))))
    }
}

/// Logs the report of a `redlog check --repair` that dropped data (one
/// warning per line), then renames it so the next start does not repeat it.
/// Called with the data directory locked.
fn log_repair_report(fs: &dyn Fs, dir: &Path) {
    use crate::storage::{REPAIR_REPORT, REPAIR_REPORT_SEEN};
    let path = dir.join(REPAIR_REPORT);
    let text = match crate::storage::streams::read_small_file(fs, &path) {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            return;
        }
    };
    tracing::warn!(
        "a repair of this data directory dropped data; {} says what:",
        path.display()
    );
    for line in String::from_utf8_lossy(&text).lines() {
        tracing::warn!("{line}");
    }
    let seen = dir.join(REPAIR_REPORT_SEEN);
    match fs.rename(&path, &seen).and_then(|()| fs.sync_dir(dir)) {
        Ok(()) => tracing::warn!("repair report kept as {}", seen.display()),
        Err(e) => tracing::warn!("cannot rename {}: {e}", path.display()),
    }
}

/// The `(db, key)` pairs a WAL unit or base chunk touches (None: the bytes
/// do not decode); `redlog check` counts dropped keys with it.
pub fn unit_keys(unit: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
    let effects = decode_unit(unit).ok()?;
    let mut keys: Vec<(u8, Vec<u8>)> = effects
        .iter()
        .filter_map(|e| e.target().map(|(db, k)| (db, k.to_vec())))
        .collect();
    keys.sort();
    keys.dedup();
    Some(keys)
}

fn effect_key(e: &Effect) -> Option<(u8, &Bytes)> {
    e.target()
}

/// Per-key capture seqs of the base, for the keys that units inside the
/// capture window touch.
struct CaptureFilter {
    /// Units with seq >= this happened after every capture: no filtering.
    max_captured_seq: u128,
    /// A flush happened in the window: capture seqs of all keys are kept.
    all_keys: bool,
    wanted: HashSet<(u8, Bytes)>,
    captured: HashMap<(u8, Bytes), u128>,
}

impl CaptureFilter {
    fn wants(&self, db: u8, key: &Bytes) -> bool {
        self.all_keys || self.wanted.contains(&(db, key.clone()))
    }

    /// True when the effect of unit `seq` on this key predates its capture.
    fn skip(&self, seq: u128, db: u8, key: &Bytes) -> bool {
        seq < self.max_captured_seq
            && self
                .captured
                .get(&(db, key.clone()))
                .is_some_and(|&c| seq < c)
    }
}

fn corrupt(what: &'static str, seq: u128, e: impl std::fmt::Display) -> PersistError {
    PersistError::Corrupt {
        what,
        seq,
        reason: e.to_string(),
    }
}

/// Rebuilds the keyspace from the base and the units after it. Never reads
/// the clock and never expires keys. `ks` is the empty keyspace to fill
/// (`commands::lua::keyspace()`: with the function libraries' engine).
pub fn replay(wal: &Wal, mut ks: Keyspace) -> Result<(Keyspace, ReplayStats), PersistError> {
    let start = Instant::now();
    let mut stats = ReplayStats::default();
    ks.set_capture(false);
    let base = wal.base();
    let mut filter = None;
    if let Some(b) = base.as_ref().filter(|b| b.max_captured_seq > b.start_seq) {
        // Pre-scan the capture window: which keys do its units touch?
        let mut f = CaptureFilter {
            max_captured_seq: b.max_captured_seq,
            all_keys: false,
            wanted: HashSet::new(),
            captured: HashMap::new(),
        };
        for u in wal.units() {
            let (seq, bytes) = u?;
            if seq >= b.max_captured_seq {
                break;
            }
            for e in decode_unit(&bytes).map_err(|e| corrupt("unit", seq, e))? {
                match effect_key(&e) {
                    Some((db, key)) => {
                        f.wanted.insert((db, key.clone()));
                    }
                    // Not keys (a Command is for the replication stream
                    // only): no reason to keep every key's capture seq.
                    None if e.log_format().is_some()
                        || e.is_function()
                        || matches!(e, Effect::Command { .. }) => {}
                    None => f.all_keys = true,
                }
            }
        }
        filter = Some(f);
    }
    // LOGPARSE formats in the base, with the seq they were captured at:
    // format effects of older units are already in the base (learning is
    // not idempotent, so they must not be applied twice).
    let mut formats_captured: HashMap<Bytes, u128> = HashMap::new();
    // The library set in the base, with the seq it was captured at:
    // FUNCTION effects of older units are already in it.
    let mut functions_captured: Option<u128> = None;
    if let Some(mut reader) = wal.base_reader()? {
        while let Some((captured, unit)) = reader.next_chunk()? {
            stats.base_chunks += 1;
            stats.bytes += unit.len() as u64;
            for e in decode_unit(&unit).map_err(|e| corrupt("base chunk", captured, e))? {
                if let Some(name) = e.log_format() {
                    formats_captured.insert(name.clone(), captured);
                }
                if e.is_function() {
                    functions_captured = Some(captured);
                }
                if let (Some(f), Some((db, key))) = (filter.as_mut(), effect_key(&e)) {
                    if f.wants(db, key) {
                        f.captured.insert((db, key.clone()), captured);
                    }
                }
                apply(&mut ks, e);
            }
        }
    }
    for u in wal.units() {
        let (seq, bytes) = u?;
        stats.units += 1;
        stats.bytes += bytes.len() as u64;
        let mut effects = decode_unit(&bytes).map_err(|e| corrupt("unit", seq, e))?;
        // A replica's position holds only while nothing follows it (see
        // `Keyspace::repl_position`); its own unit sets it again.
        ks.repl_position = None;
        if functions_captured.is_some_and(|c| seq < c) {
            effects.retain(|e| !e.is_function());
        }
        if !formats_captured.is_empty() {
            effects.retain(|e| {
                e.log_format()
                    .and_then(|n| formats_captured.get(n))
                    .is_none_or(|&c| seq >= c)
            });
        }
        match filter.as_ref().filter(|f| seq < f.max_captured_seq) {
            None => effects.into_iter().for_each(|e| apply(&mut ks, e)),
            Some(f) => {
                for e in effects {
                    match &e {
                        Effect::FlushDb { db } => flush_before(&mut ks, f, seq, *db),
                        Effect::FlushAll => {
                            (0..DATABASES as u8).for_each(|db| flush_before(&mut ks, f, seq, db))
                        }
                        Effect::SwapDb { .. } => {
                            return Err(PersistError::SwapInCaptureWindow(seq));
                        }
                        _ => {
                            if let Some((db, key)) = effect_key(&e) {
                                if f.skip(seq, db, key) {
                                    continue;
                                }
                            }
                            apply(&mut ks, e);
                        }
                    }
                }
            }
        }
    }
    ks.set_capture(true);
    stats.seconds = start.elapsed().as_secs_f64();
    Ok((ks, stats))
}

/// A flush at unit `seq` inside the capture window removes the keys that
/// were captured before it (or never captured); keys captured after it
/// already show the post-flush state.
fn flush_before(ks: &mut Keyspace, f: &CaptureFilter, seq: u128, db: u8) {
    let doomed: Vec<Bytes> = ks.dbs[usize::from(db)]
        .iter()
        .filter(|(k, _)| {
            f.captured
                .get(&(db, Bytes::copy_from_slice(k)))
                .is_none_or(|&c| c <= seq)
        })
        .map(|(k, _)| Bytes::copy_from_slice(k))
        .collect();
    for k in doomed {
        ks.dbs[usize::from(db)].remove(&k);
    }
}

/// Writes a new base from the live keyspace, holding the lock only while
/// capturing each chunk. Returns the base size.
pub fn rewrite(
    ks_lock: &Mutex<Keyspace>,
    persist: &Persistence,
    stage: &Durability,
) -> Result<u64, PersistError> {
    // The seq the next queued unit gets, as the WAL counts (capture seqs).
    let next_seq = || u128::from(stage.next_seq());
    let (mut writer, swaps) = {
        let ks = ks_lock.lock();
        let w = persist.wal.begin_base_at(next_seq())?;
        (w, ks.swaps)
    };
    let mut unit = Vec::new();
    // LOGPARSE formats first: user specs and the shared miners' states, one
    // chunk per format, all captured in one lock hold.
    // Then the function libraries: one chunk, always (an empty set too),
    // so replay knows which units' FUNCTION effects the base holds.
    let (formats, captured) = {
        let ks = ks_lock.lock();
        let mut chunks = logparse_effects(&ks);
        chunks.push(vec![Effect::FunctionRestore {
            policy: 0,
            codes: ks.functions.codes(),
        }]);
        (chunks, next_seq())
    };
    for effects in formats {
        unit.clear();
        encode_unit(&effects, &mut unit);
        if let Err(e) = writer.write_chunk(captured, 0, &unit) {
            persist.wal.abort_base(writer);
            return Err(e.into());
        }
    }
    let mut db = 0usize;
    let mut cursor = 0u64;
    while db < DATABASES {
        let (effects, captured) = {
            let ks = ks_lock.lock();
            if ks.swaps != swaps {
                drop(ks);
                persist.wal.abort_base(writer);
                return Err(PersistError::SwapDuringRewrite);
            }
            let captured = next_seq();
            let mut effects = Vec::new();
            let mut bytes = 0usize;
            let d = &ks.dbs[db];
            cursor = d.scan(cursor, |k, e| {
                bytes += k.len() + value_bytes(&e.value);
                effects.push(Effect::Set {
                    db: db as u8,
                    key: Bytes::copy_from_slice(k),
                    value: e.value.clone(),
                    expires_at_ms: e.expires_at_ms,
                });
                effects.len() < CHUNK_KEYS_MAX && bytes < CHUNK_BYTES_MAX
            });
            if cursor == 0 {
                db += 1;
            }
            (effects, captured)
        };
        if effects.is_empty() {
            continue;
        }
        unit.clear();
        encode_unit(&effects, &mut unit);
        if let Err(e) = writer.write_chunk(captured, effects.len() as u64, &unit) {
            persist.wal.abort_base(writer);
            return Err(e.into());
        }
        // Let the connections run between chunks: on a busy machine this
        // thread would otherwise keep its core for a whole time slice.
        std::thread::yield_now();
    }
    let info = persist.wal.install_base(writer)?;
    Ok(info.bytes)
}

/// The base's LOGPARSE chunks: per format, its spec (user formats) then
/// its shared miner's state (when it learned anything).
fn logparse_effects(ks: &Keyspace) -> Vec<Vec<Effect>> {
    let mut by_name: std::collections::BTreeMap<Vec<u8>, Vec<Effect>> = Default::default();
    for (name, spec) in ks.logparse.user_specs() {
        by_name
            .entry(name.clone())
            .or_default()
            .push(Effect::LogFormatSet {
                name: Bytes::from(name),
                spec,
            });
    }
    for (name, state) in ks.logparse.miner_states() {
        by_name
            .entry(name.clone())
            .or_default()
            .push(Effect::LogMinerState {
                name: Bytes::from(name),
                state: Bytes::from(state),
            });
    }
    by_name.into_values().collect()
}

fn value_bytes(v: &crate::db::Value) -> usize {
    match v {
        crate::db::Value::Str(s) => s.data.len(),
        // Member bytes plus a score and a length per member.
        crate::db::Value::ZSet(z) => z.member_bytes() + 12 * z.len(),
        crate::db::Value::Stream(_) => 8,
        crate::db::Value::Hash(h) => h.payload_bytes(),
        crate::db::Value::Set(s) => s.payload_bytes(),
        crate::db::Value::List(l) => l.payload_bytes() + 4 * l.len(),
    }
}

/// Runs a compaction now, on the calling thread, updating the INFO fields.
pub fn run_rewrite(
    ks_lock: &Mutex<Keyspace>,
    persist: &Persistence,
    stage: &Durability,
) -> Result<(), PersistError> {
    let started = Instant::now();
    persist.rewrite_in_progress.store(true, Ordering::SeqCst);
    let _running = ClearOnDrop(&persist.rewrite_in_progress);
    persist.rewrite_scheduled.store(false, Ordering::SeqCst);
    let r = rewrite(ks_lock, persist, stage);
    persist.rewrite_in_progress.store(false, Ordering::SeqCst);
    persist
        .last_rewrite_time_sec
        .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    match &r {
        Ok(bytes) => {
            persist.last_rewrite_ok.store(true, Ordering::Relaxed);
            persist.rewrites.fetch_add(1, Ordering::Relaxed);
            persist
                .base_size
                .store(persist.current_size(), Ordering::Relaxed);
            persist
                .last_save_unix
                .store(crate::db::now_ms() / 1000, Ordering::Relaxed);
            tracing::info!(
                "Background append only file rewriting terminated with success: base of {bytes} bytes in {:.3} s",
                started.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            persist.last_rewrite_ok.store(false, Ordering::Relaxed);
            tracing::warn!("Background append only file rewriting failed: {e}");
        }
    }
    r.map(|_| ())
}

/// Clears a flag when dropped, so a panic cannot leave a rewrite marked as
/// running forever.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// True when the WAL grew enough since the last compaction
/// (`auto-aof-rewrite-percentage` / `auto-aof-rewrite-min-size`).
pub fn rewrite_due(persist: &Persistence, percentage: u64, min_size: u64) -> bool {
    if percentage == 0 {
        return false;
    }
    let current = persist.current_size();
    let base = persist.base_size.load(Ordering::Relaxed).max(1);
    current >= min_size && current.saturating_mul(100) / base >= 100 + percentage
}
