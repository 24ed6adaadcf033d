//! Consumer-group inspection and ownership commands (Redis 7.0's
//! t_stream.c): XPENDING, XCLAIM, XAUTOCLAIM, XINFO GROUPS / CONSUMERS /
//! HELP and the groups part of XINFO STREAM FULL. XGROUP, XREADGROUP and
//! XACK are in `stream_groups`.

use super::stream_common::{
    err_parts, field, id_arg, interval_id, map_or_array, nogroup_for_key, nogroup_key_or_group,
    propagate, propagating, read_stream, reply_entries_read, reply_entry, reply_lag, setid_argv,
    storage_err, strict_id, touched_unwatched, xclaim_argv,
};
use super::{arg_i64, is_opt, CmdError, CmdResult, Ctx};
use crate::db::notify;
use crate::stream::groups::GroupOp;
use crate::stream::id::parse_id;
use crate::stream::{fmt_id, Inner, StreamRef};
use bytes::Bytes;

/// XINFO HELP
pub(super) fn xinfo_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub(super) fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let argc = args.len();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::syntax());
    }
    let mut minidle: i64 = 0;
    let (mut start, mut end, mut count) = (0u128, u128::MAX, 0i64);
    let mut consumer = None;
    if argc >= 6 {
        let mut startidx = 3;
        if args[3].eq_ignore_ascii_case(b"idle") {
            minidle = arg_i64(&args[4])?;
            if argc < 8 {
                return Err(CmdError::syntax());
            }
            startidx += 2;
        }
        count = arg_i64(&args[startidx + 2])?.max(0);
        let (s, sx) = interval_id(&args[startidx], 0)?;
        start = s;
        if sx {
            if start == u128::MAX {
                return Err(CmdError::new("ERR invalid start ID for the interval"));
            }
            start += 1;
        }
        let (e, ex) = interval_id(&args[startidx + 1], u64::MAX)?;
        end = e;
        if ex {
            if end == 0 {
                return Err(CmdError::new("ERR invalid end ID for the interval"));
            }
            end -= 1;
        }
        if startidx + 3 < argc {
            consumer = Some(args[startidx + 3].clone());
        }
    }
    let s = read_stream(ctx, &args[1])?;
    let nogroup = || nogroup_key_or_group(&args[1], &args[2], b"");
    let Some(s) = s else {
        return Err(nogroup());
    };
    let g = s.lock().map_err(storage_err)?;
    let Some(gr) = g.groups.get(&args[2]) else {
        return Err(nogroup());
    };
    if justinfo {
        ctx.out.array(4);
        ctx.out.int(gr.pel.len() as i64);
        match (gr.pel.first_key(), gr.pel.last_key()) {
            (Some(first), Some(last)) => {
                ctx.out.bulk(fmt_id(first).as_bytes());
                ctx.out.bulk(fmt_id(last).as_bytes());
                let with: Vec<_> = gr.consumers().filter(|(_, c)| !c.pel.is_empty()).collect();
                ctx.out.array(with.len());
                for (name, c) in with {
                    ctx.out.array(2);
                    ctx.out.bulk(name);
                    ctx.out.bulk_int(c.pel.len() as i64);
                }
            }
            _ => {
                ctx.out.null();
                ctx.out.null();
                ctx.out.null_array();
            }
        }
        return Ok(());
    }
    let now = ctx.now_ms as i64;
    let ids: Vec<u128> = match &consumer {
        Some(c) => match gr.consumer(c) {
            Some(c) => c.pel.range_from(start).map(|(id, _)| id).collect(),
            None => {
                ctx.out.array(0);
                return Ok(());
            }
        },
        None => gr.pel.range_from(start).map(|(k, _)| k).collect(),
    };
    let mut rows = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let Some(n) = gr.pel.get(id) else { continue };
        let idle = now - n.delivery_time as i64;
        if minidle != 0 && idle < minidle {
            continue;
        }
        count -= 1;
        rows.push((id, gr.owner(n), idle.max(0), n.delivery_count));
    }
    ctx.out.array(rows.len());
    for (id, c, idle, dc) in rows {
        ctx.out.array(4);
        ctx.out.bulk(fmt_id(id).as_bytes());
        ctx.out.bulk(c);
        ctx.out.int(idle);
        ctx.out.int(dc as i64);
    }
    Ok(())
}

/// An integer argument with Redis's custom error message.
fn int_or(a: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    crate::protocol::parse::parse_i64(a).ok_or_else(|| CmdError::new(msg))
}

/// The stream and group of XCLAIM / XAUTOCLAIM, or NOGROUP.
fn stream_with_group(ctx: &mut Ctx, args: &[Bytes]) -> Result<Option<StreamRef>, CmdError> {
    let s = read_stream(ctx, &args[1])?;
    Ok(match s {
        Some(s) if s.lock().map_err(storage_err)?.groups.contains_key(&args[2]) => Some(s),
        _ => None,
    })
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
///   [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID]
///   [LASTID lastid]
pub(super) fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(s) = stream_with_group(ctx, args)? else {
        return Err(nogroup_key_or_group(&args[1], &args[2], b""));
    };
    let minidle = int_or(&args[4], "ERR Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < args.len() {
        match parse_id(&args[j], true, 0, false) {
            Some(p) => ids.push((p.id, j)),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now_ms as i64;
    let (mut force, mut justid) = (false, false);
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut last_id = 0u128;
    while j < args.len() {
        let moreargs = args.len() - 1 - j;
        let o = &args[j];
        if is_opt(o, "force") {
            force = true;
        } else if is_opt(o, "justid") {
            justid = true;
        } else if is_opt(o, "idle") && moreargs > 0 {
            j += 1;
            deliverytime = now - int_or(&args[j], "ERR Invalid IDLE option argument for XCLAIM")?;
        } else if is_opt(o, "time") && moreargs > 0 {
            j += 1;
            deliverytime = int_or(&args[j], "ERR Invalid TIME option argument for XCLAIM")?;
        } else if is_opt(o, "retrycount") && moreargs > 0 {
            j += 1;
            retrycount = int_or(
                &args[j],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?;
        } else if is_opt(o, "lastid") && moreargs > 0 {
            j += 1;
            last_id = strict_id(&args[j], false)?.id;
        } else {
            return Err(err_parts(&[
                b"ERR Unrecognized XCLAIM option '",
                super::c_str(o),
                b"'",
            ]));
        }
        j += 1;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    let gname = &args[2];
    let cname = &args[3];
    let db = ctx.db();
    let mut g = s.lock().map_err(storage_err)?;
    let Some(gr) = g.groups.get(gname) else {
        return Err(nogroup_key_or_group(&args[1], &args[2], b""));
    };
    let mut ops = Vec::new();
    let last_before = gr.last_id;
    if last_id > gr.last_id {
        ops.push(GroupOp::SetId {
            group: gname.clone(),
            last_id,
            entries_read: gr.entries_read,
        });
    }
    let consumer_existed = gr.has_consumer(cname);
    let group_last = last_id.max(gr.last_id);
    // What Redis propagates, in order (`streamPropagateXCLAIM`): per
    // claimed or removed PEL entry its owner, id argument, time, count.
    let mut props: Vec<(Bytes, usize, u64, u64)> = Vec::new();
    // The state as it evolves over the ids (duplicates see earlier claims).
    let mut pel: std::collections::BTreeMap<u128, (Bytes, u64)> = std::collections::BTreeMap::new();
    let mut gone = Vec::new();
    let mut nacks: Vec<(u128, u64, u64)> = Vec::new();
    let mut reply: Vec<(u128, Option<Vec<Bytes>>)> = Vec::new();
    for (id, arg) in ids {
        let cur = match pel.get(&id) {
            Some((c, dc)) => Some((c.clone(), *dc, deliverytime as u64)),
            None if gone.contains(&id) => None,
            None => gr
                .pel
                .get(id)
                .map(|n| (gr.owner(n).clone(), n.delivery_count, n.delivery_time)),
        };
        let entry = g.get(id).map_err(storage_err)?;
        let Some(fields) = entry else {
            if let Some((c, dc, t)) = &cur {
                props.push((c.clone(), arg, *t, *dc));
                pel.remove(&id);
                nacks.retain(|n| n.0 != id);
                gone.push(id);
            }
            continue;
        };
        let (owner, dc, dtime, is_new) = match cur {
            Some((c, dc, t)) => (Some(c), dc, t, false),
            None if force => (None, 1, now as u64, true),
            None => continue,
        };
        if !is_new && owner.is_some() && minidle != 0 && now - (dtime as i64) < minidle {
            continue;
        }
        let dc = if retrycount >= 0 {
            retrycount as u64
        } else if !justid {
            dc + 1
        } else {
            dc
        };
        pel.insert(id, (cname.clone(), dc));
        props.push((cname.clone(), arg, deliverytime as u64, dc));
        nacks.retain(|n| n.0 != id);
        nacks.push((id, deliverytime as u64, dc));
        reply.push((id, (!justid).then_some(fields)));
    }
    let claimed_any = !nacks.is_empty();
    if !gone.is_empty() {
        ops.push(GroupOp::Ack {
            group: gname.clone(),
            ids: gone,
        });
    }
    if claimed_any {
        ops.push(GroupOp::Deliver {
            group: gname.clone(),
            consumer: cname.clone(),
            seen: ctx.now_ms,
            last: None,
            nacks,
        });
    }
    let changed = !ops.is_empty();
    let entries_read = gr.entries_read;
    for op in ops {
        g.group_op(op).map_err(storage_err)?;
    }
    drop(g);
    if propagating(ctx) {
        let (key, group) = (&args[1], &args[2]);
        if props.is_empty() && group_last > last_before {
            // LASTID alone moved the group (Redis's
            // `streamPropagateGroupID`); an XCLAIM carries it otherwise.
            propagate(ctx, setid_argv(key, group, group_last, entries_read));
        }
        for (owner, arg, time, count) in props {
            let argv = xclaim_argv(
                key,
                group,
                &owner,
                args[arg].clone(),
                time,
                count,
                group_last,
            );
            propagate(ctx, argv);
        }
    }
    if changed {
        touched_unwatched(ctx, &s, 1);
    }
    if claimed_any && !consumer_existed {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", db, &args[1]);
    }
    ctx.out.array(reply.len());
    for (id, e) in reply {
        match e {
            Some(fields) => reply_entry(ctx, id, &fields),
            None => ctx.out.bulk(fmt_id(id).as_bytes()),
        }
    }
    Ok(())
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub(super) fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let minidle = int_or(
        &args[4],
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    )?
    .max(0);
    let (mut start, sx) = interval_id(&args[5], 0)?;
    if sx {
        if start == u128::MAX {
            return Err(CmdError::new("ERR invalid start ID for the interval"));
        }
        start += 1;
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let moreargs = args.len() - 1 - j;
        if is_opt(&args[j], "count") && moreargs > 0 {
            let max = i64::MAX / 16;
            count = match crate::protocol::parse::parse_i64(&args[j + 1]) {
                Some(n) if (1..=max).contains(&n) => n,
                _ => return Err(CmdError::new("ERR COUNT must be > 0")),
            };
            j += 1;
        } else if is_opt(&args[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    let Some(s) = stream_with_group(ctx, args)? else {
        return Err(nogroup_key_or_group(&args[1], &args[2], b""));
    };
    let gname = &args[2];
    let cname = &args[3];
    let db = ctx.db();
    let now = ctx.now_ms;
    let mut attempts = count.saturating_mul(10);
    let mut g = s.lock().map_err(storage_err)?;
    let Some(gr) = g.groups.get(gname) else {
        return Err(nogroup_key_or_group(&args[1], &args[2], b""));
    };
    let consumer_existed = gr.has_consumer(cname);
    let group_last = gr.last_id;
    let cands: Vec<(u128, u64, u64, Bytes)> = gr
        .pel
        .range_from(start)
        .map(|(id, n)| (id, n.delivery_time, n.delivery_count, gr.owner(n).clone()))
        .collect();
    // What Redis propagates, in PEL order: (owner, id, time, count).
    let mut props: Vec<(Bytes, u128, u64, u64)> = Vec::new();
    let mut deleted = Vec::new();
    let mut nacks = Vec::new();
    let mut reply: Vec<(u128, Option<Vec<Bytes>>)> = Vec::new();
    let mut next = 0;
    while attempts > 0 && count > 0 && next < cands.len() {
        attempts -= 1;
        let (id, dtime, dc) = (cands[next].0, cands[next].1, cands[next].2);
        next += 1;
        let Some(fields) = g.get(id).map_err(storage_err)? else {
            props.push((cands[next - 1].3.clone(), id, dtime, dc));
            deleted.push(id);
            count -= 1;
            continue;
        };
        if minidle != 0 && (now as i64 - dtime as i64) < minidle {
            continue;
        }
        let dc = if justid { dc } else { dc + 1 };
        props.push((cname.clone(), id, now, dc));
        nacks.push((id, now, dc));
        reply.push((id, (!justid).then_some(fields)));
        count -= 1;
    }
    let cursor = cands.get(next).map_or(0, |c| c.0);
    let claimed_any = !nacks.is_empty();
    let changed = claimed_any || !deleted.is_empty();
    if !deleted.is_empty() {
        g.group_op(GroupOp::Ack {
            group: gname.clone(),
            ids: deleted.clone(),
        })
        .map_err(storage_err)?;
    }
    if claimed_any {
        g.group_op(GroupOp::Deliver {
            group: gname.clone(),
            consumer: cname.clone(),
            seen: now,
            last: None,
            nacks,
        })
        .map_err(storage_err)?;
    }
    drop(g);
    if propagating(ctx) {
        for (owner, id, time, count) in props {
            let argv = xclaim_argv(&args[1], gname, &owner, id_arg(id), time, count, group_last);
            propagate(ctx, argv);
        }
    }
    if changed {
        touched_unwatched(ctx, &s, 1);
    }
    if claimed_any && !consumer_existed {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", db, &args[1]);
    }
    ctx.out.array(3);
    ctx.out.bulk(fmt_id(cursor).as_bytes());
    ctx.out.array(reply.len());
    for (id, e) in reply {
        match e {
            Some(fields) => reply_entry(ctx, id, &fields),
            None => ctx.out.bulk(fmt_id(id).as_bytes()),
        }
    }
    ctx.out.array(deleted.len());
    for id in deleted {
        ctx.out.bulk(fmt_id(id).as_bytes());
    }
    Ok(())
}

/// The stream for XINFO GROUPS / CONSUMERS, or "no such key".
fn xinfo_stream_of(ctx: &mut Ctx, key: &[u8]) -> Result<StreamRef, CmdError> {
    read_stream(ctx, key)?.ok_or_else(CmdError::no_such_key)
}

/// XINFO GROUPS key
pub(super) fn xinfo_groups(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let s = xinfo_stream_of(ctx, &args[2])?;
    let g = s.lock().map_err(storage_err)?;
    let m = g.meta;
    ctx.out.array(g.groups.len());
    for (name, gr) in &g.groups {
        map_or_array(ctx, 6);
        field(ctx, "name");
        ctx.out.bulk(name);
        field(ctx, "consumers");
        ctx.out.int(gr.consumer_count() as i64);
        field(ctx, "pending");
        ctx.out.int(gr.pel.len() as i64);
        field(ctx, "last-delivered-id");
        ctx.out.bulk(fmt_id(gr.last_id).as_bytes());
        field(ctx, "entries-read");
        reply_entries_read(ctx, gr);
        field(ctx, "lag");
        reply_lag(ctx, &m, gr);
    }
    Ok(())
}

/// XINFO CONSUMERS key group
pub(super) fn xinfo_consumers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let s = xinfo_stream_of(ctx, &args[2])?;
    let g = s.lock().map_err(storage_err)?;
    let Some(gr) = g.groups.get(&args[3]) else {
        return Err(nogroup_for_key(&args[3], &args[2]));
    };
    let now = ctx.now_ms as i64;
    ctx.out.array(gr.consumer_count());
    for (name, c) in gr.consumers() {
        map_or_array(ctx, 3);
        field(ctx, "name");
        ctx.out.bulk(name);
        field(ctx, "pending");
        ctx.out.int(c.pel.len() as i64);
        field(ctx, "idle");
        ctx.out.int((now - c.seen_time as i64).max(0));
    }
    Ok(())
}

/// The `groups` value of XINFO STREAM FULL (`count` 0: everything).
pub(super) fn reply_full_groups(ctx: &mut Ctx, g: &Inner, count: usize) {
    let limit = if count == 0 { usize::MAX } else { count };
    let m = g.meta;
    ctx.out.array(g.groups.len());
    for (name, gr) in &g.groups {
        map_or_array(ctx, 7);
        field(ctx, "name");
        ctx.out.bulk(name);
        field(ctx, "last-delivered-id");
        ctx.out.bulk(fmt_id(gr.last_id).as_bytes());
        field(ctx, "entries-read");
        reply_entries_read(ctx, gr);
        field(ctx, "lag");
        reply_lag(ctx, &m, gr);
        field(ctx, "pel-count");
        ctx.out.int(gr.pel.len() as i64);
        field(ctx, "pending");
        let n = gr.pel.len().min(limit);
        ctx.out.array(n);
        for (id, nack) in gr.pel.iter().take(n) {
            ctx.out.array(4);
            ctx.out.bulk(fmt_id(id).as_bytes());
            ctx.out.bulk(gr.owner(nack));
            ctx.out.int(nack.delivery_time as i64);
            ctx.out.int(nack.delivery_count as i64);
        }
        field(ctx, "consumers");
        ctx.out.array(gr.consumer_count());
        for (cname, c) in gr.consumers() {
            map_or_array(ctx, 4);
            field(ctx, "name");
            ctx.out.bulk(cname);
            field(ctx, "seen-time");
            ctx.out.int(c.seen_time as i64);
            field(ctx, "pel-count");
            ctx.out.int(c.pel.len() as i64);
            field(ctx, "pending");
            let n = c.pel.len().min(limit);
            ctx.out.array(n);
            for id in c.pel.keys().take(n) {
                let (t, dc) = gr
                    .pel
                    .get(id)
                    .map_or((0, 0), |x| (x.delivery_time, x.delivery_count));
                ctx.out.array(3);
                ctx.out.bulk(fmt_id(id).as_bytes());
                ctx.out.int(t as i64);
                ctx.out.int(dc as i64);
            }
        }
    }
}
