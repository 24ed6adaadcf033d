//! Durability policy, group commit and the sticky failure state.
//!
//! Group commit (leader/follower): every append gets a *ticket*, the log's
//! running count of appended bytes after its write. A writer that needs
//! durability calls [`GroupCommit::wait_durable`] with its ticket. If a sync
//! covering the ticket already completed it returns at once; if a sync is in
//! flight it waits on the condvar; otherwise it becomes the leader: it takes
//! the current ticket of the log (covering every write handed to the OS so
//! far, its own and those of all waiting followers), runs one fdatasync
//! without holding the lock, publishes the new durable ticket and wakes
//! everyone. So N concurrent appenders share about two fdatasyncs, and
//! throughput under `Always` grows with concurrency.
//!
//! Failure is sticky: the first failed write or fsync is stored in [`Sticky`]
//! and every later append or sync returns `Error::PreviousIo`. An fsync is
//! never retried, because after a failure Linux may have dropped the dirty
//! pages and a second fsync would report success for lost data.

use super::error::{Error, Result};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Append returns after fdatasync (group-committed). Power loss loses no
    /// acknowledged append.
    Always,
    /// Append returns after write(2); a background thread fdatasyncs once a
    /// second. Power loss loses about one second.
    #[default]
    EverySec,
    /// Append returns after write(2); the OS decides when to write back
    /// (segments are still fsynced when sealed, see `log.rs`).
    No,
}

/// The sticky failed state of one log.
#[derive(Debug, Default)]
pub struct Sticky {
    err: OnceLock<Arc<io::Error>>,
}

impl Sticky {
    /// `Err(PreviousIo)` once a write or sync has failed.
    pub fn check(&self) -> Result<()> {
        match self.err.get() {
            Some(e) => Err(Error::PreviousIo(e.clone())),
            None => Ok(()),
        }
    }

    /// Records a failure (the first one wins) and returns it as `Error::Io`.
    pub fn fail(&self, e: io::Error) -> Error {
        let kind = e.kind();
        let text = e.to_string();
        tracing::error!(error = %text, "storage write or fsync failed; log refuses writes until restart");
        let _ = self.err.set(Arc::new(e));
        Error::Io(io::Error::new(kind, text))
    }

    pub fn get(&self) -> Option<Arc<io::Error>> {
        self.err.get().cloned()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Every ticket <= `durable` is on stable storage.
    durable: u64,
    /// A leader is running fdatasync.
    syncing: bool,
}

/// Leader/follower group commit (see the module doc).
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // State is two plain fields updated atomically under the lock; a panic
    // elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupCommit {
    /// Highest ticket known durable.
    pub fn durable(&self) -> u64 {
        lock(&self.state).durable
    }

    /// Blocks until `ticket` is durable. `sync` is run by the leader: it must
    /// return the ticket it covered (read before syncing) after fdatasync.
    pub fn wait_durable(
        &self,
        ticket: u64,
        sticky: &Sticky,
        sync: &dyn Fn() -> io::Result<u64>,
    ) -> Result<()> {
        let mut st = lock(&self.state);
        loop {
            sticky.check()?;
            if st.durable >= ticket {
                return Ok(());
            }
            if st.syncing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.syncing = true;
            drop(st);
            let result = sync();
            st = lock(&self.state);
            st.syncing = false;
            let outcome = match result {
                Ok(covered) => {
                    st.durable = st.durable.max(covered);
                    Ok(())
                }
                Err(e) => Err(sticky.fail(e)),
            };
            self.done.notify_all();
            outcome?;
        }
    }
}
