//! Lazy freeing (Redis's lazyfree.c): values too big to free on the spot
//! are dropped on a background thread, off the keyspace lock.
//!
//! A deleted value whose freeing takes more than `THRESHOLD` allocations
//! (`Value::free_effort`: a table's elements, a quicklist's nodes) goes to
//! the thread when the deletion is lazy: UNLINK always; DEL with
//! `lazyfree-lazy-user-del`; an overwrite (SET, RENAME ... onto a key)
//! with `lazyfree-lazy-server-del`; expiry with `lazyfree-lazy-expire`;
//! eviction with `lazyfree-lazy-eviction`. FLUSHALL / FLUSHDB ASYNC (or
//! without a mode under `lazyfree-lazy-user-flush`) hand the whole emptied
//! database to the thread, whatever its size. INFO counts the objects
//! queued and not freed yet (`lazyfree_pending_objects`) and those freed
//! so far (`lazyfreed_objects`), as Redis: one per value, the key count
//! for a flushed database.
//!
//! The thread starts at the first job and ends when the keyspace that
//! owns the queue is dropped.

use super::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

/// Redis's `LAZYFREE_THRESHOLD`.
pub const THRESHOLD: usize = 64;

/// Why a value is being deleted; each has its `lazyfree-lazy-*` setting
/// except UNLINK, which is always lazy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Unlink,
    UserDel,
    ServerDel,
    Expire,
    Eviction,
}

/// The `lazyfree-lazy-*` settings in effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub user_del: bool,
    pub user_flush: bool,
    pub server_del: bool,
    pub expire: bool,
    pub eviction: bool,
}

#[derive(Debug, Default)]
struct Counters {
    pending: AtomicU64,
    freed: AtomicU64,
    /// Estimated bytes of the queued values (`Value::mem_usage`).
    pending_bytes: AtomicU64,
    /// Jobs finished: the used-memory gauge refreshes when it moved.
    done: AtomicU64,
}

/// Something to drop, the number of objects it counts for and its
/// estimated bytes.
struct Job(Box<dyn Send>, u64, u64);

impl Counters {
    fn finish(&self, Job(payload, count, bytes): Job) {
        drop(payload);
        self.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.pending.fetch_sub(count, Ordering::Relaxed);
        self.freed.fetch_add(count, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Release);
    }
}

#[derive(Default)]
struct Inner {
    counters: Arc<Counters>,
    tx: Mutex<Option<Sender<Job>>>,
    user_del: AtomicBool,
    user_flush: AtomicBool,
    server_del: AtomicBool,
    expire: AtomicBool,
    eviction: AtomicBool,
}

/// A keyspace's lazy-free queue (cheap to clone: every database holds one).
#[derive(Clone, Default)]
pub struct LazyFree(Arc<Inner>);

impl std::fmt::Debug for LazyFree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyFree")
            .field("pending", &self.pending())
            .field("freed", &self.freed())
            .finish()
    }
}

impl LazyFree {
    pub fn set_settings(&self, s: Settings) {
        let i = &self.0;
        i.user_del.store(s.user_del, Ordering::Relaxed);
        i.user_flush.store(s.user_flush, Ordering::Relaxed);
        i.server_del.store(s.server_del, Ordering::Relaxed);
        i.expire.store(s.expire, Ordering::Relaxed);
        i.eviction.store(s.eviction, Ordering::Relaxed);
    }

    /// Whether deletions for `reason` are lazy now.
    pub fn is_lazy(&self, reason: Reason) -> bool {
        let i = &self.0;
        match reason {
            Reason::Unlink => true,
            Reason::UserDel => i.user_del.load(Ordering::Relaxed),
            Reason::ServerDel => i.server_del.load(Ordering::Relaxed),
            Reason::Expire => i.expire.load(Ordering::Relaxed),
            Reason::Eviction => i.eviction.load(Ordering::Relaxed),
        }
    }

    /// `lazyfree-lazy-user-flush`: FLUSHALL / FLUSHDB's default mode.
    pub fn user_flush(&self) -> bool {
        self.0.user_flush.load(Ordering::Relaxed)
    }

    /// INFO `lazyfree_pending_objects`.
    pub fn pending(&self) -> u64 {
        self.0.counters.pending.load(Ordering::Relaxed)
    }

    /// INFO `lazyfreed_objects`.
    pub fn freed(&self) -> u64 {
        self.0.counters.freed.load(Ordering::Relaxed)
    }

    /// Estimated bytes of the values queued and not freed yet: the
    /// memory limit counts them as gone (they are, for the keyspace).
    pub fn pending_bytes(&self) -> u64 {
        self.0.counters.pending_bytes.load(Ordering::Relaxed)
    }

    /// Jobs the thread finished so far.
    pub fn done(&self) -> u64 {
        self.0.counters.done.load(Ordering::Acquire)
    }

    /// Disposes of a deleted value (Redis's `freeObjAsync`): queued for
    /// the background thread when the deletion is lazy and freeing it is
    /// worth it (its estimated bytes returned), dropped here otherwise.
    pub fn dispose(&self, v: Value, reason: Reason) -> Option<u64> {
        if self.is_lazy(reason) && v.free_effort() > THRESHOLD {
            let est = v.mem_usage(5) as u64;
            self.queue(Box::new(v), 1, est);
            Some(est)
        } else {
            drop(v);
            None
        }
    }

    /// Queues a whole emptied database of `keys` keys (Redis's
    /// `emptyDbAsync`).
    pub fn dispose_all(&self, data: Box<dyn Send>, keys: u64) {
        self.queue(data, keys, 0);
    }

    fn queue(&self, payload: Box<dyn Send>, count: u64, bytes: u64) {
        let counters = &self.0.counters;
        counters.pending.fetch_add(count, Ordering::Relaxed);
        counters.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut tx = self.0.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.is_none() {
            let (s, r) = channel::<Job>();
            let c = counters.clone();
            let spawned = std::thread::Builder::new()
                .name("lazyfree".into())
                .spawn(move || {
                    while let Ok(job) = r.recv() {
                        c.finish(job);
                    }
                });
            if spawned.is_ok() {
                *tx = Some(s);
            }
        }
        let job = Job(payload, count, bytes);
        let unsent = match tx.as_ref() {
            Some(s) => s.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        // No thread (it could not start): freed here, still counted.
        if let Some(job) = unsent {
            counters.finish(job);
        }
    }

    /// Waits until every queued job is freed (tests, and nothing else:
    /// the server never waits for the thread).
    pub fn wait_idle(&self) {
        while self.pending() > 0 {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::set::Set;

    fn big_set(n: usize) -> Value {
        let mut s = Set::Table(Default::default());
        for i in 0..n {
            s.add(format!("m{i}").as_bytes(), 0);
        }
        Value::Set(s)
    }

    #[test]
    fn large_values_go_to_the_thread_small_ones_do_not() {
        let lf = LazyFree::default();
        assert!(
            lf.dispose(big_set(THRESHOLD), Reason::Unlink).is_none(),
            "64: not above"
        );
        assert!(lf.dispose(big_set(THRESHOLD + 1), Reason::Unlink).is_some());
        assert!(
            lf.dispose(big_set(1000), Reason::UserDel).is_none(),
            "user-del off"
        );
        lf.set_settings(Settings {
            user_del: true,
            ..Settings::default()
        });
        assert!(lf.dispose(big_set(1000), Reason::UserDel).is_some());
        assert!(lf.dispose(Value::str("x"), Reason::Unlink).is_none());
        lf.wait_idle();
        assert_eq!((lf.pending(), lf.freed(), lf.pending_bytes()), (0, 2, 0));
        assert_eq!(lf.done(), 2);
        lf.dispose_all(Box::new(vec![big_set(3)]), 7);
        lf.wait_idle();
        assert_eq!(lf.freed(), 9);
    }
}
