//! The keyspace: 16 databases of keys, their values and expiry times, the
//! WATCH bookkeeping, and the active expiry cycle.
//!
//! Concurrency model: the whole keyspace sits behind one mutex held by
//! `server::Shared`. Connections decode and encode on all tokio worker
//! threads in parallel; executing a command (or a pipelined batch, or an EXEC
//! block) takes the lock once, so every command is atomic and isolated as in
//! Redis without per-key locking. See ARCHITECTURE.md.
//!
//! Key order for SCAN: each key also owns a stable slot in a slab (`slab`);
//! a SCAN cursor is a slot index, so a key present for the whole scan is
//! always returned (Redis's guarantee) no matter how many keys are added or
//! removed meanwhile, and the cursor is a plain unsigned integer as clients
//! expect. Keys with an expiry own a slot in a second slab, which the active
//! expiry cycle walks with a cursor, as Redis walks its expires table.

pub mod blocking;
pub mod effect;
pub mod engines;
pub mod evict;
pub mod expire;
pub mod hash;
pub mod hll;
mod key;
pub mod lazyfree;
pub mod list;
pub mod memory;
pub mod notify;
mod pending;
pub mod scanmap;
pub mod set;
pub mod slab;
mod streams;
pub mod tracking;
mod value;
mod varint;
pub mod zset;

pub use value::{StrForm, StrValue, Value, SHARED_REFCOUNT};

use bytes::Bytes;
use key::KeyBuf;
use slab::{Slab, NO_SLOT};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

/// Number of databases (`databases` in redis.conf), selectable with SELECT.
pub const DATABASES: usize = 16;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The hasher of the key maps: foldhash, seeded at random per process (so
/// key sets chosen by clients cannot force collisions reliably) and several
/// times faster than SipHash on short keys.
pub type KeyHasher = foldhash::fast::RandomState;

/// A fixed (not randomly seeded) hash of a field or member: the order of
/// large hashes and sets (HSCAN/SSCAN cursors are positions in it), which
/// must stay stable for the life of the process.
pub fn key_hash(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x05ee_d0f4_ed15).hash_one(key)
}

/// One key's slot.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 means no expiry.
    pub expires_at_ms: u64,
    /// Access information for eviction (Redis's 24-bit `lru` field): under
    /// an LRU policy the last access, in seconds since the keyspace's clock
    /// origin (OBJECT IDLETIME); under an LFU policy the minute of the last
    /// decrement << 8 | the logarithmic counter (OBJECT FREQ). See `evict`.
    pub lru: u32,
    /// The key's slot in its database's expires slab, or NO_SLOT without a
    /// TTL: kept by `Db` (in what would be the entry's padding), meaningless
    /// in an entry taken out of a database.
    exp_slot: u32,
}

impl Entry {
    pub fn new(value: Value, expires_at_ms: u64, lru: u32) -> Entry {
        Entry {
            value,
            expires_at_ms,
            lru,
            exp_slot: NO_SLOT,
        }
    }
}

/// A key with its entry, in its slot of `Db::order`: the name inline up to
/// 22 bytes (`key::KeyBuf`), shared with nothing (the expires slab names
/// keys by slot, not by a second handle).
#[derive(Debug)]
struct Slot {
    key: KeyBuf,
    entry: Entry,
}

/// The index's equality test: slot `i` of `order` holds `key`.
fn holds<'a>(order: &'a Slab<Slot>, key: &'a [u8]) -> impl Fn(&u32) -> bool + 'a {
    move |&i| order.get(i as usize).is_some_and(|s| s.key[..] == *key)
}

/// One database (SELECT index).
#[derive(Default, Debug)]
pub struct Db {
    /// Every key with its entry, in SCAN order: the slot is the cursor
    /// position and never changes while the key exists.
    order: Slab<Slot>,
    /// Key hash -> slot in `order`: 4 bytes per bucket, so a big keyspace
    /// costs about its slots (Redis's dict costs a pointer per bucket plus
    /// a 24-byte entry per key).
    index: hashbrown::HashTable<u32>,
    hasher: KeyHasher,
    /// The `order` slots of the keys with an expiry (walked by the active
    /// cycle): 8 bytes per key with a TTL.
    expires: Slab<u32>,
    /// Where the active expiry cycle resumes in `expires`.
    pub(crate) expire_cursor: u64,
    /// WATCHed key -> (client id, whether the key was already expired when
    /// that client watched it).
    watchers: HashMap<Bytes, Vec<(u64, bool)>>,
    /// Clients whose watched keys in this database were modified.
    dirty: HashSet<u64>,
    /// Keys whose value changed since the last materialisation (effect capture).
    touched: Vec<Bytes>,
    /// Keys whose expiry alone changed since the last materialisation.
    expiry_touched: Vec<Bytes>,
    /// Keys whose change the current command logged as an operation effect
    /// (`Keyspace::log_op`): no final-state Set is emitted for them.
    op_logged: HashSet<Bytes>,
    /// The database was emptied since the last `take_effects`.
    cleared: bool,
    /// An LFU policy is selected: an overwritten key keeps its counter
    /// (Redis's `dbSetValue`).
    lfu: bool,
    /// Effect capture is on (off while replaying the WAL).
    capture: bool,
    /// Blocked client ids per key, oldest first (see `blocking`).
    blocked: HashMap<Bytes, std::collections::VecDeque<u64>>,
    /// Keys with waiters that became ready, in signal order, each once.
    ready: Vec<Bytes>,
    /// The keyspace's lazy-free queue (overwritten values, async flushes).
    pub(crate) lazy: lazyfree::LazyFree,
    /// Some client tracks keys (CLIENT TRACKING): modified keys are noted
    /// in `modified` for `Keyspace::take_tracking_events`.
    track: bool,
    modified: Vec<tracking::Modified>,
    /// Emptied (FLUSHDB/FLUSHALL) while `track` was on.
    flushed: bool,
    /// Cluster mode (database 0): the keys of each hash slot.
    pub slot_index: Option<Box<crate::cluster::slots::SlotIndex>>,
    /// A client of a writable replica is running: keys given a TTL go
    /// into `replica_ttl` (`Keyspace::set_expire_role`).
    track_replica_ttl: bool,
    /// Keys a writable replica's clients gave a TTL (`expire`).
    pub(crate) replica_ttl: expire::ReplicaTtlKeys,
    /// This database's bit in the keyspace's summary of pending work
    /// (`pending`): set whenever `touched`, `expiry_touched`, `cleared`
    /// or `ready` gets something.
    pending: pending::PendingBit,
}

impl Db {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The slot of `key` in `order`.
    fn find(&self, key: &[u8]) -> Option<u32> {
        self.find_hashed(self.hash(key), key)
    }

    /// `find` with the key's hash already computed.
    fn find_hashed(&self, h: u64, key: &[u8]) -> Option<u32> {
        self.index.find(h, holds(&self.order, key)).copied()
    }

    fn slot(&self, key: &[u8]) -> Option<&Slot> {
        self.order.get(self.find(key)? as usize)
    }

    fn slot_mut(&mut self, key: &[u8]) -> Option<&mut Slot> {
        let i = self.find(key)?;
        self.order.get_mut(i as usize)
    }

    /// Whether `key` is stored (expired or not).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// The stored key equal to `key` with its entry.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &Entry)> {
        self.slot(key).map(|s| (&s.key[..], &s.entry))
    }

    /// The entry regardless of expiry (no lazy deletion).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.slot(key).map(|s| &s.entry)
    }

    /// Mutable access without modification signal; callers that change the
    /// value must call `signal_modified`, and must change the expiry only
    /// through `set_expiry`.
    pub fn peek_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.slot_mut(key).map(|s| &mut s.entry)
    }

    /// True when the key exists and its expiry has passed.
    pub fn is_expired(&self, key: &[u8], now_ms: u64) -> bool {
        // No key with a TTL (the expires set is kept in step with every
        // entry's expiry): no lookup, which a write's lookup would repeat.
        if self.expires.is_empty() {
            return false;
        }
        matches!(self.peek(key), Some(e) if e.expires_at_ms != 0 && e.expires_at_ms <= now_ms)
    }

    /// Inserts or replaces a key's entry. Keeps the scan order and the
    /// expires set in step, and signals WATCHers.
    pub fn insert(&mut self, key: Bytes, entry: Entry) {
        let has_ttl = entry.expires_at_ms != 0;
        if has_ttl && self.track_replica_ttl {
            self.replica_ttl.add(&key);
        }
        self.signal_modified(&key);
        let h = self.hash(&key);
        match self.find_hashed(h, &key) {
            Some(i) => {
                // An overwritten key may end a wait (Redis's
                // signalDeletedKeyAsReady: blocked XREADGROUP).
                self.mark_ready(&key);
                let Some(old) = self.order.get_mut(i as usize) else {
                    return;
                };
                let exp_slot = old.entry.exp_slot;
                let had_ttl = exp_slot != NO_SLOT;
                let lru = old.entry.lru;
                let replaced = std::mem::replace(&mut old.entry, entry);
                old.entry.exp_slot = exp_slot;
                if self.lfu {
                    old.entry.lru = lru;
                }
                if had_ttl && !has_ttl {
                    self.expires.remove(exp_slot);
                    old.entry.exp_slot = NO_SLOT;
                } else if !had_ttl && has_ttl {
                    old.entry.exp_slot = self.expires.insert(i);
                }
                // An overwrite is a server-side deletion (Redis's
                // dbOverwrite under lazyfree-lazy-server-del).
                self.lazy
                    .dispose(replaced.value, lazyfree::Reason::ServerDel);
            }
            None => {
                // A new key may serve blocked clients (Redis's dbAdd).
                self.mark_ready(&key);
                // A key of its own: the caller's may be a slice of a request
                // buffer, which it would keep alive (Redis copies too).
                if let Some(ix) = &mut self.slot_index {
                    ix.add(&key);
                }
                let mut entry = entry;
                entry.exp_slot = NO_SLOT;
                let i = self.order.insert(Slot {
                    key: KeyBuf::new(&key),
                    entry,
                });
                if has_ttl {
                    let e = self.expires.insert(i);
                    if let Some(s) = self.order.get_mut(i as usize) {
                        s.entry.exp_slot = e;
                    }
                }
                let (order, hasher) = (&self.order, &self.hasher);
                self.index.insert_unique(h, i, |&j| {
                    order
                        .get(j as usize)
                        .map_or(0, |s| hasher.hash_one(&s.key[..]))
                });
            }
        }
    }

    /// MEMORY USAGE of a key present (expired or not): its slot, its share
    /// of the index (4 bytes and a control byte per bucket, buckets 8/7
    /// of the keys), its name's allocation, its place in the expires slab,
    /// and its value (`Value::mem_usage`).
    pub fn key_usage(&self, key: &[u8], samples: usize) -> Option<usize> {
        let i = self.find_hashed(self.hash(key), key)?;
        let slot = self.order.get(i as usize)?;
        let mut n = std::mem::size_of::<Option<Slot>>()
            + 5 * 8 / 7
            + slot.key.heap_bytes()
            + slot.entry.value.mem_usage(samples);
        if slot.entry.exp_slot != NO_SLOT {
            // Its slot in the expires slab (the `order` slot's number).
            n += std::mem::size_of::<Option<u32>>();
        }
        Some(n)
    }

    /// (main table, expires) overhead bytes (MEMORY STATS
    /// `overhead.hashtable.main` / `.expires`): the slot slabs and the index.
    pub fn overhead(&self) -> (usize, usize) {
        let buckets = if self.index.capacity() == 0 {
            0
        } else {
            (self.index.capacity() * 8 / 7).next_power_of_two()
        };
        (
            self.order.alloc_bytes() + memory::size_class(buckets * 5),
            self.expires.alloc_bytes(),
        )
    }

    /// Below 10% fill the index shrinks to fit its keys (Redis's
    /// `htNeedsResize`, HASHTABLE_MIN_FILL), so mass deletions and expiry
    /// give its buckets back; an empty index frees them all.
    fn shrink_index(&mut self) {
        let (len, cap) = (self.index.len(), self.index.capacity());
        if (cap > 64 && len * 10 < cap) || (len == 0 && cap > 0) {
            let (order, hasher) = (&self.order, &self.hasher);
            self.index.shrink_to(len, |&j| {
                order
                    .get(j as usize)
                    .map_or(0, |s| hasher.hash_one(&s.key[..]))
            });
        }
    }

    /// Removes a key, returning its entry; signals WATCHers.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.remove_quiet(key)?;
        self.signal_modified(key);
        Some(e)
    }

    /// Removes a key without signalling WATCHers.
    fn remove_quiet(&mut self, key: &[u8]) -> Option<Entry> {
        let h = self.hash(key);
        let found = self.index.find_entry(h, holds(&self.order, key));
        let (i, _) = found.ok()?.remove();
        let s = self.order.take(i)?;
        if let Some(ix) = &mut self.slot_index {
            ix.remove(key);
        }
        self.shrink_index();
        // A deleted key may end a wait (blocked XREADGROUP).
        self.mark_ready(key);
        if s.entry.exp_slot != NO_SLOT {
            self.expires.remove(s.entry.exp_slot);
        }
        Some(s.entry)
    }

    /// Sets or clears (0) a key's expiry. Returns false when the key is missing.
    pub fn set_expiry(&mut self, key: &[u8], expires_at_ms: u64) -> bool {
        let Some(i) = self.find(key) else {
            return false;
        };
        if expires_at_ms != 0 && self.track_replica_ttl {
            self.replica_ttl.add(key);
        }
        let Some(s) = self.order.get_mut(i as usize) else {
            return false;
        };
        let had = s.entry.exp_slot != NO_SLOT;
        if had && expires_at_ms == 0 {
            self.expires.remove(s.entry.exp_slot);
            s.entry.exp_slot = NO_SLOT;
        } else if !had && expires_at_ms != 0 {
            s.entry.exp_slot = self.expires.insert(i);
        }
        s.entry.expires_at_ms = expires_at_ms;
        if self.capture && self.expiry_touched.last().is_none_or(|x| x[..] != *key) {
            self.expiry_touched.push(Bytes::copy_from_slice(key));
            self.pending.touched();
        }
        self.signal_watchers(key);
        true
    }

    /// Records that `key` changed: marks the clients watching it dirty
    /// (Redis's `signalModifiedKey`) and notes it for effect capture. Every
    /// modification of a key must go through here.
    pub fn signal_modified(&mut self, key: &[u8]) {
        self.note_touched(key);
        self.signal_watchers(key);
    }

    /// Signals WATCHers of `key` without noting it for effect capture: for
    /// changes made durable elsewhere (a stream's own logs), so the WAL
    /// gets no unit for them.
    pub fn signal_watchers_only(&mut self, key: &[u8]) {
        self.signal_watchers(key);
    }

    fn signal_watchers(&mut self, key: &[u8]) {
        if self.track {
            self.note_tracked(key, true);
        }
        if self.watchers.is_empty() {
            return;
        }
        if let Some(ids) = self.watchers.get(key) {
            self.dirty.extend(ids.iter().map(|(c, _)| *c));
        }
    }

    /// Signals the deletion of an expired key. A client that watched the key
    /// when it was already expired sees no change (Redis 7.0's
    /// `touchWatchedKey`); the others do.
    fn signal_expired_deleted(&mut self, key: &[u8]) {
        if self.track {
            self.note_tracked(key, false);
        }
        if let Some(ids) = self.watchers.get_mut(key) {
            for (c, expired_at_watch) in ids.iter_mut() {
                if *expired_at_watch {
                    *expired_at_watch = false;
                } else {
                    self.dirty.insert(*c);
                }
            }
        }
    }

    /// Signals the deletion of an evicted key: WATCHers, and tracking
    /// clients as a change made by no client (Redis's
    /// `signalModifiedKey(NULL, ...)`).
    pub(crate) fn signal_evicted(&mut self, key: &[u8]) {
        if self.track {
            self.note_tracked(key, false);
        }
        if let Some(ids) = self.watchers.get(key) {
            self.dirty.extend(ids.iter().map(|(c, _)| *c));
        }
    }

    /// Notes a modified key for CLIENT TRACKING (Redis's
    /// `trackingInvalidateKey` from `signalModifiedKey`).
    fn note_tracked(&mut self, key: &[u8], by_client: bool) {
        self.modified.push(tracking::Modified {
            key: Bytes::copy_from_slice(key),
            by_client,
        });
    }

    /// Marks every watcher of an existing key dirty (FLUSHDB, SWAPDB).
    pub fn signal_all_existing(&mut self, other: Option<&Db>) {
        for (key, ids) in &self.watchers {
            if self.contains(key) || other.is_some_and(|o| o.contains(key)) {
                self.dirty.extend(ids.iter().map(|(c, _)| *c));
            }
        }
    }

    /// Registers a WATCH; `expired_now` tells whether the key exists but is
    /// already logically expired.
    pub fn watch(&mut self, key: Bytes, client: u64, expired_now: bool) {
        let ids = self.watchers.entry(key).or_default();
        if !ids.iter().any(|(c, _)| *c == client) {
            ids.push((client, expired_now));
        }
    }

    /// True when `client` watched `key` while it was not yet expired and it
    /// has expired since (EXEC then aborts, as Redis 7.0).
    pub fn watched_key_expired(&self, key: &[u8], client: u64, now_ms: u64) -> bool {
        let fresh_at_watch = self
            .watchers
            .get(key)
            .and_then(|ids| ids.iter().find(|(c, _)| *c == client))
            .is_some_and(|(_, expired)| !expired);
        fresh_at_watch && self.is_expired(key, now_ms)
    }

    pub fn unwatch(&mut self, key: &[u8], client: u64) {
        if let Some(ids) = self.watchers.get_mut(key) {
            ids.retain(|(c, _)| *c != client);
            if ids.is_empty() {
                self.watchers.remove(key);
            }
        }
        self.dirty.remove(&client);
    }

    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
    }

    fn note_touched(&mut self, key: &[u8]) {
        if self.capture && self.touched.last().is_none_or(|k| k != key) {
            self.touched.push(Bytes::copy_from_slice(key));
            self.pending.touched();
        }
    }

    /// Removes every key (FLUSHDB); watchers of existing keys are signalled.
    pub fn clear(&mut self) {
        self.clear_as(false)
    }

    /// Empties the database; `lazy` (FLUSHDB/FLUSHALL ASYNC) frees its
    /// keys and values on the lazy-free thread.
    pub fn clear_as(&mut self, lazy: bool) {
        self.signal_all_existing(None);
        // Keys of the same names the primary sends later are its own
        // (Redis's `flushSlaveKeysWithExpireList`).
        self.replica_ttl.clear();
        if self.track {
            self.flushed = true;
        }
        let gone: Vec<Bytes> = self
            .blocked
            .keys()
            .filter(|k| self.contains(k))
            .cloned()
            .collect();
        for k in gone {
            self.mark_ready(&k);
        }
        if self.capture {
            self.cleared = true;
            self.pending.touched();
            self.touched.clear();
            self.expiry_touched.clear();
            self.op_logged.clear();
        }
        let n = self.order.len() as u64;
        if let Some(ix) = &mut self.slot_index {
            ix.clear();
        }
        let data = (
            std::mem::take(&mut self.index),
            std::mem::take(&mut self.order),
            std::mem::take(&mut self.expires),
        );
        self.expire_cursor = 0;
        if lazy {
            // Redis's emptyDbAsync: the old tables go whole, counted by keys.
            self.lazy.dispose_all(Box::new(data), n);
        }
    }

    /// Exchanges the data of two databases, leaving WATCH state in place
    /// (SWAPDB): a client watching a key in db 0 now watches db 0's new data.
    /// Effect capture needs the SwapDb effect in order: use
    /// `Keyspace::swap_db`.
    fn swap_data(a: &mut Db, b: &mut Db) {
        a.signal_all_existing(Some(b));
        b.signal_all_existing(Some(a));
        std::mem::swap(&mut a.index, &mut b.index);
        std::mem::swap(&mut a.hasher, &mut b.hasher);
        std::mem::swap(&mut a.order, &mut b.order);
        std::mem::swap(&mut a.expires, &mut b.expires);
        std::mem::swap(&mut a.expire_cursor, &mut b.expire_cursor);
    }

    /// Turns the per-slot key index on (cluster mode), indexing the keys
    /// already present.
    pub fn enable_slot_index(&mut self) {
        let mut ix = crate::cluster::slots::SlotIndex::new();
        for (_, s) in self.order.iter_from(0) {
            ix.add(&s.key[..]);
        }
        self.slot_index = Some(Box::new(ix));
    }

    /// Keys in SCAN order starting at slot `cursor`: calls `f` for each key
    /// until it returns false. Returns the next cursor (0 when the end was
    /// reached).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &Entry) -> bool) -> u64 {
        let start = usize::try_from(cursor).unwrap_or(usize::MAX);
        for (i, s) in self.order.iter_from(start) {
            if !f(&s.key, &s.entry) {
                let next = i as u64 + 1;
                return if next as usize >= self.order.slots() {
                    0
                } else {
                    next
                };
            }
        }
        0
    }

    /// The key in the first occupied slot at or after `from` (taken modulo
    /// the slot count), wrapping around: RANDOMKEY with a random `from`.
    pub fn key_at_or_after(&self, from: u64) -> Option<&[u8]> {
        let n = self.order.slots();
        if n == 0 {
            return None;
        }
        let start = (from % n as u64) as usize;
        self.order
            .iter_from(start)
            .next()
            .or_else(|| self.order.iter_from(0).next())
            .map(|(_, s)| &s.key[..])
    }

    /// Up to `n` keys with an expiry, starting at the active-expiry cursor
    /// and wrapping; advances the cursor.
    pub(crate) fn sample_expires(&mut self, n: usize, out: &mut Vec<Bytes>) {
        out.clear();
        let slots = self.expires.slots();
        if slots == 0 {
            self.expire_cursor = 0;
            return;
        }
        let start = (self.expire_cursor as usize).min(slots);
        let mut next = 0usize;
        let order = &self.order;
        let key_of = |&j: &u32| {
            order
                .get(j as usize)
                .map(|s| Bytes::copy_from_slice(&s.key))
        };
        for (i, j) in self.expires.iter_from(start) {
            if out.len() == n {
                next = i;
                break;
            }
            out.extend(key_of(j));
            next = i + 1;
        }
        if out.len() < n {
            // Wrapped: continue from the start, stopping before the keys taken.
            for (i, j) in self.expires.iter_from(0) {
                if i >= start || out.len() == n {
                    break;
                }
                out.extend(key_of(j));
                next = i + 1;
            }
        }
        self.expire_cursor = if next >= slots { 0 } else { next as u64 };
    }

    /// Eviction sampling (Redis's `dictGetSomeKeys`): calls `f` for keys of
    /// this database (only those with a TTL when `volatile`), one per
    /// random number in `picks` (the first occupied slot from that
    /// position, wrapping), or for every such key when there are no more
    /// of them than picks.
    pub(crate) fn sample(&self, volatile: bool, picks: &[u64], mut f: impl FnMut(&[u8], &Entry)) {
        let mut visit = |i: usize| {
            if volatile {
                let s = self
                    .expires
                    .get(i)
                    .and_then(|&j| self.order.get(j as usize));
                if let Some(s) = s {
                    f(&s.key, &s.entry);
                }
            } else if let Some(s) = self.order.get(i) {
                f(&s.key, &s.entry);
            }
        };
        let (len, slots) = if volatile {
            (self.expires.len(), self.expires.slots())
        } else {
            (self.order.len(), self.order.slots())
        };
        if len <= picks.len() {
            for i in 0..slots {
                visit(i);
            }
            return;
        }
        for &r in picks {
            let start = (r % slots as u64) as usize;
            let found = if volatile {
                self.expires.iter_from(start).next().map(|(i, _)| i)
            } else {
                self.order.iter_from(start).next().map(|(i, _)| i)
            };
            let i = found.or_else(|| {
                if volatile {
                    self.expires.iter_from(0).next().map(|(i, _)| i)
                } else {
                    self.order.iter_from(0).next().map(|(i, _)| i)
                }
            });
            if let Some(i) = i {
                visit(i);
            }
        }
    }

    /// A random key (only among those with a TTL when `volatile`), from the
    /// random number `r`: the random eviction policies.
    pub(crate) fn random_key(&self, volatile: bool, r: u64) -> Option<Bytes> {
        if !volatile {
            return self.key_at_or_after(r).map(Bytes::copy_from_slice);
        }
        let n = self.expires.slots();
        if n == 0 {
            return None;
        }
        let start = (r % n as u64) as usize;
        let j = self
            .expires
            .iter_from(start)
            .next()
            .or_else(|| self.expires.iter_from(0).next())?
            .1;
        self.order
            .get(*j as usize)
            .map(|s| Bytes::copy_from_slice(&s.key))
    }

    /// Iterates every live entry (expired-but-not-deleted included).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.order.iter_from(0).map(|(_, s)| (&s.key[..], &s.entry))
    }
}

/// A replica's replication position (`Keyspace::repl_position`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplPosition {
    /// The primary's replication id, 40 hex characters.
    pub replid: String,
    /// The offset of the last byte applied.
    pub offset: u64,
    /// The database the primary's stream had selected.
    pub db: u8,
}

/// Counters kept under the keyspace lock.
#[derive(Default, Debug)]
pub struct KeyspaceStats {
    pub expired_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// Writes since the last save (INFO persistence `rdb_changes_since_last_save`).
    pub dirty: u64,
}

/// All databases.
#[derive(Debug)]
pub struct Keyspace {
    pub dbs: Vec<Db>,
    pub stats: KeyspaceStats,
    /// Effects materialised but not yet taken (see `take_effects`).
    effects: Vec<effect::Effect>,
    /// Active expiry cycle state.
    pub expire: expire::ExpireState,
    /// Second 0 of `Entry::lru` under LRU policies.
    clock_origin: std::time::Instant,
    /// `clock_s` as of the last `refresh_clock`.
    clock_cached_s: u32,
    /// Unix milliseconds as of the last `refresh_clock`: the time commands
    /// of a batch see (Redis too reads the time once per event).
    clock_cached_ms: u64,
    /// The last monotonic clock reading (batch start or the end of the
    /// last command), from which command durations are measured.
    clock_mark: std::time::Instant,
    /// Enabled `notify-keyspace-events` classes (`notify` module bits).
    pub notify_flags: u32,
    /// Events queued by `notify`, published after the command.
    notifications: Vec<notify::Notification>,
    /// SWAPDB count: a base snapshot taken while a SWAPDB ran is not
    /// consistent and is retried (see ARCHITECTURE.md, compaction).
    pub swaps: u64,
    /// Streams whose logs the current batch wrote: synced with the WAL
    /// before replying under `appendfsync always` (see `stream`).
    pub stream_writes: Vec<crate::stream::StreamRef>,
    /// Calls of `stream_written` so far: a command that changed it wrote a
    /// stream (its reply depends on the batch's stream writes succeeding).
    pub stream_write_count: u64,
    /// Blocked clients (see `blocking`).
    waiters: blocking::Waiters,
    /// LOGPARSE's named formats and their shared miners. Not keys: they
    /// live beside the databases, FLUSHALL keeps them, and their changes
    /// are logged with `log_global`.
    pub logparse: crate::logparse::Registry,
    /// The EVAL engine (`scripting`), created by the first script; taken
    /// out while a script runs.
    pub scripting: Option<Box<dyn engines::ScriptCache>>,
    /// Its memory and cache size as of the last script (INFO).
    pub script_stats: engines::ScriptStats,
    /// The function libraries (FUNCTION LOAD, FCALL); taken out while a
    /// function runs. Not keys: FLUSHALL keeps them; their changes are
    /// logged with `log_global`.
    pub functions: Box<dyn engines::FunctionLibrary>,
    /// Their INFO figures as of the last change or call.
    pub function_stats: engines::FunctionStats,
    /// Memory was over `maxmemory` when the running top-level command
    /// started (Redis's `pre_command_oom_state`): a script's first write
    /// of a `denyoom` command is refused then.
    pub pre_command_oom: bool,
    /// A replica's replication position as replay left it: set by a
    /// `ReplPosition` effect, cleared by every unit after it that is not
    /// one (a torn link batch, the replica's own writes after a promotion
    /// or its expiries), so it is only ever the position of exactly the
    /// data replayed (`replication::replica::load_position`).
    pub repl_position: Option<ReplPosition>,
    /// A primary propagates: stream commands log what Redis 7.0
    /// propagates for them as `Command` effects (`log_command`). Set by
    /// the primary side when it turns capture on for replication (a
    /// replica's PSYNC, a promotion), never cleared; off, nothing extra
    /// reaches the WAL.
    pub propagate_streams: bool,
    /// The memory limit: its parameters, candidate pool and statistics.
    pub evict: evict::EvictState,
    /// Used memory (jemalloc's allocated bytes).
    pub mem: memory::MemGauge,
    /// The lazy-free queue every database shares (`lazyfree`).
    pub lazyfree: lazyfree::LazyFree,
    /// `lazyfree.done()` when the memory gauge last refreshed for it.
    pub(crate) lazy_done_seen: u64,
    /// CLIENT TRACKING state (`tracking`); keep `Db::track` in step with
    /// `sync_tracking`.
    pub tracking: tracking::Tracking,
    /// Which databases have changes to materialise or ready keys
    /// (`pending`): a command that did neither ends in O(1).
    pending: std::sync::Arc<pending::Pending>,
}

impl Keyspace {
    /// An empty keyspace whose function libraries are `functions` (the
    /// server's: `scripting::keyspace`).
    pub fn new(functions: Box<dyn engines::FunctionLibrary>) -> Self {
        let mut ks = Keyspace {
            dbs: (0..DATABASES).map(|_| Db::default()).collect(),
            stats: KeyspaceStats::default(),
            effects: Vec::new(),
            propagate_streams: false,
            expire: expire::ExpireState::default(),
            clock_origin: std::time::Instant::now(),
            clock_cached_s: 0,
            clock_cached_ms: now_ms(),
            clock_mark: std::time::Instant::now(),
            swaps: 0,
            notify_flags: 0,
            notifications: Vec::new(),
            stream_writes: Vec::new(),
            stream_write_count: 0,
            waiters: blocking::Waiters::default(),
            logparse: crate::logparse::Registry::new(),
            scripting: None,
            script_stats: Default::default(),
            functions,
            function_stats: Default::default(),
            pre_command_oom: false,
            repl_position: None,
            evict: evict::EvictState::default(),
            mem: memory::MemGauge::default(),
            lazyfree: lazyfree::LazyFree::default(),
            lazy_done_seen: 0,
            tracking: tracking::Tracking::default(),
            pending: Default::default(),
        };
        for (i, db) in ks.dbs.iter_mut().enumerate() {
            db.lazy = ks.lazyfree.clone();
            db.pending = ks.pending.handle(i);
        }
        ks.set_capture(true);
        ks
    }

    /// Seconds since the clock origin, for access times.
    pub fn clock_s(&self) -> u32 {
        self.clock_cached_s
    }

    /// Re-reads the clock behind `clock_s`. Called once per request batch
    /// and cron tick: access times have second granularity, and reading the
    /// clock on every lookup is measurable on VMs with a slow clock source.
    pub fn refresh_clock(&mut self) {
        self.clock_mark = std::time::Instant::now();
        self.clock_cached_s = (self.clock_mark - self.clock_origin).as_secs() as u32;
        self.clock_cached_ms = now_ms();
    }

    /// Unix milliseconds as of the last `refresh_clock` (the batch's time).
    pub fn cached_now_ms(&self) -> u64 {
        self.clock_cached_ms
    }

    /// The last monotonic clock reading: the batch start or the end of the
    /// last command. A command's duration runs from the mark at its start
    /// to `mark_now` at its end: one clock read per command.
    pub fn clock_mark(&self) -> std::time::Instant {
        self.clock_mark
    }

    /// Reads the monotonic clock into the mark.
    pub fn mark_now(&mut self) -> std::time::Instant {
        self.clock_mark = std::time::Instant::now();
        self.clock_mark
    }

    /// Sets the role the next lookups and expiry cycles run under
    /// (`expire::ExpireState::set_role`); on a writable replica a normal
    /// client's TTLs are noted for the replica to expire them itself.
    pub fn set_expire_role(&mut self, replica: bool, from_master: bool, writable: bool) {
        self.expire.set_role(replica, from_master, writable);
        let track = self.expire.writable && !self.expire.from_master;
        if self.dbs[0].track_replica_ttl != track {
            for d in &mut self.dbs {
                d.track_replica_ttl = track;
            }
        }
    }

    /// How many key names a writable replica expires itself (INFO's
    /// `slave_expires_tracked_keys`: a name counts once whatever the
    /// number of databases holding it, as Redis's one table of names).
    pub fn replica_ttl_names(&self) -> usize {
        let mut names: HashSet<&Bytes> = HashSet::new();
        for d in &self.dbs {
            names.extend(d.replica_ttl.names());
        }
        names.len()
    }

    /// Redis's `expireIfNeeded`: true when `key` is logically expired for
    /// the running command. On a primary the key is then deleted (logged
    /// as a DEL, counted in `expired_keys`); on a replica it is only
    /// hidden (kept until the primary's DEL arrives), and for the master
    /// client it is not expired at all.
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        self.expire_lookup(db, key, now_ms, false)
    }

    /// `expire_if_needed` for a write lookup: a writable replica
    /// (`replica-read-only no`) deletes the expired key as a primary does
    /// (Redis's `LOOKUP_WRITE` on a replica that is not read-only).
    pub fn expire_if_needed_write(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        self.expire_lookup(db, key, now_ms, self.expire.writable)
    }

    fn expire_lookup(&mut self, db: usize, key: &[u8], now_ms: u64, force: bool) -> bool {
        if !self.dbs[db].is_expired(key, now_ms) {
            return false;
        }
        if self.expire.replica && !force {
            return !self.expire.from_master;
        }
        if self.expire.paused {
            return true;
        }
        self.delete_expired(db, key);
        true
    }

    /// Deletes the expired `key` (lazy or active expiry).
    fn delete_expired(&mut self, db: usize, key: &[u8]) {
        if let Some((k, _)) = self.dbs[db].get_key_value(key) {
            let k = Bytes::copy_from_slice(k);
            if let Some(e) = self.dbs[db].remove_quiet(&k) {
                self.lazyfree.dispose(e.value, lazyfree::Reason::Expire);
            }
            self.dbs[db].signal_expired_deleted(&k);
            // Logged at once, not with the command's final states: the
            // command may recreate the key with an operation effect
            // (`log_op`), which replay must apply to no key, not to the
            // expired value (replay never expires).
            if self.dbs[db].capture {
                // The Del is the key's state from here on: a final state
                // still pending for it would repeat it.
                let touched = &mut self.dbs[db].touched;
                if !touched.is_empty() {
                    touched.retain(|t| *t != k);
                }
                self.effects.push(effect::Effect::Del {
                    db: db as u8,
                    key: k.clone(),
                });
            }
            self.stats.expired_keys += 1;
            self.notify(notify::EXPIRED, "expired", db, &k);
        }
    }

    /// Looks a key up for reading: lazily expires it, counts a hit or miss
    /// (a miss is a `keymiss` event) and refreshes the access time unless
    /// `touch` is false.
    pub fn lookup(
        &mut self,
        db: usize,
        key: &[u8],
        now_ms: u64,
        touch: bool,
    ) -> Option<&mut Entry> {
        if !self.exists(db, key, now_ms) {
            self.stats.keyspace_misses += 1;
            self.notify(notify::KEY_MISS, "keymiss", db, key);
            return None;
        }
        self.lookup_nonotify(db, key, now_ms, touch)
    }

    /// `lookup` without the `keymiss` event (Redis's LOOKUP_NONOTIFY, used
    /// by OBJECT).
    pub fn lookup_nonotify(
        &mut self,
        db: usize,
        key: &[u8],
        now_ms: u64,
        touch: bool,
    ) -> Option<&mut Entry> {
        let expired = self.expire_if_needed(db, key, now_ms);
        let clock = self.clock_s();
        let batch_ms = self.clock_cached_ms;
        match self.dbs[db].peek_mut(key).filter(|_| !expired) {
            Some(e) => {
                self.stats.keyspace_hits += 1;
                if touch {
                    e.lru = self.evict.touched_lru(e.lru, clock, batch_ms);
                }
                Some(e)
            }
            None => {
                self.stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// Looks a key up for writing: lazily expires it; no hit/miss counting.
    pub fn lookup_write(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        if self.expire_if_needed_write(db, key, now_ms) {
            return None;
        }
        let clock = self.clock_s();
        let batch_ms = self.clock_cached_ms;
        let e = self.dbs[db].peek_mut(key)?;
        e.lru = self.evict.touched_lru(e.lru, clock, batch_ms);
        Some(e)
    }

    /// `lookup_write` without the access-time update: a command's second
    /// look at a key it already looked up (one access for LRU/LFU, as in
    /// Redis, where a command looks a key up once).
    pub fn relookup_write(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        if self.expire_if_needed_write(db, key, now_ms) {
            return None;
        }
        self.dbs[db].peek_mut(key)
    }

    /// True when the key exists and is not expired (no side effects on stats).
    pub fn exists(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        !self.expire_if_needed(db, key, now_ms) && self.dbs[db].contains(key)
    }

    /// A new entry with the current access time (or LFU counter).
    pub fn entry(&self, value: Value, expires_at_ms: u64) -> Entry {
        Entry::new(
            value,
            expires_at_ms,
            self.evict.initial_lru(self.clock_s(), self.clock_cached_ms),
        )
    }

    /// Gives every key the access information of a new key under the
    /// current policy (after loading: replay created the entries before
    /// the policy was applied, and an LRU second read as an LFU counter
    /// would be nonsense). Redis's loaded objects start the same way.
    pub fn reset_access_info(&mut self) {
        let lru = self.evict.initial_lru(self.clock_s(), self.clock_cached_ms);
        for db in &mut self.dbs {
            for (_, slot) in db.order.iter_mut() {
                slot.entry.lru = lru;
            }
        }
    }

    /// Sets the memory limit's parameters (under the keyspace lock, after
    /// CONFIG SET and at startup).
    pub fn set_evict_config(&mut self, cfg: evict::EvictConfig) {
        let lfu = cfg.policy.is_lfu();
        for db in &mut self.dbs {
            db.lfu = lfu;
        }
        self.evict.cfg = cfg;
    }

    /// Stores `value` under `key`, replacing any old value and expiry.
    pub fn set(&mut self, db: usize, key: Bytes, value: Value, expires_at_ms: u64) {
        let e = self.entry(value, expires_at_ms);
        self.dbs[db].insert(key, e);
        self.stats.dirty += 1;
    }

    /// Deletes a key (if present and not expired); returns whether it did.
    pub fn delete(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        self.delete_as(db, key, now_ms, lazyfree::Reason::ServerDel)
    }

    /// `delete` for `reason`, which decides whether a large value is freed
    /// on the lazy-free thread (DEL: user-del, UNLINK: always).
    pub fn delete_as(
        &mut self,
        db: usize,
        key: &[u8],
        now_ms: u64,
        reason: lazyfree::Reason,
    ) -> bool {
        // A replica only hides an expired key, and then deletes it anyway
        // (Redis's DEL: `expireIfNeeded` without forcing, then `dbDelete`).
        if self.expire_if_needed(db, key, now_ms) && !self.expire.replica {
            return false;
        }
        let Some(e) = self.dbs[db].remove(key) else {
            return false;
        };
        self.lazyfree.dispose(e.value, reason);
        self.stats.dirty += 1;
        true
    }

    /// Total keys in all databases.
    pub fn total_keys(&self) -> usize {
        self.dbs.iter().map(|d| d.len()).sum()
    }

    /// Whether effect capture is on.
    pub fn capturing(&self) -> bool {
        self.dbs[0].capture
    }

    /// Turns effect capture on or off (off while replaying the WAL, so
    /// replay logs nothing).
    pub fn set_capture(&mut self, on: bool) {
        for db in &mut self.dbs {
            db.capture = on;
            db.touched.clear();
            db.expiry_touched.clear();
            db.op_logged.clear();
            db.cleared = false;
        }
        self.effects.clear();
    }

    /// Logs an operation effect for `key` (e.g. a list push) instead of its
    /// final state, for values too large to log whole on every change. The
    /// effect must turn the key's state before the command into its state
    /// after it when replayed; if the key ends up deleted a Del follows
    /// automatically. Replay skips it for keys a base captured later (see
    /// `node::persist`), so it need not be idempotent.
    pub fn log_op(&mut self, db: usize, key: &[u8], effect: effect::Effect) {
        let d = &mut self.dbs[db];
        if !d.capture {
            return;
        }
        d.op_logged.insert(Bytes::copy_from_slice(key));
        self.effects.push(effect);
    }

    /// Logs an effect that is about no key (LOGPARSE formats), in order
    /// with the keys' effects. Nothing is logged while replaying.
    pub fn log_global(&mut self, effect: effect::Effect) {
        if !self.dbs[0].capture {
            return;
        }
        self.materialize();
        self.effects.push(effect);
    }

    /// Logs a command for the replication stream (`Effect::Command`) when
    /// capturing for a primary that propagates (`propagate_streams`).
    /// Not materialised first: a key the running command created gets its
    /// `Set` after this (which the stream then does not send as RESTORE,
    /// see `replication::propagate`).
    pub fn log_command(&mut self, db: usize, argv: Vec<Bytes>) {
        if !self.propagate_streams || !self.dbs[0].capture {
            return;
        }
        self.effects
            .push(effect::Effect::Command { db: db as u8, argv });
    }

    /// Whether `log_command` logs anything (lets callers skip building
    /// the arguments).
    pub fn logs_commands(&self) -> bool {
        self.propagate_streams && self.dbs[0].capture
    }

    /// Ends a command: converts what it touched into effects (called by
    /// `commands::call`, so each command inside EXEC is materialised in order).
    pub fn end_command(&mut self) {
        self.materialize();
    }

    /// Converts what was touched since the last call into effects: per
    /// database a FlushDb if it was emptied, then the final state of every
    /// touched key (a Set with its value and absolute expiry, or a Del).
    /// Final states make the effects idempotent and free of clock reads:
    /// INCRBYFLOAT, APPEND, EXPIRE, RENAME and expired-key deletions all
    /// become Sets and Dels.
    fn materialize(&mut self) {
        // Capture is on for every database or for none (`set_capture`);
        // off (no persistence), nothing is ever touched.
        let mut todo = self.pending.take_touched();
        if todo == 0 || !self.dbs[0].capture {
            return;
        }
        // In database order, as the effects must be.
        while todo != 0 {
            let i = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            let Some(db) = self.dbs.get_mut(i) else {
                break;
            };
            if !db.cleared && db.touched.is_empty() && db.expiry_touched.is_empty() {
                continue;
            }
            let dbi = i as u8;
            if std::mem::take(&mut db.cleared) {
                self.effects.push(effect::Effect::FlushDb { db: dbi });
            }
            let mut touched = std::mem::take(&mut db.touched);
            let mut expiry = std::mem::take(&mut db.expiry_touched);
            // Most commands touch one key: no set needed to deduplicate.
            let dedup = touched.len() > 1 || !expiry.is_empty();
            let mut seen: HashSet<Bytes, KeyHasher> = HashSet::default();
            if dedup {
                seen.reserve(touched.len());
                touched.retain(|k| seen.insert(k.clone()));
            }
            let ops = std::mem::take(&mut db.op_logged);
            for key in touched.drain(..) {
                let e = match db.peek(&key) {
                    // The operation effect already describes the change;
                    // only its expiry may still need logging (below).
                    Some(_) if !ops.is_empty() && ops.contains(&key) => {
                        seen.remove(&key);
                        continue;
                    }
                    Some(entry) => effect::Effect::Set {
                        db: dbi,
                        key,
                        value: entry.value.clone(),
                        expires_at_ms: entry.expires_at_ms,
                    },
                    None => effect::Effect::Del { db: dbi, key },
                };
                self.effects.push(e);
            }
            // Keys whose expiry alone changed: an absolute Expire, not the
            // whole value.
            for key in expiry.drain(..) {
                if !seen.insert(key.clone()) {
                    continue;
                }
                let e = match db.peek(&key) {
                    Some(entry) => effect::Effect::Expire {
                        db: dbi,
                        key,
                        at_ms: entry.expires_at_ms,
                    },
                    None => effect::Effect::Del { db: dbi, key },
                };
                self.effects.push(e);
            }
            // Keep the buffers' capacity for the next command.
            db.touched = touched;
            db.expiry_touched = expiry;
            if ops.capacity() > 0 && db.op_logged.is_empty() {
                let mut ops = ops;
                ops.clear();
                db.op_logged = ops;
            }
        }
    }

    /// The effects of everything done since the last call: one atomic unit
    /// for the WAL. Empty when nothing changed.
    pub fn take_effects(&mut self) -> Vec<effect::Effect> {
        self.materialize();
        std::mem::take(&mut self.effects)
    }

    /// `take_effects` encoded as one WAL unit (`effect::encode_unit`),
    /// keeping the effect buffer's capacity. None when nothing changed.
    pub fn take_unit(&mut self) -> Option<Vec<u8>> {
        self.materialize();
        if self.effects.is_empty() {
            return None;
        }
        let mut unit = Vec::with_capacity(64);
        effect::encode_unit(&self.effects, &mut unit);
        self.effects.clear();
        Some(unit)
    }

    /// SWAPDB: exchanges two databases' data, logging the swap in order
    /// with the effects around it.
    pub fn swap_db(&mut self, a: usize, b: usize) {
        self.stats.dirty += 1;
        if a == b {
            return;
        }
        self.materialize();
        let (lo, hi) = (a.min(b), a.max(b));
        let (left, right) = self.dbs.split_at_mut(hi);
        Db::swap_data(&mut left[lo], &mut right[0]);
        left[lo].mark_existing_ready();
        right[0].mark_existing_ready();
        if left[lo].capture {
            self.effects.push(effect::Effect::SwapDb {
                a: a as u8,
                b: b as u8,
            });
        }
        self.stats.dirty += 1;
        self.swaps += 1;
    }

    /// FLUSHALL: empties every database; returns the number of keys removed.
    pub fn flush_all(&mut self) -> u64 {
        self.flush_all_as(false)
    }

    /// `flush_all`; `lazy` (FLUSHALL ASYNC) frees the data on the
    /// lazy-free thread.
    pub fn flush_all_as(&mut self, lazy: bool) -> u64 {
        self.materialize();
        let capture = self.dbs[0].capture;
        let mut removed = 0;
        for db in &mut self.dbs {
            removed += db.len() as u64;
            db.clear_as(lazy);
            db.cleared = false;
        }
        if capture {
            self.effects.push(effect::Effect::FlushAll);
        }
        removed
    }

    /// Notes that a command wrote `s`'s logs (see `stream_writes`).
    pub fn stream_written(&mut self, s: &crate::stream::StreamRef) {
        self.stream_write_count += 1;
        if !self.stream_writes.iter().any(|x| x == s) {
            self.stream_writes.push(s.clone());
        }
    }

    /// Turns the noting of modified keys on while some client tracks
    /// (after CLIENT TRACKING ON/OFF and a tracking client's departure).
    pub fn sync_tracking(&mut self) {
        let on = self.tracking.active();
        for db in &mut self.dbs {
            db.track = on;
            if !on {
                db.modified.clear();
                db.flushed = false;
            }
        }
    }

    /// True when a database noted a modified key or a flush since the
    /// last `take_tracking_events`.
    pub fn has_tracking_events(&self) -> bool {
        self.dbs[0].track && self.dbs.iter().any(|d| d.flushed || !d.modified.is_empty())
    }

    /// The keys noted modified since the last call, in order per
    /// database, and whether a database was emptied.
    pub fn take_tracking_events(&mut self, into: &mut Vec<tracking::Modified>) -> bool {
        let mut flushed = false;
        for db in &mut self.dbs {
            flushed |= std::mem::take(&mut db.flushed);
            into.append(&mut db.modified);
        }
        flushed
    }

    /// Removes a client's WATCH registrations.
    pub fn unwatch_all(&mut self, client: u64, watched: &[(usize, Bytes)]) {
        for (db, key) in watched {
            self.dbs[*db].unwatch(key, client);
        }
        for db in &mut self.dbs {
            db.dirty.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-key budget ARCHITECTURE.md's Memory section states.
    #[test]
    fn slot_layout() {
        assert_eq!(std::mem::size_of::<Value>(), 40);
        assert_eq!(std::mem::size_of::<Entry>(), 56);
        assert_eq!(std::mem::size_of::<Option<Slot>>(), 80);
        assert_eq!(std::mem::size_of::<Option<u32>>(), 8);
    }

    fn fill(db: &mut Db, n: usize, ttl: bool) {
        for i in 0..n {
            let e = Entry::new(Value::str(&b"0123456789abcdef"[..]), u64::from(ttl), 0);
            db.insert(Bytes::from(format!("key:{i}")), e);
        }
    }

    /// The pending-work summary: effects come out in database order from
    /// the databases it names, and a command that changed nothing leaves
    /// nothing in it.
    #[test]
    fn pending_summary_follows_the_changes() {
        let mut ks = crate::commands::lua::keyspace();
        ks.set(9, Bytes::from_static(b"a"), Value::str("1"), 0);
        ks.set(2, Bytes::from_static(b"b"), Value::str("2"), 0);
        assert!(ks.dbs[2].set_expiry(b"b", 99_999_999_999_999));
        let dbs: Vec<u8> = ks
            .take_effects()
            .iter()
            .map(|e| match e {
                effect::Effect::Set { db, .. } | effect::Effect::Expire { db, .. } => *db,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(dbs, vec![2, 9]);
        assert_eq!(ks.pending.take_touched(), 0);
        assert!(ks.lookup(9, b"a", 0, true).is_some());
        ks.end_command();
        assert_eq!((ks.pending.take_touched(), ks.pending.ready()), (0, 0));
        // A flush is pending work too.
        ks.dbs[4].clear();
        assert!(matches!(
            ks.take_effects()[..],
            [effect::Effect::FlushDb { db: 4 }]
        ));
        // Without capture nothing is noted.
        ks.set_capture(false);
        ks.set(3, Bytes::from_static(b"c"), Value::str("3"), 0);
        assert_eq!(ks.pending.take_touched(), 0);
    }

    #[test]
    fn deletions_give_the_tables_back() {
        let mut db = Db::default();
        fill(&mut db, 50_000, true);
        let (main, exp) = db.overhead();
        assert!(main > 50_000 * 80 && exp > 50_000 * 8, "{main} {exp}");
        // The oldest 95% gone: the index shrinks to fit (below 10% fill)
        // and the emptied chunks of both slabs are freed, though live keys
        // remain in slots above them.
        for i in 0..47_500 {
            assert!(db.remove(format!("key:{i}").as_bytes()).is_some());
        }
        let (m2, e2) = db.overhead();
        // (The free lists keep 4 bytes per freed slot: half of what the
        // expires slab's slots took.)
        assert!(m2 * 4 < main && e2 < exp, "{m2} of {main}, {e2} of {exp}");
        assert!(db.index.capacity() < 10_000, "{}", db.index.capacity());
        for i in 47_500..50_000 {
            let k = format!("key:{i}");
            assert!(db.peek(k.as_bytes()).is_some(), "{k}");
        }
        assert_eq!((db.len(), db.expires_len()), (2_500, 2_500));
        // Everything gone: nothing left allocated.
        for i in 47_500..50_000 {
            db.remove(format!("key:{i}").as_bytes());
        }
        assert_eq!(db.overhead(), (0, 0));
        assert_eq!(db.index.capacity(), 0);
    }

    #[test]
    fn expiry_changes_keep_the_expires_slab_in_step() {
        let mut db = Db::default();
        fill(&mut db, 100, false);
        assert_eq!(db.expires_len(), 0);
        assert!(db.set_expiry(b"key:7", 5));
        assert!(db.set_expiry(b"key:9", 6));
        assert_eq!(db.expires_len(), 2);
        let mut out = Vec::new();
        db.sample_expires(10, &mut out);
        out.sort();
        assert_eq!(out, vec![Bytes::from("key:7"), Bytes::from("key:9")]);
        // Overwrite without a TTL drops it; with one keeps one slot.
        db.insert(Bytes::from("key:7"), Entry::new(Value::str("x"), 0, 0));
        db.insert(Bytes::from("key:9"), Entry::new(Value::str("y"), 9, 0));
        assert_eq!(db.expires_len(), 1);
        assert_eq!(db.random_key(true, 12345), Some(Bytes::from("key:9")));
        assert!(db.set_expiry(b"key:9", 0));
        assert_eq!((db.expires_len(), db.random_key(true, 1)), (0, None));
        // A removed key takes its expires slot with it.
        assert!(db.set_expiry(b"key:3", 5));
        db.remove(b"key:3");
        assert_eq!(db.expires_len(), 0);
        // Long names are boxed, short ones inline: same bytes either way.
        let long = Bytes::from(vec![b'k'; 100]);
        db.insert(long.clone(), Entry::new(Value::str("z"), 0, 0));
        assert_eq!(db.get_key_value(&long).map(|(k, _)| k), Some(&long[..]));
    }
}
