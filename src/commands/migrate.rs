//! MIGRATE (Redis 7.0's cluster.c `migrateCommand`, non-cluster mode): the
//! keys' DUMP payloads sent to another server as `RESTORE key ttl payload
//! [REPLACE]` (preceded by AUTH and SELECT as needed), over a connection
//! cached per `host:port` (Redis's migrate socket cache: at most 64, closed
//! after 10 s unused by the cron), then the keys acknowledged by the target
//! deleted unless COPY.
//!
//! Redis blocks its whole server during the exchange. redlog does not hold
//! the keyspace lock while it waits on the network: the handler serializes
//! the payloads under the lock, the connection (`PendingOp::Migrate`) does
//! the I/O off the lock, then takes the lock again and deletes each
//! acknowledged key only if nothing changed it meanwhile (a private WATCH
//! per key). Inside MULTI/EXEC, scripts and in-process clients, MIGRATE
//! runs whole under the lock, as in Redis. See ARCHITECTURE.md ("MIGRATE").

use super::{arg_i64, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::db::lazyfree::Reason;
use crate::db::notify::GENERIC;
use crate::node::{PendingOp, ReplyMode};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[("migrate", migrate)];

/// Redis's MIGRATE_SOCKET_CACHE_ITEMS and MIGRATE_SOCKET_CACHE_TTL.
const CACHE_ITEMS: usize = 64;
const CACHE_TTL: Duration = Duration::from_secs(10);

const IOERR_CONNECT: &str = "IOERR error or timeout connecting to the client";
const IOERR_WRITE: &str = "IOERR error or timeout writing to target instance";
const IOERR_READ: &str = "IOERR error or timeout reading from target instance";

/// A cached connection to a target (Redis's `migrateCachedSocket`).
struct Cached {
    conn: BufReader<TcpStream>,
    /// The database last selected on it (-1: unknown).
    last_dbid: i64,
    last_use: Instant,
}

/// The connections by `host:port` as given (the arguments' bytes). A
/// connection is taken out while a MIGRATE uses it and put back after, so
/// two clients migrating to one target at once use two connections.
static CACHE: Mutex<Option<HashMap<Vec<u8>, Cached>>> = Mutex::new(None);

/// Closes the cached connections unused for more than 10 seconds (Redis's
/// `migrateCloseTimedoutSockets`, run by the cron).
pub fn close_idle() {
    let mut cache = CACHE.lock();
    if let Some(m) = cache.as_mut() {
        m.retain(|_, c| c.last_use.elapsed() <= CACHE_TTL);
    }
}

/// Private WATCH ids, counted down from the top of the id space (client
/// ids count up from 1).
static WATCH_IDS: AtomicU64 = AtomicU64::new(u64::MAX);

/// The network half of a MIGRATE: everything it needs without the
/// keyspace.
#[derive(Debug, Default)]
pub struct Transfer {
    host: String,
    port: Vec<u8>,
    dbid: i64,
    timeout: Duration,
    /// AUTH arguments (username for AUTH2, password).
    auth: Option<(Option<Bytes>, Bytes)>,
    /// The RESTORE commands, one per key, in RESP.
    restores: Vec<u8>,
    keys: usize,
}

/// What the target answered.
#[derive(Debug)]
pub struct Outcome {
    /// Indexes of the keys whose RESTORE the target acknowledged.
    acked: Vec<usize>,
    /// The error to reply (target error or IOERR), else +OK.
    error: Option<String>,
}

impl Outcome {
    /// The transfer could not run to its end (its thread failed).
    pub fn failed() -> Outcome {
        Outcome {
            acked: Vec::new(),
            error: Some(IOERR_WRITE.into()),
        }
    }
}

/// A MIGRATE whose transfer runs off the keyspace lock
/// (`server::connection` performs it).
#[derive(Debug)]
pub struct MigrateJob {
    pub transfer: Transfer,
    db: usize,
    copy: bool,
    keys: Vec<Bytes>,
    /// One private WATCH id per key, and SWAPDB's counter when the keys
    /// were read: a key changed meanwhile is not deleted.
    watch_ids: Vec<u64>,
    swaps: u64,
    reply: bool,
}

impl crate::node::clients::Job for MigrateJob {
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

fn put_bulk(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(a);
    out.extend_from_slice(b"\r\n");
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key [key ...]]
fn migrate(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut copy, mut replace) = (false, false);
    let mut auth: Option<(Option<Bytes>, Bytes)> = None;
    let (mut first_key, mut num_keys) = (3usize, 1usize);
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is_opt(&args[j], "copy") {
            copy = true;
        } else if is_opt(&args[j], "replace") {
            replace = true;
        } else if is_opt(&args[j], "auth") {
            if more == 0 {
                return Err(CmdError::syntax());
            }
            j += 1;
            let user = auth.and_then(|(u, _)| u);
            auth = Some((user, args[j].clone()));
        } else if is_opt(&args[j], "auth2") {
            if more < 2 {
                return Err(CmdError::syntax());
            }
            auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if is_opt(&args[j], "keys") {
            if !args[3].is_empty() {
                return Err(CmdError::new(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            first_key = j + 1;
            num_keys = args.len() - j - 1;
            break;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    let timeout = arg_i64(&args[5])?;
    let dbid = arg_i64(&args[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    let (db, now) = (ctx.db(), ctx.now_ms);
    let touch = !ctx.client.no_touch;
    // The keys present, with their payloads (Redis's lookupKeyRead, then
    // the TTL left: at least 1 ms).
    let mut keys = Vec::new();
    let mut restores = Vec::new();
    for key in &args[first_key..first_key + num_keys] {
        let Some(e) = ctx.ks.lookup(db, key, now, touch) else {
            continue;
        };
        let mut ttl: i64 = 0;
        if e.expires_at_ms != 0 {
            ttl = (e.expires_at_ms as i64).saturating_sub(now as i64);
            if ttl < 0 {
                continue;
            }
            ttl = ttl.max(1);
        }
        let payload = super::dump::payload(&e.value)?;
        put_count(&mut restores, if replace { 5 } else { 4 });
        // In cluster mode the target may only be importing the slot
        // (Redis's migrateCommand).
        put_bulk(
            &mut restores,
            if ctx.shared.cluster.is_some() {
                &b"RESTORE-ASKING"[..]
            } else {
                &b"RESTORE"[..]
            },
        );
        put_bulk(&mut restores, key);
        put_bulk(&mut restores, itoa::Buffer::new().format(ttl).as_bytes());
        put_bulk(&mut restores, &payload);
        if replace {
            put_bulk(&mut restores, b"REPLACE");
        }
        keys.push(key.clone());
    }
    if keys.is_empty() {
        ctx.out.simple("NOKEY");
        return Ok(());
    }
    let transfer = Transfer {
        host: String::from_utf8_lossy(&args[1]).into_owned(),
        port: args[2].to_vec(),
        dbid,
        timeout: Duration::from_millis(timeout as u64),
        auth,
        restores,
        keys: keys.len(),
    };
    if ctx.client.chunked_ingest && !ctx.client.in_exec && !ctx.client.in_script {
        // Off the lock: watch the keys privately, let the connection do
        // the exchange (`finish` runs when it is over).
        let n = keys.len() as u64;
        let base = WATCH_IDS.fetch_sub(n, Ordering::Relaxed) - n + 1;
        let watch_ids: Vec<u64> = (0..n).map(|i| base + i).collect();
        for (k, id) in keys.iter().zip(&watch_ids) {
            ctx.ks.dbs[db].watch(k.clone(), *id, false);
        }
        ctx.client.pending = Some(PendingOp::Migrate(Box::new(MigrateJob {
            transfer,
            db,
            copy,
            keys,
            watch_ids,
            swaps: ctx.ks.swaps,
            reply: ctx.client.reply_mode == ReplyMode::On,
        })));
        return Ok(());
    }
    // Inside MULTI/EXEC or a script: the whole exchange under the lock,
    // as Redis does it.
    let outcome = crate::node::off_worker(|| transfer.run());
    for &i in &outcome.acked {
        if !copy {
            delete(ctx, db, &keys[i]);
        }
    }
    match outcome.error {
        Some(e) => Err(CmdError::new(e)),
        None => {
            ctx.out.ok();
            Ok(())
        }
    }
}

fn delete(ctx: &mut Ctx, db: usize, key: &Bytes) {
    if ctx.ks.delete_as(db, key, ctx.now_ms, Reason::ServerDel) {
        ctx.notify(GENERIC, "del", db, key);
    }
}

impl MigrateJob {
    /// After the transfer, under the keyspace lock: deletes the keys the
    /// target acknowledged (unless COPY) that did not change meanwhile,
    /// drops the private watches, writes the reply. Returns the error
    /// reply's text, if any, for the caller to count.
    pub fn finish(self, ctx: &mut Ctx, outcome: Outcome) -> Option<String> {
        let db = self.db;
        let swapped = ctx.ks.swaps != self.swaps;
        let mut unchanged = vec![false; self.keys.len()];
        for (i, (k, id)) in self.keys.iter().zip(&self.watch_ids).enumerate() {
            unchanged[i] = !swapped && !ctx.ks.dbs[db].is_dirty(*id);
            ctx.ks.unwatch_all(*id, &[(db, k.clone())]);
        }
        if !self.copy {
            for &i in &outcome.acked {
                if unchanged[i] {
                    delete(ctx, db, &self.keys[i]);
                }
            }
        }
        match outcome.error {
            Some(e) => Some(e),
            None => {
                if self.reply {
                    ctx.out.ok();
                }
                None
            }
        }
    }

    pub fn reply(&self) -> bool {
        self.reply
    }
}

/// How one attempt failed before the replies were read.
enum SocketErr {
    Connect,
    Write { timed_out: bool },
    Read { timed_out: bool },
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Transfer {
    fn cache_name(&self) -> Vec<u8> {
        let mut name = self.host.as_bytes().to_vec();
        name.push(b':');
        name.extend_from_slice(&self.port);
        name
    }

    /// Redis's `migrateGetSocket`: the cached connection or a new one.
    /// A refused connection is a connection whose first write fails, as
    /// Redis's non-blocking connect reports it.
    fn socket(&self, name: &[u8]) -> Result<Cached, SocketErr> {
        let mut cache = CACHE.lock();
        let map = cache.get_or_insert_with(HashMap::new);
        if let Some(mut c) = map.remove(name) {
            c.last_use = Instant::now();
            return Ok(c);
        }
        if map.len() >= CACHE_ITEMS {
            if let Some(k) = map.keys().next().cloned() {
                map.remove(&k);
            }
        }
        drop(cache);
        let port = u16::try_from(super::atoi(&self.port)).map_err(|_| SocketErr::Connect)?;
        let addrs: Vec<_> = (self.host.as_str(), port)
            .to_socket_addrs()
            .map_err(|_| SocketErr::Connect)?
            .collect();
        let mut last = SocketErr::Connect;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Cached {
                        conn: BufReader::new(s),
                        last_dbid: -1,
                        last_use: Instant::now(),
                    });
                }
                Err(e) if timed_out(&e) => last = SocketErr::Connect,
                Err(_) => last = SocketErr::Write { timed_out: false },
            }
        }
        Err(last)
    }

    fn put_back(name: Vec<u8>, c: Cached) {
        let mut cache = CACHE.lock();
        let map = cache.get_or_insert_with(HashMap::new);
        if map.len() >= CACHE_ITEMS && !map.contains_key(&name) {
            if let Some(k) = map.keys().next().cloned() {
                map.remove(&k);
            }
        }
        map.insert(name, c);
    }

    /// One reply line without its CRLF.
    fn read_line(c: &mut Cached) -> Result<Vec<u8>, SocketErr> {
        let mut line = Vec::new();
        match c.conn.read_until(b'\n', &mut line) {
            Ok(0) => Err(SocketErr::Read { timed_out: false }),
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(line)
            }
            Ok(_) => Err(SocketErr::Read { timed_out: false }),
            Err(e) => Err(SocketErr::Read {
                timed_out: timed_out(&e),
            }),
        }
    }

    /// The exchange with the target, with Redis's one retry on a fresh
    /// connection when a cached one turns out closed.
    pub fn run(&self) -> Outcome {
        let name = self.cache_name();
        let mut may_retry = true;
        loop {
            let err = match self.attempt(&name) {
                Ok(o) => return o,
                Err((err, acked)) => {
                    if !acked.is_empty() {
                        // Keys were acknowledged before the connection
                        // failed: they are deleted, the error is replied.
                        return Outcome {
                            acked,
                            error: Some(IOERR_READ.into()),
                        };
                    }
                    err
                }
            };
            let (text, timed) = match err {
                SocketErr::Connect => {
                    return Outcome {
                        acked: Vec::new(),
                        error: Some(IOERR_CONNECT.into()),
                    }
                }
                SocketErr::Write { timed_out } => (IOERR_WRITE, timed_out),
                SocketErr::Read { timed_out } => (IOERR_READ, timed_out),
            };
            if timed || !may_retry {
                return Outcome {
                    acked: Vec::new(),
                    error: Some(text.into()),
                };
            }
            may_retry = false;
        }
    }

    /// One attempt. On a socket error the connection is dropped (not put
    /// back) and the error returned with the keys acknowledged before it.
    fn attempt(&self, name: &[u8]) -> Result<Outcome, (SocketErr, Vec<usize>)> {
        let mut c = self.socket(name).map_err(|e| (e, Vec::new()))?;
        let mut cmd = Vec::new();
        if let Some((user, pass)) = &self.auth {
            put_count(&mut cmd, if user.is_some() { 3 } else { 2 });
            put_bulk(&mut cmd, b"AUTH");
            if let Some(u) = user {
                put_bulk(&mut cmd, u);
            }
            put_bulk(&mut cmd, pass);
        }
        let select = c.last_dbid != self.dbid;
        if select {
            put_count(&mut cmd, 2);
            put_bulk(&mut cmd, b"SELECT");
            put_bulk(&mut cmd, itoa::Buffer::new().format(self.dbid).as_bytes());
        }
        cmd.extend_from_slice(&self.restores);
        let sock = c.conn.get_ref();
        let _ = sock.set_write_timeout(Some(self.timeout));
        let _ = sock.set_read_timeout(Some(self.timeout));
        if let Err(e) = c.conn.get_mut().write_all(&cmd) {
            return Err((
                SocketErr::Write {
                    timed_out: timed_out(&e),
                },
                Vec::new(),
            ));
        }
        let auth_reply = match &self.auth {
            Some(_) => Some(Self::read_line(&mut c).map_err(|e| (e, Vec::new()))?),
            None => None,
        };
        let select_reply = if select {
            Some(Self::read_line(&mut c).map_err(|e| (e, Vec::new()))?)
        } else {
            None
        };
        let mut acked = Vec::new();
        let mut error: Option<String> = None;
        for j in 0..self.keys {
            let line = match Self::read_line(&mut c) {
                Ok(l) => l,
                Err(e) => {
                    // The connection is dropped. After a target error,
                    // that error is the reply; else `run` retries (first
                    // reply only, not after a timeout) or replies IOERR.
                    if error.is_some() {
                        return Ok(Outcome { acked, error });
                    }
                    return Err((e, acked));
                }
            };
            let failed = [
                auth_reply.as_deref(),
                select_reply.as_deref(),
                Some(&line[..]),
            ]
            .into_iter()
            .flatten()
            .find(|l| l.first() == Some(&b'-'));
            match failed {
                Some(errline) => {
                    if error.is_none() {
                        c.last_dbid = -1;
                        error = Some(format!(
                            "ERR Target instance replied with error: {}",
                            String::from_utf8_lossy(&errline[1..])
                        ));
                    }
                }
                None => acked.push(j),
            }
        }
        if error.is_none() {
            c.last_dbid = self.dbid;
        }
        Self::put_back(name.to_vec(), c);
        Ok(Outcome { acked, error })
    }
}
