//! Stable slots: the SCAN order of a database (its keys with their
//! entries) and of its keys with an expiry.
//!
//! Each key lives in a slot whose index never changes while the key exists.
//! A SCAN cursor is a slot index, so a key present for the whole scan is
//! always returned, however many keys are added or removed meanwhile
//! (Redis's guarantee, which Redis gets from reverse-binary cursors over its
//! hash table). Freed slots are reused, newest first; trailing free slots
//! are dropped so the slab does not grow past its high-water mark of live
//! keys.
//!
//! The slots live in chunks of `CHUNK` (only the last one grows by
//! doubling): growing never copies the whole array, so a large load leaves
//! no freed half-size copies behind as dirty pages, and a chunk whose slots
//! are all free is given back to the allocator at once (mass deletion or
//! expiry shrinks the slab even when live keys remain above it). An empty
//! slab holds no allocation.

#[cfg(test)]
use bytes::Bytes;

/// Marks "no slot" in a `u32` slot field.
pub const NO_SLOT: u32 = u32::MAX;

/// Slots per chunk.
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

#[derive(Debug, Clone)]
struct Chunk<T> {
    /// Up to `CHUNK` slots; shorter when trailing ones were never used or
    /// the chunk was emptied (its missing slots are free).
    slots: Vec<Option<T>>,
    /// Occupied slots.
    used: u32,
}

#[derive(Debug, Clone)]
pub struct Slab<T> {
    chunks: Vec<Chunk<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

fn split(i: usize) -> (usize, usize) {
    (i >> CHUNK_BITS, i & (CHUNK - 1))
}

impl<T> Slab<T> {
    /// Number of occupied slots.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of the slot chunks and free list (MEMORY STATS).
    pub fn alloc_bytes(&self) -> usize {
        use super::memory::size_class;
        let slot = std::mem::size_of::<Option<T>>();
        self.chunks
            .iter()
            .map(|c| size_class(c.slots.capacity() * slot))
            .sum::<usize>()
            + size_class(self.chunks.capacity() * std::mem::size_of::<Chunk<T>>())
            + size_class(self.free.capacity() * 4)
    }

    /// Number of slots, occupied or not (the cursor range).
    pub fn slots(&self) -> usize {
        match self.chunks.last() {
            Some(c) => (self.chunks.len() - 1) * CHUNK + c.slots.len(),
            None => 0,
        }
    }

    /// Stores `key` in a free slot and returns its index.
    pub fn insert(&mut self, key: T) -> u32 {
        self.len += 1;
        let end = self.slots();
        while let Some(i) = self.free.pop() {
            // Free entries past the end were trimmed away; an index may
            // also have been taken again by a push past a trimmed end.
            if (i as usize) >= end {
                continue;
            }
            let (c, o) = split(i as usize);
            let chunk = &mut self.chunks[c];
            if chunk.slots.len() <= o {
                chunk.slots.resize_with(o + 1, || None);
            }
            if chunk.slots[o].is_none() {
                chunk.slots[o] = Some(key);
                chunk.used += 1;
                return i;
            }
        }
        if self.chunks.last().is_none_or(|c| c.slots.len() == CHUNK) {
            self.chunks.push(Chunk {
                slots: Vec::new(),
                used: 0,
            });
        }
        let n = self.chunks.len();
        let chunk = &mut self.chunks[n - 1];
        chunk.slots.push(Some(key));
        chunk.used += 1;
        end as u32
    }

    /// Frees slot `i`.
    pub fn remove(&mut self, i: u32) {
        self.take(i);
    }

    /// Frees slot `i`, returning what it held.
    pub fn take(&mut self, i: u32) -> Option<T> {
        let (c, o) = split(i as usize);
        let chunk = self.chunks.get_mut(c)?;
        let taken = chunk.slots.get_mut(o)?.take()?;
        chunk.used -= 1;
        self.len -= 1;
        if self.len == 0 {
            // Empty: every array goes back to the allocator.
            *self = Slab::default();
            return Some(taken);
        }
        let emptied = chunk.used == 0;
        if emptied {
            // No live slot left in the chunk: give it back (its indices
            // stay valid, free; the free list may still name them).
            chunk.slots = Vec::new();
        }
        if emptied || i as usize + 1 >= self.slots() {
            self.trim();
        }
        if (i as usize) < self.slots() {
            self.free.push(i);
        }
        Some(taken)
    }

    /// Drops trailing free slots and empty trailing chunks.
    fn trim(&mut self) {
        while let Some(last) = self.chunks.last_mut() {
            while matches!(last.slots.last(), Some(None)) {
                last.slots.pop();
            }
            if !last.slots.is_empty() {
                break;
            }
            self.chunks.pop();
        }
        if self.chunks.len() * 4 < self.chunks.capacity() {
            self.chunks.shrink_to(self.chunks.len() * 2);
        }
        let end = self.slots();
        if self.free.len() > 64 && self.free.len() * 4 < self.free.capacity() {
            self.free.retain(|&f| (f as usize) < end);
            self.free.shrink_to(self.free.len() * 2);
        }
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        let (c, o) = split(i);
        self.chunks.get(c)?.slots.get(o)?.as_ref()
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let (c, o) = split(i);
        self.chunks.get_mut(c)?.slots.get_mut(o)?.as_mut()
    }

    /// Occupied slots from index `start` on: `(index, key)`.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &T)> {
        let (c0, o0) = split(start);
        self.chunks
            .iter()
            .enumerate()
            .skip(c0)
            .flat_map(move |(c, chunk)| {
                let skip = if c == c0 { o0 } else { 0 };
                chunk
                    .slots
                    .iter()
                    .enumerate()
                    .skip(skip)
                    .filter_map(move |(o, s)| s.as_ref().map(|k| ((c << CHUNK_BITS) + o, k)))
            })
    }

    /// Every occupied slot, mutably: `(index, value)`.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.chunks.iter_mut().enumerate().flat_map(|(c, chunk)| {
            chunk
                .slots
                .iter_mut()
                .enumerate()
                .filter_map(move |(o, s)| s.as_mut().map(|k| ((c << CHUNK_BITS) + o, k)))
        })
    }

    pub fn clear(&mut self) {
        *self = Slab::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_reused() {
        let mut s = Slab::default();
        let a = s.insert(Bytes::from("a"));
        let b = s.insert(Bytes::from("b"));
        let c = s.insert(Bytes::from("c"));
        s.remove(b);
        assert_eq!(s.get(a as usize).map(|k| &k[..]), Some(&b"a"[..]));
        assert_eq!(s.get(c as usize).map(|k| &k[..]), Some(&b"c"[..]));
        assert_eq!(s.insert(Bytes::from("d")), b, "freed slot reused");
        s.remove(c);
        s.remove(b);
        assert_eq!(s.slots(), 1, "trailing free slots trimmed");
        assert_eq!(s.insert(Bytes::from("e")), 1);
        assert_eq!(s.len(), 2);
        let keys: Vec<_> = s.iter_from(0).map(|(_, k)| k.clone()).collect();
        assert_eq!(keys, vec![Bytes::from("a"), Bytes::from("e")]);
    }

    #[test]
    fn emptied_chunks_are_freed_and_indices_stay_stable() {
        let mut s: Slab<u64> = Slab::default();
        let n = 5 * CHUNK as u64;
        for i in 0..n {
            assert_eq!(s.insert(i), i as u32);
        }
        let full = s.alloc_bytes();
        // Empty every chunk but the first and the last: their arrays go.
        for i in CHUNK as u64..4 * CHUNK as u64 {
            s.remove(i as u32);
        }
        assert!(s.alloc_bytes() < full, "{} of {full}", s.alloc_bytes());
        assert!(s.chunks[1..4].iter().all(|c| c.slots.capacity() == 0));
        assert_eq!(s.chunks[4].slots.capacity(), CHUNK);
        assert_eq!(s.slots(), n as usize, "the cursor range keeps its end");
        assert_eq!(s.get(4 * CHUNK), Some(&(4 * CHUNK as u64)));
        assert_eq!(s.get(CHUNK), None);
        let seen: Vec<u64> = s.iter_from(CHUNK - 1).map(|(_, v)| *v).take(2).collect();
        assert_eq!(seen, vec![CHUNK as u64 - 1, 4 * CHUNK as u64]);
        // A freed slot of an emptied chunk is reused in place.
        let j = s.insert(7);
        assert!((CHUNK..4 * CHUNK).contains(&(j as usize)), "{j}");
        assert_eq!(s.get(j as usize), Some(&7));
        let mut m: Vec<usize> = s.iter_mut().map(|(i, _)| i).collect();
        m.sort_unstable();
        assert_eq!(m.len(), s.len());
        // Removing everything frees everything.
        for (i, _) in s.iter_from(0).map(|(i, v)| (i, *v)).collect::<Vec<_>>() {
            s.remove(i as u32);
        }
        assert_eq!((s.len(), s.slots(), s.alloc_bytes()), (0, 0, 0));
    }
}
