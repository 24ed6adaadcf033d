//! # Storage: the only module that does file I/O
//!
//! Everything redlog keeps on disk goes through here: record framing
//! (`record`), segments and their sparse indexes (`segment`, `index`), the
//! segmented log used for both the keyspace WAL and every stream (`log`,
//! with its readers `log::iter` and its open-time recovery
//! `log::recovery`), fsync mechanism and group commit (`sync`), atomic
//! file replacement for checkpoints (`atomic`), the verification of one
//! log (`verify`: run by recovery's Repair mode and by the checker), the
//! offline checker behind `redlog check [--repair]` (`check`; the keyspace
//! WAL's bases and log judged together in `wal_check`; reading past damage
//! in `salvage`), and the file-system seam with its fault-injecting twin
//! (`fs`), and compressed sealed segments (`clog`, the block codec
//! `logblock`, the background swap `log::compact`). No other module opens
//! files in the data dir. `bytes` is the one
//! reader of redlog's binary encodings (no I/O).
//!
//! Import order inside the module (checked by `redis-tests/modgraph.py`):
//! `check` -> `wal_check` -> `wal` -> `log` (-> `log::recovery`) ->
//! `verify` -> `segment` / `salvage` / `index` / `record` / `fs`.
//!
//! ## Contract
//! - A log is a sequence of `(u128 key, bytes)` records with strictly
//!   increasing keys; appending a key <= the last key is `Error::KeyOrder`.
//! - An append returns after its bytes were handed to the OS (`write(2)`),
//!   so `kill -9` loses nothing acknowledged; under `SyncPolicy::Always`
//!   only after fdatasync (group-committed across threads), so power loss
//!   loses nothing acknowledged; under `EverySec` at most about a second.
//! - A failed write or fsync is sticky: every later write returns
//!   `Error::PreviousIo` until the log is reopened. fsync is never retried.
//! - Opening recovers: a torn tail of the newest segment is cut (warning +
//!   `RecoveryReport`); any other bad record is `Error::Corruption { file,
//!   offset }` unless `RecoveryMode::Repair`. Indexes are derived data,
//!   rebuilt when missing or inconsistent.
//! - Nothing read from disk can panic: bad bytes are errors.
//! - All methods are synchronous; call them from a blocking thread.
//!
//! The on-disk format is specified byte by byte in `docs/format.md` and in
//! the grammar comments of `record.rs` and `index.rs`.

pub mod atomic;
pub mod bytes;
pub mod check;
pub mod clog;
pub mod dirlock;
pub mod error;
pub mod fs;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod fuzz;
pub mod index;
pub mod log;
pub mod logblock;
pub mod record;
mod salvage;
pub mod segment;
pub mod streams;
pub mod sync;
pub mod verify;
pub mod wal;
pub mod wal_check;

pub use atomic::{atomic_write, atomic_write_with};
pub use check::{
    check_dir, check_dir_opts, check_dir_with, CheckOptions, CheckSummary, REPAIR_REPORT,
    REPAIR_REPORT_SEEN,
};
pub use error::{Error, Result};
#[cfg(any(test, feature = "test-support"))]
pub use fs::FaultyFs;
pub use fs::{Fs, RealFs, StorageFile};
pub use index::INDEX_INTERVAL_BYTES;
pub use log::iter::{self, Iter, RevIter};
pub use log::recovery::{self, RecoveryReport, TornTail};
pub use log::{
    CompressStats, LogOptions, Position, RecoveryMode, SegmentInfo, SegmentedLog,
    EVERYSEC_INTERVAL, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MIN,
};
pub use record::{Record, RECORD_PAYLOAD_BYTES_MAX, RECORD_VALUE_BYTES_MAX};
pub use sync::SyncPolicy;
pub use verify::{Dropped, Problem};
pub use wal_check::UnitKeys;
