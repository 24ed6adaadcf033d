//! Stream commands (Redis's t_stream.c; consumer groups are in
//! `stream_groups`): XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD
//! (BLOCK through `server::blocking`), XSETID, XINFO STREAM, and the
//! redlog extension XCONFIG (per-stream retention).
//!
//! Argument checks follow Redis's order and error texts; the data lives in
//! `crate::stream` (metadata in memory, entries in the stream's logs).

use super::stream_common::{
    bulk_id, field, id_arg, interval_id, next_auto_id, propagate, propagating, read_stream,
    reply_entries, reply_entry, storage_err, strict_id, touched, touched_unwatched, write_stream,
    StreamEntry,
};
use super::{arg_i64, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::db::{notify, Value};
use crate::stream::id::ParsedId;
use crate::stream::{fmt_id, id_ms, id_seq, Inner, TrimSpec, TrimStrategy};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("xadd", xadd),
    ("xrange", xrange),
    ("xrevrange", xrevrange),
    ("xlen", xlen),
    ("xdel", xdel),
    ("xtrim", xtrim),
    ("xread", xread),
    ("xsetid", xsetid),
    ("xinfo|stream", xinfo_stream),
    ("xinfo|groups", super::stream_pending::xinfo_groups),
    ("xinfo|consumers", super::stream_pending::xinfo_consumers),
    ("xinfo|help", super::stream_pending::xinfo_help),
    ("xconfig", xconfig),
];

/// Parsed XADD / XTRIM options (Redis's `streamAddTrimArgs`).
#[derive(Default)]
struct AddTrimArgs {
    trim: Option<TrimStrategy>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    id: Option<ParsedId>,
    /// Index of the MAXLEN / MINID threshold argument (rewritten for the
    /// replication stream after an approximate trim).
    trim_idx: usize,
}

/// `streamParseAddOrTrimArgsOrReply`: returns the options and the index of
/// the id argument (XADD) or of the end (XTRIM).
///
/// From the primary (`master`), as Redis from its master or AOF: LIMIT is
/// not enforced (the threshold was rewritten exact) and not refused
/// without `~`.
fn parse_add_trim(
    args: &[Bytes],
    xadd: bool,
    master: bool,
) -> Result<(AddTrimArgs, usize), CmdError> {
    let mut a = AddTrimArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    let argc = args.len();
    while i < argc {
        let moreargs = argc - 1 - i;
        let opt = &args[i];
        if xadd && opt.first() == Some(&b'*') && (opt.len() == 1 || opt[1] == 0) {
            break;
        } else if (is_opt(opt, "maxlen") || is_opt(opt, "minid")) && moreargs > 0 {
            if a.trim.is_some() {
                return Err(CmdError::new(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            a.approx = false;
            let next = &args[i + 1];
            let c_next = &next[..next.iter().position(|&b| b == 0).unwrap_or(next.len())];
            if moreargs >= 2 && c_next == b"~" {
                a.approx = true;
                i += 1;
            } else if moreargs >= 2 && c_next == b"=" {
                i += 1;
            }
            if is_opt(opt, "maxlen") {
                let n = arg_i64(&args[i + 1])?;
                if n < 0 {
                    return Err(CmdError::new("ERR The MAXLEN argument must be >= 0."));
                }
                a.trim = Some(TrimStrategy::MaxLen(n as u64));
            } else {
                a.trim = Some(TrimStrategy::MinId(strict_id(&args[i + 1], false)?.id));
            }
            a.trim_idx = i + 1;
            i += 1;
        } else if is_opt(opt, "limit") && moreargs > 0 {
            let n = arg_i64(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::new("ERR The LIMIT argument must be >= 0."));
            }
            a.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is_opt(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(strict_id(opt, true)?);
            break;
        } else {
            return Err(CmdError::syntax());
        }
        i += 1;
    }
    if a.limit > 0 && a.trim.is_none() {
        return Err(CmdError::new(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.is_none() {
        return Err(CmdError::new(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if master {
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            return Err(CmdError::new(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if a.approx {
        // 100 * stream-node-max-entries (100), as Redis.
        a.limit = 10_000;
    } else {
        a.limit = 0;
    }
    Ok((a, i))
}

/// XADD key [NOMKSTREAM] [<MAXLEN | MINID> [= | ~] threshold [LIMIT count]]
///   <* | id> field value [field value ...]
fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (a, idpos) = parse_add_trim(args, true, ctx.client.master)?;
    let field_pos = idpos + 1;
    if field_pos > args.len() || args.len() - field_pos < 2 || (args.len() - field_pos) % 2 == 1 {
        return Err(CmdError::wrong_args("xadd"));
    }
    if let Some(p) = a.id {
        if p.seq_given && p.id == 0 {
            return Err(CmdError::new(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let key = &args[1];
    let db = ctx.db();
    let (s, created) = match write_stream(ctx, key)? {
        Some(s) => (s, false),
        None if a.nomkstream => {
            ctx.out.null();
            return Ok(());
        }
        None => (ctx.shared.streams.create().map_err(storage_err)?, true),
    };
    // The entry stays pending until the end of the batch: consecutive
    // XADDs are written in one call.
    let mut g = s.lock_pending().map_err(storage_err)?;
    let last = g.meta.last_id;
    if last == u128::MAX {
        return Err(CmdError::new(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let id = match a.id {
        None => next_auto_id(last, ctx.now_ms),
        Some(p) if p.seq_given => Some(p.id),
        Some(p) if id_ms(last) == id_ms(p.id) => (id_seq(last) != u64::MAX).then(|| last + 1),
        Some(p) => Some(p.id),
    };
    let id =
        match id {
            Some(id) if id > last => id,
            _ => return Err(CmdError::new(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            )),
        };
    g.append(id, &args[field_pos..]).map_err(storage_err)?;
    let trimmed = match a.trim {
        Some(strategy) => g
            .trim(TrimSpec {
                strategy,
                approx: a.approx,
                limit: a.limit,
            })
            .map_err(storage_err)?,
        None => 0,
    };
    if propagating(ctx) {
        // The generated id, and an approximate trim as the exact one it
        // did (Redis's XADD argument rewriting).
        let mut argv = args.to_vec();
        if a.id.is_none_or(|p| !p.seq_given) {
            argv[idpos] = id_arg(id);
        }
        rewrite_approx_trim(&mut argv, &a, &g);
        propagate(ctx, argv);
    }
    drop(g);
    if created {
        let e = ctx.ks.entry(Value::Stream(s.clone()), 0);
        ctx.ks.dbs[db].insert(key.clone(), e);
        ctx.ks.notify(notify::NEW, "new", db, key);
        ctx.ks.stats.dirty += 1;
        ctx.ks.stream_written(&s);
    } else {
        touched(ctx, key, &s, 1);
    }
    ctx.out.bulk(fmt_id(id).as_bytes());
    ctx.ks.notify(notify::STREAM, "xadd", db, key);
    // Blocked XREAD / XREADGROUP clients (a new key signals itself).
    ctx.ks.signal_key_ready(db, key);
    if trimmed > 0 {
        ctx.ks.notify(notify::STREAM, "xtrim", db, key);
    }
    Ok(())
}

/// An entry's reply (`reply_entry`) encoded straight from its record's
/// value, without decoding it into owned fields first.
fn reply_entry_encoded(
    out: &mut crate::protocol::Out,
    id: u128,
    value: &[u8],
) -> Result<(), crate::stream::StreamError> {
    let fields = crate::stream::codec::entry_fields(value)?;
    out.array(2);
    bulk_id(out, id);
    out.array(fields.len());
    for f in fields {
        out.bulk(f);
    }
    Ok(())
}

/// XRANGE key start end [COUNT count]
fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, false)
}

/// XREVRANGE key end start [COUNT count]
fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, true)
}

/// Redis's `xrangeGenericCommand`.
fn range_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (mut start, start_ex) = interval_id(start_arg, 0)?;
    if start_ex {
        if start == u128::MAX {
            return Err(CmdError::new("ERR invalid start ID for the interval"));
        }
        start += 1;
    }
    let (mut end, end_ex) = interval_id(end_arg, u64::MAX)?;
    if end_ex {
        if end == 0 {
            return Err(CmdError::new("ERR invalid end ID for the interval"));
        }
        end -= 1;
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = arg_i64(&args[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(CmdError::syntax());
        }
    }
    let Some(s) = read_stream(ctx, &args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.null_array();
        return Ok(());
    }
    let limit = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    // The entries are encoded as they are read, the array header (their
    // count) put in front of them at the end; a damaged entry discards
    // the partial reply for the error.
    let reply_start = ctx.out.buf.len();
    let mut n = 0usize;
    let walked = {
        let out = &mut *ctx.out;
        s.lock().and_then(|g| {
            g.range_each(start, end, limit, rev, |id, value| {
                n += 1;
                reply_entry_encoded(out, id, &value)
            })
        })
    };
    if let Err(e) = walked {
        ctx.out.buf.truncate(reply_start);
        return Err(storage_err(e));
    }
    let mut header = itoa::Buffer::new();
    let count = header.format(n).as_bytes();
    let mut line = [0u8; 24];
    line[0] = b'*';
    line[1..1 + count.len()].copy_from_slice(count);
    line[1 + count.len()..3 + count.len()].copy_from_slice(b"\r\n");
    ctx.out.buf.splice(
        reply_start..reply_start,
        line[..3 + count.len()].iter().copied(),
    );
    Ok(())
}

/// XLEN key
fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = read_stream(ctx, &args[1])?
        .and_then(|s| s.meta())
        .map_or(0, |m| m.length);
    ctx.out.int(n as i64);
    Ok(())
}

/// Redis's `streamRewriteApproxSpecifier` and `streamRewriteTrimArgument`:
/// after an approximate trim, `~` becomes `=` and the threshold what the
/// trim left (the length, or the first id; the last possible id when the
/// stream is empty), so the replica trims exactly as much.
fn rewrite_approx_trim(argv: &mut [Bytes], a: &AddTrimArgs, g: &Inner) {
    if !a.approx || a.trim_idx == 0 {
        return;
    }
    argv[a.trim_idx - 1] = Bytes::from_static(b"=");
    argv[a.trim_idx] = match a.trim {
        Some(TrimStrategy::MaxLen(_)) => Bytes::from(g.meta.length.to_string()),
        _ if g.meta.length == 0 => id_arg(u128::MAX),
        _ => id_arg(g.meta.first),
    };
}

/// XDEL key id [id ...]
fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(s) = write_stream(ctx, &args[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    let ids = args[2..]
        .iter()
        .map(|a| strict_id(a, false).map(|p| p.id))
        .collect::<Result<Vec<_>, _>>()?;
    let deleted = s
        .lock()
        .map_err(storage_err)?
        .delete(&ids)
        .map_err(storage_err)?;
    if deleted > 0 {
        propagate(ctx, args.to_vec());
        touched(ctx, &args[1], &s, deleted);
        let db = ctx.db();
        ctx.ks.notify(notify::STREAM, "xdel", db, &args[1]);
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

/// XTRIM key <MAXLEN | MINID> [= | ~] threshold [LIMIT count]
fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(s) = write_stream(ctx, &args[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    let (a, _) = parse_add_trim(args, false, ctx.client.master)?;
    let Some(strategy) = a.trim else {
        return Err(CmdError::syntax());
    };
    let mut g = s.lock().map_err(storage_err)?;
    let removed = g
        .trim(TrimSpec {
            strategy,
            approx: a.approx,
            limit: a.limit,
        })
        .map_err(storage_err)?;
    if removed > 0 && propagating(ctx) {
        let mut argv = args.to_vec();
        rewrite_approx_trim(&mut argv, &a, &g);
        propagate(ctx, argv);
    }
    drop(g);
    if removed > 0 {
        let db = ctx.db();
        ctx.ks.notify(notify::STREAM, "xtrim", db, &args[1]);
        touched(ctx, &args[1], &s, removed);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// The options of XREAD and XREADGROUP, parsed as Redis's `xreadCommand`
/// does for both (`group` and `noack` only for XREADGROUP).
pub(super) struct XreadArgs {
    pub count: i64,
    pub block: Option<u64>,
    pub noack: bool,
    /// Index of the first key after STREAMS.
    pub streams_arg: usize,
    pub group: Option<(Bytes, Bytes)>,
}

pub(super) fn parse_xread_args(
    args: &[Bytes],
    xreadgroup: bool,
    now_ms: u64,
    from_script: bool,
) -> Result<XreadArgs, CmdError> {
    let mut a = XreadArgs {
        count: 0,
        block: None,
        noack: false,
        streams_arg: 0,
        group: None,
    };
    let mut i = 1;
    while i < args.len() {
        let moreargs = args.len() - i - 1;
        let o = &args[i];
        if is_opt(o, "block") && moreargs > 0 {
            if from_script {
                // Redis refuses BLOCK in scripts outright (not only
                // answers at once, as inside MULTI).
                let mut m = b"ERR ".to_vec();
                m.extend_from_slice(
                    &args[0][..args[0]
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(args[0].len())],
                );
                m.extend_from_slice(b" command is not allowed with BLOCK option from scripts");
                return Err(CmdError::from_bytes(m));
            }
            i += 1;
            a.block = Some(super::blocking::parse_timeout(
                &args[i],
                super::blocking::Unit::Millis,
                now_ms,
            )?);
        } else if is_opt(o, "count") && moreargs > 0 {
            i += 1;
            a.count = arg_i64(&args[i])?.max(0);
        } else if is_opt(o, "streams") && moreargs > 0 {
            a.streams_arg = i + 1;
            if !(args.len() - a.streams_arg).is_multiple_of(2) {
                return Err(CmdError::new(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if is_opt(o, "group") && moreargs >= 2 {
            if !xreadgroup {
                return Err(CmdError::new(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is_opt(o, "noack") {
            if !xreadgroup {
                return Err(CmdError::new(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.noack = true;
        } else {
            return Err(CmdError::syntax());
        }
        i += 1;
    }
    if a.streams_arg == 0 {
        return Err(CmdError::syntax());
    }
    Ok(a)
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
///
/// With BLOCK and nothing to serve it blocks through `server::blocking`
/// (`$` fixed to the stream's last id at the time of the call).
fn xread(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let XreadArgs {
        count,
        block,
        streams_arg,
        ..
    } = parse_xread_args(args, false, ctx.now_ms, ctx.client.in_script)?;
    let n = (args.len() - streams_arg) / 2;
    let mut ids = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for k in 0..n {
        let key = &args[streams_arg + k];
        let id_arg = &args[streams_arg + n + k];
        let s = read_stream(ctx, key)?;
        if id_arg.as_ref() == b"$" {
            ids.push(s.as_ref().and_then(|s| s.meta()).map_or(0, |m| m.last_id));
        } else if id_arg.as_ref() == b">" {
            return Err(CmdError::new(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ));
        } else {
            ids.push(strict_id(id_arg, false)?.id);
        }
        handles.push(s);
    }
    let mut served: Vec<(usize, Vec<StreamEntry>)> = Vec::new();
    for (k, s) in handles.iter().enumerate() {
        let Some(s) = s else { continue };
        let g = s.lock().map_err(storage_err)?;
        if g.meta.length == 0 || g.last_live().map_err(storage_err)? <= ids[k] {
            continue;
        }
        let limit = if count == 0 {
            usize::MAX
        } else {
            count as usize
        };
        let entries = g
            .range(ids[k] + 1, u128::MAX, limit, false)
            .map_err(storage_err)?;
        served.push((k, entries));
    }
    if served.is_empty() {
        match block {
            Some(deadline) if !super::blocking::denied(ctx) => {
                // `$` becomes the id it stood for, so the re-run when a
                // key is ready serves what was added after this call.
                let mut again = args.to_vec();
                for (k, id) in ids.iter().enumerate() {
                    if again[streams_arg + n + k].as_ref() == b"$" {
                        again[streams_arg + n + k] = Bytes::from(fmt_id(*id));
                    }
                }
                let keys = args[streams_arg..streams_arg + n].to_vec();
                super::blocking::block(
                    ctx,
                    &again,
                    keys,
                    deadline,
                    "stream",
                    super::blocking::Null::Array,
                );
            }
            _ => ctx.out.null_array(),
        }
        return Ok(());
    }
    if ctx.out.resp3 {
        ctx.out.map(served.len());
    } else {
        ctx.out.array(served.len());
    }
    for (k, entries) in served {
        if !ctx.out.resp3 {
            ctx.out.array(2);
        }
        ctx.out.bulk(&args[streams_arg + k]);
        reply_entries(ctx, &entries);
    }
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = strict_id(&args[2], false)?.id;
    let mut entries_added = None;
    let mut max_deleted = None;
    let mut i = 3;
    while i < args.len() {
        let moreargs = args.len() - 1 - i;
        if is_opt(&args[i], "entriesadded") && moreargs > 0 {
            let n = arg_i64(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::new("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
            i += 2;
        } else if is_opt(&args[i], "maxdeletedid") && moreargs > 0 {
            let d = strict_id(&args[i + 1], false)?.id;
            if id < d {
                return Err(CmdError::new(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            max_deleted = Some(d);
            i += 2;
        } else {
            return Err(CmdError::syntax());
        }
    }
    let Some(s) = write_stream(ctx, &args[1])? else {
        return Err(CmdError::no_such_key());
    };
    {
        let mut g = s.lock().map_err(storage_err)?;
        if g.meta.length > 0 {
            if id < g.last_live().map_err(storage_err)? {
                return Err(CmdError::new(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added.is_some_and(|n| g.meta.length > n) {
                return Err(CmdError::new(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        g.set_id(id, entries_added, max_deleted.filter(|&d| d != 0))
            .map_err(storage_err)?;
    }
    ctx.out.ok();
    propagate(ctx, args.to_vec());
    touched_unwatched(ctx, &s, 1);
    let db = ctx.db();
    ctx.ks.notify(notify::STREAM, "xsetid", db, &args[1]);
    Ok(())
}

/// The entry `id` or a null (XINFO first-entry / last-entry).
fn reply_entry_or_null(ctx: &mut Ctx, g: &Inner, id: u128) -> CmdResult {
    match (id != 0)
        .then(|| g.get(id))
        .transpose()
        .map_err(storage_err)?
        .flatten()
    {
        Some(fields) => reply_entry(ctx, id, &fields),
        None => ctx.out.null(),
    }
    Ok(())
}

/// XINFO STREAM key [FULL [COUNT count]]
///
/// `radix-tree-keys` / `radix-tree-nodes` describe Redis's radix tree; here
/// they are the number of segments holding live entries and of all
/// segments. The reply keeps Redis's fields only (clients parse it);
/// the retention settings are shown by XCONFIG's reply.
fn xinfo_stream(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(s) = read_stream(ctx, &args[2])? else {
        return Err(CmdError::no_such_key());
    };
    let opts = &args[3..];
    // Redis's `addReplySubcommandSyntaxError`: the subcommand as typed.
    let sub_err = || {
        let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
        m.extend_from_slice(&args[1][..args[1].len().min(128)]);
        m.extend_from_slice(b"'. Try XINFO HELP.");
        CmdError::from_bytes(m)
    };
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if !opts[0].eq_ignore_ascii_case(b"full") {
            return Err(sub_err());
        }
        full = true;
        if opts.len() > 1 {
            if opts.len() != 3 || !opts[1].eq_ignore_ascii_case(b"count") {
                return Err(sub_err());
            }
            count = arg_i64(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let g = s.lock().map_err(storage_err)?;
    let m = g.meta;
    let pairs = if full { 9 } else { 10 };
    if ctx.out.resp3 {
        ctx.out.map(pairs);
    } else {
        ctx.out.array(pairs * 2);
    }
    field(ctx, "length");
    ctx.out.int(m.length as i64);
    field(ctx, "radix-tree-keys");
    ctx.out.int(g.live_segments() as i64);
    field(ctx, "radix-tree-nodes");
    ctx.out.int(g.segment_count().max(1) as i64);
    field(ctx, "last-generated-id");
    ctx.out.bulk(fmt_id(m.last_id).as_bytes());
    field(ctx, "max-deleted-entry-id");
    ctx.out.bulk(fmt_id(m.max_deleted).as_bytes());
    field(ctx, "entries-added");
    ctx.out.int(m.entries_added as i64);
    field(ctx, "recorded-first-entry-id");
    ctx.out.bulk(fmt_id(m.first).as_bytes());
    if full {
        field(ctx, "entries");
        let limit = if count == 0 {
            usize::MAX
        } else {
            count as usize
        };
        let entries = g.range(0, u128::MAX, limit, false).map_err(storage_err)?;
        reply_entries(ctx, &entries);
        field(ctx, "groups");
        super::stream_pending::reply_full_groups(ctx, &g, count as usize);
    } else {
        field(ctx, "groups");
        ctx.out.int(g.groups.len() as i64);
        field(ctx, "first-entry");
        reply_entry_or_null(ctx, &g, m.first)?;
        field(ctx, "last-entry");
        let last = g.last_live().map_err(storage_err)?;
        reply_entry_or_null(ctx, &g, last)?;
    }
    Ok(())
}

/// XCONFIG key [RETENTION-MS ms] [RETENTION-BYTES bytes] (redlog extension)
///
/// Sets the stream's retention, applied in the background by whole
/// segments (Kafka's `retention.ms` / `retention.bytes`); 0 clears a
/// setting (the global `stream-retention-*` config applies). Replies with
/// the settings now in force for the stream, as a flat list.
fn xconfig(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut ms = None;
    let mut bytes = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(CmdError::syntax());
        }
        let n = arg_i64(&args[i + 1])?;
        if n < 0 {
            return Err(CmdError::new("ERR retention must be >= 0"));
        }
        if is_opt(&args[i], "retention-ms") {
            ms = Some(n as u64);
        } else if is_opt(&args[i], "retention-bytes") {
            bytes = Some(n as u64);
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let Some(s) = write_stream(ctx, &args[1])? else {
        return Err(CmdError::no_such_key());
    };
    let (new_ms, new_bytes) = {
        let mut g = s.lock().map_err(storage_err)?;
        let new_ms = ms.map_or(g.retention_ms, |v| (v > 0).then_some(v));
        let new_bytes = bytes.map_or(g.retention_bytes, |v| (v > 0).then_some(v));
        g.set_retention(new_ms, new_bytes).map_err(storage_err)?;
        (new_ms, new_bytes)
    };
    touched(ctx, &args[1], &s, 1);
    // To redlog replicas as a record (`db::effect::record`), absolute.
    propagate(
        ctx,
        crate::db::effect::record::xconfig_argv(args[1].clone(), new_ms, new_bytes),
    );
    ctx.out.array(4);
    field(ctx, "retention-ms");
    ctx.out.int(new_ms.unwrap_or(0) as i64);
    field(ctx, "retention-bytes");
    ctx.out.int(new_bytes.unwrap_or(0) as i64);
    Ok(())
}
