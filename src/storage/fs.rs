//! The file-system seam: every open, read, write, sync, truncate, rename and
//! delete done by the storage layer goes through [`Fs`] and [`StorageFile`].
//!
//! Contract of the traits (the log relies on it):
//! - `write_all_at` either writes the whole buffer or returns an error; after
//!   an error the bytes of that range are unspecified (a torn write).
//! - `sync_data` makes every byte written to that file before the call durable
//!   (fdatasync). After it fails, nothing may be assumed about unsynced bytes.
//! - `sync_dir` makes creations, renames and removals of entries in that
//!   directory durable. A new file is durable only after its data *and* its
//!   directory were synced.
//! - `map` may return `None` (no memory mapping); callers then read the file.
//!
//! [`RealFs`] is the production implementation (std::fs + positional I/O +
//! memmap2). [`FaultyFs`] is an in-memory implementation that models written
//! versus durable bytes per file and per directory entry and injects faults,
//! for crash-consistency tests.

#[cfg(any(test, feature = "test-support"))]
mod faulty;

#[cfg(any(test, feature = "test-support"))]
pub use faulty::{CrashMode, FaultyFs};

use std::fmt;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Existing file, read only.
    Read,
    /// Existing file, read and write.
    ReadWrite,
    /// Create a new file (error if it exists), read and write.
    CreateNew,
    /// Create or truncate to zero, read and write.
    CreateTruncate,
}

/// One directory entry returned by [`Fs::list_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// An open file. All I/O is positional so one handle can be shared by a writer
/// and many readers without a shared cursor.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; 0 means end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset` or fails (possibly after a partial write).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// fdatasync: makes the written bytes and the file size durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Reserves disk space for bytes `from..to` without changing the
    /// file's size or content (Linux `fallocate` with
    /// `FALLOC_FL_KEEP_SIZE`), so later writes there need no block
    /// allocation. A no-op where unsupported.
    fn preallocate(&self, _from: u64, _to: u64) -> io::Result<()> {
        Ok(())
    }
    /// A read-only memory map of the whole file, if supported.
    fn map(&self) -> io::Result<Option<memmap2::Mmap>> {
        Ok(None)
    }
}

/// A file system: the only way the storage layer touches paths.
pub trait Fs: Send + Sync + fmt::Debug {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Entries of a directory, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    fn exists(&self, path: &Path) -> bool;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsync of a directory: makes entry creation, rename and removal durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub fn read_full_at(file: &dyn StorageFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile {
    file: std::fs::File,
}

impl StorageFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    #[cfg(target_os = "linux")]
    fn preallocate(&self, from: u64, to: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(len)) = (i64::try_from(from), i64::try_from(to.saturating_sub(from)))
        else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        if len == 0 {
            return Ok(());
        }
        // SAFETY: fallocate on a descriptor this `File` owns and keeps open
        // for the call; it reads no memory of ours.
        let r =
            unsafe { libc::fallocate(self.file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, len) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    fn map(&self) -> io::Result<Option<memmap2::Mmap>> {
        // SAFETY: the mapping is only created for sealed index files. The
        // storage layer never truncates or rewrites such a file in place (it
        // replaces it by rename or unlinks it, which keeps the mapped inode
        // alive), and one data dir is used by one process (the LOCK file).
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        Ok(Some(map))
    }
}

impl Fs for RealFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut o = std::fs::OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
            OpenMode::CreateTruncate => o.read(true).write(true).create(true).truncate(true),
        };
        Ok(Arc::new(RealFile {
            file: o.open(path)?,
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(path)? {
            let e = e?;
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue; // not a name this layer writes
            };
            out.push(DirEntry {
                name,
                is_dir: e.file_type()?.is_dir(),
            });
        }
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }
}
