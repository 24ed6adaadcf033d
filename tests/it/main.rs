//! The integration tests, one binary: each file of this directory is a
//! module (`cargo test --test it replica::` runs one file's tests), so
//! `cargo test` links the crate into two test binaries instead of fifty.
//!
//! All tests share one process: a test must not change process-wide state
//! another test reads (environment, current directory, signal handlers,
//! resource limits of this process) and binds port 0 or `free_port()`.
//! In-process servers get their own data directory (`common::temp_dir`,
//! removed when the test's thread ends unless a test failed). A test whose
//! correctness needs the process to itself is a separate binary:
//! `tests/maxmemory.rs` (it reads jemalloc's process-wide allocation
//! gauge, which other tests' servers would move).

mod common;
mod storage_common;

mod acl;
mod bitmaps;
mod blocking;
mod busy_scripts;
mod cli;
mod client_limits;
mod client_pause;
mod cluster;
mod cluster_replica;
mod connection;
mod debug_cmd;
mod decoder_fuzz;
mod functions;
mod hashes;
mod keys;
mod lazyfree;
mod lists;
mod logcomp;
mod logingest;
mod logparse;
mod migrate;
mod net;
mod observe;
mod ops;
mod persistence;
mod process;
mod protocol;
mod pubsub;
mod redis_compat;
mod repair;
mod repl_records;
mod replica;
mod replication_primary;
mod scripting;
mod server_cmds;
mod sets;
mod sort;
mod storage_check;
mod storage_clog;
mod storage_crash;
mod storage_fuzz;
mod storage_log;
mod storage_model;
mod storage_recovery;
mod stream_blocking;
mod stream_groups;
mod streams;
mod strings;
mod tracking;
mod zset_blocking;
mod zsets;
