//! Set values (Redis 7.0's t_set.c data structure side): a sorted integer
//! array for small sets of integers, a table for everything else.
//!
//! Redis 7.0 keeps a set whose members are all canonical 64-bit integers
//! as an intset (sorted ascending, binary-searched) while it holds at most
//! `set-max-intset-entries` members; a non-integer member or one member too
//! many converts it to a hashtable for good. Redis 7.0 has no listpack
//! encoding for sets (that arrived in 7.2). SMEMBERS, SSCAN, SUNION ... of
//! an intset therefore reply in ascending order, which `Intset` reproduces.
//!
//! The table form is a `ScanMap` (ordered by `(hash(member), member)`),
//! which gives SSCAN
//! Redis's cursor guarantee (a member present for the whole scan is
//! returned) and SPOP / SRANDMEMBER a cheap random pick.

use super::scanmap::ScanMap;
use crate::protocol::parse::parse_i64;
use bytes::Bytes;

/// A set value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Set {
    /// Redis's intset: distinct integers, ascending.
    Intset(Vec<i64>),
    /// Redis's hashtable, keyed by `(hash(member), member)`.
    Table(ScanMap<()>),
}

/// A member as stored: an integer of an intset or a table's bytes.
#[derive(Clone, Copy, Debug)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// Calls `f` with the member's bytes (decimal text for an integer).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(n) => {
                let mut b = itoa::Buffer::new();
                f(b.format(n).as_bytes())
            }
            Member::Bytes(b) => f(b),
        }
    }

    pub fn to_bytes(self) -> Bytes {
        match self {
            Member::Int(n) => {
                let mut b = itoa::Buffer::new();
                Bytes::copy_from_slice(b.format(n).as_bytes())
            }
            Member::Bytes(b) => Bytes::copy_from_slice(b),
        }
    }
}

impl Set {
    /// An empty set in the encoding Redis's `setTypeCreate` picks for its
    /// first member: intset for an integer, hashtable otherwise.
    pub fn for_first(member: &[u8]) -> Set {
        if parse_i64(member).is_some() {
            Set::Intset(Vec::new())
        } else {
            Set::Table(ScanMap::new())
        }
    }

    /// An empty intset (`createIntsetObject`, the start of SUNIONSTORE ...).
    pub fn new_intset() -> Set {
        Set::Intset(Vec::new())
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Intset(v) => v.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Intset(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn is_table(&self) -> bool {
        matches!(self, Set::Table(_))
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Intset(v) => parse_i64(m).is_some_and(|n| v.binary_search(&n).is_ok()),
            Set::Table(t) => t.contains_key(m),
        }
    }

    /// Converts to the table form; no-op when already converted.
    pub fn convert_to_table(&mut self) {
        if let Set::Intset(v) = self {
            let mut t = ScanMap::new();
            let mut b = itoa::Buffer::new();
            for n in std::mem::take(v) {
                t.insert(b.format(n).as_bytes(), ());
            }
            *self = Set::Table(t);
        }
    }

    /// Adds a member (Redis's `setTypeAdd`); returns whether it was new.
    /// An intset converts on a non-integer member, or when it grows past
    /// `max_intset` members.
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let Set::Intset(v) = self {
            match parse_i64(m) {
                Some(n) => {
                    let Err(i) = v.binary_search(&n) else {
                        return false;
                    };
                    if v.len() == v.capacity() {
                        // Grown to the allocator's size class of what it
                        // needs, as Redis's intset is realloc'ed per add:
                        // no doubling slack in small sets.
                        let cap = super::memory::size_class((v.len() + 1) * 8) / 8;
                        v.reserve_exact(cap - v.len());
                    }
                    v.insert(i, n);
                    if v.len() > max_intset {
                        self.convert_to_table();
                    }
                    return true;
                }
                None => self.convert_to_table(),
            }
        }
        match self {
            Set::Table(t) => {
                if t.contains_key(m) {
                    return false;
                }
                t.insert(m, ());
                true
            }
            Set::Intset(_) => false,
        }
    }

    /// Removes a member; returns whether it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Intset(v) => match parse_i64(m).map(|n| v.binary_search(&n)) {
                Some(Ok(i)) => {
                    v.remove(i);
                    true
                }
                _ => false,
            },
            Set::Table(t) => t.remove(m).is_some(),
        }
    }

    /// Every member, in the encoding's order (ascending for an intset).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Member<'_>> + '_> {
        match self {
            Set::Intset(v) => Box::new(v.iter().map(|n| Member::Int(*n))),
            Set::Table(t) => Box::new(t.iter().map(|(b, _)| Member::Bytes(b))),
        }
    }

    /// A member picked from the random number `r`.
    pub fn random_member(&self, r: u64) -> Option<Member<'_>> {
        match self {
            Set::Intset(v) => {
                if v.is_empty() {
                    return None;
                }
                Some(Member::Int(v[(r % v.len() as u64) as usize]))
            }
            Set::Table(t) => t.random(r).map(|(b, _)| Member::Bytes(b)),
        }
    }

    /// One SSCAN step; see `Hash::scan`. The intset is returned whole with
    /// cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Member<'_>) -> bool) -> u64 {
        match self {
            Set::Intset(v) => {
                for n in v {
                    f(Member::Int(*n));
                }
                0
            }
            Set::Table(t) => t.scan(cursor, |b, _| f(Member::Bytes(b))),
        }
    }

    /// The bytes the value's allocations take (MEMORY USAGE): the intset's
    /// array, or the table's members with their share of the tree, the
    /// first `samples` averaged over all (Redis's sampling).
    pub fn mem_usage(&self, samples: usize) -> usize {
        use super::memory::{btree_elem_cost_x10, extrapolate, size_class};
        match self {
            Set::Intset(v) => size_class(v.capacity() * 8),
            Set::Table(t) => {
                let kv = std::mem::size_of::<(u64, Box<[u8]>)>();
                let tree = btree_elem_cost_x10(kv) * t.len() / 10;
                let sum: usize = t
                    .iter()
                    .take(samples)
                    .map(|(m, _)| size_class(m.len()))
                    .sum();
                tree + extrapolate(sum, samples.min(t.len()), t.len())
            }
        }
    }

    /// Allocations freeing the value takes (Redis's `lazyfreeGetFreeEffort`).
    pub fn free_effort(&self) -> usize {
        match self {
            Set::Intset(_) => 1,
            Set::Table(t) => t.len(),
        }
    }

    /// Payload bytes, for chunk sizing.
    pub fn payload_bytes(&self) -> usize {
        match self {
            Set::Intset(v) => v.len() * 8,
            Set::Table(t) => t.iter().map(|(b, _)| b.len()).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        s.iter().map(|m| m.to_bytes().to_vec()).collect()
    }

    #[test]
    fn intset_is_sorted_and_converts() {
        let mut s = Set::for_first(b"5");
        assert!(s.add(b"5", 3));
        assert!(s.add(b"-2", 3));
        assert!(!s.add(b"5", 3));
        assert!(s.add(b"10", 3));
        assert_eq!(
            members(&s),
            vec![b"-2".to_vec(), b"5".to_vec(), b"10".to_vec()]
        );
        assert_eq!(s.encoding(), "intset");
        assert!(!s.contains(b"05"), "not canonical");
        assert!(s.add(b"11", 3));
        assert_eq!(s.encoding(), "hashtable", "past max_intset");
        assert!(s.contains(b"-2") && s.contains(b"11"));
        let mut t = Set::for_first(b"1");
        t.add(b"1", 512);
        t.add(b"x", 512);
        assert_eq!(t.encoding(), "hashtable");
        assert!(t.remove(b"1") && !t.remove(b"1"));
        assert_eq!(Set::for_first(b"a").encoding(), "hashtable");
    }
}
