//! The replica side: REPLICAOF's link to a primary (redis-server 7.0 or
//! redlog), as Redis 7.0's `replication.c` on a replica.
//!
//! One task per REPLICAOF (`start`) loops: connect, handshake and PSYNC
//! (`handshake`), on `+FULLRESYNC` receive the RDB whole, verify it, then
//! replace the dataset in one keyspace-lock hold (`apply::load_rdb`), then
//! apply the command stream as the master client (`apply::Applier`),
//! sending `REPLCONF ACK <offset>` every second. When the link drops it
//! waits a second and reconnects, asking `PSYNC <replid> <offset+1>`: the
//! primary answers `+CONTINUE` when its backlog still holds what was
//! missed. REPLICAOF NO ONE (`stop`) ends the task and promotes this
//! server (`ReplState::shift_replid`).
//!
//! State the task shows (INFO, ROLE) lives in `ReplState::master`
//! (`MasterLink`); a task only touches the link it was started for
//! (`LinkCtl` identity), so a task being replaced never updates its
//! successor's.

mod apply;
mod error;
pub mod failover;
mod handshake;

use crate::node::replication::{LinkCtl, LinkState, MasterLink, ReplState};
use crate::node::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use apply::verify_rdb;
pub use error::LinkError;

/// The log lines' role character is `S` while this process replicates a
/// primary (redis-server's `serverLogRaw`); the log formatter reads it.
pub static LOG_AS_REPLICA: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Pause between two connection attempts (Redis retries from its
/// once-a-second `replicationCron`).
const RETRY: Duration = Duration::from_secs(1);

/// How often the replica sends `REPLCONF ACK` (Redis: every cron tick).
const ACK_PERIOD: Duration = Duration::from_secs(1);

/// Starts replicating `host:port` (REPLICAOF host port, `replicaof` in the
/// config). A link already running is stopped first; this server keeps its
/// data and replication id and asks the new primary for a partial resync
/// from its own offset (Redis's `replicationCacheMasterUsingMyself`) when
/// `cached` holds the stream's selected database (None at a startup
/// without a saved replication position: `PSYNC ? -1`).
pub fn start(shared: &Shared, host: String, port: u16, cached: Option<usize>) {
    let Some(shared) = shared.me.get().and_then(std::sync::Weak::upgrade) else {
        return;
    };
    let shared = &shared;
    let link = MasterLink::new(host.clone(), port);
    let ctl = link.ctl.clone();
    let old = {
        let mut st = shared.repl.lock();
        // Redis's `disconnectSlaves`: this server's replicas reconnect and
        // learn of the new history.
        st.disconnect_replicas();
        st.master.replace(link)
    };
    if let Some(o) = old {
        o.ctl.cancel();
    }
    shared.repl.is_replica.store(true, Ordering::SeqCst);
    // WAITs answer UNBLOCKED (`primary::wait`).
    shared.repl.lock().primary.acked.notify_waiters();
    shared.repl.link_up.store(false, Ordering::SeqCst);
    LOG_AS_REPLICA.store(true, Ordering::Relaxed);
    set_replicaof_config(shared, &format!("{host} {port}"));
    let sh = shared.clone();
    let task = async move { run(sh, ctl, host, port, cached).await };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(task);
        }
        Err(_) => tracing::warn!("REPLICAOF outside the runtime: the link is not started"),
    }
}

/// REPLICAOF NO ONE (Redis's `replicationUnsetMaster`): stops the link and
/// makes this server a primary; the current replication id becomes the
/// second one (valid up to the current offset) so former siblings can
/// resync partially. Returns false when this server was no replica.
///
/// Run it under the keyspace lock (a command handler holds it), so no
/// batch of the primary's stream is half applied. The primary side's
/// Then the primary side takes over (`primary::on_promoted`): this
/// server's own writes are propagated from now on.
pub fn stop(shared: &Shared, ks: &mut crate::db::Keyspace) -> bool {
    let old = {
        let mut st = shared.repl.lock();
        let old = st.master.take();
        if old.is_some() {
            st.shift_replid();
            st.ensure_backlog();
        }
        old
    };
    let Some(old) = old else {
        return false;
    };
    old.ctl.cancel();
    if let Some(id) = old.client_id {
        if let Some(h) = shared.clients.get(&id) {
            h.kill();
        }
    }
    shared.repl.is_replica.store(false, Ordering::SeqCst);
    shared.repl.link_up.store(false, Ordering::SeqCst);
    LOG_AS_REPLICA.store(false, Ordering::Relaxed);
    set_replicaof_config(shared, "");
    crate::node::replication::primary::on_promoted(shared, ks);
    true
}

/// Keeps `CONFIG GET replicaof` (and CONFIG REWRITE) in step with the role.
fn set_replicaof_config(shared: &Shared, value: &str) {
    shared.config.write().set_internal("replicaof", value);
}

/// Runs `f` on this task's link, if it is still the current one.
fn with_link<R>(
    shared: &Shared,
    ctl: &Arc<LinkCtl>,
    f: impl FnOnce(&mut MasterLink, &mut ReplState) -> R,
) -> Option<R> {
    let mut st = shared.repl.lock();
    let st = &mut *st;
    let mut link = st.master.take()?;
    let r = if Arc::ptr_eq(&link.ctl, ctl) {
        Some(f(&mut link, st))
    } else {
        None
    };
    st.master = Some(link);
    r
}

fn set_state(shared: &Shared, ctl: &Arc<LinkCtl>, state: LinkState) {
    with_link(shared, ctl, |m, _| m.state = state);
}

fn unix_now() -> u64 {
    crate::db::now_ms() / 1000
}

/// The link task: sessions until REPLICAOF NO ONE, another REPLICAOF or
/// the server's shutdown.
async fn run(
    shared: Arc<Shared>,
    ctl: Arc<LinkCtl>,
    host: String,
    port: u16,
    cached: Option<usize>,
) {
    tracing::info!("Connecting to MASTER {host}:{port}");
    // The master client's selected database survives a partial resync
    // (Redis keeps the cached master client).
    let mut session = handshake::Session::new(cached);
    loop {
        if ctl.is_cancelled() || shared.is_shutting_down() {
            break;
        }
        let r = tokio::select! {
            r = handshake::run_session(&shared, &ctl, &host, port, &mut session) => r,
            _ = ctl.cancelled() => Err(LinkError::Stopped),
            _ = shared.shutdown_requested() => Err(LinkError::ShuttingDown),
        };
        let was_up = session.client_id.take();
        if let Some(id) = was_up {
            shared.clients.remove(&id);
        }
        with_link(&shared, &ctl, |m, _| {
            if m.state == LinkState::Connected || m.down_since == 0 && was_up.is_some() {
                m.down_since = unix_now();
            }
            m.state = LinkState::Connect;
            m.client_id = None;
            m.transfer_size = -1;
            m.transfer_read = 0;
            m.transfer_last_io = None;
        });
        shared.repl.link_up.store(false, Ordering::SeqCst);
        if let Err(e) = r {
            if !ctl.is_cancelled() {
                tracing::warn!("MASTER <-> REPLICA sync with {host}:{port}: {e}");
            }
        }
        if ctl.is_cancelled() || shared.is_shutting_down() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = ctl.cancelled() => {}
        }
    }
}

/// `replicaof`'s value: `host port`.
pub fn parse_replicaof(value: &str) -> Option<(String, u16)> {
    let mut it = value.split_whitespace();
    let host = it.next()?;
    let port = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((host.to_string(), port))
}

/// The file in `dir` holding `<replid> <offset> <db>\n` after a clean
/// shutdown: the position the WAL and stream logs were made durable at,
/// and the database the primary's stream had selected. Read (and
/// removed) at the next start, so after a crash it is absent and the
/// replica resynchronizes in full.
pub const POSITION_FILE: &str = "replication-position";

fn position_path(shared: &Shared) -> std::path::PathBuf {
    std::path::Path::new(&shared.config.read().dir).join(POSITION_FILE)
}

/// Saves the replication position at a clean shutdown, once the WAL and
/// stream logs are durable (`ServerHandle::wait`). Only with `appendonly
/// yes`: without it nothing survives a restart.
pub fn save_position(shared: &Shared) {
    if shared.persist.is_none() {
        return;
    }
    let (id, off, db) = {
        let st = shared.repl.lock();
        let db = st.master.as_ref().map_or(0, |m| m.stream_db);
        (st.replid.clone(), st.offset, db)
    };
    let path = position_path(shared);
    let tmp = path.with_extension("tmp");
    let r = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{id} {off} {db}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = r {
        tracing::warn!("cannot save the replication position: {e}");
    }
}

/// At startup: takes the position saved by the last clean shutdown (then
/// removes the file), or else the one the WAL's replay ended on (a
/// replica's last link batch, when nothing followed it: after a crash);
/// the stream's selected database when there was one, so a replica's
/// first PSYNC asks to continue from it.
pub fn load_position(shared: &Shared) -> Option<usize> {
    shared.persist.as_ref()?;
    let path = position_path(shared);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return replayed_position(shared);
    };
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!("cannot remove {}: {e}", path.display());
        return None;
    }
    let mut it = text.split_whitespace();
    let id = it.next();
    let off = it.next().and_then(|s| s.parse::<u64>().ok());
    let db = it.next().and_then(|s| s.parse::<usize>().ok());
    let (Some(id), Some(off), Some(db)) = (id, off, db) else {
        tracing::warn!("ignoring a malformed {}", path.display());
        return None;
    };
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || it.next().is_some() {
        tracing::warn!("ignoring a malformed {}", path.display());
        return None;
    }
    restore_position(shared, id, off, "");
    Some(db)
}

/// The position replay left (`Keyspace::repl_position`), taken as the
/// replication id and offset.
fn replayed_position(shared: &Shared) -> Option<usize> {
    let pos = shared.lock_ks().repl_position.clone()?;
    restore_position(shared, &pos.replid, pos.offset, " from the WAL");
    Some(usize::from(pos.db))
}

/// Takes `replid` and `offset` as this server's, with a backlog starting
/// after the offset, so the first PSYNC continues from there.
fn restore_position(shared: &Shared, replid: &str, offset: u64, source: &str) {
    let mut st = shared.repl.lock();
    st.replid = replid.to_string();
    st.offset = offset;
    st.backlog = Some(crate::node::replication::Backlog::new(
        st.backlog_size,
        offset + 1,
    ));
    tracing::info!("Replication position {replid}:{offset} restored{source}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicaof_values() {
        assert_eq!(
            parse_replicaof("10.0.0.1 6380"),
            Some(("10.0.0.1".to_string(), 6380))
        );
        assert_eq!(parse_replicaof(""), None);
        assert_eq!(parse_replicaof("host"), None);
        assert_eq!(parse_replicaof("host 70000"), None);
        assert_eq!(parse_replicaof("host 1 2"), None);
    }
}
