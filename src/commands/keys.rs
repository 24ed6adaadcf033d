//! Generic key commands (Redis's db.c, expire.c and object.c): deletion,
//! existence and type, iteration (KEYS, SCAN, RANDOMKEY), renaming, moving
//! and copying, TTLs, and OBJECT introspection.
//!
//! They work on any value type: only OBJECT ENCODING / REFCOUNT and COPY
//! look inside a value, through `Value`'s own methods.

use super::{arg_i64, c_str_lossy, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::db::lazyfree::Reason;
use crate::db::notify::{GENERIC, NEW};
use crate::db::{Value, DATABASES};
use crate::glob::glob_match;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("del", del),
    ("unlink", unlink),
    ("exists", exists),
    ("type", type_),
    ("keys", keys),
    ("scan", scan),
    ("randomkey", randomkey),
    ("rename", rename),
    ("renamenx", renamenx),
    ("copy", copy),
    ("move", move_),
    ("touch", touch),
    ("object|encoding", object_encoding),
    ("object|freq", object_freq),
    ("object|help", object_help),
    ("object|idletime", object_idletime),
    ("object|refcount", object_refcount),
    ("expire", expire),
    ("pexpire", pexpire),
    ("expireat", expireat),
    ("pexpireat", pexpireat),
    ("ttl", ttl),
    ("pttl", pttl),
    ("expiretime", expiretime),
    ("pexpiretime", pexpiretime),
    ("persist", persist),
];

/// SCAN's default COUNT, as Redis.
pub(crate) const SCAN_COUNT_DEFAULT: usize = 10;

/// `-ERR source and destination objects are the same` (Redis's `sameobjecterr`).
fn same_object() -> CmdError {
    CmdError::new("ERR source and destination objects are the same")
}

fn db_out_of_range() -> CmdError {
    CmdError::new("ERR DB index is out of range")
}

/// A database index argument: a 32-bit integer (`getIntFromObjectOrReply`)
/// naming an existing database.
fn arg_db(a: &[u8]) -> Result<usize, CmdError> {
    let n = arg_i64(a)?;
    let n = i32::try_from(n).map_err(|_| {
        CmdError::new("ERR value is out of range, value must between -2147483648 and 2147483647")
    })?;
    usize::try_from(n)
        .ok()
        .filter(|&d| d < DATABASES)
        .ok_or_else(db_out_of_range)
}

// ---- deletion, existence, type ----

/// DEL key [key ...]: large values go to the lazy-free thread under
/// `lazyfree-lazy-user-del`.
fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    del_generic(ctx, args, Reason::UserDel)
}

/// UNLINK key [key ...]: DEL whose large values are freed on the
/// lazy-free thread (`db::lazyfree`).
fn unlink(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    del_generic(ctx, args, Reason::Unlink)
}

fn del_generic(ctx: &mut Ctx, args: &[Bytes], reason: Reason) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        if ctx.ks.delete_as(db, k, ctx.now_ms, reason) {
            ctx.notify(GENERIC, "del", db, k);
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// EXISTS key [key ...]
///
/// A key named twice is counted twice, as Redis.
fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        if ctx.ks.lookup(db, k, ctx.now_ms, false).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// TOUCH key [key ...]
fn touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        if ctx.ks.lookup(db, k, ctx.now_ms, true).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// TYPE key
fn type_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    let name = ctx
        .ks
        .lookup(db, &args[1], ctx.now_ms, false)
        .map_or("none", |e| e.value.type_name());
    ctx.out.simple(name);
    Ok(())
}

// ---- iteration ----

/// KEYS pattern
///
/// Expired keys are skipped but not deleted here, as Redis.
fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let pat = &args[1];
    let all = pat.as_ref() == b"*";
    let mut found = Vec::new();
    ctx.ks.dbs[db].scan(0, |k, e| {
        let live = e.expires_at_ms == 0 || e.expires_at_ms > now;
        if live && (all || glob_match(pat, k, false)) {
            found.push(Bytes::copy_from_slice(k));
        }
        true
    });
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// A SCAN cursor as Redis's `parseScanCursorOrReply` reads it: C `strtoul`
/// in base 10 over the whole argument, so an optional sign (`-1` wraps to
/// 2^64-1), leading zeros, and the empty string (0) are accepted, leading
/// spaces and overflow are not.
pub(crate) fn parse_cursor(a: &[u8]) -> Option<u64> {
    let a = match a.iter().position(|&b| b == 0) {
        Some(p) => &a[..p],
        None => a,
    };
    if a.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match a[0] {
        b'-' => (true, &a[1..]),
        b'+' => (false, &a[1..]),
        _ => (false, a),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// The cursor is a position in the database's hash order (see `db`): every
/// key present from the first call to the last is returned at least once,
/// whatever is added or removed in between. COUNT keys are visited per
/// call (keys sharing a hash are never split), then MATCH, TYPE and expiry
/// filter them, so a call may return fewer, or none, before the end.
fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1]).ok_or_else(|| CmdError::new("ERR invalid cursor"))?;
    let mut count = SCAN_COUNT_DEFAULT;
    let mut pattern: Option<&Bytes> = None;
    let mut type_name: Option<&Bytes> = None;
    let mut i = 2;
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
        } else if is_opt(&args[i], "type") && more {
            type_name = Some(&args[i + 1]);
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let db = ctx.db();
    let mut batch: Vec<Bytes> = Vec::new();
    let next = ctx.ks.dbs[db].scan(cursor, |k, e| {
        let matches = pattern.is_none_or(|p| glob_match(p, k, false))
            && type_name.is_none_or(|t| is_opt(t, e.value.type_name()));
        if matches {
            batch.push(Bytes::copy_from_slice(k));
        }
        // Counts visited keys, as Redis counts visited buckets.
        count = count.saturating_sub(1);
        count > 0
    });
    batch.retain(|k| !ctx.ks.expire_if_needed(db, k, ctx.now_ms));
    ctx.out.array(2);
    let mut b = itoa::Buffer::new();
    ctx.out.bulk(b.format(next).as_bytes());
    ctx.out.array(batch.len());
    for k in &batch {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// A pseudo-random u64 for RANDOMKEY: a per-thread xorshift seeded from
/// the standard library's random hasher keys. Not for anything secret.
pub(crate) fn random_u64() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9e37_79b9_7f4a_7c15);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// RANDOMKEY
///
/// Takes the first key at or after a random hash. An expired key found
/// this way is deleted and another one drawn, so the loop ends: each turn
/// either replies or removes a key. A replica only hides expired keys, so
/// when every key has a TTL it gives up after 100 expired draws and
/// answers the last one (Redis's `dbRandomKey`).
fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let mut tries = 100;
    loop {
        let Some(key) = ctx.ks.dbs[db]
            .key_at_or_after(random_u64())
            .map(Bytes::copy_from_slice)
        else {
            ctx.out.null();
            return Ok(());
        };
        let d = &ctx.ks.dbs[db];
        if ctx.ks.expire.replica && d.len() == d.expires_len() {
            tries -= 1;
            if tries == 0 {
                ctx.out.bulk(&key);
                return Ok(());
            }
        }
        if !ctx.ks.expire_if_needed(db, &key, now) {
            ctx.out.bulk(&key);
            return Ok(());
        }
    }
}

// ---- renaming, moving, copying ----

/// RENAME key newkey
fn rename(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, false)
}

/// RENAMENX key newkey
fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// Redis's `renameGenericCommand`: the entry moves whole (value, TTL,
/// access time); an existing destination is overwritten unless NX.
fn rename_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let (src, dst) = (&args[1], &args[2]);
    if ctx.ks.lookup_write(db, src, now).is_none() {
        return Err(CmdError::no_such_key());
    }
    let reply_ok = |ctx: &mut Ctx, done: bool| {
        if nx {
            ctx.out.int(i64::from(done));
        } else {
            ctx.out.ok();
        }
    };
    if src == dst {
        reply_ok(ctx, false);
        return Ok(());
    }
    if ctx.ks.lookup_write(db, dst, now).is_some() && nx {
        reply_ok(ctx, false);
        return Ok(());
    }
    if let Some(entry) = ctx.ks.dbs[db].remove(src) {
        ctx.ks.dbs[db].insert(dst.clone(), entry);
        ctx.ks.stats.dirty += 1;
        ctx.notify(NEW, "new", db, dst);
        ctx.notify(GENERIC, "rename_from", db, src);
        ctx.notify(GENERIC, "rename_to", db, dst);
    }
    reply_ok(ctx, true);
    Ok(())
}

/// MOVE key db
fn move_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.shared.cluster.is_some() {
        return Err(CmdError::new("ERR MOVE is not allowed in cluster mode"));
    }
    let (src_db, now, key) = (ctx.db(), ctx.now_ms, &args[1]);
    let dst_db = arg_db(&args[2])?;
    if dst_db == src_db {
        return Err(same_object());
    }
    if ctx.ks.lookup_write(src_db, key, now).is_none()
        || ctx.ks.lookup_write(dst_db, key, now).is_some()
    {
        ctx.out.int(0);
        return Ok(());
    }
    if let Some(entry) = ctx.ks.dbs[src_db].remove(key) {
        ctx.ks.dbs[dst_db].insert(key.clone(), entry);
        ctx.ks.stats.dirty += 1;
        ctx.notify(NEW, "new", dst_db, key);
        ctx.notify(GENERIC, "move_from", src_db, key);
        ctx.notify(GENERIC, "move_to", dst_db, key);
    }
    ctx.out.int(1);
    Ok(())
}

/// The copy COPY stores: same type and encoding, a private object.
fn duplicate(v: &Value) -> Value {
    match v {
        Value::Str(s) => Value::Str(s.duplicate()),
        other => other.clone(),
    }
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src_db, now) = (ctx.db(), ctx.now_ms);
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if is_opt(&args[j], "replace") {
            replace = true;
        } else if is_opt(&args[j], "db") && j + 1 < args.len() {
            dst_db = arg_db(&args[j + 1])?;
            j += 1;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    if ctx.shared.cluster.is_some() && (src_db != 0 || dst_db != 0) {
        return Err(CmdError::new(
            "ERR Copying to another database is not allowed in cluster mode",
        ));
    }
    let (src, dst) = (&args[1], &args[2]);
    if src_db == dst_db && src == dst {
        return Err(same_object());
    }
    let touch = !ctx.client.no_touch;
    let Some(e) = ctx.ks.lookup(src_db, src, now, touch) else {
        ctx.out.int(0);
        return Ok(());
    };
    let (value, expires_at_ms) = (e.value.clone(), e.expires_at_ms);
    if ctx.ks.lookup_write(dst_db, dst, now).is_some() {
        if !replace {
            ctx.out.int(0);
            return Ok(());
        }
        ctx.ks.dbs[dst_db].remove(dst);
    }
    // A stream's copy is a new stream (new id, files copied by storage).
    let value = match &value {
        Value::Stream(s) => Value::Stream(
            ctx.shared
                .streams
                .copy(s)
                .map_err(|e| CmdError::new(format!("ERR {e}")))?,
        ),
        v => duplicate(v),
    };
    let entry = ctx.ks.entry(value, expires_at_ms);
    ctx.ks.dbs[dst_db].insert(dst.clone(), entry);
    ctx.ks.stats.dirty += 1;
    ctx.notify(NEW, "new", dst_db, dst);
    ctx.notify(GENERIC, "copy_to", dst_db, dst);
    ctx.out.int(1);
    Ok(())
}

// ---- OBJECT ----

/// The key of an OBJECT subcommand, looked up without touching it.
fn object_lookup<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a mut crate::db::Entry> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    ctx.ks.lookup_nonotify(db, key, now, false)
}

/// True when `maxmemory-policy` is an LFU policy.
fn lfu_policy(ctx: &Ctx) -> bool {
    ctx.ks.evict.cfg.policy.is_lfu()
}

/// OBJECT ENCODING key
fn object_encoding(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let enc = object_lookup(ctx, &args[2]).map(|e| e.value.encoding());
    match enc {
        None => ctx.out.null(),
        Some(enc) => ctx.out.bulk(enc.as_bytes()),
    }
    Ok(())
}

/// OBJECT REFCOUNT key
fn object_refcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = object_lookup(ctx, &args[2]).map(|e| match &e.value {
        Value::Str(s) => s.refcount(),
        _ => 1,
    });
    match n {
        None => ctx.out.null(),
        Some(n) => ctx.out.int(n),
    }
    Ok(())
}

/// OBJECT IDLETIME key
fn object_idletime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(lru) = object_lookup(ctx, &args[2]).map(|e| e.lru) else {
        ctx.out.null();
        return Ok(());
    };
    if lfu_policy(ctx) {
        return Err(CmdError::new("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    let idle = crate::db::evict::idle_ms(lru, ctx.ks.clock_s()) / 1000;
    ctx.out.int(idle as i64);
    Ok(())
}

/// OBJECT FREQ key: the key's LFU counter after decay (Redis's
/// `LFUDecrAndReturn`), not counting this lookup.
fn object_freq(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(lru) = object_lookup(ctx, &args[2]).map(|e| e.lru) else {
        ctx.out.null();
        return Ok(());
    };
    if !lfu_policy(ctx) {
        return Err(CmdError::new("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    let now_min = crate::db::evict::lfu_minutes(ctx.ks.cached_now_ms());
    let decay = ctx.ks.evict.cfg.lfu_decay_time;
    let freq = crate::db::evict::lfu_decr_and_return(lru, now_min, decay);
    ctx.out.int(i64::from(freq));
    Ok(())
}

/// OBJECT HELP
fn object_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
    Ok(())
}

// ---- TTLs ----

/// EXPIRE key seconds [NX | XX | GT | LT]
fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, true, "expire")
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, false, "pexpire")
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, true, "expireat")
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, false, "pexpireat")
}

/// Redis's `expireGenericCommand`. Options are checked first, then the
/// time (overflow of the unit conversion or of `base_ms +` is an error;
/// negative times are allowed), then the key. A time not in the future
/// deletes the key and replies 1.
fn expire_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    base_ms: i64,
    seconds: bool,
    cmd: &str,
) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if is_opt(a, "nx") {
            nx = true;
        } else if is_opt(a, "xx") {
            xx = true;
        } else if is_opt(a, "gt") {
            gt = true;
        } else if is_opt(a, "lt") {
            lt = true;
        } else {
            return Err(CmdError::new(format!(
                "ERR Unsupported option {}",
                c_str_lossy(a)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::new(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::new(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let invalid = || CmdError::new(format!("ERR invalid expire time in '{cmd}' command"));
    let mut when = arg_i64(&args[2])?;
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    if when > i64::MAX - base_ms {
        return Err(invalid());
    }
    when += base_ms;
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let Some(e) = ctx.ks.lookup_write(db, key, now) else {
        ctx.out.int(0);
        return Ok(());
    };
    // -1 stands for "no expiry", an infinite TTL.
    let current: i64 = if e.expires_at_ms == 0 {
        -1
    } else {
        e.expires_at_ms as i64
    };
    let refused = (nx && current != -1)
        || (xx && current == -1)
        || (gt && (current == -1 || when <= current))
        || (lt && current != -1 && when >= current);
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    if when <= now as i64 && !ctx.ks.expire.replica {
        ctx.ks.delete(db, key, now);
        ctx.notify(GENERIC, "del", db, key);
        ctx.out.int(1);
    } else {
        // A replica keeps a past expiry (0 would mean none).
        ctx.ks.dbs[db].set_expiry(key, when.max(1) as u64);
        ctx.ks.stats.dirty += 1;
        // Redis replies before this event.
        ctx.out.int(1);
        ctx.notify(GENERIC, "expire", db, key);
    }
    Ok(())
}

/// What the TTL family replies.
#[derive(Clone, Copy)]
enum TtlKind {
    /// Remaining time (TTL, PTTL).
    Remaining,
    /// Absolute Unix time (EXPIRETIME, PEXPIRETIME).
    Absolute,
}

/// Redis's `ttlGenericCommand`: -2 for a missing key, -1 without expiry;
/// seconds are rounded to the nearest (`(ms + 500) / 1000`).
fn ttl_generic(ctx: &mut Ctx, key: &[u8], kind: TtlKind, millis: bool) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let reply = match ctx.ks.lookup(db, key, now, false) {
        None => -2,
        Some(e) if e.expires_at_ms == 0 => -1,
        Some(e) => {
            let ms = match kind {
                TtlKind::Remaining => e.expires_at_ms.saturating_sub(now),
                TtlKind::Absolute => e.expires_at_ms,
            } as i64;
            if millis {
                ms
            } else {
                ms.saturating_add(500) / 1000
            }
        }
    };
    ctx.out.int(reply);
    Ok(())
}

/// TTL key
fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], TtlKind::Remaining, false)
}

/// PTTL key
fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], TtlKind::Remaining, true)
}

/// EXPIRETIME key
fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], TtlKind::Absolute, false)
}

/// PEXPIRETIME key
fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], TtlKind::Absolute, true)
}

/// PERSIST key
fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let had_ttl = ctx
        .ks
        .lookup_write(db, key, now)
        .is_some_and(|e| e.expires_at_ms != 0);
    if had_ttl {
        ctx.ks.dbs[db].set_expiry(key, 0);
        ctx.ks.stats.dirty += 1;
        ctx.notify(GENERIC, "persist", db, key);
    }
    ctx.out.int(i64::from(had_ttl));
    Ok(())
}
