//! What can go wrong with a stream: its files (storage), a damaged entry,
//! a stream that is not open. The texts are the ones replies and logs show.

use crate::storage::bytes::Malformed;
use crate::storage::Error as StorageError;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A storage failure while a command reads or writes the stream.
    #[error("stream storage error: {0}")]
    Storage(#[source] StorageError),
    /// A storage failure creating, copying, opening or syncing a stream.
    #[error("{0}")]
    Io(#[from] StorageError),
    /// An entry record that does not decode (its CRC passed: a bug or a
    /// foreign file).
    #[error("{0}")]
    BadEntry(#[from] Malformed),
    #[error("stream {0} is not open")]
    NotOpen(u64),
    /// After replay: two keys name the same stream.
    #[error("stream {0} is referenced by two keys")]
    ReferencedTwice(u64),
    /// After replay: a referenced stream's files do not open.
    #[error("cannot open stream {id}: {source}")]
    Open {
        id: u64,
        #[source]
        source: StorageError,
    },
}
