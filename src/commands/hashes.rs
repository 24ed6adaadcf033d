//! Hash commands (Redis 7.0's t_hash.c): HSET and friends, reads, counters,
//! HRANDFIELD and HSCAN.
//!
//! Every handler follows its Redis 7.0 counterpart step by step, because the
//! order of the checks decides which error a client sees. The data
//! structure (compact insertion-ordered form and table form) is
//! `db::hash`.
//!
//! Durability: a change to an existing hash is logged as an operation
//! effect (`HashSet` with the resulting values, `HashDel`), never as the
//! request: HINCRBYFLOAT logs the value it stored. A hash the command
//! created is logged by its final state (it holds only what the command
//! wrote), and a hash left empty is deleted, which logs a Del.

use super::args::{arg_count, empty_scan, invalid_cursor, parse_scan_opts};
use super::keys::{parse_cursor, random_u64};
use super::strings::ldouble;
use super::{
    arg_i64, is_opt, read_typed, reader, write_typed, CmdError, CmdResult, Ctx, Handler, Reader,
};
use crate::db::effect::Effect;
use crate::db::hash::{own, Hash, HashLimits};
use crate::db::{notify, Keyspace, Value};
use crate::glob::glob_match;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("hset", hset),
    ("hsetnx", hsetnx),
    ("hget", hget),
    ("hmget", hmget),
    ("hmset", hmset),
    ("hgetall", hgetall),
    ("hdel", hdel),
    ("hlen", hlen),
    ("hexists", hexists),
    ("hkeys", hkeys),
    ("hvals", hvals),
    ("hincrby", hincrby),
    ("hincrbyfloat", hincrbyfloat),
    ("hstrlen", hstrlen),
    ("hrandfield", hrandfield),
    ("hscan", hscan),
];

// ---- lookups ----

fn as_hash(v: &mut Value) -> Result<&mut Hash, CmdError> {
    match v {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::wrong_type()),
    }
}

/// `lookupKeyRead` + `checkType`.
fn read_hash<'a>(
    ks: &'a mut Keyspace,
    r: Reader,
    key: &[u8],
) -> Result<Option<&'a mut Hash>, CmdError> {
    read_typed(ks, r, key, as_hash)
}

/// `lookupKeyWrite` + `checkType`.
fn write_hash<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a mut Hash>, CmdError> {
    write_typed(ks, db, key, now_ms, as_hash)
}

/// The hash under `key`, which the caller just looked up or created.
fn hash_at<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> &'a mut Hash {
    match ks.dbs[db].peek_mut(key).map(|e| &mut e.value) {
        Some(Value::Hash(h)) => h,
        _ => unreachable!("hash_at: key checked to hold a hash"),
    }
}

/// Redis's `hashTypeLookupWriteOrCreate`: WRONGTYPE for another type;
/// creates an empty hash (a "new" event) when missing. Returns whether
/// the key existed.
fn lookup_write_or_create(ctx: &mut Ctx, key: &Bytes) -> Result<bool, CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    if write_hash(ctx.ks, db, key, now)?.is_some() {
        return Ok(true);
    }
    let e = ctx.ks.entry(Value::Hash(Hash::default()), 0);
    ctx.ks.dbs[db].insert(own(key), e);
    ctx.ks.notify(notify::NEW, "new", db, key);
    Ok(false)
}

fn limits(ctx: &Ctx) -> HashLimits {
    let c = ctx.shared.config.read();
    HashLimits {
        max_entries: c.hash_max_listpack_entries,
        max_value: c.hash_max_listpack_value,
    }
}

/// Records a change of `key`: WATCH signal, `dirty`, the event, and the
/// operation effect when the key existed before the command (a created
/// key is logged by its final state).
fn changed(ctx: &mut Ctx, key: &[u8], event: &'static str, dirty: u64, op: Option<Effect>) {
    let db = ctx.db();
    ctx.ks.dbs[db].signal_modified(key);
    ctx.ks.stats.dirty += dirty;
    ctx.ks.notify(notify::HASH, event, db, key);
    if let Some(op) = op {
        ctx.ks.log_op(db, key, op);
    }
}

// ---- writes ----

/// HSET key field value [field value ...]
fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    hset_generic(ctx, args, false)
}

/// HMSET key field value [field value ...]
fn hmset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    hset_generic(ctx, args, true)
}

/// Redis's `hsetCommand` (both names): pairs are checked before the key.
fn hset_generic(ctx: &mut Ctx, args: &[Bytes], hmset: bool) -> CmdResult {
    if args.len() % 2 == 1 {
        return Err(CmdError::wrong_args(if hmset { "hmset" } else { "hset" }));
    }
    let lim = limits(ctx);
    let (db, key) = (ctx.db(), &args[1]);
    let existed = lookup_write_or_create(ctx, key)?;
    let h = hash_at(ctx.ks, db, key);
    h.convert_for_args(args[2..].iter().map(|a| a.as_ref()), lim);
    let mut created = 0;
    for pair in args[2..].chunks_exact(2) {
        if h.set(&pair[0], &pair[1], lim) {
            created += 1;
        }
    }
    let table = h.is_table();
    if hmset {
        ctx.out.ok();
    } else {
        ctx.out.int(created);
    }
    let op = existed.then(|| Effect::HashSet {
        db: db as u8,
        key: key.clone(),
        table,
        pairs: args[2..]
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
    });
    changed(ctx, key, "hset", (args.len() as u64 - 2) / 2, op);
    Ok(())
}

/// HSETNX key field value
fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lim = limits(ctx);
    let (db, key) = (ctx.db(), &args[1]);
    let existed = lookup_write_or_create(ctx, key)?;
    let h = hash_at(ctx.ks, db, key);
    if h.contains(&args[2]) {
        ctx.out.int(0);
        return Ok(());
    }
    h.convert_for_args([args[2].as_ref(), args[3].as_ref()], lim);
    h.set(&args[2], &args[3], lim);
    let table = h.is_table();
    ctx.out.int(1);
    let op = existed.then(|| Effect::HashSet {
        db: db as u8,
        key: key.clone(),
        table,
        pairs: vec![(args[2].clone(), args[3].clone())],
    });
    changed(ctx, key, "hset", 1, op);
    Ok(())
}

/// Stores a counter's result: `hashTypeSet` of the new value, the reply
/// already sent by the caller.
fn store_counter(ctx: &mut Ctx, args: &[Bytes], existed: bool, value: &[u8], event: &'static str) {
    let lim = limits(ctx);
    let (db, key) = (ctx.db(), &args[1]);
    let h = hash_at(ctx.ks, db, key);
    h.set(&args[2], value, lim);
    let table = h.is_table();
    let op = existed.then(|| Effect::HashSet {
        db: db as u8,
        key: key.clone(),
        table,
        pairs: vec![(args[2].clone(), Bytes::copy_from_slice(value))],
    });
    changed(ctx, key, event, 1, op);
}

/// Removes a hash the command created but left empty (only reached when
/// a counter fails on a new key, which Redis's checks make impossible;
/// kept so no empty key can survive).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.db();
    if hash_at(ctx.ks, db, key).is_empty() {
        ctx.ks.dbs[db].remove(key);
    }
}

/// HINCRBY key field increment
fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let incr = arg_i64(&args[3])?;
    let (db, key) = (ctx.db(), &args[1]);
    let existed = lookup_write_or_create(ctx, key)?;
    let old = match hash_at(ctx.ks, db, key).get(&args[2]) {
        None => 0,
        Some(v) => match crate::protocol::parse::parse_i64(v) {
            Some(n) => n,
            None => {
                drop_if_empty(ctx, key);
                return Err(CmdError::new("ERR hash value is not an integer"));
            }
        },
    };
    let Some(new) = old.checked_add(incr) else {
        drop_if_empty(ctx, key);
        return Err(CmdError::new("ERR increment or decrement would overflow"));
    };
    let mut b = itoa::Buffer::new();
    let text = b.format(new);
    ctx.out.int(new);
    store_counter(ctx, args, existed, text.as_bytes(), "hincrby");
    Ok(())
}

/// HINCRBYFLOAT key field increment
///
/// In x87 long double, as Redis: `strings::ldouble` emulates its parsing,
/// addition and `%.17Lf` formatting exactly.
fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let incr = ldouble::parse(&args[3]).ok_or_else(CmdError::not_float)?;
    if !incr.is_finite() {
        return Err(CmdError::new("ERR value is NaN or Infinity"));
    }
    let (db, key) = (ctx.db(), &args[1]);
    let existed = lookup_write_or_create(ctx, key)?;
    let old = match hash_at(ctx.ks, db, key).get(&args[2]) {
        None => ldouble::Ld::ZERO,
        Some(v) => match ldouble::parse(v) {
            Some(x) => x,
            None => {
                drop_if_empty(ctx, key);
                return Err(CmdError::new("ERR hash value is not a float"));
            }
        },
    };
    let sum = ldouble::add(old, incr);
    if !sum.is_finite() {
        drop_if_empty(ctx, key);
        return Err(CmdError::new("ERR increment would produce NaN or Infinity"));
    }
    let text = ldouble::format_human(sum);
    ctx.out.bulk(text.as_bytes());
    store_counter(ctx, args, existed, text.as_bytes(), "hincrbyfloat");
    Ok(())
}

/// HDEL key field [field ...]
fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let Some(h) = write_hash(ctx.ks, db, key, now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut deleted = Vec::new();
    let mut emptied = false;
    for f in &args[2..] {
        if h.remove(f) {
            deleted.push(f.clone());
            if h.is_empty() {
                emptied = true;
                break;
            }
        }
    }
    ctx.out.int(deleted.len() as i64);
    if deleted.is_empty() {
        return Ok(());
    }
    let n = deleted.len() as u64;
    if emptied {
        ctx.ks.dbs[db].remove(key);
        changed(ctx, key, "hdel", n, None);
        ctx.ks.notify(notify::GENERIC, "del", db, key);
    } else {
        let op = Effect::HashDel {
            db: db as u8,
            key: key.clone(),
            fields: deleted,
        };
        changed(ctx, key, "hdel", n, Some(op));
    }
    Ok(())
}

// ---- reads ----

/// HGET key field
fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    match read_hash(ctx.ks, r, &args[1])?.and_then(|h| h.get(&args[2])) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// HMGET key field [field ...]
fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let h = read_hash(ctx.ks, r, &args[1])?;
    ctx.out.array(args.len() - 2);
    for f in &args[2..] {
        match h.as_ref().and_then(|h| h.get(f)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// HLEN key
fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let n = read_hash(ctx.ks, r, &args[1])?.map_or(0, |h| h.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// HSTRLEN key field
fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let n = read_hash(ctx.ks, r, &args[1])?
        .and_then(|h| h.get(&args[2]))
        .map_or(0, |v| v.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// HEXISTS key field
fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let found = read_hash(ctx.ks, r, &args[1])?.is_some_and(|h| h.contains(&args[2]));
    ctx.out.int(i64::from(found));
    Ok(())
}

/// HKEYS key
fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    getall(ctx, args, true, false)
}

/// HVALS key
fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    getall(ctx, args, false, true)
}

/// HGETALL key
fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    getall(ctx, args, true, true)
}

/// Redis's `genericHgetallCommand`: a map for both parts (RESP3), else
/// an array; in the hash's own order (insertion order when compact).
fn getall(ctx: &mut Ctx, args: &[Bytes], fields: bool, values: bool) -> CmdResult {
    let r = reader(ctx);
    let h = read_hash(ctx.ks, r, &args[1])?;
    let n = h.as_ref().map_or(0, |h| h.len());
    if fields && values {
        ctx.out.map(n);
    } else {
        ctx.out.array(n);
    }
    if let Some(h) = h {
        for (f, v) in h.iter() {
            if fields {
                ctx.out.bulk(f);
            }
            if values {
                ctx.out.bulk(v);
            }
        }
    }
    Ok(())
}

// ---- HRANDFIELD ----

/// Distinct random positions `0..size`, `count < size` of them, in random
/// order: a partial Fisher-Yates shuffle when the sample is a large part
/// of the whole (Redis's CASE 3), rejection sampling otherwise (CASE 4).
pub(super) fn distinct_sample(size: usize, count: usize) -> Vec<usize> {
    if count.saturating_mul(3) > size {
        let mut idx: Vec<usize> = (0..size).collect();
        for i in 0..count {
            let j = i + (random_u64() % (size - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(count);
        idx
    } else {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = (random_u64() % size as u64) as usize;
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    }
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() >= 3 {
        let l = arg_count(&args[2])?;
        let withvalues = match args.len() {
            3 => false,
            4 if is_opt(&args[3], "withvalues") => {
                if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
                    return Err(CmdError::new("ERR value is out of range"));
                }
                true
            }
            _ => return Err(CmdError::syntax()),
        };
        return hrandfield_count(ctx, args, l, withvalues);
    }
    let r = reader(ctx);
    let Some(h) = read_hash(ctx.ks, r, &args[1])? else {
        ctx.out.null();
        return Ok(());
    };
    match h.random_pair(random_u64()) {
        Some((f, _)) => ctx.out.bulk(f),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Redis's `hrandfieldWithCountCommand`: a negative count may repeat
/// fields; a positive one gives distinct fields, the whole hash in its own
/// order when it asks for at least all of them. WITHVALUES pairs are
/// nested arrays in RESP3, flat in RESP2.
fn hrandfield_count(ctx: &mut Ctx, args: &[Bytes], l: i64, withvalues: bool) -> CmdResult {
    let r = reader(ctx);
    let resp3 = ctx.out.resp3;
    let Some(h) = read_hash(ctx.ks, r, &args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let count = l.unsigned_abs();
    if count == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let out = &mut *ctx.out;
    let emit = |out: &mut crate::protocol::Out, f: &[u8], v: &[u8]| {
        if withvalues && resp3 {
            out.array(2);
        }
        out.bulk(f);
        if withvalues {
            out.bulk(v);
        }
    };
    let header = |out: &mut crate::protocol::Out, n: usize| {
        out.array(if withvalues && !resp3 { n * 2 } else { n });
    };
    if l < 0 || count == 1 {
        // Redis replies as it samples; the count is bounded by the reply
        // the client asked for (as in Redis, a huge count is its choice).
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        header(out, n);
        for _ in 0..n {
            if let Some((f, v)) = h.random_pair(random_u64()) {
                emit(out, f, v);
            }
        }
        return Ok(());
    }
    let size = h.len();
    if count >= size as u64 {
        header(out, size);
        for (f, v) in h.iter() {
            emit(out, f, v);
        }
        return Ok(());
    }
    let count = count as usize;
    header(out, count);
    if count.saturating_mul(3) > size {
        // A large part of the hash: shuffle a copy (Redis's CASE 3).
        let all: Vec<(&[u8], &[u8])> = h.iter().collect();
        for i in distinct_sample(size, count) {
            let (f, v) = all[i];
            emit(out, f, v);
        }
    } else {
        // A small sample: random picks until enough distinct (CASE 4),
        // O(count) whatever the hash's size.
        let mut seen = std::collections::HashSet::with_capacity(count);
        while seen.len() < count {
            if let Some((f, v)) = h.random_pair(random_u64()) {
                if seen.insert(f) {
                    emit(out, f, v);
                }
            }
        }
    }
    Ok(())
}

// ---- HSCAN ----

/// HSCAN key cursor [MATCH pattern] [COUNT count]
///
/// A compact hash is returned whole with cursor 0 (COUNT ignored), as
/// Redis does. A table hash is walked in `(hash(field), field)` order from
/// the cursor, COUNT fields a call: a field present for the whole scan is
/// returned at least once.
fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2]).ok_or_else(invalid_cursor)?;
    let r = reader(ctx);
    let Some(h) = read_hash(ctx.ks, r, &args[1])? else {
        empty_scan(ctx);
        return Ok(());
    };
    let o = parse_scan_opts(args, 3)?;
    let mut left = o.count;
    let mut batch: Vec<(&[u8], &[u8])> = Vec::new();
    let next = h.scan(cursor, |f, v| {
        if o.pattern.is_none_or(|p| glob_match(p, f, false)) {
            batch.push((f, v));
        }
        left = left.saturating_sub(1);
        left > 0
    });
    ctx.out.array(2);
    let mut b = itoa::Buffer::new();
    ctx.out.bulk(b.format(next).as_bytes());
    ctx.out.array(batch.len() * 2);
    for (f, v) in &batch {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
    Ok(())
}
