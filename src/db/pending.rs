//! The keyspace-level summary of per-database work left for the end of a
//! command: which databases have something to materialise (touched keys,
//! expiry changes, a flush: `Keyspace::materialize`) and which have ready
//! keys for blocked clients (`Keyspace::take_ready_key`). With it, a
//! command that touched nothing and readied nothing costs one load at its
//! end instead of a look at every database.
//!
//! One `Pending` is shared by the 16 `Db`s of a keyspace (each holds a
//! handle and its own bit). Invariant: a database's bit is set whenever
//! its corresponding list is not empty (a set bit over an empty list is
//! allowed and costs one look); the bits are set at the places the lists
//! are pushed to, so the invariant holds whether effect capture is on or
//! off.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Bits 0..16: database i has captured changes to materialise; bits
/// 16..32: database i has ready keys.
#[derive(Debug, Default)]
pub struct Pending(AtomicU32);

/// Where ready bits start.
const READY_SHIFT: u32 = 16;

/// A database's handle on its keyspace's summary.
#[derive(Debug, Clone, Default)]
pub struct PendingBit {
    shared: Arc<Pending>,
    /// This database's bit among the capture bits (0 outside a keyspace:
    /// a standalone `Db` notes nothing).
    bit: u32,
}

impl Pending {
    /// The handle of database `db` (< 16).
    pub fn handle(self: &Arc<Self>, db: usize) -> PendingBit {
        debug_assert!(db < READY_SHIFT as usize);
        PendingBit {
            shared: self.clone(),
            bit: 1 << db,
        }
    }

    /// Takes the capture bits (clearing them): the databases to materialise.
    pub fn take_touched(&self) -> u32 {
        let v = self.0.load(Ordering::Relaxed);
        if v & ((1 << READY_SHIFT) - 1) == 0 {
            return 0;
        }
        self.0
            .fetch_and(!((1 << READY_SHIFT) - 1), Ordering::Relaxed)
            & ((1 << READY_SHIFT) - 1)
    }

    /// The databases with ready keys (bit i: database i).
    pub fn ready(&self) -> u32 {
        self.0.load(Ordering::Relaxed) >> READY_SHIFT
    }

    /// Clears database `db`'s ready bit (its ready list is empty).
    pub fn clear_ready(&self, db: usize) {
        self.0
            .fetch_and(!(1 << (db as u32 + READY_SHIFT)), Ordering::Relaxed);
    }
}

impl PendingBit {
    fn set(&self, bits: u32) {
        // Usually set already within a command: a plain load then.
        if self.shared.0.load(Ordering::Relaxed) & bits != bits {
            self.shared.0.fetch_or(bits, Ordering::Relaxed);
        }
    }

    /// The database captured a change.
    pub fn touched(&self) {
        self.set(self.bit);
    }

    /// The database queued a ready key.
    pub fn ready(&self) {
        self.set(self.bit << READY_SHIFT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_per_database() {
        let p = Arc::new(Pending::default());
        let (a, b) = (p.handle(0), p.handle(15));
        assert_eq!((p.take_touched(), p.ready()), (0, 0));
        b.touched();
        a.ready();
        b.ready();
        assert_eq!(p.ready(), 1 | 1 << 15);
        assert_eq!(p.take_touched(), 1 << 15);
        assert_eq!(p.take_touched(), 0);
        p.clear_ready(0);
        assert_eq!(p.ready(), 1 << 15);
        // A standalone database's handle marks nothing.
        let lone = PendingBit::default();
        lone.touched();
        lone.ready();
        assert_eq!(lone.shared.0.load(Ordering::Relaxed), 0);
    }
}
