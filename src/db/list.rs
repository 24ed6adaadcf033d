//! The list value: a quicklist of packed nodes.
//!
//! Redis 7.0 stores every list as a quicklist (a linked list of listpack
//! nodes) and OBJECT ENCODING always answers `quicklist` (the `listpack`
//! encoding for small lists arrived in 7.2), whatever
//! `list-max-listpack-size` says: that parameter only sizes the nodes.
//!
//! redlog does the same with a `VecDeque` of nodes, each one byte buffer
//! of entries (`varint len | bytes | varint len, bytes reversed`: the
//! trailing length lets an entry be read from its end, as a listpack's
//! backlen does) holding at most `NODE_BYTES` (an element longer than that
//! gets a node of its own). An element costs its bytes plus 2 (up to 127
//! bytes), against 16 bytes of header and an allocation for a boxed slice.
//!
//! - Pushes and pops at both ends are O(1) amortized: a node keeps dead
//!   bytes before its first entry (`start`), which front pops leave and
//!   front pushes fill, so neither moves the node's other entries except
//!   when the node is re-laid out (at most once per its size in bytes).
//! - Index lookups (LINDEX, LSET, LINSERT, the start of LRANGE) walk the
//!   node counts from the nearer end, then the entries of one node: O(N /
//!   node size + node size), as in Redis.
//! - Middle inserts and removals rewrite one node (LINSERT, LSET) or the
//!   nodes they touch (LREM, LTRIM); a node grown past twice its limit is
//!   split.

use super::varint::{put_varint, varint_len};
use std::collections::VecDeque;
use std::fmt;

/// The byte budget of one node (Redis's default `list-max-listpack-size`
/// -2 is 8 KiB; half of that keeps front inserts cheap). Small in unit
/// tests so that they cross node boundaries.
const NODE_BYTES: usize = if cfg!(test) { 48 } else { 4096 };
/// Nodes up to this size grow to exactly their size class.
const SMALL_NODE_BYTES: usize = 256;

/// One node: entries in `buf[start..]`.
#[derive(Clone, Default)]
struct Node {
    buf: Vec<u8>,
    /// Dead bytes before the first entry.
    start: u32,
    count: u32,
}

/// The bytes an element takes in a node.
fn entry_size(len: usize) -> usize {
    2 * varint_len(len) + len
}

/// Writes one entry.
fn put_entry(out: &mut Vec<u8>, v: &[u8]) {
    put_varint(out, v.len());
    out.extend_from_slice(v);
    let at = out.len();
    put_varint(out, v.len());
    out[at..].reverse();
}

/// Reads the entry at `off`: (data start, data len, next entry offset).
fn read_fwd(buf: &[u8], off: usize) -> (usize, usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0u32, off);
    loop {
        let b = buf[i];
        i += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (i, n, i + n + varint_len(n))
}

/// Reads the entry ending at `end`: (entry start, data start, data len).
fn read_back(buf: &[u8], end: usize) -> (usize, usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0u32, end);
    loop {
        i -= 1;
        let b = buf[i];
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let data = i - n;
    (data - varint_len(n), data, n)
}

impl Node {
    fn with_entry(v: &[u8]) -> Node {
        let mut buf = Vec::with_capacity(entry_size(v.len()));
        put_entry(&mut buf, v);
        Node {
            buf,
            start: 0,
            count: 1,
        }
    }

    fn first(&self) -> usize {
        self.start as usize
    }

    fn live(&self) -> usize {
        self.buf.len() - self.first()
    }

    /// Whether an entry of `size` bytes may join this node.
    fn fits(&self, size: usize) -> bool {
        self.live() + size <= NODE_BYTES
    }

    /// Byte offset of the `k`-th entry (`k == count` gives the end).
    fn offset_of(&self, k: usize) -> usize {
        let count = self.count as usize;
        if k <= count / 2 {
            let mut off = self.first();
            for _ in 0..k {
                off = read_fwd(&self.buf, off).2;
            }
            off
        } else {
            let mut end = self.buf.len();
            for _ in k..count {
                end = read_back(&self.buf, end).0;
            }
            end
        }
    }

    /// Drops the dead bytes before the first entry.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.first());
            self.start = 0;
        }
    }

    fn push_back(&mut self, v: &[u8]) {
        let size = entry_size(v.len());
        if self.buf.len() + size > self.buf.capacity() {
            self.compact();
            // A small node grows to the allocator's size class of what it
            // needs (a listpack's exact realloc: small lists carry no
            // doubling slack); a larger one by doubling, but never past
            // the node budget: a full node has no slack.
            let need = self.buf.len() + size;
            let cap = if need <= SMALL_NODE_BYTES {
                super::memory::size_class(need)
            } else {
                need.max((self.buf.capacity() * 2).min(NODE_BYTES))
            };
            self.buf.reserve_exact(cap - self.buf.len());
        }
        put_entry(&mut self.buf, v);
        self.count += 1;
    }

    fn push_front(&mut self, v: &[u8]) {
        let size = entry_size(v.len());
        if self.first() < size {
            // Re-lay out with room in front: as much as the live bytes
            // (doubling), within the node budget.
            let live = self.live();
            let gap = live
                .max(size)
                .min(NODE_BYTES.saturating_sub(live))
                .max(size);
            let mut buf = Vec::with_capacity(gap + live);
            buf.resize(gap, 0);
            buf.extend_from_slice(&self.buf[self.first()..]);
            self.buf = buf;
            self.start = gap as u32;
        }
        let at = self.first() - size;
        let mut e = Vec::with_capacity(size);
        put_entry(&mut e, v);
        self.buf[at..at + size].copy_from_slice(&e);
        self.start = at as u32;
        self.count += 1;
    }

    fn pop_front(&mut self) -> Box<[u8]> {
        let (d, n, next) = read_fwd(&self.buf, self.first());
        let v: Box<[u8]> = self.buf[d..d + n].into();
        self.start = next as u32;
        self.count -= 1;
        if self.first() > self.live() && self.first() > 64 {
            self.compact();
        }
        v
    }

    fn pop_back(&mut self) -> Box<[u8]> {
        let (s, d, n) = read_back(&self.buf, self.buf.len());
        let v: Box<[u8]> = self.buf[d..d + n].into();
        self.buf.truncate(s);
        self.count -= 1;
        v
    }

    fn get(&self, k: usize) -> &[u8] {
        let (d, n, _) = read_fwd(&self.buf, self.offset_of(k));
        &self.buf[d..d + n]
    }

    /// Replaces the bytes `at..end` by the entry of `v`.
    fn splice(&mut self, at: usize, end: usize, v: &[u8]) {
        let mut e = Vec::with_capacity(entry_size(v.len()));
        put_entry(&mut e, v);
        self.buf.splice(at..end, e);
    }

    /// The entries, in order.
    fn entries(&self) -> impl Iterator<Item = &[u8]> {
        let mut off = self.first();
        (0..self.count).map(move |_| {
            let (d, n, next) = read_fwd(&self.buf, off);
            off = next;
            &self.buf[d..d + n]
        })
    }

    /// Builds nodes from elements, each within the budget.
    fn pack<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<Node> {
        let mut out: Vec<Node> = Vec::new();
        for v in items {
            match out.last_mut() {
                Some(n) if n.fits(entry_size(v.len())) => n.push_back(v),
                _ => out.push(Node::with_entry(v)),
            }
        }
        for n in &mut out {
            n.buf.shrink_to_fit();
        }
        out
    }
}

/// A list of byte strings. Never empty while stored under a key: commands
/// delete the key when the last element goes (Redis semantics).
#[derive(Clone, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
}

impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|b| String::from_utf8_lossy(b)))
            .finish()
    }
}

impl List {
    pub fn new() -> Self {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Nodes and the bytes their entries take (DEBUG OBJECT's `ql_nodes`
    /// and `ql_uncompressed_size`).
    pub fn node_stats(&self) -> (usize, usize) {
        let bytes = self
            .nodes
            .iter()
            .map(|n| n.buf.len() - n.start as usize)
            .sum();
        (self.nodes.len(), bytes)
    }

    /// The most bytes a node holds (DEBUG OBJECT's `ql_listpack_max`).
    pub const NODE_BYTES: usize = NODE_BYTES;

    /// OBJECT ENCODING (Redis 7.0: always a quicklist).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Pushes at the head (`left`) or the tail.
    pub fn push(&mut self, left: bool, v: &[u8]) {
        let size = entry_size(v.len());
        if left {
            match self.nodes.front_mut() {
                Some(n) if n.fits(size) => n.push_front(v),
                _ => {
                    if self.nodes.is_empty() {
                        // A small list holds one node: no room for four.
                        self.nodes.reserve_exact(1);
                    }
                    self.nodes.push_front(Node::with_entry(v))
                }
            }
        } else {
            match self.nodes.back_mut() {
                Some(n) if n.fits(size) => n.push_back(v),
                _ => {
                    if self.nodes.is_empty() {
                        self.nodes.reserve_exact(1);
                    }
                    self.nodes.push_back(Node::with_entry(v))
                }
            }
        }
        self.len += 1;
    }

    /// Pops from the head (`left`) or the tail.
    pub fn pop(&mut self, left: bool) -> Option<Box<[u8]>> {
        let v = if left {
            let n = self.nodes.front_mut()?;
            let v = n.pop_front();
            if n.count == 0 {
                self.nodes.pop_front();
            }
            v
        } else {
            let n = self.nodes.back_mut()?;
            let v = n.pop_back();
            if n.count == 0 {
                self.nodes.pop_back();
            }
            v
        };
        self.len -= 1;
        Some(v)
    }

    /// Redis's index convention: negative counts from the tail. None when
    /// out of range.
    pub fn index(&self, i: i64) -> Option<usize> {
        let len = self.len as i64;
        let i = if i < 0 { len.checked_add(i)? } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// The node holding element `i` (< len) and its place in that node.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (ni, n) in self.nodes.iter().enumerate() {
                let c = n.count as usize;
                if i < c {
                    return (ni, i);
                }
                i -= c;
            }
        } else {
            let mut from_end = self.len - i;
            for (ni, n) in self.nodes.iter().enumerate().rev() {
                let c = n.count as usize;
                if from_end <= c {
                    return (ni, c - from_end);
                }
                from_end -= c;
            }
        }
        (self.nodes.len(), 0)
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (ni, k) = self.locate(i);
        Some(self.nodes[ni].get(k))
    }

    pub fn set(&mut self, i: usize, v: &[u8]) {
        if i >= self.len {
            return;
        }
        let (ni, k) = self.locate(i);
        let n = &mut self.nodes[ni];
        let at = n.offset_of(k);
        let end = read_fwd(&n.buf, at).2;
        n.splice(at, end, v);
        self.split_if_big(ni);
    }

    /// Inserts before position `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        if i == 0 || i == self.len {
            self.push(i == 0 && self.len > 0, v);
            return;
        }
        if i > self.len {
            return;
        }
        let (ni, k) = self.locate(i);
        let n = &mut self.nodes[ni];
        let at = n.offset_of(k);
        n.splice(at, at, v);
        n.count += 1;
        self.len += 1;
        self.split_if_big(ni);
    }

    /// Splits node `ni` in two when it grew past twice the budget.
    fn split_if_big(&mut self, ni: usize) {
        let n = &self.nodes[ni];
        if n.live() <= 2 * NODE_BYTES || n.count < 2 {
            return;
        }
        if let Some(n) = self.nodes.remove(ni) {
            insert_nodes(&mut self.nodes, ni, Node::pack(n.entries()));
        }
    }

    /// The elements in head-to-tail order.
    pub fn iter(&self) -> Iter<'_> {
        self.range_iter(0, self.len)
    }

    /// Elements `start..=stop` (already clamped to the list).
    pub fn range(&self, start: usize, stop: usize) -> Iter<'_> {
        self.range_iter(start, stop.saturating_add(1).min(self.len))
    }

    fn range_iter(&self, start: usize, end: usize) -> Iter<'_> {
        if start >= end {
            return Iter {
                list: self,
                front: (0, 0),
                back: (0, 0),
                remaining: 0,
            };
        }
        let (fi, fk) = self.locate(start);
        let front = (fi, self.nodes[fi].offset_of(fk));
        let back = if end == self.len {
            let last = self.nodes.len() - 1;
            (last, self.nodes[last].buf.len())
        } else {
            let (bi, bk) = self.locate(end);
            (bi, self.nodes[bi].offset_of(bk))
        };
        Iter {
            list: self,
            front,
            back,
            remaining: end - start,
        }
    }

    /// Rebuilds the nodes from a filtered sequence of elements.
    fn rebuild_nodes(&mut self, from: usize, to: usize, keep: impl FnMut(&[u8]) -> bool) {
        let old: Vec<Node> = self.nodes.drain(from..to).collect();
        let mut keep = keep;
        let kept = Node::pack(old.iter().flat_map(|n| n.entries()).filter(|e| keep(e)));
        self.len = self.nodes.iter().map(|n| n.count as usize).sum::<usize>()
            + kept.iter().map(|n| n.count as usize).sum::<usize>();
        insert_nodes(&mut self.nodes, from, kept);
    }

    /// LREM: removes up to `count` elements equal to `v` (all when 0; from
    /// the tail when negative). Returns how many went.
    pub fn remove(&mut self, count: i64, v: &[u8]) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        // The positions to remove, then one pass over the nodes holding them.
        let matches: Vec<usize> = if count >= 0 {
            self.iter()
                .enumerate()
                .filter(|(_, e)| *e == v)
                .map(|(i, _)| i)
                .take(limit)
                .collect()
        } else {
            let mut m: Vec<usize> = self
                .iter()
                .rev()
                .enumerate()
                .filter(|(_, e)| *e == v)
                .map(|(i, _)| self.len - 1 - i)
                .take(limit)
                .collect();
            m.reverse();
            m
        };
        let (Some(&lo), Some(&hi)) = (matches.first(), matches.last()) else {
            return 0;
        };
        let (from, skip) = self.locate(lo);
        let to = self.locate(hi).0 + 1;
        let base = lo - skip;
        let mut pos = base;
        let mut next = matches.iter().peekable();
        self.rebuild_nodes(from, to, |_| {
            let here = pos;
            pos += 1;
            if next.peek() == Some(&&here) {
                next.next();
                false
            } else {
                true
            }
        });
        matches.len()
    }

    /// Keeps elements `start..end` (end exclusive, both within the list).
    pub fn keep(&mut self, start: usize, end: usize) {
        let end = end.min(self.len);
        let start = start.min(end);
        if start == end {
            *self = List::new();
            return;
        }
        // Tail: whole nodes, then entries of the last kept node.
        let mut drop_back = self.len - end;
        while drop_back > 0 {
            let Some(n) = self.nodes.back_mut() else {
                break;
            };
            if (n.count as usize) <= drop_back {
                drop_back -= n.count as usize;
                self.nodes.pop_back();
            } else {
                let at = n.offset_of(n.count as usize - drop_back);
                n.buf.truncate(at);
                n.count -= drop_back as u32;
                drop_back = 0;
            }
        }
        let mut drop_front = start;
        while drop_front > 0 {
            let Some(n) = self.nodes.front_mut() else {
                break;
            };
            if (n.count as usize) <= drop_front {
                drop_front -= n.count as usize;
                self.nodes.pop_front();
            } else {
                n.start = n.offset_of(drop_front) as u32;
                n.count -= drop_front as u32;
                n.compact();
                drop_front = 0;
            }
        }
        self.len = end - start;
    }

    /// The bytes the value's allocations take (MEMORY USAGE): the node
    /// ring and each node's buffer, the first `samples` nodes averaged
    /// over all (Redis samples quicklist nodes the same way).
    pub fn mem_usage(&self, samples: usize) -> usize {
        use super::memory::{extrapolate, size_class};
        let ring = size_class(self.nodes.capacity() * std::mem::size_of::<Node>());
        let sum: usize = self
            .nodes
            .iter()
            .take(samples)
            .map(|n| size_class(n.buf.capacity()))
            .sum();
        ring + extrapolate(sum, samples.min(self.nodes.len()), self.nodes.len())
    }

    /// Allocations freeing the value takes (Redis's `lazyfreeGetFreeEffort`:
    /// a quicklist's node count).
    pub fn free_effort(&self) -> usize {
        self.nodes.len()
    }

    /// Total payload bytes (for chunk sizing of base snapshots).
    pub fn payload_bytes(&self) -> usize {
        self.iter().map(|b| b.len()).sum()
    }
}

/// Inserts `parts` before node `at`.
fn insert_nodes(nodes: &mut VecDeque<Node>, at: usize, parts: Vec<Node>) {
    let tail = nodes.split_off(at.min(nodes.len()));
    nodes.extend(parts);
    nodes.extend(tail);
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let nodes: VecDeque<Node> = Node::pack(iter).into();
        let len = nodes.iter().map(|n| n.count as usize).sum();
        List { nodes, len }
    }
}

/// Iterator over a list's elements (both directions).
pub struct Iter<'a> {
    list: &'a List,
    /// (node, offset of the next entry from the front).
    front: (usize, usize),
    /// (node, end offset of the next entry from the back).
    back: (usize, usize),
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let nodes = &self.list.nodes;
        let (mut ni, mut off) = self.front;
        if off >= nodes[ni].buf.len() {
            ni += 1;
            off = nodes[ni].first();
        }
        let buf = &nodes[ni].buf;
        let (d, n, next) = read_fwd(buf, off);
        self.front = (ni, next);
        self.remaining -= 1;
        Some(&buf[d..d + n])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let nodes = &self.list.nodes;
        let (mut ni, mut end) = self.back;
        if end <= nodes[ni].first() {
            ni -= 1;
            end = nodes[ni].buf.len();
        }
        let buf = &nodes[ni].buf;
        let (s, d, n) = read_back(buf, end);
        self.back = (ni, s);
        self.remaining -= 1;
        Some(&buf[d..d + n])
    }
}

impl ExactSizeIterator for Iter<'_> {}

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

    #[test]
    fn entries_read_both_ways_at_every_length_class() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = vec![9u8];
            put_entry(&mut buf, &v);
            assert_eq!(buf.len(), 1 + entry_size(len));
            assert_eq!(read_fwd(&buf, 1), (1 + varint_len(len), len, buf.len()));
            assert_eq!(read_back(&buf, buf.len()), (1, 1 + varint_len(len), len));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool),
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        Remove(i64, Vec<u8>),
        Keep(usize, usize),
        Range(usize, usize),
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            4 => prop::collection::vec(b'a'..b'd', 0..3),
            1 => prop::collection::vec(any::<u8>(), 0..200),
        ]
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (any::<bool>(), value()).prop_map(|(l, v)| Op::Push(l, v)),
            3 => any::<bool>().prop_map(Op::Pop),
            1 => (0..80usize, value()).prop_map(|(i, v)| Op::Set(i, v)),
            2 => (0..80usize, value()).prop_map(|(i, v)| Op::Insert(i, v)),
            1 => (-3..4i64, value()).prop_map(|(c, v)| Op::Remove(c, v)),
            1 => (0..40usize, 0..90usize).prop_map(|(s, e)| Op::Keep(s, e)),
            1 => (0..80usize, 0..80usize).prop_map(|(s, e)| Op::Range(s, e)),
        ]
    }

    proptest::proptest! {
        #[test]
        fn quicklist_matches_a_vecdeque(
            init in proptest::collection::vec(value(), 0..60),
            ops in proptest::collection::vec(op(), 0..120),
        ) {
            let mut model: VecDeque<Vec<u8>> = init.iter().cloned().collect();
            let mut l: List = init.iter().map(|v| &v[..]).collect();
            for op in ops {
                match op {
                    Op::Push(left, v) => {
                        l.push(left, &v);
                        if left { model.push_front(v) } else { model.push_back(v) }
                    }
                    Op::Pop(left) => {
                        let want = if left { model.pop_front() } else { model.pop_back() };
                        proptest::prop_assert_eq!(l.pop(left).map(|b| b.to_vec()), want);
                    }
                    Op::Set(i, v) => {
                        if i < model.len() {
                            model[i] = v.clone();
                        }
                        l.set(i, &v);
                    }
                    Op::Insert(i, v) => {
                        if i <= model.len() {
                            model.insert(i, v.clone());
                        }
                        l.insert(i, &v);
                    }
                    Op::Remove(count, v) => {
                        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
                        let mut gone = 0;
                        if count >= 0 {
                            let mut i = 0;
                            while i < model.len() && gone < limit {
                                if model[i] == v { model.remove(i); gone += 1 } else { i += 1 }
                            }
                        } else {
                            let mut i = model.len();
                            while i > 0 && gone < limit {
                                i -= 1;
                                if model[i] == v { model.remove(i); gone += 1 }
                            }
                        }
                        proptest::prop_assert_eq!(l.remove(count, &v), gone);
                    }
                    Op::Keep(s, e) => {
                        let e2 = e.min(model.len());
                        let s2 = s.min(e2);
                        model = model.iter().skip(s2).take(e2 - s2).cloned().collect();
                        l.keep(s, e);
                    }
                    Op::Range(s, e) => {
                        if s <= e && e < model.len() {
                            let got: Vec<Vec<u8>> = l.range(s, e).map(|b| b.to_vec()).collect();
                            let want: Vec<Vec<u8>> = model.range(s..=e).cloned().collect();
                            proptest::prop_assert_eq!(got, want);
                            let back: Vec<Vec<u8>> = l.range(s, e).rev().map(|b| b.to_vec()).collect();
                            let want: Vec<Vec<u8>> = model.range(s..=e).rev().cloned().collect();
                            proptest::prop_assert_eq!(back, want);
                        }
                    }
                }
                proptest::prop_assert_eq!(l.len(), model.len());
                proptest::prop_assert!(l.nodes.iter().all(|n| n.count > 0));
                proptest::prop_assert_eq!(
                    l.nodes.iter().map(|n| n.count as usize).sum::<usize>(),
                    model.len()
                );
            }
            let got: Vec<Vec<u8>> = l.iter().map(|b| b.to_vec()).collect();
            proptest::prop_assert_eq!(&got, &model.iter().cloned().collect::<Vec<_>>());
            let mut rev: Vec<Vec<u8>> = l.iter().rev().map(|b| b.to_vec()).collect();
            rev.reverse();
            proptest::prop_assert_eq!(&rev, &got);
            for (i, want) in model.iter().enumerate() {
                proptest::prop_assert_eq!(l.get(i), Some(&want[..]));
            }
            proptest::prop_assert_eq!(l.get(model.len()), None);
        }
    }
}
