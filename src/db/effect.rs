//! Effects: what a write command did to the keyspace, in a form whose replay
//! is deterministic and never reads the clock.
//!
//! Every write is logged as its effect, never as the request: the final
//! state of each key it touched (`Set` with the value and the absolute
//! expiry, or `Del`), plus the whole-database operations FLUSHDB, FLUSHALL
//! and SWAPDB. So `EXPIRE k 10` logs the key with an absolute expiry,
//! `INCRBYFLOAT` a `Set` of the resulting string, RENAME a `Del` and a `Set`,
//! a key removed by lazy or active expiry a `Del`. Final states are
//! idempotent, which the fuzzy base snapshot relies on (ARCHITECTURE.md). One WAL record holds the effects of one command or of one
//! whole EXEC block, so recovery applies a transaction whole or not at all.
//!
//! Encoding (little-endian, explicit sizes; the same grammar is in
//! docs/format.md):
//!
//! ```text
//! unit     = u8 version(=1) | u32 count | effect{count}
//! effect   = u8 tag | body
//!   tag 1 SET      = u8 db | bytes key | u64 expires_at_ms(0 = none) | value
//!   tag 2 DEL      = u8 db | bytes key
//!   tag 3 EXPIRE   = u8 db | bytes key | u64 at_ms(0 = persist)
//!   tag 4 FLUSHDB  = u8 db
//!   tag 5 FLUSHALL = (empty)
//!   tag 6 SWAPDB   = u8 db_a | u8 db_b
//!   tag 70 LOGFORMAT_SET  = bytes name | spec (logparse::FormatSpec::encode)
//!   tag 71 LOGFORMAT_DEL  = bytes name
//!   tag 72 LOGMINER_LEARN = bytes name | u32 n | bytes token{n}
//!   tag 73 LOGMINER_STATE = bytes name | bytes state (logparse::Miner::encode)
//! value    = u8 type | body
//!   type 1 string  = u8 form(0 encoded, 1 plain, 2 raw, 3 int copy) | bytes data
//! bytes    = u32 len | u8{len}
//! ```

use super::{Keyspace, StrForm, StrValue, Value, DATABASES};
use crate::logparse::FormatSpec;
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

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => {
            out.push(1);
            out.push(match s.form {
                StrForm::Encoded => 0,
                StrForm::Plain => 1,
                StrForm::Raw => 2,
                StrForm::IntCopy => 3,
            });
            put_bytes(out, &s.data);
        }
    }
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
                out.push(1);
                out.push(*db);
                put_bytes(out, key);
                out.extend_from_slice(&expires_at_ms.to_le_bytes());
                put_value(out, value);
            }
            Effect::Del { db, key } => {
                out.push(2);
                out.push(*db);
                put_bytes(out, key);
            }
            Effect::Expire { db, key, at_ms } => {
                out.push(3);
                out.push(*db);
                put_bytes(out, key);
                out.extend_from_slice(&at_ms.to_le_bytes());
            }
            Effect::FlushDb { db } => {
                out.push(4);
                out.push(*db);
            }
            Effect::FlushAll => out.push(5),
            Effect::SwapDb { a, b } => {
                out.push(6);
                out.push(*a);
                out.push(*b);
            }
            Effect::LogFormatSet { name, spec } => {
                out.push(70);
                put_bytes(out, name);
                spec.encode(out);
            }
            Effect::LogFormatDel { name } => {
                out.push(71);
                put_bytes(out, name);
            }
            Effect::LogMinerLearn { name, tokens } => {
                out.push(72);
                put_bytes(out, name);
                out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
                for t in tokens {
                    put_bytes(out, t);
                }
            }
            Effect::LogMinerState { name, state } => {
                out.push(73);
                put_bytes(out, name);
                put_bytes(out, state);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn db(&mut self) -> Result<u8, DecodeError> {
        let d = self.u8()?;
        if usize::from(d) >= DATABASES {
            return Err(DecodeError("database index out of range"));
        }
        Ok(d)
    }
    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
    fn value(&mut self) -> Result<Value, DecodeError> {
        match self.u8()? {
            1 => {
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
            _ => Err(DecodeError("unknown value type")),
        }
    }
}

/// Decodes one unit written by `encode_unit`.
pub fn decode_unit(buf: &[u8]) -> Result<Vec<Effect>, DecodeError> {
    let mut r = Reader { buf };
    if r.u8()? != UNIT_VERSION {
        return Err(DecodeError("unknown unit version"));
    }
    let count = r.u32()? as usize;
    // Each effect takes at least 2 bytes: bound the allocation by the input.
    let mut effects = Vec::with_capacity(count.min(buf.len() / 2));
    for _ in 0..count {
        let e = match r.u8()? {
            1 => {
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
            2 => Effect::Del {
                db: r.db()?,
                key: r.bytes()?,
            },
            3 => Effect::Expire {
                db: r.db()?,
                key: r.bytes()?,
                at_ms: r.u64()?,
            },
            4 => Effect::FlushDb { db: r.db()? },
            5 => Effect::FlushAll,
            6 => Effect::SwapDb {
                a: r.db()?,
                b: r.db()?,
            },
            70 => Effect::LogFormatSet {
                name: r.bytes()?,
                spec: FormatSpec::decode(&mut r.buf).map_err(DecodeError)?,
            },
            71 => Effect::LogFormatDel { name: r.bytes()? },
            72 => {
                let name = r.bytes()?;
                let n = r.u32()? as usize;
                // Each token takes at least 4 bytes: bound the allocation.
                let mut tokens = Vec::with_capacity(n.min(r.buf.len() / 4));
                for _ in 0..n {
                    tokens.push(r.bytes()?);
                }
                Effect::LogMinerLearn { name, tokens }
            }
            73 => Effect::LogMinerState {
                name: r.bytes()?,
                state: r.bytes()?,
            },
            _ => return Err(DecodeError("unknown effect tag")),
        };
        effects.push(e);
    }
    if !r.buf.is_empty() {
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
        Effect::LogMinerLearn { name, tokens } => {
            let toks: Vec<&[u8]> = tokens.iter().map(|t| t.as_ref()).collect();
            // A format dropped above has no miner: nothing to teach.
            let _ = ks.logparse.learn_tokens(&name, &toks);
        }
        Effect::LogMinerState { name, state } => {
            if let Err(e) = ks.logparse.restore_miner(&name, &state) {
                tracing::warn!(
                    "replay: LOGPARSE miner of '{}' not restored: {e}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Effect::LogMinerState {
                name: k("hdfs"),
                state: k("\x01state"),
            },
        ];
        let mut buf = Vec::new();
        encode_unit(&effects, &mut buf);
        assert_eq!(decode_unit(&buf), Ok(effects));
        for cut in 0..buf.len() {
            assert!(decode_unit(&buf[..cut]).is_err(), "cut {cut}");
        }
    }

    fn replay(units: &[Vec<Effect>]) -> Keyspace {
        let mut ks = Keyspace::new();
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
                d.iter()
                    .map(move |(k, e)| (i, k.clone(), e.value.clone(), e.expires_at_ms))
            })
            .collect();
        v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        v
    }

    #[test]
    fn captured_effects_replay_to_the_same_state() {
        let k = |s: &str| Bytes::from(s.to_string());
        let mut ks = Keyspace::new();
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
