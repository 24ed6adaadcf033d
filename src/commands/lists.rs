//! List commands (Redis's t_list.c): pushes, pops, ranges, LPOS, LMOVE,
//! LMPOP and the blocking forms BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.
//!
//! Every handler follows its Redis 7.0 counterpart step by step, because
//! the order of the checks decides which error a client sees. Changes are
//! logged as operation effects (`Effect::List*`), never as the whole list,
//! so a push to a long list costs the WAL only the pushed elements.
//! The blocking forms block through `server::blocking`; when a key they
//! wait on is ready, their handler is re-run on their behalf.

use super::blocking::{self, Null, Unit};
use super::{arg_i64, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::db::effect::Effect;
use crate::db::list::List;
use crate::db::notify;
use crate::db::Value;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("lpush", lpush),
    ("rpush", rpush),
    ("lpushx", lpushx),
    ("rpushx", rpushx),
    ("linsert", linsert),
    ("llen", llen),
    ("lindex", lindex),
    ("lset", lset),
    ("lrange", lrange),
    ("ltrim", ltrim),
    ("lpos", lpos),
    ("lrem", lrem),
    ("lpop", lpop),
    ("rpop", rpop),
    ("rpoplpush", rpoplpush),
    ("lmove", lmove),
    ("lmpop", lmpop),
    ("blpop", blpop),
    ("brpop", brpop),
    ("brpoplpush", brpoplpush),
    ("blmove", blmove),
    ("blmpop", blmpop),
];

// ---- lookups and bookkeeping ----

/// Head (`left`) or tail.
type Side = bool;
const LEFT: Side = true;
const RIGHT: Side = false;

fn as_list(v: &mut Value) -> Result<&mut List, CmdError> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err(CmdError::wrong_type()),
    }
}

/// `lookupKeyRead` + `checkType`.
fn read_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut List>, CmdError> {
    let r = super::reader(ctx);
    super::read_typed(ctx.ks, r, key, as_list)
}

/// `lookupKeyWrite` + `checkType`.
fn write_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut List>, CmdError> {
    super::write_typed(ctx.ks, ctx.client.db, key, ctx.now_ms, as_list)
}

/// True when `key` holds a value that is not a list (checkType on a
/// possibly missing key).
fn wrong_type(ctx: &mut Ctx, key: &[u8]) -> bool {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    ctx.ks
        .lookup_write(db, key, now)
        .is_some_and(|e| !matches!(e.value, Value::List(_)))
}

/// Records a change of `key`: WATCH signal, operation effect, `dirty`.
fn changed(ctx: &mut Ctx, key: &[u8], effect: Effect, dirty: u64) {
    let db = ctx.client.db;
    ctx.ks.dbs[db].signal_modified(key);
    ctx.ks.log_op(db, key, effect);
    ctx.ks.stats.dirty += dirty;
}

/// Deletes `key` if its list became empty (with the "del" event), as
/// Redis's `listElementsRemoved` and friends.
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.client.db;
    let empty = matches!(ctx.ks.dbs[db].peek(key), Some(e) if matches!(&e.value, Value::List(l) if l.is_empty()));
    if empty {
        ctx.ks.dbs[db].remove(key);
        ctx.ks.notify(notify::GENERIC, "del", db, key);
    }
}

fn key_bytes(key: &[u8]) -> Bytes {
    Bytes::copy_from_slice(key)
}

fn pop_event(side: Side) -> &'static str {
    if side {
        "lpop"
    } else {
        "rpop"
    }
}

fn push_event(side: Side) -> &'static str {
    if side {
        "lpush"
    } else {
        "rpush"
    }
}

/// Pushes `items` to `key`, creating the list unless `only_existing`
/// (the X forms). Returns the new length, 0 when nothing happened.
fn push_items(
    ctx: &mut Ctx,
    key: &[u8],
    items: &[Bytes],
    side: Side,
    only_existing: bool,
) -> Result<i64, CmdError> {
    let db = ctx.client.db;
    if write_list(ctx, key)?.is_none() {
        if only_existing {
            return Ok(0);
        }
        let e = ctx.ks.entry(Value::List(List::new()), 0);
        ctx.ks.dbs[db].insert(key_bytes(key), e);
        ctx.ks.notify(notify::NEW, "new", db, key);
    }
    // The look above (or the creation) was the key's one access.
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let len = match super::rewrite_typed(ctx.ks, db, key, now, as_list)? {
        Some(l) => {
            for it in items {
                l.push(side, it);
            }
            l.len() as i64
        }
        None => return Ok(0),
    };
    changed(
        ctx,
        key,
        Effect::ListPush {
            db: db as u8,
            key: key_bytes(key),
            left: side,
            items: items.to_vec(),
        },
        items.len() as u64,
    );
    ctx.ks.notify(notify::LIST, push_event(side), db, key);
    ctx.ks.signal_key_ready(db, key);
    Ok(len)
}

/// Pops up to `count` elements from the list at `key` (which exists),
/// logs, notifies, deletes the key if emptied. Elements in pop order.
fn pop_items(ctx: &mut Ctx, key: &[u8], side: Side, count: usize) -> Vec<Box<[u8]>> {
    let db = ctx.client.db;
    let mut got = Vec::new();
    if let Ok(Some(l)) = write_list(ctx, key) {
        while got.len() < count {
            match l.pop(side) {
                Some(v) => got.push(v),
                None => break,
            }
        }
    }
    changed(
        ctx,
        key,
        Effect::ListPop {
            db: db as u8,
            key: key_bytes(key),
            left: side,
            count: got.len() as u64,
        },
        got.len() as u64,
    );
    ctx.ks.notify(notify::LIST, pop_event(side), db, key);
    delete_if_empty(ctx, key);
    got
}

/// LEFT / RIGHT (`getListPositionFromObjectOrReply`).
fn side_arg(a: &[u8]) -> Result<Side, CmdError> {
    if is_opt(a, "left") {
        Ok(LEFT)
    } else if is_opt(a, "right") {
        Ok(RIGHT)
    } else {
        Err(CmdError::syntax())
    }
}

/// `getPositiveLongFromObjectOrReply`: `msg` for a non-integer and for a
/// negative value alike.
fn positive(a: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    arg_i64(a)
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| CmdError::new(msg))
}

/// Redis's range normalisation (`addListRangeReply`, LTRIM): the
/// inclusive range within a list of `len`, or None when empty.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

// ---- pushes ----

/// LPUSH key element [element ...]
fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_items(ctx, &args[1], &args[2..], LEFT, false)?;
    ctx.out.int(n);
    Ok(())
}

/// RPUSH key element [element ...]
fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_items(ctx, &args[1], &args[2..], RIGHT, false)?;
    ctx.out.int(n);
    Ok(())
}

/// LPUSHX key element [element ...]
fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_items(ctx, &args[1], &args[2..], LEFT, true)?;
    ctx.out.int(n);
    Ok(())
}

/// RPUSHX key element [element ...]
fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = push_items(ctx, &args[1], &args[2..], RIGHT, true)?;
    ctx.out.int(n);
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element
fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let after = if is_opt(&args[2], "after") {
        true
    } else if is_opt(&args[2], "before") {
        false
    } else {
        return Err(CmdError::syntax());
    };
    let key = &args[1];
    let db = ctx.client.db;
    let Some(l) = write_list(ctx, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let Some(pos) = l.iter().position(|e| e == &args[3][..]) else {
        ctx.out.int(-1);
        return Ok(());
    };
    let index = pos + usize::from(after);
    l.insert(index, &args[4]);
    let len = l.len() as i64;
    changed(
        ctx,
        key,
        Effect::ListInsert {
            db: db as u8,
            key: key.clone(),
            index: index as u64,
            value: args[4].clone(),
        },
        1,
    );
    ctx.ks.notify(notify::LIST, "linsert", db, key);
    ctx.out.int(len);
    Ok(())
}

// ---- reads ----

/// LLEN key
fn llen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = read_list(ctx, &args[1])?.map_or(0, |l| l.len() as i64);
    ctx.out.int(n);
    Ok(())
}

/// LINDEX key index
fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(l) = read_list(ctx, &args[1])? else {
        ctx.out.null();
        return Ok(());
    };
    let i = arg_i64(&args[2])?;
    match l.index(i).and_then(|i| l.get(i)) {
        Some(v) => {
            let v = v.to_vec();
            ctx.out.bulk(&v);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// LRANGE key start stop
fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = arg_i64(&args[2])?;
    let end = arg_i64(&args[3])?;
    let resp3 = ctx.out.resp3;
    let Some(l) = read_list(ctx, &args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let Some((s, e)) = clamp_range(start, end, l.len()) else {
        ctx.out.array(0);
        return Ok(());
    };
    // The list and the reply buffer are both borrowed from ctx: encode
    // into a local buffer first.
    let mut out = crate::protocol::Out::new(resp3);
    out.array(e - s + 1);
    for v in l.range(s, e) {
        out.bulk(v);
    }
    ctx.out.raw(&out.buf);
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: i64 = -1;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is_opt(&args[j], "rank") && more {
            j += 1;
            rank = arg_i64(&args[j])?;
            if rank == 0 {
                return Err(CmdError::new("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
        } else if is_opt(&args[j], "count") && more {
            j += 1;
            count = positive(&args[j], "ERR COUNT can't be negative")?;
        } else if is_opt(&args[j], "maxlen") && more {
            j += 1;
            maxlen = positive(&args[j], "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    // A negative rank searches from the tail (Redis negates it with C's
    // wrap-around, so RANK LONG_MIN stays negative: every match counts).
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let Some(l) = read_list(ctx, &args[1])? else {
        if count != -1 {
            ctx.out.array(0);
        } else {
            ctx.out.null();
        }
        return Ok(());
    };
    let ele = &args[2][..];
    let llen = l.len() as i64;
    let mut found: Vec<i64> = Vec::new();
    let mut matches: i64 = 0;
    let items: Box<dyn Iterator<Item = &[u8]>> = if from_tail {
        Box::new(l.iter().rev())
    } else {
        Box::new(l.iter())
    };
    for (index, e) in items.enumerate() {
        let index = index as i64;
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if e == ele {
            matches += 1;
            if matches >= rank {
                found.push(if from_tail { llen - index - 1 } else { index });
                if count == -1
                    || (count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count)
                {
                    break;
                }
            }
        }
    }
    if count != -1 {
        ctx.out.array(found.len());
        for i in found {
            ctx.out.int(i);
        }
    } else {
        match found.first() {
            Some(i) => ctx.out.int(*i),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

// ---- modifications ----

/// LSET key index element
fn lset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let db = ctx.client.db;
    let Some(l) = write_list(ctx, key)? else {
        return Err(CmdError::no_such_key());
    };
    let i = arg_i64(&args[2])?;
    let Some(index) = l.index(i) else {
        return Err(CmdError::new("ERR index out of range"));
    };
    l.set(index, &args[3]);
    changed(
        ctx,
        key,
        Effect::ListSet {
            db: db as u8,
            key: key.clone(),
            index: index as u64,
            value: args[3].clone(),
        },
        1,
    );
    ctx.ks.notify(notify::LIST, "lset", db, key);
    ctx.out.ok();
    Ok(())
}

/// LTRIM key start stop
fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = arg_i64(&args[2])?;
    let end = arg_i64(&args[3])?;
    let key = &args[1];
    let db = ctx.client.db;
    let Some(l) = write_list(ctx, key)? else {
        ctx.out.ok();
        return Ok(());
    };
    let len = l.len();
    let (keep_start, keep_end) = match clamp_range(start, end, len) {
        Some((s, e)) => (s, e + 1),
        None => (0, 0),
    };
    l.keep(keep_start, keep_end);
    let removed = len - (keep_end - keep_start);
    changed(
        ctx,
        key,
        Effect::ListTrim {
            db: db as u8,
            key: key.clone(),
            start: keep_start as u64,
            end: keep_end as u64,
        },
        removed as u64,
    );
    ctx.ks.notify(notify::LIST, "ltrim", db, key);
    delete_if_empty(ctx, key);
    ctx.out.ok();
    Ok(())
}

/// LREM key count element
fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = arg_i64(&args[2])?;
    let key = &args[1];
    let db = ctx.client.db;
    let Some(l) = write_list(ctx, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let removed = l.remove(count, &args[3]);
    if removed > 0 {
        changed(
            ctx,
            key,
            Effect::ListRem {
                db: db as u8,
                key: key.clone(),
                count,
                value: args[3].clone(),
            },
            removed as u64,
        );
        ctx.ks.notify(notify::LIST, "lrem", db, key);
        delete_if_empty(ctx, key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

// ---- pops ----

/// LPOP key [count]
fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop_command(ctx, args, LEFT)
}

/// RPOP key [count]
fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop_command(ctx, args, RIGHT)
}

/// Redis's `popGenericCommand`.
fn pop_command(ctx: &mut Ctx, args: &[Bytes], side: Side) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_args(if side { "lpop" } else { "rpop" }));
    }
    let count = match args.get(2) {
        Some(a) => Some(positive(a, "ERR value is out of range, must be positive")?),
        None => None,
    };
    let key = &args[1];
    if write_list(ctx, key)?.is_none() {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    match count {
        Some(0) => ctx.out.array(0),
        None => {
            let got = pop_items(ctx, key, side, 1);
            match got.first() {
                Some(v) => ctx.out.bulk(v),
                None => ctx.out.null(),
            }
        }
        Some(n) => {
            let got = pop_items(ctx, key, side, usize::try_from(n).unwrap_or(usize::MAX));
            ctx.out.array(got.len());
            for v in &got {
                ctx.out.bulk(v);
            }
        }
    }
    Ok(())
}

/// RPOPLPUSH source destination
fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    move_command(ctx, &args[1], &args[2], RIGHT, LEFT)
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let from = side_arg(&args[3])?;
    let to = side_arg(&args[4])?;
    move_command(ctx, &args[1], &args[2], from, to)
}

/// Redis's `lmoveGenericCommand` (the source exists or the reply is null).
fn move_command(ctx: &mut Ctx, src: &Bytes, dst: &Bytes, from: Side, to: Side) -> CmdResult {
    let db = ctx.client.db;
    match write_list(ctx, src)? {
        None => {
            ctx.out.null();
            return Ok(());
        }
        Some(l) if l.is_empty() => {
            ctx.out.null();
            return Ok(());
        }
        Some(_) => {}
    }
    if wrong_type(ctx, dst) {
        return Err(CmdError::wrong_type());
    }
    let Some(v) = write_list(ctx, src)?.and_then(|l| l.pop(from)) else {
        ctx.out.null();
        return Ok(());
    };
    // The pop is logged before the push: with source == destination the
    // list is momentarily empty but never deleted in between.
    ctx.ks.log_op(
        db,
        src,
        Effect::ListPop {
            db: db as u8,
            key: src.clone(),
            left: from,
            count: 1,
        },
    );
    push_items(ctx, dst, &[Bytes::copy_from_slice(&v)], to, false)?;
    ctx.ks.notify(notify::LIST, pop_event(from), db, src);
    delete_if_empty(ctx, src);
    ctx.ks.dbs[db].signal_modified(src);
    ctx.ks.stats.dirty += 1;
    ctx.out.bulk(&v);
    Ok(())
}

/// The arguments of LMPOP / BLMPOP after the numkeys position.
struct Mpop {
    keys: std::ops::Range<usize>,
    side: Side,
    count: usize,
}

/// Redis's `lmpopGenericCommand` argument parsing.
fn parse_mpop(args: &[Bytes], numkeys_idx: usize) -> Result<Mpop, CmdError> {
    let numkeys = arg_i64(&args[numkeys_idx])
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| CmdError::new("ERR numkeys should be greater than 0"))?;
    let where_idx = (numkeys as u64).saturating_add(numkeys_idx as u64 + 1);
    if where_idx >= args.len() as u64 {
        return Err(CmdError::syntax());
    }
    let where_idx = where_idx as usize;
    let side = side_arg(&args[where_idx])?;
    let mut count: i64 = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = j + 1 < args.len();
        if count == -1 && is_opt(&args[j], "count") && more {
            j += 1;
            count = arg_i64(&args[j])
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| CmdError::new("ERR count should be greater than 0"))?;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    Ok(Mpop {
        keys: numkeys_idx + 1..where_idx,
        side,
        count: if count == -1 { 1 } else { count as usize },
    })
}

/// Pops from the first non-empty list among `keys`; replies `[key,
/// [elements]]` (`nested`) or `[key, element]`. False when all were empty.
fn pop_first(
    ctx: &mut Ctx,
    keys: &[Bytes],
    side: Side,
    count: usize,
    nested: bool,
) -> Result<bool, CmdError> {
    for key in keys {
        match write_list(ctx, key)? {
            Some(l) if !l.is_empty() => {}
            _ => continue,
        }
        let got = pop_items(ctx, key, side, count);
        ctx.out.array(2);
        ctx.out.bulk(key);
        if nested {
            ctx.out.array(got.len());
        }
        for v in &got {
            ctx.out.bulk(v);
        }
        return Ok(true);
    }
    Ok(false)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn lmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let m = parse_mpop(args, 1)?;
    if !pop_first(ctx, &args[m.keys], m.side, m.count, true)? {
        ctx.out.null_array();
    }
    Ok(())
}

// ---- blocking forms ----

/// BLPOP key [key ...] timeout
fn blpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocking_pop(ctx, args, LEFT)
}

/// BRPOP key [key ...] timeout
fn brpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocking_pop(ctx, args, RIGHT)
}

/// Redis's `blockingPopGenericCommand` for BLPOP / BRPOP.
fn blocking_pop(ctx: &mut Ctx, args: &[Bytes], side: Side) -> CmdResult {
    let last = args.len() - 1;
    let deadline = blocking::parse_timeout(&args[last], Unit::Seconds, ctx.now_ms)?;
    let keys = &args[1..last];
    if pop_first(ctx, keys, side, 1, false)? {
        return Ok(());
    }
    if blocking::denied(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    blocking::block(ctx, args, keys.to_vec(), deadline, "list", Null::Array);
    Ok(())
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn blmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let m = parse_mpop(args, 2)?;
    let deadline = blocking::parse_timeout(&args[1], Unit::Seconds, ctx.now_ms)?;
    let keys = &args[m.keys];
    if pop_first(ctx, keys, m.side, m.count, true)? {
        return Ok(());
    }
    if blocking::denied(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    blocking::block(ctx, args, keys.to_vec(), deadline, "list", Null::Array);
    Ok(())
}

/// BRPOPLPUSH source destination timeout
fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let deadline = blocking::parse_timeout(&args[3], Unit::Seconds, ctx.now_ms)?;
    blocking_move(ctx, args, RIGHT, LEFT, deadline)
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let from = side_arg(&args[3])?;
    let to = side_arg(&args[4])?;
    let deadline = blocking::parse_timeout(&args[5], Unit::Seconds, ctx.now_ms)?;
    blocking_move(ctx, args, from, to, deadline)
}

/// Redis's `blmoveGenericCommand`.
fn blocking_move(ctx: &mut Ctx, args: &[Bytes], from: Side, to: Side, deadline: u64) -> CmdResult {
    if write_list(ctx, &args[1])?.is_some() {
        return move_command(ctx, &args[1], &args[2], from, to);
    }
    if blocking::denied(ctx) {
        ctx.out.null();
        return Ok(());
    }
    blocking::block(
        ctx,
        args,
        vec![args[1].clone()],
        deadline,
        "list",
        Null::Array,
    );
    Ok(())
}
