//! The command catalog: everything the server knows about a command
//! except the code that runs it. Names, arity, flags, key specs, ACL
//! categories and docs (`meta.rs`, generated from redis-server 7.0 by
//! `redis-tests/gen-command-meta`, with `ORDER`: the mapped names in the
//! families' order), the table built from them ([`table`]: command ids are
//! its indexes), name and arity resolution, key extraction
//! (`getKeysUsingKeySpecs`, SORT's and MIGRATE's own), the per-command
//! statistics, and the error reply type.
//!
//! It sits below everything that needs to know commands without running
//! them (the ACL engine, the pause and tracking checks, `rename-command`);
//! `commands` maps each entry to its handler (`commands::handler`).

pub mod getkeys;
pub mod meta;
mod names;

use bytes::Bytes;
use names::NameMap;
use std::borrow::Cow;
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
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    /// Hidden in COMMAND INFO (as in Redis); scripts treat it as a write.
    pub const MAY_REPLICATE: u32 = 1 << 18;
    /// Served for an importing slot without ASKING (RESTORE-ASKING).
    pub const ASKING: u32 = 1 << 19;

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
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
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

/// Documentation shown by COMMAND DOCS.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
}

/// Key-spec flags (Redis 7.0 `CMD_KEY_*`).
pub mod key_flags {
    pub const K_RO: u32 = 1 << 0;
    pub const K_RW: u32 = 1 << 1;
    pub const K_OW: u32 = 1 << 2;
    pub const K_RM: u32 = 1 << 3;
    pub const K_ACCESS: u32 = 1 << 4;
    pub const K_UPDATE: u32 = 1 << 5;
    pub const K_INSERT: u32 = 1 << 6;
    pub const K_DELETE: u32 = 1 << 7;
    pub const K_NOT_KEY: u32 = 1 << 8;
    pub const K_INCOMPLETE: u32 = 1 << 9;
    pub const K_VARIABLE_FLAGS: u32 = 1 << 10;

    /// Flag names in Redis's COMMAND INFO order (`addReplyFlagsForKeyArgs`).
    pub const NAMES: &[(u32, &str)] = &[
        (K_RO, "RO"),
        (K_RW, "RW"),
        (K_OW, "OW"),
        (K_RM, "RM"),
        (K_ACCESS, "access"),
        (K_UPDATE, "update"),
        (K_INSERT, "insert"),
        (K_DELETE, "delete"),
        (K_NOT_KEY, "not_key"),
        (K_INCOMPLETE, "incomplete"),
        (K_VARIABLE_FLAGS, "variable_flags"),
    ];
}

/// Doc-argument flags (Redis 7.0 `CMD_ARG_*`).
pub mod arg_flags {
    pub const OPTIONAL: u8 = 1 << 0;
    pub const MULTIPLE: u8 = 1 << 1;
    pub const MULTIPLE_TOKEN: u8 = 1 << 2;

    /// Flag names in Redis's COMMAND DOCS order (`addReplyFlagsForArg`).
    pub const NAMES: &[(u8, &str)] = &[
        (OPTIONAL, "optional"),
        (MULTIPLE, "multiple"),
        (MULTIPLE_TOKEN, "multiple_token"),
    ];
}

/// Where a key spec's search for keys begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// The spec cannot be evaluated from the arguments alone.
    Unknown,
    /// At this argument index (the command name is index 0).
    Index(i32),
    /// After the first argument equal (ignoring case) to `keyword`, scanning
    /// from `startfrom` (negative: from the end, backwards).
    Keyword {
        keyword: &'static str,
        startfrom: i32,
    },
}

/// How a key spec finds its keys once the search has begun at `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    Unknown,
    /// Keys at `first`, `first + keystep`, ... up to `first + lastkey`
    /// (`lastkey` < 0 counts from the end; with `limit` > 0 and `lastkey`
    /// -1, only the first 1/`limit` of the remaining arguments).
    Range {
        lastkey: i32,
        keystep: i32,
        limit: i32,
    },
    /// The argument at `first + keynumidx` holds the key count; keys start
    /// at `first + firstkey`, every `keystep`.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        keystep: i32,
    },
}

/// A Redis 7.0 key specification, as COMMAND INFO prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    /// `key_flags::*`.
    pub flags: u32,
    pub begin_search: BeginSearch,
    pub find_keys: FindKeys,
}

/// The type of a documented argument (Redis 7.0 `redisCommandArgType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    Oneof,
    Block,
}

impl ArgType {
    /// The name COMMAND DOCS prints.
    pub fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Key => "key",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::Oneof => "oneof",
            ArgType::Block => "block",
        }
    }
}

/// One documented argument (Redis 7.0 `redisCommandArg`); `oneof` and
/// `block` arguments nest their alternatives / parts in `args`.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgType,
    /// Index into the command's key specs, for `key` arguments.
    pub key_spec_index: Option<u32>,
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    /// `arg_flags::*`.
    pub flags: u8,
    pub args: &'static [Arg],
}

/// `arg(name, type)`: an argument with nothing else set; the methods below
/// add the rest, so that `meta.rs` reads like Redis's command JSON.
pub const fn arg(name: &'static str, kind: ArgType) -> Arg {
    Arg {
        name,
        kind,
        key_spec_index: None,
        token: None,
        summary: None,
        since: None,
        deprecated_since: None,
        flags: 0,
        args: &[],
    }
}

impl Arg {
    pub const fn key_spec(mut self, i: u32) -> Arg {
        self.key_spec_index = Some(i);
        self
    }
    pub const fn token(mut self, t: &'static str) -> Arg {
        self.token = Some(t);
        self
    }
    pub const fn summary(mut self, s: &'static str) -> Arg {
        self.summary = Some(s);
        self
    }
    pub const fn since(mut self, v: &'static str) -> Arg {
        self.since = Some(v);
        self
    }
    pub const fn deprecated_since(mut self, v: &'static str) -> Arg {
        self.deprecated_since = Some(v);
        self
    }
    pub const fn flags(mut self, f: u8) -> Arg {
        self.flags = f;
        self
    }
    pub const fn args(mut self, a: &'static [Arg]) -> Arg {
        self.args = a;
        self
    }
}

/// What COMMAND INFO / COMMAND DOCS print beyond the table's own fields.
/// Generated into `meta.rs`; see there.
#[derive(Debug)]
pub struct CommandMeta {
    /// Redis arity: N means exactly N arguments including the name, -N at least N.
    pub arity: i32,
    pub flags: u32,
    /// Key positions: first, last (negative counts from the end), step; 0 for none.
    pub keys: (i32, i32, i32),
    /// ACL categories as COMMAND INFO lists them, e.g. `&["@read", "@string", "@fast"]`.
    pub acl: &'static [&'static str],
    pub doc: Doc,
    /// Command tips (`nondeterministic_output`, `request_policy:all_shards`, ...).
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    /// `deprecated`, `syscmd`.
    pub doc_flags: &'static [&'static str],
    pub deprecated_since: Option<&'static str>,
    pub replaced_by: Option<&'static str>,
    /// (version, change), oldest first.
    pub history: &'static [(&'static str, &'static str)],
    pub args: &'static [Arg],
}

impl CommandMeta {
    pub const EMPTY: CommandMeta = CommandMeta {
        arity: 0,
        flags: 0,
        keys: (0, 0, 0),
        acl: &[],
        doc: Doc {
            summary: "",
            since: "",
            group: "",
            complexity: "",
        },
        tips: &[],
        key_specs: &[],
        doc_flags: &[],
        deprecated_since: None,
        replaced_by: None,
        history: &[],
        args: &[],
    };

    /// The metadata of a command by full name (`get`, `client|list`).
    pub fn lookup(full_name: &str) -> Option<&'static CommandMeta> {
        meta::META
            .binary_search_by(|(n, _)| n.cmp(&full_name))
            .ok()
            .map(|i| &meta::META[i].1)
    }
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
    pub subcommands: &'static [Command],
}

impl Command {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// Adds to a counter that only code holding the keyspace lock writes
/// (readers such as INFO may read it at any time).
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Per-command counters (INFO commandstats) and latency histogram (INFO
/// latencystats, LATENCY HISTOGRAM).
#[derive(Default, Debug)]
pub struct CmdStat {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    /// Call durations in ns, created at the first call recorded with
    /// `latency-tracking yes` (Redis's `latency_histogram`).
    pub histogram: parking_lot::Mutex<Option<Box<hdrhistogram::Histogram<u64>>>>,
}

/// A resolved table entry: the command, its full name (`client|list`) and
/// its statistics slot.
#[derive(Debug)]
pub struct Entry {
    pub cmd: &'static Command,
    pub full_name: String,
    /// COMMAND INFO / DOCS metadata from `meta.rs` (`EMPTY` when the command
    /// has none there: the `every_command_has_metadata` test fails then).
    pub meta: &'static CommandMeta,
    pub parent: Option<usize>,
    pub stat: CmdStat,
    subs: NameMap,
}

/// The command table, built once from the families.
#[derive(Debug)]
pub struct Table {
    pub entries: Vec<Entry>,
    by_name: NameMap,
    /// Indices of the top-level commands, in table order.
    pub top: Vec<usize>,
}

/// The command table, built once from the generated metadata.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

/// The generated metadata of a command `ORDER` names (both are generated
/// together, so a missing entry means a hand edit).
fn meta_of(full_name: &str) -> &'static CommandMeta {
    CommandMeta::lookup(full_name).unwrap_or_else(|| {
        panic!("{full_name} has no entry in meta.rs: run redis-tests/gen-command-meta")
    })
}

/// A table entry: the generated metadata of `full_name`.
fn command(name: &'static str, full_name: &str, subcommands: &'static [Command]) -> Command {
    let m = meta_of(full_name);
    Command {
        name,
        arity: m.arity,
        flags: m.flags,
        first_key: m.keys.0,
        last_key: m.keys.1,
        key_step: m.keys.2,
        acl: m.acl,
        doc: m.doc,
        subcommands,
    }
}

/// Builds the table from the generated `ORDER` and `META`, once: the
/// commands in family order, each container (a name `ORDER` only has as
/// `container|sub`) followed by its subcommands in the order they are
/// mapped. The `Command`s live as long as the process (leaked once, here).
fn build_table() -> Table {
    let mut tops: Vec<(&'static str, Vec<(&'static str, &'static str)>)> = Vec::new();
    for &full in meta::ORDER {
        match full.split_once('|') {
            None => tops.push((full, Vec::new())),
            Some((parent, sub)) => match tops.iter_mut().find(|t| t.0 == parent) {
                Some(t) => t.1.push((sub, full)),
                None => tops.push((parent, vec![(sub, full)])),
            },
        }
    }
    let mut t = Table {
        entries: Vec::new(),
        by_name: NameMap::default(),
        top: Vec::new(),
    };
    for (name, subs) in tops {
        let subs: Vec<Command> = subs
            .iter()
            .map(|&(sub, full)| command(sub, full, &[]))
            .collect();
        let cmd: &'static Command = Box::leak(Box::new(command(
            name,
            name,
            Box::leak(subs.into_boxed_slice()),
        )));
        let idx = t.entries.len();
        t.entries.push(Entry {
            cmd,
            full_name: name.to_string(),
            meta: meta_of(name),
            parent: None,
            stat: CmdStat::default(),
            subs: NameMap::default(),
        });
        assert!(
            t.by_name.insert(name, idx).is_none(),
            "duplicate command {name}"
        );
        t.top.push(idx);
        for sub in cmd.subcommands {
            let sidx = t.entries.len();
            let full_name = format!("{name}|{}", sub.name);
            t.entries.push(Entry {
                cmd: sub,
                meta: meta_of(&full_name),
                full_name,
                parent: Some(idx),
                stat: CmdStat::default(),
                subs: NameMap::default(),
            });
            t.entries[idx].subs.insert(sub.name, sidx);
        }
    }
    t
}

impl crate::config::CommandNames for Table {
    fn exists(&self, name: &str) -> bool {
        self.lookup(name.as_bytes()).is_some()
    }
}

impl Table {
    /// Finds a top-level command by name, ignoring case.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        self.by_name.get(name)
    }

    /// Finds a subcommand of entry `parent`, ignoring case.
    pub fn lookup_sub(&self, parent: usize, name: &[u8]) -> Option<usize> {
        self.entries[parent].subs.get(name)
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

    /// The key specs of entry `idx`: its generated ones, or for a command
    /// without metadata one spec built from the table's first/last/step.
    pub fn key_specs(&self, idx: usize) -> Cow<'static, [KeySpec]> {
        let e = &self.entries[idx];
        let cmd = e.cmd;
        if !e.meta.key_specs.is_empty() || cmd.first_key <= 0 {
            return Cow::Borrowed(e.meta.key_specs);
        }
        let lastkey = if cmd.last_key < 0 {
            cmd.last_key
        } else {
            cmd.last_key - cmd.first_key
        };
        Cow::Owned(vec![KeySpec {
            notes: None,
            flags: 0,
            begin_search: BeginSearch::Index(cmd.first_key),
            find_keys: FindKeys::Range {
                lastkey,
                keystep: cmd.key_step.max(1),
                limit: 0,
            },
        }])
    }

    /// Whether the command takes keys at all (Redis's `doesCommandHaveKeys`):
    /// some key spec names a real key.
    pub fn has_keys(&self, idx: usize) -> bool {
        self.key_specs(idx)
            .iter()
            .any(|s| s.flags & key_flags::K_NOT_KEY == 0)
    }

    /// The keys a command's arguments name (`args[0]` is the command name),
    /// found through its key specs as Redis 7.0's `getKeysUsingKeySpecs`
    /// does. Empty when a spec does not fit the arguments (Redis's
    /// `invalid_spec`), as Redis then finds no keys either.
    pub fn keys<'a>(&self, idx: usize, args: &'a [Bytes]) -> Vec<&'a Bytes> {
        // SORT's keys come from its options (Redis's `sortGetKeys`): its
        // key specs are "unknown".
        if matches!(self.entries[idx].full_name.as_str(), "sort" | "sort_ro") {
            return getkeys::sort(args).into_iter().map(|i| &args[i]).collect();
        }
        // MIGRATE's keys: argument 3, or those after KEYS when it is
        // empty (Redis's `migrateGetKeys`).
        if self.entries[idx].full_name == "migrate" {
            return getkeys::migrate(args).iter().collect();
        }
        keys_from_specs(&self.key_specs(idx), args)
    }
}

/// `Table::keys` for explicit key specs.
fn keys_from_specs<'a>(specs: &[KeySpec], args: &'a [Bytes]) -> Vec<&'a Bytes> {
    let mut refs = Vec::new();
    key_refs(specs, args, &mut refs);
    refs.into_iter().map(|(i, _)| &args[i]).collect()
}

/// The keys key specs name, as (argument position, key-spec flags) pairs
/// appended to `out` (Redis 7.0's `getKeysUsingKeySpecs`). Nothing is
/// appended when a spec does not fit the arguments (Redis's
/// `invalid_spec`), as Redis then finds no keys either. The caller keeps
/// `out`, so the ACL check allocates nothing per command.
pub fn key_refs(specs: &[KeySpec], args: &[Bytes], out: &mut Vec<(usize, u32)>) {
    let base = out.len();
    let argc = args.len() as i64;
    for spec in specs {
        if spec.flags & key_flags::K_NOT_KEY != 0 {
            continue;
        }
        let first: i64 = match spec.begin_search {
            BeginSearch::Index(i) => i64::from(i),
            BeginSearch::Keyword { keyword, startfrom } => {
                // Redis never looks at the last argument (forwards) or
                // at argument 1 (backwards): a key must follow the keyword.
                let found = if startfrom > 0 {
                    (i64::from(startfrom)..argc - 1).find(|&i| is_opt(&args[i as usize], keyword))
                } else {
                    (2..=argc + i64::from(startfrom))
                        .rev()
                        .find(|&i| is_opt(&args[i as usize], keyword))
                };
                match found {
                    Some(i) => i + 1,
                    // The keyword is absent: this spec names no keys.
                    None => continue,
                }
            }
            BeginSearch::Unknown => return out.truncate(base),
        };
        let (first, last, step) = match spec.find_keys {
            FindKeys::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + i64::from(lastkey)
                } else if limit == 0 {
                    argc + i64::from(lastkey)
                } else {
                    first + ((argc - first) / i64::from(limit) + i64::from(lastkey))
                };
                (first, last, i64::from(keystep))
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                let at = first + i64::from(keynumidx);
                if at >= argc {
                    return out.truncate(base);
                }
                let Some(n) =
                    crate::protocol::parse::parse_i64(&args[at as usize]).filter(|&n| n >= 0)
                else {
                    return out.truncate(base);
                };
                let first = first + i64::from(firstkey);
                (first, first.saturating_add(n) - 1, i64::from(keystep))
            }
            FindKeys::Unknown => return out.truncate(base),
        };
        if last >= argc || last < first || first >= argc {
            return out.truncate(base);
        }
        let mut i = first;
        while i <= last {
            out.push((i as usize, spec.flags));
            i += step.max(1);
        }
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

/// An argument as C code reads `argv[j]->ptr` as a string (`strlen`,
/// `strcmp`, `%s`): up to its first NUL byte.
pub fn c_str(a: &[u8]) -> &[u8] {
    &a[..memchr::memchr(0, a).unwrap_or(a.len())]
}

/// Matches an option argument the way Redis's `strcasecmp` on `argv[j]->ptr`
/// does: as a C string, so the argument ends at its first NUL byte.
pub fn is_opt(a: &[u8], kw: &str) -> bool {
    c_str(a).eq_ignore_ascii_case(kw.as_bytes())
}

/// An argument as Redis's `%s` prints it in an error: up to its first NUL.
pub fn c_str_lossy(a: &[u8]) -> String {
    String::from_utf8_lossy(c_str(a)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_metadata() {
        let t = table();
        for e in &t.entries {
            let meta = CommandMeta::lookup(&e.full_name).unwrap_or_else(|| {
                panic!(
                    "{} has no entry in meta.rs: run redis-tests/gen-command-meta",
                    e.full_name
                )
            });
            fn check(name: &str, args: &[Arg], specs: usize) {
                for a in args {
                    if let Some(i) = a.key_spec_index {
                        assert!((i as usize) < specs, "{name}: {} key_spec_index", a.name);
                    }
                    check(name, a.args, specs);
                }
            }
            check(&e.full_name, meta.args, meta.key_specs.len());
        }
        for (name, _) in meta::META {
            assert!(
                t.entries.iter().any(|e| e.full_name == *name),
                "meta.rs has {name}, which the table lacks"
            );
        }
        assert!(meta::META.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    fn names(keys: Vec<&Bytes>) -> Vec<&str> {
        keys.iter()
            .map(|k| std::str::from_utf8(k).unwrap())
            .collect()
    }

    #[test]
    fn keys_from_range_keyword_and_keynum_specs() {
        let spec = |begin_search, find_keys| KeySpec {
            notes: None,
            flags: key_flags::K_RO,
            begin_search,
            find_keys,
        };
        // MSET-like: every second argument from 1 to the end.
        let mset = [spec(
            BeginSearch::Index(1),
            FindKeys::Range {
                lastkey: -1,
                keystep: 2,
                limit: 0,
            },
        )];
        let args = argv("mset a 1 b 2");
        assert_eq!(names(keys_from_specs(&mset, &args)), ["a", "b"]);
        // A key past the end is Redis's invalid_spec: no keys at all.
        let get2 = [spec(
            BeginSearch::Index(2),
            FindKeys::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        )];
        assert!(keys_from_specs(&get2, &argv("get a")).is_empty());
        // EVAL-like: a key count, then that many keys.
        let eval = [spec(
            BeginSearch::Index(2),
            FindKeys::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        )];
        let args = argv("eval s 2 k1 k2 a1");
        assert_eq!(names(keys_from_specs(&eval, &args)), ["k1", "k2"]);
        assert!(keys_from_specs(&eval, &argv("eval s x k1")).is_empty());
        assert!(keys_from_specs(&eval, &argv("eval s 3 k1")).is_empty());
        // XREAD-like: after the STREAMS keyword, the first half of the rest.
        let xread = [spec(
            BeginSearch::Keyword {
                keyword: "STREAMS",
                startfrom: 1,
            },
            FindKeys::Range {
                lastkey: -1,
                keystep: 1,
                limit: 2,
            },
        )];
        let args = argv("xread count 2 streams s1 s2 0 0");
        assert_eq!(names(keys_from_specs(&xread, &args)), ["s1", "s2"]);
        // Keyword absent: the spec names no keys; last argument never a keyword.
        assert!(keys_from_specs(&xread, &argv("xread count 2")).is_empty());
        assert!(keys_from_specs(&xread, &argv("xread streams")).is_empty());
        // Backwards keyword search (MIGRATE's KEYS) from the end.
        let migrate = [spec(
            BeginSearch::Keyword {
                keyword: "KEYS",
                startfrom: -2,
            },
            FindKeys::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        )];
        let args = argv("migrate h p  0 5 KEYS k1 k2");
        assert_eq!(names(keys_from_specs(&migrate, &args)), ["k1", "k2"]);
        // NOT_KEY specs are skipped.
        let not_key = [KeySpec {
            flags: key_flags::K_NOT_KEY,
            ..mset[0]
        }];
        assert!(keys_from_specs(&not_key, &argv("x a b")).is_empty());
    }
}
