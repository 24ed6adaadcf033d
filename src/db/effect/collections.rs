//! The collection effects (lists, hashes, sets, sorted sets): their
//! encoding, decoding and replay, and the full encodings of collection
//! values (types 2-5). Tags and layouts are in the grammar of
//! `super` (and docs/format.md).

use super::{put_bytes, put_db_key, put_list, tag, value_type, DecodeError, Effect, Reader};
use crate::db::hash::{Hash, HashLimits};
use crate::db::list::List;
use crate::db::set::Set;
use crate::db::zset::{ZSet, ZsetLimits};
use crate::db::{Keyspace, Value};
use bytes::Bytes;

/// Limits that never convert: replay takes the encoding from the effect.
const UNBOUNDED: ZsetLimits = ZsetLimits {
    entries: usize::MAX,
    value: usize::MAX,
};

/// The full encoding of a collection value (types 2-5).
pub(super) fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::ZSet(z) => {
            out.push(value_type::ZSET);
            out.push(u8::from(z.is_skiplist()));
            out.extend_from_slice(&(z.len() as u32).to_le_bytes());
            for (m, sc) in z.iter_from(0, false) {
                out.extend_from_slice(&sc.to_bits().to_le_bytes());
                put_bytes(out, m);
            }
        }
        Value::Hash(h) => {
            out.push(value_type::HASH);
            out.push(u8::from(h.is_table()));
            out.extend_from_slice(&(h.len() as u32).to_le_bytes());
            for (f, v) in h.iter() {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        Value::Set(s) => {
            out.push(value_type::SET);
            match s {
                Set::Intset(v) => {
                    out.push(0);
                    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    for n in v {
                        out.extend_from_slice(&n.to_le_bytes());
                    }
                }
                Set::Table(t) => {
                    out.push(1);
                    out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    for (m, _) in t {
                        put_bytes(out, m);
                    }
                }
            }
        }
        Value::List(l) => {
            out.push(value_type::LIST);
            out.extend_from_slice(&(l.len() as u32).to_le_bytes());
            for item in l.iter() {
                put_bytes(out, item);
            }
        }
        Value::Str(_) | Value::Stream(_) => {}
    }
}

/// Encodes a collection effect (the others are encoded by `encode_unit`).
pub(super) fn encode(e: &Effect, out: &mut Vec<u8>) {
    match e {
        Effect::ZAdd {
            db,
            key,
            skiplist,
            pairs,
        } => {
            out.push(tag::ZADD);
            out.push(*db);
            put_bytes(out, key);
            out.push(u8::from(*skiplist));
            out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
            for (m, sc) in pairs {
                out.extend_from_slice(&sc.to_bits().to_le_bytes());
                put_bytes(out, m);
            }
        }
        Effect::ZRem { db, key, members } => {
            out.push(tag::ZREM);
            out.push(*db);
            put_bytes(out, key);
            out.extend_from_slice(&(members.len() as u32).to_le_bytes());
            for m in members {
                put_bytes(out, m);
            }
        }
        Effect::HashSet {
            db,
            key,
            table,
            pairs,
        } => {
            out.push(tag::HSET);
            out.push(*db);
            put_bytes(out, key);
            out.push(u8::from(*table));
            out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
            for (f, v) in pairs {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        Effect::HashDel { db, key, fields } => {
            out.push(tag::HDEL);
            out.push(*db);
            put_bytes(out, key);
            put_list(out, fields);
        }
        Effect::SetAdd {
            db,
            key,
            table,
            members,
        } => {
            out.push(tag::SADD);
            out.push(*db);
            put_bytes(out, key);
            out.push(u8::from(*table));
            put_list(out, members);
        }
        Effect::SetRem { db, key, members } => {
            out.push(tag::SREM);
            out.push(*db);
            put_bytes(out, key);
            put_list(out, members);
        }
        Effect::ListPush {
            db,
            key,
            left,
            items,
        } => {
            put_db_key(out, tag::LPUSH, *db, key);
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
            put_db_key(out, tag::LPOP, *db, key);
            out.push(u8::from(*left));
            out.extend_from_slice(&count.to_le_bytes());
        }
        Effect::ListSet {
            db,
            key,
            index,
            value,
        } => {
            put_db_key(out, tag::LSET, *db, key);
            out.extend_from_slice(&index.to_le_bytes());
            put_bytes(out, value);
        }
        Effect::ListInsert {
            db,
            key,
            index,
            value,
        } => {
            put_db_key(out, tag::LINSERT, *db, key);
            out.extend_from_slice(&index.to_le_bytes());
            put_bytes(out, value);
        }
        Effect::ListRem {
            db,
            key,
            count,
            value,
        } => {
            put_db_key(out, tag::LREM, *db, key);
            out.extend_from_slice(&count.to_le_bytes());
            put_bytes(out, value);
        }
        Effect::ListTrim {
            db,
            key,
            start,
            end,
        } => {
            put_db_key(out, tag::LTRIM, *db, key);
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        _ => {}
    }
}

/// Decodes a collection value of type `t` (2-5).
pub(super) fn value(r: &mut Reader<'_>, t: u8) -> Result<Value, DecodeError> {
    match t {
        value_type::ZSET => {
            let skiplist = r.zenc()?;
            let mut z = if skiplist {
                ZSet::new_skiplist()
            } else {
                ZSet::new_listpack()
            };
            for (m, sc) in r.score_pairs()? {
                if z.score(&m).is_some() {
                    return Err(DecodeError("duplicate zset member"));
                }
                z.set_score(m, sc, UNBOUNDED);
            }
            Ok(Value::ZSet(z))
        }
        value_type::HASH => {
            let table = r.flag()?;
            let n = r.count(8)?;
            let mut h = Hash::default();
            if table {
                h.convert_to_table();
            }
            for _ in 0..n {
                let f = r.bytes()?;
                let v = r.bytes()?;
                h.set(&f, &v, HashLimits::NONE);
            }
            Ok(Value::Hash(h))
        }
        value_type::SET => match r.u8()? {
            0 => {
                let n = r.count(8)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let n = r.u64()? as i64;
                    if v.last().is_some_and(|l| *l >= n) {
                        return Err(DecodeError("intset not ascending"));
                    }
                    v.push(n);
                }
                Ok(Value::Set(Set::Intset(v)))
            }
            1 => {
                let mut s = Set::Table(Default::default());
                for m in r.list()? {
                    s.add(&m, 0);
                }
                Ok(Value::Set(s))
            }
            _ => Err(DecodeError("unknown set encoding")),
        },
        value_type::LIST => {
            let n = r.u32()? as usize;
            let mut items = Vec::with_capacity(n.min(r.remaining() / 4));
            for _ in 0..n {
                items.push(r.bytes()?);
            }
            Ok(Value::List(items.iter().map(|b| &b[..]).collect()))
        }
        _ => Err(DecodeError("unknown value type")),
    }
}

impl Reader<'_> {
    fn zenc(&mut self) -> Result<bool, DecodeError> {
        Ok(self.0.flag("unknown zset encoding")?)
    }
    fn score_pairs(&mut self) -> Result<Vec<(Bytes, f64)>, DecodeError> {
        let n = self.count(12)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let sc = f64::from_bits(self.u64()?);
            if sc.is_nan() {
                return Err(DecodeError("NaN score"));
            }
            v.push((self.bytes()?, sc));
        }
        Ok(v)
    }
}

/// Decodes the body of a collection effect with tag `t`.
pub(super) fn decode(t: u8, r: &mut Reader<'_>) -> Result<Effect, DecodeError> {
    Ok(match t {
        tag::ZADD => Effect::ZAdd {
            db: r.db()?,
            key: r.bytes()?,
            skiplist: r.zenc()?,
            pairs: r.score_pairs()?,
        },
        tag::ZREM => {
            let db = r.db()?;
            let key = r.bytes()?;
            let n = r.count(4)?;
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                members.push(r.bytes()?);
            }
            Effect::ZRem { db, key, members }
        }
        tag::HSET => {
            let db = r.db()?;
            let key = r.bytes()?;
            let table = r.flag()?;
            let n = r.count(8)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((r.bytes()?, r.bytes()?));
            }
            Effect::HashSet {
                db,
                key,
                table,
                pairs,
            }
        }
        tag::HDEL => Effect::HashDel {
            db: r.db()?,
            key: r.bytes()?,
            fields: r.list()?,
        },
        tag::SADD => Effect::SetAdd {
            db: r.db()?,
            key: r.bytes()?,
            table: r.flag()?,
            members: r.list()?,
        },
        tag::SREM => Effect::SetRem {
            db: r.db()?,
            key: r.bytes()?,
            members: r.list()?,
        },
        tag::LPUSH => {
            let (db, key, left) = (r.db()?, r.bytes()?, r.left()?);
            let n = r.u32()? as usize;
            let mut items = Vec::with_capacity(n.min(r.remaining() / 4));
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
        tag::LPOP => Effect::ListPop {
            db: r.db()?,
            key: r.bytes()?,
            left: r.left()?,
            count: r.u64()?,
        },
        tag::LSET => Effect::ListSet {
            db: r.db()?,
            key: r.bytes()?,
            index: r.u64()?,
            value: r.bytes()?,
        },
        tag::LINSERT => Effect::ListInsert {
            db: r.db()?,
            key: r.bytes()?,
            index: r.u64()?,
            value: r.bytes()?,
        },
        tag::LREM => Effect::ListRem {
            db: r.db()?,
            key: r.bytes()?,
            count: r.u64()? as i64,
            value: r.bytes()?,
        },
        tag::LTRIM => Effect::ListTrim {
            db: r.db()?,
            key: r.bytes()?,
            start: r.u64()?,
            end: r.u64()?,
        },
        _ => return Err(DecodeError("unknown effect tag")),
    })
}

/// Replays a collection effect (the others are applied by `super::apply`).
pub(super) fn apply(ks: &mut Keyspace, e: Effect) {
    match e {
        Effect::ZAdd {
            db,
            key,
            skiplist,
            pairs,
        } => {
            let d = &mut ks.dbs[usize::from(db)];
            if !matches!(d.peek(&key).map(|e| &e.value), Some(Value::ZSet(_))) {
                let fresh = if skiplist {
                    ZSet::new_skiplist()
                } else {
                    ZSet::new_listpack()
                };
                ks.set(usize::from(db), key.clone(), Value::ZSet(fresh), 0);
            }
            let d = &mut ks.dbs[usize::from(db)];
            if let Some(Value::ZSet(z)) = d.peek_mut(&key).map(|e| &mut e.value) {
                if skiplist {
                    z.convert_to_skiplist();
                }
                for (m, sc) in pairs {
                    z.set_score(m, sc, UNBOUNDED);
                }
            }
            d.signal_modified(&key);
        }
        Effect::ZRem { db, key, members } => {
            let d = &mut ks.dbs[usize::from(db)];
            let mut empty = false;
            if let Some(Value::ZSet(z)) = d.peek_mut(&key).map(|e| &mut e.value) {
                for m in &members {
                    z.remove(m);
                }
                empty = z.is_empty();
            }
            if empty {
                d.remove(&key);
            } else {
                d.signal_modified(&key);
            }
        }
        Effect::HashSet {
            db,
            key,
            table,
            pairs,
        } => {
            let db = usize::from(db);
            if let Some(Value::Hash(h)) = value_for(ks, db, &key, || Value::Hash(Hash::default())) {
                if table {
                    h.convert_to_table();
                }
                for (f, v) in &pairs {
                    h.set(f, v, HashLimits::NONE);
                }
            }
        }
        Effect::HashDel { db, key, fields } => {
            let db = usize::from(db);
            if let Some(Value::Hash(h)) = value_for(ks, db, &key, || Value::Hash(Hash::default())) {
                for f in &fields {
                    h.remove(f);
                }
                if h.is_empty() {
                    ks.dbs[db].remove(&key);
                }
            }
        }
        Effect::SetAdd {
            db,
            key,
            table,
            members,
        } => {
            let db = usize::from(db);
            let first = members.first().cloned().unwrap_or_default();
            if let Some(Value::Set(s)) =
                value_for(ks, db, &key, || Value::Set(Set::for_first(&first)))
            {
                if table {
                    s.convert_to_table();
                }
                for m in &members {
                    s.add(m, usize::MAX);
                }
            }
        }
        Effect::SetRem { db, key, members } => {
            let db = usize::from(db);
            if let Some(Value::Set(s)) = value_for(ks, db, &key, || Value::Set(Set::new_intset())) {
                for m in &members {
                    s.remove(m);
                }
                if s.is_empty() {
                    ks.dbs[db].remove(&key);
                }
            }
        }
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
            for _ in 0..count.min(l.len() as u64) {
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
        _ => {}
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

/// The value an operation effect applies to, created empty by `new` when
/// the key is missing (the key's creation was logged in an earlier unit
/// that a base snapshot may have replaced). Marks the key modified.
fn value_for<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &Bytes,
    new: impl FnOnce() -> Value,
) -> Option<&'a mut Value> {
    if ks.dbs[db].peek(key).is_none() {
        let e = ks.entry(new(), 0);
        ks.dbs[db].insert(key.clone(), e);
    }
    ks.dbs[db].signal_modified(key);
    ks.dbs[db].peek_mut(key).map(|e| &mut e.value)
}

#[cfg(test)]
mod tests {
    use super::super::tests::replay;
    use super::super::{decode_unit, encode_unit};
    use super::*;

    #[test]
    fn zset_effects_round_trip_and_replay() {
        let k = |s: &str| Bytes::from(s.to_string());
        let mut big = ZSet::new_skiplist();
        big.set_score(k("m"), -0.0, UNBOUNDED);
        big.set_score(k("n"), f64::INFINITY, UNBOUNDED);
        let units = vec![
            vec![Effect::ZAdd {
                db: 2,
                key: k("z"),
                skiplist: false,
                pairs: vec![(k("a"), 1.5), (k("b\0"), f64::NEG_INFINITY), (k("c"), 3.0)],
            }],
            vec![
                Effect::ZAdd {
                    db: 2,
                    key: k("z"),
                    skiplist: true,
                    pairs: vec![(k("a"), 7.0)],
                },
                Effect::ZRem {
                    db: 2,
                    key: k("z"),
                    members: vec![k("c"), k("nosuch")],
                },
            ],
            vec![Effect::Set {
                db: 0,
                key: k("whole"),
                value: Value::ZSet(big.clone()),
                expires_at_ms: 9,
            }],
            vec![Effect::ZRem {
                db: 0,
                key: k("whole"),
                members: vec![k("m"), k("n")],
            }],
        ];
        for u in &units {
            let mut buf = Vec::new();
            encode_unit(u, &mut buf);
            assert_eq!(&decode_unit(&buf).unwrap(), u);
            for cut in 0..buf.len() {
                assert!(decode_unit(&buf[..cut]).is_err(), "cut {cut}");
            }
        }
        let ks = replay(&units);
        let Some(Value::ZSet(z)) = ks.dbs[2].peek(b"z").map(|e| &e.value) else {
            panic!("z is a zset");
        };
        assert!(z.is_skiplist());
        let got: Vec<(Bytes, f64)> = z
            .iter_from(0, false)
            .map(|(m, s)| (Bytes::copy_from_slice(m), s))
            .collect();
        assert_eq!(got, vec![(k("b\0"), f64::NEG_INFINITY), (k("a"), 7.0)]);
        assert!(ks.dbs[0].peek(b"whole").is_none(), "emptied set deleted");
    }

    #[test]
    fn round_trip_hash_and_set_effects_and_values() {
        use crate::db::hash::{Hash, HashLimits};
        use crate::db::set::Set;
        let b = |s: &str| Bytes::from(s.to_string());
        let mut lp = Hash::default();
        lp.set(b"z", b"1", HashLimits::NONE);
        lp.set(b"a", b"\0\xff", HashLimits::NONE);
        let mut ht = lp.clone();
        ht.convert_to_table();
        let mut ints = Set::new_intset();
        for m in ["5", "-3", "9223372036854775807"] {
            ints.add(m.as_bytes(), 512);
        }
        let mut table = Set::for_first(b"x");
        table.add(b"x", 512);
        table.add(b"", 512);
        let effects = vec![
            Effect::HashSet {
                db: 2,
                key: b("h"),
                table: true,
                pairs: vec![(b("f"), b("v")), (b(""), b("\0"))],
            },
            Effect::HashDel {
                db: 0,
                key: b("h"),
                fields: vec![b("f"), b("")],
            },
            Effect::SetAdd {
                db: 15,
                key: b("s"),
                table: false,
                members: vec![b("1")],
            },
            Effect::SetRem {
                db: 1,
                key: b("s"),
                members: vec![b("a"), b("b")],
            },
        ]
        .into_iter()
        .chain([lp, ht].into_iter().map(|h| Effect::Set {
            db: 0,
            key: b("hv"),
            value: Value::Hash(h),
            expires_at_ms: 7,
        }))
        .chain([ints, table].into_iter().map(|s| Effect::Set {
            db: 0,
            key: b("sv"),
            value: Value::Set(s),
            expires_at_ms: 0,
        }))
        .collect::<Vec<_>>();
        let mut buf = Vec::new();
        encode_unit(&effects, &mut buf);
        assert_eq!(decode_unit(&buf), Ok(effects));
        for cut in 0..buf.len() {
            assert!(decode_unit(&buf[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn operation_effects_replay_onto_the_previous_state() {
        let b = |s: &str| Bytes::from(s.to_string());
        let units = vec![
            vec![Effect::HashSet {
                db: 0,
                key: b("h"),
                table: false,
                pairs: vec![(b("b"), b("1")), (b("a"), b("2"))],
            }],
            vec![Effect::HashSet {
                db: 0,
                key: b("h"),
                table: false,
                pairs: vec![(b("b"), b("3"))],
            }],
            vec![Effect::HashDel {
                db: 0,
                key: b("h"),
                fields: vec![b("a")],
            }],
            vec![Effect::SetAdd {
                db: 0,
                key: b("s"),
                table: false,
                members: vec![b("3"), b("1")],
            }],
            vec![Effect::SetAdd {
                db: 0,
                key: b("s"),
                table: true,
                members: vec![b("2")],
            }],
            vec![Effect::SetRem {
                db: 0,
                key: b("s"),
                members: vec![b("3")],
            }],
            vec![Effect::SetAdd {
                db: 0,
                key: b("gone"),
                table: false,
                members: vec![b("1")],
            }],
            vec![Effect::SetRem {
                db: 0,
                key: b("gone"),
                members: vec![b("1")],
            }],
        ];
        let ks = replay(&units);
        match ks.dbs[0].peek(b"h").map(|e| &e.value) {
            Some(Value::Hash(h)) => {
                let pairs: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                assert_eq!(pairs, vec![(b"b".to_vec(), b"3".to_vec())]);
                assert_eq!(h.encoding(), "listpack");
            }
            other => panic!("h: {other:?}"),
        }
        match ks.dbs[0].peek(b"s").map(|e| &e.value) {
            Some(Value::Set(s)) => {
                assert_eq!(s.encoding(), "hashtable", "the logged conversion");
                assert!(s.contains(b"1") && s.contains(b"2") && !s.contains(b"3"));
            }
            other => panic!("s: {other:?}"),
        }
        assert!(ks.dbs[0].peek(b"gone").is_none(), "emptied set removed");
    }
}
