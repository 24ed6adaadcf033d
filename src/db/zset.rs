//! Sorted sets: members ordered by (score, member bytes), with O(log n)
//! rank and range queries.
//!
//! Two representations, as Redis has them, and OBJECT ENCODING names them:
//!
//! - `listpack`: the elements in order, packed in one buffer (`Packed`:
//!   member, score and two length bytes each), walked linearly as Redis
//!   walks its listpack. Used while the set has at most
//!   `zset-max-listpack-entries` members of at most `zset-max-listpack-value`
//!   bytes.
//! - `skiplist`: Redis's skiplist with spans (`zskiplist` in t_zset.c) in an
//!   arena of nodes addressed by `u32` (level 0 inline, higher levels in
//!   one small allocation for the quarter of nodes that have any), plus a
//!   member index of `(hash(member), node)` pairs: the member's bytes live
//!   once, in its node (a boxed slice), and the index's hash order is ZSCAN's cursor (the
//!   `ScanMap` scheme), independent of scores as Redis's dict cursor is. Rank
//!   of a member, element at a rank, and "how many elements come before this
//!   bound" are all O(log n); iteration follows the level-0 links.
//!
//! A set converts from listpack to skiplist when an insertion would break
//! the limits, and never back (Redis 7.0: only a freshly built destination
//! of ZUNIONSTORE & co. starts as a listpack again).
//!
//! Every range query is answered in rank space: `count_before(pred)` gives
//! the number of leading elements for which a monotone predicate holds (all
//! elements below a score or lex bound), so a range is a pair of ranks and
//! LIMIT, COUNT and reverse order are rank arithmetic.

use super::scanmap::{key_pos, scan_positions};
use super::varint::{put_varint, varint_len};
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// Redis's `ZSKIPLIST_MAXLEVEL`: enough for 2^64 elements at p = 1/4.
const MAX_LEVEL: usize = 32;

/// The encoding thresholds (`zset-max-listpack-entries` / `-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZsetLimits {
    pub entries: usize,
    pub value: usize,
}

impl Default for ZsetLimits {
    fn default() -> Self {
        // Redis 7.0's defaults.
        ZsetLimits {
            entries: 128,
            value: 64,
        }
    }
}

/// Order of two elements: by score, then by member bytes (memcmp, shorter
/// first on a common prefix), as Redis's `zslInsert` compares them.
pub fn cmp_elem(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

/// A sorted set value.
#[derive(Clone, Debug)]
pub struct ZSet {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Pack(Packed),
    Skip(Box<SkipSet>),
}

/// The listpack form: `varint head | member | score | backlen` per element,
/// `head` being `member length << 4 | score length` and backlen the same
/// varint reversed (so entries read from their end), in (score, member)
/// order, in one buffer. A score that is an integer of magnitude below
/// 2^53 (so exactly an f64) is stored as its zigzag value in the fewest
/// little-endian bytes (0 to 7; Redis's listpack stores integers compactly
/// too); any other score as its 8 f64 bytes. Sets are small here (at most
/// `zset-max-listpack-entries`): lookups walk it, as Redis's do.
#[derive(Clone, Debug, Default)]
pub struct Packed {
    buf: Vec<u8>,
    len: usize,
}

/// Score length of a raw f64.
const SCORE_F64: usize = 8;

/// The stored bytes of a score: (little-endian buffer, length).
fn score_bytes(score: f64) -> ([u8; 8], usize) {
    // -0.0 keeps its sign bit: stored raw.
    let int = score == score.trunc()
        && score.abs() < (1u64 << 53) as f64
        && !(score == 0.0 && score.is_sign_negative());
    if int {
        let n = score as i64;
        let z = ((n << 1) ^ (n >> 63)) as u64;
        let len = (64 - z.leading_zeros() as usize).div_ceil(8);
        (z.to_le_bytes(), len)
    } else {
        (score.to_bits().to_le_bytes(), SCORE_F64)
    }
}

fn entry(member: &[u8], score: f64) -> Vec<u8> {
    let (sb, sl) = score_bytes(score);
    let head = member.len() << 4 | sl;
    let mut e = Vec::with_capacity(member.len() + sl + 2 * varint_len(head));
    put_varint(&mut e, head);
    e.extend_from_slice(member);
    e.extend_from_slice(&sb[..sl]);
    let at = e.len();
    put_varint(&mut e, head);
    e[at..].reverse();
    e
}

fn score_at(buf: &[u8], at: usize, len: usize) -> f64 {
    let mut b = [0u8; 8];
    b[..len].copy_from_slice(&buf[at..at + len]);
    let v = u64::from_le_bytes(b);
    if len == SCORE_F64 {
        f64::from_bits(v)
    } else {
        (((v >> 1) as i64) ^ -((v & 1) as i64)) as f64
    }
}

impl Packed {
    /// The entry at `off`: (member, score, next offset).
    fn read_at(&self, off: usize) -> (&[u8], f64, usize) {
        let (mut n, mut shift, mut i) = (0usize, 0u32, off);
        loop {
            let b = self.buf[i];
            i += 1;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let head = n;
        let (n, sl) = (head >> 4, head & 15);
        let sc = score_at(&self.buf, i + n, sl);
        (&self.buf[i..i + n], sc, i + n + sl + varint_len(head))
    }

    /// The entry ending at `end`: (start offset, member, score).
    fn read_before(&self, end: usize) -> (usize, &[u8], f64) {
        let (mut n, mut shift, mut i) = (0usize, 0u32, end);
        loop {
            i -= 1;
            let b = self.buf[i];
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let head = n;
        let (n, sl) = (head >> 4, head & 15);
        let sc_at = i - sl;
        let m_at = sc_at - n;
        (
            m_at - varint_len(head),
            &self.buf[m_at..sc_at],
            score_at(&self.buf, sc_at, sl),
        )
    }

    /// Every element with its byte range: (start, end, member, score).
    fn entries(&self) -> impl Iterator<Item = (usize, usize, &[u8], f64)> {
        let mut off = 0;
        (0..self.len).map(move |_| {
            let start = off;
            let (m, sc, next) = self.read_at(off);
            off = next;
            (start, next, m, sc)
        })
    }

    /// Byte offset of the element at `rank` (`len` gives the end).
    fn offset_of(&self, rank: usize) -> usize {
        if rank >= self.len {
            return self.buf.len();
        }
        self.entries().nth(rank).map_or(self.buf.len(), |(s, ..)| s)
    }

    /// (rank, start, end, score) of a member.
    fn find(&self, member: &[u8]) -> Option<(usize, usize, usize, f64)> {
        self.entries()
            .enumerate()
            .find(|(_, (_, _, m, _))| *m == member)
            .map(|(r, (s, e, _, sc))| (r, s, e, sc))
    }

    /// Number of leading elements for which `pred` holds.
    fn partition_point(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.entries()
            .take_while(|(_, _, m, sc)| pred(*sc, m))
            .count()
    }

    /// Inserts an absent member at its place in the order.
    fn insert(&mut self, member: &[u8], score: f64) {
        let at = self
            .entries()
            .find(|(_, _, m, sc)| !cmp_elem(*sc, m, score, member).is_lt())
            .map_or(self.buf.len(), |(s, ..)| s);
        let e = entry(member, score);
        // Exact sizes, as a listpack's realloc: no growth slack.
        self.buf.reserve_exact(e.len());
        self.buf.splice(at..at, e);
        self.len += 1;
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (_, s, e, sc) = self.find(member)?;
        self.buf.drain(s..e);
        self.len -= 1;
        Some(sc)
    }

    /// Removes ranks `start..end` (within the set), returning them.
    fn remove_ranks(&mut self, start: usize, end: usize) -> Vec<(Bytes, f64)> {
        let (s, e) = (self.offset_of(start), self.offset_of(end));
        let gone: Vec<(Bytes, f64)> = self
            .entries()
            .skip(start)
            .take(end - start)
            .map(|(_, _, m, sc)| (Bytes::copy_from_slice(m), sc))
            .collect();
        self.buf.drain(s..e);
        self.len -= gone.len();
        gone
    }
}

#[derive(Clone, Debug, Default)]
struct SkipSet {
    /// The member index: `(hash(member), node)`, so a member's bytes live
    /// once, in its skiplist node. Ordered by hash: ZSCAN's cursor.
    index: BTreeSet<(u64, u32)>,
    list: SkipList,
}

impl SkipSet {
    /// The node of a member.
    fn find(&self, member: &[u8]) -> Option<u32> {
        let h = key_pos(member);
        self.index
            .range((h, 0)..=(h, u32::MAX))
            .map(|&(_, i)| i)
            .find(|&i| &self.list.nodes[i as usize].member[..] == member)
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|i| self.list.nodes[i as usize].score)
    }

    /// Inserts an absent member.
    fn insert(&mut self, score: f64, member: Box<[u8]>) {
        let h = key_pos(&member);
        let i = self.list.insert(score, member);
        self.index.insert((h, i));
    }

    /// Removes a member, returning its bytes and score.
    fn remove(&mut self, member: &[u8]) -> Option<(Box<[u8]>, f64)> {
        let i = self.find(member)?;
        let score = self.list.nodes[i as usize].score;
        self.index.remove(&(key_pos(member), i));
        let m = self.list.delete(score, member)?;
        Some((m, score))
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.is_skiplist() == other.is_skiplist()
            && self.len() == other.len()
            && self
                .iter_from(0, false)
                .zip(other.iter_from(0, false))
                .all(|((m1, s1), (m2, s2))| m1 == m2 && s1.to_bits() == s2.to_bits())
    }
}

impl ZSet {
    /// An empty set in the listpack encoding.
    pub fn new_listpack() -> Self {
        ZSet {
            repr: Repr::Pack(Packed::default()),
        }
    }

    /// An empty set in the skiplist encoding.
    pub fn new_skiplist() -> Self {
        ZSet {
            repr: Repr::Skip(Box::default()),
        }
    }

    /// An empty set encoded as Redis 7.0 creates one for a first member of
    /// `first_len` bytes (ZADD on a missing key).
    pub fn for_first_member(first_len: usize, limits: ZsetLimits) -> Self {
        if limits.entries == 0 || first_len > limits.value {
            Self::new_skiplist()
        } else {
            Self::new_listpack()
        }
    }

    /// An empty set for `size_hint` members of at most `len_hint` bytes
    /// (Redis's `zsetTypeCreate`, used by ZRANGESTORE).
    pub fn with_hint(size_hint: usize, len_hint: usize, limits: ZsetLimits) -> Self {
        if size_hint <= limits.entries && len_hint <= limits.value {
            Self::new_listpack()
        } else {
            Self::new_skiplist()
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(v) => v.len,
            Repr::Skip(s) => s.list.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_skiplist(&self) -> bool {
        matches!(self.repr, Repr::Skip(_))
    }

    /// OBJECT ENCODING.
    pub fn encoding(&self) -> &'static str {
        if self.is_skiplist() {
            "skiplist"
        } else {
            "listpack"
        }
    }

    /// The bytes the value's allocations take (MEMORY USAGE): the packed
    /// buffer, or the skiplist's box, node arena and member index with
    /// each node's member and upper levels, the first `samples` nodes
    /// averaged over all (Redis's sampling).
    pub fn mem_usage(&self, samples: usize) -> usize {
        use super::memory::{btree_elem_cost_x10, extrapolate, size_class};
        match &self.repr {
            Repr::Pack(v) => size_class(v.buf.capacity()),
            Repr::Skip(s) => {
                let n = s.list.len;
                let fixed = size_class(std::mem::size_of::<SkipSet>())
                    + size_class(s.list.nodes.capacity() * std::mem::size_of::<Node>())
                    + size_class(s.list.free.capacity() * 4)
                    + size_class(s.list.nodes[0].up.len() * std::mem::size_of::<Level>())
                    + btree_elem_cost_x10(std::mem::size_of::<(u64, u32)>()) * n / 10;
                let (mut sum, mut x, mut k) = (0, s.list.nodes[0].l0.forward, 0);
                while x != NIL && k < samples {
                    let node = &s.list.nodes[x as usize];
                    sum += size_class(node.member.len())
                        + size_class(node.up.len() * std::mem::size_of::<Level>());
                    x = node.l0.forward;
                    k += 1;
                }
                fixed + extrapolate(sum, samples.min(n), n)
            }
        }
    }

    /// Allocations freeing the value takes (Redis's `lazyfreeGetFreeEffort`).
    pub fn free_effort(&self) -> usize {
        match &self.repr {
            Repr::Pack(_) => 1,
            Repr::Skip(s) => s.list.len,
        }
    }

    /// Total member bytes (for size estimates).
    pub fn member_bytes(&self) -> usize {
        self.iter_from(0, false).map(|(m, _)| m.len()).sum()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Pack(v) => v.find(member).map(|(.., sc)| sc),
            Repr::Skip(s) => s.score(member),
        }
    }

    /// Converts to the skiplist encoding (no-op if already there).
    pub fn convert_to_skiplist(&mut self) {
        if let Repr::Pack(v) = &mut self.repr {
            let mut s = SkipSet::default();
            for (_, _, m, sc) in v.entries() {
                s.insert(sc, Box::from(m));
            }
            self.repr = Repr::Skip(Box::new(s));
        }
    }

    /// Converts to the listpack encoding (only for freshly built sets, as
    /// Redis's `zsetConvertToListpackIfNeeded`).
    fn convert_to_listpack(&mut self) {
        if self.is_skiplist() {
            let mut v = Packed::default();
            for (m, s) in self.iter_from(0, false) {
                let e = entry(m, s + 0.0);
                v.buf.extend_from_slice(&e);
                v.len += 1;
            }
            self.repr = Repr::Pack(v);
        }
    }

    /// Redis's `zsetConvertToListpackIfNeeded` for a result set built in
    /// the skiplist encoding.
    pub fn shrink_if_small(&mut self, limits: ZsetLimits) {
        if self.len() <= limits.entries
            && self
                .iter_from(0, false)
                .all(|(m, _)| m.len() <= limits.value)
        {
            self.convert_to_listpack();
        }
    }

    /// Inserts a member known to be absent, converting to a skiplist first
    /// when the listpack limits would be exceeded (Redis's `zsetAdd`).
    pub fn insert_new(&mut self, member: Bytes, score: f64, limits: ZsetLimits) {
        if let Repr::Pack(v) = &self.repr {
            if v.len + 1 > limits.entries || member.len() > limits.value {
                self.convert_to_skiplist();
            }
        }
        self.insert_raw(member, score);
    }

    /// Inserts an absent member without any encoding decision.
    fn insert_raw(&mut self, member: Bytes, score: f64) {
        match &mut self.repr {
            Repr::Pack(v) => {
                // A listpack stores scores as text where -0 becomes "0".
                v.insert(&member, score + 0.0);
            }
            Repr::Skip(s) => {
                s.insert(score, Box::from(&member[..]));
            }
        }
    }

    /// Changes the score of a present member.
    pub fn update(&mut self, member: &[u8], old: f64, new: f64) {
        match &mut self.repr {
            Repr::Pack(v) => {
                if v.remove(member).is_some() {
                    v.insert(member, new + 0.0);
                }
            }
            Repr::Skip(s) => {
                if let Some((m, sc)) = s.remove(member) {
                    debug_assert_eq!(sc.to_bits(), old.to_bits());
                    s.insert(new, m);
                }
            }
        }
    }

    /// Sets a member's score, inserting it if absent (replay).
    pub fn set_score(&mut self, member: Bytes, score: f64, limits: ZsetLimits) {
        match self.score(&member) {
            Some(old) => self.update(&member, old, score),
            None => self.insert_new(member, score, limits),
        }
    }

    /// Removes a member, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Pack(v) => v.remove(member),
            Repr::Skip(s) => s.remove(member).map(|(_, sc)| sc),
        }
    }

    /// Removes the elements with ascending ranks `start..end`, returning them.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> Vec<(Bytes, f64)> {
        let end = end.min(self.len());
        if start >= end {
            return Vec::new();
        }
        match &mut self.repr {
            Repr::Pack(v) => v.remove_ranks(start, end),
            Repr::Skip(_) => {
                let gone: Vec<(Bytes, f64)> = self
                    .iter_from(start, false)
                    .take(end - start)
                    .map(|(m, s)| (Bytes::copy_from_slice(m), s))
                    .collect();
                for (m, _) in &gone {
                    self.remove(m);
                }
                gone
            }
        }
    }

    /// 0-based ascending rank of a member.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Pack(v) => v.find(member).map(|(r, ..)| r),
            Repr::Skip(s) => {
                let sc = s.score(member)?;
                s.list.rank(sc, member).map(|r| r - 1)
            }
        }
    }

    /// Number of leading elements (in ascending order) for which `pred`
    /// holds; `pred` must hold for a prefix of the order and fail after it.
    pub fn count_before(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Pack(v) => v.partition_point(pred),
            Repr::Skip(s) => s.list.count_while(pred),
        }
    }

    /// Elements from ascending rank `rank` on, ascending, or from that rank
    /// downwards when `rev`. Empty when `rank` is out of range.
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        match &self.repr {
            Repr::Pack(v) => {
                let (off, remaining) = match (rank < v.len, rev) {
                    (false, _) => (0, 0),
                    (true, false) => (v.offset_of(rank), v.len - rank),
                    (true, true) => (v.offset_of(rank + 1), rank + 1),
                };
                Iter::Pack {
                    v,
                    off,
                    remaining,
                    rev,
                }
            }
            Repr::Skip(s) => Iter::Skip {
                list: &s.list,
                node: if rank < s.list.len {
                    s.list.node_at_rank(rank + 1)
                } else {
                    NIL
                },
                rev,
            },
        }
    }

    /// The element at an ascending rank.
    pub fn at(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.iter_from(rank, false).next()
    }

    /// One ZSCAN step (see `ScanMap::scan`): a skiplist set is walked in
    /// member-index order from position `cursor`, calling `f` until it
    /// returns false; returns the next cursor, 0 at the end. The cursor
    /// never depends on scores, so a member present for the whole scan is
    /// returned even if its score changes. A listpack set is returned whole
    /// in rank order with cursor 0, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], f64) -> bool) -> u64 {
        match &self.repr {
            Repr::Pack(v) => {
                for (_, _, m, sc) in v.entries() {
                    f(m, sc);
                }
                0
            }
            Repr::Skip(s) => {
                scan_positions(s.index.range((cursor, 0)..).map(|&(h, i)| (h, i)), |i| {
                    let n = &s.list.nodes[i as usize];
                    f(&n.member[..], n.score)
                })
            }
        }
    }
}

/// Iterator over `(member, score)` in rank order (see `ZSet::iter_from`).
pub enum Iter<'a> {
    Pack {
        v: &'a Packed,
        /// Offset of the next entry (ascending) or of the end of the next
        /// entry (descending).
        off: usize,
        remaining: usize,
        rev: bool,
    },
    Skip {
        list: &'a SkipList,
        node: u32,
        rev: bool,
    },
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Pack {
                v,
                off,
                remaining,
                rev,
            } => {
                if *remaining == 0 {
                    return None;
                }
                *remaining -= 1;
                let v: &'a Packed = v;
                if *rev {
                    let (start, m, sc) = v.read_before(*off);
                    *off = start;
                    Some((m, sc))
                } else {
                    let (m, sc, next) = v.read_at(*off);
                    *off = next;
                    Some((m, sc))
                }
            }
            Iter::Skip { list, node, rev } => {
                if *node == NIL {
                    return None;
                }
                let n = &list.nodes[*node as usize];
                *node = if *rev { n.backward } else { n.lv(0).forward };
                Some((&n.member[..], n.score))
            }
        }
    }
}

// ---- the skiplist ----

/// "No node": index 0 is the header, which is never a link target.
const NIL: u32 = 0;

#[derive(Clone, Copy, Debug, Default)]
struct Level {
    forward: u32,
    /// Number of level-0 steps this link skips.
    span: u32,
}

#[derive(Clone, Debug)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    /// Previous node at level 0 (NIL for the first).
    backward: u32,
    /// Level 0, inline: three nodes in four have no other level.
    l0: Level,
    /// Levels 1 and up.
    up: Box<[Level]>,
}

impl Node {
    fn lv(&self, i: usize) -> Level {
        if i == 0 {
            self.l0
        } else {
            self.up[i - 1]
        }
    }

    fn lv_mut(&mut self, i: usize) -> &mut Level {
        if i == 0 {
            &mut self.l0
        } else {
            &mut self.up[i - 1]
        }
    }
}

/// Redis's `zskiplist` in an arena: `nodes[0]` is the header with
/// `MAX_LEVEL` levels; freed slots are reused through `free`.
#[derive(Clone, Debug)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    tail: u32,
    len: usize,
    level: usize,
    /// xorshift state for node levels.
    rng: u64,
}

impl Default for SkipList {
    fn default() -> Self {
        SkipList {
            nodes: vec![Node {
                member: Box::default(),
                score: 0.0,
                backward: NIL,
                l0: Level::default(),
                up: vec![Level::default(); MAX_LEVEL - 1].into_boxed_slice(),
            }],
            free: Vec::new(),
            tail: NIL,
            len: 0,
            level: 1,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

impl SkipList {
    /// Redis's `zslRandomLevel`: level k with probability (1/4)^(k-1).
    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if self.rng & 3 != 0 || level >= MAX_LEVEL {
                return level;
            }
            level += 1;
        }
    }

    fn lt(&self, idx: u32, score: f64, member: &[u8]) -> bool {
        let n = &self.nodes[idx as usize];
        cmp_elem(n.score, &n.member, score, member).is_lt()
    }

    /// Redis's `zslInsert`; the element must be absent. Returns its node.
    fn insert(&mut self, score: f64, member: Box<[u8]>) -> u32 {
        let mut update = [NIL; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = NIL;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let f = self.nodes[x as usize].lv(i).forward;
                if f != NIL && self.lt(f, score, &member) {
                    rank[i] += self.nodes[x as usize].lv(i).span;
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let level = self.random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = NIL;
                self.nodes[0].lv_mut(i).span = self.len as u32;
            }
            self.level = level;
        }
        let node = Node {
            member,
            score,
            backward: NIL,
            l0: Level::default(),
            up: vec![Level::default(); level - 1].into_boxed_slice(),
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..level {
            let u = update[i] as usize;
            let ul = self.nodes[u].lv(i);
            *self.nodes[idx as usize].lv_mut(i) = Level {
                forward: ul.forward,
                span: ul.span - (rank[0] - rank[i]),
            };
            *self.nodes[u].lv_mut(i) = Level {
                forward: idx,
                span: (rank[0] - rank[i]) + 1,
            };
        }
        for (i, u) in update.iter().enumerate().take(self.level).skip(level) {
            self.nodes[*u as usize].lv_mut(i).span += 1;
        }
        self.nodes[idx as usize].backward = update[0];
        let next = self.nodes[idx as usize].lv(0).forward;
        if next != NIL {
            self.nodes[next as usize].backward = idx;
        } else {
            self.tail = idx;
        }
        self.len += 1;
        idx
    }

    /// Redis's `zslDelete`: removes the element if present, returning its
    /// member bytes.
    fn delete(&mut self, score: f64, member: &[u8]) -> Option<Box<[u8]>> {
        let mut update = [NIL; MAX_LEVEL];
        let mut x = NIL;
        for i in (0..self.level).rev() {
            loop {
                let f = self.nodes[x as usize].lv(i).forward;
                if f != NIL && self.lt(f, score, member) {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let x = self.nodes[x as usize].lv(0).forward;
        if x == NIL {
            return None;
        }
        {
            let n = &self.nodes[x as usize];
            if n.score != score || &n.member[..] != member {
                return None;
            }
        }
        for (i, u) in update.iter().enumerate().take(self.level) {
            let u = *u as usize;
            if self.nodes[u].lv(i).forward == x {
                let xl = self.nodes[x as usize].lv(i);
                self.nodes[u].lv_mut(i).span += xl.span;
                self.nodes[u].lv_mut(i).span -= 1;
                self.nodes[u].lv_mut(i).forward = xl.forward;
            } else {
                self.nodes[u].lv_mut(i).span -= 1;
            }
        }
        let (next, back) = {
            let n = &self.nodes[x as usize];
            (n.lv(0).forward, n.backward)
        };
        if next != NIL {
            self.nodes[next as usize].backward = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.nodes[0].lv(self.level - 1).forward == NIL {
            self.level -= 1;
        }
        let n = &mut self.nodes[x as usize];
        let m = std::mem::take(&mut n.member);
        n.up = Box::default();
        self.free.push(x);
        self.len -= 1;
        Some(m)
    }

    /// 1-based rank of a present element (Redis's `zslGetRank`).
    fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let mut rank = 0usize;
        let mut x = NIL;
        for i in (0..self.level).rev() {
            loop {
                let f = self.nodes[x as usize].lv(i).forward;
                if f == NIL {
                    break;
                }
                let n = &self.nodes[f as usize];
                if cmp_elem(n.score, &n.member, score, member).is_le() {
                    rank += self.nodes[x as usize].lv(i).span as usize;
                    x = f;
                } else {
                    break;
                }
            }
            if x != NIL && &self.nodes[x as usize].member[..] == member {
                return Some(rank);
            }
        }
        None
    }

    /// Node at a 1-based rank (Redis's `zslGetElementByRank`).
    fn node_at_rank(&self, rank: usize) -> u32 {
        let mut traversed = 0usize;
        let mut x = NIL;
        for i in (0..self.level).rev() {
            loop {
                let l = self.nodes[x as usize].lv(i);
                if l.forward != NIL && traversed + l.span as usize <= rank {
                    traversed += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
            if traversed == rank {
                return x;
            }
        }
        NIL
    }

    /// Number of leading elements satisfying a prefix-monotone predicate.
    fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut traversed = 0usize;
        let mut x = NIL;
        for i in (0..self.level).rev() {
            loop {
                let l = self.nodes[x as usize].lv(i);
                if l.forward == NIL {
                    break;
                }
                let n = &self.nodes[l.forward as usize];
                if pred(n.score, &n.member) {
                    traversed += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
        }
        traversed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn packed_scores_round_trip_in_their_shortest_form() {
        let two53 = (1u64 << 53) as f64;
        let cases = [
            (0.0, 1),
            (-0.0, 1 + 8),
            (1.0, 1 + 1),
            (-1.0, 1 + 1),
            (127.0, 1 + 1),
            (128.0, 1 + 2),
            (100_000.0, 1 + 3),
            (two53 - 1.0, 1 + 7),
            (-(two53 - 1.0), 1 + 7),
            (two53, 1 + 8),
            (0.5, 1 + 8),
            (f64::INFINITY, 1 + 8),
            (f64::NEG_INFINITY, 1 + 8),
            (f64::MIN_POSITIVE, 1 + 8),
            (-1e300, 1 + 8),
        ];
        for (score, len) in cases {
            let e = entry(b"m", score);
            assert_eq!(e.len(), len + 2, "{score}");
            let p = Packed { buf: e, len: 1 };
            let (m, sc, next) = p.read_at(0);
            assert_eq!(
                (m, sc.to_bits(), next),
                (&b"m"[..], score.to_bits(), p.buf.len())
            );
            let (start, m, sc) = p.read_before(p.buf.len());
            assert_eq!((start, m, sc.to_bits()), (0, &b"m"[..], score.to_bits()));
        }
        // A long member: the head takes two bytes each side.
        let long = vec![b'x'; 300];
        let e = entry(&long, 7.25);
        assert_eq!(e.len(), 300 + 8 + 2 * 2);
        let p = Packed { buf: e, len: 1 };
        assert_eq!(p.read_before(p.buf.len()).2, 7.25);
    }

    /// Random operations on both encodings against a sorted Vec model.
    #[test]
    fn both_encodings_match_a_sorted_vec() {
        let mut rng = 12345u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut pack = ZSet::new_listpack();
        let mut skip = ZSet::new_skiplist();
        let mut model: Vec<(f64, Bytes)> = Vec::new();
        let big = ZsetLimits {
            entries: usize::MAX,
            value: usize::MAX,
        };
        for step in 0..4000 {
            let m = b(&format!("m{}", next() % 300));
            let s = (next() % 50) as f64 - 25.0;
            match next() % 3 {
                0 | 1 => {
                    pack.set_score(m.clone(), s, big);
                    skip.set_score(m.clone(), s, big);
                    model.retain(|(_, x)| *x != m);
                    model.push((s, m));
                }
                _ => {
                    let a = pack.remove(&m);
                    assert_eq!(a, skip.remove(&m));
                    let had = model.iter().any(|(_, x)| *x == m);
                    assert_eq!(a.is_some(), had);
                    model.retain(|(_, x)| *x != m);
                }
            }
            model.sort_by(|a, b| cmp_elem(a.0, &a.1, b.0, &b.1));
            if step % 97 == 0 {
                for z in [&pack, &skip] {
                    assert_eq!(z.len(), model.len());
                    let got: Vec<(f64, Bytes)> = z
                        .iter_from(0, false)
                        .map(|(m, s)| (s, Bytes::copy_from_slice(m)))
                        .collect();
                    assert_eq!(got, model);
                    let rev: Vec<(f64, Bytes)> = z
                        .iter_from(model.len().saturating_sub(1), true)
                        .map(|(m, s)| (s, Bytes::copy_from_slice(m)))
                        .collect();
                    let mut mr = model.clone();
                    mr.reverse();
                    assert_eq!(rev, mr);
                    for (i, (s, m)) in model.iter().enumerate() {
                        assert_eq!(z.rank(m), Some(i));
                        assert_eq!(
                            z.at(i).map(|(m, s)| (s, Bytes::copy_from_slice(m))),
                            Some((*s, m.clone()))
                        );
                    }
                    for i in (0..model.len()).step_by(7) {
                        let down: Vec<(f64, Bytes)> = z
                            .iter_from(i, true)
                            .map(|(m, s)| (s, Bytes::copy_from_slice(m)))
                            .collect();
                        let want: Vec<(f64, Bytes)> = model[..=i].iter().rev().cloned().collect();
                        assert_eq!(down, want);
                    }
                    for bound in -26..26 {
                        let bound = bound as f64;
                        let want = model.iter().filter(|(s, _)| *s < bound).count();
                        assert_eq!(z.count_before(|s, _| s < bound), want);
                    }
                }
            }
        }
        let (mut p2, mut s2) = (pack.clone(), skip.clone());
        assert_eq!(p2.remove_ranks(2, 5), s2.remove_ranks(2, 5));
        assert_eq!(p2.len(), pack.len() - 3);
        assert!(p2.iter_from(0, false).eq(s2.iter_from(0, false)));
    }

    #[test]
    fn converts_past_the_limits_and_shrinks_results() {
        let limits = ZsetLimits {
            entries: 3,
            value: 4,
        };
        let mut z = ZSet::for_first_member(1, limits);
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            z.insert_new(b(m), i as f64, limits);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(b("d"), 9.0, limits);
        assert_eq!(z.encoding(), "skiplist");
        z.remove(b"d");
        assert_eq!(z.encoding(), "skiplist", "never converts back by itself");
        z.shrink_if_small(limits);
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(b("toolong"), 1.0, limits);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(ZSet::for_first_member(5, limits).encoding(), "skiplist");
    }
}
