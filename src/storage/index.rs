//! The sparse index of one segment: key -> byte position in the `.log` file.
//!
//! ```text
//! index file  = file_header index_entry*          (file_header as in record.rs, magic "RDLGIDX\0")
//! index_entry = { u128 key | u64 position }       (24 bytes, little-endian)
//!               position = offset in the segment's .log file of the record with that key
//! ```
//! Rule (deterministic, so a rebuilt index is byte-identical): an entry is
//! written for the first record of a segment and for every record starting
//! `INDEX_INTERVAL_BYTES` or more after the previous entry's position. Hence a
//! lookup binary-searches the last entry with key <= k and scans forward at
//! most `INDEX_INTERVAL_BYTES` plus one record.
//!
//! The index is derived data: it is never fsynced per append, it is checked
//! against the log on open and rebuilt from the log when missing or
//! inconsistent. Sealed indexes are memory-mapped read-only; an index file
//! that may be mapped is never modified in place (replaced by rename).

use super::record::{decode_file_header, encode_file_header, FILE_HEADER_BYTES, INDEX_MAGIC};

/// Log bytes between two index entries: Kafka's default
/// `index.interval.bytes`; bounds the forward scan of a lookup to ~4 KiB (one
/// page) while keeping the index at 24 bytes per 4 KiB of log (0.6%).
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Size of one index entry on disk, bytes.
pub const INDEX_ENTRY_BYTES: u64 = 24;

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub key: u128,
    pub pos: u64,
}

/// Whether a record at `pos` gets an index entry, given the last entry.
pub fn wants_entry(last: Option<&IndexEntry>, pos: u64) -> bool {
    last.is_none_or(|l| pos - l.pos >= INDEX_INTERVAL_BYTES)
}

/// `index_entry = { u128 key | u64 position }`.
pub fn encode_entry(out: &mut Vec<u8>, e: IndexEntry) {
    out.extend_from_slice(&e.key.to_le_bytes());
    out.extend_from_slice(&e.pos.to_le_bytes());
}

fn decode_entry(b: &[u8]) -> IndexEntry {
    let mut k = [0u8; 16];
    k.copy_from_slice(&b[0..16]);
    let mut p = [0u8; 8];
    p.copy_from_slice(&b[16..24]);
    IndexEntry {
        key: u128::from_le_bytes(k),
        pos: u64::from_le_bytes(p),
    }
}

/// A whole index file (header + entries) for `base`.
pub fn encode_index(base: u128, entries: &[IndexEntry]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(FILE_HEADER_BYTES as usize + entries.len() * INDEX_ENTRY_BYTES as usize);
    out.extend_from_slice(&encode_file_header(INDEX_MAGIC, base));
    for e in entries {
        encode_entry(&mut out, *e);
    }
    out
}

/// Bytes of an index file, mapped or read.
#[derive(Debug)]
pub enum IndexData {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl IndexData {
    fn bytes(&self) -> &[u8] {
        match self {
            IndexData::Mapped(m) => m,
            IndexData::Owned(v) => v,
        }
    }

    /// Number of entries (the caller validated the shape).
    pub fn len(&self) -> usize {
        (self
            .bytes()
            .len()
            .saturating_sub(FILE_HEADER_BYTES as usize))
            / INDEX_ENTRY_BYTES as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> IndexEntry {
        let at = FILE_HEADER_BYTES as usize + i * INDEX_ENTRY_BYTES as usize;
        decode_entry(&self.bytes()[at..at + INDEX_ENTRY_BYTES as usize])
    }

    /// Index of the last entry with key <= `key`.
    pub fn lookup(&self, key: u128) -> Option<usize> {
        lookup_by(self.len(), |i| self.get(i).key, key)
    }

    /// Checks the shape of an index for a segment with `base` whose log is
    /// `log_len` bytes: header, size, strictly increasing keys and positions,
    /// first entry = first record, last entry inside the log.
    pub fn validate(&self, base: u128, log_len: u64) -> Result<(), &'static str> {
        validate_bytes(self.bytes(), base, log_len).map(|_| ())
    }
}

/// Index of the last `i < n` with `key_at(i) <= key` (keys strictly increase).
pub fn lookup_by(n: usize, key_at: impl Fn(usize) -> u128, key: u128) -> Option<usize> {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key_at(mid) <= key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

/// Validates index bytes (see [`IndexData::validate`]) and returns the entry count.
pub fn validate_bytes(b: &[u8], base: u128, log_len: u64) -> Result<usize, &'static str> {
    let file_base = decode_file_header(b, INDEX_MAGIC)?;
    if file_base != base {
        return Err("index base key differs from file name");
    }
    let body = &b[FILE_HEADER_BYTES as usize..];
    if !body.len().is_multiple_of(INDEX_ENTRY_BYTES as usize) {
        return Err("index size is not a whole number of entries");
    }
    let mut prev: Option<IndexEntry> = None;
    for chunk in body.chunks_exact(INDEX_ENTRY_BYTES as usize) {
        let e = decode_entry(chunk);
        match prev {
            None if e.pos != FILE_HEADER_BYTES || e.key != base => {
                return Err("first index entry is not the first record")
            }
            Some(p) if e.key <= p.key || e.pos <= p.pos => {
                return Err("index entries out of order")
            }
            _ => {}
        }
        if e.pos >= log_len {
            return Err("index entry past end of log");
        }
        prev = Some(e);
    }
    Ok(body.len() / INDEX_ENTRY_BYTES as usize)
}

/// Entries of index bytes for `base`, keeping the longest prefix that is
/// well-formed and inside a log of `log_len` bytes (used for the newest
/// segment, whose index may have a torn tail like its log).
pub fn valid_prefix(b: &[u8], base: u128, log_len: u64) -> Vec<IndexEntry> {
    let mut out: Vec<IndexEntry> = Vec::new();
    if decode_file_header(b, INDEX_MAGIC) != Ok(base) {
        return out;
    }
    for chunk in b[FILE_HEADER_BYTES as usize..].chunks_exact(INDEX_ENTRY_BYTES as usize) {
        let e = decode_entry(chunk);
        let ok = match out.last() {
            None => e.pos == FILE_HEADER_BYTES && e.key == base,
            Some(p) => e.key > p.key && e.pos > p.pos,
        };
        if !ok || e.pos >= log_len {
            break;
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_validate_lookup() {
        let entries = [
            IndexEntry { key: 10, pos: 32 },
            IndexEntry { key: 20, pos: 5000 },
            IndexEntry { key: 30, pos: 9000 },
        ];
        let b = encode_index(10, &entries);
        assert_eq!(validate_bytes(&b, 10, 10_000), Ok(3));
        assert!(validate_bytes(&b, 11, 10_000).is_err());
        assert!(validate_bytes(&b, 10, 9000).is_err());
        assert!(validate_bytes(&b[..b.len() - 1], 10, 10_000).is_err());
        let d = IndexData::Owned(b.clone());
        assert_eq!(d.lookup(9), None);
        assert_eq!(d.lookup(10), Some(0));
        assert_eq!(d.lookup(25), Some(1));
        assert_eq!(d.lookup(u128::MAX), Some(2));
        assert_eq!(valid_prefix(&b, 10, 9000), entries[..2].to_vec());
    }
}
