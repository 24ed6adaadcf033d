//! Typed errors of the storage layer.
//!
//! Anything that comes from a disk is an error, never a panic: a bad record is
//! [`Error::Corruption`] naming the file and byte offset, a failed write or
//! fsync is [`Error::Io`] once and [`Error::PreviousIo`] for every later write
//! (the failure is sticky, see `sync.rs`).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors returned by the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed. For a write or an fsync this also put the log
    /// in the failed state.
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),

    /// A bad record, header or index entry that recovery may not skip.
    /// `offset` is the byte offset in `file` where the bad data starts.
    #[error(
        "corruption in {} at offset {offset}: {reason} (run `redlog check --repair` on the data dir: it keeps what it can prove valid and reports what it drops)",
        file.display()
    )]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// An earlier write or fsync of this log failed; the log refuses writes
    /// until it is reopened, because after a failed fsync the kernel may have
    /// dropped the dirty pages and a retried fsync would report success for
    /// data that is gone.
    #[error("an earlier write or fsync failed ({0}); the log refuses writes until restart")]
    PreviousIo(Arc<io::Error>),

    /// An appended key was not greater than the last key of the log.
    #[error("key {key} is not greater than the last key {last}")]
    KeyOrder { key: u128, last: u128 },

    /// A record value is larger than [`crate::storage::RECORD_VALUE_BYTES_MAX`].
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: u64 },

    /// A caller passed an unusable argument (bad option, empty batch).
    #[error("invalid storage argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// Result alias of the storage layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
