//! [`IdMap`]: a sorted map from stream ids to small values, stored as
//! sorted chunks of at most [`CHUNK`] pairs, for the pending-entry lists
//! of consumer groups.
//!
//! Why not a `BTreeMap<u128, V>`: PEL ids arrive in increasing order
//! (deliveries of new entries), and a `BTreeMap` split keeps its leaves
//! about half full under appends, so a 16-byte id with a 24-byte value
//! cost ~80 bytes plus inner nodes. Here an append to a full last chunk
//! starts a new chunk instead of splitting it, so appended chunks stay
//! full (one `Vec` of pairs plus one map slot per `CHUNK` ids); a middle
//! insert splits in half. Removal never merges chunks; a chunk whose
//! length falls to a quarter of its capacity gives the memory back.
//!
//! Invariant: a chunk's key is <= every id in it, and every id in it is
//! below the next chunk's key; no chunk is empty.

use std::collections::BTreeMap;

/// Most pairs in a chunk.
pub const CHUNK: usize = 64;

#[derive(Clone, Debug)]
pub struct IdMap<V> {
    chunks: BTreeMap<u128, Vec<(u128, V)>>,
    len: usize,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap {
            chunks: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<V: PartialEq> PartialEq for IdMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<V: Eq> Eq for IdMap<V> {}

impl<V> IdMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Key of the chunk that holds (or would hold) `id`.
    fn chunk_key(&self, id: u128) -> Option<u128> {
        self.chunks.range(..=id).next_back().map(|(k, _)| *k)
    }

    pub fn get(&self, id: u128) -> Option<&V> {
        let c = self.chunks.range(..=id).next_back()?.1;
        let i = c.binary_search_by(|(k, _)| k.cmp(&id)).ok()?;
        Some(&c[i].1)
    }

    pub fn get_mut(&mut self, id: u128) -> Option<&mut V> {
        let c = self.chunks.range_mut(..=id).next_back()?.1;
        let i = c.binary_search_by(|(k, _)| k.cmp(&id)).ok()?;
        Some(&mut c[i].1)
    }

    pub fn contains_key(&self, id: u128) -> bool {
        self.get(id).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, id: u128, v: V) -> Option<V> {
        let Some(ck) = self.chunk_key(id) else {
            // Below every chunk: prepend to the first chunk (rekeyed) when
            // it has room, else a new chunk.
            let first = self
                .chunks
                .first_key_value()
                .filter(|(_, c)| c.len() < CHUNK)
                .map(|(k, _)| *k);
            let mut c = match first {
                Some(k) => self.chunks.remove(&k).unwrap_or_default(),
                None => Vec::with_capacity(4),
            };
            c.insert(0, (id, v));
            self.chunks.insert(id, c);
            self.len += 1;
            return None;
        };
        let c = self.chunks.get_mut(&ck).expect("chunk_key found it");
        let pos = match c.binary_search_by(|(k, _)| k.cmp(&id)) {
            Ok(i) => return Some(std::mem::replace(&mut c[i].1, v)),
            Err(pos) => pos,
        };
        self.len += 1;
        if c.len() < CHUNK {
            c.insert(pos, (id, v));
            return None;
        }
        if pos == CHUNK {
            // Append past a full chunk: a new chunk, the full one stays full.
            let mut n = Vec::with_capacity(4);
            n.push((id, v));
            self.chunks.insert(id, n);
            return None;
        }
        let mut right = Vec::with_capacity(CHUNK);
        right.extend(c.drain(CHUNK / 2..));
        if pos <= CHUNK / 2 {
            c.insert(pos, (id, v));
        } else {
            right.insert(pos - CHUNK / 2, (id, v));
        }
        let rk = right[0].0;
        self.chunks.insert(rk, right);
        None
    }

    pub fn remove(&mut self, id: u128) -> Option<V> {
        let ck = self.chunk_key(id)?;
        let c = self.chunks.get_mut(&ck).expect("chunk_key found it");
        let i = c.binary_search_by(|(k, _)| k.cmp(&id)).ok()?;
        let (_, v) = c.remove(i);
        self.len -= 1;
        if c.is_empty() {
            self.chunks.remove(&ck);
        } else if c.capacity() > 8 && c.len() <= c.capacity() / 4 {
            c.shrink_to(c.len() * 2);
        }
        Some(v)
    }

    pub fn first_key(&self) -> Option<u128> {
        self.chunks
            .first_key_value()
            .and_then(|(_, c)| c.first())
            .map(|p| p.0)
    }

    pub fn last_key(&self) -> Option<u128> {
        self.chunks
            .last_key_value()
            .and_then(|(_, c)| c.last())
            .map(|p| p.0)
    }

    /// Pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, &V)> + '_ {
        self.chunks.values().flatten().map(|(k, v)| (*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = u128> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Pairs with id >= `start`, in id order.
    pub fn range_from(&self, start: u128) -> impl Iterator<Item = (u128, &V)> + '_ {
        let from = self.chunk_key(start).unwrap_or(start);
        self.chunks
            .range(from..)
            .flat_map(|(_, c)| c.iter())
            .skip_while(move |(k, _)| *k < start)
            .map(|(k, v)| (*k, v))
    }
}

impl<V> FromIterator<(u128, V)> for IdMap<V> {
    fn from_iter<I: IntoIterator<Item = (u128, V)>>(it: I) -> Self {
        let mut m = IdMap::new();
        for (k, v) in it {
            m.insert(k, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_like_btreemap(ops in proptest::collection::vec((0u8..4, 0u128..400, any::<u32>()), 0..2000)) {
            let mut m = IdMap::new();
            let mut model = BTreeMap::new();
            for (op, id, v) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(m.insert(id, v), model.insert(id, v)),
                    2 => prop_assert_eq!(m.remove(id), model.remove(&id)),
                    _ => {
                        prop_assert_eq!(m.get(id), model.get(&id));
                        let a: Vec<_> = m.range_from(id).map(|(k, v)| (k, *v)).collect();
                        let b: Vec<_> = model.range(id..).map(|(k, v)| (*k, *v)).collect();
                        prop_assert_eq!(a, b);
                    }
                }
                prop_assert_eq!(m.len(), model.len());
            }
            let a: Vec<_> = m.iter().map(|(k, v)| (k, *v)).collect();
            let b: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(a, b);
            prop_assert_eq!(m.first_key(), model.keys().next().copied());
            prop_assert_eq!(m.last_key(), model.keys().next_back().copied());
            for (k, c) in &m.chunks {
                prop_assert!(!c.is_empty() && c.len() <= CHUNK && *k <= c[0].0);
            }
        }
    }

    #[test]
    fn appends_fill_chunks() {
        let m: IdMap<u64> = (0..1000u128).map(|i| (i, 0)).collect();
        assert_eq!(m.chunks.len(), 1000usize.div_ceil(CHUNK));
        assert_eq!(m.get_mut_count(), 1000);
    }

    impl<V> IdMap<V> {
        fn get_mut_count(&self) -> usize {
            self.chunks.values().map(Vec::len).sum()
        }
    }
}
