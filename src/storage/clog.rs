//! Compressed sealed segments (`<stem>.clog`): the records of one sealed
//! segment as template-compressed blocks (`logblock`), written by the
//! background compression of streams LOGPARSE INGEST writes
//! (`log::compact`) and read block by block.
//!
//! ```text
//! clog file = file_header block* index footer
//!   file_header = as record.rs, magic "RDLGCLG\0", the segment's base key
//!   block       = a logblock block (its own magic, CRC32C, lengths)
//!   index       = zstd(index_entry*)   (one per block, in file order)
//!   index_entry = { u128 first key | u128 last key | u64 block offset |
//!                   u32 block bytes | u32 records | u32 summary bytes | summary }
//!   summary     = u32 fields, per field: u32 name length, name,
//!                 u32 values, per value: u32 length, value
//!                 (the distinct values of each field having at most
//!                 SUMMARY_VALUES_MAX of them in the block; a field not
//!                 listed may hold anything)
//!   footer      = { u64 index offset | u32 blocks | u32 CRC32C of index |
//!                   u32 index bytes before zstd | u64 records | "RDLGCEND" }
//!                 (36 bytes)
//! ```
//! All integers little-endian. Blocks are contiguous from offset 32; the
//! first block's first key is the base key; keys strictly increase.
//! Opening checks header, footer, index CRC and the index's shape; a block's
//! CRC, decoding and keys are checked when it is read (reads and `redlog
//! check`), so damage is `Error::Corruption` naming the file and offset.

use super::bytes::Reader;
use super::error::{Error, Result};
use super::fs::{read_full_at, Fs, OpenMode, StorageFile};
use super::logblock;
use super::record::{decode_file_header, encode_file_header, Record, FILE_HEADER_BYTES};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Magic of a compressed segment's file header.
pub const CLOG_MAGIC: [u8; 8] = *b"RDLGCLG\0";
/// Magic ending a compressed segment (last 8 bytes of the footer).
pub const CLOG_END_MAGIC: &[u8; 8] = b"RDLGCEND";
/// Extension of compressed segment files.
pub const CLOG_EXT: &str = "clog";
/// Bytes of the footer.
pub const FOOTER_BYTES: u64 = 36;
/// A field's values go into a block summary while it has at most this many
/// distinct values in the block.
pub const SUMMARY_VALUES_MAX: usize = 64;
/// Largest index a file may declare, compressed or not (bounds the
/// allocation on open).
const INDEX_BYTES_MAX: u64 = 64 << 20;

/// One block as the index describes it.
#[derive(Debug, Clone)]
pub struct BlockMeta {
    pub first: u128,
    pub last: u128,
    pub offset: u64,
    pub bytes: u32,
    pub records: u32,
    /// Field name -> the block's distinct values of it.
    pub summary: HashMap<Vec<u8>, HashSet<Vec<u8>>>,
}

/// Which entries a reader wants: every condition must hold (a field equal to
/// one of the values; `fold`: ASCII case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct BlockFilter {
    pub conds: Vec<(Vec<u8>, Vec<u8>, bool)>,
}

impl BlockMeta {
    /// Whether the block may hold an entry matching `f` (false only when
    /// the summary proves none does).
    pub fn may_match(&self, f: &BlockFilter) -> bool {
        f.conds
            .iter()
            .all(|(name, want, fold)| match self.summary.get(name) {
                None => true,
                Some(vals) if *fold => vals.iter().any(|v| v.eq_ignore_ascii_case(want)),
                Some(vals) => vals.contains(want),
            })
    }
}

/// An open compressed segment.
#[derive(Debug)]
pub struct Clog {
    pub base: u128,
    pub path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    pub len: u64,
    pub blocks: Vec<BlockMeta>,
    pub records: u64,
    /// The last block decoded (readers of neighbouring keys share it).
    cache: Mutex<Option<(usize, Arc<Vec<Record>>)>>,
    /// Blocks decoded (cache misses), for stats and tests.
    pub decoded: AtomicU64,
}

/// Path of the compressed segment `base` in `dir`.
pub fn clog_path(dir: &Path, base: u128) -> PathBuf {
    dir.join(format!("{}.{CLOG_EXT}", super::segment::segment_stem(base)))
}

/// Bases of the compressed segments in `dir`.
pub fn list_clogs(fs: &dyn Fs, dir: &Path) -> Result<std::collections::BTreeSet<u128>> {
    Ok(fs
        .list_dir(dir)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| match super::segment::parse_segment_name(&e.name) {
            Some((b, CLOG_EXT)) => Some(b),
            _ => None,
        })
        .collect())
}

/// Checks a whole compressed segment as `redlog check` does: header,
/// footer, index, then every block (CRC, decoding, keys against the index).
/// Returns (records, last key) or the first damage (offset, reason) with
/// the records of the blocks before it.
pub fn verify(
    fs: &dyn Fs,
    path: &Path,
    base: u128,
) -> std::result::Result<(u64, u128), (u64, String, u64)> {
    let why = |e: Error| match e {
        Error::Corruption { offset, reason, .. } => (offset, reason),
        e => (0, e.to_string()),
    };
    let c = Clog::open(fs, path, base).map_err(|e| {
        let (o, r) = why(e);
        (o, r, 0)
    })?;
    let mut n = 0u64;
    for i in 0..c.blocks.len() {
        if let Err(e) = c.decode_block(i) {
            let (o, r) = why(e);
            return Err((o, r, n));
        }
        n += u64::from(c.blocks[i].records);
    }
    Ok((n, c.last_key()))
}

fn corrupt(path: &Path, offset: u64, why: impl Into<String>) -> Error {
    Error::corruption(path, offset, why)
}

impl Clog {
    /// Opens and checks header, footer and index of `path`.
    pub fn open(fs: &dyn Fs, path: &Path, base: u128) -> Result<Clog> {
        let file = fs.open(path, OpenMode::Read)?;
        Self::from_file(file, path, base)
    }

    pub fn from_file(file: Arc<dyn StorageFile>, path: &Path, base: u128) -> Result<Clog> {
        let len = file.size()?;
        if len < FILE_HEADER_BYTES + FOOTER_BYTES {
            return Err(corrupt(
                path,
                0,
                "compressed segment shorter than header and footer",
            ));
        }
        let mut h = [0u8; FILE_HEADER_BYTES as usize];
        read_full_at(&*file, &mut h, 0)?;
        match decode_file_header(&h, CLOG_MAGIC) {
            Ok(b) if b == base => {}
            Ok(_) => return Err(corrupt(path, 16, "header base key differs from file name")),
            Err(why) => return Err(corrupt(path, 0, why)),
        }
        let foot_at = len - FOOTER_BYTES;
        let mut f = [0u8; FOOTER_BYTES as usize];
        if read_full_at(&*file, &mut f, foot_at)? < f.len() {
            return Err(corrupt(path, foot_at, "footer truncated"));
        }
        if &f[28..36] != CLOG_END_MAGIC {
            return Err(corrupt(path, foot_at, "bad footer magic"));
        }
        let mut r = Reader::new(&f);
        let bad_footer = |_| corrupt(path, foot_at, "footer truncated");
        let index_at = r.u64().map_err(bad_footer)?;
        let nblocks = r.u32().map_err(bad_footer)?;
        let crc = r.u32().map_err(bad_footer)?;
        let raw_len = r.u32().map_err(bad_footer)?;
        let records = r.u64().map_err(bad_footer)?;
        if u64::from(raw_len) > INDEX_BYTES_MAX {
            return Err(corrupt(path, foot_at, "index too large"));
        }
        if index_at < FILE_HEADER_BYTES
            || index_at > foot_at
            || foot_at - index_at > INDEX_BYTES_MAX
        {
            return Err(corrupt(path, foot_at, "index offset out of the file"));
        }
        let mut ib = vec![0u8; (foot_at - index_at) as usize];
        if read_full_at(&*file, &mut ib, index_at)? < ib.len() {
            return Err(corrupt(path, index_at, "index truncated"));
        }
        if crc32c::crc32c(&ib) != crc {
            return Err(corrupt(path, index_at, "index CRC mismatch"));
        }
        let ib = zstd::bulk::decompress(&ib, raw_len as usize)
            .ok()
            .filter(|b| b.len() == raw_len as usize)
            .ok_or_else(|| corrupt(path, index_at, "index does not decompress"))?;
        let blocks = parse_index(&ib, nblocks).map_err(|why| corrupt(path, index_at, why))?;
        check_shape(&blocks, base, index_at, records)
            .map_err(|why| corrupt(path, index_at, why))?;
        Ok(Clog {
            base,
            path: path.to_path_buf(),
            file,
            len,
            blocks,
            records,
            cache: Mutex::new(None),
            decoded: AtomicU64::new(0),
        })
    }

    pub fn last_key(&self) -> u128 {
        self.blocks.last().map_or(self.base, |b| b.last)
    }

    /// The first block holding keys >= `key` (its last key >= `key`).
    pub fn block_from(&self, key: u128) -> Option<usize> {
        let i = self.blocks.partition_point(|b| b.last < key);
        (i < self.blocks.len()).then_some(i)
    }

    /// The last block holding keys <= `key` (its first key <= `key`).
    pub fn block_upto(&self, key: u128) -> Option<usize> {
        self.blocks
            .partition_point(|b| b.first <= key)
            .checked_sub(1)
    }

    /// Block `i`'s records, decoded and checked against the index (CRC,
    /// count, first and last key, order).
    pub fn read_block(&self, i: usize) -> Result<Arc<Vec<Record>>> {
        if let Some((j, recs)) = &*self.cache.lock().unwrap_or_else(|p| p.into_inner()) {
            if *j == i {
                return Ok(recs.clone());
            }
        }
        let recs = Arc::new(self.decode_block(i)?);
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((i, recs.clone()));
        Ok(recs)
    }

    /// Decodes block `i` without the cache.
    pub fn decode_block(&self, i: usize) -> Result<Vec<Record>> {
        let m = self
            .blocks
            .get(i)
            .ok_or_else(|| corrupt(&self.path, 0, "block number out of range"))?;
        let mut b = vec![0u8; m.bytes as usize];
        if read_full_at(&*self.file, &mut b, m.offset)? < b.len() {
            return Err(corrupt(&self.path, m.offset, "block truncated"));
        }
        let recs = logblock::decode(&b).map_err(|e| corrupt(&self.path, m.offset, e.0))?;
        self.decoded.fetch_add(1, Ordering::Relaxed);
        if recs.len() != m.records as usize
            || recs.first().map(|r| r.0) != Some(m.first)
            || recs.last().map(|r| r.0) != Some(m.last)
        {
            return Err(corrupt(
                &self.path,
                m.offset,
                "block records differ from the index",
            ));
        }
        Ok(recs
            .into_iter()
            .map(|(key, value)| Record { key, value })
            .collect())
    }
}

fn parse_index(b: &[u8], n: u32) -> std::result::Result<Vec<BlockMeta>, &'static str> {
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    let bad = |_| "index truncated";
    for _ in 0..n {
        let first = r.u128().map_err(bad)?;
        let last = r.u128().map_err(bad)?;
        let offset = r.u64().map_err(bad)?;
        let bytes = r.u32().map_err(bad)?;
        let records = r.u32().map_err(bad)?;
        let sb = r.slice().map_err(bad)?;
        let mut s = Reader::new(sb);
        let nf = s.u32().map_err(bad)?;
        let mut summary = HashMap::new();
        for _ in 0..nf {
            let name = s.slice().map_err(bad)?.to_vec();
            let nv = s.u32().map_err(bad)?;
            if nv as usize > s.remaining() / 4 {
                return Err("summary value count beyond the index");
            }
            let mut vals = HashSet::with_capacity(nv as usize);
            for _ in 0..nv {
                vals.insert(s.slice().map_err(bad)?.to_vec());
            }
            summary.insert(name, vals);
        }
        if !s.is_empty() {
            return Err("summary has trailing bytes");
        }
        out.push(BlockMeta {
            first,
            last,
            offset,
            bytes,
            records,
            summary,
        });
    }
    if !r.is_empty() {
        return Err("index has trailing bytes");
    }
    Ok(out)
}

fn check_shape(
    blocks: &[BlockMeta],
    base: u128,
    index_at: u64,
    records: u64,
) -> std::result::Result<(), &'static str> {
    let mut at = FILE_HEADER_BYTES;
    let mut prev: Option<u128> = None;
    let mut n = 0u64;
    if blocks.first().map(|b| b.first) != Some(base) {
        return Err("first block does not start at the base key");
    }
    for b in blocks {
        if b.offset != at || b.bytes as usize <= logblock::BLOCK_HEADER_BYTES {
            return Err("blocks not contiguous");
        }
        if b.records == 0 || b.first > b.last || prev.is_some_and(|p| b.first <= p) {
            return Err("block keys out of order");
        }
        at += u64::from(b.bytes);
        n += u64::from(b.records);
        prev = Some(b.last);
    }
    if at != index_at {
        return Err("blocks do not end at the index");
    }
    if n != records {
        return Err("record count differs from the blocks'");
    }
    Ok(())
}

/// Why a compressed segment could not be written.
#[derive(Debug)]
pub enum WriteError {
    Io(io::Error),
    /// The records are not all stream entries (`logblock::encode` refused).
    NotEntries,
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// Writes a compressed segment block by block.
pub struct ClogWriter {
    file: Arc<dyn StorageFile>,
    pos: u64,
    index: Vec<u8>,
    blocks: u32,
    records: u64,
}

fn put_slice(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// The summary of a block's records (see the module doc).
fn summarize(records: &[Record]) -> Vec<u8> {
    let mut fields: HashMap<&[u8], Option<HashSet<&[u8]>>> = HashMap::new();
    for r in records {
        let Some((names, vals)) = logblock::split_entry(&r.value) else {
            continue;
        };
        for (n, v) in names.into_iter().zip(vals) {
            let set = fields.entry(n).or_insert_with(|| Some(HashSet::new()));
            if let Some(s) = set {
                s.insert(v);
                if s.len() > SUMMARY_VALUES_MAX {
                    *set = None;
                }
            }
        }
    }
    let mut kept: Vec<(&[u8], Vec<&[u8]>)> = fields
        .into_iter()
        .filter_map(|(n, s)| {
            let mut v: Vec<&[u8]> = s?.into_iter().collect();
            v.sort_unstable();
            Some((n, v))
        })
        .collect();
    kept.sort_unstable();
    let mut out = Vec::new();
    out.extend_from_slice(&(kept.len() as u32).to_le_bytes());
    for (n, vals) in kept {
        put_slice(&mut out, n);
        out.extend_from_slice(&(vals.len() as u32).to_le_bytes());
        for v in vals {
            put_slice(&mut out, v);
        }
    }
    out
}

impl ClogWriter {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(fs: &dyn Fs, path: &Path, base: u128) -> io::Result<ClogWriter> {
        let file = fs.open(path, OpenMode::CreateTruncate)?;
        file.write_all_at(&encode_file_header(CLOG_MAGIC, base), 0)?;
        Ok(ClogWriter {
            file,
            pos: FILE_HEADER_BYTES,
            index: Vec::new(),
            blocks: 0,
            records: 0,
        })
    }

    /// Appends one block of records (ascending keys, at most
    /// `logblock::BLOCK_ENTRIES`, not empty).
    pub fn add(&mut self, records: &[Record]) -> std::result::Result<(), WriteError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let refs: Vec<(u128, &[u8])> = records.iter().map(|r| (r.key, &r.value[..])).collect();
        let b = logblock::encode(&refs).ok_or(WriteError::NotEntries)?;
        self.file.write_all_at(&b, self.pos)?;
        self.index.extend_from_slice(&first.key.to_le_bytes());
        self.index.extend_from_slice(&last.key.to_le_bytes());
        self.index.extend_from_slice(&self.pos.to_le_bytes());
        self.index
            .extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.index
            .extend_from_slice(&(records.len() as u32).to_le_bytes());
        put_slice(&mut self.index, &summarize(records));
        self.pos += b.len() as u64;
        self.blocks += 1;
        self.records += records.len() as u64;
        Ok(())
    }

    /// Writes index and footer and fdatasyncs the file.
    pub fn finish(self) -> io::Result<Arc<dyn StorageFile>> {
        let raw_len = u32::try_from(self.index.len())
            .ok()
            .filter(|&n| u64::from(n) <= INDEX_BYTES_MAX)
            .ok_or_else(|| io::Error::other("compressed segment index too large"))?;
        let mut tail = zstd::bulk::compress(&self.index, logblock::ZSTD_LEVEL)?;
        let crc = crc32c::crc32c(&tail);
        tail.extend_from_slice(&self.pos.to_le_bytes());
        tail.extend_from_slice(&self.blocks.to_le_bytes());
        tail.extend_from_slice(&crc.to_le_bytes());
        tail.extend_from_slice(&raw_len.to_le_bytes());
        tail.extend_from_slice(&self.records.to_le_bytes());
        tail.extend_from_slice(CLOG_END_MAGIC);
        self.file.write_all_at(&tail, self.pos)?;
        self.file.sync_data()?;
        Ok(self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::FaultyFs;

    fn entry(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut v = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, x) in pairs {
            put_slice(&mut v, n.as_bytes());
            put_slice(&mut v, x.as_bytes());
        }
        v
    }

    fn recs(n: usize, from: u64) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                key: (u128::from(from + i as u64) << 64) | 1,
                value: entry(&[
                    ("level", if i % 3 == 0 { "WARN" } else { "INFO" }),
                    ("template_id", &(i % 4).to_string()),
                    (
                        "content",
                        &format!("block blk_{i} served to /10.0.0.{}", i % 7),
                    ),
                ]),
            })
            .collect()
    }

    #[test]
    fn write_open_read_and_damage() {
        let fs = FaultyFs::new();
        let p = Path::new("/d/x.clog");
        fs.create_dir_all(Path::new("/d")).unwrap();
        let (a, b) = (recs(100, 1000), recs(50, 5000));
        let base = a[0].key;
        let mut w = ClogWriter::create(&fs, p, base).unwrap();
        w.add(&a).unwrap();
        w.add(&b).unwrap();
        w.finish().unwrap();
        let c = Clog::open(&fs, p, base).unwrap();
        assert_eq!((c.blocks.len(), c.records), (2, 150));
        assert_eq!(*c.read_block(0).unwrap(), a);
        assert_eq!(*c.read_block(1).unwrap(), b);
        assert_eq!(c.block_from(a[99].key + 1), Some(1));
        assert_eq!(c.block_upto(b[0].key - 1), Some(0));
        assert_eq!(c.block_from(b[49].key + 1), None);
        let lv = BlockFilter {
            conds: vec![(b"level".to_vec(), b"warn".to_vec(), true)],
        };
        assert!(c.blocks[0].may_match(&lv));
        let none = BlockFilter {
            conds: vec![(b"template_id".to_vec(), b"9".to_vec(), false)],
        };
        assert!(!c.blocks[0].may_match(&none));
        // Wrong base, damaged block, damaged index: errors, no panic.
        assert!(Clog::open(&fs, p, base + 1).is_err());
        let f = fs.open(p, OpenMode::ReadWrite).unwrap();
        let len = f.size().unwrap();
        f.write_all_at(&[0xff], FILE_HEADER_BYTES + 30).unwrap();
        let c = Clog::open(&fs, p, base).unwrap();
        assert!(matches!(c.read_block(0), Err(Error::Corruption { .. })));
        f.write_all_at(&[0xff], len - FOOTER_BYTES - 3).unwrap();
        assert!(matches!(
            Clog::open(&fs, p, base),
            Err(Error::Corruption { .. })
        ));
    }

    /// Every single-byte change and every truncation of a compressed
    /// segment: opening and reading all blocks never panics, and whatever
    /// reads back whole is the original records.
    #[test]
    fn hostile_bytes_never_panic() {
        let fs = FaultyFs::new();
        let p = Path::new("/d/y.clog");
        fs.create_dir_all(Path::new("/d")).unwrap();
        let a = recs(40, 1000);
        let base = a[0].key;
        let mut w = ClogWriter::create(&fs, p, base).unwrap();
        w.add(&a[..25]).unwrap();
        w.add(&a[25..]).unwrap();
        w.finish().unwrap();
        let good = fs.read_file(p).unwrap();
        let read_all = |bytes: &[u8]| {
            fs.write_file(p, bytes);
            let Ok(c) = Clog::open(&fs, p, base) else {
                return;
            };
            let mut got = Vec::new();
            for i in 0..c.blocks.len() {
                match c.decode_block(i) {
                    Ok(r) => got.extend(r),
                    Err(_) => return,
                }
            }
            assert_eq!(got, a);
        };
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x41;
            read_all(&b);
            read_all(&good[..i]);
        }
    }
}
