//! Commands: the declarative command table and the dispatcher.
//!
//! Every command is declared once, as a `Command` in its family's file
//! (`strings`, `keys`, `server`, `connection`, `transactions`, ...), with its
//! arity, flags, key positions and documentation. Arity errors, unknown
//! (sub)command errors, NOAUTH checks, MULTI queueing, COMMAND / COMMAND DOCS
//! output and per-command statistics all come from this table, never from
//! per-command code. What COMMAND INFO / DOCS print beyond the table's own
//! fields (key specs, tips, doc arguments, history) is generated from Redis
//! 7.0 into `meta.rs` and joined to the table by full name.

pub mod acl;
pub mod args;
pub mod bitmaps;
pub mod blocking;
pub mod cluster;
pub mod cluster_repl;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod functions;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
mod info;
pub mod introspection;
pub mod keys;
pub mod lists;
pub mod logingest;
pub mod logparse;
pub mod logquery;
pub mod lua;
pub mod memory;
pub mod migrate;
pub mod observe;
pub mod persistence;
pub mod pubsub;
mod redlog_record;
pub mod replica;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod stream_common;
pub mod stream_groups;
pub mod stream_pending;
pub mod streams;
pub mod strings;
pub mod tracking;
pub mod transactions;
pub mod zsets;

pub use crate::catalog::{
    arg, arg_flags, bump, c_str, c_str_lossy, flags, is_opt, key_flags, key_refs, meta, table,
    unknown_command, Arg, ArgType, BeginSearch, CmdError, CmdResult, CmdStat, Command, CommandMeta,
    Doc, Entry, FindKeys, KeySpec, Table,
};
use crate::db::Keyspace;
use crate::node::{Client, Shared};
use crate::protocol::Out;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

/// Execution context handed to every handler.
pub struct Ctx<'a> {
    pub ks: &'a mut Keyspace,
    pub shared: &'a Shared,
    pub client: &'a mut Client,
    pub out: &'a mut Out,
    /// The command's clock: one reading per command, as Redis's `mstime` cache.
    pub now_ms: u64,
}

impl Ctx<'_> {
    /// The client's selected database index.
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Queues a keyspace notification (`Keyspace::notify`) remembering
    /// where the reply stands, so a RESP3 client subscribed to its own
    /// events gets the push exactly where Redis 7.0 writes it (before or
    /// after the reply, depending on the command).
    pub fn notify(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        let at = self.out.buf.len();
        self.ks.notify_at(class, event, db, key, Some(at));
    }

    /// Publishes the notifications the command queued; `reply_start` is
    /// where its reply began in the buffer.
    fn publish_notifications(&mut self, reply_start: usize) {
        let notes = self.ks.take_notifications();
        if notes.is_empty() {
            return;
        }
        let me = crate::node::pubsub::Own {
            client_id: self.client.id,
            resp3: self.out.resp3,
            buf: &mut self.out.buf,
            reply_start,
            pushes: &mut self.out.pushes,
        };
        self.shared.pubsub.publish_notifications(notes, Some(me));
    }
}

pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// Every family's handlers, in COMMAND order.
static FAMILIES: &[&[(&str, Handler)]] = &[
    connection::HANDLERS,
    server::HANDLERS,
    acl::HANDLERS,
    introspection::HANDLERS,
    observe::HANDLERS,
    memory::HANDLERS,
    persistence::HANDLERS,
    strings::HANDLERS,
    bitmaps::HANDLERS,
    hyperloglog::HANDLERS,
    sort::HANDLERS,
    keys::HANDLERS,
    dump::HANDLERS,
    migrate::HANDLERS,
    transactions::HANDLERS,
    zsets::HANDLERS,
    geo::HANDLERS,
    streams::HANDLERS,
    stream_groups::HANDLERS,
    hashes::HANDLERS,
    sets::HANDLERS,
    pubsub::HANDLERS,
    lists::HANDLERS,
    logparse::HANDLERS,
    scripting::HANDLERS,
    debug::HANDLERS,
    functions::HANDLERS,
    cluster::HANDLERS,
    cluster_repl::HANDLERS,
    replication::HANDLERS,
    replica::HANDLERS,
];

/// The handler of table entry `idx` (`catalog::table`'s index); None for
/// a container (a command with subcommands). The generated `ORDER` and
/// `FAMILIES` name the same commands (`redis-tests/gen-command-meta`
/// writes one from the other): a mismatch stops the first lookup.
pub fn handler(idx: usize) -> Option<Handler> {
    static HANDLERS: OnceLock<Vec<Option<Handler>>> = OnceLock::new();
    HANDLERS
        .get_or_init(map_handlers)
        .get(idx)
        .copied()
        .flatten()
}

fn map_handlers() -> Vec<Option<Handler>> {
    let t = table();
    let mut by_idx: Vec<Option<Handler>> = vec![None; t.entries.len()];
    for fam in FAMILIES {
        for &(full, h) in *fam {
            let idx = match full.split_once('|') {
                None => t.lookup(full.as_bytes()),
                Some((parent, sub)) => t
                    .lookup(parent.as_bytes())
                    .and_then(|p| t.lookup_sub(p, sub.as_bytes())),
            };
            let Some(idx) = idx else {
                panic!("{full} is not in catalog/meta.rs: run redis-tests/gen-command-meta")
            };
            by_idx[idx] = Some(h);
        }
    }
    for (e, h) in t.entries.iter().zip(&by_idx) {
        let container = !e.cmd.subcommands.is_empty();
        assert!(
            container || h.is_some(),
            "{} has no handler: run redis-tests/gen-command-meta",
            e.full_name
        );
    }
    by_idx
}

/// Runs a resolved command, updating its statistics.
pub fn call(ctx: &mut Ctx, idx: usize, args: &[Bytes]) -> CmdResult {
    let e = &table().entries[idx];
    let Some(handler) = handler(idx) else {
        // A container called with only its name: arity made sure there is a
        // subcommand, so this is only reached for containers with arity -2
        // given exactly one argument, which resolve() rejects.
        return Err(CmdError::wrong_args(&e.full_name));
    };
    tracking::before_call(ctx);
    // From the mark (the batch start or the previous command's end) to
    // now: the command's duration with one clock read per command.
    let start = ctx.ks.clock_mark();
    let reply_start = ctx.out.buf.len();
    if e.cmd.has(flags::SKIP_MONITOR) && ctx.shared.observe.has_monitors() {
        // Scripts are shown before the commands they run (Redis's
        // `evalCommand` feeds the monitors itself).
        observe::feed_monitors(ctx, e, args);
    }
    let r = handler(ctx, args);
    ctx.ks.end_command();
    ctx.publish_notifications(reply_start);
    tracking::after_call(ctx, idx, args);
    let usec = ctx
        .ks
        .mark_now()
        .saturating_duration_since(start)
        .as_micros() as u64;
    // Commands run under the keyspace lock, so these counters have one
    // writer at a time: a plain add, no locked read-modify-write.
    bump(&e.stat.calls, 1);
    bump(&e.stat.usec, usec);
    if r.is_err() {
        e.stat.failed.fetch_add(1, Ordering::Relaxed);
    }
    observe::after_call(ctx, e, args, usec);
    r
}

// ---- typed lookups shared by the families ----

/// What a read lookup needs from the context, copied out so the keyspace
/// and the reply buffer can be borrowed at the same time.
#[derive(Clone, Copy)]
pub struct Reader {
    pub db: usize,
    pub now_ms: u64,
    pub touch: bool,
}

/// The read-lookup parameters of the running command.
pub fn reader(ctx: &Ctx) -> Reader {
    Reader {
        db: ctx.client.db,
        now_ms: ctx.now_ms,
        touch: !ctx.client.no_touch,
    }
}

/// Redis's `lookupKeyRead` + `checkType`: the value under `key` viewed by
/// `cast`, which answers WRONGTYPE for another type.
pub fn read_typed<'a, T>(
    ks: &'a mut crate::db::Keyspace,
    r: Reader,
    key: &[u8],
    cast: fn(&mut crate::db::Value) -> Result<&mut T, CmdError>,
) -> Result<Option<&'a mut T>, CmdError> {
    match ks.lookup(r.db, key, r.now_ms, r.touch) {
        None => Ok(None),
        Some(e) => cast(&mut e.value).map(Some),
    }
}

/// Redis's `lookupKeyWrite` + `checkType`, as `read_typed`.
pub fn write_typed<'a, T>(
    ks: &'a mut crate::db::Keyspace,
    db: usize,
    key: &[u8],
    now_ms: u64,
    cast: fn(&mut crate::db::Value) -> Result<&mut T, CmdError>,
) -> Result<Option<&'a mut T>, CmdError> {
    match ks.lookup_write(db, key, now_ms) {
        None => Ok(None),
        Some(e) => cast(&mut e.value).map(Some),
    }
}

/// `write_typed` for a key the command already looked up: no second
/// access-time update (`Keyspace::relookup_write`).
pub fn rewrite_typed<'a, T>(
    ks: &'a mut crate::db::Keyspace,
    db: usize,
    key: &[u8],
    now_ms: u64,
    cast: fn(&mut crate::db::Value) -> Result<&mut T, CmdError>,
) -> Result<Option<&'a mut T>, CmdError> {
    match ks.relookup_write(db, key, now_ms) {
        None => Ok(None),
        Some(e) => cast(&mut e.value).map(Some),
    }
}

// ---- argument helpers shared by the families ----

/// Parses a strict 64-bit integer argument.
pub fn arg_i64(a: &[u8]) -> Result<i64, CmdError> {
    crate::protocol::parse::parse_i64(a).ok_or_else(CmdError::not_integer)
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is_kw(a: &[u8], kw: &str) -> bool {
    a.eq_ignore_ascii_case(kw.as_bytes())
}

/// C's `atoi` (glibc: `strtol` base 10) on an argument read as a C string:
/// leading blanks, a sign, digits up to the first other byte or NUL; 0
/// when there are none; out-of-range values saturate as `strtol` does.
pub fn atoi(a: &[u8]) -> i64 {
    let a = c_str(a);
    let mut i = a
        .iter()
        .position(|&c| !crate::protocol::parse::is_c_space(c))
        .unwrap_or(a.len());
    let neg = match a.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    while let Some(d) = a.get(i).filter(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        i += 1;
    }
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_is_c_atoi() {
        assert_eq!(atoi(b"0"), 0);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b" 12abc"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"1\x002"), 1);
    }

    #[test]
    fn atoi_saturates_as_strtol() {
        assert_eq!(atoi(b"18446744073709551616"), i64::MAX);
        assert_eq!(atoi(b"-99999999999999999999"), -i64::MAX);
    }
}
