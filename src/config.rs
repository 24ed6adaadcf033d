//! Server configuration: the parameter table behind the command line, the
//! redis.conf-syntax config file, CONFIG GET and CONFIG SET.
//!
//! Every parameter is declared once in `PARAMS` with its type, default and
//! whether CONFIG SET may change it at run time. Values are kept in their
//! canonical text form (what CONFIG GET prints) and decoded into the typed
//! fields the server reads on hot paths.

use crate::glob::glob_match;

mod error;
pub mod oom;
mod rewrite;
pub use error::{
    ArgsError, ConfigSetError, FileError, LineError, RenameError, SetFailure, StartupError,
    ValueError,
};
pub use rewrite::overwrite_file;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte count; accepts `1gb`, `512mb`, `64k` ... and prints bytes.
    Memory {
        min: i64,
        max: i64,
    },
    Enum(&'static [&'static str]),
    Str,
    /// Redis's `save` syntax: pairs of seconds and changes, or "".
    Save,
    /// `notify-keyspace-events` class characters, kept in the canonical
    /// order CONFIG GET prints (`db::notify::flags_to_string`).
    KeyspaceEvents,
    /// A byte count or `<n>%` (`maxmemory-clients`).
    MemoryOrPercent,
    /// Space-separated flags from a list (`shutdown-on-sigterm`).
    Flags(&'static [&'static str]),
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <seconds>`
    /// groups, each merged into the current value.
    ObufLimits,
    /// `oom-score-adj-values`: three integers in -2000..=2000.
    OomValues,
    /// `latency-tracking-info-percentiles`: numbers in 0..=100.
    Percentiles,
    /// An integer written in octal (`unixsocketperm`), as Redis's
    /// OCTAL_CONFIG: parsed and printed base 8.
    Octal {
        max: i64,
    },
}

#[derive(Debug)]
struct Param {
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
    default: &'static str,
    mutable: Mutability,
    /// The typed `Config` field the value is decoded into, if any.
    field: Option<Field>,
}

/// How a parameter's validated value reaches its typed `Config` field:
/// `Int` for the integer and memory kinds, `Bool` for `Kind::Bool`, `Text`
/// for the others (the canonical text).
#[derive(Clone, Copy)]
enum Field {
    Int(fn(&mut Config, i64)),
    Bool(fn(&mut Config, bool)),
    Text(fn(&mut Config, &str)),
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Int(_) => "Field::Int",
            Field::Bool(_) => "Field::Bool",
            Field::Text(_) => "Field::Text",
        })
    }
}

/// A validated value: what `Config::canonical` returns. Integers and
/// booleans stay typed for their fields; `text` is what CONFIG GET prints.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Bool(bool),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Int(n) => n.to_string(),
            Value::Bool(true) => "yes".into(),
            Value::Bool(false) => "no".into(),
            Value::Text(t) => t.clone(),
        }
    }
}

/// Whether CONFIG SET may change a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutability {
    Mutable,
    /// Only settable at startup (Redis's IMMUTABLE_CONFIG).
    Immutable,
    /// Redis's PROTECTED_CONFIG with `enable-protected-configs no` (its
    /// default): refused at run time with its own error text.
    Protected,
}

const fn p(name: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Param {
    Param {
        name,
        alias: None,
        kind,
        default,
        mutable: if mutable {
            Mutability::Mutable
        } else {
            Mutability::Immutable
        },
        field: None,
    }
}

impl Param {
    /// The parameter with its typed field.
    const fn sets(self, field: Field) -> Param {
        Param {
            field: Some(field),
            ..self
        }
    }
}

/// A memory parameter with no lower bound other than 0.
const MEMORY: Kind = Kind::Memory {
    min: 0,
    max: i64::MAX,
};

/// A `size_t` count parameter (Redis's `createSizeTConfig` with 0..LONG_MAX).
const SIZE: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

const INT: Kind = Kind::Int {
    min: 0,
    max: i32::MAX as i64,
};

/// Nested `include`s followed before giving up: a file including itself
/// would otherwise recurse without end (Redis has no bound and crashes).
const INCLUDE_DEPTH_MAX: usize = 16;

/// SIGTERM/SIGINT shutdown flags (Redis's `shutdown_on_sig_enum`).
const SHUTDOWN_FLAGS: &[&str] = &["default", "save", "nosave", "now", "force"];

/// Parameters redlog accepts (and shows in CONFIG GET) but does not act
/// on; a config file or command line that sets one to anything but its
/// default gets them listed once, as a warning, at start.
pub const NO_EFFECT: &[&str] = &[
    "aof-disable-auto-gc",
    "aof-load-truncated",
    "aof-rewrite-incremental-fsync",
    "aof-timestamp-enabled",
    "aof-use-rdb-preamble",
    "appenddirname",
    "appendfilename",
    "crash-log-enabled",
    "crash-memcheck-enabled",
    "dbfilename",
    "disable-thp",
    "dynamic-hz",
    "ignore-warnings",
    "io-threads-do-reads",
    "jemalloc-bg-thread",
    "no-appendfsync-on-rewrite",
    "proc-title-template",
    "rdb-del-sync-files",
    "rdb-save-incremental-fsync",
    "rdbchecksum",
    "rdbcompression",
    "sanitize-dump-payload",
    "set-proc-title",
    "shutdown-on-sigint",
    "shutdown-on-sigterm",
    "shutdown-timeout",
    "socket-mark-id",
    "stop-writes-on-bgsave-error",
    "enable-module-command",
    "server_cpulist",
    "bio_cpulist",
    "aof_rewrite_cpulist",
    "bgsave_cpulist",
    "repl-disable-tcp-nodelay",
    "repl-diskless-load",
    "repl-diskless-sync-delay",
    "repl-diskless-sync-max-replicas",
    "replica-announced",
    "replica-ignore-disk-write-errors",
    "replica-ignore-maxmemory",
    "replica-lazy-flush",
    "propagation-error-behavior",
    "cluster-announce-tls-port",
    "cluster-link-sendbuf-limit",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-dh-params-file",
    "tls-cluster",
    "tls-replication",
    "bind-source-addr",
    "stream-node-max-entries",
    "stream-node-max-bytes",
    "activerehashing",
    "active-defrag-ignore-bytes",
    "active-defrag-threshold-lower",
    "active-defrag-threshold-upper",
    "active-defrag-cycle-min",
    "active-defrag-cycle-max",
    "active-defrag-max-scan-fields",
    "list-max-listpack-size",
    "list-compress-depth",
    "tcp-backlog",
    "tcp-keepalive",
];

/// Redis 7.0's levels, in its error message order.
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const FSYNC: &[&str] = &["everysec", "always", "no"];

/// `appendfsync`: when the WAL is fdatasynced (the one policy enum; the
/// durability stage, `node::durability`, applies it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Appendfsync {
    /// No reply before an fdatasync covering its effects (group commit).
    Always = 0,
    /// A background thread fdatasyncs once a second.
    #[default]
    EverySec = 1,
    /// The OS writes back when it likes.
    No = 2,
}

impl Appendfsync {
    /// The policy named by a config value (`FSYNC`'s names).
    pub fn parse(s: &str) -> Option<Appendfsync> {
        match s {
            "always" => Some(Appendfsync::Always),
            "everysec" => Some(Appendfsync::EverySec),
            "no" => Some(Appendfsync::No),
            _ => None,
        }
    }

    /// The config value naming this policy.
    pub fn name(self) -> &'static str {
        match self {
            Appendfsync::Always => "always",
            Appendfsync::EverySec => "everysec",
            Appendfsync::No => "no",
        }
    }
}
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// The parameter table, in CONFIG GET order for `*`.
static PARAMS: &[Param] = &[
    p("bind", Kind::Str, "127.0.0.1", false).sets(Field::Text(|c, v| c.bind = v.to_string())),
    p("port", Kind::Int { min: 0, max: 65535 }, "6379", false)
        .sets(Field::Int(|c, n| c.port = n as u16)),
    Param {
        name: "dir",
        alias: None,
        kind: Kind::Str,
        default: "./redlog-data",
        mutable: Mutability::Protected,
        field: None,
    }
    .sets(Field::Text(|c, v| c.dir = v.to_string())),
    p("loglevel", Kind::Enum(LOGLEVELS), "notice", true)
        .sets(Field::Text(|c, v| c.loglevel = v.to_string())),
    p("logfile", Kind::Str, "", false),
    p("databases", Kind::Int { min: 16, max: 16 }, "16", false),
    p("requirepass", Kind::Str, "", true).sets(Field::Text(|c, v| {
        c.requirepass = (!v.is_empty()).then(|| v.as_bytes().to_vec())
    })),
    p("timeout", INT, "0", true).sets(Field::Int(|c, n| c.timeout_s = n as u64)),
    p("tcp-keepalive", INT, "300", true),
    p("tcp-backlog", INT, "511", false),
    p(
        "maxclients",
        Kind::Int {
            min: 1,
            max: u32::MAX as i64,
        },
        "10000",
        true,
    )
    .sets(Field::Int(|c, n| c.maxclients = n as usize)),
    // Redis accepts any non-negative int and clamps it to 1..=500 (see `clamp`).
    p("hz", INT, "10", true).sets(Field::Int(|c, n| c.hz = n as u32)),
    // Threads serving client I/O and commands (tokio workers). Redis's
    // `io-threads`: 1 by default, only settable at startup.
    p("io-threads", Kind::Int { min: 1, max: 128 }, "1", false)
        .sets(Field::Int(|c, n| c.io_threads = n.max(1) as usize)),
    p(
        "active-expire-effort",
        Kind::Int { min: 1, max: 10 },
        "1",
        true,
    )
    .sets(Field::Int(|c, n| c.active_expire_effort = n as u32)),
    p(
        "proto-max-bulk-len",
        Kind::Memory {
            min: 1024 * 1024,
            max: i64::MAX,
        },
        "536870912",
        true,
    )
    .sets(Field::Int(|c, n| c.proto_max_bulk_len = n)),
    p("client-query-buffer-limit", MEMORY, "1073741824", true)
        .sets(Field::Int(|c, n| c.client_query_buffer_limit = n as usize)),
    // Also the Lua heap bound of each script VM (at least 32 MiB; 1 GiB
    // when 0): `scripting::lua_memory_limit`.
    p("maxmemory", MEMORY, "0", true),
    p("maxmemory-policy", Kind::Enum(POLICIES), "noeviction", true),
    p(
        "maxmemory-samples",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        "5",
        true,
    ),
    p(
        "maxmemory-eviction-tenacity",
        Kind::Int { min: 0, max: 100 },
        "10",
        true,
    ),
    p("lfu-log-factor", INT, "10", true),
    p("lfu-decay-time", INT, "1", true),
    p("appendonly", Kind::Bool, "yes", false).sets(Field::Bool(|c, b| c.appendonly = b)),
    p("appendfsync", Kind::Enum(FSYNC), "everysec", true).sets(Field::Text(|c, v| {
        // The table accepts only FSYNC's names, which all parse (see the
        // test appendfsync_names_are_the_tables).
        if let Some(policy) = Appendfsync::parse(v) {
            c.appendfsync = policy;
        }
    })),
    p("save", Kind::Save, "", true),
    p("auto-aof-rewrite-percentage", INT, "100", true)
        .sets(Field::Int(|c, n| c.auto_aof_rewrite_percentage = n as u64)),
    p("auto-aof-rewrite-min-size", MEMORY, "67108864", true)
        .sets(Field::Int(|c, n| c.auto_aof_rewrite_min_size = n as u64)),
    p("notify-keyspace-events", Kind::KeyspaceEvents, "", true),
    p("lazyfree-lazy-user-flush", Kind::Bool, "no", true),
    p("cluster-enabled", Kind::Bool, "no", false),
    p("daemonize", Kind::Bool, "no", false),
    p("protected-mode", Kind::Bool, "yes", true).sets(Field::Bool(|c, b| c.protected_mode = b)),
    p(
        "slowlog-log-slower-than",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        "10000",
        true,
    ),
    p("slowlog-max-len", INT, "128", true),
    // redlog extensions (streams on segmented logs, see src/stream).
    p(
        "stream-segment-bytes",
        Kind::Memory {
            min: 4096,
            max: 1 << 40,
        },
        "67108864",
        false,
    )
    .sets(Field::Int(|c, n| c.stream_segment_bytes = n as u64)),
    // The same 64-bit range as XCONFIG's RETENTION-MS.
    p("stream-retention-ms", SIZE, "0", true)
        .sets(Field::Int(|c, n| c.stream_retention_ms = n as u64)),
    p("stream-retention-bytes", MEMORY, "0", true)
        .sets(Field::Int(|c, n| c.stream_retention_bytes = n as u64)),
    Param {
        name: "zset-max-listpack-entries",
        alias: Some("zset-max-ziplist-entries"),
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
        mutable: Mutability::Mutable,
        field: None,
    }
    .sets(Field::Int(|c, n| {
        c.zset_limits.entries = usize::try_from(n).unwrap_or(usize::MAX)
    })),
    Param {
        name: "zset-max-listpack-value",
        alias: Some("zset-max-ziplist-value"),
        kind: MEMORY,
        default: "64",
        mutable: Mutability::Mutable,
        field: None,
    }
    .sets(Field::Int(|c, n| {
        c.zset_limits.value = usize::try_from(n).unwrap_or(usize::MAX)
    })),
    // Redis 7.0's compiled-in defaults (config.c), which differ from the
    // 128 of the sample redis.conf: a server started without a config file
    // reports 512.
    Param {
        name: "hash-max-listpack-entries",
        alias: Some("hash-max-ziplist-entries"),
        kind: SIZE,
        default: "512",
        mutable: Mutability::Mutable,
        field: None,
    }
    .sets(Field::Int(|c, n| c.hash_max_listpack_entries = n as usize)),
    Param {
        name: "hash-max-listpack-value",
        alias: Some("hash-max-ziplist-value"),
        kind: SIZE,
        default: "64",
        mutable: Mutability::Mutable,
        field: None,
    }
    .sets(Field::Int(|c, n| c.hash_max_listpack_value = n as usize)),
    p("set-max-intset-entries", SIZE, "512", true)
        .sets(Field::Int(|c, n| c.set_max_intset_entries = n as usize)),
    p("hll-sparse-max-bytes", MEMORY, "3000", true).sets(Field::Int(|c, n| {
        c.hll_sparse_max_bytes = usize::try_from(n).unwrap_or(usize::MAX)
    })),
    // Sizes quicklist nodes in Redis 7.0; redlog's lists have no nodes, so
    // these are accepted and shown only (OBJECT ENCODING is always
    // quicklist in 7.0 whatever they say).
    Param {
        name: "list-max-listpack-size",
        alias: Some("list-max-ziplist-size"),
        kind: Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        default: "-2",
        mutable: Mutability::Mutable,
        field: None,
    },
    p(
        "list-compress-depth",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "0",
        true,
    ),
    // Stream radix-tree node limits. redlog's stream entries live in
    // segmented logs, not listpack nodes: accepted and shown only.
    p(
        "stream-node-max-entries",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "100",
        true,
    ),
    p("stream-node-max-bytes", MEMORY, "4096", true),
    // Redis frees large values on a background thread with these; redlog
    // frees on the spot (no reply ever waits on it): accepted and shown.
    p("lazyfree-lazy-eviction", Kind::Bool, "no", true),
    p("lazyfree-lazy-expire", Kind::Bool, "no", true),
    p("lazyfree-lazy-server-del", Kind::Bool, "no", true),
    p("lazyfree-lazy-user-del", Kind::Bool, "no", true),
    // Redis's incremental rehashing of its dicts; redlog's tables grow
    // in place. Accepted and shown.
    p("activerehashing", Kind::Bool, "yes", true),
    // Active defragmentation needs Redis's patched jemalloc; redlog uses
    // the stock one, so `activedefrag yes` is refused with the error of a
    // Redis built the same way (Debian's); the tuning knobs are accepted.
    p("activedefrag", Kind::Bool, "no", true),
    p("active-defrag-ignore-bytes", MEMORY, "104857600", true),
    p(
        "active-defrag-threshold-lower",
        Kind::Int { min: 0, max: 1000 },
        "10",
        true,
    ),
    p(
        "active-defrag-threshold-upper",
        Kind::Int { min: 0, max: 1000 },
        "100",
        true,
    ),
    p(
        "active-defrag-cycle-min",
        Kind::Int { min: 1, max: 99 },
        "1",
        true,
    ),
    p(
        "active-defrag-cycle-max",
        Kind::Int { min: 1, max: 99 },
        "25",
        true,
    ),
    p(
        "active-defrag-max-scan-fields",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        "1000",
        true,
    ),
    // ---- Accepted for redis.conf compatibility (see NO_EFFECT) ----
    p("always-show-logo", Kind::Bool, "no", false),
    p("aof-disable-auto-gc", Kind::Bool, "no", true),
    p("aof-load-truncated", Kind::Bool, "yes", true),
    p("aof-rewrite-incremental-fsync", Kind::Bool, "yes", true),
    p("aof-timestamp-enabled", Kind::Bool, "no", true),
    p("aof-use-rdb-preamble", Kind::Bool, "yes", true),
    p("appenddirname", Kind::Str, "appendonlydir", false),
    p("appendfilename", Kind::Str, "appendonly.aof", false),
    p("acllog-max-len", INT, "128", true),
    p("crash-log-enabled", Kind::Bool, "yes", true),
    p("crash-memcheck-enabled", Kind::Bool, "yes", true),
    Param {
        name: "dbfilename",
        alias: None,
        kind: Kind::Str,
        default: "dump.rdb",
        mutable: Mutability::Protected,
        field: None,
    },
    p("disable-thp", Kind::Bool, "yes", false),
    p("dynamic-hz", Kind::Bool, "yes", true),
    p("ignore-warnings", Kind::Str, "", true),
    p("io-threads-do-reads", Kind::Bool, "no", false),
    p("jemalloc-bg-thread", Kind::Bool, "yes", true),
    p(
        "latency-monitor-threshold",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "0",
        true,
    ),
    p("latency-tracking", Kind::Bool, "yes", true),
    p(
        "latency-tracking-info-percentiles",
        Kind::Percentiles,
        "50 99 99.9",
        true,
    ),
    p("no-appendfsync-on-rewrite", Kind::Bool, "no", true),
    p(
        "oom-score-adj",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
        "no",
        true,
    ),
    p("oom-score-adj-values", Kind::OomValues, "0 200 800", true),
    p("pidfile", Kind::Str, "", false),
    p(
        "proc-title-template",
        Kind::Str,
        "{title} {listen-addr} {server-mode}",
        true,
    ),
    p("rdb-del-sync-files", Kind::Bool, "no", true),
    p("rdb-save-incremental-fsync", Kind::Bool, "yes", true),
    p("rdbchecksum", Kind::Bool, "yes", false),
    p("rdbcompression", Kind::Bool, "yes", true),
    p(
        "sanitize-dump-payload",
        Kind::Enum(&["no", "yes", "clients"]),
        "no",
        true,
    ),
    p("set-proc-title", Kind::Bool, "yes", false),
    p(
        "shutdown-on-sigint",
        Kind::Flags(SHUTDOWN_FLAGS),
        "default",
        true,
    ),
    p(
        "shutdown-on-sigterm",
        Kind::Flags(SHUTDOWN_FLAGS),
        "default",
        true,
    ),
    p("shutdown-timeout", INT, "10", true),
    p(
        "socket-mark-id",
        Kind::Int {
            min: 0,
            max: u32::MAX as i64,
        },
        "0",
        true,
    ),
    p("stop-writes-on-bgsave-error", Kind::Bool, "yes", true),
    p(
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
        false,
    ),
    p("syslog-enabled", Kind::Bool, "no", false),
    p(
        "syslog-facility",
        Kind::Enum(&[
            "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ]),
        "local0",
        false,
    ),
    p("syslog-ident", Kind::Str, "redis", false),
    p("tracking-table-max-keys", SIZE, "1000000", true),
    p("unixsocket", Kind::Str, "", false),
    p("unixsocketperm", Kind::Octal { max: 0o777 }, "0", false),
    p(
        "enable-protected-configs",
        Kind::Enum(&["no", "yes", "local"]),
        "no",
        false,
    ),
    p(
        "enable-debug-command",
        Kind::Enum(&["no", "yes", "local"]),
        "no",
        false,
    ),
    p(
        "enable-module-command",
        Kind::Enum(&["no", "yes", "local"]),
        "no",
        false,
    ),
    p(
        "client-output-buffer-limit",
        Kind::ObufLimits,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        true,
    ),
    p("server_cpulist", Kind::Str, "", false),
    p("bio_cpulist", Kind::Str, "", false),
    p("aof_rewrite_cpulist", Kind::Str, "", false),
    p("bgsave_cpulist", Kind::Str, "", false),
    // Busy scripts (`scripting::busy`).
    Param {
        name: "busy-reply-threshold",
        alias: Some("lua-time-limit"),
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        default: "5000",
        mutable: Mutability::Mutable,
        field: None,
    }
    .sets(Field::Int(|c, n| {
        c.busy_reply_threshold_ms = n.max(0) as u64
    })),
    p("bind-source-addr", Kind::Str, "", true),
    // Client eviction (operations issue): a byte count or a percentage of
    // maxmemory, as Redis.
    p("maxmemory-clients", Kind::MemoryOrPercent, "0", true),
    // Replication (`node::replication`). `replicaof host port` starts
    // the replica side at startup; REPLICAOF keeps it current.
    Param {
        name: "replicaof",
        alias: Some("slaveof"),
        kind: Kind::Str,
        default: "",
        mutable: Mutability::Immutable,
        field: None,
    },
    p("masterauth", Kind::Str, "", true),
    p("masteruser", Kind::Str, "", true),
    p(
        "repl-backlog-size",
        Kind::Memory {
            min: 1,
            max: i64::MAX,
        },
        "1048576",
        true,
    ),
    p("repl-backlog-ttl", INT, "3600", true),
    p("repl-disable-tcp-nodelay", Kind::Bool, "no", true),
    p(
        "repl-diskless-load",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
        true,
    ),
    p("repl-diskless-sync", Kind::Bool, "yes", true),
    p("repl-diskless-sync-delay", INT, "5", true),
    p("repl-diskless-sync-max-replicas", INT, "0", true),
    Param {
        name: "repl-ping-replica-period",
        alias: Some("repl-ping-slave-period"),
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        default: "10",
        mutable: Mutability::Mutable,
        field: None,
    },
    p(
        "repl-timeout",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        "60",
        true,
    ),
    Param {
        name: "replica-announce-ip",
        alias: Some("slave-announce-ip"),
        kind: Kind::Str,
        default: "",
        mutable: Mutability::Mutable,
        field: None,
    },
    Param {
        name: "replica-announce-port",
        alias: Some("slave-announce-port"),
        kind: Kind::Int { min: 0, max: 65535 },
        default: "0",
        mutable: Mutability::Mutable,
        field: None,
    },
    p("replica-announced", Kind::Bool, "yes", true),
    p("replica-ignore-disk-write-errors", Kind::Bool, "no", true),
    Param {
        name: "replica-ignore-maxmemory",
        alias: Some("slave-ignore-maxmemory"),
        kind: Kind::Bool,
        default: "yes",
        mutable: Mutability::Mutable,
        field: None,
    },
    Param {
        name: "replica-lazy-flush",
        alias: Some("slave-lazy-flush"),
        kind: Kind::Bool,
        default: "no",
        mutable: Mutability::Mutable,
        field: None,
    },
    Param {
        name: "replica-priority",
        alias: Some("slave-priority"),
        kind: INT,
        default: "100",
        mutable: Mutability::Mutable,
        field: None,
    },
    Param {
        name: "replica-serve-stale-data",
        alias: Some("slave-serve-stale-data"),
        kind: Kind::Bool,
        default: "yes",
        mutable: Mutability::Mutable,
        field: None,
    },
    Param {
        name: "min-replicas-to-write",
        alias: Some("min-slaves-to-write"),
        kind: INT,
        default: "0",
        mutable: Mutability::Mutable,
        field: None,
    }
    .sets(Field::Int(|c, n| c.min_replicas_to_write = n.max(0) as u64)),
    Param {
        name: "min-replicas-max-lag",
        alias: Some("min-slaves-max-lag"),
        kind: INT,
        default: "10",
        mutable: Mutability::Mutable,
        field: None,
    }
    .sets(Field::Int(|c, n| c.min_replicas_max_lag = n.max(0) as u64)),
    p(
        "propagation-error-behavior",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
        true,
    ),
    // Cluster (`crate::cluster`; the replica settings are shown only).
    p("cluster-config-file", Kind::Str, "nodes.conf", false),
    p("cluster-port", Kind::Int { min: 0, max: 65535 }, "0", false),
    p(
        "cluster-node-timeout",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "15000",
        true,
    ),
    p("cluster-announce-ip", Kind::Str, "", true),
    p("cluster-announce-hostname", Kind::Str, "", true),
    p(
        "cluster-announce-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        true,
    ),
    p(
        "cluster-announce-bus-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        true,
    ),
    p(
        "cluster-announce-tls-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        true,
    ),
    p("cluster-require-full-coverage", Kind::Bool, "yes", true),
    p("cluster-allow-reads-when-down", Kind::Bool, "no", true),
    p(
        "cluster-allow-pubsubshard-when-down",
        Kind::Bool,
        "yes",
        true,
    ),
    p("cluster-allow-replica-migration", Kind::Bool, "yes", true),
    p("cluster-migration-barrier", INT, "1", true),
    Param {
        name: "cluster-replica-validity-factor",
        alias: Some("cluster-slave-validity-factor"),
        kind: INT,
        default: "10",
        mutable: Mutability::Mutable,
        field: None,
    },
    Param {
        name: "cluster-replica-no-failover",
        alias: Some("cluster-slave-no-failover"),
        kind: Kind::Bool,
        default: "no",
        mutable: Mutability::Mutable,
        field: None,
    },
    p(
        "cluster-preferred-endpoint-type",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
        true,
    ),
    p("cluster-link-sendbuf-limit", MEMORY, "0", true),
    // TLS (`node::tls`).
    // Settable at startup only here (Redis 7.0 rebinds on CONFIG SET).
    p("tls-port", Kind::Int { min: 0, max: 65535 }, "0", false),
    p("tls-cert-file", Kind::Str, "", true),
    p("tls-key-file", Kind::Str, "", true),
    p("tls-key-file-pass", Kind::Str, "", true),
    p("tls-client-cert-file", Kind::Str, "", true),
    p("tls-client-key-file", Kind::Str, "", true),
    p("tls-client-key-file-pass", Kind::Str, "", true),
    p("tls-dh-params-file", Kind::Str, "", true),
    p("tls-ca-cert-file", Kind::Str, "", true),
    p("tls-ca-cert-dir", Kind::Str, "", true),
    p("tls-protocols", Kind::Str, "", true),
    p("tls-ciphers", Kind::Str, "", true),
    p("tls-ciphersuites", Kind::Str, "", true),
    p(
        "tls-auth-clients",
        Kind::Enum(&["no", "yes", "optional"]),
        "yes",
        true,
    ),
    p("tls-prefer-server-ciphers", Kind::Bool, "no", true),
    p("tls-session-caching", Kind::Bool, "yes", true),
    p("tls-session-cache-size", INT, "20480", true),
    p("tls-session-cache-timeout", INT, "300", true),
    p("tls-cluster", Kind::Bool, "no", true),
    p("tls-replication", Kind::Bool, "no", true),
    // ACL (`crate::acl`): the ACL file, read at startup and by ACL LOAD / SAVE.
    p("aclfile", Kind::Str, "", false),
    p(
        "acl-pubsub-default",
        Kind::Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
        true,
    ),
    Param {
        name: "replica-read-only",
        alias: Some("slave-read-only"),
        kind: Kind::Bool,
        default: "yes",
        mutable: Mutability::Mutable,
        field: None,
    },
];

/// Which commands exist, for `rename-command`'s checks. `config` sits
/// below `commands`, so the command table comes in through this (the
/// table implements it; a list of names does too).
pub trait CommandNames {
    /// `name` (lower case) is a command.
    fn exists(&self, name: &str) -> bool;
}

impl CommandNames for &[&str] {
    fn exists(&self, name: &str) -> bool {
        self.contains(&name)
    }
}

/// Typed view of the parameters the server reads on hot paths.
#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// Parameters set at startup (config file, command line).
    given: std::collections::BTreeSet<&'static str>,
    pub bind: String,
    pub port: u16,
    pub dir: String,
    pub loglevel: String,
    pub requirepass: Option<Vec<u8>>,
    pub hz: u32,
    /// `busy-reply-threshold` (`lua-time-limit`): a script running longer
    /// makes other clients get BUSY (0: never).
    pub busy_reply_threshold_ms: u64,
    /// `io-threads`: runtime worker threads.
    pub io_threads: usize,
    pub active_expire_effort: u32,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: usize,
    pub maxclients: usize,
    /// `protected-mode`: refuse non-loopback clients while the default
    /// user has no password.
    pub protected_mode: bool,
    /// `min-replicas-to-write` / `min-replicas-max-lag` (checked before
    /// every write command: typed here, not parsed per command).
    pub min_replicas_to_write: u64,
    pub min_replicas_max_lag: u64,
    pub timeout_s: u64,
    /// `appendonly yes`: the keyspace is durable through the WAL.
    pub appendonly: bool,
    /// `appendfsync`.
    pub appendfsync: Appendfsync,
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    /// Entry-log segment size of streams (`stream-segment-bytes`).
    pub stream_segment_bytes: u64,
    /// Global stream retention (0 = off), applied by whole segments.
    pub stream_retention_ms: u64,
    pub stream_retention_bytes: u64,
    /// `hash-max-listpack-entries` / `-value`: limits of the compact hash encoding.
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    /// `set-max-intset-entries`: limit of the intset encoding.
    pub set_max_intset_entries: usize,
    /// `hll-sparse-max-bytes`: the largest sparse HyperLogLog.
    pub hll_sparse_max_bytes: usize,
    /// The config file given on the command line, for INFO `config_file`.
    pub config_file: Option<String>,
    /// `rename-command old new` directives (config file and command line
    /// only, as in Redis): `(old, new)`, lowercase; an empty `new`
    /// removes the command.
    pub renamed_commands: Vec<(String, String)>,
    /// `zset-max-listpack-entries` / `zset-max-listpack-value`.
    pub zset_limits: crate::db::zset::ZsetLimits,
    /// `notify-keyspace-events` as class bits. Kept apart from the text:
    /// the canonical text drops `n` next to `A` (as Redis prints it), the
    /// bits do not.
    pub notify_keyspace_events: u32,
    /// The `user` directives (name, then rules), in order, for
    /// `acl::load_config_users` at startup.
    pub users: Vec<Vec<Vec<u8>>>,
}

impl Default for Config {
    fn default() -> Self {
        let values = PARAMS
            .iter()
            .map(|p| (p.name, p.default.to_string()))
            .collect();
        let mut c = Config {
            values,
            given: Default::default(),
            bind: String::new(),
            port: 0,
            dir: String::new(),
            loglevel: String::new(),
            requirepass: None,
            hz: 10,
            busy_reply_threshold_ms: 5000,
            io_threads: 1,
            active_expire_effort: 1,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            maxclients: 0,
            protected_mode: true,
            timeout_s: 0,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            appendonly: true,
            appendfsync: Appendfsync::EverySec,
            auto_aof_rewrite_percentage: 0,
            auto_aof_rewrite_min_size: 0,
            stream_segment_bytes: 0,
            stream_retention_ms: 0,
            stream_retention_bytes: 0,
            hash_max_listpack_entries: 0,
            hash_max_listpack_value: 0,
            set_max_intset_entries: 0,
            hll_sparse_max_bytes: 0,
            config_file: None,
            renamed_commands: Vec::new(),
            zset_limits: Default::default(),
            notify_keyspace_events: 0,
            users: Vec::new(),
        };
        for p in PARAMS.iter().filter(|p| p.field.is_some()) {
            let v = Self::canonical(p, p.default)
                .unwrap_or_else(|e| panic!("{}'s default: {e}", p.name));
            c.store(p, v);
        }
        c
    }
}

fn find_param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| {
        p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
}

/// Parses Redis's memory notation: `1gb`, `100mb`, `64k`, `512` (bytes).
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let units: &[(&str, i64)] = &[
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1_000),
        ("b", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            let n = crate::protocol::parse::parse_i64(num.as_bytes())?;
            return n.checked_mul(*mul);
        }
    }
    crate::protocol::parse::parse_i64(lower.as_bytes())
}

/// `client-output-buffer-limit`: groups of `<class> <hard> <soft>
/// <seconds>` replace their class in `current`; the result lists normal,
/// slave and pubsub, as CONFIG GET prints it. Errors are Redis's.
fn merge_obuf_limits(current: &str, value: &str) -> Result<String, ValueError> {
    let mut classes: Vec<(String, [i64; 3])> = Vec::new();
    let cur: Vec<&str> = current.split_whitespace().collect();
    for g in cur.chunks(4) {
        if let [c, a, b, d] = g {
            let n = |x: &str| x.parse::<i64>().unwrap_or(0);
            classes.push((c.to_string(), [n(a), n(b), n(d)]));
        }
    }
    let args: Vec<&str> = value.split_whitespace().collect();
    if !args.len().is_multiple_of(4) {
        return Err(ValueError::ObufArity);
    }
    let mut updates = Vec::new();
    for g in args.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => return Err(ValueError::ObufClass),
        };
        let hard = parse_memory(g[1]).filter(|n| *n >= 0);
        let soft = parse_memory(g[2]).filter(|n| *n >= 0);
        let secs = crate::protocol::parse::parse_i64(g[3].as_bytes()).filter(|n| *n >= 0);
        let (Some(hard), Some(soft), Some(secs)) = (hard, soft, secs) else {
            return Err(ValueError::ObufValue);
        };
        updates.push((class, [hard, soft, secs]));
    }
    for (class, v) in updates {
        if let Some(c) = classes.iter_mut().find(|(n, _)| n == class) {
            c.1 = v;
        }
    }
    Ok(classes
        .iter()
        .map(|(c, v)| format!("{c} {} {} {}", v[0], v[1], v[2]))
        .collect::<Vec<_>>()
        .join(" "))
}

impl Config {
    /// Stores a validated value: its text for CONFIG GET, and its typed
    /// field if it has one.
    fn store(&mut self, p: &Param, v: Value) {
        if let Some(field) = p.field {
            match (field, &v) {
                (Field::Int(set), Value::Int(n)) => set(self, *n),
                (Field::Bool(set), Value::Bool(b)) => set(self, *b),
                (Field::Text(set), v) => set(self, &v.text()),
                // A field whose kind does not match its parameter's is a
                // table bug: `every_field_fits_its_kind` rules it out.
                (field, v) => debug_assert!(false, "{}: {field:?} for {v:?}", p.name),
            }
        }
        self.values.insert(p.name, v.text());
    }

    /// `client-output-buffer-limit`'s pubsub class: hard and soft limits in
    /// bytes, soft seconds.
    pub fn pubsub_output_limits(&self) -> (u64, u64, u64) {
        self.output_limits("pubsub")
            .unwrap_or((32 << 20, 8 << 20, 60))
    }

    /// `client-output-buffer-limit` of one class (`normal`, `slave`,
    /// `pubsub`): hard and soft limits in bytes, soft seconds.
    pub fn output_limits(&self, class: &str) -> Option<(u64, u64, u64)> {
        let v = self.get("client-output-buffer-limit").unwrap_or("");
        let parts: Vec<&str> = v.split_whitespace().collect();
        parts.chunks(4).find(|g| g[0] == class).and_then(|g| {
            Some((
                g.get(1)?.parse().ok()?,
                g.get(2)?.parse().ok()?,
                g.get(3)?.parse().ok()?,
            ))
        })
    }

    /// The memory limit's parameters (`maxmemory`, `maxmemory-policy`,
    /// `maxmemory-samples`, `maxmemory-eviction-tenacity`, `lfu-*`).
    pub fn evict_config(&self) -> crate::db::evict::EvictConfig {
        let int = |n: &str| self.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        crate::db::evict::EvictConfig {
            maxmemory: int("maxmemory"),
            policy: self
                .get("maxmemory-policy")
                .and_then(crate::db::evict::Policy::parse)
                .unwrap_or_default(),
            samples: int("maxmemory-samples") as usize,
            tenacity: int("maxmemory-eviction-tenacity") as u32,
            lfu_log_factor: int("lfu-log-factor") as u32,
            lfu_decay_time: int("lfu-decay-time") as u32,
        }
    }

    /// The `lazyfree-lazy-*` settings (`db::lazyfree`).
    pub fn lazyfree_settings(&self) -> crate::db::lazyfree::Settings {
        let yes = |n: &str| self.get(n) == Some("yes");
        crate::db::lazyfree::Settings {
            user_del: yes("lazyfree-lazy-user-del"),
            user_flush: yes("lazyfree-lazy-user-flush"),
            server_del: yes("lazyfree-lazy-server-del"),
            expire: yes("lazyfree-lazy-expire"),
            eviction: yes("lazyfree-lazy-eviction"),
        }
    }

    /// The canonical value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        let p = find_param(name)?;
        self.values.get(p.name).map(|s| s.as_str())
    }

    /// `(name, value)` pairs whose name (or alias) matches the glob pattern
    /// (case-insensitive, as CONFIG GET).
    pub fn get_matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for p in PARAMS {
            let value = self.values.get(p.name).cloned().unwrap_or_default();
            if glob_match(pattern, p.name.as_bytes(), true) {
                out.push((p.name, value.clone()));
            }
            if let Some(alias) = p.alias {
                if glob_match(pattern, alias.as_bytes(), true) {
                    out.push((alias, value));
                }
            }
        }
        out
    }

    /// `canonical`, except that buffer limits merge into the current value
    /// (one class per directive, as Redis).
    fn canonical_for(&self, p: &Param, value: &str) -> Result<Value, ValueError> {
        match p.kind {
            Kind::ObufLimits => {
                let current = self.values.get(p.name).map_or(p.default, |s| s.as_str());
                merge_obuf_limits(current, value).map(Value::Text)
            }
            _ => Self::canonical(p, value),
        }
    }

    /// Whether the config file or command line set `name`.
    pub fn is_given(&self, name: &str) -> bool {
        find_param(name).is_some_and(|p| self.given.contains(p.name))
    }

    /// The parameters the config file or command line set that redlog
    /// accepts but does not act on (`NO_EFFECT`), in table order.
    pub fn no_effect_settings(&self) -> Vec<&'static str> {
        PARAMS
            .iter()
            .filter(|p| NO_EFFECT.contains(&p.name) && self.given.contains(p.name))
            .map(|p| p.name)
            .collect()
    }

    /// Validates a value and returns its canonical form.
    fn canonical(p: &Param, value: &str) -> Result<Value, ValueError> {
        // Redis's `isValidDBfilename` / `isValidAOFfilename` /
        // `isValidAOFdirname`: a file name, not a path.
        let is_path = value.contains('/') || value.contains('\\');
        match p.name {
            "dbfilename" | "appendfilename" if is_path => {
                return Err(ValueError::IsAPath {
                    param: p.name,
                    what: "filename",
                })
            }
            "appenddirname" if is_path => {
                return Err(ValueError::IsAPath {
                    param: p.name,
                    what: "dirname",
                })
            }
            // `yes` and `relative` are one value in Redis's enum, which
            // prints its first name.
            "oom-score-adj" if value.eq_ignore_ascii_case("relative") => {
                return Ok(Value::Text("yes".into()))
            }
            _ => {}
        }
        if p.name == "activedefrag" && value.eq_ignore_ascii_case("yes") {
            return Err(ValueError::ActiveDefrag);
        }
        match p.kind {
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" => Ok(Value::Bool(true)),
                "no" => Ok(Value::Bool(false)),
                _ => Err(ValueError::NotBool),
            },
            Kind::Int { min, max } => {
                let n = crate::protocol::parse::parse_i64(value.as_bytes())
                    .ok_or(ValueError::NotInteger)?;
                if n < min || n > max {
                    return Err(ValueError::OutOfRange(min, max));
                }
                // Redis clamps hz to CONFIG_MIN_HZ..=CONFIG_MAX_HZ.
                let n = if p.name == "hz" { n.clamp(1, 500) } else { n };
                Ok(Value::Int(n))
            }
            Kind::Memory { min, max } => {
                let n = parse_memory(value)
                    .filter(|n| *n >= 0)
                    .ok_or(ValueError::NotMemory)?;
                if n < min || n > max {
                    return Err(ValueError::OutOfRange(min, max));
                }
                Ok(Value::Int(n))
            }
            Kind::Enum(names) => {
                let v = value.to_ascii_lowercase();
                if names.contains(&v.as_str()) {
                    Ok(Value::Text(v))
                } else {
                    Err(ValueError::NotOneOf(names))
                }
            }
            Kind::Str => Ok(Value::Text(value.to_string())),
            Kind::KeyspaceEvents => crate::db::notify::parse_flags(value)
                .map(|f| Value::Text(crate::db::notify::flags_to_string(f)))
                .ok_or(ValueError::KeyspaceEvents),
            Kind::Flags(names) => {
                let mut out = Vec::new();
                for f in value.split_whitespace() {
                    let f = f.to_ascii_lowercase();
                    if !names.contains(&f.as_str()) {
                        return Err(ValueError::NotOneOf(names));
                    }
                    out.push(f);
                }
                Ok(Value::Text(out.join(" ")))
            }
            Kind::ObufLimits => merge_obuf_limits(p.default, value).map(Value::Text),
            Kind::MemoryOrPercent => match value.strip_suffix('%') {
                Some(pct) => match crate::protocol::parse::parse_i64(pct.as_bytes()) {
                    Some(n) if (0..=100).contains(&n) => Ok(Value::Text(format!("{n}%"))),
                    Some(n) if n > 100 => Err(ValueError::PercentAbove100),
                    _ => Err(ValueError::NotMemoryOrPercent),
                },
                None => parse_memory(value)
                    .filter(|n| *n >= 0)
                    .map(|n| Value::Text(n.to_string()))
                    .ok_or(ValueError::NotMemoryOrPercent),
            },
            Kind::OomValues => {
                // Split on single spaces, as Redis's sdssplitlen: two
                // spaces make an empty (wrong) count.
                let parts: Vec<&str> = value.split(' ').collect();
                if parts.len() != 3 {
                    return Err(ValueError::OomArity);
                }
                let mut out = Vec::new();
                for x in parts {
                    // strtoll with an end check, as Redis: `+5`, `007`
                    // and the empty string (0) pass.
                    let n = if x.is_empty() {
                        Ok(0)
                    } else {
                        x.parse::<i64>()
                    };
                    match n {
                        Ok(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
                        _ => return Err(ValueError::OomValue),
                    }
                }
                Ok(Value::Text(out.join(" ")))
            }
            Kind::Octal { max } => {
                let n = i64::from_str_radix(value, 8).map_err(|_| ValueError::NotInteger)?;
                if !(0..=max).contains(&n) {
                    return Err(ValueError::OutOfRange(0, max));
                }
                Ok(Value::Text(format!("{n:o}")))
            }
            Kind::Percentiles => {
                let mut out = Vec::new();
                for x in value.split_whitespace() {
                    match x.parse::<f64>() {
                        Ok(n) if (0.0..=100.0).contains(&n) => out.push(n.to_string()),
                        _ => return Err(ValueError::Percentile),
                    }
                }
                Ok(Value::Text(out.join(" ")))
            }
            Kind::Save => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                if !parts.len().is_multiple_of(2) || parts.iter().any(|x| x.parse::<u64>().is_err())
                {
                    return Err(ValueError::Save);
                }
                Ok(Value::Text(parts.join(" ")))
            }
        }
    }

    /// Keeps the typed values that the canonical text cannot carry.
    fn set_bits(&mut self, p: &Param, value: &str) {
        if let Kind::KeyspaceEvents = p.kind {
            self.notify_keyspace_events = crate::db::notify::parse_flags(value).unwrap_or(0);
        }
    }

    /// Sets a value the server itself changed (REPLICAOF sets
    /// `replicaof`), bypassing mutability; unknown names are ignored.
    pub fn set_internal(&mut self, name: &str, value: &str) {
        if let Some(p) = find_param(name) {
            self.values.insert(p.name, value.to_string());
        }
    }

    /// Sets a parameter at startup (command line or config file): every
    /// parameter is settable.
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), StartupError> {
        let p = find_param(name).ok_or_else(|| StartupError::BadDirective(name.to_string()))?;
        let v = self
            .canonical_for(p, value)
            .map_err(|source| StartupError::Value {
                name: name.to_string(),
                value: value.to_string(),
                source,
            })?;
        self.given.insert(p.name);
        self.store(p, v);
        self.set_bits(p, value);
        Ok(())
    }

    /// CONFIG SET of several parameters at once; all or nothing, as Redis 7.
    /// Errors are CONFIG SET's reply texts. As Redis's `configSetCommand`,
    /// every name is checked (unknown, immutable, protected, given twice)
    /// before any value, and the first problem found is reported.
    pub fn set_runtime(&mut self, pairs: &[(String, String)]) -> Result<(), ConfigSetError> {
        self.set_runtime_from(pairs, false)
    }

    /// `set_runtime` for a client: `local` (loopback or Unix socket) is
    /// what `enable-protected-configs local` asks of it (Redis's
    /// `allowProtectedAction`), for the PROTECTED_CONFIG parameters (`dir`,
    /// `dbfilename`).
    pub fn set_runtime_from(
        &mut self,
        pairs: &[(String, String)],
        local: bool,
    ) -> Result<(), ConfigSetError> {
        let protected_ok = match self.get("enable-protected-configs") {
            Some("yes") => true,
            Some("local") => local,
            _ => false,
        };
        let failed = |name: &str, why: SetFailure| ConfigSetError::Failed {
            name: name.to_string(),
            why,
        };
        let mut params = Vec::with_capacity(pairs.len());
        for (i, (name, _)) in pairs.iter().enumerate() {
            let Some(p) = find_param(name) else {
                return Err(ConfigSetError::Unknown(name.clone()));
            };
            match p.mutable {
                Mutability::Mutable => {}
                Mutability::Immutable => return Err(failed(name, SetFailure::Immutable)),
                Mutability::Protected if !protected_ok => {
                    return Err(failed(name, SetFailure::Protected))
                }
                Mutability::Protected => {}
            }
            // Redis 7.0 compares the names as given: an alias and its
            // parameter in one call are not a duplicate (the last wins).
            if pairs[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(failed(name, SetFailure::Duplicate));
            }
            params.push(p);
        }
        let mut staged = Vec::with_capacity(pairs.len());
        for (p, (name, value)) in params.into_iter().zip(pairs) {
            let v = self
                .canonical_for(p, value)
                .map_err(|e| failed(name, e.into()))?;
            staged.push((p, v, value));
        }
        // Redis's `updateMaxclients`: more clients need more descriptors.
        for (p, v, _) in &staged {
            if let (&"maxclients", Value::Int(n)) = (&p.name, v) {
                let n = u64::try_from(*n).unwrap_or(u64::MAX);
                if n > self.maxclients as u64 {
                    crate::fdlimit::check_runtime(n).map_err(|e| failed("maxclients", e.into()))?;
                }
            }
        }
        for (p, v, value) in staged {
            self.store(p, v);
            self.set_bits(p, value);
        }
        Ok(())
    }

    /// Reads redis.conf syntax: one directive per line, `#` comments, values
    /// possibly quoted, `include <path>` (read in place, nested; a relative
    /// path is relative to the working directory, as in Redis). Errors name
    /// the line.
    /// `names` answers whether a command exists (`rename-command`'s check);
    /// the server passes its command table.
    pub fn load_file_text(
        &mut self,
        text: &str,
        names: &dyn CommandNames,
    ) -> Result<(), FileError> {
        self.load_text_nested(text, 0, names)
    }

    fn load_text_nested(
        &mut self,
        text: &str,
        depth: usize,
        names: &dyn CommandNames,
    ) -> Result<(), FileError> {
        for (i, line) in text.lines().enumerate() {
            let at = |source: LineError| FileError::Line {
                line: i + 1,
                source,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args = crate::protocol::split_args(line.as_bytes())
                .ok_or_else(|| at(LineError::Quotes))?;
            if args.len() >= 2 && args[0].eq_ignore_ascii_case(b"user") {
                self.users.push(args[1..].to_vec());
                continue;
            }
            let args: Vec<String> = args
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            let Some((name, rest)) = args.split_first() else {
                continue;
            };
            if name.eq_ignore_ascii_case("rename-command") {
                self.rename_command(rest, names).map_err(|e| at(e.into()))?;
                continue;
            }
            if name.eq_ignore_ascii_case("include") {
                let [path] = rest else {
                    return Err(at(LineError::IncludeArity));
                };
                if depth >= INCLUDE_DEPTH_MAX {
                    return Err(at(LineError::IncludeDepth(INCLUDE_DEPTH_MAX)));
                }
                let inner = std::fs::read_to_string(path).map_err(|e| {
                    at(LineError::IncludeOpen {
                        path: path.clone(),
                        cause: e.to_string(),
                    })
                })?;
                self.load_text_nested(&inner, depth + 1, names)
                    .map_err(|e| FileError::Included {
                        path: path.clone(),
                        source: Box::new(e),
                    })?;
                continue;
            }
            self.set_startup(name, &rest.join(" "))
                .map_err(|e| at(e.into()))?;
        }
        Ok(())
    }

    /// `rename-command <old> <new>`, with Redis's checks: the command
    /// exists, the new name does not; `""` removes the command.
    fn rename_command(
        &mut self,
        args: &[String],
        names: &dyn CommandNames,
    ) -> Result<(), RenameError> {
        let [old, new] = args else {
            return Err(RenameError::Arity);
        };
        let (old, new) = (old.to_ascii_lowercase(), new.to_ascii_lowercase());
        let exists = |n: &str| {
            let renamed_away = self.renamed_commands.iter().any(|(o, _)| o == n);
            let renamed_to = self.renamed_commands.iter().any(|(_, w)| w == n);
            renamed_to || (!renamed_away && names.exists(n))
        };
        if !exists(&old) {
            return Err(RenameError::NoSuchCommand);
        }
        if !new.is_empty() && exists(&new) {
            return Err(RenameError::TargetExists);
        }
        self.renamed_commands.push((old, new));
        Ok(())
    }

    /// Parses `redlog [config-file] [--option value ...]`, as redis-server.
    /// A `--name` takes every following argument up to the next `--name`.
    /// `names` as in [`Config::load_file_text`].
    pub fn from_args(args: &[String], names: &dyn CommandNames) -> Result<Config, ArgsError> {
        let mut cfg = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first).map_err(|e| ArgsError::Open {
                    path: first.clone(),
                    cause: e.to_string(),
                })?;
                cfg.load_file_text(&text, names)?;
                // Absolute, as Redis's `getAbsolutePath` (INFO config_file,
                // CONFIG REWRITE).
                cfg.config_file = Some(
                    std::path::absolute(first)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| first.clone()),
                );
                rest = &rest[1..];
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let Some(name) = rest[i].strip_prefix("--") else {
                return Err(ArgsError::Unexpected(rest[i].clone()));
            };
            let mut j = i + 1;
            while j < rest.len() && !rest[j].starts_with("--") {
                j += 1;
            }
            if name.eq_ignore_ascii_case("rename-command") {
                cfg.rename_command(&rest[i + 1..j], names)?;
                i = j;
                continue;
            }
            let value = rest[i + 1..j].join(" ");
            if name.eq_ignore_ascii_case("user") && j > i + 1 {
                cfg.users.push(
                    rest[i + 1..j]
                        .iter()
                        .map(|a| a.as_bytes().to_vec())
                        .collect(),
                );
                i = j;
                continue;
            }
            if j == i + 1
                && !matches!(
                    find_param(name).map(|p| p.kind),
                    Some(Kind::Save | Kind::Str | Kind::KeyspaceEvents | Kind::Flags(_))
                )
            {
                return Err(ArgsError::NeedsValue(name.to_string()));
            }
            cfg.set_startup(name, &value)?;
            i = j;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands these tests rename.
    const NAMES: &[&str] = &["get", "set", "flushall"];

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn command_line() {
        let c = Config::from_args(
            &args("--port 6380 --dir /tmp/x --appendfsync always"),
            &NAMES,
        )
        .unwrap();
        assert_eq!(c.port, 6380);
        assert_eq!(c.dir, "/tmp/x");
        assert_eq!(c.get("appendfsync"), Some("always"));
        assert_eq!(c.appendfsync, Appendfsync::Always);
        assert!(Config::from_args(&args("--nope 1"), &NAMES).is_err());
        assert!(Config::from_args(&args("--port abc"), &NAMES).is_err());
        assert!(Config::from_args(&args("--port"), &NAMES).is_err());
    }

    #[test]
    fn appendfsync_names_are_the_tables() {
        for name in FSYNC {
            let p = Appendfsync::parse(name).unwrap();
            assert_eq!(p.name(), *name);
        }
        assert_eq!(Appendfsync::parse("sometimes"), None);
        let c = Config::from_args(&args("--appendfsync NO"), &NAMES).unwrap();
        assert_eq!(c.appendfsync, Appendfsync::No);
        assert_eq!(Config::default().appendfsync, Appendfsync::EverySec);
    }

    #[test]
    fn every_field_fits_its_kind() {
        for p in PARAMS {
            let Some(field) = p.field else { continue };
            let fits = matches!(
                (field, p.kind),
                (Field::Int(_), Kind::Int { .. } | Kind::Memory { .. })
                    | (Field::Bool(_), Kind::Bool)
                    | (Field::Text(_), Kind::Str | Kind::Enum(_))
            );
            assert!(fits, "{}: {field:?} for {:?}", p.name, p.kind);
        }
        // The typed fields start at their parameters' defaults.
        let c = Config::default();
        assert_eq!((c.port, c.hz, c.maxclients), (6379, 10, 10000));
        assert_eq!((c.dir.as_str(), c.protected_mode), ("./redlog-data", true));
        assert_eq!(c.zset_limits.entries, 128);
        assert_eq!(c.hll_sparse_max_bytes, 3000);
    }

    #[test]
    fn typed_fields_follow_config_set() {
        let mut c = Config::default();
        c.set_runtime(&[
            ("hz".into(), "1000".into()),
            ("appendfsync".into(), "always".into()),
            ("protected-mode".into(), "no".into()),
            ("zset-max-ziplist-entries".into(), "7".into()),
            ("client-query-buffer-limit".into(), "2mb".into()),
        ])
        .unwrap();
        assert_eq!(c.hz, 500);
        assert_eq!(c.get("hz"), Some("500"));
        assert_eq!(c.appendfsync, Appendfsync::Always);
        assert!(!c.protected_mode);
        assert_eq!(c.zset_limits.entries, 7);
        assert_eq!(c.client_query_buffer_limit, 2 << 20);
    }

    #[test]
    fn memory_units() {
        let mut c = Config::default();
        c.set_startup("proto-max-bulk-len", "1mb").unwrap();
        assert_eq!(c.get("proto-max-bulk-len"), Some("1048576"));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("5k"), Some(5000));
    }

    #[test]
    fn config_file_syntax() {
        let mut c = Config::default();
        c.load_file_text(
            "# comment\nport 7000\nrequirepass \"se cret\"\nsave 900 1 300 10\n",
            &NAMES,
        )
        .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.requirepass.as_deref(), Some(&b"se cret"[..]));
        assert_eq!(c.get("save"), Some("900 1 300 10"));
        assert!(c
            .load_file_text("bogus 1\n", &NAMES)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }

    #[test]
    fn keyspace_events_are_validated_and_canonical() {
        let mut c = Config::default();
        c.set_runtime(&[("notify-keyspace-events".into(), "KEA".into())])
            .unwrap();
        assert_eq!(c.get("notify-keyspace-events"), Some("AKE"));
        c.set_runtime(&[("notify-keyspace-events".into(), "AKEn".into())])
            .unwrap();
        assert_eq!(c.get("notify-keyspace-events"), Some("AKE"));
        assert_ne!(c.notify_keyspace_events & crate::db::notify::NEW, 0);
        let e = c
            .set_runtime(&[("notify-keyspace-events".into(), "E$ x".into())])
            .unwrap_err();
        assert_eq!(e.to_string(), "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
        assert_eq!(c.get("notify-keyspace-events"), Some("AKE"));
    }

    #[test]
    fn rename_command_is_checked_as_redis() {
        let mut c = Config::default();
        c.load_file_text(
            "rename-command GET \"\"\nrename-command set myset\n",
            &NAMES,
        )
        .unwrap();
        assert_eq!(
            c.renamed_commands,
            vec![
                ("get".to_string(), String::new()),
                ("set".to_string(), "myset".to_string())
            ]
        );
        let e = Config::default()
            .load_file_text("rename-command nope x\n", &NAMES)
            .unwrap_err();
        assert_eq!(e.to_string(), "line 1: No such command in rename-command");
        let e = Config::default()
            .load_file_text("rename-command get set\n", &NAMES)
            .unwrap_err();
        assert_eq!(e.to_string(), "line 1: Target command name already exists");
        let c = Config::from_args(&args("--rename-command flushall wipe"), &NAMES).unwrap();
        assert_eq!(c.renamed_commands, vec![("flushall".into(), "wipe".into())]);
    }

    #[test]
    fn include_nests_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.conf");
        let b = dir.path().join("b.conf");
        std::fs::write(&b, "timeout 9\n").unwrap();
        std::fs::write(&a, format!("hz 20\ninclude {}\n", b.display())).unwrap();
        let mut c = Config::default();
        c.load_file_text(
            &format!("port 7001\ninclude {}\nhz 30\n", a.display()),
            &NAMES,
        )
        .unwrap();
        assert_eq!((c.port, c.hz, c.timeout_s), (7001, 30, 9));
        std::fs::write(&b, format!("include {}\n", b.display())).unwrap();
        let e = Config::default()
            .load_file_text(&format!("include {}\n", b.display()), &NAMES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("too many nested includes"), "{e}");
        let e = Config::default()
            .load_file_text("include /nonexistent/x.conf\n", &NAMES)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("can't open config file '/nonexistent/x.conf'"),
            "{e}"
        );
    }

    #[test]
    fn runtime_set_is_atomic() {
        let mut c = Config::default();
        let e = c
            .set_runtime(&[("hz".into(), "20".into()), ("port".into(), "1".into())])
            .unwrap_err();
        assert_eq!(e.to_string(), "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
        assert_eq!(c.hz, 10);
    }
}
