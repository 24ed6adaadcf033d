//! Sorted set commands (Redis's t_zset.c): ZADD and its flags, ZINCRBY,
//! ZREM, lookups by member and rank, pops and their blocking forms, ZRANDMEMBER and ZSCAN here;
//! range queries and range removals in `range`, the set operations in
//! `setops`, `strtod` emulation for scores in `float`.
//!
//! Every handler follows its Redis 7.0 counterpart step by step, because the
//! order of the checks decides which error a client sees. Writes log
//! operation effects (`Effect::ZAdd` with resulting scores, `Effect::ZRem`),
//! never the request, and never the whole set; commands that build a new
//! destination set (ZUNIONSTORE, ZRANGESTORE ...) log its final state.

pub(crate) mod float;
mod range;
mod setops;

use super::blocking::{self, Null, Unit};
use super::keys::{parse_cursor, random_u64};
use super::{arg_i64, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::db::effect::Effect;
use crate::db::notify;
use crate::db::zset::{ZSet, ZsetLimits};
use crate::db::{Keyspace, Value};
use crate::glob::glob_match;
use crate::protocol::Out;
use bytes::Bytes;

pub(crate) use float::{parse_score, parse_score_bound};
pub(super) use range::store;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("zadd", zadd),
    ("zincrby", zincrby),
    ("zrem", zrem),
    ("zcard", zcard),
    ("zscore", zscore),
    ("zmscore", zmscore),
    ("zrank", zrank),
    ("zrevrank", zrevrank),
    ("zrange", range::zrange),
    ("zrevrange", range::zrevrange),
    ("zrangebyscore", range::zrangebyscore),
    ("zrevrangebyscore", range::zrevrangebyscore),
    ("zrangebylex", range::zrangebylex),
    ("zrevrangebylex", range::zrevrangebylex),
    ("zrangestore", range::zrangestore),
    ("zcount", range::zcount),
    ("zlexcount", range::zlexcount),
    ("zremrangebyrank", range::zremrangebyrank),
    ("zremrangebyscore", range::zremrangebyscore),
    ("zremrangebylex", range::zremrangebylex),
    ("zpopmin", zpopmin),
    ("zpopmax", zpopmax),
    ("zmpop", zmpop),
    ("bzpopmin", bzpopmin),
    ("bzpopmax", bzpopmax),
    ("bzmpop", bzmpop),
    ("zunion", setops::zunion),
    ("zinter", setops::zinter),
    ("zdiff", setops::zdiff),
    ("zintercard", setops::zintercard),
    ("zunionstore", setops::zunionstore),
    ("zinterstore", setops::zinterstore),
    ("zdiffstore", setops::zdiffstore),
    ("zrandmember", zrandmember),
    ("zscan", zscan),
];

// ---- lookups and bookkeeping ----

use super::{read_typed, reader as rd, write_typed, Reader as Rd};

fn as_zset(v: &mut Value) -> Result<&mut ZSet, CmdError> {
    match v {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::wrong_type()),
    }
}

/// `lookupKeyRead` + `checkType`.
fn read_zset<'a>(
    ks: &'a mut Keyspace,
    r: Rd,
    key: &[u8],
) -> Result<Option<&'a mut ZSet>, CmdError> {
    read_typed(ks, r, key, as_zset)
}

/// `lookupKeyWrite` + `checkType`.
fn write_zset<'a>(
    ks: &'a mut Keyspace,
    r: Rd,
    key: &[u8],
) -> Result<Option<&'a mut ZSet>, CmdError> {
    write_typed(ks, r.db, key, r.now_ms, as_zset)
}

fn limits(ctx: &Ctx) -> ZsetLimits {
    ctx.shared.config.read().zset_limits
}

/// Finishes removals from `key`: WATCH signal and `dirty`, then either
/// deletes the emptied key (Redis never keeps an empty set; the WAL gets a
/// Del) or logs the removed members. Returns true when the key was deleted.
fn removed(ks: &mut Keyspace, db: usize, key: &[u8], members: Vec<Bytes>) -> bool {
    ks.stats.dirty += members.len() as u64;
    let empty =
        matches!(ks.dbs[db].peek(key).map(|e| &e.value), Some(Value::ZSet(z)) if z.is_empty());
    if empty {
        ks.dbs[db].remove(key);
        return true;
    }
    ks.dbs[db].signal_modified(key);
    ks.log_op(
        db,
        key,
        Effect::ZRem {
            db: db as u8,
            key: Bytes::copy_from_slice(key),
            members,
        },
    );
    false
}

/// One element of a reply with scores: `[member, score]` nested in RESP3
/// when `nested`, flat otherwise.
fn reply_elem(out: &mut Out, m: &[u8], score: f64, withscores: bool, nested: bool) {
    if withscores && nested {
        out.array(2);
    }
    out.bulk(m);
    if withscores {
        out.double(score);
    }
}

/// The array header for `n` elements: `2n` flat in RESP2 with scores, `n`
/// (pairs nested) in RESP3.
fn reply_len(out: &mut Out, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(n * 2);
    } else {
        out.array(n);
    }
}

/// Redis's `getPositiveLongFromObjectOrReply` with its default message.
fn arg_positive(a: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    match crate::protocol::parse::parse_i64(a) {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(CmdError::new(msg)),
    }
}

/// Redis's `getRangeLongFromObjectOrReply(.., 1, LONG_MAX, msg)`.
fn arg_at_least_one(a: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    match crate::protocol::parse::parse_i64(a) {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(CmdError::new(msg)),
    }
}

// ---- ZADD / ZINCRBY ----

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
}

/// What `zset_add` did.
#[derive(PartialEq, Eq, Debug)]
enum AddOut {
    Added,
    Updated,
    /// Present with the same score: processed, nothing changed.
    Same,
    /// Skipped by NX, XX, GT or LT.
    Nop,
}

/// Redis's `zsetAdd`: adds or updates one member following the flags.
/// Returns what happened and the resulting score; Err when the increment
/// made the score NaN.
fn zset_add(
    z: &mut ZSet,
    mut score: f64,
    member: &[u8],
    f: AddFlags,
    limits: ZsetLimits,
) -> Result<(AddOut, f64), ()> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok((AddOut::Nop, score));
            }
            if f.incr {
                score += cur;
                if score.is_nan() {
                    return Err(());
                }
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return Ok((AddOut::Nop, score));
            }
            if score != cur {
                z.update(member, cur, score);
                Ok((AddOut::Updated, score))
            } else {
                Ok((AddOut::Same, score))
            }
        }
        None if !f.xx => {
            z.insert_new(Bytes::copy_from_slice(member), score, limits);
            Ok((AddOut::Added, score))
        }
        None => Ok((AddOut::Nop, score)),
    }
}

/// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
pub(super) fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

/// ZINCRBY key increment member
///
/// Redis runs it through ZADD's option parser too, so `ZINCRBY k nx m` is
/// a syntax error.
fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

fn zadd_generic(ctx: &mut Ctx, args: &[Bytes], incr_cmd: bool) -> CmdResult {
    let mut f = AddFlags {
        incr: incr_cmd,
        ..AddFlags::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let a = &args[idx];
        if is_opt(a, "nx") {
            f.nx = true;
        } else if is_opt(a, "xx") {
            f.xx = true;
        } else if is_opt(a, "ch") {
            ch = true;
        } else if is_opt(a, "incr") {
            f.incr = true;
        } else if is_opt(a, "gt") {
            f.gt = true;
        } else if is_opt(a, "lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if !elements.is_multiple_of(2) || elements == 0 {
        return Err(CmdError::syntax());
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return Err(CmdError::new(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::new(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && elements > 1 {
        return Err(CmdError::new(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let scores = (0..elements)
        .map(|j| parse_score(&args[idx + 2 * j]).ok_or_else(CmdError::not_float))
        .collect::<Result<Vec<f64>, _>>()?;
    let key = &args[1];
    let r = rd(ctx);
    let limits = limits(ctx);
    let exists = write_zset(ctx.ks, r, key)?.is_some();
    let mut created = false;
    if !exists {
        if f.xx {
            reply_add(ctx.out, f.incr, ch, 0, 0, None);
            return Ok(());
        }
        let z = ZSet::for_first_member(args[idx + 1].len(), limits);
        let e = ctx.ks.entry(Value::ZSet(z), 0);
        ctx.ks.dbs[r.db].insert(Bytes::copy_from_slice(key), e);
        created = true;
    }
    // The look above (or the creation) was the key's one access.
    let Some(z) = super::rewrite_typed(ctx.ks, r.db, key, r.now_ms, as_zset)? else {
        return Ok(());
    };
    let (mut added, mut updated) = (0u64, 0u64);
    let mut last = None;
    let mut changes: Vec<(Bytes, f64)> = Vec::new();
    let mut nan = false;
    for (j, score) in scores.iter().enumerate() {
        let member = &args[idx + 1 + 2 * j];
        match zset_add(z, *score, member, f, limits) {
            Err(()) => {
                nan = true;
                break;
            }
            Ok((out, newscore)) => {
                match out {
                    AddOut::Added => added += 1,
                    AddOut::Updated => updated += 1,
                    AddOut::Same | AddOut::Nop => {}
                }
                if matches!(out, AddOut::Added | AddOut::Updated) {
                    changes.push((Bytes::copy_from_slice(member), newscore));
                }
                if out != AddOut::Nop {
                    last = Some(newscore);
                }
            }
        }
    }
    let skiplist = z.is_skiplist();
    if created {
        ctx.ks.notify(notify::NEW, "new", r.db, key);
    }
    if !changes.is_empty() {
        ctx.ks.dbs[r.db].signal_modified(key);
        if added > 0 {
            ctx.ks.signal_key_ready(r.db, key);
        }
        if !nan {
            ctx.ks.stats.dirty += added + updated;
        }
        ctx.ks.log_op(
            r.db,
            key,
            Effect::ZAdd {
                db: r.db as u8,
                key: key.clone(),
                skiplist,
                pairs: changes,
            },
        );
        ctx.ks.notify(
            notify::ZSET,
            if f.incr { "zincr" } else { "zadd" },
            r.db,
            key,
        );
    }
    if nan {
        return Err(CmdError::new("ERR resulting score is not a number (NaN)"));
    }
    reply_add(ctx.out, f.incr, ch, added, updated, last);
    Ok(())
}

fn reply_add(out: &mut Out, incr: bool, ch: bool, added: u64, updated: u64, last: Option<f64>) {
    if incr {
        match last {
            Some(s) => out.double(s),
            None => out.null(),
        }
    } else {
        out.int((if ch { added + updated } else { added }) as i64);
    }
}

// ---- removal and lookups ----

/// ZREM key member [member ...]
fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = rd(ctx);
    let key = &args[1];
    let Some(z) = write_zset(ctx.ks, r, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut gone = Vec::new();
    for m in &args[2..] {
        if z.remove(m).is_some() {
            gone.push(m.clone());
        }
        if z.is_empty() {
            break;
        }
    }
    let n = gone.len() as i64;
    if n > 0 {
        let deleted = removed(ctx.ks, r.db, key, gone);
        ctx.ks.notify(notify::ZSET, "zrem", r.db, key);
        if deleted {
            ctx.ks.notify(notify::GENERIC, "del", r.db, key);
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// ZCARD key
fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = rd(ctx);
    let n = read_zset(ctx.ks, r, &args[1])?.map_or(0, |z| z.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// ZSCORE key member
fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = rd(ctx);
    match read_zset(ctx.ks, r, &args[1])?.and_then(|z| z.score(&args[2])) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

/// ZMSCORE key member [member ...]
fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = rd(ctx);
    let z = read_zset(ctx.ks, r, &args[1])?;
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        match z.as_ref().and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// ZRANK key member
fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, false)
}

/// ZREVRANK key member
fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, true)
}

fn rank_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let r = rd(ctx);
    let Some(z) = read_zset(ctx.ks, r, &args[1])? else {
        ctx.out.null();
        return Ok(());
    };
    match z.rank(&args[2]) {
        Some(i) => ctx.out.int(if rev { z.len() - 1 - i } else { i } as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

// ---- pops ----

/// How a pop replies (Redis's `genericZpopCommand` parameters).
#[derive(Clone, Copy)]
struct PopStyle {
    /// Reply starts with the key (ZMPOP, BZPOP*).
    emit_key: bool,
    /// Elements as [member, score] pairs.
    nested: bool,
    /// No candidate key: null array instead of an empty one.
    nil_when_empty: bool,
}

/// Pops up to `count` elements (-1: a single one, flat) from the first
/// non-empty key among `keys`, as Redis's `genericZpopCommand`.
fn pop_generic(ctx: &mut Ctx, keys: &[Bytes], max: bool, count: i64, st: PopStyle) -> CmdResult {
    let r = rd(ctx);
    let mut found: Option<&Bytes> = None;
    for k in keys {
        if write_zset(ctx.ks, r, k)?.is_some() {
            found = Some(k);
            break;
        }
    }
    let Some(key) = found else {
        if st.nil_when_empty {
            ctx.out.null_array();
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    if count == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let count = if count == -1 { 1 } else { count };
    let Some(z) = super::rewrite_typed(ctx.ks, r.db, key, r.now_ms, as_zset)? else {
        return Ok(());
    };
    let n = usize::try_from(count).unwrap_or(usize::MAX).min(z.len());
    let popped = if max {
        let len = z.len();
        let mut v = z.remove_ranks(len - n, len);
        v.reverse();
        v
    } else {
        z.remove_ranks(0, n)
    };
    let out = &mut *ctx.out;
    match (st.nested, st.emit_key) {
        (false, false) => out.array(n * 2),
        (true, false) => out.array(n),
        (false, true) => {
            out.array(n * 2 + 1);
            out.bulk(key);
        }
        (true, true) => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    for (m, s) in &popped {
        reply_elem(out, m, *s, true, st.nested);
    }
    let members = popped.into_iter().map(|(m, _)| m).collect();
    ctx.ks.notify(
        notify::ZSET,
        if max { "zpopmax" } else { "zpopmin" },
        r.db,
        key,
    );
    if removed(ctx.ks, r.db, key, members) {
        ctx.ks.notify(notify::GENERIC, "del", r.db, key);
    }
    Ok(())
}

/// ZPOPMIN key [count]
fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop_minmax(ctx, args, false)
}

/// ZPOPMAX key [count]
fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop_minmax(ctx, args, true)
}

fn zpop_minmax(ctx: &mut Ctx, args: &[Bytes], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::syntax());
    }
    let mut count = -1;
    if args.len() == 3 {
        count = arg_positive(&args[2], "ERR value is out of range, must be positive")?;
    }
    let st = PopStyle {
        emit_key: false,
        nested: ctx.out.resp3 && count != -1,
        nil_when_empty: false,
    };
    pop_generic(ctx, &args[1..2], max, count, st)
}

/// The parsed arguments of ZMPOP / BZMPOP from `numkeys` on.
pub(crate) struct MpopArgs {
    pub first_key: usize,
    pub numkeys: usize,
    pub max: bool,
    pub count: i64,
}

/// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` starting at
/// `numkeys_idx`, as Redis's `zmpopGenericCommand`.
pub(crate) fn parse_mpop(args: &[Bytes], numkeys_idx: usize) -> Result<MpopArgs, CmdError> {
    let numkeys = arg_at_least_one(&args[numkeys_idx], "ERR numkeys should be greater than 0")?;
    let where_idx = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1))
        .filter(|w| *w < args.len())
        .ok_or_else(CmdError::syntax)?;
    let max = if is_opt(&args[where_idx], "min") {
        false
    } else if is_opt(&args[where_idx], "max") {
        true
    } else {
        return Err(CmdError::syntax());
    };
    let mut count = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && is_opt(&args[j], "count") && more > 0 {
            j += 1;
            count = arg_at_least_one(&args[j], "ERR count should be greater than 0")?;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    Ok(MpopArgs {
        first_key: numkeys_idx + 1,
        numkeys: numkeys as usize,
        max,
        count: if count == -1 { 1 } else { count },
    })
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = parse_mpop(args, 1)?;
    let st = PopStyle {
        emit_key: true,
        nested: true,
        nil_when_empty: true,
    };
    pop_generic(
        ctx,
        &args[a.first_key..a.first_key + a.numkeys],
        a.max,
        a.count,
        st,
    )
}

// ---- blocking pops ----

/// Redis's `blockingGenericZpopCommand`: pops from the first non-empty
/// key among `keys` like the non-blocking form, or blocks on all of them.
fn blocking_zpop(
    ctx: &mut Ctx,
    args: &[Bytes],
    keys: &[Bytes],
    max: bool,
    deadline_ms: u64,
    count: i64,
    st: PopStyle,
) -> CmdResult {
    let r = rd(ctx);
    for (i, k) in keys.iter().enumerate() {
        if write_zset(ctx.ks, r, k)?.is_some() {
            return pop_generic(ctx, &keys[i..=i], max, count, st);
        }
    }
    if blocking::denied(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    blocking::block(ctx, args, keys.to_vec(), deadline_ms, "zset", Null::Array);
    Ok(())
}

/// BZPOPMIN key [key ...] timeout
fn bzpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bzpop_minmax(ctx, args, false)
}

/// BZPOPMAX key [key ...] timeout
fn bzpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bzpop_minmax(ctx, args, true)
}

fn bzpop_minmax(ctx: &mut Ctx, args: &[Bytes], max: bool) -> CmdResult {
    let last = args.len() - 1;
    let deadline = blocking::parse_timeout(&args[last], Unit::Seconds, ctx.now_ms)?;
    let st = PopStyle {
        emit_key: true,
        nested: false,
        nil_when_empty: false,
    };
    blocking_zpop(ctx, args, &args[1..last], max, deadline, -1, st)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
///
/// As Redis, the arguments after the timeout are checked first.
fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = parse_mpop(args, 2)?;
    let deadline = blocking::parse_timeout(&args[1], Unit::Seconds, ctx.now_ms)?;
    let st = PopStyle {
        emit_key: true,
        nested: true,
        nil_when_empty: true,
    };
    let keys = &args[a.first_key..a.first_key + a.numkeys];
    blocking_zpop(ctx, args, keys, a.max, deadline, a.count, st)
}

// ---- ZRANDMEMBER ----

/// Random index below `n` (n > 0).
fn random_index(n: usize) -> usize {
    (random_u64() % n as u64) as usize
}

/// ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = rd(ctx);
    if args.len() >= 3 {
        let l = arg_i64(&args[2])?;
        if l == i64::MIN {
            return Err(CmdError::new(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        let withscores = if args.len() > 4 || (args.len() == 4 && !is_opt(&args[3], "withscores")) {
            return Err(CmdError::syntax());
        } else {
            args.len() == 4
        };
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return Err(CmdError::new("ERR value is out of range"));
        }
        return zrandmember_count(ctx, r, &args[1], l, withscores);
    }
    let Some(z) = read_zset(ctx.ks, r, &args[1])? else {
        ctx.out.null();
        return Ok(());
    };
    let i = random_index(z.len());
    if let Some((m, _)) = z.at(i) {
        ctx.out.bulk(m);
    }
    Ok(())
}

fn zrandmember_count(ctx: &mut Ctx, r: Rd, key: &[u8], l: i64, withscores: bool) -> CmdResult {
    let Some(z) = read_zset(ctx.ks, r, key)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let out = &mut *ctx.out;
    let nested = out.resp3;
    if l == 0 {
        out.array(0);
        return Ok(());
    }
    let size = z.len();
    let count = l.unsigned_abs();
    if l < 0 || count == 1 {
        // Repetitions allowed: sample the whole set every time.
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        reply_len(out, count, withscores);
        for _ in 0..count {
            if let Some((m, s)) = z.at(random_index(size)) {
                reply_elem(out, m, s, withscores, nested);
            }
        }
        return Ok(());
    }
    if count >= size as u64 {
        // The whole set, from the highest rank down, as Redis walks it.
        reply_len(out, size, withscores);
        for (m, s) in z.iter_from(size - 1, true) {
            reply_elem(out, m, s, withscores, nested);
        }
        return Ok(());
    }
    // Distinct elements: a partial Fisher-Yates shuffle of the ranks.
    let count = count as usize;
    let mut ranks: Vec<usize> = (0..size).collect();
    for i in 0..count {
        let j = i + random_index(size - i);
        ranks.swap(i, j);
    }
    reply_len(out, count, withscores);
    for &rank in &ranks[..count] {
        if let Some((m, s)) = z.at(rank) {
            reply_elem(out, m, s, withscores, nested);
        }
    }
    Ok(())
}

// ---- ZSCAN ----

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
///
/// A listpack-encoded set is returned whole with cursor 0, as Redis does.
/// A skiplist set that fits in COUNT is returned whole from cursor 0, in
/// rank order; a larger one is walked from the cursor in the order of its
/// member index (`ZSet::scan`, the HSCAN/SSCAN scheme), COUNT elements a
/// call, so an element present for the whole scan is returned at least
/// once whatever happens to its score.
fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2]).ok_or_else(|| CmdError::new("ERR invalid cursor"))?;
    let r = rd(ctx);
    let Some(z) = read_zset(ctx.ks, r, &args[1])? else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let mut count: usize = 10;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if is_opt(&args[i], "count") && more {
            let n = arg_i64(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::syntax());
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is_opt(&args[i], "match") && more {
            pattern = Some(&args[i + 1]).filter(|p| p.as_ref() != b"*");
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let mut batch: Vec<(&[u8], f64)> = Vec::new();
    let skiplist = z.is_skiplist();
    let next = if cursor == 0 && z.len() <= count {
        // The whole set in one call (as Redis's scan of a small dict):
        // in rank order, as a listpack would give it.
        batch.extend(z.iter_from(0, false));
        0
    } else {
        z.scan(cursor, |m, s| {
            batch.push((m, s));
            batch.len() < count
        })
    };
    batch.retain(|(m, _)| pattern.is_none_or(|p| glob_match(p, m, false)));
    let out = &mut *ctx.out;
    out.array(2);
    let mut b = itoa::Buffer::new();
    out.bulk(b.format(next).as_bytes());
    out.array(batch.len() * 2);
    for (m, s) in batch {
        out.bulk(m);
        if skiplist {
            out.bulk(crate::protocol::format_double(s).as_bytes());
        } else {
            out.bulk(listpack_score_text(s).as_bytes());
        }
    }
    Ok(())
}

/// A score as a listpack holds it (Redis 7.0's `d2string`): an integral
/// value within ±LLONG_MAX/2 as an integer (so -0 is "0"), else `%.17g`.
/// ZSCAN of a listpack returns these texts.
fn listpack_score_text(s: f64) -> String {
    const HALF_LLONG_MAX: f64 = (i64::MAX / 2) as f64;
    if (-HALF_LLONG_MAX..=HALF_LLONG_MAX).contains(&s) && s == (s as i64) as f64 {
        (s as i64).to_string()
    } else {
        crate::protocol::format_double(s)
    }
}
