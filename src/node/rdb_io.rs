//! `redlog import-rdb` and `redlog export-rdb`: whole RDB files in and out
//! of a data directory, through a server running in-process.
//!
//! Import sends every key of the file to the server as `RESTORE key
//! expiry payload ABSTTL REPLACE` (the payload is the key's value bytes
//! from the file with a DUMP footer), pipelined over a local connection: a
//! key is therefore logged and made durable exactly as a client's RESTORE
//! (WAL effects, stream logs), and a key whose expiry has passed is not
//! created, as redis-server skips expired keys when it loads a file.
//! Export reads the keyspace under its lock once the WAL is replayed and
//! writes what redis-server's SAVE writes (`rdb::file`).

use super::Shared;
use crate::db::Value;
use crate::rdb::{self, file};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// Commands sent before their replies are read.
const PIPELINE_COMMANDS: usize = 512;

fn put_arg(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(a);
    out.extend_from_slice(b"\r\n");
}

fn put_cmd(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        put_arg(out, a);
    }
}

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
pub enum RdbIoError {
    #[error("connect {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A reply other than `+...`, without its line end.
    #[error("server replied {0}")]
    Refused(String),
    #[error("the server did not finish loading")]
    NotLoaded,
    #[error("{0}")]
    File(#[from] rdb::file::FileError),
    /// A stream could not be read for export.
    #[error("{0}")]
    Stream(crate::stream::StreamError),
}

/// A pipelined connection whose replies are single lines (+OK / -ERR).
struct Pipe {
    w: TcpStream,
    r: BufReader<TcpStream>,
    buf: Vec<u8>,
    queued: usize,
    line: Vec<u8>,
}

impl Pipe {
    fn connect(addr: SocketAddr) -> Result<Pipe, RdbIoError> {
        let w = TcpStream::connect(addr).map_err(|source| RdbIoError::Connect { addr, source })?;
        let _ = w.set_nodelay(true);
        let r = BufReader::new(w.try_clone()?);
        Ok(Pipe {
            w,
            r,
            buf: Vec::new(),
            queued: 0,
            line: Vec::new(),
        })
    }

    fn send(&mut self, args: &[&[u8]]) -> Result<(), RdbIoError> {
        put_cmd(&mut self.buf, args);
        self.queued += 1;
        if self.queued >= PIPELINE_COMMANDS {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the queued commands and checks every reply.
    fn sync(&mut self) -> Result<(), RdbIoError> {
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        for _ in 0..self.queued {
            self.line.clear();
            self.r.read_until(b'\n', &mut self.line)?;
            if self.line.first() != Some(&b'+') {
                return Err(RdbIoError::Refused(
                    String::from_utf8_lossy(&self.line).trim_end().to_string(),
                ));
            }
        }
        self.queued = 0;
        Ok(())
    }
}

/// Waits until the server has replayed its WAL (PING is refused with
/// -LOADING until then).
fn wait_loaded(addr: SocketAddr) -> Result<(), RdbIoError> {
    for _ in 0..60_000 {
        let mut p = Pipe::connect(addr)?;
        p.buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        p.queued = 1;
        match p.sync() {
            Ok(()) => return Ok(()),
            Err(RdbIoError::Refused(line)) if line.starts_with("-LOADING") => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => return Err(e),
        }
    }
    Err(RdbIoError::NotLoaded)
}

/// Imports the RDB file `data` into the server at `addr`; returns the
/// number of keys read from the file.
pub fn import(addr: SocketAddr, data: &[u8]) -> Result<u64, RdbIoError> {
    wait_loaded(addr)?;
    let mut p = Pipe::connect(addr)?;
    let mut db = u64::MAX;
    let mut keys = 0u64;
    let summary = file::read_file(data, |item| {
        restore_item(&mut p, &mut db, &item)?;
        keys += 1;
        Ok::<(), RdbIoError>(())
    })?;
    // The file's FUNCTION libraries, as redis-server loads them with it.
    for code in &summary.functions {
        p.send(&[b"FUNCTION", b"LOAD", b"REPLACE", code])?;
    }
    p.sync()?;
    Ok(keys)
}

/// Sends one key of the file as RESTORE (after a SELECT when its
/// database differs from the last key's).
fn restore_item(p: &mut Pipe, db: &mut u64, item: &file::Item<'_>) -> Result<(), RdbIoError> {
    if item.db != *db {
        *db = item.db;
        p.send(&[b"SELECT", itoa::Buffer::new().format(*db).as_bytes()])?;
    }
    let ttl = itoa::Buffer::new().format(item.expires_at_ms).to_owned();
    let payload = item.dump_payload();
    p.send(&[
        b"RESTORE",
        &item.key,
        ttl.as_bytes(),
        &payload,
        b"ABSTTL",
        b"REPLACE",
    ])
}

/// Writes the keyspace of a running (loaded) server as an RDB file's
/// bytes; returns them with the number of keys.
pub fn export(shared: &Arc<Shared>, addr: SocketAddr) -> Result<(Vec<u8>, u64), RdbIoError> {
    wait_loaded(addr)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let ks = shared.ks.lock();
    snapshot_counted(&ks, now_ms, None)
}

/// The keyspace and the FUNCTION libraries as an RDB file's bytes
/// (replication's full resync: taken under the keyspace lock, so
/// consistent with the stream's offset), with `records` (redlog-only
/// state, `db::effect::record`) as aux fields redis-server skips.
pub fn snapshot(
    ks: &crate::db::Keyspace,
    now_ms: u64,
    records: &[Vec<u8>],
) -> Result<Vec<u8>, RdbIoError> {
    snapshot_counted(ks, now_ms, Some(records)).map(|(b, _)| b)
}

fn snapshot_counted(
    ks: &crate::db::Keyspace,
    now_ms: u64,
    replication: Option<&[Vec<u8>]>,
) -> Result<(Vec<u8>, u64), RdbIoError> {
    let mut f = file::FileWriter::new(now_ms / 1000, 0);
    if let Some(records) = replication {
        for r in records {
            f.w.u8(rdb::opcodes::AUX);
            f.w.string(crate::db::effect::record::AUX_NAME);
            f.w.string(r);
        }
        // Redis writes the libraries after the aux fields (`rdbSaveFunctions`).
        for code in ks.functions.codes() {
            f.w.u8(rdb::opcodes::FUNCTION2);
            f.w.string(&code);
        }
    }
    let mut keys = 0u64;
    for (i, db) in ks.dbs.iter().enumerate() {
        let live: Vec<_> = db
            .iter()
            .filter(|(_, e)| e.expires_at_ms == 0 || e.expires_at_ms > now_ms)
            .collect();
        if live.is_empty() {
            continue;
        }
        let expires = live.iter().filter(|(_, e)| e.expires_at_ms != 0).count();
        f.select_db(i as u64, live.len() as u64, expires as u64);
        for (key, e) in live {
            f.expiry(e.expires_at_ms);
            let mut v = rdb::Writer::new();
            match &e.value {
                Value::Stream(s) => {
                    let sv = rdb::stream::snapshot(s).map_err(RdbIoError::Stream)?;
                    rdb::stream::write(&mut v, &sv);
                }
                other => {
                    rdb::value::write_value(&mut v, other);
                }
            }
            file::put_value(&mut f.w, key, &v.buf);
            keys += 1;
        }
    }
    Ok((f.finish(), keys))
}
