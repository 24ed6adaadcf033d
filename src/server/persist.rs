//! Durability of the keyspace: the WAL append after each batch, the fsync
//! policy, replay at startup, and compaction (the AOF-rewrite analogue).
//!
//! Write path (`server::commit`): commands run under the keyspace lock;
//! each command's effects (`Keyspace::take_unit`) become one encoded
//! unit, queued at the end of the batch under the lock, so unit seqs follow
//! execution order. Before any reply leaves, the queue up to the batch's
//! ticket is written to the WAL (one write for every batch queued so far:
//! group write); under `appendfsync always` the connection then waits for
//! an fdatasync covering it (one syncer on a blocking thread, shared by all
//! waiters: group commit). Under `everysec` a background thread fdatasyncs
//! once a second.
//!
//! Compaction writes a base snapshot without stopping clients: it reads the
//! keyspace in chunks of at most `CHUNK_KEYS_MAX` keys (one short lock hold
//! each) and writes each chunk off the lock, noting the WAL seq at which the
//! chunk was captured. Replay loads the base, then the units from the base's
//! start seq, skipping for each key the effects older than that key's
//! capture. A SWAPDB during a compaction makes the capture inconsistent; the
//! compaction is abandoned and retried.

use super::commit::{Commit, Sink};
use crate::db::effect::{apply, decode_unit, encode_unit, Effect};
use crate::db::{Keyspace, DATABASES};
use crate::storage::dirlock::{lock_dir, DirLock};
use crate::storage::wal::{Wal, WalOptions};
use crate::storage::Fs;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Keys per base chunk: bounds how long one capture holds the keyspace lock.
pub const CHUNK_KEYS_MAX: usize = 1000;
/// Value bytes per base chunk: large values end a chunk early so a chunk
/// stays a bounded record.
pub const CHUNK_BYTES_MAX: usize = 4 << 20;

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FsyncPolicy {
    Always = 0,
    EverySec = 1,
    No = 2,
}

impl FsyncPolicy {
    pub fn parse(s: &str) -> Option<FsyncPolicy> {
        match s {
            "always" => Some(FsyncPolicy::Always),
            "everysec" => Some(FsyncPolicy::EverySec),
            "no" => Some(FsyncPolicy::No),
            _ => None,
        }
    }
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

/// The durability state shared by the server.
#[derive(Debug)]
pub struct Persistence {
    pub wal: Wal,
    policy: AtomicU8,
    /// strerror of the failed write or fsync: set once, sticky until
    /// restart (read on every write command, without a lock).
    failed: OnceLock<String>,
    /// The queue of units between the keyspace and the WAL.
    pub commit: Commit,
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
    /// Held while the server runs; released by `close`.
    lock: Mutex<Option<DirLock>>,
    /// The server's latency monitor: WAL writes (`aof-write`) and fsyncs
    /// (`wal-fsync`, and `aof-fsync-always` under `always`) report to it.
    pub latency: Arc<super::observe::LatencyMonitor>,
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
    pub fn open(dir: &Path, policy: FsyncPolicy, fs: Arc<dyn Fs>) -> Result<Persistence, String> {
        let lock = lock_dir(dir).map_err(|e| format!("cannot lock {}: {e}", dir.display()))?;
        let opts = WalOptions {
            fs,
            ..WalOptions::default()
        };
        log_repair_report(&*opts.fs, dir);
        let (wal, report) = Wal::open(dir.join("wal"), opts).map_err(|e| e.to_string())?;
        if let Some(t) = &report.torn_tail {
            tracing::warn!(
                "WAL had a torn tail (an incomplete write at a crash): truncated {} at offset {}, {} bytes dropped",
                t.file.display(),
                t.offset,
                t.bytes_dropped
            );
        }
        let size = wal.log_bytes() + wal.base_bytes();
        let next_seq = u64::try_from(wal.next_seq())
            .map_err(|_| "WAL sequence numbers past 2^64".to_string())?;
        Ok(Persistence {
            wal,
            policy: AtomicU8::new(policy as u8),
            failed: OnceLock::new(),
            commit: Commit::new(next_seq),
            loading: AtomicBool::new(false),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            last_rewrite_time_sec: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            base_size: AtomicU64::new(size),
            last_save_unix: AtomicU64::new(crate::db::now_ms() / 1000),
            lock: Mutex::new(Some(lock)),
            latency: Arc::default(),
        })
    }

    /// Writes what is queued and fdatasyncs at shutdown, then releases the
    /// data directory: later appends fail, so nothing is written once
    /// another server may own it.
    pub fn close(&self, streams: &crate::stream::Registry) -> Result<(), String> {
        let r = self
            .write_upto(self.commit.next_seq(), streams)
            .and_then(|()| self.sync());
        let _ = self.failed.set("server is shut down".into());
        self.commit.fail();
        self.lock.lock().take();
        r
    }

    /// Writes the queued units up to `ticket` (see `commit`); the streams
    /// they drop are reaped once written. Err: the failure text.
    pub fn write_upto(&self, ticket: u64, streams: &crate::stream::Registry) -> Result<(), String> {
        self.commit
            .write_upto(
                ticket,
                &WalSink {
                    persist: self,
                    streams,
                },
            )
            .map_err(|_: super::commit::Failed| self.failure_text())
    }

    /// Writes every unit queued so far (DEBUG RELOAD, before it replays).
    pub fn write_queued(&self, streams: &crate::stream::Registry) -> Result<(), String> {
        self.write_upto(self.commit.next_seq(), streams)
    }

    /// Waits until the units up to `ticket` (written) are fdatasynced
    /// (see `commit`). Err: the failure text.
    pub async fn wait_durable(
        &self,
        ticket: u64,
        streams: &crate::stream::Registry,
    ) -> Result<(), String> {
        self.commit
            .wait_durable(
                ticket,
                &WalSink {
                    persist: self,
                    streams,
                },
            )
            .await
            .map_err(|_: super::commit::Failed| self.failure_text())
    }

    /// The sticky failure's text once the commit queue reported one.
    pub fn failure_text(&self) -> String {
        self.failure().unwrap_or_else(|| "WAL write failed".into())
    }

    pub fn policy(&self) -> FsyncPolicy {
        match self.policy.load(Ordering::Relaxed) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }

    pub fn set_policy(&self, p: FsyncPolicy) {
        self.policy.store(p as u8, Ordering::Relaxed);
    }

    /// The sticky failure, as the MISCONF reply shows it.
    pub fn failure(&self) -> Option<String> {
        self.failed.get().cloned()
    }

    fn fail(&self, e: &dyn std::fmt::Display) -> String {
        let text = strerror(e);
        if self.failed.set(text.clone()).is_ok() {
            tracing::error!("writing the WAL failed: {e}; refusing writes until restart");
        }
        self.commit.fail();
        self.failed.get().cloned().unwrap_or(text)
    }

    /// The reply text for writes refused after a failure.
    pub fn misconf(text: &str) -> String {
        format!("MISCONF Errors writing to the AOF file: {text}")
    }

    /// fdatasync of everything appended (group-committed).
    pub fn sync(&self) -> Result<(), String> {
        if let Some(f) = self.failure() {
            return Err(f);
        }
        let start = Instant::now();
        let r = self.wal.sync().map_err(|e| self.fail(&io_cause(&e)));
        let ms = start.elapsed().as_millis() as u64;
        self.latency.sample("wal-fsync", ms);
        if self.policy() == FsyncPolicy::Always {
            self.latency.sample("aof-fsync-always", ms);
        }
        r
    }

    /// `aof_current_size`: base plus log bytes.
    pub fn current_size(&self) -> u64 {
        self.wal.log_bytes() + self.wal.base_bytes()
    }

    /// The seq the next queued unit gets, as the WAL counts (capture seqs).
    fn next_seq(&self) -> u128 {
        u128::from(self.commit.next_seq())
    }
}

/// The WAL as the commit queue writes it, with the stream registry whose
/// dropped directories go once their drops are written.
pub struct WalSink<'a> {
    pub persist: &'a Persistence,
    pub streams: &'a crate::stream::Registry,
}

impl Sink for WalSink<'_> {
    fn write(&self, first: u64, units: &[Vec<u8>]) -> Result<(), String> {
        let p = self.persist;
        if let Some(f) = p.failure() {
            return Err(f);
        }
        let next = p.wal.next_seq();
        if next != u128::from(first) {
            // Cannot happen while every queued unit is written in order.
            return Err(p.fail(&format!(
                "queued units start at seq {first} but the WAL is at {next}"
            )));
        }
        let start = Instant::now();
        let r = p.wal.append(units).map_err(|e| p.fail(&io_cause(&e)));
        p.latency.sample_since("aof-write", start);
        r
    }

    fn sync(&self) -> Result<(), String> {
        self.persist.sync()
    }

    fn reap(&self, doomed: Vec<crate::stream::Doomed>) {
        self.streams.reap_these(doomed);
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

fn corrupt(what: &str, seq: u128, e: impl std::fmt::Display) -> String {
    format!("WAL {what} {seq} cannot be decoded: {e} (run `redlog check` on the data dir)")
}

/// Rebuilds the keyspace from the base and the units after it. Never reads
/// the clock and never expires keys.
pub fn replay(wal: &Wal) -> Result<(Keyspace, ReplayStats), String> {
    let start = Instant::now();
    let mut stats = ReplayStats::default();
    let mut ks = Keyspace::new();
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
            let (seq, bytes) = u.map_err(|e| e.to_string())?;
            if seq >= b.max_captured_seq {
                break;
            }
            for e in decode_unit(&bytes).map_err(|e| corrupt("unit", seq, e))? {
                match effect_key(&e) {
                    Some((db, key)) => {
                        f.wanted.insert((db, key.clone()));
                    }
                    None if e.log_format().is_some() || e.is_function() => {}
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
    if let Some(mut reader) = wal.base_reader().map_err(|e| e.to_string())? {
        while let Some((captured, unit)) = reader.next_chunk().map_err(|e| e.to_string())? {
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
        let (seq, bytes) = u.map_err(|e| e.to_string())?;
        stats.units += 1;
        stats.bytes += bytes.len() as u64;
        let mut effects = decode_unit(&bytes).map_err(|e| corrupt("unit", seq, e))?;
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
                            return Err(format!(
                                "WAL unit {seq}: SWAPDB inside a base capture window"
                            ));
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
                .get(&(db, (*k).clone()))
                .is_none_or(|&c| c <= seq)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        ks.dbs[usize::from(db)].remove(&k);
    }
}

/// Writes a new base from the live keyspace, holding the lock only while
/// capturing each chunk. Returns the base size.
pub fn rewrite(ks_lock: &Mutex<Keyspace>, persist: &Persistence) -> Result<u64, String> {
    let (mut writer, swaps) = {
        let ks = ks_lock.lock();
        let w = persist
            .wal
            .begin_base_at(persist.next_seq())
            .map_err(|e| e.to_string())?;
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
            codes: ks.functions.libraries().map(|l| l.code.clone()).collect(),
        }]);
        (chunks, persist.next_seq())
    };
    for effects in formats {
        unit.clear();
        encode_unit(&effects, &mut unit);
        if let Err(e) = writer.write_chunk(captured, 0, &unit) {
            persist.wal.abort_base(writer);
            return Err(e.to_string());
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
                return Err("SWAPDB ran during the rewrite; it will be retried".into());
            }
            let captured = persist.next_seq();
            let mut effects = Vec::new();
            let mut bytes = 0usize;
            let d = &ks.dbs[db];
            cursor = d.scan(cursor, |k, e| {
                bytes += k.len() + value_bytes(&e.value);
                effects.push(Effect::Set {
                    db: db as u8,
                    key: k.clone(),
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
            return Err(e.to_string());
        }
        // Let the connections run between chunks: on a busy machine this
        // thread would otherwise keep its core for a whole time slice.
        std::thread::yield_now();
    }
    let info = persist
        .wal
        .install_base(writer)
        .map_err(|e| e.to_string())?;
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
pub fn run_rewrite(ks_lock: &Mutex<Keyspace>, persist: &Persistence) -> Result<(), String> {
    let started = Instant::now();
    persist.rewrite_in_progress.store(true, Ordering::SeqCst);
    let _running = ClearOnDrop(&persist.rewrite_in_progress);
    persist.rewrite_scheduled.store(false, Ordering::SeqCst);
    let r = rewrite(ks_lock, persist);
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

/// The `everysec` flusher: fdatasyncs once a second while the policy is
/// everysec. Runs on its own thread until `stop` is set.
pub fn spawn_flusher(
    persist: Arc<Persistence>,
    streams: Arc<crate::stream::Registry>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    // The thread holds the Persistence only weakly, so it never keeps the
    // data directory alive after the server is gone.
    let persist = Arc::downgrade(&persist);
    std::thread::Builder::new()
        .name("redlog-fsync".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let Some(persist) = persist.upgrade() else {
                    return;
                };
                // Stream checkpoints and trimmed-segment deletion run here
                // too, off the keyspace lock, under every policy.
                streams.maintain();
                if persist.policy() != FsyncPolicy::EverySec {
                    continue;
                }
                let now = Instant::now();
                if let Err(e) = persist.sync() {
                    tracing::error!("background fsync failed: {e}");
                }
                let synced = persist.latency.timed("stream-fsync", || streams.sync_all());
                if let Err(e) = synced {
                    tracing::error!("background fsync of a stream failed: {e}");
                }
                drop(persist);
                let spent = now.elapsed();
                if spent < Duration::from_millis(900) {
                    std::thread::sleep(Duration::from_millis(900) - spent);
                }
            }
        })
        .expect("spawn the fsync thread")
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
