//! Stable slots: the SCAN order of a database (its keys with their
//! entries) and of its keys with an expiry.
//!
//! Each key lives in a slot whose index never changes while the key exists.
//! A SCAN cursor is a slot index, so a key present for the whole scan is
//! always returned, however many keys are added or removed meanwhile
//! (Redis's guarantee, which Redis gets from reverse-binary cursors over its
//! hash table). Freed slots are reused, newest first; trailing free slots
//! are dropped so the slab does not grow past its high-water mark of live keys.

use bytes::Bytes;

/// Marks "no slot" in a `u32` slot field.
pub const NO_SLOT: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct Slab<T = Bytes> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Number of occupied slots.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of the slot array and free list (MEMORY STATS).
    pub fn alloc_bytes(&self) -> usize {
        super::memory::size_class(self.slots.capacity() * std::mem::size_of::<Option<T>>())
            + super::memory::size_class(self.free.capacity() * 4)
    }

    /// Number of slots, occupied or not (the cursor range).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Stores `key` in a free slot and returns its index.
    pub fn insert(&mut self, key: T) -> u32 {
        self.len += 1;
        while let Some(i) = self.free.pop() {
            // Free entries past the end were trimmed away.
            if let Some(slot @ None) = self.slots.get_mut(i as usize) {
                *slot = Some(key);
                return i;
            }
        }
        self.slots.push(Some(key));
        (self.slots.len() - 1) as u32
    }

    /// Frees slot `i`.
    pub fn remove(&mut self, i: u32) {
        self.take(i);
    }

    /// Frees slot `i`, returning what it held.
    pub fn take(&mut self, i: u32) -> Option<T> {
        let taken = self.slots.get_mut(i as usize)?.take()?;
        self.len -= 1;
        if i as usize + 1 == self.slots.len() {
            while matches!(self.slots.last(), Some(None)) {
                self.slots.pop();
            }
        } else {
            self.free.push(i);
        }
        if self.len == 0 {
            self.slots.clear();
            self.free.clear();
        }
        Some(taken)
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i).and_then(|s| s.as_ref())
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).and_then(|s| s.as_mut())
    }

    /// Occupied slots from index `start` on: `(index, key)`.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .skip(start)
            .filter_map(|(i, s)| s.as_ref().map(|k| (i, k)))
    }

    /// Every occupied slot, mutably: `(index, value)`.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|k| (i, k)))
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
}
