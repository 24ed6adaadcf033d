//! Commands: the declarative command table and the dispatcher.
//!
//! Every command is declared once, as a `Command` in its family's file
//! (`strings`, `keys`, `server`, `connection`, `transactions`, ...), with its
//! arity, flags, key positions and documentation. Arity errors, unknown
//! (sub)command errors, NOAUTH checks, MULTI queueing, COMMAND / COMMAND DOCS
//! output and per-command statistics all come from this table, never from
//! per-command code.

pub mod connection;
pub mod keys;
pub mod logparse;
pub mod persistence;
pub mod server;
pub mod strings;
pub mod transactions;

use crate::db::Keyspace;
use crate::protocol::Out;
use crate::server::{Client, Shared};
use bytes::Bytes;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Command flags, as COMMAND INFO names them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const NO_MULTI: u32 = 1 << 13;
    pub const MOVABLE_KEYS: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    pub const NO_ASYNC_LOADING: u32 = 1 << 16;

    /// Flag names in Redis's COMMAND INFO order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// An error reply. The text starts with its code (`ERR`, `WRONGTYPE`, ...).
/// Bytes, not `str`: Redis echoes client bytes (unknown command names,
/// arguments) in errors as they came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, [u8]>);

impl CmdError {
    pub fn new(s: impl Into<Cow<'static, str>>) -> Self {
        CmdError(match s.into() {
            Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        })
    }

    pub fn from_bytes(b: Vec<u8>) -> Self {
        CmdError(Cow::Owned(b))
    }

    /// The message as text (lossy), for logs and tests.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
    pub fn syntax() -> Self {
        CmdError::new("ERR syntax error")
    }
    pub fn wrong_type() -> Self {
        CmdError::new("WRONGTYPE Operation against a key holding the wrong kind of value")
    }
    pub fn not_integer() -> Self {
        CmdError::new("ERR value is not an integer or out of range")
    }
    pub fn not_float() -> Self {
        CmdError::new("ERR value is not a valid float")
    }
    pub fn no_such_key() -> Self {
        CmdError::new("ERR no such key")
    }
    pub fn wrong_args(full_name: &str) -> Self {
        CmdError::new(format!(
            "ERR wrong number of arguments for '{full_name}' command"
        ))
    }
}

pub type CmdResult = Result<(), CmdError>;

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
}

pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// Documentation shown by COMMAND DOCS.
#[derive(Debug)]
pub struct Doc {
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
}

/// One entry of the command table.
#[derive(Debug)]
pub struct Command {
    /// Lower-case name (for a subcommand, the part after the container).
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments including the name, -N at least N.
    pub arity: i32,
    pub flags: u32,
    /// Key positions: first, last (negative counts from the end), step; 0 for none.
    pub first_key: i32,
    pub last_key: i32,
    pub key_step: i32,
    /// ACL categories as COMMAND INFO lists them, e.g. `&["@read", "@string", "@fast"]`.
    pub acl: &'static [&'static str],
    pub doc: Doc,
    /// None for containers (commands with subcommands).
    pub handler: Option<Handler>,
    pub subcommands: &'static [Command],
}

impl Command {
    /// Template for `..Command::DEFAULT` in the family tables.
    pub const DEFAULT: Command = Command {
        name: "",
        arity: 0,
        flags: 0,
        first_key: 0,
        last_key: 0,
        key_step: 0,
        acl: &[],
        doc: Doc {
            summary: "",
            since: "1.0.0",
            group: "generic",
            complexity: "",
        },
        handler: None,
        subcommands: &[],
    };

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// Per-command counters (INFO commandstats).
#[derive(Default, Debug)]
pub struct CmdStat {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

/// A resolved table entry: the command, its full name (`client|list`) and
/// its statistics slot.
#[derive(Debug)]
pub struct Entry {
    pub cmd: &'static Command,
    pub full_name: String,
    pub parent: Option<usize>,
    pub stat: CmdStat,
    subs: HashMap<&'static str, usize>,
}

/// The command table, built once from the families.
#[derive(Debug)]
pub struct Table {
    pub entries: Vec<Entry>,
    by_name: HashMap<&'static str, usize>,
    /// Indices of the top-level commands, in table order.
    pub top: Vec<usize>,
}

/// Every family's table, in COMMAND order.
fn families() -> [&'static [Command]; 7] {
    [
        connection::COMMANDS,
        server::COMMANDS,
        persistence::COMMANDS,
        strings::COMMANDS,
        keys::COMMANDS,
        transactions::COMMANDS,
        logparse::COMMANDS,
    ]
}

pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            entries: Vec::new(),
            by_name: HashMap::new(),
            top: Vec::new(),
        };
        for fam in families() {
            for cmd in fam {
                let idx = t.entries.len();
                t.entries.push(Entry {
                    cmd,
                    full_name: cmd.name.to_string(),
                    parent: None,
                    stat: CmdStat::default(),
                    subs: HashMap::new(),
                });
                assert!(
                    t.by_name.insert(cmd.name, idx).is_none(),
                    "duplicate command {}",
                    cmd.name
                );
                t.top.push(idx);
                for sub in cmd.subcommands {
                    let sidx = t.entries.len();
                    t.entries.push(Entry {
                        cmd: sub,
                        full_name: format!("{}|{}", cmd.name, sub.name),
                        parent: Some(idx),
                        stat: CmdStat::default(),
                        subs: HashMap::new(),
                    });
                    t.entries[idx].subs.insert(sub.name, sidx);
                }
            }
        }
        t
    })
}

/// Lower-cases a command name for lookup; None when it is too long to be one.
fn lower_name(name: &[u8], buf: &mut [u8; 32]) -> Option<usize> {
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(name.len())
}

impl Table {
    /// Finds a top-level command by name, ignoring case.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 32];
        let n = lower_name(name, &mut buf)?;
        let s = std::str::from_utf8(&buf[..n]).ok()?;
        self.by_name.get(s).copied()
    }

    /// Finds a subcommand of entry `parent`, ignoring case.
    pub fn lookup_sub(&self, parent: usize, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 32];
        let n = lower_name(name, &mut buf)?;
        let s = std::str::from_utf8(&buf[..n]).ok()?;
        self.entries[parent].subs.get(s).copied()
    }

    /// Resolves `args` to a table entry, checking existence and arity exactly
    /// as Redis's `processCommand` does (same error texts).
    pub fn resolve(&self, args: &[Bytes]) -> Result<usize, CmdError> {
        let Some(idx) = self.lookup(&args[0]) else {
            return Err(unknown_command(args));
        };
        let mut idx = idx;
        let cmd = self.entries[idx].cmd;
        if !cmd.subcommands.is_empty() && args.len() >= 2 {
            match self.lookup_sub(idx, &args[1]) {
                Some(s) => idx = s,
                None => {
                    return Err(CmdError::new(format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        truncate_lossy(&args[1], 128),
                        cmd.name.to_ascii_uppercase()
                    )))
                }
            }
        }
        let e = &self.entries[idx];
        let arity = e.cmd.arity;
        let argc = args.len() as i32;
        if (arity > 0 && argc != arity) || argc < -arity {
            return Err(CmdError::wrong_args(&e.full_name));
        }
        Ok(idx)
    }

    /// The keys a command's arguments name, from its key positions.
    pub fn keys<'a>(&self, idx: usize, args: &'a [Bytes]) -> Vec<&'a Bytes> {
        let cmd = self.entries[idx].cmd;
        if cmd.first_key <= 0 {
            return Vec::new();
        }
        let argc = args.len() as i32;
        let last = if cmd.last_key < 0 {
            argc + cmd.last_key
        } else {
            cmd.last_key
        };
        let step = cmd.key_step.max(1);
        let mut out = Vec::new();
        let mut i = cmd.first_key;
        while i <= last && i < argc {
            out.push(&args[i as usize]);
            i += step;
        }
        out
    }
}

fn truncate_lossy(b: &[u8], max: usize) -> String {
    let b = &b[..b.len().min(max)];
    String::from_utf8_lossy(b).into_owned()
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `, as Redis
/// 7.0 builds it: name and argument list each capped at 128 bytes, client
/// bytes echoed as they came.
pub fn unknown_command(args: &[Bytes]) -> CmdError {
    let mut list: Vec<u8> = Vec::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push(b'\'');
        list.extend_from_slice(&a[..a.len().min(room)]);
        list.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&args[0][..args[0].len().min(128)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&list);
    CmdError::from_bytes(msg)
}

/// Runs a resolved command, updating its statistics.
pub fn call(ctx: &mut Ctx, idx: usize, args: &[Bytes]) -> CmdResult {
    let e = &table().entries[idx];
    let Some(handler) = e.cmd.handler else {
        // A container called with only its name: arity made sure there is a
        // subcommand, so this is only reached for containers with arity -2
        // given exactly one argument, which resolve() rejects.
        return Err(CmdError::wrong_args(&e.full_name));
    };
    let start = std::time::Instant::now();
    let r = handler(ctx, args);
    ctx.ks.end_command();
    let usec = start.elapsed().as_micros() as u64;
    e.stat.calls.fetch_add(1, Ordering::Relaxed);
    e.stat.usec.fetch_add(usec, Ordering::Relaxed);
    if r.is_err() {
        e.stat.failed.fetch_add(1, Ordering::Relaxed);
    }
    r
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

/// Matches an option argument the way Redis's `strcasecmp` on `argv[j]->ptr`
/// does: as a C string, so the argument ends at its first NUL byte.
pub fn is_opt(a: &[u8], kw: &str) -> bool {
    let end = a.iter().position(|&b| b == 0).unwrap_or(a.len());
    a[..end].eq_ignore_ascii_case(kw.as_bytes())
}

/// An argument as Redis's `%s` prints it in an error: up to its first NUL.
pub fn c_str_lossy(a: &[u8]) -> String {
    let end = a.iter().position(|&b| b == 0).unwrap_or(a.len());
    String::from_utf8_lossy(&a[..end]).into_owned()
}
