//! Hash slots: Redis's CRC16 (XMODEM) with `{hash tags}`, and the per-slot
//! key index (Redis's `slotToKeys`) that COUNTKEYSINSLOT, GETKEYSINSLOT and
//! the deletion of a lost slot's keys read without scanning the keyspace.
//!
//! Pure code: no database, sockets or files. `db::Db` holds a `SlotIndex`
//! (database 0 in cluster mode only) and calls `add` / `remove` / `clear`
//! where it inserts, removes and empties keys.

use bytes::Bytes;

/// Redis Cluster's number of hash slots.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
const fn crc16_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut b = 0;
        while b < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            b += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
}

static CRC16_TAB: [u16; 256] = crc16_table();

/// Redis's `crc16` (crc16.c).
pub fn crc16(buf: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in buf {
        crc = (crc << 8) ^ CRC16_TAB[usize::from(((crc >> 8) as u8) ^ b)];
    }
    crc
}

/// Redis's `keyHashSlot`: the CRC16 of the key, or of the part between the
/// first `{` and the first `}` after it when that part is not empty.
pub fn key_slot(key: &[u8]) -> u16 {
    let part = match memchr::memchr(b'{', key) {
        Some(s) => match memchr::memchr(b'}', &key[s + 1..]) {
            Some(len) if len > 0 => &key[s + 1..s + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(part) & 0x3FFF
}

type KeySet = hashbrown::HashSet<Bytes, foldhash::fast::FixedState>;

/// The keys of each slot (Redis keeps them as a list threaded through the
/// dict entries; here one set per slot, created at its first key).
#[derive(Debug)]
pub struct SlotIndex {
    by_slot: Vec<Option<Box<KeySet>>>,
}

impl Default for SlotIndex {
    fn default() -> Self {
        SlotIndex::new()
    }
}

impl SlotIndex {
    pub fn new() -> Self {
        SlotIndex {
            by_slot: (0..SLOTS).map(|_| None).collect(),
        }
    }

    /// Notes a new key.
    pub fn add(&mut self, key: &[u8]) {
        let s = usize::from(key_slot(key));
        self.by_slot[s]
            .get_or_insert_with(Default::default)
            .insert(Bytes::copy_from_slice(key));
    }

    /// Forgets a removed key.
    pub fn remove(&mut self, key: &[u8]) {
        let s = usize::from(key_slot(key));
        if let Some(set) = &mut self.by_slot[s] {
            set.remove(key);
            if set.is_empty() {
                self.by_slot[s] = None;
            }
        }
    }

    /// Forgets every key (FLUSHDB / FLUSHALL).
    pub fn clear(&mut self) {
        for s in &mut self.by_slot {
            *s = None;
        }
    }

    /// The number of keys in `slot` (COUNTKEYSINSLOT).
    pub fn count(&self, slot: u16) -> usize {
        self.by_slot
            .get(usize::from(slot))
            .and_then(|s| s.as_ref())
            .map_or(0, |s| s.len())
    }

    /// Up to `max` keys of `slot` (GETKEYSINSLOT).
    pub fn keys(&self, slot: u16, max: usize) -> Vec<Bytes> {
        self.by_slot
            .get(usize::from(slot))
            .and_then(|s| s.as_ref())
            .map_or_else(Vec::new, |s| s.iter().take(max).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_redis() {
        // crc16.c's test vector: "123456789" -> 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn key_slots_match_redis() {
        // CLUSTER KEYSLOT answers from redis-server 7.0.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 0x3FFF);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn index_counts_and_lists_keys() {
        let mut ix = SlotIndex::new();
        for k in ["{a}1", "{a}2", "{a}3", "b"] {
            ix.add(&Bytes::from(k));
        }
        let s = key_slot(b"a");
        assert_eq!(ix.count(s), 3);
        assert_eq!(ix.keys(s, 2).len(), 2);
        ix.remove(b"{a}2");
        assert_eq!(ix.count(s), 2);
        let mut ks = ix.keys(s, 10);
        ks.sort();
        assert_eq!(ks, vec![Bytes::from("{a}1"), Bytes::from("{a}3")]);
        ix.clear();
        assert_eq!(ix.count(s), 0);
        assert_eq!(ix.count(key_slot(b"b")), 0);
    }
}
