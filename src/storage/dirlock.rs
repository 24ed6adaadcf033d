//! `<dir>/LOCK`: one server per data directory.
//!
//! Two servers appending to one WAL would interleave units and corrupt it;
//! an advisory exclusive lock on `LOCK` (flock) makes the second one refuse
//! to start. The lock dies with the process, so a `kill -9` never leaves a
//! stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Holds the data directory's lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Creates `dir` if needed and takes its lock; fails when another process
/// holds it.
pub fn lock_dir(dir: &Path) -> std::io::Result<DirLock> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!(
                "{} is locked: another redlog is using this data directory",
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_first_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let a = lock_dir(d.path()).unwrap();
        let err = lock_dir(d.path()).unwrap_err();
        assert!(err.to_string().contains("another redlog"));
        drop(a);
        lock_dir(d.path()).unwrap();
    }
}
