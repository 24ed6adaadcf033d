//! Replication with Redis 7.0's protocol, both ways.
//!
//! This module holds what both sides share: the replication ids, the
//! stream offset, the backlog ([`Backlog`]) and the role. The primary side
//! (`primary`: REPLCONF, PSYNC/SYNC, full resynchronization, the command
//! stream, WAIT) lists its replicas in [`ReplState::replicas`]; the replica
//! side (`replica`: REPLICAOF, loading, applying the stream) keeps its link
//! in [`ReplState::master`]. A replica feeds the bytes it applies from its
//! primary into its own backlog unchanged, so its offset is the primary's
//! and its own replicas (and, after a promotion, its former siblings) can
//! resynchronize partially (PSYNC2).

mod backlog;
pub mod failover;
mod link;
pub mod primary;
pub mod propagate;
mod replicas;

pub use backlog::Backlog;
pub use link::{LinkCtl, LinkState, MasterLink};
pub use replicas::ReplicaInfo;

use parking_lot::{Mutex, MutexGuard};
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// `repl-backlog-size`'s default.
pub const BACKLOG_SIZE_DEFAULT: usize = 1 << 20;

/// Forty zeros: `master_replid2` when there is no previous id.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// See the module doc.
#[derive(Debug)]
pub struct Replication {
    state: Mutex<ReplState>,
    /// A backlog or replicas exist (primary side): the durability tap
    /// checks this before taking the lock (`primary::on_units`).
    active: AtomicBool,
    /// `ReplState::master.is_some()`, readable without the lock (the
    /// READONLY check runs for every write command). Kept by `replica`.
    pub(crate) is_replica: AtomicBool,
    /// The link to the primary is up (`master_link_status:up`), for the
    /// MASTERDOWN check. Kept by `replica`.
    pub(crate) link_up: AtomicBool,
}

/// The shared replication state (one lock; never held across an await or
/// while taking the keyspace lock — take the keyspace lock first).
#[derive(Debug)]
pub struct ReplState {
    /// `master_replid`: 40 hex characters.
    pub replid: String,
    /// `master_replid2`: the id before the last promotion, or [`NO_REPLID`].
    pub replid2: String,
    /// `second_repl_offset`: up to where `replid2` is valid, or -1.
    pub second_repl_offset: i64,
    /// `master_repl_offset`: offset of the last byte of the stream.
    pub offset: u64,
    /// The backlog; None until a replica first attaches (or this server
    /// becomes a replica), as Redis's `createReplicationBacklog`.
    pub backlog: Option<Backlog>,
    /// `repl-backlog-size`.
    pub backlog_size: usize,
    /// The primary this server replicates, if it is a replica.
    pub master: Option<MasterLink>,
    /// Replicas attached to this server.
    pub replicas: Vec<ReplicaInfo>,
    /// FAILOVER's state (`master_failover_state`).
    pub failover: failover::Failover,
    /// The primary side's state (`primary`).
    pub primary: primary::Primary,
}

impl Default for Replication {
    fn default() -> Self {
        Replication::new()
    }
}

impl Replication {
    pub fn new() -> Replication {
        Replication {
            state: Mutex::new(ReplState {
                replid: random_replid(),
                replid2: NO_REPLID.to_string(),
                second_repl_offset: -1,
                offset: 0,
                backlog: None,
                backlog_size: BACKLOG_SIZE_DEFAULT,
                master: None,
                replicas: Vec::new(),
                failover: failover::Failover::default(),
                primary: primary::Primary::default(),
            }),
            active: AtomicBool::new(false),
            is_replica: AtomicBool::new(false),
            link_up: AtomicBool::new(false),
        }
    }

    /// See [`Replication::active`]'s field.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    /// True while the link to the primary is up (a replica only).
    pub fn link_up(&self) -> bool {
        self.link_up.load(Ordering::Relaxed)
    }

    /// True while this server replicates a primary (REPLICAOF host port).
    pub fn is_replica(&self) -> bool {
        self.is_replica.load(Ordering::Relaxed)
    }

    pub fn lock(&self) -> MutexGuard<'_, ReplState> {
        self.state.lock()
    }

    /// The INFO `replication` section's lines after `# Replication`, as
    /// Redis 7.0's `genRedisInfoString`. `replica_cfg` is
    /// (`replica-priority`, `replica-read-only`, `replica-announced`),
    /// shown by a replica.
    pub fn info(&self, replica_cfg: (i64, bool, bool), out: &mut String) {
        let st = self.state.lock();
        match &st.master {
            None => out.push_str("role:master\r\n"),
            Some(m) => {
                out.push_str("role:slave\r\n");
                m.info_lines(st.offset, replica_cfg, crate::db::now_ms() / 1000, out);
            }
        }
        let _ = write!(out, "connected_slaves:{}\r\n", st.replicas.len());
        for (i, r) in st.replicas.iter().enumerate() {
            r.info_line(i, out);
        }
        let _ = write!(
            out,
            "master_failover_state:{}\r\n",
            st.failover.state.name()
        );
        let _ = write!(out, "master_replid:{}\r\n", st.replid);
        let _ = write!(out, "master_replid2:{}\r\n", st.replid2);
        let _ = write!(out, "master_repl_offset:{}\r\n", st.offset);
        let _ = write!(out, "second_repl_offset:{}\r\n", st.second_repl_offset);
        let (active, first, histlen) = match &st.backlog {
            Some(b) => (1, b.first_byte_offset(), b.histlen()),
            None => (0, 0, 0),
        };
        let _ = write!(out, "repl_backlog_active:{active}\r\n");
        let _ = write!(out, "repl_backlog_size:{}\r\n", st.backlog_size);
        let _ = write!(out, "repl_backlog_first_byte_offset:{first}\r\n");
        let _ = write!(out, "repl_backlog_histlen:{histlen}\r\n");
    }
}

impl ReplState {
    /// Appends bytes of the replication stream: the offset moves, the
    /// backlog (if any) keeps them and every attached replica gets them.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.offset += bytes.len() as u64;
        if let Some(b) = &mut self.backlog {
            b.append(bytes);
        }
        for r in &mut self.replicas {
            r.send(bytes);
        }
    }

    /// Creates the backlog if there is none (Redis's
    /// `createReplicationBacklog`): it starts at the next byte.
    pub fn ensure_backlog(&mut self) {
        if self.backlog.is_none() {
            self.backlog = Some(Backlog::new(self.backlog_size, self.offset + 1));
        }
    }

    /// Redis's `disconnectSlaves`: closes every attached replica's
    /// connection (each reconnects and asks PSYNC again).
    pub fn disconnect_replicas(&mut self) {
        for r in &self.replicas {
            r.handle.kill();
        }
    }

    /// Redis's `shiftReplicationId`: on promotion the current id becomes
    /// the second one, valid up to the current offset, and a new id starts.
    pub fn shift_replid(&mut self) {
        self.replid2 = std::mem::replace(&mut self.replid, random_replid());
        self.second_repl_offset = self.offset as i64 + 1;
    }
}

/// A new replication id (Redis's `changeReplicationId`).
pub fn random_replid() -> String {
    crate::random::random_hex(40)
}

/// INFO replication's replica settings: (`replica-priority`,
/// `replica-read-only`, `replica-announced`).
pub fn info_config(shared: &crate::node::Shared) -> (i64, bool, bool) {
    let c = shared.config.read();
    let priority = c
        .get("replica-priority")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    (
        priority,
        c.get("replica-read-only") != Some("no"),
        c.get("replica-announced") != Some("no"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_of_a_master_without_replicas() {
        let r = Replication::new();
        r.lock().feed(b"ignored: no backlog yet");
        let mut out = String::new();
        r.info((100, true, true), &mut out);
        let id = r.lock().replid.clone();
        assert_eq!(id.len(), 40);
        assert_eq!(
            out,
            format!(
                "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n\
                 master_replid:{id}\r\nmaster_replid2:{NO_REPLID}\r\nmaster_repl_offset:23\r\n\
                 second_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\n\
                 repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n"
            )
        );
    }

    #[test]
    fn shift_keeps_the_old_id_valid_up_to_the_offset() {
        let r = Replication::new();
        let mut st = r.lock();
        st.ensure_backlog();
        st.feed(b"*1\r\n$4\r\nPING\r\n");
        let old = st.replid.clone();
        st.shift_replid();
        assert_eq!(st.replid2, old);
        assert_ne!(st.replid, old);
        assert_eq!(st.second_repl_offset, 15);
        assert_eq!(st.backlog.as_ref().map(|b| b.first_byte_offset()), Some(1));
    }
}
