//! Consumer-group commands (Redis 7.0's t_stream.c): XGROUP, XREADGROUP
//! (with BLOCK) and XACK, and the command table of the family (with
//! `stream_pending`'s XPENDING, XCLAIM, XAUTOCLAIM). Helpers shared with
//! `stream_pending` and `streams` are in `stream_common`.
//!
//! Every change of group state goes through `Inner::group_op`, which
//! writes it to the stream's op log (replayed at startup) before applying
//! it; times recorded are the command's clock (`ctx.now_ms`).

use super::blocking::{self, Null};
use super::stream_common::{
    createconsumer_argv, estimate_distance, has_tombstones_from, id_arg, invalid_id,
    nogroup_for_key, nogroup_key_or_group, propagate, propagating, read_stream, reply_entry,
    setid_argv, storage_err, strict_id, touched_unwatched, write_stream, xclaim_argv,
};
use super::stream_pending::{xautoclaim, xclaim, xpending};
use super::streams::{parse_xread_args, XreadArgs};
use super::{arg_i64, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::db::{notify, Value};
use crate::stream::groups::{GroupOp, INVALID_ENTRIES_READ};
use crate::stream::id::parse_id;
use crate::stream::{fmt_id, Inner, StreamRef};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("xgroup|create", xgroup),
    ("xgroup|createconsumer", xgroup),
    ("xgroup|delconsumer", xgroup),
    ("xgroup|destroy", xgroup),
    ("xgroup|setid", xgroup),
    ("xgroup|help", xgroup_help),
    ("xreadgroup", xreadgroup),
    ("xack", xack),
    ("xpending", xpending),
    ("xclaim", xclaim),
    ("xautoclaim", xautoclaim),
];

fn sub_syntax(args: &[Bytes], container: &str) -> CmdError {
    let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    m.extend_from_slice(&args[1][..args[1].len().min(128)]);
    m.extend_from_slice(format!("'. Try {container} HELP.").as_bytes());
    CmdError::from_bytes(m)
}

/// XGROUP HELP
fn xgroup_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

/// XGROUP CREATE key group <id | $> [MKSTREAM] [ENTRIESREAD entries-read]
/// XGROUP SETID key group <id | $> [ENTRIESREAD entries-read]
/// XGROUP DESTROY key group
/// XGROUP CREATECONSUMER key group consumer
/// XGROUP DELCONSUMER key group consumer
fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let opt = &args[1];
    let is = |k: &str| opt.eq_ignore_ascii_case(k.as_bytes());
    let (create, setid) = (is("create"), is("setid"));
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    if (create || setid) && args.len() > 5 {
        let mut i = 5;
        while i < args.len() {
            if create && is_opt(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if is_opt(&args[i], "entriesread") && i + 1 < args.len() {
                entries_read = arg_i64(&args[i + 1])?;
                if entries_read < 0 && entries_read != INVALID_ENTRIES_READ {
                    return Err(CmdError::new(
                        "ERR value for ENTRIESREAD must be positive or -1",
                    ));
                }
                i += 2;
            } else {
                return Err(sub_syntax(args, "XGROUP"));
            }
        }
    }
    let key = &args[2];
    let gname = &args[3];
    let db = ctx.db();
    let s = write_stream(ctx, key)?;
    if !mkstream && s.is_none() {
        return Err(CmdError::new(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        ));
    }
    let exists = match &s {
        Some(s) => s.lock().map_err(storage_err)?.groups.contains_key(gname),
        None => false,
    };
    if !exists && (setid || is("createconsumer") || is("delconsumer")) {
        return Err(nogroup_for_key(gname, key));
    }
    if create && (5..=8).contains(&args.len()) {
        let id = if args[4].as_ref() == b"$" {
            s.as_ref().and_then(|s| s.meta()).map_or(0, |m| m.last_id)
        } else {
            strict_id(&args[4], false)?.id
        };
        let (s, created) = match s {
            Some(s) => (s, false),
            None => (ctx.shared.streams.create().map_err(storage_err)?, true),
        };
        if created {
            let e = ctx.ks.entry(Value::Stream(s.clone()), 0);
            ctx.ks.dbs[db].insert(key.clone(), e);
            ctx.ks.dbs[db].signal_watchers_only(key);
            ctx.ks.stream_written(&s);
        }
        if exists {
            return Err(CmdError::new(
                "BUSYGROUP Consumer Group name already exists",
            ));
        }
        s.lock()
            .map_err(storage_err)?
            .group_op(GroupOp::Create {
                group: gname.clone(),
                last_id: id,
                entries_read,
            })
            .map_err(storage_err)?;
        ctx.out.ok();
        propagate(ctx, args.to_vec());
        touched_unwatched(ctx, &s, 1);
        ctx.notify(notify::STREAM, "xgroup-create", db, key);
        return Ok(());
    }
    let Some(s) = s else {
        return Err(sub_syntax(args, "XGROUP"));
    };
    if setid && (args.len() == 5 || args.len() == 7) {
        let id = if args[4].as_ref() == b"$" {
            s.meta().map_or(0, |m| m.last_id)
        } else {
            parse_id(&args[4], false, 0, false)
                .ok_or_else(invalid_id)?
                .id
        };
        s.lock()
            .map_err(storage_err)?
            .group_op(GroupOp::SetId {
                group: gname.clone(),
                last_id: id,
                entries_read,
            })
            .map_err(storage_err)?;
        ctx.out.ok();
        propagate(ctx, args.to_vec());
        touched_unwatched(ctx, &s, 1);
        ctx.notify(notify::STREAM, "xgroup-setid", db, key);
    } else if is("destroy") && args.len() == 4 {
        if exists {
            s.lock()
                .map_err(storage_err)?
                .group_op(GroupOp::Destroy {
                    group: gname.clone(),
                })
                .map_err(storage_err)?;
            ctx.out.int(1);
            propagate(ctx, args.to_vec());
            touched_unwatched(ctx, &s, 1);
            ctx.notify(notify::STREAM, "xgroup-destroy", db, key);
            // Blocked XREADGROUP clients of the group get NOGROUP.
            ctx.ks.signal_key_ready(db, key);
        } else {
            ctx.out.int(0);
        }
    } else if is("createconsumer") && args.len() == 5 {
        let created = {
            let mut g = s.lock().map_err(storage_err)?;
            let present = g
                .groups
                .get(gname)
                .is_some_and(|gr| gr.has_consumer(&args[4]));
            if !present {
                g.group_op(GroupOp::Consumer {
                    group: gname.clone(),
                    consumer: args[4].clone(),
                    seen: ctx.now_ms,
                })
                .map_err(storage_err)?;
            }
            !present
        };
        ctx.out.int(created as i64);
        if created {
            propagate(ctx, args.to_vec());
            touched_unwatched(ctx, &s, 1);
            ctx.notify(notify::STREAM, "xgroup-createconsumer", db, key);
        }
    } else if is("delconsumer") && args.len() == 5 {
        let pending = {
            let mut g = s.lock().map_err(storage_err)?;
            let pending = g
                .groups
                .get(gname)
                .and_then(|gr| gr.consumer(&args[4]))
                .map(|c| c.pel.len());
            if pending.is_some() {
                g.group_op(GroupOp::DelConsumer {
                    group: gname.clone(),
                    consumer: args[4].clone(),
                })
                .map_err(storage_err)?;
            }
            pending
        };
        ctx.out.int(pending.unwrap_or(0) as i64);
        if pending.is_some() {
            propagate(ctx, args.to_vec());
            touched_unwatched(ctx, &s, 1);
            ctx.notify(notify::STREAM, "xgroup-delconsumer", db, key);
        }
    } else {
        return Err(sub_syntax(args, "XGROUP"));
    }
    Ok(())
}

/// What one stream gave an XREADGROUP: entries (None: deleted entry in
/// the consumer's history).
pub(super) type Served = Vec<(u128, Option<Vec<Bytes>>)>;

/// Serves one stream of an XREADGROUP (Redis's `streamReplyWithRange` with
/// a group, or `streamReplyWithRangeFromConsumerPEL` for history): writes
/// the group op and returns the entries. `history` is the id after which
/// the consumer's PEL is read, None for `>`. Returns None when `>` has
/// nothing to serve (the stream is not part of the reply).
pub(super) fn serve_group(
    g: &mut Inner,
    group: &Bytes,
    consumer: &Bytes,
    history: Option<u128>,
    count: usize,
    noack: bool,
    now: u64,
) -> Result<Option<Served>, crate::stream::StreamError> {
    let Some(gr) = g.groups.get(group) else {
        return Ok(None);
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let mut out = Vec::new();
    let mut nacks = Vec::new();
    let mut last = None;
    match history {
        Some(after) => {
            let ids: Vec<(u128, u64)> = match gr.consumer(consumer) {
                Some(c) => c
                    .pel
                    // streamIncrID wraps the last possible id to 0-0.
                    .range_from(after.checked_add(1).unwrap_or(0))
                    .take(limit)
                    .map(|(id, _)| (id, gr.pel.get(id).map_or(0, |n| n.delivery_count)))
                    .collect(),
                None => Vec::new(),
            };
            for (id, dc) in ids {
                let e = g.get(id)?;
                if e.is_some() {
                    nacks.push((id, now, dc + 1));
                }
                out.push((id, e));
            }
        }
        None => {
            let m = g.meta;
            if m.length == 0 || g.last_live()? <= gr.last_id {
                // Not served: Redis does not even look the consumer up.
                return Ok(None);
            }
            let (mut last_id, mut er) = (gr.last_id, gr.entries_read);
            let entries = g.range(gr.last_id.saturating_add(1), u128::MAX, limit, false)?;
            for (id, fields) in entries {
                if id > last_id {
                    if er != INVALID_ENTRIES_READ && !has_tombstones_from(&m, id) {
                        er += 1;
                    } else if m.entries_added > 0 {
                        er = estimate_distance(&m, id);
                    }
                    last_id = id;
                }
                if !noack {
                    nacks.push((id, now, 1));
                }
                out.push((id, Some(fields)));
            }
            last = Some((last_id, er));
        }
    }
    g.group_op(GroupOp::Deliver {
        group: group.clone(),
        consumer: consumer.clone(),
        seen: now,
        last,
        nacks,
    })?;
    Ok(Some(out))
}

/// What Redis 7.0 propagates for one stream an XREADGROUP served: a
/// consumer it created with NOACK as XGROUP CREATECONSUMER; for `>`, an
/// XCLAIM per delivered entry (its PEL entry: time, count 1, the entry as
/// the group's last id), or with NOACK the group's new last id as XGROUP
/// SETID. A history read propagates nothing else (Redis does not
/// propagate its delivery count and time updates).
#[allow(clippy::too_many_arguments)]
fn propagate_delivery(
    ctx: &mut Ctx,
    key: &Bytes,
    group: &Bytes,
    consumer: &Bytes,
    served: &Served,
    history: Option<u128>,
    noack: bool,
    created: bool,
    group_last: Option<(u128, i64)>,
) {
    if created && noack {
        propagate(ctx, createconsumer_argv(key, group, consumer));
    }
    if history.is_some() || served.is_empty() {
        return;
    }
    if noack {
        if let Some((last, er)) = group_last {
            propagate(ctx, setid_argv(key, group, last, er));
        }
        return;
    }
    let now = ctx.now_ms;
    for (id, _) in served {
        let argv = xclaim_argv(key, group, consumer, id_arg(*id), now, 1, *id);
        propagate(ctx, argv);
    }
}

/// Writes one stream's part of an XREAD / XREADGROUP reply.
pub(super) fn reply_served(ctx: &mut Ctx, key: &[u8], served: &Served) {
    if !ctx.out.resp3 {
        ctx.out.array(2);
    }
    ctx.out.bulk(key);
    ctx.out.array(served.len());
    for (id, e) in served {
        match e {
            Some(fields) => reply_entry(ctx, *id, fields),
            None => {
                ctx.out.array(2);
                ctx.out.bulk(fmt_id(*id).as_bytes());
                ctx.out.null_array();
            }
        }
    }
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds]
///   [NOACK] STREAMS key [key ...] id [id ...]
///
/// With BLOCK and nothing to serve it blocks (`server::blocking`): it is
/// re-run when a key is ready, so `>` is resolved against the group then
/// and COUNT applies; a deleted key, a key of another type or a
/// destroyed group ends the wait with Redis's errors
/// (`blocked_group_gone`).
fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let XreadArgs {
        count,
        block,
        noack,
        streams_arg,
        group,
    } = parse_xread_args(args, true, ctx.now_ms, ctx.client.in_script)?;
    let Some((gname, cname)) = group else {
        return Err(CmdError::new("ERR Missing GROUP option for XREADGROUP"));
    };
    let n = (args.len() - streams_arg) / 2;
    let mut plan: Vec<(StreamRef, Option<u128>)> = Vec::with_capacity(n);
    for k in 0..n {
        let key = &args[streams_arg + k];
        let id_arg = &args[streams_arg + n + k];
        let s = read_stream(ctx, key)?;
        let s = match s {
            Some(s) if s.lock().map_err(storage_err)?.groups.contains_key(&gname) => s,
            _ => {
                return Err(nogroup_key_or_group(
                    key,
                    &gname,
                    b" in XREADGROUP with GROUP option",
                ))
            }
        };
        let history = if id_arg.as_ref() == b"$" {
            return Err(CmdError::new(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            ));
        } else if id_arg.as_ref() == b">" {
            None
        } else {
            Some(strict_id(id_arg, false)?.id)
        };
        plan.push((s, history));
    }
    let db = ctx.db();
    let mut served: Vec<(usize, Served)> = Vec::new();
    for (k, (s, history)) in plan.iter().enumerate() {
        let key = &args[streams_arg + k];
        let (created, res, group_last) = {
            let mut g = s.lock().map_err(storage_err)?;
            let absent = g
                .groups
                .get(&gname)
                .is_some_and(|gr| !gr.has_consumer(&cname));
            let res = serve_group(
                &mut g,
                &gname,
                &cname,
                *history,
                count as usize,
                noack,
                ctx.now_ms,
            )
            .map_err(storage_err)?;
            let last = g.groups.get(&gname).map(|gr| (gr.last_id, gr.entries_read));
            (res.is_some() && absent, res, last)
        };
        if created {
            ctx.notify(notify::STREAM, "xgroup-createconsumer", db, key);
        }
        if res.is_some() {
            touched_unwatched(ctx, s, created as u64 + 1);
        }
        if let (Some(r), true) = (&res, propagating(ctx)) {
            let key = key.clone();
            propagate_delivery(
                ctx, &key, &gname, &cname, r, *history, noack, created, group_last,
            );
        }
        if let Some(r) = res {
            served.push((k, r));
        }
    }
    if served.is_empty() {
        match block {
            Some(deadline) if !blocking::denied(ctx) => {
                let keys = args[streams_arg..streams_arg + n].to_vec();
                blocking::block(ctx, args, keys, deadline, "stream", Null::Array);
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
    for (k, r) in &served {
        reply_served(ctx, &args[streams_arg + k], r);
    }
    Ok(())
}

/// XACK key group id [id ...]
fn xack(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let s = read_stream(ctx, &args[1])?;
    let Some(s) = s else {
        ctx.out.int(0);
        return Ok(());
    };
    if !s.lock().map_err(storage_err)?.groups.contains_key(&args[2]) {
        ctx.out.int(0);
        return Ok(());
    }
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        ids.push(strict_id(a, false)?.id);
    }
    let acked = {
        let mut g = s.lock().map_err(storage_err)?;
        let gr = g.groups.get(&args[2]).ok_or_else(invalid_id)?;
        let mut acked: Vec<u128> = Vec::new();
        for id in ids {
            if gr.pel.contains_key(id) && !acked.contains(&id) {
                acked.push(id);
            }
        }
        if !acked.is_empty() {
            g.group_op(GroupOp::Ack {
                group: args[2].clone(),
                ids: acked.clone(),
            })
            .map_err(storage_err)?;
        }
        acked.len()
    };
    if acked > 0 {
        propagate(ctx, args.to_vec());
        touched_unwatched(ctx, &s, acked as u64);
    }
    ctx.out.int(acked as i64);
    Ok(())
}
