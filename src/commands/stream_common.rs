//! Helpers shared by the stream command families (`streams`,
//! `stream_groups`, `stream_pending`, and the log commands `logingest` /
//! `logquery`): stream id arguments, looking up a stream for reading or
//! writing, recording a change, the entry and consumer-group reply
//! pieces, NOGROUP errors and the group commands' table builder. They live
//! here so that each family imports the others in one direction only.

use super::{CmdError, Ctx};
use crate::db::Value;
use crate::stream::groups::{Group, INVALID_ENTRIES_READ};
use crate::stream::id::{parse_id, ParsedId};
use crate::stream::{id_ms, id_seq, make_id, Meta, StreamRef};
use bytes::Bytes;

/// An entry as read: id and flattened field-value pairs.
pub(super) type StreamEntry = (u128, Vec<Bytes>);

pub(super) fn invalid_id() -> CmdError {
    CmdError::new("ERR Invalid stream ID specified as stream command argument")
}

pub(super) fn storage_err(e: impl std::fmt::Display) -> CmdError {
    CmdError::new(format!("ERR {e}"))
}

/// `streamParseStrictIDOrReply`.
pub(super) fn strict_id(a: &[u8], allow_star_seq: bool) -> Result<ParsedId, CmdError> {
    parse_id(a, true, 0, allow_star_seq).ok_or_else(invalid_id)
}

/// The stream at `key` for reading (hit/miss counted), or WRONGTYPE.
pub(super) fn read_stream(ctx: &mut Ctx, key: &[u8]) -> Result<Option<StreamRef>, CmdError> {
    let (db, now, touch) = (ctx.db(), ctx.now_ms, !ctx.client.no_touch);
    match ctx.ks.lookup(db, key, now, touch) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Stream(s) => Ok(Some(s.clone())),
            _ => Err(CmdError::wrong_type()),
        },
    }
}

/// The stream at `key` for writing, or WRONGTYPE.
pub(super) fn write_stream(ctx: &mut Ctx, key: &[u8]) -> Result<Option<StreamRef>, CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    match ctx.ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Stream(s) => Ok(Some(s.clone())),
            _ => Err(CmdError::wrong_type()),
        },
    }
}

/// Records a change of the stream at `key`: WATCH signal, dirty count,
/// and the logs to sync. The WAL gets nothing: the stream's own logs hold
/// the change, and the key -> stream mapping did not change.
pub(super) fn touched(ctx: &mut Ctx, key: &[u8], s: &StreamRef, dirty: u64) {
    let db = ctx.db();
    ctx.ks.dbs[db].signal_watchers_only(key);
    touched_unwatched(ctx, s, dirty);
}

/// A change of the stream's groups, PEL or last id that Redis 7.0 does not
/// signal to WATCH (no `signalModifiedKey` in XGROUP, XREADGROUP, XACK,
/// XCLAIM, XAUTOCLAIM, XSETID): dirty count and the logs to sync only.
pub(super) fn touched_unwatched(ctx: &mut Ctx, s: &StreamRef, dirty: u64) {
    ctx.ks.stats.dirty += dirty;
    ctx.ks.stream_written(s);
}

/// Redis's `streamNextID`: the id `*` generates.
pub(super) fn next_auto_id(last: u128, now_ms: u64) -> Option<u128> {
    let (ms, seq) = (id_ms(last), id_seq(last));
    if now_ms > ms {
        return Some(make_id(now_ms, 0));
    }
    if seq == u64::MAX {
        if ms == u64::MAX {
            return None;
        }
        return Some(make_id(ms + 1, 0));
    }
    Some(make_id(ms, seq + 1))
}

/// `streamParseIntervalIDOrReply`: `(` makes the bound exclusive.
pub(super) fn interval_id(a: &[u8], missing_seq: u64) -> Result<(u128, bool), CmdError> {
    if a.len() > 1 && a[0] == b'(' {
        let p = parse_id(&a[1..], true, missing_seq, false).ok_or_else(invalid_id)?;
        return Ok((p.id, true));
    }
    let p = parse_id(a, false, missing_seq, false).ok_or_else(invalid_id)?;
    Ok((p.id, false))
}

/// Writes entries as Redis's `streamReplyWithRange` does.
pub(super) fn reply_entries(ctx: &mut Ctx, entries: &[(u128, Vec<Bytes>)]) {
    ctx.out.array(entries.len());
    for (id, fields) in entries {
        reply_entry(ctx, *id, fields);
    }
}

pub(super) fn reply_entry(ctx: &mut Ctx, id: u128, fields: &[Bytes]) {
    ctx.out.array(2);
    bulk_id(ctx.out, id);
    ctx.out.array(fields.len());
    for f in fields {
        ctx.out.bulk(f);
    }
}

/// An entry id as a bulk string (`fmt_id`), formatted on the stack.
pub(super) fn bulk_id(out: &mut crate::protocol::Out, id: u128) {
    let mut b = itoa::Buffer::new();
    let mut s = [0u8; 41];
    let ms = b.format(id_ms(id)).as_bytes();
    s[..ms.len()].copy_from_slice(ms);
    s[ms.len()] = b'-';
    let at = ms.len() + 1;
    let seq = b.format(id_seq(id)).as_bytes();
    s[at..at + seq.len()].copy_from_slice(seq);
    out.bulk(&s[..at + seq.len()]);
}

/// Writes a field name (status in RESP2 would be wrong: Redis uses bulk).
pub(super) fn field(ctx: &mut Ctx, name: &str) {
    ctx.out.bulk(name.as_bytes());
}

pub(super) fn err_parts(parts: &[&[u8]]) -> CmdError {
    CmdError::from_bytes(parts.concat())
}

pub(super) fn nogroup_for_key(group: &[u8], key: &[u8]) -> CmdError {
    err_parts(&[
        b"NOGROUP No such consumer group '",
        super::c_str(group),
        b"' for key name '",
        super::c_str(key),
        b"'",
    ])
}

pub(super) fn nogroup_key_or_group(key: &[u8], group: &[u8], suffix: &[u8]) -> CmdError {
    err_parts(&[
        b"NOGROUP No such key '",
        super::c_str(key),
        b"' or consumer group '",
        super::c_str(group),
        b"'",
        suffix,
    ])
}

/// Redis's `streamRangeHasTombstones(s, start, NULL)`.
pub(super) fn has_tombstones_from(m: &Meta, start: u128) -> bool {
    if m.length == 0 || m.max_deleted == 0 || m.first > m.max_deleted {
        return false;
    }
    start <= m.max_deleted
}

/// Redis's `streamEstimateDistanceFromFirstEverEntry`.
pub(super) fn estimate_distance(m: &Meta, id: u128) -> i64 {
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
pub(super) fn reply_lag(ctx: &mut Ctx, m: &Meta, g: &Group) {
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

pub(super) fn reply_entries_read(ctx: &mut Ctx, g: &Group) {
    if g.entries_read != INVALID_ENTRIES_READ {
        ctx.out.int(g.entries_read);
    } else {
        ctx.out.null();
    }
}

pub(super) fn map_or_array(ctx: &mut Ctx, pairs: usize) {
    if ctx.out.resp3 {
        ctx.out.map(pairs);
    } else {
        ctx.out.array(pairs * 2);
    }
}

/// Logs what Redis 7.0 propagates for a stream change, in order, for the
/// replication stream (`Keyspace::log_command`; nothing unless a primary
/// propagates). The stream's logs hold the change itself.
pub(super) fn propagate(ctx: &mut Ctx, argv: Vec<Bytes>) {
    let db = ctx.db();
    ctx.ks.log_command(db, argv);
}

/// Whether `propagate` logs anything (to skip building arguments).
pub(super) fn propagating(ctx: &Ctx) -> bool {
    ctx.ks.logs_commands()
}

fn word(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

pub(super) fn id_arg(id: u128) -> Bytes {
    Bytes::from(crate::stream::fmt_id(id))
}

/// Redis's `streamPropagateXCLAIM`: `XCLAIM key group consumer 0 id TIME
/// ms RETRYCOUNT n FORCE JUSTID LASTID last` (the PEL entry's state after
/// the change, the group's last id).
pub(super) fn xclaim_argv(
    key: &Bytes,
    group: &Bytes,
    consumer: &Bytes,
    id: Bytes,
    time: u64,
    count: u64,
    last_id: u128,
) -> Vec<Bytes> {
    vec![
        word("XCLAIM"),
        key.clone(),
        group.clone(),
        consumer.clone(),
        word("0"),
        id,
        word("TIME"),
        Bytes::from(time.to_string()),
        word("RETRYCOUNT"),
        Bytes::from(count.to_string()),
        word("FORCE"),
        word("JUSTID"),
        word("LASTID"),
        id_arg(last_id),
    ]
}

/// Redis's `streamPropagateGroupID`: `XGROUP SETID key group last
/// ENTRIESREAD n`.
pub(super) fn setid_argv(
    key: &Bytes,
    group: &Bytes,
    last_id: u128,
    entries_read: i64,
) -> Vec<Bytes> {
    vec![
        word("XGROUP"),
        word("SETID"),
        key.clone(),
        group.clone(),
        id_arg(last_id),
        word("ENTRIESREAD"),
        Bytes::from(entries_read.to_string()),
    ]
}

/// Redis's `streamPropagateConsumerCreation`.
pub(super) fn createconsumer_argv(key: &Bytes, group: &Bytes, consumer: &Bytes) -> Vec<Bytes> {
    vec![
        word("XGROUP"),
        word("CREATECONSUMER"),
        key.clone(),
        group.clone(),
        consumer.clone(),
    ]
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
    let gi = args.iter().position(|a| super::is_opt(a, "group"))?;
    let group = args.get(gi + 1)?;
    let has = s.lock().ok()?.groups.contains_key(group);
    (!has).then_some("NOGROUP the consumer group this client was blocked on no longer exists")
}
