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
//!   tag 20 LPUSH   = u8 db | bytes key | u8 left(1)/right(0) | u32 n | bytes{n}
//!                    (creates the list when the key is missing)
//!   tag 21 LPOP    = u8 db | bytes key | u8 left(1)/right(0) | u64 count
//!   tag 22 LSET    = u8 db | bytes key | u64 index | bytes value
//!   tag 23 LINSERT = u8 db | bytes key | u64 index (insert before; = len appends) | bytes value
//!   tag 24 LREM    = u8 db | bytes key | i64 count | bytes value
//!   tag 25 LTRIM   = u8 db | bytes key | u64 start | u64 end (kept: start..end)
//! value    = u8 type | body
//!   type 1 string  = u8 form(0 encoded, 1 plain, 2 raw, 3 int copy) | bytes data
//!   type 2 list    = u32 n | bytes{n} (head to tail)
//! bytes    = u32 len | u8{len}
//! ```

use super::list::List;
use super::{Keyspace, StrForm, StrValue, Value, DATABASES};
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
}

impl Effect {
    /// The key an effect changes; None for whole-database effects.
    pub fn key(&self) -> Option<(u8, &Bytes)> {
        match self {
            Effect::Set { db, key, .. }
            | Effect::Del { db, key }
            | Effect::Expire { db, key, .. }
            | Effect::ListPush { db, key, .. }
            | Effect::ListPop { db, key, .. }
            | Effect::ListSet { db, key, .. }
            | Effect::ListInsert { db, key, .. }
            | Effect::ListRem { db, key, .. }
            | Effect::ListTrim { db, key, .. } => Some((*db, key)),
            Effect::FlushDb { .. } | Effect::FlushAll | Effect::SwapDb { .. } => None,
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
        Value::List(l) => {
            out.push(2);
            out.extend_from_slice(&(l.len() as u32).to_le_bytes());
            for item in l.iter() {
                put_bytes(out, item);
            }
        }
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
            Effect::ListPush {
                db,
                key,
                left,
                items,
            } => {
                put_db_key(out, 20, *db, key);
                out.push(u8::from(*left));
                out.extend_from_slice(&(items.len() as u32).to_le_bytes());
                for i in items {
                    put_bytes(out, i);
                }
            }
            Effect::ListPop {
                db,
                key,
                left,
                count,
            } => {
                put_db_key(out, 21, *db, key);
                out.push(u8::from(*left));
                out.extend_from_slice(&count.to_le_bytes());
            }
            Effect::ListSet {
                db,
                key,
                index,
                value,
            } => {
                put_db_key(out, 22, *db, key);
                out.extend_from_slice(&index.to_le_bytes());
                put_bytes(out, value);
            }
            Effect::ListInsert {
                db,
                key,
                index,
                value,
            } => {
                put_db_key(out, 23, *db, key);
                out.extend_from_slice(&index.to_le_bytes());
                put_bytes(out, value);
            }
            Effect::ListRem {
                db,
                key,
                count,
                value,
            } => {
                put_db_key(out, 24, *db, key);
                out.extend_from_slice(&count.to_le_bytes());
                put_bytes(out, value);
            }
            Effect::ListTrim {
                db,
                key,
                start,
                end,
            } => {
                put_db_key(out, 25, *db, key);
                out.extend_from_slice(&start.to_le_bytes());
                out.extend_from_slice(&end.to_le_bytes());
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
    fn left(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("bad list side")),
        }
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
            2 => {
                let n = self.u32()? as usize;
                let mut items = Vec::with_capacity(n.min(self.buf.len() / 4));
                for _ in 0..n {
                    items.push(self.bytes()?);
                }
                Ok(Value::List(items.iter().map(|b| &b[..]).collect()))
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
            20 => {
                let (db, key, left) = (r.db()?, r.bytes()?, r.left()?);
                let n = r.u32()? as usize;
                let mut items = Vec::with_capacity(n.min(r.buf.len() / 4));
                for _ in 0..n {
                    items.push(r.bytes()?);
                }
                Effect::ListPush {
                    db,
                    key,
                    left,
                    items,
                }
            }
            21 => Effect::ListPop {
                db: r.db()?,
                key: r.bytes()?,
                left: r.left()?,
                count: r.u64()?,
            },
            22 => Effect::ListSet {
                db: r.db()?,
                key: r.bytes()?,
                index: r.u64()?,
                value: r.bytes()?,
            },
            23 => Effect::ListInsert {
                db: r.db()?,
                key: r.bytes()?,
                index: r.u64()?,
                value: r.bytes()?,
            },
            24 => Effect::ListRem {
                db: r.db()?,
                key: r.bytes()?,
                count: r.u64()? as i64,
                value: r.bytes()?,
            },
            25 => Effect::ListTrim {
                db: r.db()?,
                key: r.bytes()?,
                start: r.u64()?,
                end: r.u64()?,
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
        Effect::ListPush {
            db,
            key,
            left,
            items,
        } => {
            let d = &mut ks.dbs[usize::from(db)];
            if !matches!(d.peek(&key), Some(e) if matches!(e.value, Value::List(_))) {
                let e = ks.entry(Value::List(List::new()), 0);
                ks.dbs[usize::from(db)].insert(key.clone(), e);
            }
            with_list(ks, db, &key, |l| {
                for i in &items {
                    l.push(left, i);
                }
            });
        }
        Effect::ListPop {
            db,
            key,
            left,
            count,
        } => with_list(ks, db, &key, |l| {
            for _ in 0..count {
                l.pop(left);
            }
        }),
        Effect::ListSet {
            db,
            key,
            index,
            value,
        } => with_list(ks, db, &key, |l| l.set(index as usize, &value)),
        Effect::ListInsert {
            db,
            key,
            index,
            value,
        } => with_list(ks, db, &key, |l| l.insert(index as usize, &value)),
        Effect::ListRem {
            db,
            key,
            count,
            value,
        } => with_list(ks, db, &key, |l| {
            l.remove(count, &value);
        }),
        Effect::ListTrim {
            db,
            key,
            start,
            end,
        } => with_list(ks, db, &key, |l| l.keep(start as usize, end as usize)),
    }
}

/// Runs `f` on the list at `key` during replay (a missing key or another
/// type is left alone). An emptied list stays until the Del that the
/// capture logs after it: LMOVE with source = destination empties the
/// list only for a moment, and its key keeps its expiry.
fn with_list(ks: &mut Keyspace, db: u8, key: &[u8], f: impl FnOnce(&mut List)) {
    let d = &mut ks.dbs[usize::from(db)];
    match d.peek_mut(key).map(|e| &mut e.value) {
        Some(Value::List(l)) => f(l),
        _ => return,
    }
    d.signal_modified(key);
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
