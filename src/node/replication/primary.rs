//! The primary side of replication (Redis 7.0's protocol): REPLCONF,
//! PSYNC / SYNC, full resynchronization with an RDB snapshot streamed
//! disk-less, partial resynchronization from the backlog, the command
//! stream, PING, REPLCONF ACK / GETACK, WAIT and `min-replicas-to-write`.
//!
//! Data flow (see ARCHITECTURE.md "Replication"):
//!
//! - Every batch's units pass through [`on_units`] (the durability stage's
//!   tap, `Durability::set_tap`), under the keyspace lock and in WAL order.
//!   While replication is active (a backlog exists), their effects become
//!   Redis commands (`propagate`) fed with [`ReplState::feed`]: the offset
//!   moves, the backlog keeps them and every attached replica's queue gets
//!   them. A server that is itself a replica (`ReplState::master`) does not
//!   propagate its own units: its stream is its primary's, fed verbatim by
//!   the replica side.
//! - A replica's PSYNC that needs a full resync registers it as
//!   `wait_bgsave`; at the end of that batch, still under the keyspace lock
//!   and after the batch's units were fed, [`on_units`] encodes the RDB
//!   snapshot, queues `+FULLRESYNC <replid> <offset>` and the payload, and
//!   the replica receives the stream from that offset on: the snapshot and
//!   the offset are consistent because both are taken under the lock every
//!   write takes.
//! - A replica's bytes leave through its connection's push queue
//!   (`ClientHandle::push`), in order.

use super::{propagate, ReplState, ReplicaInfo};
use crate::node::{ClientHandle, Shared};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What REPLCONF told about a connection before its PSYNC.
#[derive(Debug, Clone, Default)]
pub struct ReplConf {
    pub port: u16,
    pub ip: Option<String>,
    /// `capa eof`: the RDB may be streamed with an EOF mark.
    pub capa_eof: bool,
    /// `capa psync2`: `+CONTINUE <replid>`.
    pub capa_psync2: bool,
}

/// The primary side's part of [`ReplState`].
#[derive(Debug)]
pub struct Primary {
    /// The database the stream last SELECTed (-1: none, as after a full
    /// resync: Redis's `slaveseldb`).
    pub seldb: i32,
    /// REPLCONF settings of connections that have not sent PSYNC yet.
    pub confs: HashMap<u64, ReplConf>,
    /// Woken at every REPLCONF ACK (WAIT).
    pub acked: Arc<tokio::sync::Notify>,
    /// When the last replica left (`repl-backlog-ttl`).
    pub no_replicas_since: Option<Instant>,
    /// When the last PING was fed.
    pub last_ping: Instant,
    /// INFO stats `sync_full`, `sync_partial_ok`, `sync_partial_err`
    /// (Redis's `stat_sync_*`: full resyncs served, PSYNCs answered
    /// +CONTINUE, PSYNCs for a history other than `?` refused).
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
}

impl Default for Primary {
    fn default() -> Self {
        Primary {
            seldb: -1,
            confs: HashMap::new(),
            acked: Arc::new(tokio::sync::Notify::new()),
            no_replicas_since: None,
            last_ping: Instant::now(),
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
        }
    }
}

pub const WAIT_BGSAVE: &str = "wait_bgsave";
pub const SEND_BULK: &str = "send_bulk";
pub const ONLINE: &str = "online";

fn unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// REPLCONF's refusals (the reply's text, as Redis's `replconfCommand`).
#[derive(Debug, thiserror::Error)]
pub enum ReplconfError {
    #[error("ERR value is not an integer or out of range")]
    NotAnInteger,
    #[error("ERR Unrecognized REPLCONF option: {0}")]
    Unknown(String),
}

/// REPLCONF of a connection that is not a replica yet (or is: `ack`,
/// `getack` are handled by [`ack`]). Refuses an unknown option, as Redis's
/// `replconfCommand`.
pub fn replconf(
    shared: &Shared,
    client_id: u64,
    opt: &[u8],
    val: &[u8],
) -> Result<(), ReplconfError> {
    let mut st = shared.repl.lock();
    let conf = st.primary.confs.entry(client_id).or_default();
    let o = String::from_utf8_lossy(opt).to_ascii_lowercase();
    match o.as_str() {
        "listening-port" => {
            let p: i64 = std::str::from_utf8(val)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(ReplconfError::NotAnInteger)?;
            conf.port = u16::try_from(p).unwrap_or(0);
        }
        "ip-address" => conf.ip = Some(String::from_utf8_lossy(val).into_owned()),
        "capa" => {
            if val.eq_ignore_ascii_case(b"eof") {
                conf.capa_eof = true;
            } else if val.eq_ignore_ascii_case(b"psync2") {
                conf.capa_psync2 = true;
            }
        }
        // Redis accepts and ignores these from a replica.
        "rdb-only" | "rdb-filter-only" => {}
        _ => {
            return Err(ReplconfError::Unknown(
                String::from_utf8_lossy(opt).into_owned(),
            ))
        }
    }
    Ok(())
}

/// REPLCONF ACK <offset> from an attached replica (no reply, as Redis).
pub fn ack(shared: &Shared, client_id: u64, offset: u64) {
    let mut st = shared.repl.lock();
    let now = unix_s();
    let mut woke = false;
    for r in st.replicas.iter_mut().filter(|r| r.client_id == client_id) {
        if offset > r.ack_offset {
            r.ack_offset = offset;
        }
        r.ack_unix = now;
        // A disk-less full sync is done when the replica first acks.
        if r.state == SEND_BULK {
            r.state = ONLINE;
        }
        r.release_held();
        woke = true;
    }
    if woke {
        st.primary.acked.notify_waiters();
    }
}

/// The outcome of PSYNC for the connection.
pub enum Psync {
    /// `+CONTINUE`: these bytes (reply and backlog) go to the replica.
    Continue(Vec<u8>),
    /// Full resync: the reply and the RDB follow at the end of the batch.
    Full,
}

/// PSYNC <replid> <offset> (`psync: false`: SYNC). Registers the
/// connection as a replica.
pub fn psync(
    shared: &Shared,
    ks: &mut crate::db::Keyspace,
    handle: &Arc<ClientHandle>,
    replid: &[u8],
    offset: i64,
    psync: bool,
) -> Psync {
    let mut st = shared.repl.lock();
    let conf = st.primary.confs.remove(&handle.id).unwrap_or_default();
    let ip = conf.ip.clone().unwrap_or_else(|| match &handle.addr {
        crate::node::net::PeerAddr::Tcp(a) => a.ip().to_string(),
        crate::node::net::PeerAddr::Unix(_) => String::new(),
    });
    let mut info = ReplicaInfo {
        client_id: handle.id,
        ip,
        port: conf.port,
        state: WAIT_BGSAVE,
        ack_offset: 0,
        ack_unix: unix_s(),
        handle: handle.clone(),
        capa_eof: conf.capa_eof,
        psync: true,
        soft_since: None,
        held: None,
    };
    handle.expect_pushes();
    handle.meta.lock().replica = true;
    // From now on `detach`, `cron` and the tap look at the replicas (a
    // replica whose backlog the replica side made may serve +CONTINUE
    // before anything set this).
    shared.repl.set_active(true);
    if psync {
        if let Some(bytes) = try_partial(&st, replid, offset, conf.capa_psync2) {
            info.state = ONLINE;
            st.replicas.push(info);
            st.primary.no_replicas_since = None;
            st.primary.sync_partial_ok += 1;
            return Psync::Continue(bytes);
        }
        if replid.first() != Some(&b'?') {
            st.primary.sync_partial_err += 1;
        }
    } else {
        info.psync = false;
    }
    // Full resync. The first replica without a backlog starts a new
    // history (Redis's `syncCommand`: new replid, no second id).
    if st.backlog.is_none() {
        st.backlog_size = backlog_size(shared);
        st.replid = super::random_replid();
        st.replid2 = super::NO_REPLID.to_string();
        st.second_repl_offset = -1;
        st.ensure_backlog();
    }
    // Effects of later commands are needed for the stream (with
    // `appendonly no` nothing captured them).
    if !ks.capturing() {
        ks.set_capture(true);
    }
    // Stream commands log what the stream needs (`Effect::Command`), and
    // so do retention trims (`propagate_retention`).
    ks.propagate_streams = true;
    shared
        .streams
        .note_trims
        .store(true, std::sync::atomic::Ordering::Relaxed);
    st.replicas.push(info);
    st.primary.no_replicas_since = None;
    st.primary.sync_full += 1;
    Psync::Full
}

/// The bytes for `+CONTINUE` if the backlog can serve `offset` for this
/// history (Redis's `masterTryPartialResynchronization`).
fn try_partial(st: &ReplState, replid: &[u8], offset: i64, psync2: bool) -> Option<Vec<u8>> {
    let offset = u64::try_from(offset).ok()?;
    let same = replid == st.replid.as_bytes();
    let former = replid == st.replid2.as_bytes()
        && i64::try_from(offset).is_ok_and(|o| o <= st.second_repl_offset);
    if !same && !former {
        return None;
    }
    let data = st.backlog.as_ref()?.read_from(offset)?;
    let mut out = if psync2 {
        format!("+CONTINUE {}\r\n", st.replid).into_bytes()
    } else {
        b"+CONTINUE\r\n".to_vec()
    };
    out.extend_from_slice(&data);
    Some(out)
}

/// The durability stage's tap (see the module doc): feeds the batch's
/// units to the stream, then serves the full resyncs that wait.
pub fn on_units(shared: &Shared, ks: &mut crate::db::Keyspace, units: &[Vec<u8>]) {
    if !shared.repl.is_active() {
        return;
    }
    let mut st = shared.repl.lock();
    if st.master.is_none() && st.backlog.is_some() && !units.is_empty() {
        let mut buf = Vec::new();
        let mut seldb = st.primary.seldb;
        // Streams sent whole hold the batch's later changes (`StreamCover`).
        let mut cover = propagate::StreamCover::default();
        for u in units {
            match crate::db::effect::decode_unit(u) {
                Ok(mut effects) => {
                    // A unit names a stream by id: the live one is sent.
                    for e in &mut effects {
                        if let crate::db::effect::Effect::Set {
                            value: crate::db::Value::Stream(s),
                            ..
                        } = e
                        {
                            if let Some(live) = shared.streams.find_open(s.0.id) {
                                *s = live;
                            }
                        }
                    }
                    if let Err(e) =
                        propagate::unit_commands_in(&effects, &mut seldb, &mut cover, &mut buf)
                    {
                        tracing::error!("replication: cannot propagate a unit: {e}");
                    }
                }
                Err(e) => tracing::error!("replication: cannot decode a unit: {}", e.0),
            }
        }
        st.primary.seldb = seldb;
        if !buf.is_empty() {
            st.feed(&buf);
        }
    }
    if st.replicas.iter().any(|r| r.state == WAIT_BGSAVE) {
        let eof = shared.config.read().get("repl-diskless-sync") != Some("no");
        full_sync(&mut st, ks, eof);
    }
}

/// Encodes the snapshot and queues it for every replica waiting for one.
/// `eof`: `repl-diskless-sync yes`, the EOF-mark form for replicas that
/// support it (`no`: the `$<len>` form Redis uses for an RDB from disk;
/// the snapshot is always encoded in memory).
fn full_sync(st: &mut ReplState, ks: &crate::db::Keyspace, eof: bool) {
    let records = propagate::sync_records(ks);
    let rdb = crate::node::rdb_io::snapshot(ks, unix_ms(), &records);
    for r in st.replicas.iter_mut().filter(|r| r.state == WAIT_BGSAVE) {
        let rdb = match &rdb {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("replication: cannot encode the snapshot: {e}");
                r.handle.kill();
                continue;
            }
        };
        let mut head = Vec::new();
        if r.psync {
            head.extend_from_slice(
                format!("+FULLRESYNC {} {}\r\n", st.replid, st.offset).as_bytes(),
            );
        }
        let mut tail = Vec::new();
        if r.capa_eof && eof {
            let mark = crate::random::random_hex(40);
            head.extend_from_slice(format!("$EOF:{mark}\r\n").as_bytes());
            tail.extend_from_slice(mark.as_bytes());
            if r.psync {
                r.held = Some(Vec::new());
            }
        } else {
            head.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
        }
        r.handle.push(Bytes::from(head));
        r.handle.push(Bytes::copy_from_slice(rdb));
        if !tail.is_empty() {
            r.handle.push(Bytes::from(tail));
        }
        tracing::info!(
            "Synchronization with replica {}:{} started ({} bytes)",
            r.ip,
            r.port,
            rdb.len()
        );
        // SYNC (old protocol) has no ACKs to wait for.
        r.state = if r.psync { SEND_BULK } else { ONLINE };
    }
    // The next command selects its database again (Redis's `slaveseldb`).
    st.primary.seldb = -1;
}

/// The server cron, under the keyspace lock: the retention trims the
/// streams' background maintenance made (`stream::Registry::maintain`,
/// off the keyspace lock) as `XTRIM key MINID <first kept id>`, one per
/// key holding the trimmed stream, logged like a stream command's
/// (`Keyspace::log_command`), so replicas drop the same entries, at most a
/// cron tick later. Finding the key costs a scan of the keys, paid only
/// for a stream that retention trimmed while replication is on.
pub fn propagate_retention(shared: &Shared, ks: &mut crate::db::Keyspace) {
    let trims = shared.streams.take_retention_trims();
    if trims.is_empty() || !ks.logs_commands() {
        return;
    }
    let mut found = Vec::new();
    for (i, db) in ks.dbs.iter().enumerate() {
        for (key, e) in db.iter() {
            if let crate::db::Value::Stream(s) = &e.value {
                if let Some((_, min)) = trims.iter().find(|(id, _)| *id == s.0.id) {
                    found.push((i, Bytes::copy_from_slice(key), *min));
                }
            }
        }
    }
    for (db, key, min) in found {
        let argv = vec![
            Bytes::from_static(b"XTRIM"),
            key,
            Bytes::from_static(b"MINID"),
            Bytes::from(crate::stream::fmt_id(min)),
        ];
        ks.log_command(db, argv);
    }
}

/// A connection closed: forget it as a replica.
pub fn detach(shared: &Shared, client_id: u64) {
    if !shared.repl.is_active() {
        return;
    }
    let mut st = shared.repl.lock();
    st.primary.confs.remove(&client_id);
    let before = st.replicas.len();
    st.replicas.retain(|r| r.client_id != client_id);
    if st.replicas.len() != before {
        tracing::info!("Connection with replica client id #{client_id} lost.");
        if st.replicas.is_empty() {
            st.primary.no_replicas_since = Some(Instant::now());
        }
        st.primary.acked.notify_waiters();
    }
}

/// `repl-backlog-size` as configured.
fn backlog_size(shared: &Shared) -> usize {
    shared
        .config
        .read()
        .get("repl-backlog-size")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(super::BACKLOG_SIZE_DEFAULT)
}

/// Called about every 100 ms by the server's cron: PING to the replicas
/// every `repl-ping-replica-period`, `repl-timeout` for silent replicas,
/// `repl-backlog-ttl` once none is left, CONFIG SET `repl-backlog-size`
/// and `client-output-buffer-limit replica` applied.
pub fn cron(shared: &Shared) {
    let size = backlog_size(shared);
    {
        let mut st = shared.repl.lock();
        if st.backlog_size != size {
            st.backlog_size = size;
            if let Some(b) = &mut st.backlog {
                b.resize(size);
            }
        }
    }
    if !shared.repl.is_active() {
        return;
    }
    let limits = {
        let c = shared.config.read();
        c.output_limits("slave")
            .or_else(|| c.output_limits("replica"))
            .unwrap_or((256 << 20, 64 << 20, 60))
    };
    let (period, timeout, ttl) = {
        let c = shared.config.read();
        let int = |n: &str| c.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (
            int("repl-ping-replica-period").max(1),
            int("repl-timeout").max(1),
            int("repl-backlog-ttl"),
        )
    };
    let mut st = shared.repl.lock();
    // No PING while a failover waits for a replica to reach the offset
    // (Redis skips it during a failover with a timeout: it would move it),
    // nor while a cluster manual failover pauses writes (the offset the
    // primary announced must stay).
    if st.master.is_none()
        && !st.replicas.is_empty()
        && st.failover.state == super::failover::FailoverState::None
        && !shared
            .pause
            .is_active(crate::node::pause::PausePurpose::ClusterFailover)
        && st.primary.last_ping.elapsed() >= Duration::from_secs(period)
    {
        st.primary.last_ping = Instant::now();
        let mut buf = Vec::new();
        propagate::put_command(&mut buf, &[b"PING"]);
        st.feed(&buf);
    }
    let now = unix_s();
    let (hard, soft, soft_s) = limits;
    for r in st.replicas.iter_mut() {
        if r.state == ONLINE && r.psync && now.saturating_sub(r.ack_unix) > timeout {
            tracing::warn!("Disconnecting timedout replica: {}:{}", r.ip, r.port);
            r.handle.kill();
        }
        // `client-output-buffer-limit replica`: bytes queued and unsent.
        let queued = r.queued_bytes();
        let over_soft = soft > 0 && queued > soft;
        let soft_expired = if over_soft {
            now.saturating_sub(*r.soft_since.get_or_insert(now)) >= soft_s
        } else {
            r.soft_since = None;
            false
        };
        if (hard > 0 && queued > hard) || soft_expired {
            tracing::warn!(
                "Client id={} addr={}:{} scheduled to be closed ASAP for overcoming of output buffer limits.",
                r.client_id,
                r.ip,
                r.port
            );
            r.handle.kill();
        }
    }
    if st.master.is_none() && ttl > 0 && st.replicas.is_empty() {
        if let Some(t) = st.primary.no_replicas_since {
            if t.elapsed() >= Duration::from_secs(ttl) {
                // Redis's `freeReplicationBacklog` after the ttl; the next
                // replica starts a new history.
                st.backlog = None;
                st.primary.no_replicas_since = None;
                tracing::info!(
                    "Replication backlog freed after {ttl} seconds without connected replicas."
                );
            }
        }
    }
}

/// Replicas whose last ack is at least `offset` (WAIT).
pub fn acked_count(st: &ReplState, offset: u64) -> usize {
    st.replicas
        .iter()
        .filter(|r| r.state == ONLINE && r.ack_offset >= offset)
        .count()
}

/// Feeds `REPLCONF GETACK *` (Redis's `replicationRequestAckFromSlaves`,
/// sent before sleeping while a client waits).
pub fn request_acks(st: &mut ReplState) {
    if st.master.is_some() || st.backlog.is_none() || st.replicas.is_empty() {
        return;
    }
    let mut buf = Vec::new();
    propagate::put_command(&mut buf, &[b"REPLCONF", b"GETACK", b"*"]);
    st.feed(&buf);
}

/// WAIT numreplicas timeout, run by the connection off the keyspace lock
/// after its batch: the number of replicas that acknowledged `woff`, the
/// offset right after the client's last write (Redis's `c->woff`), once
/// `num` did or the timeout (0: none) passed.
///
/// None: this server became a replica meanwhile (REPLICAOF, FAILOVER, a
/// cluster role change): the client gets `-UNBLOCKED` and is closed, as
/// Redis's `disconnectAllBlockedClients` does to a blocked WAIT.
pub async fn wait(shared: &Shared, num: u64, timeout_ms: u64, woff: u64) -> Option<i64> {
    let deadline = (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
    let (acked, offset) = {
        let mut st = shared.repl.lock();
        let offset = woff;
        let n = acked_count(&st, offset);
        if n as u64 >= num {
            return Some(n as i64);
        }
        // Not while clients are paused (Redis's beforeSleep): GETACK
        // would move the offset a paused primary announced; the replicas'
        // periodic REPLCONF ACK answers then.
        if !shared.pause.writes_paused() {
            request_acks(&mut st);
        }
        (st.primary.acked.clone(), offset)
    };
    loop {
        let notified = acked.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.repl.is_replica() {
            return None;
        }
        let n = acked_count(&shared.repl.lock(), offset);
        if n as u64 >= num {
            return Some(n as i64);
        }
        match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Some(n as i64);
                }
                let _ = tokio::time::timeout(d - now, notified).await;
            }
            None => notified.await,
        }
    }
}

impl super::Replication {
    /// `min-replicas-to-write` / `min-replicas-max-lag`: whether a write
    /// may run (Redis's `checkGoodReplicasStatus`); always on a replica or
    /// when either setting is 0. A method of the state `Shared` holds, so
    /// the command path needs no import of this module.
    pub fn enough_good_replicas(&self, min: u64, lag: u64) -> bool {
        if min == 0 || lag == 0 {
            return true;
        }
        let st = self.lock();
        if st.master.is_some() {
            return true;
        }
        let now = unix_s();
        let good = st
            .replicas
            .iter()
            .filter(|r| r.state == ONLINE && now.saturating_sub(r.ack_unix) <= lag)
            .count();
        good as u64 >= min
    }
}

/// After REPLICAOF NO ONE (the replica side calls it once the link is
/// gone): the history continues under a new id (`ReplState::shift_replid`
/// is the replica side's), and this server serves PSYNCs and propagates
/// its own writes from now on.
/// Runs under the keyspace lock (`ks`), as REPLICAOF NO ONE does.
pub fn on_promoted(shared: &Shared, ks: &mut crate::db::Keyspace) {
    let mut st = shared.repl.lock();
    st.ensure_backlog();
    st.primary.seldb = -1;
    drop(st);
    shared.repl.set_active(true);
    if !ks.capturing() {
        ks.set_capture(true);
    }
    // Stream commands log what the stream needs (`Effect::Command`), and
    // so do retention trims.
    ks.propagate_streams = true;
    shared
        .streams
        .note_trims
        .store(true, std::sync::atomic::Ordering::Relaxed);
}
