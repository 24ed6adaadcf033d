//! The cluster's nodes and slot table (Redis's `clusterState` /
//! `clusterNode`), the operations on them that commands and the bus share,
//! and the `nodes.conf` format (the CLUSTER NODES lines plus a `vars`
//! line), written atomically (and fsynced when Redis fsyncs) by `State::save_config`.
//!
//! A node is a primary or a replica of a primary (`Node::replicaof`,
//! the `slave` flag); this node becomes one by `State::set_master`
//! (CLUSTER REPLICATE, or losing its slots to a newer owner). The server
//! keeps the replication link in step with that role (`server::cluster_repl`).

use super::bus::{cstr, NAMELEN, SLOT_BYTES};
use super::slots::SLOTS;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A node name: 40 lower-case hex characters.
pub type Name = [u8; NAMELEN];

/// Node flags (`CLUSTER_NODE_*`).
pub mod flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;

    /// Names in Redis's `redisNodeFlagsTable` order.
    pub const NAMES: &[(u16, &str)] = &[
        (MYSELF, "myself"),
        (MASTER, "master"),
        (SLAVE, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];
}

/// `todo_before_sleep` bits.
pub mod todo {
    pub const UPDATE_STATE: u8 = 1 << 1;
    pub const SAVE_CONFIG: u8 = 1 << 2;
    pub const FSYNC_CONFIG: u8 = 1 << 3;
    pub const HANDLE_FAILOVER: u8 = 1 << 0;
    /// `CLUSTER_TODO_HANDLE_MANUALFAILOVER`.
    pub const HANDLE_MANUAL_FAILOVER: u8 = 1 << 4;
}

/// A new node name: 40 random hex characters, as Redis's
/// `getRandomHexChars`.
pub fn random_name() -> Name {
    let mut out = [b'0'; NAMELEN];
    let hex = crate::random::random_hex(NAMELEN);
    out.copy_from_slice(hex.as_bytes());
    out
}

pub fn name_str(n: &Name) -> &str {
    std::str::from_utf8(n).unwrap_or("????????????????????????????????????????")
}

/// Redis's `verifyClusterNodeId`: exactly 40 bytes (any bytes: Redis does
/// not check they are hex).
pub fn parse_name(s: &[u8]) -> Option<Name> {
    <Name>::try_from(s).ok()
}

pub fn bit(bm: &[u8; SLOT_BYTES], slot: usize) -> bool {
    bm[slot / 8] & (1 << (slot & 7)) != 0
}

fn set_bit(bm: &mut [u8; SLOT_BYTES], slot: usize, on: bool) {
    if on {
        bm[slot / 8] |= 1 << (slot & 7);
    } else {
        bm[slot / 8] &= !(1 << (slot & 7));
    }
}

#[derive(Debug)]
pub struct Node {
    pub name: Name,
    pub flags: u16,
    pub config_epoch: u64,
    pub slots: Box<[u8; SLOT_BYTES]>,
    pub numslots: usize,
    pub replicaof: Option<Name>,
    pub ctime: u64,
    pub ping_sent: u64,
    pub pong_received: u64,
    pub data_received: u64,
    pub fail_time: u64,
    pub repl_offset: u64,
    pub ip: String,
    pub hostname: String,
    pub port: u16,
    pub pport: u16,
    pub cport: u16,
    /// (reporting node, time of its last report).
    pub fail_reports: Vec<(Name, u64)>,
    /// Outbound link (ours, to its bus port).
    pub link: Option<u64>,
    /// Inbound link (accepted from it).
    pub inbound_link: Option<u64>,
    pub last_in_ping_gossip: u64,
    /// When this node (a primary) last got our vote for one of its
    /// replicas (`voted_time`).
    pub voted_time: u64,
    /// When this replica was added to its primary's replicas (a
    /// `State::replica_seq` value): replicas are listed in this order, as
    /// Redis keeps `master->slaves` (`migration`).
    pub replica_seq: u64,
    /// Since when this primary is an orphan (`orphaned_time`, `migration`).
    pub orphaned_time: u64,
}

impl Node {
    pub fn new(name: Name, flags: u16, now: u64) -> Node {
        Node {
            name,
            flags,
            config_epoch: 0,
            slots: Box::new([0; SLOT_BYTES]),
            numslots: 0,
            replicaof: None,
            ctime: now,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            repl_offset: 0,
            ip: String::new(),
            hostname: String::new(),
            port: 0,
            pport: 0,
            cport: 0,
            fail_reports: Vec::new(),
            link: None,
            inbound_link: None,
            last_in_ping_gossip: 0,
            voted_time: 0,
            replica_seq: 0,
            orphaned_time: 0,
        }
    }
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    pub fn is_master(&self) -> bool {
        self.has(flags::MASTER)
    }
    pub fn is_slave(&self) -> bool {
        self.has(flags::SLAVE)
    }
    pub fn failed(&self) -> bool {
        self.has(flags::FAIL)
    }
    pub fn timed_out(&self) -> bool {
        self.has(flags::PFAIL)
    }
    pub fn in_handshake(&self) -> bool {
        self.has(flags::HANDSHAKE)
    }
}

/// A bus connection known to the state; the socket is owned by its task
/// (`net`), which is told to close it by dropping `tx`.
#[derive(Debug)]
pub struct Link {
    pub node: Option<Name>,
    pub inbound: bool,
    pub ctime: u64,
    /// None while an outbound link is still connecting.
    pub tx: Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
    pub send_buffer_allocated: u64,
}

/// Settings read from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub node_timeout: u64,
    pub require_full_coverage: bool,
    pub allow_reads_when_down: bool,
    pub allow_pubsubshard_when_down: bool,
    pub announce_ip: String,
    pub announce_hostname: String,
    /// The client and bus ports announced to other nodes.
    pub port: u16,
    pub cport: u16,
    /// The bus port listened on.
    pub bind_cport: u16,
    pub config_file: std::path::PathBuf,
    /// `cluster-preferred-endpoint-type`: "ip", "hostname", "unknown-endpoint".
    pub endpoint_type: String,
    /// `cluster-replica-validity-factor`.
    pub replica_validity_factor: u64,
    /// `cluster-replica-no-failover`.
    pub replica_no_failover: bool,
    /// `cluster-allow-replica-migration`.
    pub allow_replica_migration: bool,
    /// `cluster-migration-barrier`.
    pub migration_barrier: u64,
    /// `repl-ping-replica-period` (seconds).
    pub repl_ping_period: u64,
}

/// Why the replica cannot fail over now (`CLUSTER_CANT_FAILOVER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CantFailover {
    #[default]
    None,
    DataAge,
    WaitingDelay,
    Expired,
    WaitingVotes,
}

/// The election state (`failover_auth_*`, `cant_failover_reason`).
#[derive(Debug, Default, Clone)]
pub struct Election {
    /// When the election starts (or started), ms.
    pub auth_time: u64,
    pub auth_count: usize,
    pub auth_sent: bool,
    pub auth_rank: usize,
    pub auth_epoch: u64,
    pub cant_reason: CantFailover,
    pub last_log: u64,
}

/// A manual failover in progress (Redis's `mf_*` fields; the logic is in
/// `cluster::manual`). Both roles: a replica that was sent CLUSTER
/// FAILOVER, a primary one of whose replicas sent MFSTART.
#[derive(Debug, Default, Clone)]
pub struct ManualFailover {
    /// `mf_end`: when it is aborted (ms); 0: none in progress.
    pub end: u64,
    /// `mf_can_start`: a replica may run its election.
    pub can_start: bool,
    /// `mf_slave`: a primary, the replica that sent MFSTART.
    pub replica: Option<Name>,
    /// `mf_master_offset`: a replica, its primary's offset announced
    /// while paused (None: Redis's -1).
    pub master_offset: Option<u64>,
    /// A primary: the write pause the server is to hold, until this time
    /// (ms); None once the failover ends (the server lifts the pause).
    pub pause_until: Option<u64>,
    /// A primary: the server paused writes and handed the state the
    /// offset at that moment; only then do headers carry PAUSED.
    pub paused: bool,
}

/// The cluster state of this node.
#[derive(Debug)]
pub struct State {
    pub myself: Name,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub ok: bool,
    pub size: usize,
    pub nodes: HashMap<Name, Node>,
    /// Node id -> time (ms) until which it may not be re-added (FORGET).
    pub blacklist: HashMap<Name, u64>,
    pub slots: Vec<Option<Name>>,
    pub migrating: Vec<Option<Name>>,
    pub importing: Vec<Option<Name>>,
    pub owner_not_claiming: Box<[u8; SLOT_BYTES]>,
    pub stats_sent: [u64; super::bus::TYPE_COUNT],
    pub stats_received: [u64; super::bus::TYPE_COUNT],
    pub stats_pfail_nodes: usize,
    pub todo: u8,
    pub links: HashMap<u64, Link>,
    pub next_link_id: u64,
    /// Slots this node lost while holding keys: the server deletes their
    /// keys (Redis's `delKeysInSlot` after an UPDATE).
    pub dirty_slots: Vec<u16>,
    pub settings: Settings,
    /// `clusterUpdateState`'s first call and minority times.
    pub first_update_call: u64,
    pub among_minority_time: u64,
    pub pings_sent: u64,
    pub iteration: u64,
    /// The last failure to write nodes.conf (logged once per change).
    pub save_error: Option<String>,
    /// This node's replication offset (a primary's `master_repl_offset`,
    /// a replica's processed offset), sent in every header; kept by the
    /// server (`server::cluster_repl`).
    pub my_repl_offset: u64,
    /// A replica: milliseconds since its primary last sent data (or since
    /// the link went down), for `cluster-replica-validity-factor`.
    pub repl_data_age: u64,
    /// The election of a replica whose primary failed (`failover_auth_*`).
    pub failover: Election,
    /// The manual failover in progress (CLUSTER FAILOVER, MFSTART).
    pub mf: ManualFailover,
    /// The last `Node::replica_seq` given out.
    pub replica_seq: u64,
}

/// Why nodes.conf cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BadConfig {
    #[error("line {line}: {what}")]
    Line { line: usize, what: &'static str },
    #[error("no node is flagged myself")]
    NoMyself,
}

impl State {
    /// A fresh state with a new random name (no nodes.conf yet).
    pub fn new(settings: Settings, now: u64) -> State {
        let myself = random_name();
        let mut s = State::empty(myself, settings);
        let mut me = Node::new(myself, flags::MYSELF | flags::MASTER, now);
        me.port = s.settings.port;
        me.cport = s.settings.cport;
        me.hostname = s.settings.announce_hostname.clone();
        if !s.settings.announce_ip.is_empty() {
            me.ip = s.settings.announce_ip.clone();
        }
        s.nodes.insert(myself, me);
        s
    }

    fn empty(myself: Name, settings: Settings) -> State {
        State {
            myself,
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            size: 1,
            nodes: HashMap::new(),
            blacklist: HashMap::new(),
            slots: vec![None; SLOTS],
            migrating: vec![None; SLOTS],
            importing: vec![None; SLOTS],
            owner_not_claiming: Box::new([0; SLOT_BYTES]),
            stats_sent: [0; super::bus::TYPE_COUNT],
            stats_received: [0; super::bus::TYPE_COUNT],
            stats_pfail_nodes: 0,
            todo: 0,
            links: HashMap::new(),
            next_link_id: 1,
            dirty_slots: Vec::new(),
            settings,
            first_update_call: 0,
            among_minority_time: 0,
            pings_sent: 0,
            iteration: 0,
            save_error: None,
            my_repl_offset: 0,
            repl_data_age: 0,
            failover: Default::default(),
            mf: Default::default(),
            replica_seq: 0,
        }
    }

    pub fn me(&self) -> &Node {
        &self.nodes[&self.myself]
    }
    pub fn me_mut(&mut self) -> &mut Node {
        self.nodes
            .get_mut(&self.myself)
            .expect("myself is always in the node table")
    }

    pub fn lookup(&self, name: &[u8]) -> Option<&Node> {
        parse_name(name).and_then(|n| self.nodes.get(&n))
    }

    pub fn add_slot(&mut self, node: Name, slot: usize) -> bool {
        if self.slots[slot].is_some() {
            return false;
        }
        let mut first = false;
        if let Some(n) = self.nodes.get_mut(&node) {
            if !bit(&n.slots, slot) {
                set_bit(&mut n.slots, slot, true);
                n.numslots += 1;
                first = n.numslots == 1;
            }
        }
        // `clusterNodeSetSlotBit`: a primary getting its first slot is a
        // migration target when some primary has replicas.
        if first && self.masters_have_replicas() {
            if let Some(n) = self.nodes.get_mut(&node) {
                n.flags |= flags::MIGRATE_TO;
            }
        }
        self.slots[slot] = Some(node);
        true
    }

    pub fn del_slot(&mut self, slot: usize) -> bool {
        let Some(owner) = self.slots[slot].take() else {
            return false;
        };
        if let Some(n) = self.nodes.get_mut(&owner) {
            if bit(&n.slots, slot) {
                set_bit(&mut n.slots, slot, false);
                n.numslots -= 1;
            }
        }
        true
    }

    pub fn del_node_slots(&mut self, node: Name) -> usize {
        let mut n = 0;
        for j in 0..SLOTS {
            if self.slots[j] == Some(node) {
                self.del_slot(j);
                n += 1;
            }
        }
        n
    }

    /// Makes this node a replica of `master` (`clusterSetMaster`): a
    /// primary drops its open slots (it holds no slots: callers check);
    /// the server starts the replication link when it sees the new role.
    pub fn set_master(&mut self, master: Name) {
        let me = self.me_mut();
        if me.is_master() {
            me.flags &= !(flags::MASTER | flags::MIGRATE_TO);
            me.flags |= flags::SLAVE;
            for j in 0..SLOTS {
                self.migrating[j] = None;
                self.importing[j] = None;
            }
        }
        let me = self.myself;
        self.set_replicaof(me, Some(master));
        self.failover = Default::default();
        self.mf = Default::default();
        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
    }

    /// Removes a node: its slots, open slot states, failure reports it
    /// sent, its links (`clusterDelNode`).
    pub fn del_node(&mut self, name: Name) {
        // `freeClusterNode`: its replicas forget their primary, it leaves
        // its primary's replicas.
        let orphans: Vec<Name> = self
            .nodes
            .values()
            .filter(|n| n.replicaof == Some(name) && n.name != self.myself)
            .map(|n| n.name)
            .collect();
        for r in orphans {
            self.set_replicaof(r, None);
        }
        self.set_replicaof(name, None);
        for j in 0..SLOTS {
            if self.importing[j] == Some(name) {
                self.importing[j] = None;
            }
            if self.migrating[j] == Some(name) {
                self.migrating[j] = None;
            }
            if self.slots[j] == Some(name) {
                self.del_slot(j);
            }
        }
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|(r, _)| *r != name);
        }
        if let Some(n) = self.nodes.remove(&name) {
            for l in [n.link, n.inbound_link].into_iter().flatten() {
                self.links.remove(&l);
            }
        }
    }

    /// Frees a link: the node forgets it, the task sees its channel close.
    pub fn free_link(&mut self, id: u64) {
        if let Some(l) = self.links.remove(&id) {
            if let Some(n) = l.node.and_then(|n| self.nodes.get_mut(&n)) {
                if n.link == Some(id) {
                    n.link = None;
                }
                if n.inbound_link == Some(id) {
                    n.inbound_link = None;
                }
            }
        }
    }

    pub fn rename_node(&mut self, old: Name, new: Name) {
        if let Some(mut n) = self.nodes.remove(&old) {
            n.name = new;
            for l in [n.link, n.inbound_link].into_iter().flatten() {
                if let Some(l) = self.links.get_mut(&l) {
                    l.node = Some(new);
                }
            }
            self.nodes.insert(new, n);
        }
    }

    pub fn max_epoch(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// `clusterBumpConfigEpochWithoutConsensus`.
    pub fn bump_epoch_without_consensus(&mut self) -> bool {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
            tracing::warn!("New configEpoch set to {e}");
            true
        } else {
            false
        }
    }

    pub fn blacklist_cleanup(&mut self, now: u64) {
        self.blacklist.retain(|_, until| *until > now);
    }

    pub fn blacklisted(&mut self, name: &Name, now: u64) -> bool {
        self.blacklist_cleanup(now);
        self.blacklist.contains_key(name)
    }

    pub fn failure_reports(&mut self, name: &Name, now: u64) -> usize {
        let validity = self.settings.node_timeout * 2;
        match self.nodes.get_mut(name) {
            Some(n) => {
                n.fail_reports
                    .retain(|(_, t)| now.saturating_sub(*t) <= validity);
                n.fail_reports.len()
            }
            None => 0,
        }
    }

    /// `clusterUpdateState`.
    pub fn update_state(&mut self, now: u64) {
        self.todo &= !todo::UPDATE_STATE;
        if self.first_update_call == 0 {
            self.first_update_call = now;
        }
        if self.me().is_master() && !self.ok && now - self.first_update_call < 2000 {
            return;
        }
        let mut new_ok = true;
        if self.settings.require_full_coverage {
            // Owners come in runs: one node lookup per run.
            let mut last: Option<(Name, bool)> = None;
            for s in &self.slots {
                let Some(owner) = s else {
                    new_ok = false;
                    break;
                };
                let failed = match last {
                    Some((n, f)) if n == *owner => f,
                    _ => {
                        let f = self.nodes.get(owner).is_none_or(|n| n.failed());
                        last = Some((*owner, f));
                        f
                    }
                };
                if failed {
                    new_ok = false;
                    break;
                }
            }
        }
        let mut reachable = 0;
        self.size = 0;
        for n in self.nodes.values() {
            if n.is_master() && n.numslots > 0 {
                self.size += 1;
                if n.flags & (flags::FAIL | flags::PFAIL) == 0 {
                    reachable += 1;
                }
            }
        }
        if reachable < self.size / 2 + 1 {
            new_ok = false;
            self.among_minority_time = now;
        }
        if new_ok != self.ok {
            let rejoin = self.settings.node_timeout.clamp(500, 5000);
            if new_ok && self.me().is_master() && now - self.among_minority_time < rejoin {
                return;
            }
            tracing::warn!(
                "Cluster state changed: {}",
                if new_ok { "ok" } else { "fail" }
            );
            self.ok = new_ok;
        }
    }

    /// The CLUSTER NODES / nodes.conf text, nodes with a flag in `filter`
    /// left out (`clusterGenNodesDescription`).
    pub fn describe_nodes(&self, filter: u16) -> String {
        // Slot ranges per node, found in one pass over the slot table.
        let mut ranges: HashMap<Name, Vec<(usize, usize)>> = HashMap::new();
        let mut j = 0;
        while j < SLOTS {
            if let Some(n) = self.slots[j] {
                let start = j;
                while j + 1 < SLOTS && self.slots[j + 1] == Some(n) {
                    j += 1;
                }
                ranges.entry(n).or_default().push((start, j));
            }
            j += 1;
        }
        let mut out = String::new();
        let mut names: Vec<&Name> = self.nodes.keys().collect();
        names.sort();
        for name in names {
            let n = &self.nodes[name];
            if n.flags & filter != 0 {
                continue;
            }
            self.describe_node(n, ranges.get(name).map(|v| &v[..]).unwrap_or(&[]), &mut out);
            out.push('\n');
        }
        out
    }

    /// One node's line (`clusterGenNodeDescription`).
    pub fn describe_node(&self, n: &Node, ranges: &[(usize, usize)], out: &mut String) {
        out.push_str(name_str(&n.name));
        if n.hostname.is_empty() {
            let _ = write!(out, " {}:{}@{} ", n.ip, n.port, n.cport);
        } else {
            let _ = write!(out, " {}:{}@{},{} ", n.ip, n.port, n.cport, n.hostname);
        }
        out.push_str(&flag_names(n.flags));
        out.push(' ');
        match &n.replicaof {
            Some(m) => out.push_str(name_str(m)),
            None => out.push('-'),
        }
        let epoch = match n.replicaof.and_then(|m| self.nodes.get(&m)) {
            Some(m) if n.is_slave() => m.config_epoch,
            _ => n.config_epoch,
        };
        let connected = n.link.is_some() || n.has(flags::MYSELF);
        let _ = write!(
            out,
            " {} {} {} {}",
            n.ping_sent,
            n.pong_received,
            epoch,
            if connected {
                "connected"
            } else {
                "disconnected"
            }
        );
        for &(s, e) in ranges {
            if s == e {
                let _ = write!(out, " {s}");
            } else {
                let _ = write!(out, " {s}-{e}");
            }
        }
        if n.has(flags::MYSELF) {
            for j in 0..SLOTS {
                if let Some(m) = self.migrating[j] {
                    let _ = write!(out, " [{j}->-{}]", name_str(&m));
                } else if let Some(m) = self.importing[j] {
                    let _ = write!(out, " [{j}-<-{}]", name_str(&m));
                }
            }
        }
    }

    /// The nodes.conf content (`clusterSaveConfig`).
    pub fn config_text(&self) -> String {
        let mut s = self.describe_nodes(flags::HANDSHAKE);
        let _ = writeln!(
            s,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        );
        s
    }

    /// Writes nodes.conf, atomically (a temporary file renamed over it) and,
    /// when the change asked for it (`todo::FSYNC_CONFIG`: epochs, slots
    /// taken over from another node, CLUSTER SAVECONFIG), fsynced, as
    /// Redis's `clusterSaveConfig(do_fsync)`.
    pub fn save_config(&mut self) -> Result<(), crate::storage::Error> {
        let fsync = self.todo & todo::FSYNC_CONFIG != 0;
        self.save_config_as(fsync)
    }

    pub fn save_config_as(&mut self, fsync: bool) -> Result<(), crate::storage::Error> {
        self.todo &= !(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
        let text = self.config_text();
        let path = &self.settings.config_file;
        if fsync {
            crate::storage::atomic::atomic_write(path, text.as_bytes())
        } else {
            crate::storage::atomic::replace_unsynced(path, text.as_bytes())
        }
    }

    /// Loads nodes.conf (`clusterLoadConfig`); Ok(None) when the file is
    /// missing or empty.
    pub fn load_config(
        text: &str,
        settings: Settings,
        now: u64,
    ) -> Result<Option<State>, BadConfig> {
        if text.is_empty() {
            return Ok(None);
        }
        let mut st = State::empty([0; NAMELEN], settings);
        let mut myself = None;
        let get = |st: &mut State, name: Name| {
            st.nodes
                .entry(name)
                .or_insert_with(|| Node::new(name, 0, now));
        };
        for (lineno, line) in text.lines().enumerate() {
            let err = |what: &'static str| BadConfig::Line {
                line: lineno + 1,
                what,
            };
            let argv: Vec<&str> = line.split_ascii_whitespace().collect();
            if argv.is_empty() {
                continue;
            }
            if argv[0].eq_ignore_ascii_case("vars") {
                if argv.len().is_multiple_of(2) {
                    return Err(err("vars line with an odd number of fields"));
                }
                for kv in argv[1..].chunks(2) {
                    let v = kv[1].parse::<u64>().unwrap_or(0);
                    if kv[0].eq_ignore_ascii_case("currentEpoch") {
                        st.current_epoch = v;
                    } else if kv[0].eq_ignore_ascii_case("lastVoteEpoch") {
                        st.last_vote_epoch = v;
                    } else {
                        tracing::warn!("Skipping unknown cluster config variable '{}'", kv[0]);
                    }
                }
                continue;
            }
            if argv.len() < 8 {
                return Err(err("fewer than 8 fields"));
            }
            let name = parse_name(argv[0].as_bytes()).ok_or_else(|| err("bad node id"))?;
            get(&mut st, name);
            let mut addr = argv[1];
            let mut hostname = String::new();
            if let Some((a, h)) = addr.split_once(',') {
                addr = a;
                hostname = h.to_string();
            }
            let (ip, ports) = addr.rsplit_once(':').ok_or_else(|| err("no port"))?;
            let (port, cport) = match ports.split_once('@') {
                Some((p, c)) => (p, Some(c)),
                None => (ports, None),
            };
            let port = port.parse::<u16>().unwrap_or(0);
            let cport = match cport {
                Some(c) => c.parse::<u16>().unwrap_or(0),
                None => port.wrapping_add(10000),
            };
            let mut nflags = 0;
            for f in argv[2].split(',') {
                nflags |= match f.to_ascii_lowercase().as_str() {
                    "myself" => {
                        if myself.is_some() {
                            return Err(err("two nodes flagged myself"));
                        }
                        myself = Some(name);
                        flags::MYSELF
                    }
                    "master" => flags::MASTER,
                    "slave" => flags::SLAVE,
                    "fail?" => flags::PFAIL,
                    "fail" => flags::FAIL,
                    "handshake" => flags::HANDSHAKE,
                    "noaddr" => flags::NOADDR,
                    "nofailover" => flags::NOFAILOVER,
                    "noflags" => 0,
                    _ => return Err(err("unknown flag")),
                };
            }
            let replicaof = if argv[3].starts_with('-') {
                None
            } else {
                let m = parse_name(argv[3].as_bytes()).ok_or_else(|| err("bad primary id"))?;
                get(&mut st, m);
                Some(m)
            };
            let epoch = argv[6].parse::<u64>().unwrap_or(0);
            {
                let Some(n) = st.nodes.get_mut(&name) else {
                    return Err(err("node vanished"));
                };
                n.hostname = hostname;
                n.ip = ip.to_string();
                n.port = port;
                n.cport = cport;
                n.flags |= nflags;
                if nflags & flags::FAIL != 0 {
                    n.fail_time = now;
                }
                if argv[4].parse::<i64>().unwrap_or(0) != 0 {
                    n.ping_sent = now;
                }
                if argv[5].parse::<i64>().unwrap_or(0) != 0 {
                    n.pong_received = now;
                }
                n.config_epoch = if n.is_slave() && replicaof.is_some() {
                    0
                } else {
                    epoch
                };
            }
            st.set_replicaof(name, replicaof);
            for a in &argv[8..] {
                if let Some(rest) = a.strip_prefix('[') {
                    let (slot, rest) = rest.split_once('-').ok_or_else(|| err("bad open slot"))?;
                    let slot: usize = slot.parse().map_err(|_| err("bad open slot"))?;
                    if slot >= SLOTS {
                        return Err(err("slot out of range"));
                    }
                    let (dir, rest) = if let Some(r) = rest.strip_prefix(">-") {
                        (b'>', r)
                    } else if let Some(r) = rest.strip_prefix("<-") {
                        (b'<', r)
                    } else {
                        return Err(err("bad open slot"));
                    };
                    let other = rest.strip_suffix(']').ok_or_else(|| err("bad open slot"))?;
                    let other = parse_name(other.as_bytes()).ok_or_else(|| err("bad node id"))?;
                    get(&mut st, other);
                    if dir == b'>' {
                        st.migrating[slot] = Some(other);
                    } else {
                        st.importing[slot] = Some(other);
                    }
                    continue;
                }
                let (s, e) = match a.split_once('-') {
                    Some((s, e)) => (s, e),
                    None => (*a, *a),
                };
                let (Ok(s), Ok(e)) = (s.parse::<usize>(), e.parse::<usize>()) else {
                    return Err(err("bad slot"));
                };
                if s >= SLOTS || e >= SLOTS {
                    return Err(err("slot out of range"));
                }
                for j in s..=e {
                    st.add_slot(name, j);
                }
            }
        }
        let Some(me) = myself else {
            return Err(BadConfig::NoMyself);
        };
        st.myself = me;
        let max = st.max_epoch();
        if max > st.current_epoch {
            st.current_epoch = max;
        }
        let (port, cport, hostname) = (
            st.settings.port,
            st.settings.cport,
            st.settings.announce_hostname.clone(),
        );
        let announce_ip = st.settings.announce_ip.clone();
        let m = st.me_mut();
        m.port = port;
        m.cport = cport;
        m.hostname = hostname;
        if !announce_ip.is_empty() {
            m.ip = announce_ip;
        }
        Ok(Some(st))
    }

    /// The endpoint clients are sent to (`getPreferredEndpoint`).
    pub fn endpoint<'a>(&self, n: &'a Node) -> &'a str {
        match self.settings.endpoint_type.as_str() {
            "hostname" if !n.hostname.is_empty() => &n.hostname,
            "hostname" => "?",
            "unknown-endpoint" => "?",
            _ => &n.ip,
        }
    }

    /// Resets the node (`clusterReset`).
    pub fn reset(&mut self, hard: bool) {
        let me = self.me_mut();
        if me.is_slave() {
            me.flags &= !flags::SLAVE;
            me.flags |= flags::MASTER;
            let me = self.myself;
            self.set_replicaof(me, None);
        }
        self.mf = Default::default();
        for j in 0..SLOTS {
            self.migrating[j] = None;
            self.importing[j] = None;
            self.del_slot(j);
        }
        let others: Vec<Name> = self
            .nodes
            .keys()
            .filter(|n| **n != self.myself)
            .copied()
            .collect();
        for n in others {
            self.del_node(n);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.me_mut().config_epoch = 0;
            tracing::warn!("configEpoch set to 0 via CLUSTER RESET HARD");
            let new = random_name();
            let old = self.myself;
            self.rename_node(old, new);
            self.myself = new;
            tracing::info!("Node hard reset, now I'm {}", name_str(&new));
        }
        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
    }
}

/// Flags as CLUSTER NODES prints them (`representClusterNodeFlags`).
pub fn flag_names(f: u16) -> String {
    let v: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "noflags".into()
    } else {
        v.join(",")
    }
}

/// A C string field as text.
pub fn field_str(b: &[u8]) -> String {
    String::from_utf8_lossy(cstr(b)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            node_timeout: 15000,
            port: 7000,
            cport: 17000,
            ..Settings::default()
        }
    }

    #[test]
    fn nodes_conf_round_trips() {
        let mut st = State::new(settings(), 1);
        st.me_mut().ip = "127.0.0.1".into();
        st.me_mut().config_epoch = 3;
        let me = st.myself;
        for j in 0..100 {
            st.add_slot(me, j);
        }
        st.add_slot(me, 200);
        let other = [b'b'; NAMELEN];
        let mut n = Node::new(other, flags::MASTER, 1);
        n.ip = "10.0.0.2".into();
        n.port = 7001;
        n.cport = 17001;
        n.hostname = "h2".into();
        n.config_epoch = 2;
        st.nodes.insert(other, n);
        for j in 300..=400 {
            st.add_slot(other, j);
        }
        st.migrating[5] = Some(other);
        st.importing[301] = Some(other);
        st.current_epoch = 5;
        let text = st.config_text();
        let line = text.lines().find(|l| l.starts_with("bbbb")).unwrap();
        assert_eq!(
            line,
            format!(
                "{} 10.0.0.2:7001@17001,h2 master - 0 0 2 disconnected 300-400",
                name_str(&other)
            )
        );
        let mine = text.lines().find(|l| l.contains("myself")).unwrap();
        assert!(mine.ends_with(
            &format!(
            "127.0.0.1:7000@17000 myself,master - 0 0 3 connected 0-99 200 [5->-{o}] [301-<-{o}]",
            o = name_str(&other)
        )
            .split_off(0)
        ));
        assert!(text.ends_with("vars currentEpoch 5 lastVoteEpoch 0\n"));
        let back = State::load_config(&text, settings(), 1).unwrap().unwrap();
        assert_eq!(back.config_text(), text);
        assert_eq!(back.myself, me);
        assert_eq!(back.nodes[&other].numslots, 101);
        assert_eq!(back.importing[301], Some(other));
    }

    #[test]
    fn corrupt_nodes_conf_is_an_error() {
        for bad in [
            "abc 1.2.3.4:1@2 master - 0 0 0 connected\n",
            "vars currentEpoch\n",
            &format!(
                "{} 1.2.3.4:1@2 master - 0 0 0 connected 99999\n",
                "a".repeat(40)
            ),
            &format!("{} 1.2.3.4:1@2 bogus - 0 0 0 connected\n", "a".repeat(40)),
            &format!("{} 1.2.3.4:1@2 master - 0 0 0 connected\n", "a".repeat(40)),
        ] {
            assert!(State::load_config(bad, settings(), 1).is_err(), "{bad}");
        }
        assert!(State::load_config("", settings(), 1).unwrap().is_none());
    }
}
