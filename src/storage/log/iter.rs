//! Lazy readers of a [`super::SegmentedLog`]: [`Iter`] (ascending, XRANGE)
//! and [`RevIter`] (descending, XREVRANGE).
//!
//! Both locate their start with the sparse index under the log mutex, then
//! read with `pread` through a 64 KiB buffer without the lock. `Iter` scans
//! forward; `RevIter` reads one index block (the records between two index
//! entries, at most `INDEX_INTERVAL_BYTES` plus one record) at a time,
//! forwards, and yields it backwards. Memory is O(one block), never O(log).
//!
//! An index entry is trusted only after the record it points to decodes with
//! the entry's key; otherwise the reader warns and scans the segment from its
//! first record (the index is derived data).
//!
//! A compressed segment (`storage::clog`) is read block by block: the
//! block index gives the first block that can hold the start key (forward)
//! or the last one (reverse), so a range read decodes only the blocks it
//! covers; the segment caches its last decoded block. A forward reader may
//! carry a `BlockFilter`: blocks whose summary proves no entry matches are
//! skipped without being read (LOGPARSE GREP; counted in `blocks_skipped`).

use super::{Located, Shared};
use crate::storage::clog::{BlockFilter, Clog};
use crate::storage::error::{Error, Result};
use crate::storage::record::{Record, FILE_HEADER_BYTES};
use crate::storage::segment::{Scanned, Scanner};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Bytes read past the end of a lookup's index block on the first read:
/// room for a few records after the one looked up (XRANGE ... COUNT 10).
const BLOCK_SLACK_BYTES: usize = 1024;

/// Ascending iterator over records with key >= a start key.
#[derive(Debug)]
pub struct Iter {
    shared: Arc<Shared>,
    cur: Option<Cur>,
    /// Reading a compressed segment (then `cur` is None).
    blk: Option<BlockCur>,
    filter: Option<Arc<BlockFilter>>,
    skipped: u64,
    /// Smallest key that may still be returned.
    next_key: u128,
    done: bool,
    truncations: u64,
}

#[derive(Debug)]
struct Cur {
    base: u128,
    path: PathBuf,
    sc: Scanner,
    /// Key the first record must have (it came from an index entry).
    expect: Option<u128>,
}

impl Cur {
    fn new(l: Located) -> Self {
        Cur {
            base: l.base,
            path: l.log_path,
            sc: Scanner::with_first_read(
                l.file,
                l.start.pos,
                l.end,
                l.block_end.map(|b| {
                    (b.saturating_sub(l.start.pos) as usize).saturating_add(BLOCK_SLACK_BYTES)
                }),
            ),
            expect: (l.start.pos != FILE_HEADER_BYTES).then_some(l.start.key),
        }
    }

    /// Falls back to scanning the segment from its first record.
    fn rescan(&mut self) {
        tracing::warn!(file = %self.path.display(), "index entry does not match the log; scanning the segment");
        let file = self.sc.file().clone();
        let end = self.sc.end();
        self.sc = Scanner::new(file, FILE_HEADER_BYTES, end);
        self.expect = None;
    }
}

/// A forward reader's place in a compressed segment.
#[derive(Debug)]
struct BlockCur {
    clog: Arc<Clog>,
    block: usize,
    recs: Option<Arc<Vec<Record>>>,
    i: usize,
}

impl BlockCur {
    fn next(
        &mut self,
        from: u128,
        filter: Option<&BlockFilter>,
        skipped: &mut u64,
    ) -> Result<Option<Record>> {
        loop {
            let recs = match &self.recs {
                Some(r) => r,
                None => {
                    let Some(m) = self.clog.blocks.get(self.block) else {
                        return Ok(None);
                    };
                    if m.last < from {
                        self.block += 1;
                        continue;
                    }
                    if filter.is_some_and(|f| !m.may_match(f)) {
                        *skipped += 1;
                        self.block += 1;
                        continue;
                    }
                    let r = self.clog.read_block(self.block)?;
                    self.i = r.partition_point(|x| x.key < from);
                    self.recs.insert(r)
                }
            };
            if let Some(r) = recs.get(self.i) {
                self.i += 1;
                return Ok(Some(r.clone()));
            }
            self.recs = None;
            self.block += 1;
        }
    }
}

impl Iter {
    pub(crate) fn new(shared: Arc<Shared>, from: u128) -> Self {
        let truncations = shared.truncations.load(Ordering::SeqCst);
        let mut it = Iter {
            shared,
            cur: None,
            blk: None,
            filter: None,
            skipped: 0,
            next_key: from,
            done: false,
            truncations,
        };
        let l = it.shared.locate(from, None);
        it.set(l);
        it
    }

    /// Skips the blocks of compressed segments that cannot hold an entry
    /// matching `f` (the caller filters the entries it gets anyway).
    pub fn with_filter(mut self, f: BlockFilter) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }

    /// Blocks of compressed segments skipped through the filter.
    pub fn blocks_skipped(&self) -> u64 {
        self.skipped
    }

    fn set(&mut self, l: Option<Located>) {
        self.cur = None;
        self.blk = None;
        match l {
            Some(Located {
                clog: Some(clog), ..
            }) => {
                self.blk = Some(BlockCur {
                    block: clog.block_from(self.next_key).unwrap_or(clog.blocks.len()),
                    clog,
                    recs: None,
                    i: 0,
                })
            }
            Some(l) => self.cur = Some(Cur::new(l)),
            None => {}
        }
    }

    fn advance(&mut self, key: u128) {
        match key.checked_add(1) {
            Some(k) => self.next_key = k,
            None => self.done = true,
        }
    }
}

impl Iterator for Iter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(b) = self.blk.as_mut() {
                let before = self.skipped;
                let got = b.next(self.next_key, self.filter.as_deref(), &mut self.skipped);
                if self.skipped > before {
                    let n = self.skipped - before;
                    self.shared.compact.skipped.fetch_add(n, Ordering::Relaxed);
                }
                match got {
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Ok(Some(r)) => {
                        self.advance(r.key);
                        return Some(Ok(r));
                    }
                    Ok(None) => {
                        let base = b.clog.base;
                        let l = self.shared.locate(self.next_key, Some(base));
                        self.set(l);
                        continue;
                    }
                }
            }
            let Some(cur) = self.cur.as_mut() else {
                self.done = true;
                return None;
            };
            match cur.sc.next_record() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(Error::Io(e)));
                }
                Ok(Scanned::Record { key, value, .. }) => {
                    if let Some(exp) = cur.expect.take() {
                        if key != exp {
                            cur.rescan();
                            continue;
                        }
                    }
                    if key < self.next_key {
                        continue;
                    }
                    let r = Record {
                        key,
                        value: value.to_vec(),
                    };
                    self.advance(key);
                    return Some(Ok(r));
                }
                Ok(Scanned::Bad { pos, kind }) => {
                    if cur.expect.is_some() {
                        cur.rescan();
                        continue;
                    }
                    let t = self.shared.truncations.load(Ordering::SeqCst);
                    if t != self.truncations {
                        self.truncations = t;
                        let l = self.shared.locate(self.next_key, None);
                        self.set(l);
                        continue;
                    }
                    self.done = true;
                    return Some(Err(Error::corruption(
                        cur.path.clone(),
                        pos,
                        kind.describe(),
                    )));
                }
                Ok(Scanned::End) => {
                    if let Some(end) = self
                        .shared
                        .active_end(cur.base)
                        .filter(|&e| e > cur.sc.end())
                    {
                        cur.sc.set_end(end);
                        continue;
                    }
                    let base = cur.base;
                    let l = self.shared.locate(self.next_key, Some(base));
                    self.set(l);
                }
            }
        }
    }
}

/// Descending iterator over records with key <= a start key.
#[derive(Debug)]
pub struct RevIter {
    shared: Arc<Shared>,
    /// Largest key that may still be returned.
    hi: u128,
    done: bool,
    /// Records of the current block, ascending; yielded from the back.
    pending: Vec<Record>,
    seg: Option<RevSeg>,
}

#[derive(Debug)]
struct RevSeg {
    base: u128,
    path: PathBuf,
    file: Arc<dyn crate::storage::fs::StorageFile>,
    /// End of the part of the segment not yet read.
    stop: u64,
    /// Next block to read.
    block: Block,
    /// A compressed segment and its next block to decode.
    clog: Option<(Arc<Clog>, Option<usize>)>,
}

#[derive(Debug, Clone, Copy)]
enum Block {
    /// The block starting at index entry `i`.
    Entry(usize),
    /// Everything from the first record to `stop` (no usable index).
    Whole,
    Done,
}

impl RevSeg {
    fn new(l: Located, hi: u128) -> Self {
        let (stop, block) = match l.entry {
            Some(j) => (l.end, Block::Entry(j)),
            None => (l.end, Block::Whole),
        };
        let clog = l.clog.map(|c| {
            let j = c.block_upto(hi);
            (c, j)
        });
        RevSeg {
            base: l.base,
            path: l.log_path,
            file: l.file,
            stop,
            block,
            clog,
        }
    }
}

impl RevIter {
    pub(crate) fn new(shared: Arc<Shared>, hi: u128) -> Self {
        let seg = shared.locate_rev(hi, None).map(|l| {
            let mut s = RevSeg::new(l, hi);
            // The block of `hi` ends where the next entry starts.
            if let Block::Entry(j) = s.block {
                if let Some(next) = shared.entry_at(s.base, j + 1) {
                    s.stop = s.stop.min(next.pos);
                }
            }
            s
        });
        RevIter {
            shared,
            hi,
            done: false,
            pending: Vec::new(),
            seg,
        }
    }

    /// Reads the next block (backwards) into `pending`.
    fn fill(&mut self) -> Result<()> {
        let Some(seg) = self.seg.as_mut() else {
            self.done = true;
            return Ok(());
        };
        if let Some((c, next)) = seg.clog.as_mut() {
            match *next {
                Some(j) => {
                    let recs = c.read_block(j)?;
                    let hi = self.hi;
                    self.pending
                        .extend(recs.iter().filter(|r| r.key <= hi).cloned());
                    *next = j.checked_sub(1);
                    return Ok(());
                }
                None => seg.block = Block::Done,
            }
        }
        let (start, expect) = match seg.block {
            Block::Done => {
                let base = seg.base;
                let hi = self.hi;
                self.seg = self.shared.locate_rev(hi, Some(base)).map(|l| {
                    let mut s = RevSeg::new(l, hi);
                    if let Block::Entry(j) = s.block {
                        if let Some(next) = self.shared.entry_at(s.base, j + 1) {
                            s.stop = s.stop.min(next.pos);
                        }
                    }
                    s
                });
                return Ok(());
            }
            Block::Whole => (FILE_HEADER_BYTES, None),
            Block::Entry(j) => match self.shared.entry_at(seg.base, j) {
                Some(e) => (e.pos, Some(e.key)),
                None => (FILE_HEADER_BYTES, None), // truncated meanwhile
            },
        };
        let mut sc = Scanner::new(seg.file.clone(), start, seg.stop);
        let mut first = true;
        loop {
            match sc.next_record()? {
                Scanned::End => break,
                Scanned::Record { key, value, .. } => {
                    if first && expect.is_some_and(|k| k != key) {
                        return Self::fallback(seg, &mut self.pending);
                    }
                    first = false;
                    if key <= self.hi {
                        self.pending.push(Record {
                            key,
                            value: value.to_vec(),
                        });
                    }
                }
                Scanned::Bad { pos, kind } => {
                    if first && expect.is_some() {
                        return Self::fallback(seg, &mut self.pending);
                    }
                    return Err(Error::corruption(seg.path.clone(), pos, kind.describe()));
                }
            }
        }
        seg.stop = start;
        seg.block = match seg.block {
            Block::Entry(j) if j > 0 => Block::Entry(j - 1),
            _ => Block::Done,
        };
        Ok(())
    }

    fn fallback(seg: &mut RevSeg, pending: &mut Vec<Record>) -> Result<()> {
        tracing::warn!(file = %seg.path.display(), "index entry does not match the log; scanning the segment");
        pending.clear();
        seg.block = Block::Whole;
        Ok(())
    }
}

impl Iterator for RevIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.pending.pop() {
                if r.key > self.hi {
                    continue;
                }
                match r.key.checked_sub(1) {
                    Some(k) => self.hi = k,
                    None => {
                        self.done = true;
                        self.pending.clear();
                        self.seg = None;
                    }
                }
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}
