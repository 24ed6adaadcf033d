//! Effects: what a write command did to the keyspace, in a form whose replay
//! is deterministic and never reads the clock.
//!
//! Every write is logged as its effect, never as the request: the final
//! state of each key it touched (`Set` with the value and the absolute
//! expiry, or `Del`), plus the whole-database operations FLUSHDB, FLUSHALL
//! and SWAPDB. So `EXPIRE k 10` logs the key with an absolute expiry,
//! `INCRBYFLOAT` a `Set` of the resulting string, RENAME a `Del` and a `Set`,
//! a key removed by lazy or active expiry a `Del`. Final states are
//! idempotent, which the fuzzy base snapshot relies on (ARCHITECTURE.md).
//! One WAL record holds the effects of one command or of one whole EXEC
//! block, so recovery applies a transaction whole or not at all.
//!
//! The collection effects and values (`tag::LPUSH` ... `tag::ZREM`;
//! `value_type::LIST` ... `value_type::ZSET`) are encoded, decoded and
//! applied in `collections.rs`.
//!
//! Encoding: little-endian, explicit sizes, the tags and value types named
//! in `tags.rs`; the grammar of every effect and value is in
//! docs/format.md ("Unit"), which a test checks against `tags.rs`.

mod collections;
pub mod record;
pub mod tags;

pub use tags::{tag, value_type};

use super::engines::{LibraryChange, RestorePolicy};
use super::{Keyspace, ReplPosition, StrForm, StrValue, Value, DATABASES};
use crate::logparse::FormatSpec;
use crate::storage::bytes::{Malformed, Reader as ByteReader};
use bytes::Bytes;

const UNIT_VERSION: u8 = 1;

/// One keyspace effect.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Set {
        db: u8,
        key: Bytes,
        value: Value,
        expires_at_ms: u64,
    },
    Del {
        db: u8,
        key: Bytes,
    },
    Expire {
        db: u8,
        key: Bytes,
        at_ms: u64,
    },
    FlushDb {
        db: u8,
    },
    FlushAll,
    SwapDb {
        a: u8,
        b: u8,
    },
    /// APPEND to an existing string (an APPEND that creates the key is a Set).
    Append {
        db: u8,
        key: Bytes,
        data: Bytes,
    },
    /// SETRANGE on an existing string.
    SetRange {
        db: u8,
        key: Bytes,
        offset: u64,
        data: Bytes,
    },
    /// Sorted set members set to these scores (ZADD, ZINCRBY: the resulting
    /// score, never the increment); the key is created if missing, and
    /// ends in the encoding `skiplist` says.
    ZAdd {
        db: u8,
        key: Bytes,
        skiplist: bool,
        pairs: Vec<(Bytes, f64)>,
    },
    /// Sorted set members removed (ZREM, ZPOP*, ZREMRANGEBY*).
    ZRem {
        db: u8,
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// Fields set in an existing hash (HSET, HSETNX, HINCRBY and
    /// HINCRBYFLOAT with their resulting values). `table`: the hash ends in
    /// table form (conversions are logged, never recomputed from limits).
    HashSet {
        db: u8,
        key: Bytes,
        table: bool,
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// Fields deleted from a hash that still has others (HDEL).
    HashDel {
        db: u8,
        key: Bytes,
        fields: Vec<Bytes>,
    },
    /// Members added to an existing set (SADD, SMOVE's destination).
    SetAdd {
        db: u8,
        key: Bytes,
        table: bool,
        members: Vec<Bytes>,
    },
    /// Members removed from a set that still has others (SREM, SPOP,
    /// SMOVE's source).
    SetRem {
        db: u8,
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// LPUSH/RPUSH (and the push half of LMOVE): elements in push order.
    ListPush {
        db: u8,
        key: Bytes,
        left: bool,
        items: Vec<Bytes>,
    },
    /// LPOP/RPOP (and the pop half of LMOVE, BLPOP, LMPOP).
    ListPop {
        db: u8,
        key: Bytes,
        left: bool,
        count: u64,
    },
    /// LSET at an absolute index.
    ListSet {
        db: u8,
        key: Bytes,
        index: u64,
        value: Bytes,
    },
    /// LINSERT, resolved to an absolute position.
    ListInsert {
        db: u8,
        key: Bytes,
        index: u64,
        value: Bytes,
    },
    /// LREM as the client gave it: deterministic on the same list.
    ListRem {
        db: u8,
        key: Bytes,
        count: i64,
        value: Bytes,
    },
    /// LTRIM, resolved to the kept range `start..end`.
    ListTrim {
        db: u8,
        key: Bytes,
        start: u64,
        end: u64,
    },
    /// LOGPARSE FORMAT SET: defines or replaces a user format (its shared
    /// miner starts empty). Formats are not keys: FLUSHALL keeps them.
    LogFormatSet {
        name: Bytes,
        spec: FormatSpec,
    },
    /// LOGPARSE FORMAT DEL.
    LogFormatDel {
        name: Bytes,
    },
    /// A PARSE changed the format's shared miner: the masked tokens it
    /// learned, replayed in order (learning is deterministic).
    LogMinerLearn {
        name: Bytes,
        tokens: Vec<Bytes>,
    },
    /// A shared miner's whole state (base snapshots).
    LogMinerState {
        name: Bytes,
        state: Bytes,
    },
    /// FUNCTION LOAD [REPLACE] of a library (replayed by loading the code
    /// again). Functions are not keys: FLUSHALL keeps them.
    FunctionLoad {
        replace: bool,
        code: Bytes,
    },
    /// FUNCTION DELETE.
    FunctionDelete {
        name: Bytes,
    },
    /// FUNCTION FLUSH.
    FunctionFlush,
    /// FUNCTION RESTORE of these libraries with this policy (bases: the
    /// whole library set, policy FLUSH).
    FunctionRestore {
        policy: u8,
        codes: Vec<Bytes>,
    },
    /// LOGPARSE INGEST into an existing stream changed its miner: the
    /// format (the stream gets an ingestor with it if it has none) and the
    /// masked tokens of every line that changed the miner, in order.
    StreamIngestLearn {
        db: u8,
        key: Bytes,
        name: Bytes,
        spec: FormatSpec,
        learned: Vec<Vec<Bytes>>,
        /// Lines that joined a template without changing it: (id, lines).
        hits: Vec<(u64, u64)>,
        /// The miner's generation after this learning (`Miner::generation`):
        /// replay skips the effect when the stream's miner already has it
        /// (a state encoded after the learning, by a base or a RENAME,
        /// while the effect was logged later). 0 (tag 74, older logs):
        /// always applied.
        gen: u64,
    },
    /// A replica's replication position after the link batch the units
    /// before it belong to (`replication::replica`): the primary's id,
    /// the offset of the batch's last byte, the database its stream had
    /// selected. Written as a unit of its own at the end of the batch;
    /// replay keeps it only while it is the last unit (see
    /// `Keyspace::repl_position`).
    ReplPosition {
        replid: Bytes,
        offset: u64,
        db: u8,
    },
    /// A command for the replication stream only, verbatim: what Redis
    /// 7.0 propagates for a stream command (XADD with its generated id,
    /// XCLAIM for an XREADGROUP delivery, ...; `commands::stream_common::
    /// propagate`). The stream's own logs hold the state: replay ignores
    /// it. Logged only while a primary propagates
    /// (`Keyspace::propagate_streams`).
    Command {
        db: u8,
        argv: Vec<Bytes>,
    },
}

impl Effect {
    /// The LOGPARSE format an effect is about, if it is a format effect.
    pub fn log_format(&self) -> Option<&Bytes> {
        match self {
            Effect::LogFormatSet { name, .. }
            | Effect::LogFormatDel { name }
            | Effect::LogMinerLearn { name, .. }
            | Effect::LogMinerState { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether this is a FUNCTION effect (the library set, not keys).
    pub fn is_function(&self) -> bool {
        matches!(
            self,
            Effect::FunctionLoad { .. }
                | Effect::FunctionDelete { .. }
                | Effect::FunctionFlush
                | Effect::FunctionRestore { .. }
        )
    }

    /// The one key this effect changes, or None for whole-database effects
    /// (FLUSHDB, FLUSHALL, SWAPDB). Replay uses it to skip effects a base
    /// already reflects (`node::persist`), so every per-key effect must
    /// return its key here.
    pub fn target(&self) -> Option<(u8, &Bytes)> {
        match self {
            Effect::Set { db, key, .. }
            | Effect::Del { db, key }
            | Effect::Expire { db, key, .. }
            | Effect::Append { db, key, .. }
            | Effect::SetRange { db, key, .. }
            | Effect::ZAdd { db, key, .. }
            | Effect::ZRem { db, key, .. }
            | Effect::HashSet { db, key, .. }
            | Effect::HashDel { db, key, .. }
            | Effect::SetAdd { db, key, .. }
            | Effect::SetRem { db, key, .. }
            | Effect::ListPush { db, key, .. }
            | Effect::ListPop { db, key, .. }
            | Effect::ListSet { db, key, .. }
            | Effect::ListInsert { db, key, .. }
            | Effect::ListRem { db, key, .. }
            | Effect::ListTrim { db, key, .. }
            | Effect::StreamIngestLearn { db, key, .. } => Some((*db, key)),
            Effect::FlushDb { .. } | Effect::FlushAll | Effect::SwapDb { .. } => None,
            Effect::LogFormatSet { .. }
            | Effect::LogFormatDel { .. }
            | Effect::LogMinerLearn { .. }
            | Effect::LogMinerState { .. } => None,
            Effect::FunctionLoad { .. }
            | Effect::FunctionDelete { .. }
            | Effect::FunctionFlush
            | Effect::FunctionRestore { .. } => None,
            Effect::ReplPosition { .. } | Effect::Command { .. } => None,
        }
    }

    /// The key a `Command` effect is about: the first key of its command
    /// (XGROUP's is its third argument), None for any other effect.
    pub fn command_key(&self) -> Option<(u8, &Bytes)> {
        let Effect::Command { db, argv } = self else {
            return None;
        };
        let i = if argv.first()?.eq_ignore_ascii_case(b"xgroup") {
            2
        } else {
            1
        };
        Some((*db, argv.get(i)?))
    }
}

/// A unit that cannot be decoded: the WAL record passed its CRC, so this is
/// a bug or a foreign file, reported with what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed effect record: {0}")]
pub struct DecodeError(pub &'static str);

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// The bytes a value takes in the WAL's encoding (DEBUG OBJECT's
/// `serializedlength`: redlog has no RDB).
pub fn serialized_len(v: &Value) -> usize {
    let mut out = Vec::new();
    put_value(&mut out, v);
    out.len()
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => {
            out.push(value_type::STRING);
            out.push(match s.form {
                StrForm::Encoded => 0,
                StrForm::Plain => 1,
                StrForm::Raw => 2,
                StrForm::IntCopy => 3,
            });
            put_bytes(out, &s.data);
        }
        Value::ZSet(_) | Value::Hash(_) | Value::Set(_) | Value::List(_) => {
            collections::put_value(out, v)
        }
        Value::Stream(s) => match s.0.ingest.lock().as_deref() {
            None => {
                out.push(value_type::STREAM);
                out.extend_from_slice(&s.0.id.to_le_bytes());
            }
            Some(ing) => {
                out.push(value_type::STREAM_INGEST);
                out.extend_from_slice(&s.0.id.to_le_bytes());
                put_bytes(out, &ing.name);
                ing.ingestor.format().spec().encode(out);
                let mut state = Vec::new();
                ing.ingestor.encode_state(&mut state);
                put_bytes(out, &state);
            }
        },
    }
}

fn put_list(out: &mut Vec<u8>, items: &[Bytes]) {
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for i in items {
        put_bytes(out, i);
    }
}

fn put_db_key(out: &mut Vec<u8>, tag: u8, db: u8, key: &[u8]) {
    out.push(tag);
    out.push(db);
    put_bytes(out, key);
}

/// Encodes one atomic unit of effects.
pub fn encode_unit(effects: &[Effect], out: &mut Vec<u8>) {
    out.push(UNIT_VERSION);
    out.extend_from_slice(&(effects.len() as u32).to_le_bytes());
    for e in effects {
        match e {
            Effect::Set {
                db,
                key,
                value,
                expires_at_ms,
            } => {
                out.push(tag::SET);
                out.push(*db);
                put_bytes(out, key);
                out.extend_from_slice(&expires_at_ms.to_le_bytes());
                put_value(out, value);
            }
            Effect::Del { db, key } => {
                out.push(tag::DEL);
                out.push(*db);
                put_bytes(out, key);
            }
            Effect::Expire { db, key, at_ms } => {
                out.push(tag::EXPIRE);
                out.push(*db);
                put_bytes(out, key);
                out.extend_from_slice(&at_ms.to_le_bytes());
            }
            Effect::FlushDb { db } => {
                out.push(tag::FLUSHDB);
                out.push(*db);
            }
            Effect::FlushAll => out.push(tag::FLUSHALL),
            Effect::SwapDb { a, b } => {
                out.push(tag::SWAPDB);
                out.push(*a);
                out.push(*b);
            }
            Effect::Append { db, key, data } => {
                out.push(tag::APPEND);
                out.push(*db);
                put_bytes(out, key);
                put_bytes(out, data);
            }
            Effect::SetRange {
                db,
                key,
                offset,
                data,
            } => {
                out.push(tag::SETRANGE);
                out.push(*db);
                put_bytes(out, key);
                out.extend_from_slice(&offset.to_le_bytes());
                put_bytes(out, data);
            }
            Effect::ZAdd { .. }
            | Effect::ZRem { .. }
            | Effect::HashSet { .. }
            | Effect::HashDel { .. }
            | Effect::SetAdd { .. }
            | Effect::SetRem { .. }
            | Effect::ListPush { .. }
            | Effect::ListPop { .. }
            | Effect::ListSet { .. }
            | Effect::ListInsert { .. }
            | Effect::ListRem { .. }
            | Effect::ListTrim { .. } => collections::encode(e, out),
            Effect::LogFormatSet { name, spec } => {
                out.push(tag::LOGFORMAT_SET);
                put_bytes(out, name);
                spec.encode(out);
            }
            Effect::LogFormatDel { name } => {
                out.push(tag::LOGFORMAT_DEL);
                put_bytes(out, name);
            }
            Effect::LogMinerLearn { name, tokens } => {
                out.push(tag::LOGMINER_LEARN);
                put_bytes(out, name);
                out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
                for t in tokens {
                    put_bytes(out, t);
                }
            }
            Effect::LogMinerState { name, state } => {
                out.push(tag::LOGMINER_STATE);
                put_bytes(out, name);
                put_bytes(out, state);
            }
            Effect::FunctionLoad { replace, code } => {
                out.push(tag::FUNCTION_LOAD);
                out.push(u8::from(*replace));
                put_bytes(out, code);
            }
            Effect::FunctionDelete { name } => {
                out.push(tag::FUNCTION_DELETE);
                put_bytes(out, name);
            }
            Effect::FunctionFlush => out.push(tag::FUNCTION_FLUSH),
            Effect::ReplPosition { replid, offset, db } => {
                out.push(tag::REPL_POSITION);
                put_bytes(out, replid);
                out.extend_from_slice(&offset.to_le_bytes());
                out.push(*db);
            }
            Effect::Command { db, argv } => {
                out.push(tag::COMMAND);
                out.push(*db);
                out.extend_from_slice(&(argv.len() as u32).to_le_bytes());
                for a in argv {
                    put_bytes(out, a);
                }
            }
            Effect::FunctionRestore { policy, codes } => {
                out.push(tag::FUNCTION_RESTORE);
                out.push(*policy);
                out.extend_from_slice(&(codes.len() as u32).to_le_bytes());
                for c in codes {
                    put_bytes(out, c);
                }
            }
            Effect::StreamIngestLearn {
                db,
                key,
                name,
                spec,
                learned,
                hits,
                gen,
            } => {
                put_db_key(out, tag::STREAM_INGEST_LEARN, *db, key);
                put_bytes(out, name);
                spec.encode(out);
                out.extend_from_slice(&(learned.len() as u32).to_le_bytes());
                for toks in learned {
                    put_list(out, toks);
                }
                out.extend_from_slice(&(hits.len() as u32).to_le_bytes());
                for (id, n) in hits {
                    out.extend_from_slice(&id.to_le_bytes());
                    out.extend_from_slice(&n.to_le_bytes());
                }
                out.extend_from_slice(&gen.to_le_bytes());
            }
        }
    }
}

/// The WAL's reader: the shared byte reader plus the unit grammar's own
/// items (database index, list side, values, bounded counts).
struct Reader<'a>(ByteReader<'a>);

impl<'a> std::ops::Deref for Reader<'a> {
    type Target = ByteReader<'a>;
    fn deref(&self) -> &ByteReader<'a> {
        &self.0
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<Malformed> for DecodeError {
    fn from(e: Malformed) -> DecodeError {
        DecodeError(e.0)
    }
}

impl<'a> Reader<'a> {
    fn db(&mut self) -> Result<u8, DecodeError> {
        let d = self.u8()?;
        if usize::from(d) >= DATABASES {
            return Err(DecodeError("database index out of range"));
        }
        Ok(d)
    }
    fn left(&mut self) -> Result<bool, DecodeError> {
        Ok(self.0.flag("bad list side")?)
    }
    fn value(&mut self) -> Result<Value, DecodeError> {
        match self.u8()? {
            value_type::STRING => {
                let form = match self.u8()? {
                    0 => StrForm::Encoded,
                    1 => StrForm::Plain,
                    2 => StrForm::Raw,
                    3 => StrForm::IntCopy,
                    _ => return Err(DecodeError("unknown string form")),
                };
                let data = self.bytes()?;
                Ok(Value::Str(StrValue {
                    data: data.to_vec(),
                    form,
                }))
            }
            t @ (value_type::LIST..=value_type::ZSET) => collections::value(self, t),
            value_type::STREAM => Ok(Value::Stream(crate::stream::StreamRef::unopened(
                self.u64()?,
            ))),
            value_type::STREAM_INGEST => {
                let s = crate::stream::StreamRef::unopened(self.u64()?);
                let name = self.bytes()?;
                let spec = FormatSpec::decode(&mut self.0)?;
                let state = self.bytes()?;
                let format = crate::logparse::Format::compile(spec)
                    .map_err(|_| DecodeError("stream ingest format does not compile"))?;
                let ingestor =
                    crate::logparse::Ingestor::restore(std::sync::Arc::new(format), &state)
                        .map_err(|_| DecodeError("bad stream miner state"))?;
                *s.0.ingest.lock() =
                    Some(Box::new(crate::stream::IngestState::new(name, ingestor)));
                Ok(Value::Stream(s))
            }
            _ => Err(DecodeError("unknown value type")),
        }
    }
    /// A count, bounded by the remaining input (each item takes at least
    /// `min_item` bytes), so a bad count cannot cause a huge allocation.
    fn count(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.remaining() / min_item {
            return Err(DecodeError("truncated"));
        }
        Ok(n)
    }
    fn flag(&mut self) -> Result<bool, DecodeError> {
        Ok(self.0.flag("bad flag byte")?)
    }
    fn list(&mut self) -> Result<Vec<Bytes>, DecodeError> {
        let n = self.count(4)?;
        (0..n).map(|_| Ok(self.bytes()?)).collect()
    }
}

/// Decodes one unit written by `encode_unit`.
pub fn decode_unit(buf: &[u8]) -> Result<Vec<Effect>, DecodeError> {
    let mut r = Reader(ByteReader::new(buf));
    if r.u8()? != UNIT_VERSION {
        return Err(DecodeError("unknown unit version"));
    }
    let count = r.u32()? as usize;
    // Each effect takes at least 2 bytes: bound the allocation by the input.
    let mut effects = Vec::with_capacity(count.min(buf.len() / 2));
    for _ in 0..count {
        let e = match r.u8()? {
            tag::SET => {
                let db = r.db()?;
                let key = r.bytes()?;
                let expires_at_ms = r.u64()?;
                let value = r.value()?;
                Effect::Set {
                    db,
                    key,
                    value,
                    expires_at_ms,
                }
            }
            tag::DEL => Effect::Del {
                db: r.db()?,
                key: r.bytes()?,
            },
            tag::EXPIRE => Effect::Expire {
                db: r.db()?,
                key: r.bytes()?,
                at_ms: r.u64()?,
            },
            tag::FLUSHDB => Effect::FlushDb { db: r.db()? },
            tag::FLUSHALL => Effect::FlushAll,
            tag::APPEND => Effect::Append {
                db: r.db()?,
                key: r.bytes()?,
                data: r.bytes()?,
            },
            tag::SETRANGE => Effect::SetRange {
                db: r.db()?,
                key: r.bytes()?,
                offset: r.u64()?,
                data: r.bytes()?,
            },
            tag::SWAPDB => Effect::SwapDb {
                a: r.db()?,
                b: r.db()?,
            },
            t @ (tag::LPUSH..=tag::LTRIM
            | tag::HSET
            | tag::HDEL
            | tag::SADD
            | tag::SREM
            | tag::ZADD
            | tag::ZREM) => collections::decode(t, &mut r)?,
            tag::LOGFORMAT_SET => Effect::LogFormatSet {
                name: r.bytes()?,
                spec: FormatSpec::decode(&mut r.0)?,
            },
            tag::LOGFORMAT_DEL => Effect::LogFormatDel { name: r.bytes()? },
            tag::LOGMINER_LEARN => {
                let name = r.bytes()?;
                let n = r.u32()? as usize;
                // Each token takes at least 4 bytes: bound the allocation.
                let mut tokens = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    tokens.push(r.bytes()?);
                }
                Effect::LogMinerLearn { name, tokens }
            }
            t @ (tag::STREAM_INGEST_LEARN_V1 | tag::STREAM_INGEST_LEARN) => {
                let db = r.db()?;
                let key = r.bytes()?;
                let name = r.bytes()?;
                let spec = FormatSpec::decode(&mut r.0)?;
                let n = r.u32()? as usize;
                let mut learned = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    let m = r.u32()? as usize;
                    let mut toks = Vec::with_capacity(m.min(r.remaining() / 4));
                    for _ in 0..m {
                        toks.push(r.bytes()?);
                    }
                    learned.push(toks);
                }
                let h = r.u32()? as usize;
                let mut hits = Vec::with_capacity(h.min(r.remaining() / 16));
                for _ in 0..h {
                    hits.push((r.u64()?, r.u64()?));
                }
                let gen = if t == tag::STREAM_INGEST_LEARN {
                    r.u64()?
                } else {
                    0
                };
                Effect::StreamIngestLearn {
                    db,
                    key,
                    name,
                    spec,
                    learned,
                    hits,
                    gen,
                }
            }
            tag::LOGMINER_STATE => Effect::LogMinerState {
                name: r.bytes()?,
                state: r.bytes()?,
            },
            tag::FUNCTION_LOAD => Effect::FunctionLoad {
                replace: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError("bad FUNCTION LOAD replace flag")),
                },
                code: r.bytes()?,
            },
            tag::FUNCTION_DELETE => Effect::FunctionDelete { name: r.bytes()? },
            tag::FUNCTION_FLUSH => Effect::FunctionFlush,
            tag::FUNCTION_RESTORE => {
                let policy = r.u8()?;
                if RestorePolicy::from_code(policy).is_none() {
                    return Err(DecodeError("bad FUNCTION RESTORE policy"));
                }
                let n = r.u32()? as usize;
                let mut codes = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    codes.push(r.bytes()?);
                }
                Effect::FunctionRestore { policy, codes }
            }
            tag::REPL_POSITION => {
                let replid = r.bytes()?;
                if replid.len() != 40 || !replid.iter().all(u8::is_ascii_hexdigit) {
                    return Err(DecodeError("bad replication id"));
                }
                Effect::ReplPosition {
                    replid,
                    offset: r.u64()?,
                    db: r.db()?,
                }
            }
            tag::COMMAND => {
                let db = r.db()?;
                let n = r.u32()? as usize;
                if n == 0 {
                    return Err(DecodeError("empty replicated command"));
                }
                let mut argv = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    argv.push(r.bytes()?);
                }
                Effect::Command { db, argv }
            }
            _ => return Err(DecodeError("unknown effect tag")),
        };
        effects.push(e);
    }
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(effects)
}

/// Applies an effect during replay. Replay never reads the clock and never
/// expires keys: a key whose time passed while the server was down is
/// removed by the first lookup or expiry cycle after loading.
pub fn apply(ks: &mut Keyspace, e: Effect) {
    match e {
        Effect::Set {
            db,
            key,
            value,
            expires_at_ms,
        } => {
            ks.set(usize::from(db), key, value, expires_at_ms);
        }
        Effect::Del { db, key } => {
            ks.dbs[usize::from(db)].remove(&key);
        }
        Effect::Expire { db, key, at_ms } => {
            ks.dbs[usize::from(db)].set_expiry(&key, at_ms);
        }
        Effect::FlushDb { db } => ks.dbs[usize::from(db)].clear(),
        Effect::FlushAll => {
            ks.flush_all();
        }
        Effect::SwapDb { a, b } => ks.swap_db(usize::from(a), usize::from(b)),
        Effect::LogFormatSet { name, spec } => {
            if let Err(e) = ks.logparse.define(&name, spec) {
                tracing::warn!(
                    "replay: LOGPARSE format '{}' no longer compiles, dropped: {e}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
        Effect::LogFormatDel { name } => {
            let _ = ks.logparse.remove(&name);
        }
        Effect::FunctionLoad { replace, code } => {
            let change = LibraryChange::Load {
                code: &code,
                replace,
            };
            if let Err(e) = ks.functions.apply(change) {
                tracing::warn!("replay: FUNCTION LOAD no longer loads, dropped: {e}");
            }
            ks.function_stats = ks.functions.stats();
        }
        Effect::FunctionDelete { name } => {
            // A missing library is no error here: deleted is deleted.
            let _ = ks.functions.apply(LibraryChange::Delete { name: &name });
            ks.function_stats = ks.functions.stats();
        }
        Effect::FunctionFlush => {
            let _ = ks.functions.apply(LibraryChange::Flush);
            ks.function_stats = ks.functions.stats();
        }
        // The replication stream's copy of a stream change: the stream's
        // logs hold the state.
        Effect::Command { .. } => {}
        Effect::ReplPosition { replid, offset, db } => {
            ks.repl_position = Some(ReplPosition {
                replid: String::from_utf8_lossy(&replid).into_owned(),
                offset,
                db,
            });
        }
        Effect::FunctionRestore { policy, codes } => {
            let policy = RestorePolicy::from_code(policy).unwrap_or(RestorePolicy::Replace);
            let change = LibraryChange::Restore {
                codes: &codes,
                policy,
            };
            if let Err(e) = ks.functions.apply(change) {
                tracing::warn!("replay: FUNCTION RESTORE no longer loads, dropped: {e}");
            }
            ks.function_stats = ks.functions.stats();
        }
        Effect::LogMinerLearn { name, tokens } => {
            let toks: Vec<&[u8]> = tokens.iter().map(|t| t.as_ref()).collect();
            // A format dropped above has no miner: nothing to teach.
            let _ = ks.logparse.learn_tokens(&name, &toks);
        }
        Effect::StreamIngestLearn {
            db,
            key,
            name,
            spec,
            learned,
            hits,
            gen,
        } => {
            let d = &mut ks.dbs[usize::from(db)];
            let Some(Value::Stream(s)) = d.peek_mut(&key).map(|e| &mut e.value) else {
                return;
            };
            let mut g = s.0.ingest.lock();
            if g.as_ref().is_none_or(|i| i.name != name) {
                match crate::logparse::Format::compile(spec) {
                    Ok(f) => {
                        *g = Some(Box::new(crate::stream::IngestState::new(
                            name,
                            crate::logparse::Ingestor::new(std::sync::Arc::new(f)),
                        )))
                    }
                    Err(e) => {
                        tracing::warn!("replay: stream ingest format does not compile: {e}");
                        return;
                    }
                }
            }
            if let Some(i) = g.as_mut() {
                if gen != 0 && gen <= i.ingestor.generation() {
                    // The state already holds this learning.
                    return;
                }
                if gen != 0 {
                    i.ingestor.set_generation(gen);
                }
                for toks in &learned {
                    let t: Vec<&[u8]> = toks.iter().map(|t| &t[..]).collect();
                    i.ingestor.learn_tokens(&t);
                }
                for (id, n) in hits {
                    i.ingestor.add_hits(id, n);
                }
            }
        }
        Effect::LogMinerState { name, state } => {
            if let Err(e) = ks.logparse.restore_miner(&name, &state) {
                tracing::warn!(
                    "replay: LOGPARSE miner of '{}' not restored: {e}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
        Effect::Append { db, key, data } => {
            let d = &mut ks.dbs[usize::from(db)];
            if let Some(Value::Str(s)) = d.peek_mut(&key).map(|e| &mut e.value) {
                s.data.extend_from_slice(&data);
                s.form = StrForm::Raw;
                d.signal_modified(&key);
            }
        }
        Effect::SetRange {
            db,
            key,
            offset,
            data,
        } => {
            let d = &mut ks.dbs[usize::from(db)];
            if let Some(Value::Str(s)) = d.peek_mut(&key).map(|e| &mut e.value) {
                // Bounded when it was logged (proto-max-bulk-len); a corrupt
                // offset cannot be: refuse to allocate past the string limit.
                let end = usize::try_from(offset)
                    .ok()
                    .and_then(|o| o.checked_add(data.len()));
                if let Some(end) = end.filter(|&e| e <= super::value::STRING_LOG_BYTES_MAX) {
                    if end > s.data.len() {
                        s.data.resize(end, 0);
                    }
                    s.data[end - data.len()..end].copy_from_slice(&data);
                    s.form = StrForm::Raw;
                    d.signal_modified(&key);
                }
            }
        }
        e @ (Effect::ZAdd { .. }
        | Effect::ZRem { .. }
        | Effect::HashSet { .. }
        | Effect::HashDel { .. }
        | Effect::SetAdd { .. }
        | Effect::SetRem { .. }
        | Effect::ListPush { .. }
        | Effect::ListPop { .. }
        | Effect::ListSet { .. }
        | Effect::ListInsert { .. }
        | Effect::ListRem { .. }
        | Effect::ListTrim { .. }) => collections::apply(ks, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream fed by LOGPARSE INGEST keeps its format and miner in its
    /// encoded value (type 7); STREAM_INGEST_LEARN replays onto it.
    #[test]
    fn ingest_stream_value_round_trips_and_learn_replays() {
        use crate::logparse::{builtin, Ingestor};
        let f = builtin::get(b"hdfs").unwrap().clone();
        let mut ing = Ingestor::new(f.clone());
        ing.parse(b"081109 203615 148 INFO dfs.X: open file 1", 2024)
            .unwrap();
        let s = crate::stream::StreamRef::unopened(9);
        *s.0.ingest.lock() = Some(Box::new(crate::stream::IngestState::new(
            Bytes::from_static(b"hdfs"),
            ing,
        )));
        let set = Effect::Set {
            db: 0,
            key: Bytes::from_static(b"k"),
            expires_at_ms: 0,
            value: Value::Stream(s),
        };
        let mut buf = Vec::new();
        encode_unit(std::slice::from_ref(&set), &mut buf);
        let back = decode_unit(&buf).unwrap();
        let mut ks = crate::commands::lua::keyspace();
        ks.set_capture(false);
        for e in back {
            apply(&mut ks, e);
        }
        apply(
            &mut ks,
            Effect::StreamIngestLearn {
                db: 0,
                key: Bytes::from_static(b"k"),
                name: Bytes::from_static(b"hdfs"),
                spec: f.spec().clone(),
                learned: vec![vec![
                    Bytes::from_static(b"close"),
                    Bytes::from_static(b"<*>"),
                ]],
                hits: vec![(1, 4)],
                gen: 1,
            },
        );
        let Some(Value::Stream(s)) = ks.dbs[0].peek(b"k").map(|e| &e.value) else {
            panic!("stream restored")
        };
        let g = s.0.ingest.lock();
        let st = g.as_ref().unwrap();
        assert_eq!(&st.name[..], b"hdfs");
        let m = st.ingestor.miner();
        assert_eq!(m.len(), 2);
        assert_eq!(m.cluster(1).unwrap().template(), b"open file <*>");
        assert_eq!(m.cluster(1).unwrap().size, 5);
        assert_eq!(m.cluster(2).unwrap().template(), b"close <*>");
    }

    /// A learning effect the stream's state already holds (its state was
    /// encoded after the learning, the effect logged later) is skipped:
    /// learning twice would change template ids.
    #[test]
    fn ingest_learning_already_in_the_state_is_skipped() {
        use crate::logparse::{builtin, Ingestor};
        let f = builtin::get(b"hdfs").unwrap().clone();
        let mut ing = Ingestor::new(f.clone());
        ing.parse(b"081109 203615 148 INFO dfs.X: open file 1", 2024)
            .unwrap();
        ing.set_generation(2);
        let s = crate::stream::StreamRef::unopened(9);
        *s.0.ingest.lock() = Some(Box::new(crate::stream::IngestState::new(
            Bytes::from_static(b"hdfs"),
            ing,
        )));
        let mut ks = crate::commands::lua::keyspace();
        ks.set_capture(false);
        let mut buf = Vec::new();
        let set = Effect::Set {
            db: 0,
            key: Bytes::from_static(b"k"),
            expires_at_ms: 0,
            value: Value::Stream(s),
        };
        encode_unit(std::slice::from_ref(&set), &mut buf);
        for e in decode_unit(&buf).unwrap() {
            apply(&mut ks, e);
        }
        let learn = |gen: u64, tok: &'static [u8]| Effect::StreamIngestLearn {
            db: 0,
            key: Bytes::from_static(b"k"),
            name: Bytes::from_static(b"hdfs"),
            spec: f.spec().clone(),
            learned: vec![vec![Bytes::from_static(tok)]],
            hits: vec![(1, 1)],
            gen,
        };
        // Generations 1 and 2 are in the state; 3 is not; 0 (tag 74) is
        // always applied.
        for (gen, tok) in [(1, &b"a"[..]), (2, b"b"), (3, b"c"), (0, b"d")] {
            let mut unit = Vec::new();
            encode_unit(&[learn(gen, tok)], &mut unit);
            for e in decode_unit(&unit).unwrap() {
                apply(&mut ks, e);
            }
        }
        let Some(Value::Stream(s)) = ks.dbs[0].peek(b"k").map(|e| &e.value) else {
            panic!("stream restored")
        };
        let g = s.0.ingest.lock();
        let ing = &g.as_ref().unwrap().ingestor;
        let templates: Vec<Vec<u8>> = ing.miner().clusters().map(|(_, c)| c.template()).collect();
        assert_eq!(templates, [&b"open file <*>"[..], b"c", b"d"]);
        // One line in the state, one hit each from generations 3 and 0.
        assert_eq!(ing.miner().cluster(1).unwrap().size, 3);
        assert_eq!(ing.generation(), 3);
    }

    #[test]
    fn round_trip_every_effect() {
        let k = |s: &str| Bytes::from(s.to_string());
        let effects = vec![
            Effect::Set {
                db: 3,
                key: k("a\0b"),
                value: Value::str("v"),
                expires_at_ms: 42,
            },
            Effect::Del { db: 0, key: k("x") },
            Effect::Expire {
                db: 1,
                key: k("y"),
                at_ms: 0,
            },
            Effect::FlushDb { db: 15 },
            Effect::FlushAll,
            Effect::SwapDb { a: 0, b: 1 },
            Effect::LogFormatSet {
                name: k("f"),
                spec: {
                    let mut s = FormatSpec::new("<A> <Content>");
                    s.masks = vec!["\\d+".into()];
                    s.time = Some(("<A>".into(), "%s".into()));
                    s
                },
            },
            Effect::LogFormatDel { name: k("f") },
            Effect::LogMinerLearn {
                name: k("hdfs"),
                tokens: vec![k("a"), k("<*>")],
            },
            Effect::StreamIngestLearn {
                db: 2,
                key: k("s"),
                name: k("hdfs"),
                spec: FormatSpec::new("<Level> <Content>"),
                learned: vec![vec![k("a"), k("<*>")], vec![]],
                hits: vec![(1, 5), (7, 1)],
                gen: 3,
            },
            Effect::LogMinerState {
                name: k("hdfs"),
                state: k("\x01state"),
            },
            Effect::FunctionLoad {
                replace: true,
                code: k("#!lua name=l\nredis.register_function('f', function() end)"),
            },
            Effect::FunctionDelete { name: k("l") },
            Effect::FunctionFlush,
            Effect::FunctionRestore {
                policy: 2,
                codes: vec![k("a"), k("b")],
            },
            Effect::ReplPosition {
                replid: k("0123456789abcdef0123456789abcdef01234567"),
                offset: 1 << 40,
                db: 15,
            },
            Effect::Command {
                db: 3,
                argv: vec![k("XADD"), k("s"), k("1-1"), k("f"), k(""), k("v")],
            },
            Effect::Append {
                db: 1,
                key: k("s"),
                data: k("more"),
            },
            Effect::SetRange {
                db: 1,
                key: k("s"),
                offset: 7,
                data: k("x"),
            },
            Effect::Set {
                db: 2,
                key: k("s"),
                value: Value::Stream(crate::stream::StreamRef::unopened(77)),
                expires_at_ms: 0,
            },
            Effect::Set {
                db: 2,
                key: k("l"),
                value: Value::List([&b"a"[..], b"", b"\xff"].into_iter().collect()),
                expires_at_ms: 0,
            },
            Effect::ListPush {
                db: 1,
                key: k("l"),
                left: true,
                items: vec![k("x"), k("")],
            },
            Effect::ListPop {
                db: 1,
                key: k("l"),
                left: false,
                count: 3,
            },
            Effect::ListSet {
                db: 1,
                key: k("l"),
                index: 2,
                value: k("v"),
            },
            Effect::ListInsert {
                db: 1,
                key: k("l"),
                index: 0,
                value: k("w"),
            },
            Effect::ListRem {
                db: 1,
                key: k("l"),
                count: -2,
                value: k("v"),
            },
            Effect::ListTrim {
                db: 1,
                key: k("l"),
                start: 1,
                end: 7,
            },
        ];
        let mut buf = Vec::new();
        encode_unit(&effects, &mut buf);
        assert_eq!(decode_unit(&buf), Ok(effects));
        for cut in 0..buf.len() {
            assert!(decode_unit(&buf[..cut]).is_err(), "cut {cut}");
        }
    }

    pub(super) fn replay(units: &[Vec<Effect>]) -> Keyspace {
        let mut ks = crate::commands::lua::keyspace();
        ks.set_capture(false);
        for u in units {
            let mut buf = Vec::new();
            encode_unit(u, &mut buf);
            for e in decode_unit(&buf).unwrap() {
                apply(&mut ks, e);
            }
        }
        ks
    }

    fn dump(ks: &Keyspace) -> Vec<(usize, Bytes, Value, u64)> {
        let mut v: Vec<_> = ks
            .dbs
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                d.iter().map(move |(k, e)| {
                    let k = Bytes::copy_from_slice(k);
                    (i, k, e.value.clone(), e.expires_at_ms)
                })
            })
            .collect();
        v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        v
    }

    #[test]
    fn captured_effects_replay_to_the_same_state() {
        let k = |s: &str| Bytes::from(s.to_string());
        let mut ks = crate::commands::lua::keyspace();
        let mut units = Vec::new();
        ks.set(0, k("a"), Value::str("1"), 0);
        ks.set(0, k("b"), Value::str("2"), 5_000);
        units.push(ks.take_effects());
        // In place change, then a rename done as remove + insert.
        if let Some(e) = ks.dbs[0].peek_mut(b"a") {
            e.value = Value::str("11");
        }
        ks.dbs[0].signal_modified(b"a");
        let moved = ks.dbs[0].remove(b"b").unwrap();
        ks.dbs[1].insert(k("b2"), moved);
        units.push(ks.take_effects());
        // Swap in the middle of a unit: order matters.
        ks.set(0, k("c"), Value::str("3"), 0);
        ks.swap_db(0, 1);
        ks.set(0, k("d"), Value::str("4"), 0);
        ks.dbs[3].set_expiry(b"nothing", 9);
        units.push(ks.take_effects());
        ks.set(5, k("gone"), Value::str("x"), 0);
        ks.dbs[5].clear();
        ks.set(5, k("after"), Value::str("y"), 0);
        units.push(ks.take_effects());
        assert_eq!(units[3][0], Effect::FlushDb { db: 5 });
        assert!(ks.take_effects().is_empty(), "nothing new");
        assert_eq!(dump(&replay(&units)), dump(&ks));
        // Replaying a suffix on top of a later state converges (idempotence).
        let swaps_free: Vec<_> = units
            .iter()
            .filter(|u| !u.iter().any(|e| matches!(e, Effect::SwapDb { .. })))
            .cloned()
            .collect();
        let mut twice = swaps_free.clone();
        twice.extend(swaps_free.iter().cloned());
        assert_eq!(dump(&replay(&twice)), dump(&replay(&swaps_free)));
    }

    #[test]
    fn rejects_bad_db_and_tags() {
        let mut buf = Vec::new();
        encode_unit(&[Effect::FlushDb { db: 16 }], &mut buf);
        assert_eq!(
            decode_unit(&buf),
            Err(DecodeError("database index out of range"))
        );
        assert_eq!(
            decode_unit(&[1, 1, 0, 0, 0, 99]),
            Err(DecodeError("unknown effect tag"))
        );
    }
}
