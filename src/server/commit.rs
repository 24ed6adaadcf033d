//! The WAL's write path: group write and group commit.
//!
//! Commands run under the keyspace lock; at the end of its batch a
//! connection *queues* its units there (so unit seqs follow execution order
//! and a compaction's capture seqs agree with them) and releases the lock.
//! Then, before replying, it makes sure the queue up to its ticket is
//! written: the first connection to get there writes everything queued so
//! far in one call (as Redis's `beforeSleep` writes the AOF buffer of a
//! whole event-loop iteration), and a connection whose units another one
//! wrote has nothing left to do.
//!
//! Under `appendfsync always` the connection first yields while other
//! connections keep queuing units ([`Commit::gather`]: the runtime's pass
//! over every ready connection, Redis's event-loop pass), then writes and
//! fdatasyncs on its own worker thread, as Redis fsyncs in its event loop:
//! one fdatasync serves every unit written before it started, the
//! connections it covered are woken through the progress channel, and one
//! that finds an fdatasync running (on another worker) awaits it and syncs
//! again if it was not covered. No thread hand-off on the way: a
//! dedicated syncer thread cost about a quarter of the throughput in wakeups
//! (`benches/durability.sh`).
//!
//! A batch with no units of its own still waits for the ticket current when
//! it released the lock: what it read may come from other connections'
//! units, and Redis never shows a client a write before it is in the AOF.
//!
//! Streams dropped by a batch (`stream::Doomed`) are queued with its units
//! and their directories removed only after those units are written.

use crate::stream::Doomed;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// At most this many yields before an fdatasync (see `Commit::gather`).
const GATHER_ROUNDS: usize = 8;

/// The units could not be written or synced: the WAL is in its sticky
/// failed state (the sink recorded the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the WAL failed")]
pub struct Failed;

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
    /// A write or fsync failed; nothing more is written (sticky).
    pub failed: bool,
}

/// See the module doc.
#[derive(Debug)]
pub struct Commit {
    queue: Mutex<Queue>,
    /// Held while writing, so batches reach the WAL in seq order.
    writing: Mutex<()>,
    progress: watch::Sender<Progress>,
    /// An fdatasync is running.
    syncing: AtomicBool,
}

/// Writes and syncs the queued units: the WAL as `Persistence` drives it.
pub trait Sink: Sync {
    /// Writes `units`, whose first seq is `first`, in one call.
    fn write(&self, first: u64, units: &[Vec<u8>]) -> Result<(), String>;
    /// fdatasyncs everything written so far.
    fn sync(&self) -> Result<(), String>;
    /// Removes the directories of streams whose dropping is now written.
    fn reap(&self, doomed: Vec<Doomed>);
}

impl Commit {
    /// A queue whose next unit gets seq `next_seq` (the WAL's, at open).
    pub fn new(next_seq: u64) -> Commit {
        let (progress, _) = watch::channel(Progress {
            written: next_seq,
            durable: next_seq,
            failed: false,
        });
        Commit {
            queue: Mutex::new(Queue {
                next_seq,
                ..Queue::default()
            }),
            writing: Mutex::new(()),
            progress,
            syncing: AtomicBool::new(false),
        }
    }

    /// Queues a batch's units and the streams it dropped; returns the
    /// batch's ticket (the seq after its last unit). Call under the
    /// keyspace lock.
    pub fn enqueue(&self, units: Vec<Vec<u8>>, doomed: Vec<Doomed>) -> u64 {
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

    /// Bytes of the units queued and not yet written (INFO
    /// `mem_not_counted_for_evict`).
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

    /// Marks the queue failed: waiters stop waiting and get the failure.
    pub fn fail(&self) {
        self.progress.send_modify(|p| p.failed = true);
    }

    /// Makes sure every unit below `ticket` is written, writing what is
    /// queued if nobody has yet. Err when they could not be written
    /// (the failure is sticky; the sink has recorded its text).
    pub fn write_upto(&self, ticket: u64, sink: &dyn Sink) -> Result<(), Failed> {
        let p = self.progress();
        if p.written >= ticket {
            return Ok(());
        }
        if p.failed {
            return Err(Failed);
        }
        let _w = self.writing.lock();
        let p = self.progress();
        if p.written >= ticket {
            return Ok(());
        }
        if p.failed {
            return Err(Failed);
        }
        let (units, doomed, end) = {
            let mut q = self.queue.lock();
            (
                std::mem::take(&mut q.units),
                std::mem::take(&mut q.doomed),
                q.next_seq,
            )
        };
        let first = p.written;
        if let Err(e) = sink.write(first, &units) {
            tracing::error!("writing the WAL failed: {e}");
            self.fail();
            // The streams stay on disk: their drops are not in the WAL.
            drop(doomed);
            return Err(Failed);
        }
        self.progress.send_modify(|p| p.written = end);
        if !doomed.is_empty() {
            sink.reap(doomed);
        }
        Ok(())
    }

    /// Yields to the other ready connections while they keep queuing
    /// units, so that one fdatasync covers them all; stops after a pass
    /// that queued nothing, when another connection wrote this batch's
    /// units (it syncs them), or after [`GATHER_ROUNDS`] yields.
    pub async fn gather(&self, ticket: u64) {
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
    pub async fn wait_durable(&self, ticket: u64, sink: &dyn Sink) -> Result<(), Failed> {
        let mut rx = self.progress.subscribe();
        loop {
            {
                let p = rx.borrow_and_update();
                if p.durable >= ticket {
                    return Ok(());
                }
                if p.failed {
                    return Err(Failed);
                }
            }
            if !self.syncing.swap(true, Ordering::SeqCst) {
                self.sync_written(sink);
                continue;
            }
            if rx.changed().await.is_err() {
                return Err(Failed);
            }
        }
    }

    /// One fdatasync of everything written so far; call with `syncing`
    /// set (this clears it).
    fn sync_written(&self, sink: &dyn Sink) {
        let target = self.progress().written;
        let synced = sink.sync();
        // Step down before publishing: a waiter this fdatasync did not
        // cover wakes on the progress change and must find `syncing`
        // clear to sync itself (cleared after, it could wait for a change
        // nobody will make).
        self.syncing.store(false, Ordering::SeqCst);
        match synced {
            Ok(()) => self
                .progress
                .send_modify(|p| p.durable = p.durable.max(target)),
            Err(e) => {
                tracing::error!("fdatasync of the WAL failed: {e}");
                self.fail();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    #[derive(Default)]
    struct Mem {
        log: parking_lot::Mutex<Vec<(u64, Vec<u8>)>>,
        syncs: AtomicU64,
        fail_writes: AtomicBool,
    }

    impl Sink for Mem {
        fn write(&self, first: u64, units: &[Vec<u8>]) -> Result<(), String> {
            if self.fail_writes.load(Ordering::SeqCst) {
                return Err("No space left on device".into());
            }
            let mut log = self.log.lock();
            for (i, u) in units.iter().enumerate() {
                log.push((first + i as u64, u.clone()));
            }
            Ok(())
        }
        fn sync(&self) -> Result<(), String> {
            // As slow as a disk: the other writers queue up meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(2));
            self.syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn reap(&self, _: Vec<Doomed>) {}
    }

    #[test]
    fn one_write_covers_every_queued_batch_in_order() {
        let c = Commit::new(7);
        let sink = Mem::default();
        let t1 = c.enqueue(vec![b"a".to_vec()], vec![]);
        let t2 = c.enqueue(vec![b"b".to_vec(), b"c".to_vec()], vec![]);
        assert_eq!((t1, t2), (8, 10));
        // The later batch flushes first: it writes both, the earlier finds
        // its units written.
        c.write_upto(t2, &sink).unwrap();
        c.write_upto(t1, &sink).unwrap();
        let log = sink.log.lock().clone();
        assert_eq!(
            log,
            vec![(7, b"a".to_vec()), (8, b"b".to_vec()), (9, b"c".to_vec())]
        );
        assert_eq!(c.progress().written, 10);
        assert_eq!(c.progress().durable, 7);
    }

    #[test]
    fn a_failed_write_is_sticky() {
        let c = Commit::new(0);
        let sink = Mem::default();
        sink.fail_writes.store(true, Ordering::SeqCst);
        let t = c.enqueue(vec![b"a".to_vec()], vec![]);
        assert!(c.write_upto(t, &sink).is_err());
        sink.fail_writes.store(false, Ordering::SeqCst);
        let t = c.enqueue(vec![b"b".to_vec()], vec![]);
        assert!(c.write_upto(t, &sink).is_err());
        assert!(sink.log.lock().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_fdatasyncs() {
        let c = Arc::new(Commit::new(0));
        let sink = Arc::new(Mem::default());
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let (c, sink) = (c.clone(), sink.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let t = c.enqueue(vec![vec![i]], vec![]);
                    c.gather(t).await;
                    c.write_upto(t, &*sink).unwrap();
                    c.wait_durable(t, &*sink).await.unwrap();
                    assert!(c.progress().durable >= t);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(sink.log.lock().len(), 1000);
        let syncs = sink.syncs.load(Ordering::SeqCst);
        assert!((1..=500).contains(&syncs), "{syncs} fdatasyncs");
    }
}
