//! Server configuration: the parameter table behind the command line, the
//! redis.conf-syntax config file, CONFIG GET and CONFIG SET.
//!
//! Every parameter is declared once in `PARAMS` with its type, default and
//! whether CONFIG SET may change it at run time. Values are kept in their
//! canonical text form (what CONFIG GET prints) and decoded into the typed
//! fields the server reads on hot paths.

use crate::glob::glob_match;
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
}

#[derive(Debug)]
struct Param {
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
    default: &'static str,
    mutable: Mutability,
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

/// Redis 7.0's levels, in its error message order.
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const FSYNC: &[&str] = &["everysec", "always", "no"];
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
    p("bind", Kind::Str, "127.0.0.1", false),
    p("port", Kind::Int { min: 0, max: 65535 }, "6379", false),
    Param {
        name: "dir",
        alias: None,
        kind: Kind::Str,
        default: "./redlog-data",
        mutable: Mutability::Protected,
    },
    p("loglevel", Kind::Enum(LOGLEVELS), "notice", true),
    p("logfile", Kind::Str, "", false),
    p("databases", Kind::Int { min: 16, max: 16 }, "16", false),
    p("requirepass", Kind::Str, "", true),
    p("timeout", INT, "0", true),
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
    ),
    // Redis accepts any non-negative int and clamps it to 1..=500 (see `clamp`).
    p("hz", INT, "10", true),
    // Threads serving client I/O and commands (tokio workers). Redis's
    // `io-threads`: 1 by default, only settable at startup.
    p("io-threads", Kind::Int { min: 1, max: 128 }, "1", false),
    p(
        "active-expire-effort",
        Kind::Int { min: 1, max: 10 },
        "1",
        true,
    ),
    p(
        "proto-max-bulk-len",
        Kind::Memory {
            min: 1024 * 1024,
            max: i64::MAX,
        },
        "536870912",
        true,
    ),
    p("client-query-buffer-limit", MEMORY, "1073741824", true),
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
    p("appendonly", Kind::Bool, "yes", false),
    p("appendfsync", Kind::Enum(FSYNC), "everysec", true),
    p("save", Kind::Save, "", true),
    p("auto-aof-rewrite-percentage", INT, "100", true),
    p("auto-aof-rewrite-min-size", MEMORY, "67108864", true),
    p("notify-keyspace-events", Kind::KeyspaceEvents, "", true),
    p("lazyfree-lazy-user-flush", Kind::Bool, "no", true),
    p("cluster-enabled", Kind::Bool, "no", false),
    p("daemonize", Kind::Bool, "no", false),
    p("protected-mode", Kind::Bool, "yes", true),
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
    ),
    p("stream-retention-ms", INT, "0", true),
    p("stream-retention-bytes", MEMORY, "0", true),
    Param {
        name: "zset-max-listpack-entries",
        alias: Some("zset-max-ziplist-entries"),
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
        mutable: Mutability::Mutable,
    },
    Param {
        name: "zset-max-listpack-value",
        alias: Some("zset-max-ziplist-value"),
        kind: MEMORY,
        default: "64",
        mutable: Mutability::Mutable,
    },
    // Redis 7.0's compiled-in defaults (config.c), which differ from the
    // 128 of the sample redis.conf: a server started without a config file
    // reports 512.
    Param {
        name: "hash-max-listpack-entries",
        alias: Some("hash-max-ziplist-entries"),
        kind: SIZE,
        default: "512",
        mutable: Mutability::Mutable,
    },
    Param {
        name: "hash-max-listpack-value",
        alias: Some("hash-max-ziplist-value"),
        kind: SIZE,
        default: "64",
        mutable: Mutability::Mutable,
    },
    p("set-max-intset-entries", SIZE, "512", true),
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
    Param {
        name: "replica-read-only",
        alias: Some("slave-read-only"),
        kind: Kind::Bool,
        default: "yes",
        mutable: Mutability::Mutable,
    },
];

/// Typed view of the parameters the server reads on hot paths.
#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    pub bind: String,
    pub port: u16,
    pub dir: String,
    pub loglevel: String,
    pub requirepass: Option<Vec<u8>>,
    pub hz: u32,
    /// `io-threads`: runtime worker threads.
    pub io_threads: usize,
    pub active_expire_effort: u32,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: usize,
    pub maxclients: usize,
    pub timeout_s: u64,
    /// `appendonly yes`: the keyspace is durable through the WAL.
    pub appendonly: bool,
    /// `appendfsync`: always, everysec or no.
    pub appendfsync: String,
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
    /// The config file given on the command line, for INFO `config_file`.
    pub config_file: Option<String>,
    /// `zset-max-listpack-entries` / `zset-max-listpack-value`.
    pub zset_limits: crate::db::zset::ZsetLimits,
    /// `notify-keyspace-events` as class bits. Kept apart from the text:
    /// the canonical text drops `n` next to `A` (as Redis prints it), the
    /// bits do not.
    pub notify_keyspace_events: u32,
}

impl Default for Config {
    fn default() -> Self {
        let values = PARAMS
            .iter()
            .map(|p| (p.name, p.default.to_string()))
            .collect();
        let mut c = Config {
            values,
            bind: String::new(),
            port: 0,
            dir: String::new(),
            loglevel: String::new(),
            requirepass: None,
            hz: 10,
            io_threads: 1,
            active_expire_effort: 1,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            maxclients: 0,
            timeout_s: 0,
            appendonly: true,
            appendfsync: String::new(),
            auto_aof_rewrite_percentage: 0,
            auto_aof_rewrite_min_size: 0,
            stream_segment_bytes: 0,
            stream_retention_ms: 0,
            stream_retention_bytes: 0,
            hash_max_listpack_entries: 0,
            hash_max_listpack_value: 0,
            set_max_intset_entries: 0,
            config_file: None,
            zset_limits: Default::default(),
            notify_keyspace_events: 0,
        };
        c.refresh();
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

impl Config {
    fn refresh(&mut self) {
        let get = |n: &str| self.values.get(n).cloned().unwrap_or_default();
        let int = |n: &str| get(n).parse::<i64>().unwrap_or(0);
        self.bind = get("bind");
        self.port = int("port") as u16;
        self.dir = get("dir");
        self.loglevel = get("loglevel");
        let pass = get("requirepass");
        self.requirepass = (!pass.is_empty()).then(|| pass.into_bytes());
        self.hz = int("hz") as u32;
        self.io_threads = int("io-threads").max(1) as usize;
        self.active_expire_effort = int("active-expire-effort") as u32;
        self.proto_max_bulk_len = int("proto-max-bulk-len");
        self.client_query_buffer_limit = int("client-query-buffer-limit") as usize;
        self.maxclients = int("maxclients") as usize;
        self.timeout_s = int("timeout") as u64;
        self.appendonly = get("appendonly") == "yes";
        self.appendfsync = get("appendfsync");
        self.auto_aof_rewrite_percentage = int("auto-aof-rewrite-percentage") as u64;
        self.auto_aof_rewrite_min_size = int("auto-aof-rewrite-min-size") as u64;
        self.zset_limits = crate::db::zset::ZsetLimits {
            entries: usize::try_from(int("zset-max-listpack-entries")).unwrap_or(usize::MAX),
            value: usize::try_from(int("zset-max-listpack-value")).unwrap_or(usize::MAX),
        };
        self.stream_segment_bytes = int("stream-segment-bytes") as u64;
        self.stream_retention_ms = int("stream-retention-ms") as u64;
        self.stream_retention_bytes = int("stream-retention-bytes") as u64;
        self.hash_max_listpack_entries = int("hash-max-listpack-entries") as usize;
        self.hash_max_listpack_value = int("hash-max-listpack-value") as usize;
        self.set_max_intset_entries = int("set-max-intset-entries") as usize;
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

    /// Validates a value and returns its canonical form.
    fn canonical(p: &Param, value: &str) -> Result<String, String> {
        match p.kind {
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" => Ok("yes".into()),
                "no" => Ok("no".into()),
                _ => Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Int { min, max } => {
                let n = crate::protocol::parse::parse_i64(value.as_bytes())
                    .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
                if n < min || n > max {
                    return Err(format!(
                        "argument must be between {min} and {max} inclusive"
                    ));
                }
                // Redis clamps hz to CONFIG_MIN_HZ..=CONFIG_MAX_HZ.
                let n = if p.name == "hz" { n.clamp(1, 500) } else { n };
                Ok(n.to_string())
            }
            Kind::Memory { min, max } => {
                let n = parse_memory(value)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| "argument must be a memory value".to_string())?;
                if n < min || n > max {
                    return Err(format!(
                        "argument must be between {min} and {max} inclusive"
                    ));
                }
                Ok(n.to_string())
            }
            Kind::Enum(names) => {
                let v = value.to_ascii_lowercase();
                if names.contains(&v.as_str()) {
                    Ok(v)
                } else {
                    Err("argument(s) must be one of the following: ".to_string()
                        + &names.join(", "))
                }
            }
            Kind::Str => Ok(value.to_string()),
            Kind::KeyspaceEvents => crate::db::notify::parse_flags(value)
                .map(crate::db::notify::flags_to_string)
                .ok_or_else(|| crate::db::notify::INVALID_FLAGS.to_string()),
            Kind::Save => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                if !parts.len().is_multiple_of(2) || parts.iter().any(|x| x.parse::<u64>().is_err())
                {
                    return Err("Invalid save parameters".into());
                }
                Ok(parts.join(" "))
            }
        }
    }

    /// Keeps the typed values that the canonical text cannot carry.
    fn set_bits(&mut self, p: &Param, value: &str) {
        if let Kind::KeyspaceEvents = p.kind {
            self.notify_keyspace_events = crate::db::notify::parse_flags(value).unwrap_or(0);
        }
    }

    /// Sets a parameter at startup (command line or config file): every
    /// parameter is settable.
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), String> {
        let p = find_param(name)
            .ok_or_else(|| format!("Bad directive or wrong number of arguments: '{name}'"))?;
        let v = Self::canonical(p, value).map_err(|e| format!("'{name} {value}': {e}"))?;
        self.values.insert(p.name, v);
        self.set_bits(p, value);
        self.refresh();
        Ok(())
    }

    /// CONFIG SET of several parameters at once; all or nothing, as Redis 7.
    /// Errors are CONFIG SET's reply texts. As Redis's `configSetCommand`,
    /// every name is checked (unknown, immutable, protected, given twice)
    /// before any value, and the first problem found is reported.
    pub fn set_runtime(&mut self, pairs: &[(String, String)]) -> Result<(), String> {
        let failed = |name: &str, why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
        };
        let mut params = Vec::with_capacity(pairs.len());
        for (i, (name, _)) in pairs.iter().enumerate() {
            let Some(p) = find_param(name) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            };
            match p.mutable {
                Mutability::Mutable => {}
                Mutability::Immutable => return Err(failed(name, "can't set immutable config")),
                Mutability::Protected => return Err(failed(name, "can't set protected config")),
            }
            // Redis 7.0 compares the names as given: an alias and its
            // parameter in one call are not a duplicate (the last wins).
            if pairs[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(failed(name, "duplicate parameter"));
            }
            params.push(p);
        }
        let mut staged = Vec::with_capacity(pairs.len());
        for (p, (name, value)) in params.into_iter().zip(pairs) {
            let v = Self::canonical(p, value).map_err(|e| failed(name, &e))?;
            staged.push((p, v, value));
        }
        for (p, v, value) in staged {
            self.values.insert(p.name, v);
            self.set_bits(p, value);
        }
        self.refresh();
        Ok(())
    }

    /// Reads redis.conf syntax: one directive per line, `#` comments, values
    /// possibly quoted. Errors name the line.
    pub fn load_file_text(&mut self, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args = crate::protocol::split_args(line.as_bytes())
                .ok_or_else(|| format!("line {}: unbalanced quotes", i + 1))?;
            let args: Vec<String> = args
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            let Some((name, rest)) = args.split_first() else {
                continue;
            };
            self.set_startup(name, &rest.join(" "))
                .map_err(|e| format!("line {}: {e}", i + 1))?;
        }
        Ok(())
    }

    /// Parses `redlog [config-file] [--option value ...]`, as redis-server.
    /// A `--name` takes every following argument up to the next `--name`.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first)
                    .map_err(|e| format!("can't open config file '{first}': {e}"))?;
                cfg.load_file_text(&text)?;
                cfg.config_file = Some(first.clone());
                rest = &rest[1..];
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let Some(name) = rest[i].strip_prefix("--") else {
                return Err(format!("unexpected argument '{}'", rest[i]));
            };
            let mut j = i + 1;
            while j < rest.len() && !rest[j].starts_with("--") {
                j += 1;
            }
            let value = rest[i + 1..j].join(" ");
            if j == i + 1
                && !matches!(
                    find_param(name).map(|p| p.kind),
                    Some(Kind::Save | Kind::Str | Kind::KeyspaceEvents)
                )
            {
                return Err(format!("option '--{name}' needs a value"));
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

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn command_line() {
        let c = Config::from_args(&args("--port 6380 --dir /tmp/x --appendfsync always")).unwrap();
        assert_eq!(c.port, 6380);
        assert_eq!(c.dir, "/tmp/x");
        assert_eq!(c.get("appendfsync"), Some("always"));
        assert!(Config::from_args(&args("--nope 1")).is_err());
        assert!(Config::from_args(&args("--port abc")).is_err());
        assert!(Config::from_args(&args("--port")).is_err());
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
        c.load_file_text("# comment\nport 7000\nrequirepass \"se cret\"\nsave 900 1 300 10\n")
            .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.requirepass.as_deref(), Some(&b"se cret"[..]));
        assert_eq!(c.get("save"), Some("900 1 300 10"));
        assert!(c
            .load_file_text("bogus 1\n")
            .unwrap_err()
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
        assert_eq!(e, "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
        assert_eq!(c.get("notify-keyspace-events"), Some("AKE"));
    }

    #[test]
    fn runtime_set_is_atomic() {
        let mut c = Config::default();
        let e = c
            .set_runtime(&[("hz".into(), "20".into()), ("port".into(), "1".into())])
            .unwrap_err();
        assert!(e.contains("immutable"));
        assert_eq!(c.hz, 10);
    }
}
