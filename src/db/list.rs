//! The list value: a double-ended queue of byte strings.
//!
//! Redis 7.0 stores every list as a quicklist (a linked list of listpack
//! nodes) and OBJECT ENCODING always answers `quicklist` (the `listpack`
//! encoding for small lists arrived in 7.2), whatever
//! `list-max-listpack-size` says: that parameter only sizes the nodes.
//! redlog keeps a `VecDeque` of boxed slices: 16 bytes of header per
//! element plus its bytes, O(1) pushes and pops at both ends, O(1) indexing
//! (LINDEX, LSET, LRANGE start), and O(N) middle inserts and removals as in
//! Redis.

use std::collections::VecDeque;

/// A list of byte strings. Never empty while stored under a key: commands
/// delete the key when the last element goes (Redis semantics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List {
    items: VecDeque<Box<[u8]>>,
}

impl List {
    pub fn new() -> Self {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// OBJECT ENCODING (Redis 7.0: always a quicklist).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Pushes at the head (`left`) or the tail.
    pub fn push(&mut self, left: bool, v: &[u8]) {
        let b: Box<[u8]> = v.into();
        if left {
            self.items.push_front(b);
        } else {
            self.items.push_back(b);
        }
    }

    /// Pops from the head (`left`) or the tail.
    pub fn pop(&mut self, left: bool) -> Option<Box<[u8]>> {
        if left {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }
    }

    /// Redis's index convention: negative counts from the tail. None when
    /// out of range.
    pub fn index(&self, i: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if i < 0 { len.checked_add(i)? } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|b| &b[..])
    }

    pub fn set(&mut self, i: usize, v: &[u8]) {
        if let Some(slot) = self.items.get_mut(i) {
            *slot = v.into();
        }
    }

    /// Inserts before position `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        if i <= self.items.len() {
            self.items.insert(i, v.into());
        }
    }

    /// The elements in head-to-tail order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|b| &b[..])
    }

    /// Elements `start..=stop` (already clamped to the list).
    pub fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = &[u8]> {
        self.items.range(start..=stop).map(|b| &b[..])
    }

    /// LREM: removes up to `count` elements equal to `v` (all when 0; from
    /// the tail when negative). Returns how many went.
    pub fn remove(&mut self, count: i64, v: &[u8]) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        let mut removed = 0;
        if count >= 0 {
            let mut i = 0;
            while i < self.items.len() && removed < limit {
                if &self.items[i][..] == v {
                    self.items.remove(i);
                    removed += 1;
                } else {
                    i += 1;
                }
            }
        } else {
            let mut i = self.items.len();
            while i > 0 && removed < limit {
                i -= 1;
                if &self.items[i][..] == v {
                    self.items.remove(i);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Keeps elements `start..end` (end exclusive, both within the list).
    pub fn keep(&mut self, start: usize, end: usize) {
        let end = end.min(self.items.len());
        self.items.truncate(end);
        let start = start.min(self.items.len());
        self.items.drain(..start);
    }

    /// Total payload bytes (for chunk sizing of base snapshots).
    pub fn payload_bytes(&self) -> usize {
        self.items.iter().map(|b| b.len()).sum()
    }
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        List {
            items: iter.into_iter().map(Box::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        items.iter().map(|s| s.as_bytes()).collect()
    }

    fn strs(l: &List) -> Vec<String> {
        l.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn index_and_remove_follow_redis() {
        let l = list(&["a", "b", "c"]);
        assert_eq!(l.index(-1), Some(2));
        assert_eq!(l.index(-4), None);
        assert_eq!(l.index(3), None);
        assert_eq!(l.index(i64::MIN), None);
        let mut l = list(&["a", "x", "a", "x", "a"]);
        assert_eq!(l.remove(-2, b"a"), 2);
        assert_eq!(strs(&l), ["a", "x", "x"]);
        assert_eq!(l.remove(0, b"x"), 2);
        assert_eq!(strs(&l), ["a"]);
        let mut l = list(&["a", "b", "c", "d"]);
        l.keep(1, 3);
        assert_eq!(strs(&l), ["b", "c"]);
        l.keep(5, 9);
        assert!(l.is_empty());
    }
}
