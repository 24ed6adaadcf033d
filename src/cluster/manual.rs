//! Manual failover: CLUSTER FAILOVER [FORCE|TAKEOVER] and MFSTART (Redis
//! 7.0's `clusterCommand` "failover", `resetManualFailover`,
//! `manualFailoverCheckTimeout`, `clusterHandleManualFailover`,
//! `clusterSendMFStart` and the MFSTART / PAUSED handling), on `State`
//! under its lock. The state is `State::mf` (`nodes::ManualFailover`).
//!
//! Default mode, step by step:
//! 1. The replica (CLUSTER FAILOVER) sets `mf.end` to now + 5 s and sends
//!    MFSTART to its primary.
//! 2. The primary, if the sender is one of its replicas, sets its own
//!    `mf.end` and `mf.replica` and asks the server for a write pause until
//!    now + 10 s (`mf.pause_until`). The server (`server::cluster_repl`,
//!    under the keyspace lock, so every write that passed the pause check
//!    is in the replication stream) pauses writes and calls
//!    [`State::manual_failover_paused`] with its offset: from then on the
//!    primary's headers carry that offset with the PAUSED flag, and the
//!    cron PINGs the replica every 100 ms.
//! 3. The replica takes the first PAUSED offset from its primary
//!    (`mf.master_offset`); once its own processed offset equals it,
//!    `mf.can_start` is set and `State::handle_replica_failover` runs the
//!    election at once, with FORCEACK (primaries vote though its primary is
//!    up).
//! 4. The winner takes the slots (`replace_master`, which ends the manual
//!    failover); the old primary learns the new configuration from its
//!    PONG, becomes its replica (`set_master`, which ends the manual
//!    failover there: the server lifts the pause, and the writes that
//!    waited are redirected).
//!
//! Either side gives up after 5 s (`manual_failover_check_timeout`). FORCE
//! skips steps 1-3 (`mf.can_start` at once); TAKEOVER skips the election:
//! a new config epoch without consensus and the slots taken at once.

use super::bus;
use super::nodes::{flags, name_str, todo, Name, State};

/// `CLUSTER_MF_TIMEOUT` (ms).
pub const MF_TIMEOUT: u64 = 5000;
/// `CLUSTER_MF_PAUSE_MULT`: the primary pauses writes this many timeouts.
pub const MF_PAUSE_MULT: u64 = 2;

/// CLUSTER FAILOVER's option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Default,
    Force,
    Takeover,
}

/// Why CLUSTER FAILOVER is refused (Redis's replies).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefusedFailover {
    #[error("ERR You should send CLUSTER FAILOVER to a replica")]
    NotReplica,
    #[error("ERR I'm a replica but my master is unknown to me")]
    UnknownMaster,
    #[error("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")]
    MasterDown,
}

impl State {
    /// `resetManualFailover`: no manual failover in progress; a primary
    /// that paused writes for one lifts the pause (the server sees
    /// `mf.pause_until` gone).
    pub fn reset_manual_failover(&mut self) {
        self.mf = Default::default();
    }

    /// `manualFailoverCheckTimeout`, from the cron.
    pub fn manual_failover_check_timeout(&mut self, now: u64) {
        if self.mf.end != 0 && self.mf.end < now {
            tracing::warn!("Manual failover timed out.");
            self.reset_manual_failover();
        }
    }

    /// `clusterHandleManualFailover`: a replica whose processed offset
    /// reached the one its paused primary announced may start.
    pub fn handle_manual_failover(&mut self) {
        if self.mf.end == 0 || self.mf.can_start {
            return;
        }
        let Some(offset) = self.mf.master_offset else {
            return;
        };
        if offset == self.my_repl_offset {
            self.mf.can_start = true;
            tracing::warn!("All master replication stream processed, manual failover can start.");
            self.todo |= todo::HANDLE_FAILOVER;
            return;
        }
        self.todo |= todo::HANDLE_MANUAL_FAILOVER;
    }

    /// CLUSTER FAILOVER [FORCE|TAKEOVER] on this node (the checks and
    /// what follows them in `clusterCommand`).
    pub fn manual_failover(&mut self, mode: Mode, now: u64) -> Result<(), RefusedFailover> {
        let me = self.me();
        if me.is_master() {
            return Err(RefusedFailover::NotReplica);
        }
        let Some(master) = me.replicaof.and_then(|m| self.nodes.get(&m)) else {
            return Err(RefusedFailover::UnknownMaster);
        };
        if mode == Mode::Default && (master.failed() || master.link.is_none()) {
            return Err(RefusedFailover::MasterDown);
        }
        let (master_name, master_link) = (master.name, master.link);
        self.reset_manual_failover();
        self.mf.end = now + MF_TIMEOUT;
        match mode {
            Mode::Takeover => {
                tracing::warn!("Taking over the master (user request).");
                self.bump_epoch_without_consensus();
                self.replace_master(master_name, now);
            }
            Mode::Force => {
                tracing::warn!("Forced failover user request accepted.");
                self.mf.can_start = true;
            }
            Mode::Default => {
                tracing::warn!("Manual failover user request accepted.");
                if let Some(l) = master_link {
                    let bytes = self.empty_message(bus::MFSTART, 0);
                    self.send_raw(l, bus::MFSTART, bytes);
                }
            }
        }
        Ok(())
    }

    /// An MFSTART on `link`: from one of this node's replicas, it starts
    /// the primary's side of a manual failover.
    pub fn on_mfstart(&mut self, sender: Option<Name>, link: u64, now: u64) {
        let myself = self.myself;
        let Some(s) = sender.filter(|s| {
            self.nodes
                .get(s)
                .is_some_and(|n| n.replicaof == Some(myself))
        }) else {
            return;
        };
        self.reset_manual_failover();
        self.mf.end = now + MF_TIMEOUT;
        self.mf.replica = Some(s);
        self.mf.pause_until = Some(now + MF_TIMEOUT * MF_PAUSE_MULT);
        tracing::warn!("Manual failover requested by replica {}.", name_str(&s));
        // Redis PINGs the replica at once; the PING that carries the paused
        // offset follows as soon as the server paused writes
        // (`manual_failover_paused`).
        self.send_ping(link, bus::PING, now);
    }

    /// The server paused writes for the manual failover that asked for a
    /// pause until `until`; `offset` is the replication offset then.
    /// Headers carry PAUSED from now on; the replica is PINGed at once.
    pub fn manual_failover_paused(&mut self, until: u64, offset: u64, now: u64) {
        if self.mf.pause_until != Some(until) || self.mf.paused || !self.me().is_master() {
            return;
        }
        self.mf.paused = true;
        self.my_repl_offset = offset;
        self.me_mut().repl_offset = offset;
        if let Some(l) = self
            .mf
            .replica
            .and_then(|r| self.nodes.get(&r))
            .and_then(|n| n.link)
        {
            self.send_ping(l, bus::PING, now);
        }
    }

    /// True when headers carry PAUSED: a primary in a manual failover
    /// whose writes the server paused.
    pub fn mf_paused_flag(&self) -> bool {
        self.me().is_master() && self.mf.end != 0 && self.mf.paused
    }

    /// A header from `sender` with `mflags0`: a replica in a manual
    /// failover takes its primary's first paused offset.
    pub fn note_paused_offset(&mut self, sender: Name, mflags0: u8, offset: u64) {
        let me = self.me();
        if self.mf.end != 0
            && me.is_slave()
            && me.replicaof == Some(sender)
            && mflags0 & bus::FLAG0_PAUSED != 0
            && self.mf.master_offset.is_none()
        {
            self.mf.master_offset = Some(offset);
            self.todo |= todo::HANDLE_MANUAL_FAILOVER;
            tracing::warn!(
                "Received replication offset for paused master manual failover: {offset}"
            );
        }
    }

    /// The cron's extra PING: a primary in a manual failover PINGs the
    /// replica that asked on every tick. True when `name` was PINGed.
    pub fn mf_ping_replica(&mut self, name: Name, now: u64) -> bool {
        if self.mf.end == 0 || !self.me().is_master() || self.mf.replica != Some(name) {
            return false;
        }
        let Some(l) = self
            .nodes
            .get(&name)
            .filter(|n| !n.has(flags::MYSELF))
            .and_then(|n| n.link)
        else {
            return false;
        };
        self.send_ping(l, bus::PING, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::bus::NAMELEN;
    use crate::cluster::nodes::{Node, Settings};

    /// This node a replica of `m` (slot 0).
    fn replica() -> (State, Name) {
        let settings = Settings {
            node_timeout: 2000,
            config_file: std::env::temp_dir().join(format!(
                "redlog-mf-test-{}-{}.conf",
                std::process::id(),
                crate::random::random_hex(8)
            )),
            ..Settings::default()
        };
        let mut st = State::new(settings, 1);
        let m = [b'm'; NAMELEN];
        st.nodes.insert(m, Node::new(m, flags::MASTER, 1));
        st.add_slot(m, 0);
        st.set_master(m);
        (st, m)
    }

    #[test]
    fn refusals_as_redis() {
        let settings = Settings::default();
        let mut st = State::new(settings, 1);
        assert_eq!(
            st.manual_failover(Mode::Default, 10),
            Err(RefusedFailover::NotReplica)
        );
        let (mut st, m) = replica();
        // No link to the primary: only FORCE / TAKEOVER.
        assert_eq!(
            st.manual_failover(Mode::Default, 10),
            Err(RefusedFailover::MasterDown)
        );
        st.nodes.get_mut(&m).unwrap().flags |= flags::FAIL;
        st.nodes.get_mut(&m).unwrap().link = Some(99);
        assert_eq!(
            st.manual_failover(Mode::Default, 10),
            Err(RefusedFailover::MasterDown)
        );
        assert_eq!(st.manual_failover(Mode::Force, 10), Ok(()));
        assert!(st.mf.can_start);
        assert_eq!(st.mf.end, 10 + MF_TIMEOUT);
        st.nodes.remove(&m);
        assert_eq!(
            st.manual_failover(Mode::Force, 10),
            Err(RefusedFailover::UnknownMaster)
        );
    }

    #[test]
    fn the_replica_starts_once_it_reached_the_paused_offset() {
        let (mut st, m) = replica();
        st.nodes.get_mut(&m).unwrap().link = Some(99);
        st.manual_failover(Mode::Default, 10).unwrap();
        st.my_repl_offset = 90;
        // Not paused yet: ignored.
        st.note_paused_offset(m, 0, 100);
        assert_eq!(st.mf.master_offset, None);
        st.note_paused_offset(m, bus::FLAG0_PAUSED, 100);
        // Only the first paused offset counts.
        st.note_paused_offset(m, bus::FLAG0_PAUSED, 120);
        assert_eq!(st.mf.master_offset, Some(100));
        st.handle_manual_failover();
        assert!(!st.mf.can_start);
        st.my_repl_offset = 100;
        st.handle_manual_failover();
        assert!(st.mf.can_start);
        // Timed out: all reset.
        st.manual_failover_check_timeout(11 + MF_TIMEOUT);
        assert_eq!(st.mf.end, 0);
        assert!(!st.mf.can_start);
        assert_eq!(st.mf.master_offset, None);
    }

    #[test]
    fn takeover_takes_the_slots_with_a_new_epoch() {
        let (mut st, m) = replica();
        st.current_epoch = 7;
        st.nodes.get_mut(&m).unwrap().config_epoch = 7;
        st.manual_failover(Mode::Takeover, 10).unwrap();
        assert!(st.me().is_master());
        assert_eq!(st.slots[0], Some(st.myself));
        assert_eq!(st.me().config_epoch, 8);
        assert_eq!(st.current_epoch, 8);
        assert_eq!(st.mf.end, 0);
        let _ = std::fs::remove_file(&st.settings.config_file);
    }

    #[test]
    fn a_primary_pauses_for_its_own_replica_only() {
        let mut st = State::new(Settings::default(), 1);
        let me = st.myself;
        st.add_slot(me, 0);
        let (r, other) = ([b'r'; NAMELEN], [b'o'; NAMELEN]);
        let mut rn = Node::new(r, flags::SLAVE, 1);
        rn.replicaof = Some(me);
        st.nodes.insert(r, rn);
        st.nodes.insert(other, Node::new(other, flags::MASTER, 1));
        let (link, _rx) = st.new_link(Some(r), true, 1);
        st.on_mfstart(Some(other), link, 1000);
        assert_eq!(st.mf.end, 0);
        st.on_mfstart(Some(r), link, 1000);
        assert_eq!(st.mf.replica, Some(r));
        assert_eq!(st.mf.pause_until, Some(1000 + 10_000));
        assert!(!st.mf_paused_flag());
        st.manual_failover_paused(1000 + 10_000, 4242, 1001);
        assert!(st.mf_paused_flag());
        assert_eq!(st.header(bus::PING).offset, 4242);
        st.manual_failover_check_timeout(1000 + MF_TIMEOUT + 1);
        assert_eq!(st.mf.pause_until, None);
        assert!(!st.mf_paused_flag());
    }
}
