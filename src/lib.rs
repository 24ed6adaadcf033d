//! # redlog
//!
//! A Redis-protocol server whose keyspace is served from memory, whose
//! streams live in Kafka-style segmented logs on disk, and which parses raw
//! operational logs into streams.
//!
//! # Layout
//!
//! - `protocol`: RESP2/RESP3 request decoding (multibulk and inline) and
//!   reply encoding. Knows nothing of the database.
//! - `server`: the network server: listeners, connections, pipelining,
//!   the replica's link to its primary, periodic tasks.
//! - `commands`: the handlers, one file per command family (every
//!   command's reply and error text lives there), mapped to the catalog's
//!   entries.
//! - `node`: the state everything shares (`Shared`, clients, pub/sub,
//!   tracking, observability, pauses, replication state and the primary
//!   side, the durability stage and the WAL).
//! - `db`: the keyspace (16 databases), values, TTL with lazy and active
//!   expiry, WATCH bookkeeping.
//! - `config`: the parameter table behind the command line, config file and
//!   CONFIG GET/SET.
//! - `fdlimit`: the open-file limit behind `maxclients`.
//! - `supervise`: `supervised systemd|upstart` readiness notifications.
//! - `glob`: Redis's glob patterns (KEYS, SCAN MATCH, CONFIG GET).
//! - `stream`: streams (ids, consumer groups, the metadata in memory, the
//!   registry of open streams); their entries live in `storage` logs.
//! - `storage`: the only module that does file I/O: record framing,
//!   segmented logs with sparse mmap indexes, group commit, crash
//!   recovery, `redlog check`, the one byte reader of the binary formats
//!   (`storage::bytes`).
//! - `logparse`: log formats, timestamp normalisation and the Drain
//!   template miner behind LOGPARSE; pure code (no sockets, no files).
//! - `rdb`: Redis's RDB serialization (DUMP/RESTORE, import/export).
//! - `commands::lua`: the Lua engine behind EVAL and FUNCTION, a part of
//!   the command layer: a script's `redis.call` runs the command table,
//!   and EVAL runs the engine.
//! - `catalog`: the command catalog (generated metadata, the table built
//!   from it, key extraction): everything known about a command but the
//!   code that runs it (`commands` maps each entry to its handler).
//! - `acl`: the ACL engine (users, selectors, the permission check),
//!   defined over the catalog (command ids are its indexes).
//! - `fuzz`: fuzz entry points (with the `test-support` feature or in
//!   tests).
//!
//! Layering: `main` -> `server` -> `commands` -> `node` -> `rdb` -> `db` /
//! `acl` -> `stream` / `logparse` / `catalog` -> `storage` / `protocol`;
//! no module imports a higher one and there is no import cycle
//! (`redis-tests/modgraph.py --strict` checks it).
//!
//! See ARCHITECTURE.md for the data flow and the invariants.

/// jemalloc, as Redis: no per-allocation header (small keys and values
/// cost their size class, not size + 16 bytes) and fast thread caches.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// INFO `mem_allocator`.
pub const MEM_ALLOCATOR: &str = "jemalloc-5.3.0";

pub mod acl;
pub mod catalog;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod db;
pub mod fdlimit;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzz;
pub mod glob;
pub mod logparse;
pub mod node;
pub mod protocol;
pub mod random;
pub mod rdb;
pub mod server;
pub mod storage;
pub mod stream;
pub mod supervise;
pub mod syslog;

/// Version reported by `--version`, INFO and HELLO.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Redis version whose behaviour redlog follows (INFO `redis_version`):
/// clients check it to decide which commands they may send.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";
