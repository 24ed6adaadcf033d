//! Hash values (Redis's t_hash.c data structure side): a compact
//! insertion-ordered pair list for small hashes, a table for large ones.
//!
//! Redis keeps a small hash as a listpack: field/value pairs in insertion
//! order (an update keeps the pair's place), searched linearly. It converts
//! it to a hashtable, for good, once it holds more than
//! `hash-max-listpack-entries` pairs or a field or value longer than
//! `hash-max-listpack-value` bytes. HGETALL, HKEYS, HSCAN ... on a small hash
//! therefore reply in insertion order, which clients see and tests rely on;
//! `Listpack` reproduces that order exactly.
//!
//! The large form is a `PairTable`: one allocation per pair holding the
//! field and the value, in a B-tree ordered by `(hash(field), field)`
//! (24 bytes a pair in the tree). That order gives HSCAN a plain integer
//! cursor with Redis's guarantee (a field present for the whole scan is
//! returned, however the hash grows or shrinks between calls; the
//! `ScanMap` scheme) and HRANDFIELD a cheap random pick. Lookups are
//! O(log n).

use super::scanmap::{key_pos, scan_positions};
use super::varint::{put_varint, read_varint, varint_len};
use bytes::Bytes;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;

/// The size limits of the compact encoding (Redis's
/// `hash-max-listpack-entries` / `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl HashLimits {
    /// No conversion by size: replay, where conversions are explicit.
    pub const NONE: HashLimits = HashLimits {
        max_entries: usize::MAX,
        max_value: usize::MAX,
    };
}

/// A hash value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hash {
    /// Redis's listpack: pairs in insertion order, packed in one buffer.
    Listpack(PairList),
    /// Redis's hashtable, keyed by `(hash(field), field)`.
    Table(PairTable),
}

/// One pair of the table: `varint field_len | field | value` in one
/// allocation, with the field's hash.
#[derive(Clone)]
struct Pair {
    h: u64,
    p: Box<[u8]>,
}

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut p = Vec::with_capacity(5 + field.len() + value.len());
        let mut n = field.len();
        while n >= 0x80 {
            p.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        p.push(n as u8);
        p.extend_from_slice(field);
        p.extend_from_slice(value);
        Pair {
            h: key_pos(field),
            p: p.into_boxed_slice(),
        }
    }

    /// (start of the field, field length).
    fn field_at(&self) -> (usize, usize) {
        let (mut n, mut shift, mut i) = (0usize, 0u32, 0usize);
        loop {
            let b = self.p[i];
            i += 1;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return (i, n);
            }
            shift += 7;
        }
    }

    fn field(&self) -> &[u8] {
        let (at, n) = self.field_at();
        &self.p[at..at + n]
    }

    fn value(&self) -> &[u8] {
        let (at, n) = self.field_at();
        &self.p[at + n..]
    }
}

/// The order of the table: `(hash(field), field)`, for stored pairs and
/// for lookup probes alike (so lookups need no allocation).
trait FieldKey {
    fn key(&self) -> (u64, &[u8]);
}

impl FieldKey for Pair {
    fn key(&self) -> (u64, &[u8]) {
        (self.h, self.field())
    }
}

/// A lookup key: (hash, field).
struct Probe<'a>(u64, &'a [u8]);

impl FieldKey for Probe<'_> {
    fn key(&self) -> (u64, &[u8]) {
        (self.0, self.1)
    }
}

impl PartialEq for dyn FieldKey + '_ {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for dyn FieldKey + '_ {}
impl PartialOrd for dyn FieldKey + '_ {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for dyn FieldKey + '_ {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}
impl PartialEq for Pair {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pair {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}
impl<'a> Borrow<dyn FieldKey + 'a> for Pair {
    fn borrow(&self) -> &(dyn FieldKey + 'a) {
        self
    }
}

/// The table form of a hash.
#[derive(Clone, Default)]
pub struct PairTable(BTreeSet<Pair>);

impl PartialEq for PairTable {
    fn eq(&self, o: &Self) -> bool {
        self.len() == o.len() && self.iter().eq(o.iter())
    }
}
impl Eq for PairTable {}

impl std::fmt::Debug for PairTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl PairTable {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        let probe = Probe(key_pos(field), field);
        self.0.get(&probe as &dyn FieldKey).map(|p| p.value())
    }

    /// Sets a field; true when it is new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.0.replace(Pair::new(field, value)).is_none()
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        let probe = Probe(key_pos(field), field);
        self.0.remove(&probe as &dyn FieldKey)
    }

    /// Pairs from hash position `pos` on.
    fn at_or_after(&self, pos: u64) -> impl Iterator<Item = &Pair> {
        let probe = Probe(pos, b"");
        self.0
            .range::<dyn FieldKey, _>((Bound::Included(&probe as &dyn FieldKey), Bound::Unbounded))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|p| (p.field(), p.value()))
    }

    /// A pair picked from the random number `r`.
    pub fn random(&self, r: u64) -> Option<(&[u8], &[u8])> {
        self.at_or_after(r)
            .next()
            .or_else(|| self.0.first())
            .map(|p| (p.field(), p.value()))
    }

    /// One scan step (`scanmap::scan_positions`).
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], &'a [u8]) -> bool) -> u64 {
        scan_positions(self.at_or_after(cursor).map(|p| (p.h, p)), |p| {
            f(p.field(), p.value())
        })
    }
}

/// The compact form: `varint flen | field | varint vlen | value` per pair,
/// in insertion order, in one buffer (as a listpack: a few bytes of
/// framing per pair instead of two allocations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairList {
    buf: Vec<u8>,
    len: usize,
}

fn put_pair(out: &mut Vec<u8>, field: &[u8], value: &[u8]) {
    put_varint(out, field.len());
    out.extend_from_slice(field);
    put_varint(out, value.len());
    out.extend_from_slice(value);
}

impl PairList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every pair with its byte range: (start, end, field, value).
    fn entries(&self) -> impl Iterator<Item = (usize, usize, &[u8], &[u8])> {
        let mut off = 0;
        (0..self.len).map(move |_| {
            let start = off;
            let (fl, f) = read_varint(&self.buf, off);
            let (vl, v) = read_varint(&self.buf, f + fl);
            off = v + vl;
            (start, off, &self.buf[f..f + fl], &self.buf[v..v + vl])
        })
    }

    fn find(&self, field: &[u8]) -> Option<(usize, usize, &[u8])> {
        self.entries()
            .find(|(_, _, f, _)| *f == field)
            .map(|(s, e, _, v)| (s, e, v))
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field).map(|(_, _, v)| v)
    }

    /// Sets a field in place or appends it; true when it is new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field).map(|(s, e, _)| (s, e)) {
            Some((s, e)) => {
                let mut p = Vec::with_capacity(10 + field.len() + value.len());
                put_pair(&mut p, field, value);
                // Exact sizes, as a listpack's realloc: no growth slack.
                self.buf.reserve_exact(p.len().saturating_sub(e - s));
                self.buf.splice(s..e, p);
                false
            }
            None => {
                self.buf.reserve_exact(
                    2 * varint_len(field.len().max(value.len())) + field.len() + value.len(),
                );
                put_pair(&mut self.buf, field, value);
                self.len += 1;
                true
            }
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field).map(|(s, e, _)| (s, e)) {
            Some((s, e)) => {
                self.buf.drain(s..e);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries().map(|(_, _, f, v)| (f, v))
    }
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Listpack(PairList::default())
    }
}

/// Copies client bytes into their own allocation: request arguments are
/// slices of the whole request frame, which a stored element must not pin.
pub fn own(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(v) => v.len(),
            Hash::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Listpack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    pub fn is_table(&self) -> bool {
        matches!(self, Hash::Table(_))
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Listpack(v) => v.get(field),
            Hash::Table(t) => t.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to the table form (Redis's `hashTypeConvert`); no-op when
    /// already converted.
    pub fn convert_to_table(&mut self) {
        if let Hash::Listpack(v) = self {
            let mut t = PairTable::default();
            for (f, val) in v.iter() {
                t.set(f, val);
            }
            *self = Hash::Table(t);
        }
    }

    /// Redis's `hashTypeTryConversion`: converts when any of the arguments
    /// about to be stored is longer than the compact encoding allows.
    pub fn convert_for_args<'a>(
        &mut self,
        args: impl IntoIterator<Item = &'a [u8]>,
        lim: HashLimits,
    ) {
        if self.is_table() {
            return;
        }
        if args.into_iter().any(|a| a.len() > lim.max_value) {
            self.convert_to_table();
        }
    }

    /// Sets a field (Redis's `hashTypeSet`); returns true when the field is
    /// new. Converts first when the field or value is too long for the
    /// compact form, and after when the hash grew past its entry limit.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: HashLimits) -> bool {
        if !self.is_table() && (field.len() > lim.max_value || value.len() > lim.max_value) {
            self.convert_to_table();
        }
        match self {
            Hash::Listpack(v) => {
                if !v.set(field, value) {
                    return false;
                }
                if v.len() > lim.max_entries {
                    self.convert_to_table();
                }
                true
            }
            Hash::Table(t) => t.set(field, value),
        }
    }

    /// Deletes a field; returns whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Listpack(v) => v.remove(field),
            Hash::Table(t) => t.remove(field),
        }
    }

    /// Every pair, in the encoding's order (insertion order when compact).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Listpack(v) => Box::new(v.iter()),
            Hash::Table(t) => Box::new(t.iter()),
        }
    }

    /// A pair picked from the random number `r`.
    pub fn random_pair(&self, r: u64) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Listpack(v) => {
                if v.is_empty() {
                    return None;
                }
                v.iter().nth((r % v.len() as u64) as usize)
            }
            Hash::Table(t) => t.random(r),
        }
    }

    /// One HSCAN step over the table form: visits pairs from hash position
    /// `cursor` on, calling `f` until it returns false (pairs sharing a
    /// hash are visited together); returns the next cursor, 0 at the end.
    /// The compact form is returned whole with cursor 0, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], &'a [u8]) -> bool) -> u64 {
        match self {
            Hash::Listpack(v) => {
                for (k, val) in v.iter() {
                    f(k, val);
                }
                0
            }
            Hash::Table(t) => t.scan(cursor, f),
        }
    }

    /// The bytes the value's allocations take (MEMORY USAGE): the packed
    /// buffer of the compact form; for the table, each pair's allocation
    /// and its share of the tree, the first `samples` pairs averaged over
    /// all of them (Redis's sampling).
    pub fn mem_usage(&self, samples: usize) -> usize {
        use super::memory::{btree_elem_cost_x10, extrapolate, size_class};
        match self {
            Hash::Listpack(v) => size_class(v.buf.capacity()),
            Hash::Table(t) => {
                let tree = btree_elem_cost_x10(std::mem::size_of::<Pair>()) * t.len() / 10;
                let sum: usize =
                    t.0.iter()
                        .take(samples)
                        .map(|p| size_class(p.p.len()))
                        .sum();
                tree + extrapolate(sum, samples.min(t.len()), t.len())
            }
        }
    }

    /// Allocations freeing the value takes (Redis's `lazyfreeGetFreeEffort`).
    pub fn free_effort(&self) -> usize {
        match self {
            Hash::Listpack(_) => 1,
            Hash::Table(t) => t.len(),
        }
    }

    /// Payload bytes (fields and values), for chunk sizing.
    pub fn payload_bytes(&self) -> usize {
        self.iter().map(|(f, v)| f.len() + v.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: HashLimits = HashLimits {
        max_entries: 3,
        max_value: 4,
    };

    #[test]
    fn compact_keeps_insertion_order_and_converts_by_limits() {
        let mut h = Hash::default();
        assert!(h.set(b"b", b"1", LIM));
        assert!(h.set(b"a", b"2", LIM));
        assert!(!h.set(b"b", b"3", LIM));
        let pairs: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(
            pairs,
            vec![
                (b"b".to_vec(), b"3".to_vec()),
                (b"a".to_vec(), b"2".to_vec())
            ]
        );
        assert_eq!(h.encoding(), "listpack");
        h.set(b"c", b"x", LIM);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"d", b"x", LIM);
        assert_eq!(h.encoding(), "hashtable", "more than max_entries");
        assert_eq!(h.get(b"b").map(|v| v.to_vec()), Some(b"3".to_vec()));
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert_eq!(h.len(), 3);
        let mut long = Hash::default();
        long.set(b"f", b"12345", LIM);
        assert_eq!(long.encoding(), "hashtable", "value longer than max_value");
    }

    #[test]
    fn table_scan_visits_every_stable_field() {
        let mut h = Hash::default();
        for i in 0..200 {
            h.set(format!("f{i}").as_bytes(), b"v", HashLimits::NONE);
        }
        h.convert_to_table();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let mut n = 0;
            cursor = h.scan(cursor, |f, _| {
                seen.insert(Bytes::copy_from_slice(f));
                n += 1;
                n < 7
            });
            // Churn between calls: add and remove other fields.
            round += 1;
            h.set(format!("new{round}").as_bytes(), b"v", HashLimits::NONE);
            h.remove(format!("new{}", round - 1).as_bytes());
            if cursor == 0 {
                break;
            }
        }
        for i in 0..200 {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
    }

    #[test]
    fn pair_table_keeps_fields_and_values_apart() {
        let mut t = PairTable::default();
        let long = vec![0xffu8; 300];
        assert!(t.set(b"", b""));
        assert!(t.set(&long, b"\x00v"));
        assert!(t.set(b"f", &long));
        assert!(!t.set(b"f", b"short"), "an update is not new");
        assert_eq!(t.get(b""), Some(&b""[..]));
        assert_eq!(t.get(&long), Some(&b"\x00v"[..]));
        assert_eq!(t.get(b"f"), Some(&b"short"[..]));
        assert_eq!(t.get(b"g"), None);
        assert_eq!(t.len(), 3);
        assert!(t.remove(&long) && !t.remove(&long));
        let mut all: Vec<_> = t.iter().collect();
        all.sort();
        assert_eq!(all, vec![(&b""[..], &b""[..]), (&b"f"[..], &b"short"[..])]);
        assert!(t.random(0).is_some() && t.random(u64::MAX).is_some());
    }

    #[test]
    fn pair_list_updates_in_place_and_keeps_order() {
        let mut l = PairList::default();
        let long = vec![7u8; 200];
        assert!(l.set(b"a", b"1"));
        assert!(l.set(&long, b""));
        assert!(l.set(b"", &long));
        assert!(!l.set(&long, b"x"), "an update keeps the pair's place");
        assert!(!l.set(b"a", &long));
        let got: Vec<_> = l.iter().collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], &long[..]),
                (&long[..], &b"x"[..]),
                (&b""[..], &long[..])
            ]
        );
        assert!(l.remove(&long) && !l.remove(&long));
        assert_eq!(l.len(), 2);
        assert_eq!(l.get(b""), Some(&long[..]));
        assert_eq!(l.get(b"b"), None);
    }
}
