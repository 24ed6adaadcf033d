//! LOGPARSE INGEST: log lines stored as stream entries (see
//! `commands::logparse` for formats and PARSE, `commands::logquery` for
//! the queries over them).
//!
//! INGEST parses each line with a format and appends one entry per line
//! to a stream, as XADD does (the stream's own logs, under the keyspace
//! lock, synced by the WAL's batch/fsync path). Each stream has its own
//! template miner (`stream::IngestState`), persisted through the WAL: the
//! stream's value (type 7) carries the whole miner state when the key is
//! written as a final state (creation, base snapshots, RENAME / COPY), and
//! every INGEST into an existing stream logs what its lines taught the
//! miner (`Effect::StreamIngestLearn`), so after a restart the same lines
//! get the same template ids.

use super::stream_common::{next_auto_id, storage_err, touched, write_stream};
use super::{is_kw, CmdError, CmdResult, Ctx};
use crate::db::effect::Effect;
use crate::db::Keyspace;
use crate::db::{notify, Value};
use crate::logparse::{self, Format, Ingestor, LINE_BYTES_MAX};
use crate::node::{PendingOp, ReplyMode};
use crate::stream::{fmt_id, id_ms, IngestState, PendingLearn, StreamRef};
use bytes::Bytes;
use std::sync::Arc;

fn no_format(name: &[u8]) -> CmdError {
    CmdError::new(format!(
        "ERR no such format '{}'",
        String::from_utf8_lossy(name)
    ))
}

/// How INGEST chooses entry ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ids {
    /// From the event time, kept increasing.
    Time,
    /// As XADD's `*`.
    Auto,
}

/// What one INGEST learned, for `Effect::StreamIngestLearn`.
#[derive(Default)]
struct Learning {
    learned: Vec<Vec<Bytes>>,
    /// Lines per template id (index) that joined it unchanged.
    hits: Vec<u64>,
}

impl Learning {
    fn hit(&mut self, id: u64) {
        // Ids are at most `miner::CLUSTERS_MAX`: the vector stays small.
        let Ok(i) = usize::try_from(id) else {
            return;
        };
        if i >= self.hits.len() {
            self.hits.resize(i + 1, 0);
        }
        self.hits[i] += 1;
    }

    /// (id, lines) for every id hit, ascending.
    fn take_hits(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.hits)
            .into_iter()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .map(|(id, n)| (id as u64, n))
            .collect()
    }
}

/// Entries buffered by INGEST before one write to the stream's log.
const BATCH_ENTRIES: usize = 1024;
/// Bytes buffered by INGEST before one write.
const BATCH_BYTES: usize = 4 << 20;

/// A stream INGEST writes to: the existing one or one created on first
/// use. Entries are encoded into a buffer and appended in batches (one
/// write per batch, as a pipeline of XADDs would make several).
struct Target {
    key: Bytes,
    stream: Option<StreamRef>,
    created: bool,
    /// The stream's last id, buffered entries included.
    last_id: u128,
    buf: Vec<u8>,
    /// Buffered entries: id and range in `buf`.
    pending: Vec<(u128, usize, usize)>,
    /// Written entries: first and last id, count.
    first: Option<u128>,
    last: Option<u128>,
    count: u64,
}

impl Target {
    fn new(ctx: &mut Ctx, key: Bytes) -> Result<Target, CmdError> {
        let stream = write_stream(ctx, &key)?;
        let last_id = match &stream {
            Some(s) => s.lock().map_err(storage_err)?.meta.last_id,
            None => 0,
        };
        Ok(Target {
            key,
            stream,
            created: false,
            last_id,
            buf: Vec::new(),
            pending: Vec::new(),
            first: None,
            last: None,
            count: 0,
        })
    }

    fn stream(&mut self, ctx: &mut Ctx) -> Result<StreamRef, CmdError> {
        if let Some(s) = &self.stream {
            return Ok(s.clone());
        }
        let s = ctx.shared.streams.create().map_err(storage_err)?;
        self.created = true;
        self.stream = Some(s.clone());
        Ok(s)
    }

    /// Buffers an entry with the id `pick(last id)` gives, its fields
    /// written by `encode` (`codec::encode_entry`'s layout).
    fn push(
        &mut self,
        ctx: &mut Ctx,
        pick: impl FnOnce(u128) -> Option<u128>,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), CmdError> {
        let id = pick(self.last_id)
            .filter(|&id| id > self.last_id)
            .ok_or_else(|| {
                CmdError::new(
                    "ERR The stream has exhausted the last possible ID, unable to add more items",
                )
            })?;
        let start = self.buf.len();
        encode(&mut self.buf);
        self.pending.push((id, start, self.buf.len()));
        self.last_id = id;
        if self.pending.len() >= BATCH_ENTRIES || self.buf.len() >= BATCH_BYTES {
            self.flush(ctx)?;
        }
        Ok(())
    }

    /// Writes the buffered entries.
    fn flush(&mut self, ctx: &mut Ctx) -> Result<(), CmdError> {
        let (Some(&(first, ..)), Some(&(last, ..))) = (self.pending.first(), self.pending.last())
        else {
            return Ok(());
        };
        let s = self.stream(ctx)?;
        let mut g = s.lock().map_err(storage_err)?;
        let recs: Vec<(u128, &[u8])> = self
            .pending
            .iter()
            .map(|&(id, a, b)| (id, &self.buf[a..b]))
            .collect();
        let r = g.append_encoded(&recs).map_err(storage_err);
        let n = recs.len() as u64;
        drop(recs);
        drop(g);
        if r.is_ok() && ctx.ks.logs_commands() {
            self.propagate(ctx);
        }
        self.pending.clear();
        self.buf.clear();
        r?;
        self.first.get_or_insert(first);
        self.last = Some(last);
        self.count += n;
        Ok(())
    }

    /// Logs the buffered entries for the replication stream as the XADDs
    /// with explicit ids a pipeline of XADDs would propagate (Redis 7.0's
    /// `XADD key <id> field value ...`), in order, before the key's `Set`
    /// when this INGEST creates the stream (so the first XADD creates it
    /// on the replica, as `replication::propagate` expects).
    fn propagate(&self, ctx: &mut Ctx) {
        let db = ctx.db();
        for &(id, a, b) in &self.pending {
            let mut argv = Vec::with_capacity(3 + 2 * 8);
            argv.push(Bytes::from_static(b"XADD"));
            argv.push(self.key.clone());
            argv.push(Bytes::from(fmt_id(id)));
            // Our own encoding (`encode_parsed`, the malformed layout):
            // a pair count, then length-prefixed names and values.
            let mut rest = self.buf.get(a + 4..b).unwrap_or_default();
            while let Some(len) = rest.get(..4) {
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let Some(f) = rest.get(4..4 + len) else {
                    break;
                };
                argv.push(Bytes::copy_from_slice(f));
                rest = &rest[4 + len..];
            }
            ctx.ks.log_command(db, argv);
        }
    }

    /// Registers the writes: the key (created or touched), notifications.
    fn finish(&self, ctx: &mut Ctx) {
        let (Some(s), true) = (&self.stream, self.count > 0) else {
            return;
        };
        let db = ctx.db();
        if self.created {
            let e = ctx.ks.entry(Value::Stream(s.clone()), 0);
            ctx.ks.dbs[db].insert(self.key.clone(), e);
            ctx.ks.notify(notify::NEW, "new", db, &self.key);
            ctx.ks.stats.dirty += self.count;
            ctx.ks.stream_written(s);
        } else {
            touched(ctx, &self.key, s, self.count);
            // Blocked XREAD, XREADGROUP and TAIL FOLLOW clients (a new
            // key signals itself).
            ctx.ks.signal_key_ready(db, &self.key);
        }
        ctx.ks.notify(notify::STREAM, "xadd", db, &self.key);
    }
}

fn put_field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Encodes the stream entry of a parsed line (`codec::encode_entry`'s
/// layout): `ts`, `level`, `component`, `content`, `template_id` (each
/// when present), then the format's fields (a field named like one of
/// those is left out when that one is present).
fn encode_parsed(
    out: &mut Vec<u8>,
    p: &logparse::format::Record<'_>,
    ts: Option<&logparse::Timestamp>,
    tid: Option<u64>,
) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut n = 0u32;
    if let Some(ts) = ts {
        // The ISO text goes straight into the entry: length patched after.
        put_field(out, b"ts");
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        ts.write_iso(out);
        let len = (out.len() - len_at - 4) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        n += 1;
    }
    let mut pair = |out: &mut Vec<u8>, k: &[u8], v: &[u8]| {
        put_field(out, k);
        put_field(out, v);
        n += 1;
    };
    if let Some(l) = &p.level {
        pair(out, b"level", l);
    }
    if let Some(c) = &p.component {
        pair(out, b"component", c);
    }
    pair(out, b"content", &p.content);
    if let Some(t) = tid {
        pair(
            out,
            b"template_id",
            itoa::Buffer::new().format(t).as_bytes(),
        );
    }
    for (k, v) in p.fields.iter() {
        let shadowed = match k.as_ref() {
            b"ts" => ts.is_some(),
            b"level" => p.level.is_some(),
            b"component" => p.component.is_some(),
            b"content" => true,
            b"template_id" => tid.is_some(),
            _ => false,
        };
        if !shadowed {
            pair(out, k, v);
        }
    }
    out[at..at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Lines per chunk of an INGEST run by its connection (see `IngestJob`).
pub const CHUNK_LINES: usize = 4096;
/// Bytes of lines per chunk, at most (a chunk holds at least one line).
pub const CHUNK_BYTES: usize = 4 << 20;

/// What a mined line became: its entry's fields, encoded
/// (`codec::encode_entry`'s layout), waiting for an id.
enum Item {
    /// A parsed line, with its event time.
    Parsed(Option<u64>),
    /// A malformed line (for `<key>:malformed`).
    Bad,
}

/// Lines parsed and mined, not yet appended.
#[derive(Default)]
pub struct Mined {
    buf: Vec<u8>,
    items: Vec<(Item, usize, usize)>,
}

/// Parses and mines `lines` with the stream's miner: pure work, done off
/// the keyspace lock for a chunk of a top-level INGEST. What the miner
/// learned is queued in `st.pending` with the miner's next generation
/// (when a line parsed, or `attached`: the state was just attached to an
/// existing stream and replay must attach it too).
fn mine<'a>(
    st: &mut IngestState,
    lines: impl Iterator<Item = &'a [u8]>,
    year: i32,
    attached: bool,
) -> Mined {
    let mut learning = Learning::default();
    let mut m = Mined::default();
    let mut parsed = 0u64;
    for line in lines {
        let start = m.buf.len();
        let reason = match st.ingestor.parse(line, year) {
            Ok(p) => {
                let ts = p.record.ts;
                let ms = ts.map(|t| t.unix_ms().max(0) as u64);
                encode_parsed(&mut m.buf, &p.record, ts.as_ref(), p.learned.map(|l| l.id));
                match p.learned {
                    Some(l) if l.changed => learning.learned.push(
                        p.tokens()
                            .iter()
                            .map(|t| Bytes::copy_from_slice(t))
                            .collect(),
                    ),
                    Some(l) => learning.hit(l.id),
                    None => {}
                }
                m.items.push((Item::Parsed(ms), start, m.buf.len()));
                parsed += 1;
                continue;
            }
            Err(e) => e.0,
        };
        let raw = &line[..line.len().min(LINE_BYTES_MAX)];
        let out = &mut m.buf;
        out.extend_from_slice(&3u32.to_le_bytes());
        put_field(out, b"raw");
        put_field(out, raw);
        put_field(out, b"reason");
        put_field(out, reason.as_bytes());
        put_field(out, b"bytes");
        put_field(out, line.len().to_string().as_bytes());
        m.items.push((Item::Bad, start, m.buf.len()));
    }
    if attached || parsed > 0 {
        let gen = st.ingestor.generation() + 1;
        st.ingestor.set_generation(gen);
        let hits = learning.take_hits();
        st.pending.push(PendingLearn {
            gen,
            learned: learning.learned,
            hits,
        });
    }
    m
}

/// Appends mined lines to the stream and to `<key>:malformed`, ids
/// chosen now (under the keyspace lock). On an error (storage, ids
/// exhausted) the entries written before it stay, as after a failed XADD
/// in a pipeline.
fn append(
    ctx: &mut Ctx,
    mined: &Mined,
    ids: Ids,
    main: &mut Target,
    bad: &mut Target,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    for (item, a, b) in &mined.items {
        let fields = &mined.buf[*a..*b];
        match *item {
            Item::Parsed(ms) => {
                let pick = |last: u128| match (ids, ms) {
                    (Ids::Time, Some(ms)) => next_auto_id(last, ms),
                    (Ids::Time, None) => next_auto_id(last, id_ms(last)),
                    (Ids::Auto, _) => next_auto_id(last, now),
                };
                main.push(ctx, pick, |out| out.extend_from_slice(fields))?;
            }
            Item::Bad => bad.push(
                ctx,
                |last| next_auto_id(last, now),
                |out| out.extend_from_slice(fields),
            )?,
        }
    }
    main.flush(ctx)?;
    bad.flush(ctx)
}

/// Logs the learning queued in the stream's ingest state, in order, as
/// `StreamIngestLearn` effects of `key` in `db` (where the stream is now:
/// under the keyspace lock, so replay finds it there at this point).
fn log_pending(ctx: &mut Ctx, db: usize, key: &Bytes, st: &mut IngestState) {
    let spec = st.ingestor.format().spec().clone();
    for p in std::mem::take(&mut st.pending) {
        ctx.ks.log_op(
            db,
            key,
            Effect::StreamIngestLearn {
                db: db as u8,
                key: key.clone(),
                name: st.name.clone(),
                spec: spec.clone(),
                learned: p.learned,
                hits: p.hits,
                gen: p.gen,
            },
        );
    }
}

/// The stream's ingest state for INGEST with format `name`: attached
/// (a new one) when the stream has none (`true`), an error when it was
/// ingested with another format.
fn state_for<'g>(
    slot: &'g mut Option<Box<IngestState>>,
    name: &Bytes,
    format: &Arc<Format>,
) -> Result<(&'g mut IngestState, bool), CmdError> {
    let attached = slot.is_none();
    let st = slot.get_or_insert_with(|| {
        Box::new(IngestState::new(
            name.clone(),
            Ingestor::new(format.clone()),
        ))
    });
    if st.name != *name {
        return Err(CmdError::new(format!(
            "ERR stream was ingested with format '{}'",
            String::from_utf8_lossy(&st.name)
        )));
    }
    Ok((st, attached))
}

fn write_reply(
    out: &mut crate::protocol::Out,
    parsed: u64,
    malformed: u64,
    first: Option<u128>,
    last: Option<u128>,
) {
    out.map(4);
    out.bulk(b"parsed");
    out.int(parsed as i64);
    out.bulk(b"malformed");
    out.int(malformed as i64);
    for (k, id) in [(&b"first_id"[..], first), (b"last_id", last)] {
        out.bulk(k);
        match id {
            Some(id) => out.bulk(fmt_id(id).as_bytes()),
            None => out.null(),
        }
    }
}

fn malformed_key(key: &[u8]) -> Bytes {
    let mut k = key.to_vec();
    k.extend_from_slice(b":malformed");
    Bytes::from(k)
}

/// LOGPARSE INGEST <key> <format> <text> [<text> ...] [IDS TIME|AUTO]
///
/// Replies with a map (flat array in RESP2): `parsed`, `malformed`,
/// `first_id`, `last_id` (null when nothing was parsed).
///
/// Run by a connection (not inside MULTI/EXEC: `Client::chunked_ingest`
/// and not `in_exec`), the handler only checks
/// the arguments and the keys and hands the connection an `IngestJob`:
/// the lines are then parsed and mined off the keyspace lock and appended
/// under it chunk by chunk (`CHUNK_LINES`), each chunk one WAL unit, so
/// other clients are served between chunks and see the stream grow a
/// chunk at a time. Inside EXEC the whole INGEST runs under the lock.
pub(super) fn ingest(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut end = args.len();
    let mut ids = None;
    if end >= 7 && is_kw(&args[end - 2], "ids") {
        let v = &args[end - 1];
        ids = Some(if is_kw(v, "time") {
            Ids::Time
        } else if is_kw(v, "auto") {
            Ids::Auto
        } else {
            return Err(CmdError::syntax());
        });
        end -= 2;
    }
    let key = args[2].clone();
    let name = args[3].clone();
    let texts = &args[4..end];
    let Some((format, _)) = ctx.ks.logparse.format(&name) else {
        return Err(no_format(&name));
    };
    let ids = ids.unwrap_or(
        if format.spec().time.is_some() || format.spec().keys.time.is_some() {
            Ids::Time
        } else {
            Ids::Auto
        },
    );
    let mut main = Target::new(ctx, key.clone())?;
    let mut bad = Target::new(ctx, malformed_key(&key))?;
    let year = logparse::year_of_unix_ms(ctx.now_ms);
    if ctx.client.chunked_ingest && !ctx.client.in_exec {
        // Checked now, so a mismatch is answered at once.
        if let Some(s) = &main.stream {
            let slot = s.0.ingest.lock();
            if let Some(st) = slot.as_deref().filter(|st| st.name != name) {
                return Err(CmdError::new(format!(
                    "ERR stream was ingested with format '{}'",
                    String::from_utf8_lossy(&st.name)
                )));
            }
        }
        let reply = ctx.client.reply_mode == ReplyMode::On;
        ctx.client.pending = Some(PendingOp::Ingest(Box::new(IngestJob {
            key,
            name,
            format,
            texts: texts.to_vec(),
            ids,
            year,
            at: (0, 0),
            reply,
            fresh: None,
            parsed: 0,
            malformed: 0,
            first: None,
            last: None,
        })));
        return Ok(());
    }
    let all = texts.iter().flat_map(|t| logparse::lines(t));
    let db = ctx.db();
    let r = match main.stream.clone() {
        Some(s) => {
            let mut slot = s.0.ingest.lock();
            let (st, attached) = state_for(&mut slot, &name, &format)?;
            let mined = mine(st, all, year, attached);
            let r = append(ctx, &mined, ids, &mut main, &mut bad);
            log_pending(ctx, db, &key, st);
            r
        }
        None => {
            let mut st = IngestState::new(name.clone(), Ingestor::new(format.clone()));
            let mined = mine(&mut st, all, year, false);
            let r = append(ctx, &mined, ids, &mut main, &mut bad);
            if let Some(s) = &main.stream {
                // Created: its value (with the whole miner) is logged as a Set.
                st.pending.clear();
                *s.0.ingest.lock() = Some(Box::new(st));
            }
            r
        }
    };
    main.finish(ctx);
    bad.finish(ctx);
    r?;
    write_reply(ctx.out, main.count, bad.count, main.first, main.last);
    Ok(())
}

/// A top-level INGEST handed to its connection (`server::connection`
/// drives it): the lines still to store and the totals so far.
#[derive(Debug)]
pub struct IngestJob {
    key: Bytes,
    name: Bytes,
    format: Arc<Format>,
    texts: Vec<Bytes>,
    ids: Ids,
    year: i32,
    /// Next line: text index and byte offset in it.
    at: (usize, usize),
    /// The reply is sent (not under CLIENT REPLY OFF / SKIP).
    pub reply: bool,
    /// The ingest state mined for a stream this INGEST creates, before the
    /// stream exists (the first chunk that stores a line creates it).
    fresh: Option<Box<IngestState>>,
    parsed: u64,
    malformed: u64,
    first: Option<u128>,
    last: Option<u128>,
}

impl crate::node::clients::Job for IngestJob {
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// Where a chunk is mined: the stream the key held when the chunk began
/// (None: the key held no stream).
pub struct Prepared(Option<StreamRef>);

impl Prepared {
    pub fn stream(&self) -> Option<&StreamRef> {
        self.0.as_ref()
    }
}

/// What `IngestJob::apply` did with a mined chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Stored.
    Done,
    /// The key no longer holds the stream the chunk was mined for (deleted,
    /// renamed, replaced meanwhile): mine the chunk again.
    Changed,
}

impl IngestJob {
    /// The next chunk's lines (as `logparse::lines` splits them), empty
    /// when every line is stored.
    pub fn next_chunk(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < CHUNK_LINES && bytes < CHUNK_BYTES {
            let (ti, pos) = self.at;
            let Some(text) = self.texts.get(ti) else {
                break;
            };
            if pos >= text.len() {
                self.at = (ti + 1, 0);
                continue;
            }
            let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i);
            self.at = (ti, end + 1);
            let mut l = text.slice(pos..end);
            if l.last() == Some(&b'\r') {
                l.truncate(l.len() - 1);
            }
            if !l.is_empty() {
                bytes += l.len();
                out.push(l);
            }
        }
        out
    }

    /// Under the keyspace lock: the stream the key holds now (read only:
    /// an expired key counts as absent, `apply` deletes it).
    pub fn prepare(&self, ks: &Keyspace, db: usize, now_ms: u64) -> Result<Prepared, CmdError> {
        match ks.dbs[db].peek(&self.key) {
            Some(e) if e.expires_at_ms == 0 || e.expires_at_ms > now_ms => match &e.value {
                Value::Stream(s) => Ok(Prepared(Some(s.clone()))),
                _ => Err(CmdError::wrong_type()),
            },
            _ => Ok(Prepared(None)),
        }
    }

    /// Off the keyspace lock: parses and mines `lines` with the miner of
    /// the prepared stream, whose ingest state `slot` is (locked by the
    /// caller while it still held the keyspace lock, so that nothing
    /// encodes the state between the two), or with the job's own miner
    /// when the key held no stream.
    pub fn mine(
        &mut self,
        slot: Option<&mut Option<Box<IngestState>>>,
        lines: &[Bytes],
    ) -> Result<Mined, CmdError> {
        let lines = lines.iter().map(|l| &l[..]);
        match slot {
            Some(slot) => {
                let (st, attached) = state_for(slot, &self.name, &self.format)?;
                Ok(mine(st, lines, self.year, attached))
            }
            None => {
                let (name, format) = (self.name.clone(), self.format.clone());
                let st = self
                    .fresh
                    .get_or_insert_with(|| Box::new(IngestState::new(name, Ingestor::new(format))));
                Ok(mine(st, lines, self.year, false))
            }
        }
    }

    /// Under the keyspace lock: stores a mined chunk (entries, learning) as
    /// one command would (the caller makes its effects one WAL unit).
    pub fn apply(
        &mut self,
        ctx: &mut Ctx,
        prep: Prepared,
        mined: &Mined,
    ) -> Result<Applied, CmdError> {
        let reply_start = ctx.out.buf.len();
        let r = self.apply_inner(ctx, prep, mined);
        ctx.ks.end_command();
        ctx.publish_notifications(reply_start);
        r
    }

    fn apply_inner(
        &mut self,
        ctx: &mut Ctx,
        prep: Prepared,
        mined: &Mined,
    ) -> Result<Applied, CmdError> {
        let db = ctx.db();
        let main = Target::new(ctx, self.key.clone());
        let same = match (&prep.0, main.as_ref().map(|m| &m.stream)) {
            (Some(a), Ok(Some(b))) => Arc::ptr_eq(&a.0, &b.0),
            (None, Ok(None)) => true,
            _ => false,
        };
        if !same {
            if let Some(s) = &prep.0 {
                // Its learning is logged where the stream is now (SWAPDB
                // moves it whole); elsewhere its value was logged whole
                // (RENAME, MOVE) or it is gone.
                let key = self.key.clone();
                if let Some(at) = (0..ctx.ks.dbs.len()).find(|&d| {
                    matches!(ctx.ks.dbs[d].peek(&key).map(|e| &e.value),
                        Some(Value::Stream(t)) if Arc::ptr_eq(&t.0, &s.0))
                }) {
                    if let Some(st) = s.0.ingest.lock().as_deref_mut() {
                        log_pending(ctx, at, &key, st);
                    }
                } else if let Some(st) = s.0.ingest.lock().as_deref_mut() {
                    st.pending.clear();
                }
            }
            self.fresh = None;
            main?;
            return Ok(Applied::Changed);
        }
        let mut main = main?;
        let mut bad = Target::new(ctx, malformed_key(&self.key))?;
        let r = append(ctx, mined, self.ids, &mut main, &mut bad);
        match &prep.0 {
            Some(s) => {
                if let Some(st) = s.0.ingest.lock().as_deref_mut() {
                    log_pending(ctx, db, &self.key, st);
                }
            }
            None => {
                if let (Some(s), Some(mut st)) = (&main.stream, self.fresh.take()) {
                    // Created: its value (with the whole miner) is logged
                    // as a Set.
                    st.pending.clear();
                    *s.0.ingest.lock() = Some(st);
                }
            }
        }
        main.finish(ctx);
        bad.finish(ctx);
        self.parsed += main.count;
        self.malformed += bad.count;
        if self.first.is_none() {
            self.first = main.first;
        }
        if main.last.is_some() {
            self.last = main.last;
        }
        r?;
        Ok(Applied::Done)
    }

    /// Writes INGEST's reply with the totals.
    pub fn reply_to(&self, out: &mut crate::protocol::Out) {
        write_reply(out, self.parsed, self.malformed, self.first, self.last);
    }

    /// Lines stored so far (parsed and malformed).
    pub fn stored(&self) -> u64 {
        self.parsed + self.malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::make_id;

    #[test]
    fn ids_increase_when_time_goes_back() {
        let a = next_auto_id(0, 5000).unwrap();
        let b = next_auto_id(a, 4000).unwrap();
        assert_eq!(a, make_id(5000, 0));
        assert_eq!(b, make_id(5000, 1));
    }
}
