//! Atomic file replacement for checkpoints, snapshots and rebuilt indexes.
//!
//! Protocol: write `<path>.tmp`, fdatasync it, rename over `<path>`, fsync the
//! directory. A crash at any point leaves either the old file or the new one
//! at `<path>` (plus maybe a stale `.tmp`, which is overwritten next time).

use super::error::Result;
use super::fs::{Fs, OpenMode, RealFs};
use std::path::{Path, PathBuf};

/// Suffix of the temporary file used by [`atomic_write`].
pub const TMP_SUFFIX: &str = ".tmp";

/// Path of the temporary file for `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    PathBuf::from(s)
}

/// Atomically replaces `path` with `bytes` on the real file system.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(&RealFs, path, bytes)
}

/// Replaces `path` with `bytes` by a rename, without waiting for the disk:
/// a crash leaves the old file or the new one, but the new one may be lost
/// (nodes.conf changes Redis saves without fsync).
pub fn replace_unsynced(path: &Path, bytes: &[u8]) -> Result<()> {
    let fs = RealFs;
    let tmp = tmp_path(path);
    let f = fs.open(&tmp, OpenMode::CreateTruncate)?;
    f.write_all_at(bytes, 0)?;
    drop(f);
    fs.rename(&tmp, path)?;
    Ok(())
}

/// Atomically replaces `path` with `bytes` through `fs`.
pub fn atomic_write_with(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let f = fs.open(&tmp, OpenMode::CreateTruncate)?;
    f.write_all_at(bytes, 0)?;
    f.sync_data()?;
    drop(f);
    fs.rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs.sync_dir(dir)?;
    Ok(())
}
