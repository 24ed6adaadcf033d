//! File handling of stream directories that the segmented log does not do
//! itself: the `streams/` root, listing stream ids, reading a checkpoint,
//! copying and removing a whole stream directory.
//!
//! Layout (see docs/format.md): `<dir>/streams/<stream-id:020>/` holds the
//! entry log's segments, `checkpoint`, and `ops/` (the op log).

use super::error::Result;
use super::fs::{read_full_at, Fs, OpenMode};
use std::io;
use std::path::{Path, PathBuf};

/// Name of a stream's directory under the streams root.
pub fn stream_dir(root: &Path, id: u64) -> PathBuf {
    root.join(format!("{id:020}"))
}

/// Creates the streams root if missing.
pub fn ensure_root(fs: &dyn Fs, root: &Path) -> Result<()> {
    fs.create_dir_all(root)?;
    Ok(())
}

/// Ids of the stream directories under `root` (names that are 20 digits);
/// other entries are ignored.
pub fn list_stream_ids(fs: &dyn Fs, root: &Path) -> Result<Vec<u64>> {
    if !fs.exists(root) {
        return Ok(Vec::new());
    }
    let mut ids: Vec<u64> = fs
        .list_dir(root)?
        .into_iter()
        .filter(|e| e.is_dir && e.name.len() == 20 && e.name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| e.name.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Whole content of a small file (a checkpoint), `None` when it does not exist.
pub fn read_small_file(fs: &dyn Fs, path: &Path) -> Result<Option<Vec<u8>>> {
    if !fs.exists(path) {
        return Ok(None);
    }
    let f = fs.open(path, OpenMode::Read)?;
    let size = usize::try_from(f.size()?).map_err(|_| io::Error::other("file too large"))?;
    let mut buf = vec![0u8; size];
    let n = read_full_at(&*f, &mut buf, 0)?;
    buf.truncate(n);
    Ok(Some(buf))
}

/// Removes a stream directory and everything in it, then syncs the root.
pub fn remove_stream_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    if fs.exists(dir) {
        fs.remove_dir_all(dir)?;
    }
    if let Some(parent) = dir.parent() {
        fs.sync_dir(parent)?;
    }
    Ok(())
}

/// Copies every regular file of `from` (and of its subdirectories, one
/// level: `ops/`) into the new directory `to`, syncing each file and the
/// directories. Used by COPY of a stream: the caller has synced the logs.
pub fn copy_stream_dir(fs: &dyn Fs, from: &Path, to: &Path) -> Result<()> {
    copy_tree(fs, from, to, 1)?;
    if let Some(parent) = to.parent() {
        fs.sync_dir(parent)?;
    }
    Ok(())
}

fn copy_tree(fs: &dyn Fs, from: &Path, to: &Path, depth: u32) -> Result<()> {
    fs.create_dir_all(to)?;
    for e in fs.list_dir(from)? {
        let (src, dst) = (from.join(&e.name), to.join(&e.name));
        if e.is_dir {
            if depth > 0 {
                copy_tree(fs, &src, &dst, depth - 1)?;
            }
            continue;
        }
        if e.name.ends_with(super::atomic::TMP_SUFFIX) {
            continue;
        }
        let Some(bytes) = read_small_file(fs, &src)? else {
            continue;
        };
        let f = fs.open(&dst, OpenMode::CreateTruncate)?;
        f.write_all_at(&bytes, 0)?;
        f.sync_data()?;
    }
    fs.sync_dir(to)?;
    Ok(())
}
