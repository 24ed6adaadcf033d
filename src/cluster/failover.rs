//! Replica election and promotion (Redis 7.0's `clusterHandleSlaveFailover`,
//! `clusterSendFailoverAuthIfNeeded`, `clusterGetSlaveRank`,
//! `clusterFailoverReplaceYourMaster`), on `State` under its lock.
//!
//! A replica whose primary is FAIL (and serves slots) waits 500 ms + a
//! random 0-500 ms + 1 s per replica of the same primary with a better
//! offset, then bumps `currentEpoch` and broadcasts FAILOVER_AUTH_REQUEST.
//! Primaries serving slots vote once per epoch (FAILOVER_AUTH_ACK), at most
//! once per failed primary every twice the node timeout, and only when no
//! claimed slot belongs to a primary of a greater config epoch. With a
//! majority of the primaries' votes within max(2 x node timeout, 2 s) the
//! replica takes the election's epoch as its config epoch, its primary's
//! slots, and tells every node with a PONG; the others (and the old
//! primary when back) follow through `update_slots_config_with`.

use super::bus::{self, Body, Header, Message};
use super::nodes::{bit, flags, todo, CantFailover, Election, Name, State};

/// `CLUSTER_CANT_FAILOVER_RELOG_PERIOD` (seconds).
const RELOG_PERIOD_MS: u64 = 10_000;
use super::slots::SLOTS;

/// A small xorshift on the clock: the election's random delay.
fn jitter(now: u64) -> u64 {
    let mut x = now.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x % 500
}

impl State {
    /// `clusterGetSlaveRank`: replicas of the same primary (not flagged
    /// nofailover) with a greater offset than ours.
    pub fn replica_rank(&self) -> usize {
        let Some(master) = self.me().replicaof else {
            return 0;
        };
        let mine = self.my_repl_offset;
        self.nodes
            .values()
            .filter(|n| {
                n.name != self.myself
                    && n.is_slave()
                    && n.replicaof == Some(master)
                    && !n.has(flags::NOFAILOVER)
                    && n.repl_offset > mine
            })
            .count()
    }

    /// Sends a message with no body (`FAILOVER_AUTH_*`, MFSTART).
    pub(super) fn empty_message(&self, kind: u16, mflags0: u8) -> Vec<u8> {
        let mut header: Header = self.header(kind);
        header.mflags[0] |= mflags0;
        bus::encode(&Message {
            header,
            body: Body::Empty,
        })
    }

    /// A PONG to the other replicas of our primary
    /// (`clusterBroadcastPong(CLUSTER_BROADCAST_LOCAL_SLAVES)`).
    fn pong_local_replicas(&mut self, now: u64) {
        let Some(master) = self.me().replicaof else {
            return;
        };
        let links: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.flags & (flags::MYSELF | flags::HANDSHAKE) == 0)
            .filter(|n| n.is_slave() && n.replicaof == Some(master))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_ping(l, bus::PONG, now);
        }
    }

    fn log_cant_failover(&mut self, reason: CantFailover, now: u64) {
        if reason == self.failover.cant_reason
            && now.saturating_sub(self.failover.last_log) < RELOG_PERIOD_MS
        {
            return;
        }
        self.failover.cant_reason = reason;
        let nolog = self.settings.node_timeout + 5000;
        if let Some(m) = self.me().replicaof.and_then(|m| self.nodes.get(&m)) {
            if m.failed() && now.saturating_sub(m.fail_time) < nolog {
                return;
            }
        }
        let msg = match reason {
            CantFailover::DataAge => "Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option.",
            CantFailover::WaitingDelay => "Waiting the delay before I can start a new failover.",
            CantFailover::Expired => "Failover attempt expired.",
            CantFailover::WaitingVotes => "Waiting for votes, but majority still not reached.",
            CantFailover::None => "Unknown reason code.",
        };
        self.failover.last_log = now;
        tracing::warn!("Currently unable to failover: {msg}");
    }

    /// `clusterHandleSlaveFailover`, from the cron and after an ACK.
    pub fn handle_replica_failover(&mut self, now: u64) {
        self.todo &= !todo::HANDLE_FAILOVER;
        let timeout = self.settings.node_timeout;
        let auth_age = now.saturating_sub(self.failover.auth_time);
        let needed = self.size / 2 + 1;
        let manual = self.mf.end != 0 && self.mf.can_start;
        let auth_timeout = (timeout * 2).max(2000);
        let auth_retry = auth_timeout * 2;
        let me = self.me();
        let master = me.replicaof.and_then(|m| self.nodes.get(&m));
        let Some(master) = master.filter(|m| {
            me.is_slave()
                && (m.failed() || manual)
                && (!self.settings.replica_no_failover || manual)
                && m.numslots > 0
        }) else {
            self.failover.cant_reason = CantFailover::None;
            return;
        };
        let master_name = master.name;
        let mut data_age = self.repl_data_age;
        if data_age > timeout {
            data_age -= timeout;
        }
        let factor = self.settings.replica_validity_factor;
        if factor != 0
            && data_age > self.settings.repl_ping_period * 1000 + timeout * factor
            && !manual
        {
            self.log_cant_failover(CantFailover::DataAge, now);
            return;
        }
        if auth_age > auth_retry {
            let rank = self.replica_rank();
            self.failover.auth_time = now + 500 + jitter(now) + rank as u64 * 1000;
            self.failover.auth_count = 0;
            self.failover.auth_sent = false;
            self.failover.auth_rank = rank;
            // A manual failover needs no delay.
            if self.mf.end != 0 {
                self.failover.auth_time = now;
                self.failover.auth_rank = 0;
                self.todo |= todo::HANDLE_FAILOVER;
            }
            tracing::warn!(
                "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
                self.failover.auth_time - now,
                self.failover.auth_rank,
                self.my_repl_offset
            );
            self.pong_local_replicas(now);
            return;
        }
        if !self.failover.auth_sent && self.mf.end == 0 {
            let rank = self.replica_rank();
            if rank > self.failover.auth_rank {
                let added = (rank - self.failover.auth_rank) as u64 * 1000;
                self.failover.auth_time += added;
                self.failover.auth_rank = rank;
                tracing::warn!(
                    "Replica rank updated to #{rank}, added {added} milliseconds of delay."
                );
            }
        }
        if now < self.failover.auth_time {
            self.log_cant_failover(CantFailover::WaitingDelay, now);
            return;
        }
        if auth_age > auth_timeout {
            self.log_cant_failover(CantFailover::Expired, now);
            return;
        }
        if !self.failover.auth_sent {
            self.current_epoch += 1;
            self.failover.auth_epoch = self.current_epoch;
            tracing::warn!(
                "Starting a failover election for epoch {}.",
                self.current_epoch
            );
            // A manual failover asks primaries to vote though its primary
            // is up.
            let force_ack = if self.mf.end != 0 {
                bus::FLAG0_FORCEACK
            } else {
                0
            };
            let bytes = self.empty_message(bus::FAILOVER_AUTH_REQUEST, force_ack);
            self.broadcast(bus::FAILOVER_AUTH_REQUEST, &bytes);
            self.failover.auth_sent = true;
            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
            return;
        }
        if self.failover.auth_count >= needed {
            tracing::warn!("Failover election won: I'm the new master.");
            let epoch = self.failover.auth_epoch;
            if self.me().config_epoch < epoch {
                self.me_mut().config_epoch = epoch;
                tracing::warn!("configEpoch set to {epoch} after successful failover");
            }
            self.replace_master(master_name, now);
        } else {
            self.log_cant_failover(CantFailover::WaitingVotes, now);
        }
    }

    /// `clusterFailoverReplaceYourMaster`: this replica becomes a primary
    /// with its primary's slots and tells everybody.
    pub fn replace_master(&mut self, old: Name, now: u64) {
        if self.me().is_master() {
            return;
        }
        let me = self.myself;
        self.set_node_as_master(me);
        for j in 0..SLOTS {
            if self.slots[j] == Some(old) {
                self.del_slot(j);
                self.add_slot(me, j);
            }
        }
        self.update_state(now);
        if let Err(e) = self.save_config_as(true) {
            tracing::error!("can't update cluster config file: {e}");
        }
        self.broadcast_pong(now);
        self.failover = Election::default();
        self.reset_manual_failover();
    }

    /// An ACK from a primary (counted if it serves slots and answers the
    /// election's epoch).
    pub fn on_failover_ack(&mut self, sender: Name, sender_current_epoch: u64) {
        let ok = self
            .nodes
            .get(&sender)
            .is_some_and(|n| n.is_master() && n.numslots > 0);
        if ok && sender_current_epoch >= self.failover.auth_epoch {
            self.failover.auth_count += 1;
            self.todo |= todo::HANDLE_FAILOVER;
        }
    }

    /// `clusterSendFailoverAuthIfNeeded`: vote for `node` when Redis would.
    pub fn vote_if_needed(&mut self, node: Name, request: &Header, now: u64) {
        let me = self.me();
        if me.is_slave() || me.numslots == 0 {
            return;
        }
        let name = super::nodes::name_str(&node).to_string();
        let force_ack = request.mflags[0] & bus::FLAG0_FORCEACK != 0;
        if request.current_epoch < self.current_epoch {
            tracing::warn!(
                "Failover auth denied to {name}: reqEpoch ({}) < curEpoch({})",
                request.current_epoch,
                self.current_epoch
            );
            return;
        }
        if self.last_vote_epoch == self.current_epoch {
            tracing::warn!(
                "Failover auth denied to {name}: already voted for epoch {}",
                self.current_epoch
            );
            return;
        }
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let master = n.replicaof.and_then(|m| self.nodes.get(&m));
        if n.is_master() {
            tracing::warn!("Failover auth denied to {name}: it is a master node");
            return;
        }
        let Some(master) = master else {
            tracing::warn!("Failover auth denied to {name}: I don't know its master");
            return;
        };
        if !master.failed() && !force_ack {
            tracing::warn!("Failover auth denied to {name}: its master is up");
            return;
        }
        let timeout2 = self.settings.node_timeout * 2;
        let since = now.saturating_sub(master.voted_time);
        if since < timeout2 {
            tracing::warn!(
                "Failover auth denied to {name}: can't vote about this master before {} milliseconds",
                timeout2 - since
            );
            return;
        }
        let master_name = master.name;
        for j in 0..SLOTS {
            if !bit(&request.myslots, j) || self.slot_unclaimed(j) {
                continue;
            }
            let epoch = self.slots[j]
                .and_then(|o| self.nodes.get(&o))
                .map_or(0, |o| o.config_epoch);
            if epoch <= request.config_epoch {
                continue;
            }
            tracing::warn!(
                "Failover auth denied to {name}: slot {j} epoch ({epoch}) > reqEpoch ({})",
                request.config_epoch
            );
            return;
        }
        self.last_vote_epoch = self.current_epoch;
        if let Some(m) = self.nodes.get_mut(&master_name) {
            m.voted_time = now;
        }
        self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
        if let Some(l) = self.nodes.get(&node).and_then(|n| n.link) {
            let bytes = self.empty_message(bus::FAILOVER_AUTH_ACK, 0);
            self.send_raw(l, bus::FAILOVER_AUTH_ACK, bytes);
        }
        tracing::warn!(
            "Failover auth granted to {name} for epoch {}",
            self.current_epoch
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::bus::NAMELEN;
    use crate::cluster::nodes::{Node, Settings};

    /// This node a primary with slot 0; `f` a primary with slot 1 and a
    /// replica `r`.
    fn cluster() -> (State, Name, Name) {
        let settings = Settings {
            node_timeout: 2000,
            // `replace_master` saves nodes.conf.
            config_file: std::env::temp_dir().join(format!(
                "redlog-failover-test-{}-{}.conf",
                std::process::id(),
                crate::random::random_hex(8)
            )),
            ..Settings::default()
        };
        let mut st = State::new(settings, 1);
        let me = st.myself;
        st.add_slot(me, 0);
        let (f, r) = ([b'f'; NAMELEN], [b'r'; NAMELEN]);
        st.nodes.insert(f, Node::new(f, flags::MASTER, 1));
        st.add_slot(f, 1);
        let mut rn = Node::new(r, flags::SLAVE, 1);
        rn.replicaof = Some(f);
        st.nodes.insert(r, rn);
        st.current_epoch = 5;
        (st, f, r)
    }

    fn request(st: &State, r: Name, epoch: u64) -> Header {
        let mut h = Header::new(bus::FAILOVER_AUTH_REQUEST);
        h.sender = r;
        h.current_epoch = epoch;
        h.config_epoch = 0;
        *h.myslots = *st.nodes[&st.nodes[&r].replicaof.unwrap()].slots;
        h
    }

    #[test]
    fn votes_once_per_epoch_for_a_replica_of_a_failed_primary() {
        let (mut st, f, r) = cluster();
        let h = request(&st, r, 5);
        // Its primary is up: no vote.
        st.vote_if_needed(r, &h, 100_000);
        assert_eq!(st.last_vote_epoch, 0);
        st.nodes.get_mut(&f).unwrap().flags |= flags::FAIL;
        // An older epoch than ours: no vote.
        st.vote_if_needed(r, &request(&st, r, 4), 100_000);
        assert_eq!(st.last_vote_epoch, 0);
        st.vote_if_needed(r, &h, 100_000);
        assert_eq!(st.last_vote_epoch, 5);
        assert_eq!(st.nodes[&f].voted_time, 100_000);
        // Not again for that primary within twice the node timeout, even
        // in a new epoch.
        st.current_epoch = 6;
        st.vote_if_needed(r, &request(&st, r, 6), 102_000);
        assert_eq!(st.last_vote_epoch, 5);
        st.vote_if_needed(r, &request(&st, r, 6), 104_001);
        assert_eq!(st.last_vote_epoch, 6);
    }

    #[test]
    fn a_replica_claiming_slots_of_a_newer_owner_gets_no_vote() {
        let (mut st, f, r) = cluster();
        st.nodes.get_mut(&f).unwrap().flags |= flags::FAIL;
        st.nodes.get_mut(&f).unwrap().config_epoch = 3;
        let mut h = request(&st, r, 5);
        h.config_epoch = 2;
        st.vote_if_needed(r, &h, 100_000);
        assert_eq!(st.last_vote_epoch, 0);
        h.config_epoch = 3;
        st.vote_if_needed(r, &h, 100_000);
        assert_eq!(st.last_vote_epoch, 5);
    }

    #[test]
    fn the_winner_takes_its_primarys_slots() {
        let (mut st, f, _) = cluster();
        st.set_master(f);
        assert!(st.me().is_slave());
        let me = st.myself;
        // A replica holds no slots of its own (CLUSTER REPLICATE checks).
        st.del_slot(0);
        st.replace_master(f, 1000);
        assert!(st.me().is_master());
        assert_eq!(st.me().replicaof, None);
        assert_eq!(st.slots[1], Some(me));
        assert_eq!(st.nodes[&f].numslots, 0);
        let _ = std::fs::remove_file(&st.settings.config_file);
    }
}
