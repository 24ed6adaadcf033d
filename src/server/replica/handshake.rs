//! One session of the link: connect, handshake (PING, AUTH, REPLCONF,
//! PSYNC), the RDB of a full resynchronization, then the command stream
//! until the link drops. As Redis 7.0's `syncWithMaster`,
//! `slaveTryPartialResynchronization` and `readSyncBulkPayload`.

use super::apply::{self, Applier};
use super::LinkError;
use super::{set_state, with_link, ACK_PERIOD};
use crate::node::net::PeerAddr;
use crate::node::replication::{LinkCtl, LinkState};
use crate::node::Shared;
use crate::node::{Client, ClientHandle};
use crate::server::replica::failover;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What survives a session (Redis's cached master).
pub(in crate::server) struct Session {
    /// This server's replication id and offset describe data the primary
    /// may continue (`PSYNC <replid> <offset+1>`); false: `PSYNC ? -1`.
    pub cached: bool,
    /// The master client's selected database.
    pub db: usize,
    /// The master client's id while it is registered.
    pub client_id: Option<u64>,
}

impl Session {
    /// `cached`: the selected database of a position to continue from.
    pub fn new(cached: Option<usize>) -> Session {
        Session {
            cached: cached.is_some(),
            db: cached.unwrap_or(0),
            client_id: None,
        }
    }
}

/// The primary's answer to PSYNC.
enum Psync {
    Full { replid: String, offset: u64 },
    Continue { replid: Option<String> },
}

/// The socket with what was read and not yet used.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    timeout: Duration,
}

impl Conn {
    async fn send(&mut self, args: &[&[u8]]) -> Result<(), LinkError> {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        self.write(&b).await
    }

    async fn write(&mut self, b: &[u8]) -> Result<(), LinkError> {
        match tokio::time::timeout(self.timeout, self.stream.write_all(b)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LinkError::Write(e)),
            Err(_) => Err(LinkError::WriteTimeout),
        }
    }

    /// Reads more bytes into `buf`; an error when the primary closed the
    /// connection or said nothing for `repl-timeout`.
    async fn fill(&mut self) -> Result<usize, LinkError> {
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        match tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Err(LinkError::Lost),
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(LinkError::Read(e)),
            Err(_) => Err(LinkError::ReadTimeout),
        }
    }

    /// One line without its `\r\n` (or `\n`).
    async fn read_line(&mut self) -> Result<String, LinkError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(i + 1);
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                return Ok(String::from_utf8_lossy(line).into_owned());
            }
            if self.buf.len() > 64 * 1024 {
                return Err(LinkError::LineTooLong);
            }
            self.fill().await?;
        }
    }

    /// A command's one-line reply.
    async fn command(&mut self, args: &[&[u8]]) -> Result<String, LinkError> {
        self.send(args).await?;
        self.read_line().await
    }
}

fn repl_timeout(shared: &Shared) -> Duration {
    let s = shared
        .config
        .read()
        .get("repl-timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(s.max(1))
}

/// `REPLCONF listening-port`: `replica-announce-port`, else our port.
fn listening_port(shared: &Shared) -> u16 {
    let c = shared.config.read();
    match c
        .get("replica-announce-port")
        .and_then(|v| v.parse::<u16>().ok())
    {
        Some(p) if p != 0 => p,
        _ => shared
            .listen_addrs
            .first()
            .map_or(c.port, std::net::SocketAddr::port),
    }
}

/// One session; returns when the link is down (always an error: why).
pub(super) async fn run_session(
    shared: &Arc<Shared>,
    ctl: &Arc<LinkCtl>,
    host: &str,
    port: u16,
    session: &mut Session,
) -> Result<(), LinkError> {
    set_state(shared, ctl, LinkState::Connecting);
    let timeout = repl_timeout(shared);
    let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(LinkError::Connect(e)),
        Err(_) => return Err(LinkError::ConnectTimeout),
    };
    let _ = stream.set_nodelay(true);
    tracing::info!("MASTER <-> REPLICA sync started");
    set_state(shared, ctl, LinkState::Handshake);
    let mut conn = Conn {
        stream,
        buf: BytesMut::with_capacity(64 * 1024),
        timeout,
    };
    let psync = handshake(shared, &mut conn, session).await?;
    let peer = conn.stream.peer_addr().ok();
    let local = conn.stream.local_addr().ok();
    let fd = raw_fd(&conn.stream);
    let unknown = PeerAddr::Tcp(std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let handle = Arc::new(ClientHandle::new(
        id,
        peer.map_or(unknown.clone(), PeerAddr::Tcp),
        local.map_or(unknown, PeerAddr::Tcp),
        fd,
    ));
    {
        let mut m = handle.meta.lock();
        m.master = true;
        m.user = "(superuser)".into();
    }
    let mut client = Client::new(handle.clone(), true);
    client.master = true;
    match psync {
        Psync::Full { replid, offset } => {
            tracing::info!("Full resync from master: {replid}:{offset}");
            with_link(shared, ctl, |m, _| {
                m.state = LinkState::Transfer;
                m.transfer_size = -1;
                m.transfer_read = 0;
                m.transfer_last_io = Some(Instant::now());
            });
            let data = receive_rdb(shared, ctl, &mut conn).await?;
            tracing::info!(
                "MASTER <-> REPLICA sync: received {} bytes of RDB",
                data.len()
            );
            let cmds = tokio::task::spawn_blocking(move || apply::verify_rdb(&data))
                .await
                .map_err(LinkError::Task)?
                .map_err(LinkError::RdbRefused)?;
            apply::load_rdb(shared, ctl, &mut client, cmds, &replid, offset).await?;
            session.cached = true;
            tracing::info!("MASTER <-> REPLICA sync: Finished with success");
        }
        Psync::Continue { replid } => {
            tracing::info!("Successful partial resynchronization with master.");
            client.db = session.db;
            handle.meta.lock().db = session.db;
            let mut ks = shared.lock_ks();
            if ctl.is_cancelled() {
                return Err(LinkError::Stopped);
            }
            let mut st = shared.repl.lock();
            if let Some(new) = replid {
                if new != st.replid {
                    // Redis: the primary changed id (a failover); ours
                    // becomes the second one, valid up to our offset.
                    let old = std::mem::replace(&mut st.replid, new);
                    st.replid2 = old;
                    st.second_repl_offset = st.offset as i64 + 1;
                    tracing::warn!("Master replication ID changed to {}", st.replid);
                    // Its own replicas must learn of the new id.
                    st.disconnect_replicas();
                }
            }
            st.ensure_backlog();
            drop(st);
            ks.refresh_clock();
        }
    }
    let offset = shared.repl.lock().offset;
    shared.clients.insert(id, handle.clone());
    session.client_id = Some(id);
    with_link(shared, ctl, |m, _| {
        m.state = LinkState::Connected;
        m.down_since = 0;
        m.client_id = Some(id);
        m.last_io = Some(Instant::now());
        m.read_offset = offset;
        m.stream_db = client.db;
    });
    shared.repl.link_up.store(true, Ordering::SeqCst);
    let leftover = std::mem::take(&mut conn.buf);
    let mut applier = Applier::new(client, leftover);
    let r = stream_loop(shared, ctl, &mut conn, &mut applier).await;
    session.db = applier.client.db;
    applier.discard();
    r
}

#[cfg(unix)]
fn raw_fd(s: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

#[cfg(not(unix))]
fn raw_fd(_: &TcpStream) -> i32 {
    -1
}

/// PING, AUTH, REPLCONF, PSYNC (Redis's `syncWithMaster` states).
async fn handshake(
    shared: &Shared,
    conn: &mut Conn,
    session: &Session,
) -> Result<Psync, LinkError> {
    let r = conn.command(&[b"PING"]).await?;
    // Redis accepts an authentication error here: AUTH follows.
    if r.starts_with('-')
        && !r.starts_with("-NOAUTH")
        && !r.starts_with("-NOPERM")
        && !r.starts_with("-ERR operation not permitted")
    {
        return Err(LinkError::Ping(r));
    }
    let (user, pass, announce_ip) = {
        let c = shared.config.read();
        (
            c.get("masteruser").unwrap_or("").to_string(),
            c.get("masterauth").unwrap_or("").to_string(),
            c.get("replica-announce-ip").unwrap_or("").to_string(),
        )
    };
    if !pass.is_empty() {
        let r = if user.is_empty() {
            conn.command(&[b"AUTH", pass.as_bytes()]).await?
        } else {
            conn.command(&[b"AUTH", user.as_bytes(), pass.as_bytes()])
                .await?
        };
        if r.starts_with('-') {
            return Err(LinkError::Auth(r));
        }
    }
    let port = listening_port(shared).to_string();
    let r = conn
        .command(&[b"REPLCONF", b"listening-port", port.as_bytes()])
        .await?;
    if r.starts_with('-') {
        tracing::info!("(Non critical) Master does not understand REPLCONF listening-port: {r}");
    }
    if !announce_ip.is_empty() {
        let r = conn
            .command(&[b"REPLCONF", b"ip-address", announce_ip.as_bytes()])
            .await?;
        if r.starts_with('-') {
            tracing::info!("(Non critical) Master does not understand REPLCONF ip-address: {r}");
        }
    }
    let r = conn
        .command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    if r.starts_with('-') {
        tracing::info!("(Non critical) Master does not understand REPLCONF capa: {r}");
    }
    let (id, off) = if session.cached {
        let st = shared.repl.lock();
        (st.replid.clone(), (st.offset + 1).to_string())
    } else {
        ("?".to_string(), "-1".to_string())
    };
    tracing::info!("Trying a partial resynchronization (request {id}:{off}).");
    // A primary failing over asks its target to take over (FAILOVER).
    let failing_over = failover::in_progress(shared);
    let mut psync: Vec<&[u8]> = vec![b"PSYNC", id.as_bytes(), off.as_bytes()];
    if failing_over {
        psync.push(b"FAILOVER");
    }
    if let Err(e) = conn.send(&psync).await {
        if failing_over {
            failover::abort(
                shared,
                &mut shared.lock_ks(),
                "Write error to failover target",
            );
        }
        return Err(e);
    }
    let r = psync_reply(conn).await?;
    if failing_over {
        if r.is_ok() {
            failover::finish(shared);
        } else {
            failover::abort(
                shared,
                &mut shared.lock_ks(),
                "Failover target rejected psync request",
            );
        }
    }
    r
}

/// The primary's answer to PSYNC: Err(why) when it refused.
async fn psync_reply(conn: &mut Conn) -> Result<Result<Psync, LinkError>, LinkError> {
    // The primary may send newlines to keep the link alive meanwhile.
    let r = loop {
        let l = conn.read_line().await?;
        if !l.is_empty() {
            break l;
        }
    };
    if let Some(rest) = r.strip_prefix("+FULLRESYNC") {
        let mut it = rest.split_whitespace();
        let replid = it.next().filter(|s| s.len() == 40);
        let offset = it.next().and_then(|s| s.parse::<u64>().ok());
        return Ok(match (replid, offset) {
            (Some(id), Some(off)) => Ok(Psync::Full {
                replid: id.to_string(),
                offset: off,
            }),
            _ => Err(LinkError::BadFullResync(r.clone())),
        });
    }
    if let Some(rest) = r.strip_prefix("+CONTINUE") {
        let id = rest.trim();
        if !id.is_empty() && id.len() != 40 {
            return Ok(Err(LinkError::BadContinue(r.clone())));
        }
        return Ok(Ok(Psync::Continue {
            replid: (!id.is_empty()).then(|| id.to_string()),
        }));
    }
    if r.starts_with("-NOMASTERLINK") || r.starts_with("-LOADING") {
        return Ok(Err(LinkError::TryLater(r)));
    }
    Ok(Err(LinkError::PsyncRefused(r)))
}

/// The RDB of a full resynchronization, whole: `$<len>\r\n<bytes>`, or
/// `$EOF:<40 bytes mark>\r\n<bytes><mark>` (disk-less). Bytes after a
/// `$<len>` payload stay in `conn.buf` (the stream's start).
async fn receive_rdb(
    shared: &Shared,
    ctl: &Arc<LinkCtl>,
    conn: &mut Conn,
) -> Result<Vec<u8>, LinkError> {
    let line = loop {
        let l = conn.read_line().await?;
        // Newlines keep the link alive while the primary prepares the RDB.
        if !l.is_empty() {
            break l;
        }
    };
    if line.starts_with('-') {
        return Err(LinkError::Aborted(line));
    }
    let Some(rest) = line.strip_prefix('$') else {
        return Err(LinkError::NotBulk(line));
    };
    let progress = |read: usize, total: i64| {
        with_link(shared, ctl, |m, _| {
            m.transfer_size = total;
            m.transfer_read = read as u64;
            m.transfer_last_io = Some(Instant::now());
        });
    };
    if let Some(mark) = rest.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        if mark.len() != 40 {
            return Err(LinkError::BadEofMark(line));
        }
        // Redis's line, with where the bytes go: memory, then verified
        // whole before anything is loaded.
        tracing::info!(
            "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to memory"
        );
        let mut data = conn.buf.split().to_vec();
        loop {
            if data.len() >= mark.len() && data.ends_with(&mark) {
                data.truncate(data.len() - mark.len());
                progress(data.len(), -1);
                return Ok(data);
            }
            conn.fill().await?;
            data.extend_from_slice(&conn.buf.split());
            progress(data.len(), -1);
        }
    }
    let len: usize = rest
        .parse()
        .map_err(|_| LinkError::BadRdbLength(line.clone()))?;
    tracing::info!("MASTER <-> REPLICA sync: receiving {len} bytes from master to memory");
    let mut data = Vec::with_capacity(len.min(1 << 30));
    loop {
        let want = len - data.len();
        let take = want.min(conn.buf.len());
        data.extend_from_slice(&conn.buf.split_to(take));
        progress(data.len(), len as i64);
        if data.len() == len {
            return Ok(data);
        }
        conn.fill().await?;
    }
}

/// Applies the stream and acknowledges it until the link drops.
async fn stream_loop(
    shared: &Arc<Shared>,
    ctl: &Arc<LinkCtl>,
    conn: &mut Conn,
    applier: &mut Applier,
) -> Result<(), LinkError> {
    // The first ACK at once: a disk-less primary puts the replica online
    // on it.
    let offset = shared.repl.lock().offset;
    send_ack(conn, offset).await?;
    let handle = applier.client.handle.clone();
    let killed = handle.kill_notify.notified();
    tokio::pin!(killed);
    killed.as_mut().enable();
    let mut tick = tokio::time::interval(ACK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The read below restarts with every tick, so `repl-timeout` is
    // checked against the last byte received.
    let mut last_read = Instant::now();
    loop {
        if handle.is_killed() {
            return Err(LinkError::Killed);
        }
        // Whatever came with the last read (or after the RDB) first.
        if applier.has_input() {
            let acks = applier.run(shared, ctl).await?;
            for a in acks {
                send_ack(conn, a).await?;
            }
        }
        let read = tokio::select! {
            r = conn.fill() => Some(r?),
            _ = tick.tick() => None,
            _ = &mut killed => return Err(LinkError::Killed),
            // A command CLIENT PAUSE postponed: try again once it changed.
            _ = shared.pause.changed(), if applier.is_postponed() => continue,
        };
        match read {
            Some(n) => {
                last_read = Instant::now();
                let bytes = conn.buf.split();
                applier.push(&bytes);
                let pending = applier.pending_bytes() as u64;
                with_link(shared, ctl, |m, st| {
                    m.last_io = Some(Instant::now());
                    m.read_offset = st.offset + pending;
                });
                shared
                    .stats
                    .total_net_repl_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            None => {
                if last_read.elapsed() > conn.timeout {
                    return Err(LinkError::MasterTimeout);
                }
                let offset = shared.repl.lock().offset;
                send_ack(conn, offset).await?;
            }
        }
    }
}

async fn send_ack(conn: &mut Conn, offset: u64) -> Result<(), LinkError> {
    let off = offset.to_string();
    conn.send(&[b"REPLCONF", b"ACK", off.as_bytes()]).await
}
