//! Set commands (Redis 7.0's t_set.c): membership, random picks and pops,
//! SMOVE, the algebra (SINTER, SUNION, SDIFF and their STORE forms,
//! SINTERCARD) and SSCAN.
//!
//! Every handler follows its Redis 7.0 counterpart step by step, because the
//! order of the checks decides which error a client sees. The data
//! structure (intset and table forms) is `db::set`.
//!
//! Durability: a change to an existing set is logged as an operation effect
//! (`SetAdd`, `SetRem`): SPOP is logged as the removal of the members it
//! popped, never as SPOP. A set the command created, and the destination
//! of a *STORE command, are logged by their final state; a set left empty
//! is deleted, which logs a Del.

use super::args::{arg_count, empty_scan, invalid_cursor, parse_scan_opts};
use super::hashes::distinct_sample;
use super::keys::{parse_cursor, random_u64};
use super::{
    arg_i64, is_opt, read_typed, reader, write_typed, CmdError, CmdResult, Ctx, Handler, Reader,
};
use crate::db::effect::Effect;
use crate::db::hash::own;
use crate::db::set::{Member, Set};
use crate::db::{notify, Keyspace, Value};
use crate::glob::glob_match;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("sadd", sadd),
    ("srem", srem),
    ("smembers", sinter),
    ("sismember", sismember),
    ("smismember", smismember),
    ("scard", scard),
    ("spop", spop),
    ("srandmember", srandmember),
    ("smove", smove),
    ("sinter", sinter),
    ("sinterstore", sinterstore),
    ("sintercard", sintercard),
    ("sunion", sunion),
    ("sunionstore", sunionstore),
    ("sdiff", sdiff),
    ("sdiffstore", sdiffstore),
    ("sscan", sscan),
];

// ---- lookups ----

fn as_set(v: &mut Value) -> Result<&mut Set, CmdError> {
    match v {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::wrong_type()),
    }
}

/// `lookupKeyRead` + `checkType`.
fn read_set<'a>(
    ks: &'a mut Keyspace,
    r: Reader,
    key: &[u8],
) -> Result<Option<&'a mut Set>, CmdError> {
    read_typed(ks, r, key, as_set)
}

/// `lookupKeyWrite` + `checkType`.
fn write_set<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a mut Set>, CmdError> {
    write_typed(ks, db, key, now_ms, as_set)
}

/// The set under `key`, which the caller just looked up or created.
fn set_at<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> &'a mut Set {
    match ks.dbs[db].peek_mut(key).map(|e| &mut e.value) {
        Some(Value::Set(s)) => s,
        _ => unreachable!("set_at: key checked to hold a set"),
    }
}

fn max_intset(ctx: &Ctx) -> usize {
    ctx.shared.config.read().set_max_intset_entries
}

/// Creates an empty set for its first member (`setTypeCreate` + `dbAdd`,
/// with its "new" event).
fn create(ctx: &mut Ctx, key: &[u8], first: &[u8]) {
    let db = ctx.db();
    let e = ctx.ks.entry(Value::Set(Set::for_first(first)), 0);
    ctx.ks.dbs[db].insert(own(key), e);
    ctx.ks.notify(notify::NEW, "new", db, key);
}

/// Records a change of `key`: WATCH signal, `dirty`, the event.
fn changed(ctx: &mut Ctx, key: &[u8], event: &'static str, dirty: u64) {
    let db = ctx.db();
    ctx.ks.dbs[db].signal_modified(key);
    ctx.ks.stats.dirty += dirty;
    ctx.ks.notify(notify::SET, event, db, key);
}

/// After members were removed from `key`: deletes it when empty (a "del"
/// event; the Del effect follows automatically), else logs the removal.
fn after_removal(ctx: &mut Ctx, key: &Bytes, removed: Vec<Bytes>) {
    let db = ctx.db();
    if set_at(ctx.ks, db, key).is_empty() {
        ctx.ks.dbs[db].remove(key);
        ctx.ks.notify(notify::GENERIC, "del", db, key);
    } else {
        let op = Effect::SetRem {
            db: db as u8,
            key: key.clone(),
            members: removed,
        };
        ctx.ks.log_op(db, key, op);
    }
}

// ---- single-set writes ----

/// SADD key member [member ...]
fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let max = max_intset(ctx);
    let existed = write_set(ctx.ks, db, key, now)?.is_some();
    if !existed {
        create(ctx, key, &args[2]);
    }
    let s = set_at(ctx.ks, db, key);
    let mut added = Vec::new();
    for m in &args[2..] {
        if s.add(m, max) {
            added.push(m.clone());
        }
    }
    let table = s.is_table();
    ctx.out.int(added.len() as i64);
    if added.is_empty() {
        return Ok(());
    }
    changed(ctx, key, "sadd", added.len() as u64);
    if existed {
        let op = Effect::SetAdd {
            db: db as u8,
            key: key.clone(),
            table,
            members: added,
        };
        ctx.ks.log_op(db, key, op);
    }
    Ok(())
}

/// SREM key member [member ...]
fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let Some(s) = write_set(ctx.ks, db, key, now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut removed = Vec::new();
    for m in &args[2..] {
        if s.remove(m) {
            removed.push(m.clone());
            if s.is_empty() {
                break;
            }
        }
    }
    ctx.out.int(removed.len() as i64);
    if removed.is_empty() {
        return Ok(());
    }
    changed(ctx, key, "srem", removed.len() as u64);
    after_removal(ctx, key, removed);
    Ok(())
}

/// SMOVE source destination member
fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let (src, dst, m) = (&args[1], &args[2], &args[3]);
    let src_type = ctx
        .ks
        .lookup_write(db, src, now)
        .map(|e| e.value.type_name());
    let dst_type = ctx
        .ks
        .lookup_write(db, dst, now)
        .map(|e| e.value.type_name());
    let Some(src_type) = src_type else {
        ctx.out.int(0);
        return Ok(());
    };
    if src_type != "set" || dst_type.is_some_and(|t| t != "set") {
        return Err(CmdError::wrong_type());
    }
    if src == dst {
        let found = set_at(ctx.ks, db, src).contains(m);
        ctx.out.int(i64::from(found));
        return Ok(());
    }
    if !set_at(ctx.ks, db, src).remove(m) {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.ks.notify(notify::SET, "srem", db, src);
    ctx.ks.dbs[db].signal_modified(src);
    ctx.ks.stats.dirty += 1;
    after_removal(ctx, src, vec![m.clone()]);
    let existed = dst_type.is_some();
    if !existed {
        create(ctx, dst, m);
    }
    let max = max_intset(ctx);
    let d = set_at(ctx.ks, db, dst);
    if d.add(m, max) {
        let table = d.is_table();
        changed(ctx, dst, "sadd", 1);
        if existed {
            let op = Effect::SetAdd {
                db: db as u8,
                key: dst.clone(),
                table,
                members: vec![m.clone()],
            };
            ctx.ks.log_op(db, dst, op);
        }
    }
    ctx.out.int(1);
    Ok(())
}

/// SPOP key [count]
fn spop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {}
        3 => return spop_count(ctx, args),
        _ => return Err(CmdError::syntax()),
    }
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let Some(s) = write_set(ctx.ks, db, key, now)? else {
        ctx.out.null();
        return Ok(());
    };
    let Some(m) = s.random_member(random_u64()).map(Member::to_bytes) else {
        ctx.out.null();
        return Ok(());
    };
    s.remove(&m);
    ctx.ks.notify(notify::SET, "spop", db, key);
    ctx.out.bulk(&m);
    ctx.ks.dbs[db].signal_modified(key);
    ctx.ks.stats.dirty += 1;
    after_removal(ctx, key, vec![m]);
    Ok(())
}

/// Redis's `spopWithCountCommand`: the reply is a set; popping at least
/// the whole set replies it as SUNION would and deletes the key.
fn spop_count(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let l = arg_i64(&args[2])
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| CmdError::new("ERR value is out of range, must be positive"))?;
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let max = max_intset(ctx);
    let Some(s) = write_set(ctx.ks, db, key, now)? else {
        ctx.out.set(0);
        return Ok(());
    };
    if l == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let size = s.len();
    if l as u64 >= size as u64 {
        let whole = union_of(&[Some(&*s)], max);
        ctx.ks.notify(notify::SET, "spop", db, key);
        reply_set(ctx, &whole);
        ctx.ks.dbs[db].remove(key);
        ctx.ks.notify(notify::GENERIC, "del", db, key);
        ctx.ks.stats.dirty += 1;
        return Ok(());
    }
    let popped = sample(s, l as usize);
    for m in &popped {
        s.remove(m);
    }
    ctx.ks.notify(notify::SET, "spop", db, key);
    ctx.out.set(popped.len());
    for m in &popped {
        ctx.out.bulk(m);
    }
    ctx.ks.dbs[db].signal_modified(key);
    ctx.ks.stats.dirty += popped.len() as u64;
    after_removal(ctx, key, popped);
    Ok(())
}

// ---- single-set reads ----

/// SISMEMBER key member
fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let found = read_set(ctx.ks, r, &args[1])?.is_some_and(|s| s.contains(&args[2]));
    ctx.out.int(i64::from(found));
    Ok(())
}

/// SMISMEMBER key member [member ...]
fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let s = read_set(ctx.ks, r, &args[1])?;
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        let found = s.as_ref().is_some_and(|s| s.contains(m));
        ctx.out.int(i64::from(found));
    }
    Ok(())
}

/// SCARD key
fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let n = read_set(ctx.ks, r, &args[1])?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// SRANDMEMBER key [count]
///
/// With a count the reply is an array: a negative count may repeat
/// members, a positive one gives distinct members, the whole set in its
/// own order when it asks for at least all of them.
fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {}
        3 => return srandmember_count(ctx, args),
        _ => return Err(CmdError::syntax()),
    }
    let r = reader(ctx);
    let Some(s) = read_set(ctx.ks, r, &args[1])? else {
        ctx.out.null();
        return Ok(());
    };
    match s.random_member(random_u64()) {
        Some(m) => m.with_bytes(|b| ctx.out.bulk(b)),
        None => ctx.out.null(),
    }
    Ok(())
}

fn srandmember_count(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let l = arg_count(&args[2])?;
    let r = reader(ctx);
    let Some(s) = read_set(ctx.ks, r, &args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let out = &mut *ctx.out;
    let count = l.unsigned_abs();
    if count == 0 {
        out.array(0);
        return Ok(());
    }
    if l < 0 {
        // Redis replies as it samples; a huge count is the client's choice.
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        out.array(n);
        for _ in 0..n {
            if let Some(m) = s.random_member(random_u64()) {
                m.with_bytes(|b| out.bulk(b));
            }
        }
        return Ok(());
    }
    let size = s.len();
    if count >= size as u64 {
        out.array(size);
        for m in s.iter() {
            m.with_bytes(|b| out.bulk(b));
        }
        return Ok(());
    }
    let picks = sample(s, count as usize);
    out.array(picks.len());
    for m in &picks {
        out.bulk(m);
    }
    Ok(())
}

/// `count` (less than the set's size) distinct random members, in random
/// order: from a copy of the whole set when the sample is a large part of
/// it (Redis's CASE 3), by repeated random picks otherwise (CASE 4), so a
/// small sample of a large set costs O(count).
fn sample(s: &Set, count: usize) -> Vec<Bytes> {
    let size = s.len();
    if count.saturating_mul(3) > size {
        let all: Vec<Member> = s.iter().collect();
        return distinct_sample(size, count)
            .into_iter()
            .map(|i| all[i].to_bytes())
            .collect();
    }
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if let Some(m) = s.random_member(random_u64()).map(Member::to_bytes) {
            if seen.insert(m.clone()) {
                out.push(m);
            }
        }
    }
    out
}

/// A set as a reply: `~` in RESP3, an array in RESP2, in its own order.
fn reply_set(ctx: &mut Ctx, s: &Set) {
    ctx.out.set(s.len());
    for m in s.iter() {
        m.with_bytes(|b| ctx.out.bulk(b));
    }
}

// ---- algebra ----

/// Looks up the source keys as Redis's set algebra does (`lookupKeyWrite`
/// for the STORE forms, `lookupKeyRead` otherwise), failing on the first
/// key of another type. Returns which keys hold a set.
fn lookup_sources(ctx: &mut Ctx, keys: &[Bytes], store: bool) -> Result<Vec<bool>, CmdError> {
    let r = reader(ctx);
    let mut present = Vec::with_capacity(keys.len());
    for k in keys {
        let s = if store {
            write_set(ctx.ks, r.db, k, r.now_ms)?
        } else {
            read_set(ctx.ks, r, k)?
        };
        present.push(s.is_some());
    }
    Ok(present)
}

/// The sets under `keys` (None for a missing key), after `lookup_sources`.
fn sources<'a>(ks: &'a Keyspace, db: usize, keys: &[Bytes]) -> Vec<Option<&'a Set>> {
    keys.iter()
        .map(|k| match ks.dbs[db].peek(k).map(|e| &e.value) {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// The union, built as Redis builds it: an intset first, members added
/// set by set (so the result's encoding and order are Redis's).
fn union_of(sets: &[Option<&Set>], max_intset: usize) -> Set {
    let mut out = Set::new_intset();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            m.with_bytes(|b| out.add(b, max_intset));
        }
    }
    out
}

/// Redis's `sdiff` with its choice of algorithm, which decides the
/// result's encoding: algorithm 1 adds the members of the first set found
/// in no other; algorithm 2 adds the whole first set and removes the
/// others' members (an intset grown past its limit stays a table).
fn diff_of(keys: &[Bytes], sets: &[Option<&Set>], max_intset: usize) -> Set {
    let mut out = Set::new_intset();
    let Some(first) = sets[0] else {
        return out;
    };
    let same = (1..keys.len()).any(|j| sets[j].is_some() && keys[j] == keys[0]);
    if same {
        return out;
    }
    let (mut one, mut two) = (0u64, 0u64);
    for s in sets.iter().flatten() {
        one += first.len() as u64;
        two += s.len() as u64;
    }
    if one / 2 <= two {
        let mut others: Vec<&Set> = sets[1..].iter().flatten().copied().collect();
        others.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for m in first.iter() {
            m.with_bytes(|b| {
                if !others.iter().any(|o| o.contains(b)) {
                    out.add(b, max_intset);
                }
            });
        }
    } else {
        for m in first.iter() {
            m.with_bytes(|b| out.add(b, max_intset));
        }
        for s in sets[1..].iter().flatten() {
            for m in s.iter() {
                m.with_bytes(|b| out.remove(b));
            }
            if out.is_empty() {
                break;
            }
        }
    }
    out
}

/// Stores an algebra result in `dst` (Redis's `setKey`, dropping any TTL)
/// with `event`, or deletes `dst` when the result is empty; replies the
/// cardinality.
fn store(ctx: &mut Ctx, dst: &Bytes, result: Set, event: &'static str) {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let n = result.len();
    if n > 0 {
        let existed = ctx.ks.lookup_write(db, dst, now).is_some();
        ctx.ks.set(db, own(dst), Value::Set(result), 0);
        if !existed {
            ctx.ks.notify(notify::NEW, "new", db, dst);
        }
        ctx.out.int(n as i64);
        ctx.ks.notify(notify::SET, event, db, dst);
    } else {
        ctx.out.int(0);
        if ctx.ks.delete(db, dst, now) {
            ctx.ks.notify(notify::GENERIC, "del", db, dst);
        }
    }
}

/// SMEMBERS key / SINTER key [key ...]
fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &args[1..], None, None)
}

/// SINTERSTORE destination key [key ...]
fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &args[2..], Some(&args[1]), None)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let numkeys = arg_i64(&args[1])
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| CmdError::new("ERR numkeys should be greater than 0"))?;
    if numkeys > args.len() as i64 - 2 {
        return Err(CmdError::new(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let numkeys = numkeys as usize;
    let mut limit = 0u64;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if is_opt(&args[j], "limit") && j + 1 < args.len() {
            j += 1;
            limit = arg_i64(&args[j])
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| CmdError::new("ERR LIMIT can't be negative"))?
                as u64;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    sinter_generic(ctx, &args[2..2 + numkeys], None, Some(limit))
}

/// Redis's `sinterGenericCommand`: any missing key makes the result empty;
/// otherwise the smallest set is walked (so the reply is in its order) and
/// each member checked in the others. `card`: SINTERCARD with its limit
/// (0 = none).
fn sinter_generic(
    ctx: &mut Ctx,
    keys: &[Bytes],
    dst: Option<&Bytes>,
    card: Option<u64>,
) -> CmdResult {
    let db = ctx.db();
    let present = lookup_sources(ctx, keys, dst.is_some())?;
    let max = max_intset(ctx);
    if present.iter().any(|p| !p) {
        match (dst, card) {
            (Some(dst), _) => {
                ctx.out.int(0);
                if ctx.ks.delete(db, dst, ctx.now_ms) {
                    ctx.ks.notify(notify::GENERIC, "del", db, dst);
                }
            }
            (None, Some(_)) => ctx.out.int(0),
            (None, None) => ctx.out.set(0),
        }
        return Ok(());
    }
    let mut sets: Vec<&Set> = sources(ctx.ks, db, keys).into_iter().flatten().collect();
    sets.sort_by_key(|s| s.len());
    let Some((first, rest)) = sets.split_first() else {
        ctx.out.set(0);
        return Ok(());
    };
    let in_all = |b: &[u8]| rest.iter().all(|s| s.contains(b));
    if let Some(limit) = card {
        let mut n = 0u64;
        for m in first.iter() {
            if m.with_bytes(in_all) {
                n += 1;
                if limit != 0 && n >= limit {
                    break;
                }
            }
        }
        ctx.out.int(n as i64);
        return Ok(());
    }
    let mut members: Vec<Member> = Vec::new();
    for m in first.iter() {
        if m.with_bytes(in_all) {
            members.push(m);
        }
    }
    match dst {
        None => {
            ctx.out.set(members.len());
            for m in members {
                m.with_bytes(|b| ctx.out.bulk(b));
            }
        }
        Some(dst) => {
            let mut result = Set::new_intset();
            for m in members {
                m.with_bytes(|b| result.add(b, max));
            }
            store(ctx, dst, result, "sinterstore");
        }
    }
    Ok(())
}

/// SUNION key [key ...]
fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[1..], None, false)
}

/// SUNIONSTORE destination key [key ...]
fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[2..], Some(&args[1]), false)
}

/// SDIFF key [key ...]
fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[1..], None, true)
}

/// SDIFFSTORE destination key [key ...]
fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[2..], Some(&args[1]), true)
}

/// Redis's `sunionDiffGenericCommand`: the result is built as a new set
/// and replied in its order (ascending while it is an intset).
fn sunion_diff(ctx: &mut Ctx, keys: &[Bytes], dst: Option<&Bytes>, diff: bool) -> CmdResult {
    let db = ctx.db();
    lookup_sources(ctx, keys, dst.is_some())?;
    let max = max_intset(ctx);
    let sets = sources(ctx.ks, db, keys);
    let result = if diff {
        diff_of(keys, &sets, max)
    } else {
        union_of(&sets, max)
    };
    match dst {
        None => reply_set(ctx, &result),
        Some(dst) => store(
            ctx,
            dst,
            result,
            if diff { "sdiffstore" } else { "sunionstore" },
        ),
    }
    Ok(())
}

// ---- SSCAN ----

/// SSCAN key cursor [MATCH pattern] [COUNT count]
///
/// An intset is returned whole with cursor 0 (COUNT ignored), as Redis
/// does; a table set is walked from the cursor in hash order, so a member
/// present for the whole scan is returned at least once.
fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2]).ok_or_else(invalid_cursor)?;
    let r = reader(ctx);
    let Some(s) = read_set(ctx.ks, r, &args[1])? else {
        empty_scan(ctx);
        return Ok(());
    };
    let o = parse_scan_opts(args, 3)?;
    let mut left = o.count;
    let mut batch: Vec<Bytes> = Vec::new();
    let next = s.scan(cursor, |m| {
        m.with_bytes(|b| {
            if o.pattern.is_none_or(|p| glob_match(p, b, false)) {
                batch.push(Bytes::copy_from_slice(b));
            }
        });
        left = left.saturating_sub(1);
        left > 0
    });
    ctx.out.array(2);
    let mut b = itoa::Buffer::new();
    ctx.out.bulk(b.format(next).as_bytes());
    ctx.out.array(batch.len());
    for m in &batch {
        ctx.out.bulk(m);
    }
    Ok(())
}
