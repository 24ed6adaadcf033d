//! The durability stage: everything between "the batch ran under the
//! keyspace lock" and "its replies may leave".
//!
//! Invariant: **no reply leaves before its ticket is settled.** A batch
//! (a connection's buffered commands, a LOGPARSE INGEST chunk, the cron's
//! expiry and eviction deletions) ends, still under the keyspace lock, with
//! [`Durability::enqueue`]: its WAL units (one per command, from
//! `Keyspace::take_unit`), the streams whose logs it left entries pending
//! in (`Keyspace::stream_writes`) and the streams it dropped
//! (`stream::Registry::take_doomed`) go in, a [`Ticket`] comes out. Unit
//! seqs follow execution order because they are given under the lock.
//! After the lock is released the connection awaits
//! [`Durability::settle`]; only then are its replies written and the
//! clients it woke (blocking commands) sent theirs. `Err(Misconf)` means the
//! effects could not be made durable: the replies of the commands that
//! changed something become that MISCONF error.
//!
//! What settling does, by `appendfsync` ([`Appendfsync`], the one policy):
//! - the stream entries the batch left pending are written to their logs
//!   (whoever comes first writes them: this batch, a later one, a reader);
//! - the queued units up to the ticket are written to the WAL: the first
//!   connection to get there writes everything queued so far in one call
//!   (group write, as Redis's `beforeSleep` writes the AOF buffer of a
//!   whole event-loop pass); one whose units another wrote has nothing to
//!   do. Streams dropped by a batch have their directories removed once
//!   the units recording the drops are written;
//! - under `always`, the connection first yields while other connections
//!   keep queuing ([`GATHER_ROUNDS`], Redis's event-loop pass), then one
//!   fdatasync, run on the worker of whichever connection gets there first,
//!   covers every unit written before it started (group commit); others
//!   await it through the progress channel and sync again if not covered.
//!   The stream logs the batch wrote are fdatasynced too. No thread
//!   hand-off: a dedicated syncer thread cost about a quarter of the
//!   throughput in wakeups (`benches/durability.sh`);
//! - under `everysec`, the flusher thread ([`Durability::spawn_flusher`])
//!   fdatasyncs the WAL and the stream logs once a second (it also runs
//!   the streams' maintenance every 100 ms, under every policy).
//!
//! A batch with no units of its own still waits for the ticket current when
//! it released the lock: what it read may come from other connections'
//! units, and Redis never shows a client a write before it is in the AOF.
//!
//! Failure: the first failed WAL write or fdatasync is the one sticky
//! failure ([`Durability::failure`], strerror's text); nothing more is
//! written, write commands are refused with MISCONF until restart (reads
//! are served as before). A stream log's failure is its own log's sticky
//! state (`storage`): it fails the batches that wrote that stream.
//!
//! Without a WAL (`appendonly no`) there is nothing to wait for: `enqueue`
//! writes the pending stream entries at once, under the lock.
//!
//! Replication reads the committed units in order from here:
//! [`Durability::subscribe`] gives a [`Feed`] of every unit written after
//! it, with its seq; [`Durability::durable_position`] says how far they are
//! fdatasynced. While a feed exists the stage keeps the last
//! [`BACKLOG_BYTES_MAX`] bytes of units (Redis's replication backlog); a
//! feed that falls behind them gets [`FeedError::Lagged`].
//!
//! `storage` keeps only the mechanism: append, fdatasync, its logs' sticky
//! I/O errors.

use super::observe::LatencyMonitor;
use crate::config::Appendfsync;
use crate::db::Keyspace;
use crate::stream::{Doomed, Registry, StreamRef};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// At most this many yields before an fdatasync (see `Durability::gather`).
const GATHER_ROUNDS: usize = 8;

/// Bytes of written units kept for feeds while one exists (Redis's
/// `repl-backlog-size` default).
pub const BACKLOG_BYTES_MAX: usize = 1 << 20;

/// A batch's effects could not be made durable: the error its write
/// commands get instead of their replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MISCONF Errors writing to the AOF file: {reason}")]
pub struct Misconf {
    /// What failed, as strerror prints it.
    pub reason: String,
}

/// Why a [`Sink`] could not write or sync: the reason MISCONF carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The operating system's error, as strerror prints it.
    #[error("{0}")]
    Io(String),
    /// The queued units do not continue the log (a bug: every queued unit
    /// is written in order).
    #[error("queued units start at seq {first} but the WAL is at {log}")]
    OutOfOrder { first: u64, log: u128 },
}

/// Writes and syncs units: the WAL (`persist::WalSink`), or a test double.
pub trait Sink: Send + Sync {
    /// Writes `units`, whose first seq is `first`, in one call.
    fn write(&self, first: u64, units: &[Vec<u8>]) -> Result<(), SinkError>;
    /// fdatasyncs everything written so far.
    fn sync(&self) -> Result<(), SinkError>;
}

/// Units queued under the keyspace lock, not yet written.
#[derive(Debug, Default)]
struct Queue {
    units: Vec<Vec<u8>>,
    doomed: Vec<Doomed>,
    /// Seq of the next queued unit: every seq below it is queued or written.
    next_seq: u64,
}

/// How far the queue has gone: every seq below `written` is in the WAL
/// (handed to the OS), every seq below `durable` fdatasynced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub written: u64,
    pub durable: u64,
}

/// What a batch handed to the stage under the lock; settle it before
/// its replies leave.
#[derive(Debug)]
#[must_use = "a ticket must be settled before the batch's replies leave"]
pub struct Ticket {
    /// Every unit below this seq must be written (and synced, under
    /// `always`) before the replies leave.
    seq: u64,
    /// The batch queued units of its own.
    queued: bool,
    /// The batch queued units or dropped streams (the cron writes only
    /// then).
    own: bool,
    /// Streams whose logs the batch left entries pending in.
    streams: Vec<StreamRef>,
    /// Already failed (no WAL: the stream entries were written under the
    /// lock, and one write failed).
    failed: Option<Misconf>,
}

impl Ticket {
    /// Every unit below this seq is covered by the ticket.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// One written unit, as a feed reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub seq: u64,
    pub unit: Bytes,
}

/// Why a feed cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The backlog no longer holds the feed's next unit.
    #[error("the backlog no longer holds unit {0}")]
    Lagged(u64),
    /// The WAL failed or the server shut down: no more units.
    #[error("no more units: {0}")]
    Failed(String),
}

/// The written units kept for feeds, in seq order.
#[derive(Debug, Default)]
struct Backlog {
    units: VecDeque<Committed>,
    bytes: usize,
}

/// Sees every batch's units under the keyspace lock, in WAL order, with or
/// without a WAL (`Durability::set_tap`): replication's stream.
pub type Tap = Box<dyn Fn(&mut Keyspace, &[Vec<u8>]) + Send + Sync>;

/// See the module doc.
pub struct Durability {
    /// The WAL; None with `appendonly no`.
    sink: Option<Box<dyn Sink>>,
    streams: Arc<Registry>,
    /// WAL writes (`aof-write`) and fsyncs (`wal-fsync`, and
    /// `aof-fsync-always` under `always`) report here.
    latency: Arc<LatencyMonitor>,
    policy: AtomicU8,
    /// The one sticky failure: strerror of the failed write or fsync, set
    /// once (read on every write command, without a lock).
    failed: OnceLock<String>,
    queue: Mutex<Queue>,
    /// Held while writing, so batches reach the WAL in seq order.
    writing: Mutex<()>,
    progress: watch::Sender<Progress>,
    /// An fdatasync is running.
    syncing: AtomicBool,
    backlog: Mutex<Backlog>,
    /// Feeds alive: the backlog is kept only while there are some.
    feeds: AtomicUsize,
    /// Replication's view of every batch's units (`set_tap`).
    tap: OnceLock<Tap>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durability")
            .field("logging", &self.sink.is_some())
            .field("policy", &self.policy())
            .field("failed", &self.failed.get())
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

impl Durability {
    /// The stage over `sink` (None: `appendonly no`), whose next unit gets
    /// seq `next_seq` (the WAL's, at open).
    pub fn new(
        sink: Option<Box<dyn Sink>>,
        next_seq: u64,
        policy: Appendfsync,
        streams: Arc<Registry>,
        latency: Arc<LatencyMonitor>,
    ) -> Durability {
        let (progress, _) = watch::channel(Progress {
            written: next_seq,
            durable: next_seq,
        });
        Durability {
            sink,
            streams,
            latency,
            policy: AtomicU8::new(policy as u8),
            failed: OnceLock::new(),
            queue: Mutex::new(Queue {
                next_seq,
                ..Queue::default()
            }),
            writing: Mutex::new(()),
            progress,
            syncing: AtomicBool::new(false),
            backlog: Mutex::new(Backlog::default()),
            feeds: AtomicUsize::new(0),
            tap: OnceLock::new(),
        }
    }

    /// Installs the tap `enqueue` hands every batch's units to, under the
    /// keyspace lock, before queuing them (once; replication's stream).
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.tap.set(tap);
    }

    pub fn policy(&self) -> Appendfsync {
        match self.policy.load(Ordering::Relaxed) {
            0 => Appendfsync::Always,
            1 => Appendfsync::EverySec,
            _ => Appendfsync::No,
        }
    }

    pub fn set_policy(&self, p: Appendfsync) {
        self.policy.store(p as u8, Ordering::Relaxed);
    }

    /// The sticky failure's reason (what MISCONF shows), once a WAL write or
    /// fdatasync failed or the server shut down.
    pub fn failure(&self) -> Option<String> {
        self.failed.get().cloned()
    }

    /// Records the sticky failure (the first reason wins) and wakes every
    /// waiter; returns the MISCONF of the recorded reason.
    fn fail(&self, reason: String) -> Misconf {
        if self.failed.set(reason.clone()).is_ok() {
            tracing::error!("writing the WAL failed: {reason}; refusing writes until restart");
        }
        // Waiters re-check the failure on any change.
        self.progress.send_modify(|_| {});
        self.misconf()
    }

    fn misconf(&self) -> Misconf {
        Misconf {
            reason: self
                .failure()
                .unwrap_or_else(|| "WAL write failed".to_string()),
        }
    }

    /// Bytes of the units queued and not yet written (INFO
    /// `mem_aof_buffer`, `mem_not_counted_for_evict`).
    pub fn queued_bytes(&self) -> usize {
        self.queue.lock().units.iter().map(|u| u.capacity()).sum()
    }

    /// The seq the next queued unit gets (a compaction's capture seq), also
    /// the ticket of a batch that queued nothing. Call under the keyspace
    /// lock.
    pub fn next_seq(&self) -> u64 {
        self.queue.lock().next_seq
    }

    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Every unit below this seq is fdatasynced.
    pub fn durable_position(&self) -> u64 {
        self.progress().durable
    }

    /// Every unit below this seq is written (handed to the OS).
    pub fn written_position(&self) -> u64 {
        self.progress().written
    }

    /// Ends a batch, under the keyspace lock: queues `units` and the
    /// keyspace's pending effects (as one more unit), the streams the batch
    /// dropped and those whose logs it left entries pending in. Without a
    /// WAL the pending stream entries are written now.
    pub fn enqueue(&self, ks: &mut Keyspace, mut units: Vec<Vec<u8>>) -> Ticket {
        let streams = std::mem::take(&mut ks.stream_writes);
        if self.sink.is_none() {
            if let Some(tap) = self.tap.get() {
                // No WAL: the units exist only while replication captures
                // effects (`Keyspace::capturing`).
                units.extend(ks.take_unit());
                tap(ks, &units);
            }
            // One write per stream, before any reply.
            let failed = streams.iter().find_map(|s| s.flush().err()).map(|e| {
                tracing::error!("writing a stream log failed: {e}");
                Misconf {
                    reason: e.to_string(),
                }
            });
            if self.streams.has_doomed() {
                self.streams.reap();
            }
            return Ticket {
                seq: 0,
                queued: false,
                own: false,
                streams: Vec::new(),
                failed,
            };
        }
        units.extend(ks.take_unit());
        if let Some(tap) = self.tap.get() {
            tap(ks, &units);
        }
        // Directories of streams the batch deleted go only after the units
        // recording the deletions are written.
        let doomed = self.streams.take_doomed();
        let queued = !units.is_empty();
        let own = queued || !doomed.is_empty();
        let seq = if own {
            self.push(units, doomed)
        } else {
            self.next_seq()
        };
        Ticket {
            seq,
            queued,
            own,
            streams,
            failed: None,
        }
    }

    /// Queues units and dropped streams; returns the seq after the last.
    fn push(&self, units: Vec<Vec<u8>>, doomed: Vec<Doomed>) -> u64 {
        let mut q = self.queue.lock();
        q.next_seq += units.len() as u64;
        if q.units.is_empty() {
            q.units = units;
        } else {
            q.units.extend(units);
        }
        q.doomed.extend(doomed);
        q.next_seq
    }

    /// Makes the ticket's effects durable as `appendfsync` asks (see the
    /// module doc). Call after releasing the keyspace lock, before the
    /// batch's replies leave.
    pub async fn settle(&self, mut t: Ticket) -> Result<(), Misconf> {
        if let Some(m) = t.failed.take() {
            return Err(m);
        }
        if self.sink.is_none() {
            return Ok(());
        }
        let progress = self.progress();
        let always = self.policy() == Appendfsync::Always;
        if t.queued || !t.streams.is_empty() {
            // Let the other ready connections run and queue their units
            // and stream entries first, so one write carries them all.
            tokio::task::yield_now().await;
            if always {
                // One fdatasync for every connection still queuing.
                self.gather(t.seq).await;
            }
        }
        self.flush_streams(&t.streams)?;
        if t.seq > progress.written {
            self.write_upto(t.seq)?;
        }
        if always && t.seq > self.progress().durable {
            // No reply before an fdatasync covering this batch's units
            // (and those it may have read).
            self.wait_durable(t.seq).await?;
        }
        if always && !t.streams.is_empty() {
            // The stream logs this batch wrote (group-committed per log
            // with concurrent batches).
            let streams = std::mem::take(&mut t.streams);
            let lat = self.latency.clone();
            let synced = tokio::task::spawn_blocking(move || {
                lat.timed("stream-fsync", || streams.iter().try_for_each(|s| s.sync()))
            })
            .await;
            let reason = match synced {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(reason) = reason {
                return Err(Misconf { reason });
            }
        }
        Ok(())
    }

    /// Writes the ticket's units (and pending stream entries) without
    /// waiting for an fdatasync: the cron's deletions, which no reply
    /// waits for.
    pub fn write(&self, t: Ticket) -> Result<(), Misconf> {
        if let Some(m) = t.failed {
            return Err(m);
        }
        self.flush_streams(&t.streams)?;
        if self.sink.is_none() || !t.own {
            return Ok(());
        }
        self.write_upto(t.seq)
    }

    /// Writes every unit queued so far (DEBUG RELOAD, before it replays
    /// the disk). Call under the keyspace lock, so nothing is queued behind.
    pub fn write_queued(&self) -> Result<(), Misconf> {
        self.write_upto(self.next_seq())
    }

    /// The entries batches left pending in these streams' logs, written.
    fn flush_streams(&self, streams: &[StreamRef]) -> Result<(), Misconf> {
        match streams.iter().find_map(|s| s.flush().err()) {
            Some(e) => {
                tracing::error!("writing a stream log failed: {e}");
                Err(Misconf {
                    reason: e.to_string(),
                })
            }
            None => Ok(()),
        }
    }

    /// Makes sure every unit below `ticket` is written, writing what is
    /// queued if nobody has yet.
    fn write_upto(&self, ticket: u64) -> Result<(), Misconf> {
        let Some(sink) = &self.sink else {
            return Ok(());
        };
        if self.progress().written >= ticket {
            return Ok(());
        }
        if self.failed.get().is_some() {
            return Err(self.misconf());
        }
        let _w = self.writing.lock();
        let first = self.progress().written;
        if first >= ticket {
            return Ok(());
        }
        if self.failed.get().is_some() {
            return Err(self.misconf());
        }
        let (units, doomed, end) = {
            let mut q = self.queue.lock();
            (
                std::mem::take(&mut q.units),
                std::mem::take(&mut q.doomed),
                q.next_seq,
            )
        };
        let start = Instant::now();
        let written = sink.write(first, &units);
        self.latency.sample_since("aof-write", start);
        if let Err(e) = written {
            // The streams stay on disk: their drops are not in the WAL.
            drop(doomed);
            return Err(self.fail(e.to_string()));
        }
        if self.feeds.load(Ordering::SeqCst) > 0 {
            self.keep(first, units);
        }
        self.progress.send_modify(|p| p.written = end);
        if !doomed.is_empty() {
            self.streams.reap_these(doomed);
        }
        Ok(())
    }

    /// Adds written units to the backlog, dropping the oldest past
    /// [`BACKLOG_BYTES_MAX`] (the newest is always kept).
    fn keep(&self, first: u64, units: Vec<Vec<u8>>) {
        let mut b = self.backlog.lock();
        for (i, u) in units.into_iter().enumerate() {
            b.bytes += u.len();
            b.units.push_back(Committed {
                seq: first + i as u64,
                unit: Bytes::from(u),
            });
        }
        while b.bytes > BACKLOG_BYTES_MAX && b.units.len() > 1 {
            if let Some(old) = b.units.pop_front() {
                b.bytes -= old.unit.len();
            }
        }
    }

    /// Yields to the other ready connections while they keep queuing
    /// units, so that one fdatasync covers them all; stops after a pass
    /// that queued nothing, when another connection wrote this batch's
    /// units (it syncs them), or after [`GATHER_ROUNDS`] yields.
    async fn gather(&self, ticket: u64) {
        for _ in 0..GATHER_ROUNDS {
            let before = self.next_seq();
            tokio::task::yield_now().await;
            if self.next_seq() == before || self.progress().written >= ticket {
                return;
            }
        }
    }

    /// Waits until every unit below `ticket` (already written) is
    /// fdatasynced, running the fdatasync on this thread when none runs.
    async fn wait_durable(&self, ticket: u64) -> Result<(), Misconf> {
        let mut rx = self.progress.subscribe();
        loop {
            if rx.borrow_and_update().durable >= ticket {
                return Ok(());
            }
            if self.failed.get().is_some() {
                return Err(self.misconf());
            }
            if !self.syncing.swap(true, Ordering::SeqCst) {
                self.sync_written();
                continue;
            }
            if rx.changed().await.is_err() {
                return Err(self.misconf());
            }
        }
    }

    /// One fdatasync of everything written so far; call with `syncing`
    /// set (this clears it).
    fn sync_written(&self) {
        let target = self.progress().written;
        let synced = self.sync_sink();
        // Step down before publishing: a waiter this fdatasync did not
        // cover wakes on the progress change and must find `syncing`
        // clear to sync itself (cleared after, it could wait for a change
        // nobody will make).
        self.syncing.store(false, Ordering::SeqCst);
        if synced.is_ok() {
            self.progress
                .send_modify(|p| p.durable = p.durable.max(target));
        }
    }

    /// fdatasync of the WAL, timed; a failure becomes the sticky one.
    fn sync_sink(&self) -> Result<(), Misconf> {
        let Some(sink) = &self.sink else {
            return Ok(());
        };
        if self.failed.get().is_some() {
            return Err(self.misconf());
        }
        let start = Instant::now();
        let r = sink.sync().map_err(|e| self.fail(e.to_string()));
        let ms = start.elapsed().as_millis() as u64;
        self.latency.sample("wal-fsync", ms);
        if self.policy() == Appendfsync::Always {
            self.latency.sample("aof-fsync-always", ms);
        }
        r
    }

    /// fdatasync of everything written so far (the everysec flusher).
    pub fn sync_now(&self) -> Result<(), Misconf> {
        let target = self.progress().written;
        self.sync_sink()?;
        self.progress
            .send_modify(|p| p.durable = p.durable.max(target));
        Ok(())
    }

    /// At shutdown: writes what is queued and fdatasyncs, then refuses
    /// everything after (the data directory is about to be released, so
    /// nothing may be written once another server may own it).
    pub fn close(&self) -> Result<(), Misconf> {
        let r = self
            .write_upto(self.next_seq())
            .and_then(|()| self.sync_now());
        let _ = self.failed.set("server is shut down".into());
        self.progress.send_modify(|_| {});
        r
    }

    /// A feed of every unit written from now on, in seq order.
    pub fn subscribe(self: &Arc<Self>) -> Feed {
        // No write runs while the feed starts: none is missed.
        let _w = self.writing.lock();
        self.feeds.fetch_add(1, Ordering::SeqCst);
        Feed {
            next: self.progress().written,
            rx: self.progress.subscribe(),
            stage: self.clone(),
        }
    }

    /// The `everysec` flusher: fdatasyncs the WAL and the stream logs once
    /// a second while the policy is everysec, and runs the streams'
    /// maintenance (checkpoints, trimmed-segment deletion, off the keyspace
    /// lock) every 100 ms. Runs on its own thread until `stop` is set.
    pub fn spawn_flusher(
        self: &Arc<Self>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        // Held only weakly, so the thread never keeps the data directory
        // (the WAL sink's) alive after the server is gone.
        let stage = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("redlog-fsync".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let Some(stage) = stage.upgrade() else {
                        return;
                    };
                    stage.streams.maintain();
                    if stage.policy() != Appendfsync::EverySec {
                        continue;
                    }
                    let now = Instant::now();
                    if let Err(e) = stage.sync_now() {
                        tracing::error!("background fsync failed: {}", e.reason);
                    }
                    let streams = stage.streams.clone();
                    let synced = stage.latency.timed("stream-fsync", || streams.sync_all());
                    if let Err(e) = synced {
                        tracing::error!("background fsync of a stream failed: {e}");
                    }
                    drop(stage);
                    let spent = now.elapsed();
                    if spent < Duration::from_millis(900) {
                        std::thread::sleep(Duration::from_millis(900) - spent);
                    }
                }
            })
    }
}

/// The units written after the feed started, in seq order (see
/// [`Durability::subscribe`]).
pub struct Feed {
    stage: Arc<Durability>,
    /// Seq of the next unit to read.
    next: u64,
    rx: watch::Receiver<Progress>,
}

impl Feed {
    /// Seq of the next unit this feed returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next written unit, or None when the feed has read every unit
    /// written so far.
    pub fn try_next(&mut self) -> Result<Option<Committed>, FeedError> {
        if self.next >= self.stage.written_position() {
            return match self.stage.failure() {
                Some(f) => Err(FeedError::Failed(f)),
                None => Ok(None),
            };
        }
        let b = self.stage.backlog.lock();
        let front = b.units.front().map_or(u64::MAX, |c| c.seq);
        if self.next < front {
            return Err(FeedError::Lagged(self.next));
        }
        let i = usize::try_from(self.next - front).map_err(|_| FeedError::Lagged(self.next))?;
        let c = b
            .units
            .get(i)
            .cloned()
            .ok_or(FeedError::Lagged(self.next))?;
        self.next += 1;
        Ok(Some(c))
    }

    /// Waits for the next written unit.
    pub async fn next(&mut self) -> Result<Committed, FeedError> {
        loop {
            self.rx.borrow_and_update();
            if let Some(c) = self.try_next()? {
                return Ok(c);
            }
            if self.rx.changed().await.is_err() {
                return Err(FeedError::Failed("server is shut down".into()));
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if self.stage.feeds.fetch_sub(1, Ordering::SeqCst) == 1 {
            let mut b = self.stage.backlog.lock();
            b.units.clear();
            b.bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Default)]
    struct Mem {
        log: parking_lot::Mutex<Vec<(u64, Vec<u8>)>>,
        syncs: AtomicU64,
        fail_writes: AtomicBool,
        fail_syncs: AtomicBool,
    }

    impl Sink for Arc<Mem> {
        fn write(&self, first: u64, units: &[Vec<u8>]) -> Result<(), SinkError> {
            if self.fail_writes.load(Ordering::SeqCst) {
                return Err(SinkError::Io("No space left on device".into()));
            }
            let mut log = self.log.lock();
            for (i, u) in units.iter().enumerate() {
                log.push((first + i as u64, u.clone()));
            }
            Ok(())
        }
        fn sync(&self) -> Result<(), SinkError> {
            if self.fail_syncs.load(Ordering::SeqCst) {
                return Err(SinkError::Io("Input/output error".into()));
            }
            // As slow as a disk: the other writers queue up meanwhile.
            std::thread::sleep(Duration::from_millis(2));
            self.syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn stage(next_seq: u64, policy: Appendfsync) -> (Arc<Durability>, Arc<Mem>) {
        let mem = Arc::new(Mem::default());
        let streams = Arc::new(Registry::new(
            std::path::Path::new("/nonexistent-redlog-test"),
            Arc::new(crate::storage::RealFs),
        ));
        let d = Durability::new(
            Some(Box::new(mem.clone())),
            next_seq,
            policy,
            streams,
            Arc::default(),
        );
        (Arc::new(d), mem)
    }

    /// Queues `units` as a batch would, with an otherwise idle keyspace.
    fn batch(d: &Durability, units: &[&[u8]]) -> Ticket {
        let mut ks = crate::commands::lua::keyspace();
        d.enqueue(&mut ks, units.iter().map(|u| u.to_vec()).collect())
    }

    #[tokio::test]
    async fn tickets_follow_enqueue_order_and_one_write_covers_them() {
        let (d, mem) = stage(7, Appendfsync::No);
        let t1 = batch(&d, &[b"a"]);
        let t2 = batch(&d, &[b"b", b"c"]);
        assert_eq!((t1.seq(), t2.seq()), (8, 10));
        // A batch with nothing of its own waits for the queue's end.
        let t3 = batch(&d, &[]);
        assert_eq!(t3.seq(), 10);
        // The later batch settles first: it writes both, the earlier finds
        // its units written.
        d.settle(t2).await.unwrap();
        d.settle(t1).await.unwrap();
        d.settle(t3).await.unwrap();
        let log = mem.log.lock().clone();
        assert_eq!(
            log,
            vec![(7, b"a".to_vec()), (8, b"b".to_vec()), (9, b"c".to_vec())]
        );
        assert_eq!(d.written_position(), 10);
        // `no`: nothing fdatasynced.
        assert_eq!(d.durable_position(), 7);
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn always_settles_only_after_an_fdatasync() {
        let (d, mem) = stage(0, Appendfsync::Always);
        let t = batch(&d, &[b"a"]);
        d.settle(t).await.unwrap();
        assert_eq!(d.durable_position(), 1);
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 1);
        // Already durable: no second fdatasync.
        let t = batch(&d, &[]);
        d.settle(t).await.unwrap();
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_write_is_sticky_and_becomes_misconf() {
        let (d, mem) = stage(0, Appendfsync::EverySec);
        mem.fail_writes.store(true, Ordering::SeqCst);
        let t = batch(&d, &[b"a"]);
        let e = d.settle(t).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "MISCONF Errors writing to the AOF file: No space left on device"
        );
        assert_eq!(d.failure().as_deref(), Some("No space left on device"));
        // The disk is back: still refused, nothing written.
        mem.fail_writes.store(false, Ordering::SeqCst);
        let t = batch(&d, &[b"b"]);
        assert_eq!(d.settle(t).await, Err(e.clone()));
        assert!(mem.log.lock().is_empty());
        // A batch of reads may have read the lost unit: its ticket fails
        // too (the connection keeps read replies: only the replies of
        // commands that changed something become the MISCONF error).
        assert_eq!(d.written_position(), 0);
        let t = batch(&d, &[]);
        assert_eq!(d.settle(t).await, Err(e));
        assert!(d.sync_now().is_err());
    }

    #[tokio::test]
    async fn a_failed_fdatasync_is_sticky_under_always() {
        let (d, mem) = stage(0, Appendfsync::Always);
        d.settle(batch(&d, &[b"a"])).await.unwrap();
        mem.fail_syncs.store(true, Ordering::SeqCst);
        let e = d.settle(batch(&d, &[b"b"])).await.unwrap_err();
        assert_eq!(e.reason, "Input/output error");
        // Written, not durable: its reply is refused.
        assert_eq!((d.written_position(), d.durable_position()), (2, 1));
        mem.fail_syncs.store(false, Ordering::SeqCst);
        assert_eq!(d.settle(batch(&d, &[b"c"])).await, Err(e));
        assert_eq!(mem.log.lock().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_batches_share_fdatasyncs() {
        let (d, mem) = stage(0, Appendfsync::Always);
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let d = d.clone();
            tasks.push(tokio::spawn(async move {
                let mut ks = crate::commands::lua::keyspace();
                for _ in 0..20 {
                    let t = d.enqueue(&mut ks, vec![vec![i]]);
                    let seq = t.seq();
                    d.settle(t).await.unwrap();
                    assert!(d.durable_position() >= seq);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = mem.log.lock().clone();
        assert_eq!(log.len(), 1000);
        assert!(log.iter().enumerate().all(|(i, (seq, _))| *seq == i as u64));
        let syncs = mem.syncs.load(Ordering::SeqCst);
        assert!((1..=500).contains(&syncs), "{syncs} fdatasyncs");
    }

    #[tokio::test]
    async fn a_feed_reads_written_units_in_order_with_their_seqs() {
        let (d, _mem) = stage(5, Appendfsync::No);
        d.settle(batch(&d, &[b"before"])).await.unwrap();
        let mut feed = d.subscribe();
        assert_eq!(feed.position(), 6);
        assert_eq!(feed.try_next(), Ok(None));
        let t = batch(&d, &[b"x", b"y"]);
        // Queued, not written: not readable yet.
        assert_eq!(feed.try_next(), Ok(None));
        d.settle(t).await.unwrap();
        let a = feed.next().await.unwrap();
        let b = feed.next().await.unwrap();
        assert_eq!((a.seq, &a.unit[..]), (6, &b"x"[..]));
        assert_eq!((b.seq, &b.unit[..]), (7, &b"y"[..]));
        assert_eq!(feed.try_next(), Ok(None));
        // A waiting feed wakes when a batch is written.
        let d2 = d.clone();
        let waiter = tokio::spawn(async move {
            let c = feed.next().await.unwrap();
            (c.seq, c.unit)
        });
        tokio::task::yield_now().await;
        d2.settle(batch(&d2, &[b"z"])).await.unwrap();
        assert_eq!(waiter.await.unwrap(), (8, Bytes::from_static(b"z")));
        // The feed is gone: the backlog is not kept.
        assert!(d.backlog.lock().units.is_empty());
        d.settle(batch(&d, &[b"w"])).await.unwrap();
        assert!(d.backlog.lock().units.is_empty());
    }

    #[tokio::test]
    async fn a_feed_that_falls_behind_the_backlog_is_told() {
        let (d, _mem) = stage(0, Appendfsync::No);
        let mut feed = d.subscribe();
        let big = vec![0u8; BACKLOG_BYTES_MAX / 2 + 1];
        for _ in 0..3 {
            d.settle(batch(&d, &[&big])).await.unwrap();
        }
        assert_eq!(feed.try_next(), Err(FeedError::Lagged(0)));
        // A feed at the failure's edge reports it.
        let mut late = d.subscribe();
        assert_eq!(late.try_next(), Ok(None));
        d.close().unwrap();
        assert_eq!(
            late.try_next(),
            Err(FeedError::Failed("server is shut down".into()))
        );
    }

    #[tokio::test]
    async fn without_a_wal_nothing_is_queued() {
        let streams = Arc::new(Registry::new(
            std::path::Path::new("/nonexistent-redlog-test"),
            Arc::new(crate::storage::RealFs),
        ));
        let d = Durability::new(None, 0, Appendfsync::Always, streams, Arc::default());
        let t = batch(&d, &[]);
        d.settle(t).await.unwrap();
        assert_eq!(d.next_seq(), 0);
        assert_eq!(d.failure(), None);
    }
}
