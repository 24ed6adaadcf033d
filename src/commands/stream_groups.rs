//! Consumer-group commands (Redis 7.0's t_stream.c): XGROUP, XREADGROUP,
//! XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO GROUPS / CONSUMERS and the
//! groups part of XINFO STREAM FULL.
//!
//! Every change of group state goes through `Inner::group_op`, which
//! writes it to the stream's op log (replayed at startup) before applying
//! it; times recorded are the command's clock (`ctx.now_ms`).

use super::streams::{
    field, interval_id, invalid_id, read_stream, reply_entry, storage_err, strict_id, touched,
    write_stream,
};
use super::{arg_i64, flags::*, is_opt, CmdError, CmdResult, Command, Ctx, Doc};
use crate::db::{notify, Value};
use crate::server::blocking::{self, Null, Unit};
use crate::stream::groups::{Group, GroupOp, INVALID_ENTRIES_READ};
use crate::stream::id::parse_id;
use crate::stream::{fmt_id, Inner, Meta, StreamRef};
use bytes::Bytes;

#[allow(clippy::too_many_arguments)]
const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static [&'static str],
    summary: &'static str,
    since: &'static str,
    complexity: &'static str,
    handler: super::Handler,
) -> Command {
    Command {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        acl,
        doc: Doc {
            summary,
            since,
            group: "stream",
            complexity,
        },
        handler: Some(handler),
        subcommands: &[],
    }
}

const GKEY: (i32, i32, i32) = (2, 2, 1);
const WSS: &[&str] = &["@write", "@stream", "@slow"];

static XGROUP_SUBCOMMANDS: &[Command] = &[
    cmd(
        "create",
        -5,
        WRITE | DENYOOM,
        GKEY,
        WSS,
        "Create a consumer group.",
        "5.0.0",
        "O(1)",
        xgroup,
    ),
    cmd(
        "createconsumer",
        5,
        WRITE | DENYOOM,
        GKEY,
        WSS,
        "Create a consumer in a consumer group.",
        "6.2.0",
        "O(1)",
        xgroup,
    ),
    cmd(
        "delconsumer",
        5,
        WRITE,
        GKEY,
        WSS,
        "Delete a consumer from a consumer group.",
        "5.0.0",
        "O(1)",
        xgroup,
    ),
    cmd(
        "destroy",
        4,
        WRITE,
        GKEY,
        WSS,
        "Destroy a consumer group.",
        "5.0.0",
        "O(N) where N is the number of entries in the group's pending entries list (PEL).",
        xgroup,
    ),
    cmd(
        "setid",
        -5,
        WRITE,
        GKEY,
        WSS,
        "Set a consumer group to an arbitrary last delivered ID value.",
        "5.0.0",
        "O(1)",
        xgroup,
    ),
    cmd(
        "help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        &["@stream", "@slow"],
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
        xgroup_help,
    ),
];

/// XINFO subcommands of this module (STREAM is in `streams`).
pub const XINFO_GROUPS: Command = cmd(
    "groups",
    3,
    READONLY,
    GKEY,
    &["@read", "@stream", "@slow"],
    "List the consumer groups of a stream",
    "5.0.0",
    "O(1)",
    xinfo_groups,
);
pub const XINFO_CONSUMERS: Command = cmd(
    "consumers",
    4,
    READONLY,
    GKEY,
    &["@read", "@stream", "@slow"],
    "List the consumers in a consumer group",
    "5.0.0",
    "O(1)",
    xinfo_consumers,
);
pub const XINFO_HELP: Command = cmd(
    "help",
    2,
    LOADING | STALE,
    (0, 0, 0),
    &["@stream", "@slow"],
    "Show helpful text about the different subcommands",
    "5.0.0",
    "O(1)",
    xinfo_help,
);

pub static COMMANDS: &[Command] = &[
    Command {
        name: "xgroup",
        arity: -2,
        flags: 0,
        acl: &["@slow"],
        doc: Doc {
            summary: "A container for consumer groups commands",
            since: "5.0.0",
            group: "stream",
            complexity: "Depends on subcommand.",
        },
        subcommands: XGROUP_SUBCOMMANDS,
        ..Command::DEFAULT
    },
    cmd("xreadgroup", -7, WRITE | BLOCKING | MOVABLE_KEYS, (0, 0, 0), &["@write", "@stream", "@slow", "@blocking"], "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", "5.0.0", "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.", xreadgroup),
    cmd("xack", -4, WRITE | FAST, (1, 1, 1), &["@write", "@stream", "@fast"], "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", "5.0.0", "O(1) for each message ID processed.", xack),
    cmd("xpending", -3, READONLY, (1, 1, 1), &["@read", "@stream", "@slow"], "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", "5.0.0", "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.", xpending),
    cmd("xclaim", -6, WRITE | FAST, (1, 1, 1), &["@write", "@stream", "@fast"], "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", "5.0.0", "O(log N) with N being the number of messages in the PEL of the consumer group.", xclaim),
    cmd("xautoclaim", -6, WRITE | FAST, (1, 1, 1), &["@write", "@stream", "@fast"], "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", "6.2.0", "O(1) if COUNT is small.", xautoclaim),
];

/// Error text pieces are printed as Redis's `%s`: up to the first NUL.
fn cstr(a: &[u8]) -> &[u8] {
    &a[..a.iter().position(|&b| b == 0).unwrap_or(a.len())]
}

fn err_parts(parts: &[&[u8]]) -> CmdError {
    CmdError::from_bytes(parts.concat())
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> CmdError {
    err_parts(&[
        b"NOGROUP No such consumer group '",
        cstr(group),
        b"' for key name '",
        cstr(key),
        b"'",
    ])
}

fn nogroup_key_or_group(key: &[u8], group: &[u8], suffix: &[u8]) -> CmdError {
    err_parts(&[
        b"NOGROUP No such key '",
        cstr(key),
        b"' or consumer group '",
        cstr(group),
        b"'",
        suffix,
    ])
}

fn sub_syntax(args: &[Bytes], container: &str) -> CmdError {
    let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    m.extend_from_slice(&args[1][..args[1].len().min(128)]);
    m.extend_from_slice(format!("'. Try {container} HELP.").as_bytes());
    CmdError::from_bytes(m)
}

/// Redis's `streamRangeHasTombstones(s, start, NULL)`.
fn has_tombstones_from(m: &Meta, start: u128) -> bool {
    if m.length == 0 || m.max_deleted == 0 || m.first > m.max_deleted {
        return false;
    }
    start <= m.max_deleted
}

/// Redis's `streamEstimateDistanceFromFirstEverEntry`.
fn estimate_distance(m: &Meta, id: u128) -> i64 {
    if m.entries_added == 0 {
        return 0;
    }
    if m.length == 0 && id <= m.last_id {
        return m.entries_added as i64;
    }
    if id == m.last_id {
        return m.entries_added as i64;
    } else if id > m.last_id {
        return INVALID_ENTRIES_READ;
    }
    if m.max_deleted == 0 || m.max_deleted < m.first {
        if id < m.first {
            return (m.entries_added - m.length) as i64;
        } else if id == m.first {
            return (m.entries_added - m.length + 1) as i64;
        }
    }
    INVALID_ENTRIES_READ
}

/// Redis's `streamReplyWithCGLag`.
fn reply_lag(ctx: &mut Ctx, m: &Meta, g: &Group) {
    let lag = if m.entries_added == 0 {
        Some(0)
    } else if g.entries_read != INVALID_ENTRIES_READ && !has_tombstones_from(m, g.last_id) {
        Some(m.entries_added as i64 - g.entries_read)
    } else {
        let er = estimate_distance(m, g.last_id);
        (er != INVALID_ENTRIES_READ).then(|| m.entries_added as i64 - er)
    };
    match lag {
        Some(l) => ctx.out.int(l),
        None => ctx.out.null(),
    }
}

fn reply_entries_read(ctx: &mut Ctx, g: &Group) {
    if g.entries_read != INVALID_ENTRIES_READ {
        ctx.out.int(g.entries_read);
    } else {
        ctx.out.null();
    }
}

fn map_or_array(ctx: &mut Ctx, pairs: usize) {
    if ctx.out.resp3 {
        ctx.out.map(pairs);
    } else {
        ctx.out.array(pairs * 2);
    }
}

/// XGROUP HELP
fn xgroup_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::connection::help_reply(
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

/// XINFO HELP
fn xinfo_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::connection::help_reply(
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
        touched(ctx, key, &s, 1);
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
        touched(ctx, key, &s, 1);
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
            touched(ctx, key, &s, 1);
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
                .is_some_and(|gr| gr.consumers.contains_key(&args[4]));
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
            touched(ctx, key, &s, 1);
            ctx.notify(notify::STREAM, "xgroup-createconsumer", db, key);
        }
    } else if is("delconsumer") && args.len() == 5 {
        let pending = {
            let mut g = s.lock().map_err(storage_err)?;
            let pending = g
                .groups
                .get(gname)
                .and_then(|gr| gr.consumers.get(&args[4]))
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
            touched(ctx, key, &s, 1);
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
) -> Result<Option<Served>, String> {
    let Some(gr) = g.groups.get(group) else {
        return Ok(None);
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let mut out = Vec::new();
    let mut nacks = Vec::new();
    let mut last = None;
    match history {
        Some(after) => {
            let ids: Vec<(u128, u64)> = match gr.consumers.get(consumer) {
                Some(c) => c
                    .pel
                    // streamIncrID wraps the last possible id to 0-0.
                    .range(after.checked_add(1).unwrap_or(0)..)
                    .take(limit)
                    .map(|id| (*id, gr.pel.get(id).map_or(0, |n| n.delivery_count)))
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
    let mut count: i64 = 0;
    let mut block: Option<u64> = None;
    let mut noack = false;
    let mut streams_arg = 0;
    let mut group: Option<(Bytes, Bytes)> = None;
    let mut i = 1;
    while i < args.len() {
        let moreargs = args.len() - i - 1;
        let o = &args[i];
        if is_opt(o, "block") && moreargs > 0 {
            i += 1;
            block = Some(blocking::parse_timeout(&args[i], Unit::Millis, ctx.now_ms)?);
        } else if is_opt(o, "count") && moreargs > 0 {
            i += 1;
            count = arg_i64(&args[i])?.max(0);
        } else if is_opt(o, "streams") && moreargs > 0 {
            streams_arg = i + 1;
            if !(args.len() - streams_arg).is_multiple_of(2) {
                return Err(CmdError::new(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if is_opt(o, "group") && moreargs >= 2 {
            group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is_opt(o, "noack") {
            noack = true;
        } else {
            return Err(CmdError::syntax());
        }
        i += 1;
    }
    if streams_arg == 0 {
        return Err(CmdError::syntax());
    }
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
        let (created, res) = {
            let mut g = s.lock().map_err(storage_err)?;
            let absent = g
                .groups
                .get(&gname)
                .is_some_and(|gr| !gr.consumers.contains_key(&cname));
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
            (res.is_some() && absent, res)
        };
        if created {
            ctx.notify(notify::STREAM, "xgroup-createconsumer", db, key);
        }
        if res.is_some() {
            touched(ctx, key, s, created as u64 + 1);
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
            if gr.pel.contains_key(&id) && !acked.contains(&id) {
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
        touched(ctx, &args[1], &s, acked as u64);
    }
    ctx.out.int(acked as i64);
    Ok(())
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
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
        match (gr.pel.keys().next(), gr.pel.keys().next_back()) {
            (Some(first), Some(last)) => {
                ctx.out.bulk(fmt_id(*first).as_bytes());
                ctx.out.bulk(fmt_id(*last).as_bytes());
                let with: Vec<_> = gr
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .collect();
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
        Some(c) => match gr.consumers.get(c) {
            Some(c) => c.pel.range(start..).copied().collect(),
            None => {
                ctx.out.array(0);
                return Ok(());
            }
        },
        None => gr.pel.range(start..).map(|(k, _)| *k).collect(),
    };
    let mut rows = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let Some(n) = gr.pel.get(&id) else { continue };
        let idle = now - n.delivery_time as i64;
        if minidle != 0 && idle < minidle {
            continue;
        }
        count -= 1;
        rows.push((id, n.consumer.clone(), idle.max(0), n.delivery_count));
    }
    ctx.out.array(rows.len());
    for (id, c, idle, dc) in rows {
        ctx.out.array(4);
        ctx.out.bulk(fmt_id(id).as_bytes());
        ctx.out.bulk(&c);
        ctx.out.int(idle);
        ctx.out.int(dc as i64);
    }
    Ok(())
}

/// For a blocked XREADGROUP (`args`) waiting on `key`: the error that
/// ends its wait because the key is gone or is no longer a stream, or
/// its group was destroyed (Redis 7.0's texts); None otherwise.
pub fn blocked_group_gone(
    ks: &crate::db::Keyspace,
    db: usize,
    key: &[u8],
    args: &[Bytes],
) -> Option<&'static str> {
    if !args.first()?.eq_ignore_ascii_case(b"xreadgroup") {
        return None;
    }
    let s = match ks.dbs[db].peek(key).map(|e| &e.value) {
        Some(Value::Stream(s)) => s.clone(),
        _ => return Some("UNBLOCKED the stream key no longer exists"),
    };
    let gi = args.iter().position(|a| is_opt(a, "group"))?;
    let group = args.get(gi + 1)?;
    let has = s.lock().ok()?.groups.contains_key(group);
    (!has).then_some("NOGROUP the consumer group this client was blocked on no longer exists")
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
fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(s) = stream_with_group(ctx, args)? else {
        return Err(nogroup_key_or_group(&args[1], &args[2], b""));
    };
    let minidle = int_or(&args[4], "ERR Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < args.len() {
        match parse_id(&args[j], true, 0, false) {
            Some(p) => ids.push(p.id),
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
                cstr(o),
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
    if last_id > gr.last_id {
        ops.push(GroupOp::SetId {
            group: gname.clone(),
            last_id,
            entries_read: gr.entries_read,
        });
    }
    let consumer_existed = gr.consumers.contains_key(cname);
    // The state as it evolves over the ids (duplicates see earlier claims).
    let mut pel: std::collections::BTreeMap<u128, (Bytes, u64)> = std::collections::BTreeMap::new();
    let mut gone = Vec::new();
    let mut nacks: Vec<(u128, u64, u64)> = Vec::new();
    let mut reply: Vec<(u128, Option<Vec<Bytes>>)> = Vec::new();
    for id in ids {
        let cur = match pel.get(&id) {
            Some((c, dc)) => Some((c.clone(), *dc, deliverytime as u64)),
            None if gone.contains(&id) => None,
            None => gr
                .pel
                .get(&id)
                .map(|n| (n.consumer.clone(), n.delivery_count, n.delivery_time)),
        };
        let entry = g.get(id).map_err(storage_err)?;
        let Some(fields) = entry else {
            if cur.is_some() {
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
    for op in ops {
        g.group_op(op).map_err(storage_err)?;
    }
    drop(g);
    if changed {
        touched(ctx, &args[1], &s, 1);
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
fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
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
    let consumer_existed = gr.consumers.contains_key(cname);
    let cands: Vec<(u128, u64, u64)> = gr
        .pel
        .range(start..)
        .map(|(id, n)| (*id, n.delivery_time, n.delivery_count))
        .collect();
    let mut deleted = Vec::new();
    let mut nacks = Vec::new();
    let mut reply: Vec<(u128, Option<Vec<Bytes>>)> = Vec::new();
    let mut next = 0;
    while attempts > 0 && count > 0 && next < cands.len() {
        attempts -= 1;
        let (id, dtime, dc) = cands[next];
        next += 1;
        let Some(fields) = g.get(id).map_err(storage_err)? else {
            deleted.push(id);
            count -= 1;
            continue;
        };
        if minidle != 0 && (now as i64 - dtime as i64) < minidle {
            continue;
        }
        let dc = if justid { dc } else { dc + 1 };
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
    if changed {
        touched(ctx, &args[1], &s, 1);
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
fn xinfo_groups(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let s = xinfo_stream_of(ctx, &args[2])?;
    let g = s.lock().map_err(storage_err)?;
    let m = g.meta;
    ctx.out.array(g.groups.len());
    for (name, gr) in &g.groups {
        map_or_array(ctx, 6);
        field(ctx, "name");
        ctx.out.bulk(name);
        field(ctx, "consumers");
        ctx.out.int(gr.consumers.len() as i64);
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
fn xinfo_consumers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let s = xinfo_stream_of(ctx, &args[2])?;
    let g = s.lock().map_err(storage_err)?;
    let Some(gr) = g.groups.get(&args[3]) else {
        return Err(nogroup_for_key(&args[3], &args[2]));
    };
    let now = ctx.now_ms as i64;
    ctx.out.array(gr.consumers.len());
    for (name, c) in &gr.consumers {
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
            ctx.out.bulk(fmt_id(*id).as_bytes());
            ctx.out.bulk(&nack.consumer);
            ctx.out.int(nack.delivery_time as i64);
            ctx.out.int(nack.delivery_count as i64);
        }
        field(ctx, "consumers");
        ctx.out.array(gr.consumers.len());
        for (cname, c) in &gr.consumers {
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
            for id in c.pel.iter().take(n) {
                let (t, dc) = gr
                    .pel
                    .get(id)
                    .map_or((0, 0), |x| (x.delivery_time, x.delivery_count));
                ctx.out.array(3);
                ctx.out.bulk(fmt_id(*id).as_bytes());
                ctx.out.int(t as i64);
                ctx.out.int(dc as i64);
            }
        }
    }
}
