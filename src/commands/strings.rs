//! String commands (Redis's t_string.c): SET and its variants, GET and its
//! variants, ranges, counters, INCRBYFLOAT and LCS.
//!
//! Every handler follows its Redis 7.0 counterpart step by step, because the
//! order of the checks decides which error a client sees: argument syntax,
//! then integer arguments, then the key lookup, then the type check.

pub(crate) mod ldouble;

use super::{
    arg_i64, is_opt, read_typed, reader, write_typed, CmdError, CmdResult, Ctx, Handler, Reader,
};
use crate::db::effect::Effect;
use crate::db::notify::{GENERIC, NEW, STRING};
use crate::db::{Keyspace, StrForm, StrValue, Value};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("get", get),
    ("set", set),
    ("getset", getset),
    ("getdel", getdel),
    ("getex", getex),
    ("setnx", setnx),
    ("setex", setex),
    ("psetex", psetex),
    ("mset", mset),
    ("msetnx", msetnx),
    ("mget", mget),
    ("append", append),
    ("strlen", strlen),
    ("getrange", getrange),
    ("setrange", setrange),
    ("substr", getrange),
    ("incr", incr),
    ("decr", decr),
    ("incrby", incrby),
    ("decrby", decrby),
    ("incrbyfloat", incrbyfloat),
    ("lcs", lcs),
];

// ---- lookups ----

/// The string value of an entry, or WRONGTYPE.
fn as_str(v: &mut Value) -> Result<&mut StrValue, CmdError> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(CmdError::wrong_type()),
    }
}

/// The string value of an entry, if it is one.
fn str_ref(v: &Value) -> Option<&StrValue> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// `lookupKeyRead` + `checkType`: counts a hit or miss, refreshes the
/// access time (unless the client asked for no-touch).
fn read_str<'a>(
    ks: &'a mut Keyspace,
    r: Reader,
    key: &[u8],
) -> Result<Option<&'a mut StrValue>, CmdError> {
    read_typed(ks, r, key, as_str)
}

/// `lookupKeyWrite` + `checkType`: lazily expires, no hit/miss counting.
fn write_str<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a mut StrValue>, CmdError> {
    write_typed(ks, db, key, now_ms, as_str)
}

/// Records an in-place change of `key`'s value: WATCH signal and a write.
fn modified(ks: &mut Keyspace, db: usize, key: &[u8]) {
    ks.dbs[db].signal_modified(key);
    ks.stats.dirty += 1;
}

/// `-ERR invalid expire time in '<cmd>' command`.
fn invalid_expire(cmd: &str) -> CmdError {
    CmdError::new(format!("ERR invalid expire time in '{cmd}' command"))
}

/// The longest string APPEND and SETRANGE may build: `proto-max-bulk-len`,
/// as Redis's `checkStringLength`.
fn check_string_length(ctx: &Ctx, size: i64, append: i64) -> CmdResult {
    let max = ctx.shared.config.read().proto_max_bulk_len;
    match size.checked_add(append) {
        Some(total) if total <= max => Ok(()),
        _ => Err(CmdError::new(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

// ---- SET and friends ----

/// SET / GETEX options, as Redis's `parseExtendedStringArgumentsOrReply`.
#[derive(Default, Debug)]
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expire argument and its kind.
    expire: Option<(Bytes, Expire)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expire {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl Expire {
    fn seconds(self) -> bool {
        matches!(self, Expire::Ex | Expire::ExAt)
    }
    fn relative(self) -> bool {
        matches!(self, Expire::Ex | Expire::Px)
    }
}

/// Parses SET options (`for_set`) or GETEX options from `args[start..]`.
/// An option may repeat; conflicting ones, or one not valid for the
/// command, are a syntax error, exactly where Redis reports one.
fn parse_set_opts(args: &[Bytes], start: usize, for_set: bool) -> Result<SetOpts, CmdError> {
    let mut o = SetOpts::default();
    let mut j = start;
    while j < args.len() {
        let a = &args[j];
        let next = args.get(j + 1);
        let kind = o.expire.as_ref().map(|(_, k)| *k);
        let other_expire = |k: Expire| kind.is_some_and(|x| x != k);
        if for_set && is_opt(a, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && is_opt(a, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && is_opt(a, "get") {
            o.get = true;
        } else if for_set && is_opt(a, "keepttl") && !o.persist && kind.is_none() {
            o.keepttl = true;
        } else if !for_set && is_opt(a, "persist") && kind.is_none() && !o.keepttl {
            o.persist = true;
        } else if let Some(k) = [
            ("ex", Expire::Ex),
            ("px", Expire::Px),
            ("exat", Expire::ExAt),
            ("pxat", Expire::PxAt),
        ]
        .iter()
        .find(|(kw, _)| is_opt(a, kw))
        .map(|(_, k)| *k)
        .filter(|&k| !o.keepttl && !o.persist && !other_expire(k))
        .filter(|_| next.is_some())
        {
            o.expire = next.map(|n| (n.clone(), k));
            j += 1;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in Unix ms.
/// Zero, negative and overflowing times are errors.
fn expire_at_ms(arg: &[u8], kind: Expire, now_ms: u64, cmd: &str) -> Result<u64, CmdError> {
    let mut ms = arg_i64(arg)?;
    if ms <= 0 || (kind.seconds() && ms > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    if kind.seconds() {
        ms *= 1000;
    }
    if kind.relative() {
        ms = ms
            .checked_add(now_ms as i64)
            .ok_or_else(|| invalid_expire(cmd))?;
    }
    Ok(ms as u64)
}

/// What a successful SET-family command replies.
#[derive(Clone, Copy)]
enum SetReply {
    /// `+OK`, or a null when NX/XX prevented the write (SET, SETEX).
    Ok,
    /// `:1` / `:0` (SETNX).
    Int,
}

/// Redis's `setGenericCommand`.
fn set_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    o: &SetOpts,
    cmd: &str,
    reply: SetReply,
) -> CmdResult {
    let expires_at_ms = match &o.expire {
        Some((arg, kind)) => expire_at_ms(arg, *kind, ctx.now_ms, cmd)?,
        None => 0,
    };
    let (db, key) = (ctx.db(), &args[1]);
    if o.get {
        // The old value (or null) is the reply whether or not the write happens.
        match read_str(ctx.ks, reader(ctx), key)? {
            None => ctx.out.null(),
            Some(s) => ctx.out.bulk(&s.data),
        }
    }
    let old_expiry = ctx
        .ks
        .lookup_write(db, key, ctx.now_ms)
        .map(|e| e.expires_at_ms);
    if (o.nx && old_expiry.is_some()) || (o.xx && old_expiry.is_none()) {
        if !o.get {
            match reply {
                SetReply::Ok => ctx.out.null(),
                SetReply::Int => ctx.out.int(0),
            }
        }
        return Ok(());
    }
    let expiry = if o.keepttl {
        old_expiry.unwrap_or(0)
    } else {
        expires_at_ms
    };
    // A past EXAT/PXAT is stored as is: the key is then expired on its next
    // access, as Redis 7.0 does.
    ctx.ks.set(
        db,
        key.clone(),
        Value::Str(StrValue::new(args[2].to_vec())),
        expiry,
    );
    if old_expiry.is_none() {
        ctx.notify(NEW, "new", db, key);
    }
    ctx.notify(STRING, "set", db, key);
    if o.expire.is_some() {
        ctx.notify(GENERIC, "expire", db, key);
    }
    if !o.get {
        match reply {
            SetReply::Ok => ctx.out.ok(),
            SetReply::Int => ctx.out.int(1),
        }
    }
    Ok(())
}

/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
///   EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let o = parse_set_opts(args, 3, true)?;
    set_generic(ctx, args, &o, "set", SetReply::Ok)
}

/// SETNX key value
fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let o = SetOpts {
        nx: true,
        ..SetOpts::default()
    };
    set_generic(ctx, args, &o, "setnx", SetReply::Int)
}

/// SETEX key seconds value
fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, Expire::Ex, "setex")
}

/// PSETEX key milliseconds value
fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, Expire::Px, "psetex")
}

fn setex_generic(ctx: &mut Ctx, args: &[Bytes], kind: Expire, cmd: &str) -> CmdResult {
    let o = SetOpts {
        expire: Some((args[2].clone(), kind)),
        ..SetOpts::default()
    };
    let reordered = [args[0].clone(), args[1].clone(), args[3].clone()];
    set_generic(ctx, &reordered, &o, cmd, SetReply::Ok)
}

/// GET key
fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match read_str(ctx.ks, reader(ctx), &args[1])? {
        None => ctx.out.null(),
        Some(s) => ctx.out.bulk(&s.data),
    }
    Ok(())
}

/// GETSET key value
fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    get(ctx, args)?;
    let (db, key) = (ctx.db(), &args[1]);
    let existed = ctx.ks.lookup_write(db, key, ctx.now_ms).is_some();
    ctx.ks.set(
        db,
        key.clone(),
        Value::Str(StrValue::new(args[2].to_vec())),
        0,
    );
    if !existed {
        ctx.notify(NEW, "new", db, key);
    }
    ctx.notify(STRING, "set", db, key);
    Ok(())
}

/// GETDEL key
fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match read_str(ctx.ks, reader(ctx), &args[1])? {
        None => {
            ctx.out.null();
            return Ok(());
        }
        Some(s) => ctx.out.bulk(&s.data),
    }
    let db = ctx.db();
    if ctx.ks.delete(db, &args[1], ctx.now_ms) {
        ctx.notify(GENERIC, "del", db, &args[1]);
    }
    Ok(())
}

/// GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///   PXAT unix-time-milliseconds | PERSIST]
fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let o = parse_set_opts(args, 2, false)?;
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    if read_str(ctx.ks, reader(ctx), key)?.is_none() {
        ctx.out.null();
        return Ok(());
    }
    let expiry = match &o.expire {
        Some((arg, kind)) => Some((expire_at_ms(arg, *kind, now, "getex")?, *kind)),
        None => None,
    };
    // Reply before the key may be deleted below.
    if let Some(s) = ctx.ks.dbs[db].peek(key).and_then(|e| str_ref(&e.value)) {
        ctx.out.bulk(&s.data);
    }
    match expiry {
        Some((at, kind)) if !kind.relative() && ctx.ks.expire.already_expired(at, now) => {
            ctx.ks.delete(db, key, now);
            ctx.notify(GENERIC, "del", db, key);
        }
        Some((at, _)) => {
            ctx.ks.dbs[db].set_expiry(key, at);
            ctx.ks.stats.dirty += 1;
            ctx.notify(GENERIC, "expire", db, key);
        }
        None if o.persist => {
            let has_ttl = ctx.ks.dbs[db]
                .peek(key)
                .is_some_and(|e| e.expires_at_ms != 0);
            if has_ttl {
                ctx.ks.dbs[db].set_expiry(key, 0);
                ctx.ks.stats.dirty += 1;
                ctx.notify(GENERIC, "persist", db, key);
            }
        }
        None => {}
    }
    Ok(())
}

/// Stores a plain string value as MSET does, with Redis's events.
fn set_and_notify(ctx: &mut Ctx, db: usize, key: &Bytes, value: &[u8]) {
    let existed = ctx.ks.lookup_write(db, key, ctx.now_ms).is_some();
    ctx.ks.set(
        db,
        key.clone(),
        Value::Str(StrValue::new(value.to_vec())),
        0,
    );
    if !existed {
        ctx.notify(NEW, "new", db, key);
    }
    ctx.notify(STRING, "set", db, key);
}

/// MSET key value [key value ...]
fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_args("mset"));
    }
    let db = ctx.db();
    for pair in args[1..].chunks_exact(2) {
        set_and_notify(ctx, db, &pair[0], &pair[1]);
    }
    ctx.out.ok();
    Ok(())
}

/// MSETNX key value [key value ...]
fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_args("msetnx"));
    }
    let db = ctx.db();
    for pair in args[1..].chunks_exact(2) {
        if ctx.ks.lookup_write(db, &pair[0], ctx.now_ms).is_some() {
            ctx.out.int(0);
            return Ok(());
        }
    }
    for pair in args[1..].chunks_exact(2) {
        set_and_notify(ctx, db, &pair[0], &pair[1]);
    }
    ctx.out.int(1);
    Ok(())
}

/// MGET key [key ...]
///
/// A key holding another type reads as null, not as an error.
fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.out.array(args.len() - 1);
    for key in &args[1..] {
        match read_str(ctx.ks, reader(ctx), key) {
            Ok(Some(s)) => ctx.out.bulk(&s.data),
            Ok(None) | Err(_) => ctx.out.null(),
        }
    }
    Ok(())
}

// ---- in-place edits ----

/// APPEND key value
///
/// On a new key the value is stored as SET would (it may be `int`); an
/// existing value becomes `raw`, even when nothing is appended.
fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let old_len = match write_str(ctx.ks, db, key, now)? {
        None => {
            ctx.ks.set(
                db,
                key.clone(),
                Value::Str(StrValue::new(args[2].to_vec())),
                0,
            );
            ctx.notify(NEW, "new", db, key);
            ctx.notify(STRING, "append", db, key);
            ctx.out.int(args[2].len() as i64);
            return Ok(());
        }
        Some(s) => s.data.len(),
    };
    check_string_length(ctx, old_len as i64, args[2].len() as i64)?;
    let len = match super::rewrite_typed(ctx.ks, db, key, now, as_str)? {
        Some(s) => {
            s.data.extend_from_slice(&args[2]);
            s.form = StrForm::Raw;
            s.data.len()
        }
        None => 0,
    };
    modified(ctx.ks, db, key);
    // Logged as the appended bytes, not the whole (possibly huge) string.
    ctx.ks.log_op(
        db,
        key,
        Effect::Append {
            db: db as u8,
            key: key.clone(),
            data: args[2].clone(),
        },
    );
    ctx.notify(STRING, "append", db, key);
    ctx.out.int(len as i64);
    Ok(())
}

/// SETRANGE key offset value
fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = arg_i64(&args[2])?;
    if offset < 0 {
        return Err(CmdError::new("ERR offset is out of range"));
    }
    let (db, key, now, value) = (ctx.db(), &args[1], ctx.now_ms, &args[3]);
    let existing = write_str(ctx.ks, db, key, now)?.map(|s| s.data.len());
    if value.is_empty() {
        // Nothing to write: the current length, and no new key.
        ctx.out.int(existing.unwrap_or(0) as i64);
        return Ok(());
    }
    check_string_length(ctx, offset, value.len() as i64)?;
    // Bounded by proto-max-bulk-len, so it fits in usize.
    let offset = offset as usize;
    let end = offset + value.len();
    let mut buf = Vec::new();
    let len = {
        let data = match super::rewrite_typed(ctx.ks, db, key, now, as_str)? {
            Some(s) => {
                s.form = StrForm::Raw;
                &mut s.data
            }
            None => &mut buf,
        };
        if end > data.len() {
            if data.try_reserve_exact(end - data.len()).is_err() {
                return Err(CmdError::new(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            data.resize(end, 0);
        }
        data[offset..end].copy_from_slice(value);
        data.len()
    };
    if existing.is_some() {
        modified(ctx.ks, db, key);
        ctx.ks.log_op(
            db,
            key,
            Effect::SetRange {
                db: db as u8,
                key: key.clone(),
                offset: offset as u64,
                data: value.clone(),
            },
        );
    } else {
        let v = StrValue::with_form(buf, StrForm::Raw);
        ctx.ks.set(db, key.clone(), Value::Str(v), 0);
        ctx.notify(NEW, "new", db, key);
    }
    ctx.notify(STRING, "setrange", db, key);
    ctx.out.int(len as i64);
    Ok(())
}

/// STRLEN key
fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = read_str(ctx.ks, reader(ctx), &args[1])?.map_or(0, |s| s.data.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// GETRANGE key start end (also SUBSTR key start end)
fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = arg_i64(&args[2])?;
    let end = arg_i64(&args[3])?;
    let Some(s) = read_str(ctx.ks, reader(ctx), &args[1])? else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let len = s.data.len() as i128;
    let (mut start, mut end) = (i128::from(start), i128::from(end));
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        let data = &s.data[start as usize..=end as usize];
        ctx.out.bulk(data);
    }
    Ok(())
}

// ---- counters ----

/// INCR key
fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &args[1], 1)
}

/// DECR key
fn decr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &args[1], -1)
}

/// INCRBY key increment
fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = arg_i64(&args[2])?;
    incr_decr(ctx, &args[1], by)
}

/// DECRBY key decrement
fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = arg_i64(&args[2])?;
    if by == i64::MIN {
        return Err(CmdError::new("ERR decrement would overflow"));
    }
    incr_decr(ctx, &args[1], -by)
}

/// Redis's `incrDecrCommand`: the value must be a canonical integer; the
/// TTL is kept.
fn incr_decr(ctx: &mut Ctx, key: &Bytes, by: i64) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let overflow = || CmdError::new("ERR increment or decrement would overflow");
    // One lookup; the stored buffer is rewritten in place.
    let value = match write_str(ctx.ks, db, key, now)? {
        Some(s) => {
            let value = s
                .as_i64()
                .ok_or_else(CmdError::not_integer)?
                .checked_add(by)
                .ok_or_else(overflow)?;
            s.set_i64(value);
            modified(ctx.ks, db, key);
            value
        }
        None => {
            let value = 0i64.checked_add(by).ok_or_else(overflow)?;
            ctx.ks
                .set(db, key.clone(), Value::Str(StrValue::from_i64(value)), 0);
            ctx.notify(NEW, "new", db, key);
            value
        }
    };
    ctx.notify(STRING, "incrby", db, key);
    ctx.out.int(value);
    Ok(())
}

/// INCRBYFLOAT key increment
///
/// In `long double`, as Redis (see `ldouble`). The result is stored as a
/// plain string (never `int` encoded) and the TTL is kept. The durability
/// layer must log this as `SET key <result> KEEPTTL`, not as the request:
/// the stored string is the effect.
fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let current = match write_str(ctx.ks, db, key, now)? {
        None => ldouble::Ld::ZERO,
        Some(s) => ldouble::parse(&s.data).ok_or_else(CmdError::not_float)?,
    };
    let by = ldouble::parse(&args[2]).ok_or_else(CmdError::not_float)?;
    let sum = ldouble::add(current, by);
    if !sum.is_finite() {
        return Err(CmdError::new("ERR increment would produce NaN or Infinity"));
    }
    let text = ldouble::format_human(sum);
    let v = StrValue::with_form(text.as_bytes(), StrForm::Plain);
    match write_str(ctx.ks, db, key, now)? {
        Some(s) => {
            *s = v;
            modified(ctx.ks, db, key);
        }
        None => {
            ctx.ks.set(db, key.clone(), Value::Str(v), 0);
            ctx.notify(NEW, "new", db, key);
        }
    }
    ctx.notify(STRING, "incrbyfloat", db, key);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

// ---- LCS ----

/// Largest LCS table we try to allocate. Redis attempts any size and
/// replies an error when malloc fails; with overcommit that would kill the
/// process instead, so a fixed bound gives the same reply safely.
const LCS_TABLE_BYTES_MAX: u64 = 4 << 30;

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]
///
/// The classic dynamic-programming table of LCS lengths of prefixes, then
/// a walk back from the end that rebuilds the string and, for IDX, emits
/// the matched ranges from last to first, exactly as Redis's `lcsCommand`
/// (same tie-breaking, so the same ranges).
fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Both keys are looked up (and counted) before the type check.
    let a = read_str(ctx.ks, reader(ctx), &args[1]).map(|v| v.map(|s| s.data.clone()));
    let b = read_str(ctx.ks, reader(ctx), &args[2]).map(|v| v.map(|s| s.data.clone()));
    let (Ok(a), Ok(b)) = (a, b) else {
        return Err(not_strings());
    };
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let more = args.len() - 1 - j;
        if is_opt(opt, "idx") {
            getidx = true;
        } else if is_opt(opt, "len") {
            getlen = true;
        } else if is_opt(opt, "withmatchlen") {
            withmatchlen = true;
        } else if is_opt(opt, "minmatchlen") && more > 0 {
            minmatchlen = arg_i64(&args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    if getidx && getlen {
        return Err(CmdError::new(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err(CmdError::new("ERR String too long for LCS"));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let mut table: Vec<u32> = Vec::new();
    if cells * 4 > LCS_TABLE_BYTES_MAX || table.try_reserve_exact(cells as usize).is_err() {
        return Err(CmdError::new(
            "ERR Insufficient memory, failed allocating transient memory for LCS",
        ));
    }
    table.resize(cells as usize, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for jj in 1..=blen {
            table[i * w + jj] = if a[i - 1] == b[jj - 1] {
                table[(i - 1) * w + jj - 1] + 1
            } else {
                table[(i - 1) * w + jj].max(table[i * w + jj - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    let mut idx = total as usize;
    let mut result = vec![0u8; if getidx || !getlen { idx } else { 0 }];
    let computelcs = getidx || !getlen;
    // Ranges, as (a_start, a_end, b_start, b_end, len).
    let mut ranges: Vec<(usize, usize, usize, usize, usize)> = Vec::new();
    let (mut ar_start, mut ar_end, mut br_start, mut br_end) = (alen, 0usize, 0usize, 0usize);
    let (mut i, mut jj) = (alen, blen);
    while computelcs && i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if ar_start == alen {
                ar_start = i - 1;
                ar_end = i - 1;
                br_start = jj - 1;
                br_end = jj - 1;
            } else if ar_start == i && br_start == jj {
                ar_start -= 1;
                br_start -= 1;
            } else {
                emit = true;
            }
            if ar_start == 0 || br_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            let l1 = table[(i - 1) * w + jj];
            let l2 = table[i * w + jj - 1];
            if l1 > l2 {
                i -= 1;
            } else {
                jj -= 1;
            }
            if ar_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = ar_end.wrapping_sub(ar_start).wrapping_add(1);
            if minmatchlen == 0 || match_len as u64 >= minmatchlen as u64 {
                ranges.push((ar_start, ar_end, br_start, br_end, match_len));
            }
            ar_start = alen;
        }
    }
    if getidx {
        ctx.out.map(2);
        ctx.out.bulk(b"matches");
        ctx.out.array(ranges.len());
        for (a0, a1, b0, b1, n) in ranges {
            ctx.out.array(2 + usize::from(withmatchlen));
            ctx.out.array(2);
            ctx.out.int(a0 as i64);
            ctx.out.int(a1 as i64);
            ctx.out.array(2);
            ctx.out.int(b0 as i64);
            ctx.out.int(b1 as i64);
            if withmatchlen {
                ctx.out.int(n as i64);
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.int(i64::from(total));
    } else if getlen {
        ctx.out.int(i64::from(total));
    } else {
        ctx.out.bulk(&result);
    }
    Ok(())
}

fn not_strings() -> CmdError {
    CmdError::new("ERR The specified keys must contain string values")
}

/// Redis's `getLongDoubleFromObject` (`string2ld`): the argument as a long
/// double, rounded to an `f64` (for timeouts, where the last bits do not
/// matter). None when Redis would refuse it.
pub fn parse_long_double(a: &[u8]) -> Option<f64> {
    match ldouble::parse(a)? {
        ldouble::Ld::Inf { neg } => Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        ldouble::Ld::Finite { neg, mant, exp } => {
            let half = exp / 2;
            let v = (mant as f64) * 2f64.powi(half) * 2f64.powi(exp - half);
            Some(if neg { -v } else { v })
        }
    }
}
