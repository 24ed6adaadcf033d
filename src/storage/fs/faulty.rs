//! [`FaultyFs`]: an in-memory [`Fs`] that models what survives a power loss
//! and injects I/O faults.
//!
//! Model (after redb's crash tests): every file has `written` bytes (what
//! reads see) and `durable` bytes (what `sync_data` last captured). Every
//! directory entry is likewise written or durable: a creation, rename or
//! removal becomes durable at `sync_dir` of its parent. [`FaultyFs::crash`]
//! throws away everything that was not durable (optionally keeping a torn
//! prefix of unsynced appends) and invalidates every open handle. Directories
//! themselves are durable at creation (the data dir tree is made once).

use super::{DirEntry, Fs, OpenMode, StorageFile};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a simulated power loss keeps of unsynced data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only fsynced bytes and directory entries survive.
    DropUnsynced,
    /// Like `DropUnsynced`, but a file whose written bytes extend its durable
    /// bytes keeps a pseudo-random prefix of the unsynced extension (a torn
    /// write). `seed` makes the choice reproducible.
    KeepTornPrefix { seed: u64 },
}

#[derive(Debug, Default)]
struct FileData {
    written: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct MemFile {
    data: Mutex<FileData>,
}

#[derive(Debug, Default)]
struct Faults {
    /// Writes that still succeed before every later write fails with EIO.
    writes_left: Option<u64>,
    /// Syncs (file or dir) that still succeed before every later one fails.
    syncs_left: Option<u64>,
    /// The next write keeps only this many bytes, then fails with EIO.
    tear_next_write: Option<usize>,
}

/// Simulated fdatasync latency (kept across `clear_faults` and crashes).
#[derive(Debug, Default)]
struct Latency {
    sync: std::time::Duration,
}

#[derive(Debug, Default)]
struct State {
    names: BTreeMap<PathBuf, Arc<MemFile>>,
    durable_names: BTreeMap<PathBuf, Arc<MemFile>>,
    dirs: BTreeSet<PathBuf>,
    faults: Faults,
    /// Bumped by every crash; handles of an older epoch fail.
    epoch: u64,
    syncs: u64,
    latency: Latency,
}

/// In-memory fault-injecting file system; cheap to clone (shared state).
#[derive(Debug, Default, Clone)]
pub struct FaultyFs {
    state: Arc<Mutex<State>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this test-only lock leaves consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected EIO on {what}"))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

#[derive(Debug)]
struct MemHandle {
    fs: FaultyFs,
    file: Arc<MemFile>,
    epoch: u64,
    writable: bool,
}

impl MemHandle {
    fn check_epoch(&self) -> io::Result<()> {
        if lock(&self.fs.state).epoch != self.epoch {
            return Err(io::Error::other("handle from before a simulated crash"));
        }
        Ok(())
    }
}

impl StorageFile for MemHandle {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.check_epoch()?;
        let d = lock(&self.file.data);
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= d.written.len() {
            return Ok(0);
        }
        let n = buf.len().min(d.written.len() - start);
        buf[..n].copy_from_slice(&d.written[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "read-only handle",
            ));
        }
        let keep = {
            let mut st = lock(&self.fs.state);
            if st.epoch != self.epoch {
                return Err(io::Error::other("handle from before a simulated crash"));
            }
            if let Some(left) = st.faults.writes_left.as_mut() {
                if *left == 0 {
                    return Err(eio("write"));
                }
                *left -= 1;
            }
            st.faults.tear_next_write.take()
        };
        let start = usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
        let n = keep.map_or(buf.len(), |k| k.min(buf.len()));
        let mut d = lock(&self.file.data);
        if d.written.len() < start + n {
            d.written.resize(start + n, 0);
        }
        d.written[start..start + n].copy_from_slice(&buf[..n]);
        if keep.is_some() {
            return Err(eio("write (torn)"));
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fs.take_sync()?;
        self.check_epoch()?;
        let mut d = lock(&self.file.data);
        d.durable = d.written.clone();
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_epoch()?;
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        lock(&self.file.data).written.resize(len, 0);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        self.check_epoch()?;
        Ok(lock(&self.file.data).written.len() as u64)
    }
}

impl FaultyFs {
    pub fn new() -> Self {
        Self::default()
    }

    fn take_sync(&self) -> io::Result<()> {
        let delay = {
            let mut st = lock(&self.state);
            if let Some(left) = st.faults.syncs_left.as_mut() {
                if *left == 0 {
                    return Err(eio("fsync"));
                }
                *left -= 1;
            }
            st.syncs += 1;
            st.latency.sync
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Ok(())
    }

    /// Makes every sync take `d` (like a real disk's flush), so concurrent
    /// appenders overlap and group commit can be observed.
    pub fn set_sync_latency(&self, d: std::time::Duration) {
        lock(&self.state).latency.sync = d;
    }

    /// After `n` more successful writes, every write fails with EIO.
    pub fn fail_writes_after(&self, n: u64) {
        lock(&self.state).faults.writes_left = Some(n);
    }

    /// After `n` more successful syncs (file or directory), every sync fails.
    pub fn fail_syncs_after(&self, n: u64) {
        lock(&self.state).faults.syncs_left = Some(n);
    }

    /// The next write stores only its first `keep_bytes` bytes, then fails.
    pub fn tear_next_write(&self, keep_bytes: usize) {
        lock(&self.state).faults.tear_next_write = Some(keep_bytes);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        lock(&self.state).faults = Faults::default();
    }

    /// Number of successful syncs so far (file and directory).
    pub fn sync_count(&self) -> u64 {
        lock(&self.state).syncs
    }

    /// Simulates a power loss: keeps only durable state (see [`CrashMode`]),
    /// clears the faults and invalidates every open handle.
    pub fn crash(&self, mode: CrashMode) {
        let mut st = lock(&self.state);
        let mut rng = match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::KeepTornPrefix { seed } => seed | 1,
        };
        let mut names = BTreeMap::new();
        for (path, f) in &st.durable_names {
            let d = lock(&f.data);
            let mut bytes = d.durable.clone();
            if rng != 0 && d.written.len() > bytes.len() && d.written.starts_with(&bytes) {
                // xorshift64: reproducible torn length.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let extra = (rng % (d.written.len() - bytes.len() + 1) as u64) as usize;
                bytes.extend_from_slice(&d.written[d.durable.len()..d.durable.len() + extra]);
            }
            let file = MemFile {
                data: Mutex::new(FileData {
                    written: bytes.clone(),
                    durable: bytes,
                }),
            };
            names.insert(path.clone(), Arc::new(file));
        }
        st.durable_names = names.clone();
        st.names = names;
        st.faults = Faults::default();
        st.epoch += 1;
    }

    /// Written bytes of a file (test helper).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = lock(&self.state);
        st.names.get(path).map(|f| lock(&f.data).written.clone())
    }

    /// Replaces a file's bytes, durably, creating it if needed (test helper,
    /// e.g. to corrupt a file "on disk").
    pub fn write_file(&self, path: &Path, bytes: &[u8]) {
        let mut st = lock(&self.state);
        if let Some(parent) = path.parent() {
            st.dirs.insert(parent.to_path_buf());
        }
        let f = st.names.entry(path.to_path_buf()).or_default().clone();
        st.durable_names.insert(path.to_path_buf(), f.clone());
        let mut d = lock(&f.data);
        d.written = bytes.to_vec();
        d.durable = bytes.to_vec();
    }

    /// Paths of all files (test helper).
    pub fn files(&self) -> Vec<PathBuf> {
        lock(&self.state).names.keys().cloned().collect()
    }
}

impl Fs for FaultyFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut st = lock(&self.state);
        let existing = st.names.get(path).cloned();
        let file = match (mode, existing) {
            (OpenMode::Read | OpenMode::ReadWrite, Some(f)) => f,
            (OpenMode::Read | OpenMode::ReadWrite, None) => return Err(not_found(path)),
            (OpenMode::CreateNew, Some(_)) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"))
            }
            (OpenMode::CreateTruncate, Some(f)) => {
                lock(&f.data).written.clear();
                f
            }
            (OpenMode::CreateNew | OpenMode::CreateTruncate, None) => {
                let parent = path.parent().unwrap_or(Path::new(""));
                if !st.dirs.contains(parent) {
                    return Err(not_found(parent));
                }
                let f = Arc::new(MemFile::default());
                st.names.insert(path.to_path_buf(), f.clone());
                f
            }
        };
        Ok(Arc::new(MemHandle {
            fs: self.clone(),
            file,
            epoch: st.epoch,
            writable: mode != OpenMode::Read,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        for a in path.ancestors() {
            st.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let st = lock(&self.state);
        if !st.dirs.contains(path) {
            return Err(not_found(path));
        }
        let mut out = Vec::new();
        for p in st.names.keys().chain(st.dirs.iter()) {
            if p.parent() == Some(path) {
                if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                    out.push(DirEntry {
                        name: name.to_owned(),
                        is_dir: st.dirs.contains(p),
                    });
                }
            }
        }
        Ok(out)
    }

    fn exists(&self, path: &Path) -> bool {
        let st = lock(&self.state);
        st.names.contains_key(path) || st.dirs.contains(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.names.retain(|p, _| !p.starts_with(path));
        st.durable_names.retain(|p, _| !p.starts_with(path));
        st.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        let f = st.names.remove(from).ok_or_else(|| not_found(from))?;
        st.names.insert(to.to_path_buf(), f);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.take_sync()?;
        let mut st = lock(&self.state);
        st.durable_names.retain(|p, _| p.parent() != Some(path));
        let now: Vec<_> = st
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(path))
            .map(|(p, f)| (p.clone(), f.clone()))
            .collect();
        st.durable_names.extend(now);
        Ok(())
    }
}
