//! Cluster mode: keeps the replication link in step with this node's role
//! in the cluster (Redis's `clusterSetMaster` -> `replicationSetMaster`,
//! `clusterFailoverReplaceYourMaster` -> `replicationUnsetMaster`, and
//! `clusterCron`'s "enable replication if we know our master"), and tells
//! the cluster state the replication offset and data age it gossips and
//! elects with.
//!
//! A primary in a manual failover (`cluster::manual`) gets its write
//! pause here too: the state asks for it (`ManualFailover::pause_until`),
//! the server pauses writes (`PausePurpose::ClusterFailover`) and hands
//! back the replication offset read under the keyspace lock, so every
//! write that passed the pause check before is in it; when the state no
//! longer asks (the failover ended or timed out), the pause is lifted.
//!
//! Run by the server cron under the keyspace lock (the lock
//! `replica::stop` wants); takes the cluster lock, then `repl`, never
//! both at once.

use super::pause::{PauseKind, PausePurpose};
use super::replica;
use super::replication::LinkState;
use super::Shared;
use crate::cluster::Cluster;
use crate::db::Keyspace;

/// What the cluster state wants: a primary, or a replica of `ip:port`
/// (None while that primary's address is unknown).
enum Role {
    Primary,
    Replica(Option<(String, u16)>),
}

fn wanted(c: &Cluster) -> Role {
    let st = c.state.lock();
    let me = st.me();
    if !me.is_slave() {
        return Role::Primary;
    }
    let addr = me
        .replicaof
        .and_then(|m| st.nodes.get(&m))
        .filter(|m| !m.ip.is_empty() && m.port != 0)
        .map(|m| (m.ip.clone(), m.port));
    Role::Replica(addr)
}

/// One step: start, retarget or stop the link, then publish the offset.
/// `cached` is the saved replication position at startup (the database
/// of the stream), None afterwards: a node that turns replica asks its
/// new primary for a partial resync from its own id and offset.
pub fn sync(shared: &Shared, c: &Cluster, ks: &mut Keyspace, cached: Option<Option<usize>>) {
    let current = shared
        .repl
        .lock()
        .master
        .as_ref()
        .map(|m| (m.host.clone(), m.port));
    match (wanted(c), current) {
        (Role::Primary, Some(_)) if replica::stop(shared, ks) => {
            tracing::info!("Cluster: this node is a primary now, replication stopped");
        }
        (Role::Replica(Some(addr)), cur) if cur.as_ref() != Some(&addr) => {
            tracing::info!("Cluster: replicating the primary at {}:{}", addr.0, addr.1);
            let cached = cached.unwrap_or(Some(0));
            crate::commands::blocking::disconnect_all(shared, ks);
            replica::start(shared, addr.0, addr.1, cached);
        }
        _ => {}
    }
    let now_unix = crate::cluster::now_ms() / 1000;
    let (offset, age) = {
        let r = shared.repl.lock();
        let age = match &r.master {
            Some(m) if m.state == LinkState::Connected => {
                m.last_io.map_or(0, |t| t.elapsed().as_millis() as u64)
            }
            Some(m) => now_unix.saturating_sub(m.down_since) * 1000,
            None => 0,
        };
        (r.offset, age)
    };
    let mut st = c.state.lock();
    st.my_repl_offset = offset;
    st.repl_data_age = age;
    let me = st.myself;
    if let Some(n) = st.nodes.get_mut(&me) {
        n.repl_offset = offset;
    }
    let wanted = (st.mf.pause_until, st.mf.paused);
    drop(st);
    manual_failover_pause(shared, c, wanted);
}

/// Holds or lifts a manual failover's write pause (see the module doc).
/// Under the keyspace lock.
fn manual_failover_pause(shared: &Shared, c: &Cluster, wanted: (Option<u64>, bool)) {
    match wanted {
        (Some(until), false) => {
            let now = crate::cluster::now_ms();
            let left = std::time::Duration::from_millis(until.saturating_sub(now));
            shared
                .pause
                .pause_for(PausePurpose::ClusterFailover, PauseKind::Write, left);
            let offset = shared.repl.lock().offset;
            let mut st = c.state.lock();
            st.manual_failover_paused(until, offset, now);
            st.before_sleep(now);
        }
        (None, _) if shared.pause.is_active(PausePurpose::ClusterFailover) => {
            shared.pause.unpause_for(PausePurpose::ClusterFailover);
        }
        _ => {}
    }
}
