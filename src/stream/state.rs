//! An open stream: its two logs, metadata, per-segment live counts and
//! deleted ids; every mutation writes its record before changing memory.

use super::codec::{
    decode_checkpoint, decode_entry, decode_op, encode_checkpoint, encode_entry, encode_op,
    Checkpoint, Meta, Op, OpKind, SegStat,
};
use super::error::StreamError;
use super::Registry;
use crate::storage::streams::read_small_file;
use crate::storage::{atomic_write_with, Error, LogOptions, SegmentedLog, SyncPolicy};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Op-log segment size, bytes: ops are small and old op segments are
/// deleted after every checkpoint.
const OPS_SEGMENT_BYTES: u64 = 1 << 20;
/// A checkpoint is written in the background once this many records were
/// appended since the last one: bounds the tail read at startup (about
/// 0.1 s of scanning) and the op log's size.
const CHECKPOINT_RECORDS: u64 = 100_000;

/// How a trim chooses what to remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimStrategy {
    MaxLen(u64),
    /// Remove entries with an id below this.
    MinId(u128),
}

/// XTRIM / XADD trimming arguments.
#[derive(Clone, Copy, Debug)]
pub struct TrimSpec {
    pub strategy: TrimStrategy,
    /// `~`: only whole segments (Redis: whole nodes).
    pub approx: bool,
    /// Most entries removed (0: no limit).
    pub limit: u64,
}

/// State of an open stream (guarded by the stream's mutex; every command
/// also holds the keyspace lock).
#[derive(Debug)]
pub struct Inner {
    pub meta: Meta,
    /// Ids deleted by XDEL and above the trim mark.
    pub deleted: BTreeSet<u128>,
    /// Consumer groups (state in memory, changes in the op log).
    pub groups: super::groups::Groups,
    segs: Vec<SegStat>,
    log: Arc<SegmentedLog>,
    ops: Arc<SegmentedLog>,
    dir: PathBuf,
    fs: Arc<dyn crate::storage::Fs>,
    /// Key of the last op record.
    op_seq: u128,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    /// Records written since the last checkpoint.
    since_checkpoint: u64,
    /// The trim mark of the last checkpoint (segments below a newer mark
    /// are deleted by the next checkpoint).
    checkpoint_trim: u128,
    /// Entries XADD appended in the running batch, not yet written: their
    /// encoded records in `pending_buf`, `(id, start, end)` in `pending`.
    /// `flush` writes them in one call at the end of the batch (before any
    /// reply leaves) or before anything else reads or writes the logs, as
    /// Redis writes its AOF buffer once per event-loop iteration.
    pending_buf: Vec<u8>,
    pending: Vec<(u128, usize, usize)>,
    /// The metadata before the first pending entry: restored if writing
    /// them fails, so the stream never counts entries it does not hold.
    pending_meta: Option<Meta>,
}

/// A checkpoint ready to be written off the stream's lock.
pub struct CheckpointJob {
    ck: Checkpoint,
    log: Arc<SegmentedLog>,
    ops: Arc<SegmentedLog>,
    path: PathBuf,
    fs: Arc<dyn crate::storage::Fs>,
}

impl CheckpointJob {
    /// Syncs both logs (the checkpoint must never claim records the disk
    /// may lose), writes the checkpoint atomically, then deletes entry
    /// segments wholly below the trim mark and op segments it covers.
    pub fn run(self) -> Result<(), StreamError> {
        self.log.sync().map_err(StreamError::Storage)?;
        self.ops.sync().map_err(StreamError::Storage)?;
        atomic_write_with(&*self.fs, &self.path, &encode_checkpoint(&self.ck))
            .map_err(StreamError::Storage)?;
        if self.ck.meta.trimmed_through > 0 {
            self.log
                .delete_segments_before(self.ck.meta.trimmed_through.saturating_add(1))
                .map_err(StreamError::Storage)?;
        }
        if self.ck.op_seq > 0 {
            self.ops
                .delete_segments_before(self.ck.op_seq.saturating_add(1))
                .map_err(StreamError::Storage)?;
        }
        Ok(())
    }
}

/// Index of the segment holding `key` (greatest base <= key).
fn seg_index(segs: &[SegStat], key: u128) -> Option<usize> {
    segs.partition_point(|s| s.base <= key).checked_sub(1)
}

/// Drops the segment stats a trim through `through` removed `removed`
/// live entries from: whole segments first, the rest from the next one.
fn trim_segs(segs: &mut Vec<SegStat>, through: u128, mut removed: u64) {
    let mut whole = 0;
    while whole < segs.len() {
        let next_base = segs.get(whole + 1).map(|s| s.base);
        if next_base.is_some_and(|b| b <= through.saturating_add(1)) {
            removed = removed.saturating_sub(segs[whole].live);
            whole += 1;
        } else {
            break;
        }
    }
    segs.drain(..whole);
    if let Some(s) = segs.first_mut() {
        s.live = s.live.saturating_sub(removed);
    }
}

impl Inner {
    /// Opens (creating if needed) the stream directory `dir`: checkpoint,
    /// then the entries and ops after it, merged by `at`.
    pub(super) fn open(reg: &Registry, dir: &Path) -> Result<Inner, Error> {
        let fs = reg.fs.clone();
        let opts = |segment_bytes| LogOptions {
            fs: fs.clone(),
            sync: SyncPolicy::No,
            segment_bytes,
            ..LogOptions::default()
        };
        let (log, rep) = SegmentedLog::open(dir, opts(reg.segment_bytes.load(Ordering::Relaxed)))?;
        if let Some(t) = rep.torn_tail {
            tracing::warn!(
                "stream log had a torn tail: truncated {} at offset {}",
                t.file.display(),
                t.offset
            );
        }
        let (ops, _) = SegmentedLog::open(dir.join("ops"), opts(OPS_SEGMENT_BYTES))?;
        let ck_path = dir.join("checkpoint");
        let ck = match read_small_file(&*fs, &ck_path)? {
            Some(b) => decode_checkpoint(&b).map_err(|e| Error::corruption(&ck_path, 0, e.0))?,
            None => Checkpoint::default(),
        };
        let mut s = Inner {
            meta: ck.meta,
            deleted: ck.deleted.iter().copied().collect(),
            groups: ck.groups,
            segs: ck.segs,
            log: Arc::new(log),
            ops: Arc::new(ops),
            dir: dir.to_path_buf(),
            fs,
            op_seq: ck.op_seq,
            retention_ms: ck.retention_ms,
            retention_bytes: ck.retention_bytes,
            since_checkpoint: 0,
            checkpoint_trim: ck.meta.trimmed_through,
            pending_buf: Vec::new(),
            pending: Vec::new(),
            pending_meta: None,
        };
        let bases: Vec<u128> = s.log.segments().iter().map(|x| x.base).collect();
        let mut pending_ops = Vec::new();
        for r in s.ops.iter_from(ck.op_seq.saturating_add(1)) {
            let r = r?;
            let op = decode_op(&r.value).map_err(|e| Error::corruption(dir.join("ops"), 0, e.0))?;
            pending_ops.push((r.key, op));
        }
        let mut ops_iter = pending_ops.into_iter().peekable();
        let tail_from = if ck.log_at == 0 {
            0
        } else {
            ck.log_at.saturating_add(1)
        };
        let mut entries = s.log.iter_from(tail_from).peekable();
        loop {
            let next_entry = match entries.peek() {
                Some(Ok(r)) => Some(r.key),
                Some(Err(_)) => {
                    return Err(entries.next().and_then(|r| r.err()).expect("peeked error"));
                }
                None => None,
            };
            let next_op_at = ops_iter.peek().map(|(_, op)| op.at);
            let take_entry = match (next_entry, next_op_at) {
                (Some(k), Some(a)) => k <= a,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if let (true, Some(k)) = (take_entry, next_entry) {
                entries.next();
                s.replay_entry(k, &bases);
            } else if let Some((seq, op)) = ops_iter.next() {
                s.apply_op(seq, op);
            }
            s.since_checkpoint += 1;
        }
        // Entries above the last id are dead leftovers of an XSETID that
        // lowered the id (its truncation did not complete before a crash).
        if s.log.last_key().is_some_and(|l| l > s.meta.last_id) {
            s.log.truncate_after(s.meta.last_id)?;
            s.segs.retain(|x| x.base <= s.meta.last_id);
        }
        // The log ends below what the checkpoint covered: `redlog check
        // --repair` cut it. The checkpoint's counts include the lost
        // entries; count the ones the log still has.
        if ck.log_at != 0 && s.log.last_key().is_none_or(|l| l < ck.log_at) {
            s.recount_from_log(&bases)?;
        }
        Ok(s)
    }

    /// Recomputes the live-entry count, the first id and the per-segment
    /// counts from the entry log (the last id and entries-added stay: ids
    /// never go back).
    fn recount_from_log(&mut self, bases: &[u128]) -> Result<(), Error> {
        let before = self.meta.length;
        self.meta.length = 0;
        self.meta.first = 0;
        self.segs.clear();
        for r in self.log.iter_from(0) {
            let key = r?.key;
            if key <= self.meta.trimmed_through || self.deleted.contains(&key) {
                continue;
            }
            let base = bases
                .get(bases.partition_point(|&b| b <= key).saturating_sub(1))
                .copied()
                .unwrap_or(key);
            self.meta.length += 1;
            if self.meta.length == 1 {
                self.meta.first = key;
            }
            self.count_seg(base);
        }
        tracing::warn!(
            "stream {}: the entry log ends before its checkpoint (repaired): \
             {} entries counted, {} are left",
            self.dir.display(),
            before,
            self.meta.length
        );
        // The next checkpoint records the recount.
        self.since_checkpoint += 1;
        Ok(())
    }

    fn replay_entry(&mut self, key: u128, bases: &[u128]) {
        let base = bases
            .get(bases.partition_point(|&b| b <= key).saturating_sub(1))
            .copied()
            .unwrap_or(key);
        self.count_entry(key, base);
    }

    /// Metadata changes of one appended entry in segment `base`.
    fn count_entry(&mut self, key: u128, base: u128) {
        self.count_meta(key);
        self.count_seg(base);
    }

    /// The length, ids and entries-added of one appended entry.
    fn count_meta(&mut self, key: u128) {
        let m = &mut self.meta;
        m.length += 1;
        m.entries_added += 1;
        m.last_id = key;
        if m.length == 1 {
            m.first = key;
        }
    }

    /// One more live entry in segment `base`.
    fn count_seg(&mut self, base: u128) {
        match self.segs.last_mut() {
            Some(s) if s.base == base => s.live += 1,
            _ => self.segs.push(SegStat { base, live: 1 }),
        }
    }

    /// Writes the pending entries (see `pending`) in one call. On failure
    /// they are dropped and the metadata restored: the commands that
    /// appended them must not be acknowledged (the log's failure is sticky).
    pub fn flush(&mut self) -> Result<(), StreamError> {
        if self.pending.is_empty() {
            // A failed write by another flusher (the background thread)
            // may have dropped entries of the running batch: say so.
            return match self.log.failure() {
                Some(e) => Err(StreamError::Storage(Error::PreviousIo(e))),
                None => Ok(()),
            };
        }
        let records: Vec<(u128, &[u8])> = self
            .pending
            .iter()
            .map(|&(id, a, b)| (id, &self.pending_buf[a..b]))
            .collect();
        let written = self
            .log
            .append_batch(&records)
            .map_err(StreamError::Storage);
        drop(records);
        let pending = std::mem::take(&mut self.pending);
        self.pending_buf.clear();
        let before = self.pending_meta.take();
        match written {
            Ok(pos) => {
                for _ in &pending {
                    self.count_seg(pos.segment_base);
                }
                self.since_checkpoint += pending.len() as u64;
                // Keep the buffers' capacity for the next batch.
                self.pending = pending;
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                if let Some(m) = before {
                    self.meta = m;
                }
                Err(e)
            }
        }
    }

    fn apply_op(&mut self, seq: u128, op: Op) {
        self.op_seq = seq;
        let old_through = self.meta.trimmed_through;
        self.meta = op.meta;
        match op.kind {
            OpKind::Del(ids) => {
                for id in ids {
                    if let Some(i) = seg_index(&self.segs, id) {
                        self.segs[i].live = self.segs[i].live.saturating_sub(1);
                    }
                    self.deleted.insert(id);
                }
            }
            OpKind::Trim { removed } => {
                let _ = old_through;
                trim_segs(&mut self.segs, self.meta.trimmed_through, removed);
                let keep = self
                    .deleted
                    .split_off(&self.meta.trimmed_through.saturating_add(1));
                self.deleted = keep;
            }
            OpKind::SetId => {
                // Ids deleted above a lowered last id may be reused.
                let _reusable = self.deleted.split_off(&self.meta.last_id.saturating_add(1));
            }
            OpKind::Config {
                retention_ms,
                retention_bytes,
            } => {
                self.retention_ms = retention_ms;
                self.retention_bytes = retention_bytes;
            }
            OpKind::Group(g) => super::groups::apply(&mut self.groups, g),
        }
    }

    /// Writes a group-state op and applies it.
    pub fn group_op(&mut self, op: super::groups::GroupOp) -> Result<(), StreamError> {
        let meta = self.meta;
        self.write_op(OpKind::Group(op), meta)
    }

    /// Writes an op record (its `at` and metadata taken now) and applies it.
    fn write_op(&mut self, kind: OpKind, meta: Meta) -> Result<(), StreamError> {
        self.flush()?;
        let op = Op {
            at: self.log.last_key().unwrap_or(0),
            meta,
            kind,
        };
        let seq = self.op_seq + 1;
        self.ops
            .append(seq, &encode_op(&op))
            .map_err(StreamError::Storage)?;
        self.apply_op(seq, op);
        self.since_checkpoint += 1;
        Ok(())
    }

    pub fn logs(&self) -> super::Logs {
        (self.log.clone(), self.ops.clone())
    }

    /// Bytes of the entry log (headers included).
    pub fn log_bytes(&self) -> u64 {
        self.log.total_bytes()
    }

    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// Live segments (with live entries), Redis's `radix-tree-keys` analogue.
    pub fn live_segments(&self) -> usize {
        self.segs.iter().filter(|s| s.live > 0).count()
    }

    fn is_live(&self, id: u128) -> bool {
        id > self.meta.trimmed_through && !self.deleted.contains(&id)
    }

    /// Appends an entry whose id the caller checked is above `last_id`.
    /// The entry is pending until `flush` (the end of the batch): the
    /// caller must note the stream with `Keyspace::stream_written`.
    pub fn append(&mut self, id: u128, pairs: &[Bytes]) -> Result<(), StreamError> {
        if self.pending.is_empty() {
            self.drop_dead_tail(id)?;
            self.pending_meta = Some(self.meta);
        }
        let start = self.pending_buf.len();
        encode_entry(&mut self.pending_buf, pairs);
        self.pending.push((id, start, self.pending_buf.len()));
        self.count_meta(id);
        Ok(())
    }

    /// Before appending `first`: drops the dead entries an XSETID that
    /// lowered the last id left in the log at or above it.
    fn drop_dead_tail(&mut self, first: u128) -> Result<(), StreamError> {
        if self.log.last_key().is_some_and(|l| l >= first) {
            self.log
                .truncate_after(self.meta.last_id)
                .map_err(StreamError::Storage)?;
            self.segs.retain(|x| x.base <= self.meta.last_id);
        }
        Ok(())
    }

    /// Appends entries already encoded (`codec::encode_entry`), ids
    /// increasing and the first above `last_id`, in one write (LOGPARSE
    /// INGEST: marks the entry log for compressed sealed segments).
    pub fn append_encoded(&mut self, entries: &[(u128, &[u8])]) -> Result<(), StreamError> {
        self.flush()?;
        let Some(&(first, _)) = entries.first() else {
            return Ok(());
        };
        self.drop_dead_tail(first)?;
        if !self.log.compresses_sealed() {
            // Streams LOGPARSE INGEST writes get template-compressed sealed
            // segments (`storage::log::compact`; the marker persists it).
            self.log
                .set_compress_sealed()
                .map_err(StreamError::Storage)?;
        }
        let pos = self
            .log
            .append_batch(entries)
            .map_err(StreamError::Storage)?;
        for &(id, _) in entries {
            self.count_entry(id, pos.segment_base);
        }
        self.since_checkpoint += entries.len() as u64;
        Ok(())
    }

    /// Keeps the entry log's segment files still (no background
    /// compression swap) while the guard lives (COPY copies them).
    pub fn hold_files(&self) -> std::sync::MutexGuard<'_, ()> {
        self.log.hold_files()
    }

    /// The entry `id` if it is live.
    pub fn get(&self, id: u128) -> Result<Option<Vec<Bytes>>, StreamError> {
        if !self.is_live(id) || id > self.meta.last_id {
            return Ok(None);
        }
        match self.log.get(id).map_err(StreamError::Storage)? {
            Some(r) => Ok(Some(decode_entry(r.value)?)),
            None => Ok(None),
        }
    }

    /// Up to `count` live entries with `start <= id <= end`, ascending, or
    /// descending when `rev`.
    pub fn range(
        &self,
        start: u128,
        end: u128,
        count: usize,
        rev: bool,
    ) -> Result<Vec<(u128, Vec<Bytes>)>, StreamError> {
        let mut out = Vec::new();
        self.range_each(start, end, count, rev, |id, value| {
            out.push((id, decode_entry(value)?));
            Ok(())
        })?;
        Ok(out)
    }

    /// `range` handing each entry to `f` as its id and its encoded value
    /// (the entry grammar of `codec`; `codec::entry_fields` reads it
    /// without copying) instead of decoding it: XRANGE encodes its reply
    /// from these bytes.
    /// An error from `f` stops the walk and is returned.
    pub fn range_each(
        &self,
        start: u128,
        end: u128,
        count: usize,
        rev: bool,
        mut f: impl FnMut(u128, Vec<u8>) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        let lo = start.max(self.meta.trimmed_through.saturating_add(1));
        if count == 0 || lo > end || self.meta.length == 0 {
            return Ok(());
        }
        let mut seen = 0;
        let mut push = |r: crate::storage::Record| -> Result<bool, StreamError> {
            if self.is_live(r.key) && r.key <= self.meta.last_id {
                f(r.key, r.value)?;
                seen += 1;
            }
            Ok(seen < count)
        };
        if rev {
            for r in self.log.iter_rev_from(end) {
                let r = r.map_err(StreamError::Storage)?;
                if r.key < lo || !push(r)? {
                    break;
                }
            }
        } else {
            for r in self.log.iter_from(lo) {
                let r = r.map_err(StreamError::Storage)?;
                if r.key > end || !push(r)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// `range_each` forwards, skipping the blocks of compressed segments
    /// whose summary proves no entry matches `filter` (LOGPARSE GREP; the
    /// caller filters the entries it gets the same way); `f` returns false
    /// to stop.
    pub fn range_filtered(
        &self,
        start: u128,
        end: u128,
        count: usize,
        filter: &crate::storage::clog::BlockFilter,
        mut f: impl FnMut(u128, Vec<u8>) -> Result<bool, StreamError>,
    ) -> Result<(), StreamError> {
        let lo = start.max(self.meta.trimmed_through.saturating_add(1));
        if count == 0 || lo > end || self.meta.length == 0 {
            return Ok(());
        }
        let mut seen = 0;
        for r in self.log.iter_from(lo).with_filter(filter.clone()) {
            let r = r.map_err(StreamError::Storage)?;
            if r.key > end {
                break;
            }
            if self.is_live(r.key) && r.key <= self.meta.last_id {
                seen += 1;
                if !f(r.key, r.value)? || seen >= count {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The entry log's compressed segments (DEBUG LOGBLOCKS).
    pub fn compress_stats(&self) -> crate::storage::CompressStats {
        self.log.compressed_stats()
    }

    /// First live id >= `from`.
    fn first_live_from(&self, from: u128) -> Result<Option<u128>, StreamError> {
        Ok(self.range(from, u128::MAX, 1, false)?.first().map(|e| e.0))
    }

    /// Last live id (Redis's `streamLastValidID`), 0 when empty.
    pub fn last_live(&self) -> Result<u128, StreamError> {
        // The common case without a read: the log's last record is the
        // last id and it is live.
        let last = self.meta.last_id;
        if self.meta.length > 0 && self.log.last_key() == Some(last) && self.is_live(last) {
            return Ok(last);
        }
        Ok(self
            .range(0, u128::MAX, 1, true)?
            .first()
            .map_or(0, |e| e.0))
    }

    /// XDEL: deletes the live ids among `ids`; returns how many.
    pub fn delete(&mut self, ids: &[u128]) -> Result<u64, StreamError> {
        self.flush()?;
        let mut done = Vec::new();
        for &id in ids {
            if done.contains(&id) || self.get(id)?.is_none() {
                continue;
            }
            done.push(id);
        }
        if done.is_empty() {
            return Ok(0);
        }
        let mut meta = self.meta;
        meta.length -= done.len() as u64;
        for &id in &done {
            meta.max_deleted = meta.max_deleted.max(id);
        }
        let first_gone = done.contains(&meta.first);
        let n = done.len() as u64;
        // The new first entry is computed with the deletions applied.
        for &id in &done {
            self.deleted.insert(id);
        }
        if first_gone {
            meta.first = if meta.length == 0 {
                0
            } else {
                self.first_live_from(meta.first)?.unwrap_or(0)
            };
        }
        for &id in &done {
            self.deleted.remove(&id);
        }
        self.write_op(OpKind::Del(done), meta)?;
        Ok(n)
    }

    /// Redis's `streamTrim` over segments instead of listpack nodes.
    /// Returns the number of entries removed.
    pub fn trim(&mut self, spec: TrimSpec) -> Result<u64, StreamError> {
        self.flush()?;
        let m = self.meta;
        let mut removed = 0u64;
        let mut through = m.trimmed_through;
        let mut length = m.length;
        let mut partial = false;
        let mut i = seg_index(&self.segs, through.saturating_add(1)).unwrap_or(0);
        while i < self.segs.len() {
            if let TrimStrategy::MaxLen(max) = spec.strategy {
                if length <= max {
                    break;
                }
            }
            let seg = self.segs[i];
            let next_base = self.segs.get(i + 1).map(|s| s.base);
            if spec.limit > 0 && removed + seg.live > spec.limit {
                break;
            }
            let whole = match spec.strategy {
                TrimStrategy::MaxLen(max) => length - seg.live >= max,
                // All keys of the segment are below the next base.
                TrimStrategy::MinId(min) => match next_base {
                    Some(b) => b <= min,
                    None => m.last_id < min,
                },
            };
            if whole {
                removed += seg.live;
                length -= seg.live;
                through = match next_base {
                    Some(b) => b - 1,
                    None => m.last_id.max(through),
                };
                i += 1;
                continue;
            }
            if spec.approx {
                break;
            }
            partial = true;
            let end = next_base.map_or(u128::MAX, |b| b - 1);
            for r in self.log.iter_from(through.saturating_add(1)) {
                let r = r.map_err(StreamError::Storage)?;
                if r.key > end {
                    break;
                }
                let stop = match spec.strategy {
                    TrimStrategy::MaxLen(max) => length <= max,
                    TrimStrategy::MinId(min) => r.key >= min,
                };
                if stop {
                    break;
                }
                if self.is_live(r.key) {
                    removed += 1;
                    length -= 1;
                }
                through = r.key;
            }
            break;
        }
        let _ = partial;
        if removed == 0 {
            return Ok(0);
        }
        let mut meta = m;
        meta.length = length;
        meta.trimmed_through = through;
        let saved = std::mem::replace(&mut self.meta.trimmed_through, through);
        meta.first = if length == 0 {
            0
        } else {
            self.first_live_from(through.saturating_add(1))?
                .unwrap_or(0)
        };
        self.meta.trimmed_through = saved;
        self.write_op(OpKind::Trim { removed }, meta)?;
        Ok(removed)
    }

    /// XSETID (the caller validated the arguments as Redis does).
    pub fn set_id(
        &mut self,
        last_id: u128,
        entries_added: Option<u64>,
        max_deleted: Option<u128>,
    ) -> Result<(), StreamError> {
        self.flush()?;
        let mut meta = self.meta;
        meta.last_id = last_id;
        // Nothing above the new last id is live (Redis checked the last
        // live entry), so a trim mark above it only hid the entries
        // appended next with ids it covers.
        meta.trimmed_through = meta.trimmed_through.min(last_id);
        if let Some(n) = entries_added {
            meta.entries_added = n;
        }
        if let Some(d) = max_deleted {
            meta.max_deleted = d;
        }
        let lowers_below_log = self.log.last_key().is_some_and(|l| l > last_id);
        self.write_op(OpKind::SetId, meta)?;
        if lowers_below_log {
            // Every entry above the new last id is dead (Redis checked the
            // last live entry): drop them so later appends stay ordered,
            // and checkpoint now so the tail read at startup starts below
            // the entries appended next.
            self.log
                .truncate_after(last_id)
                .map_err(StreamError::Storage)?;
            self.segs.retain(|x| x.base <= last_id);
            self.write_checkpoint_now()?;
        }
        Ok(())
    }

    /// XCONFIG: per-stream retention.
    pub fn set_retention(
        &mut self,
        ms: Option<u64>,
        bytes: Option<u64>,
    ) -> Result<(), StreamError> {
        let meta = self.meta;
        self.write_op(
            OpKind::Config {
                retention_ms: ms,
                retention_bytes: bytes,
            },
            meta,
        )
    }

    /// Applies retention (Kafka's `retention.ms` / `retention.bytes`) by
    /// whole segments: entries older than `ms` milliseconds before
    /// `now_ms`, and the oldest segments while the live segments' bytes
    /// exceed `bytes`. The newest segment is never dropped by size.
    /// Returns the entries removed.
    pub fn apply_retention(
        &mut self,
        ms: Option<u64>,
        bytes: Option<u64>,
        now_ms: u64,
    ) -> Result<u64, StreamError> {
        self.flush()?;
        let mut removed = 0;
        if let Some(ms) = ms {
            let cutoff = now_ms.saturating_sub(ms);
            if cutoff > 0 {
                removed += self.trim(TrimSpec {
                    strategy: TrimStrategy::MinId(super::make_id(cutoff, 0)),
                    approx: true,
                    limit: 0,
                })?;
            }
        }
        if let Some(max) = bytes {
            let segs = self.log.segments();
            let through = self.meta.trimmed_through;
            // Segments not yet wholly trimmed, oldest first.
            let live: Vec<_> = segs
                .windows(2)
                .filter(|w| w[1].base > through.saturating_add(1))
                .map(|w| (w[0].bytes, w[1].base))
                .collect();
            let mut total: u64 =
                live.iter().map(|x| x.0).sum::<u64>() + segs.last().map_or(0, |x| x.bytes);
            let mut min = None;
            for (b, next_base) in live {
                if total <= max {
                    break;
                }
                total -= b;
                min = Some(next_base);
            }
            if let Some(min) = min {
                removed += self.trim(TrimSpec {
                    strategy: TrimStrategy::MinId(min),
                    approx: true,
                    limit: 0,
                })?;
            }
        }
        Ok(removed)
    }

    fn snapshot(&self) -> Checkpoint {
        Checkpoint {
            log_at: self.log.last_key().unwrap_or(0),
            op_seq: self.op_seq,
            meta: self.meta,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            segs: self.segs.clone(),
            deleted: self.deleted.iter().copied().collect(),
            groups: self.groups.clone(),
        }
    }

    fn job(&mut self) -> CheckpointJob {
        self.since_checkpoint = 0;
        self.checkpoint_trim = self.meta.trimmed_through;
        CheckpointJob {
            ck: self.snapshot(),
            log: self.log.clone(),
            ops: self.ops.clone(),
            path: self.dir.join("checkpoint"),
            fs: self.fs.clone(),
        }
    }

    /// A checkpoint to write now, if one is due (or `force` and anything
    /// changed since the last one).
    pub fn checkpoint_job(&mut self, force: bool) -> Option<CheckpointJob> {
        let trim_moved =
            self.meta.trimmed_through != self.checkpoint_trim && self.log.segment_count() > 1;
        let due = self.since_checkpoint >= CHECKPOINT_RECORDS
            || trim_moved
            || (force && self.since_checkpoint > 0);
        due.then(|| self.job())
    }

    /// Writes a checkpoint synchronously (XSETID truncation, COPY).
    pub fn write_checkpoint_now(&mut self) -> Result<(), StreamError> {
        self.flush()?;
        self.job().run()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_segs_removes_whole_then_partial() {
        let mut segs = vec![
            SegStat { base: 1, live: 3 },
            SegStat { base: 10, live: 4 },
            SegStat { base: 20, live: 5 },
        ];
        trim_segs(&mut segs, 12, 5);
        assert_eq!(
            segs,
            vec![SegStat { base: 10, live: 2 }, SegStat { base: 20, live: 5 }]
        );
        trim_segs(&mut segs, 19, 2);
        assert_eq!(segs, vec![SegStat { base: 20, live: 5 }]);
    }
}
