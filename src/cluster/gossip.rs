//! What a node does with bus messages and on its cron (Redis's
//! `clusterProcessPacket`, `clusterProcessGossipSection`,
//! `clusterUpdateSlotsConfigWith`, `clusterSendPing`, `clusterCron`),
//! on `State` under its lock. Messages leave through the links' channels;
//! sockets are `net`'s.

use super::bus::{self, Body, Ext, Gossip, Header, Message};
use super::nodes::{bit, flags, todo, Link, Name, Node, State};
use super::slots::SLOTS;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// An outbound link the cron wants connected.
pub struct Connect {
    pub id: u64,
    pub ip: String,
    pub cport: u16,
    pub rx: UnboundedReceiver<Vec<u8>>,
}

/// Why CLUSTER MEET was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeError {
    Invalid,
    InProgress,
}

fn normalize_ip(ip: &str) -> Option<String> {
    ip.parse::<std::net::IpAddr>().ok().map(|a| a.to_string())
}

impl State {
    /// A new link's channel, registered under a new id.
    pub fn new_link(
        &mut self,
        node: Option<Name>,
        inbound: bool,
        now: u64,
    ) -> (u64, UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = unbounded_channel();
        let id = self.next_link_id;
        self.next_link_id += 1;
        self.links.insert(
            id,
            Link {
                node,
                inbound,
                ctime: now,
                tx: Some(tx),
                send_buffer_allocated: 0,
            },
        );
        (id, rx)
    }

    pub(super) fn send_raw(&mut self, link: u64, kind: u16, bytes: Vec<u8>) {
        if let Some(l) = self.links.get(&link) {
            if let Some(tx) = &l.tx {
                if tx.send(bytes).is_ok() {
                    if let Some(c) = self.stats_sent.get_mut(usize::from(kind)) {
                        *c += 1;
                    }
                }
            }
        }
    }

    /// To every node's outbound link (`clusterBroadcastMessage`).
    pub(super) fn broadcast(&mut self, kind: u16, bytes: &[u8]) {
        let links: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.flags & (flags::MYSELF | flags::HANDSHAKE) == 0)
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_raw(l, kind, bytes.to_vec());
        }
    }

    /// `clusterBuildMessageHdr`.
    pub fn header(&self, kind: u16) -> Header {
        let me = self.me();
        let mut h = Header::new(kind);
        h.sender = self.myself;
        if !self.settings.announce_ip.is_empty() {
            h.myip = bus::fixed(self.settings.announce_ip.as_bytes());
        }
        let master = match me.replicaof.and_then(|m| self.nodes.get(&m)) {
            Some(m) if me.is_slave() => m,
            _ => me,
        };
        *h.myslots = *master.slots;
        if let Some(m) = me.replicaof {
            h.replicaof = m;
        }
        h.port = self.settings.port;
        h.pport = 0;
        h.cport = self.settings.cport;
        h.flags = me.flags;
        h.state = if self.ok { 0 } else { 1 };
        h.offset = self.my_repl_offset;
        h.current_epoch = self.current_epoch;
        h.config_epoch = master.config_epoch;
        if self.mf_paused_flag() {
            h.mflags[0] |= bus::FLAG0_PAUSED;
        }
        h
    }

    fn gossip_entry(n: &Node) -> Gossip {
        Gossip {
            name: n.name,
            ping_sent: (n.ping_sent / 1000) as u32,
            pong_received: (n.pong_received / 1000) as u32,
            ip: bus::fixed(n.ip.as_bytes()),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: n.pport,
        }
    }

    /// `clusterSendPing`: PING, PONG or MEET with gossip about a tenth of
    /// the nodes (at least 3) plus every PFAIL node.
    pub fn send_ping(&mut self, link: u64, kind: u16, now: u64) {
        self.pings_sent += 1;
        let stamp = self.pings_sent;
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let (inbound, target) = (l.inbound, l.node);
        let mut freshnodes = self.nodes.len().saturating_sub(2);
        let wanted = (self.nodes.len() / 10).max(3).min(freshnodes);
        if !inbound && kind == bus::PING {
            if let Some(n) = target.and_then(|t| self.nodes.get_mut(&t)) {
                n.ping_sent = now;
            }
        }
        let header = self.header(kind);
        let mut gossip = Vec::new();
        let myself = self.myself;
        // Random picks among the nodes, at most 3 tries per wanted entry
        // (Redis's `dictGetRandomKey` loop).
        let names: Vec<Name> = self.nodes.keys().copied().collect();
        let mut rng = (now ^ stamp.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (link << 32)) | 1;
        let mut tries = wanted * 3;
        while freshnodes > 0 && gossip.len() < wanted && tries > 0 && !names.is_empty() {
            tries -= 1;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let name = names[(rng % names.len() as u64) as usize];
            let Some(n) = self.nodes.get_mut(&name) else {
                continue;
            };
            if n.name == myself || n.has(flags::PFAIL) {
                continue;
            }
            if n.flags & (flags::HANDSHAKE | flags::NOADDR) != 0
                || (n.link.is_none() && n.numslots == 0)
            {
                freshnodes -= 1;
                continue;
            }
            if n.last_in_ping_gossip == stamp {
                continue;
            }
            n.last_in_ping_gossip = stamp;
            gossip.push(State::gossip_entry(n));
            freshnodes -= 1;
        }
        for n in self.nodes.values() {
            if n.has(flags::PFAIL) && n.flags & (flags::HANDSHAKE | flags::NOADDR) == 0 {
                gossip.push(State::gossip_entry(n));
            }
        }
        let mut exts = Vec::new();
        let hostname = &self.me().hostname;
        if !hostname.is_empty() {
            exts.push(Ext::Hostname(hostname.as_bytes().to_vec()));
        }
        let bytes = bus::encode(&Message {
            header,
            body: Body::Ping { gossip, exts },
        });
        self.send_raw(link, kind, bytes);
    }

    /// A PONG to every connected node (`clusterBroadcastPong`).
    pub fn broadcast_pong(&mut self, now: u64) {
        let links: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.flags & (flags::MYSELF | flags::HANDSHAKE) == 0)
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_ping(l, bus::PONG, now);
        }
    }

    fn send_fail(&mut self, about: Name) {
        let bytes = bus::encode(&Message {
            header: self.header(bus::FAIL),
            body: Body::Fail { about },
        });
        self.broadcast(bus::FAIL, &bytes);
    }

    fn send_update(&mut self, link: Option<u64>, about: Name) {
        let (Some(link), Some(n)) = (link, self.nodes.get(&about)) else {
            return;
        };
        let mut slots = n.slots.clone();
        for (s, not) in slots.iter_mut().zip(self.owner_not_claiming.iter()) {
            *s &= !not;
        }
        let bytes = bus::encode(&Message {
            header: self.header(bus::UPDATE),
            body: Body::Update {
                config_epoch: n.config_epoch,
                name: about,
                slots,
            },
        });
        self.send_raw(link, bus::UPDATE, bytes);
    }

    /// CLUSTER MEET (`clusterStartHandshake`).
    pub fn start_handshake(
        &mut self,
        ip: &str,
        port: i64,
        cport: i64,
        now: u64,
    ) -> Result<(), HandshakeError> {
        let ip = normalize_ip(ip).ok_or(HandshakeError::Invalid)?;
        if !(1..=65535).contains(&port) || !(1..=65535).contains(&cport) {
            return Err(HandshakeError::Invalid);
        }
        let (port, cport) = (port as u16, cport as u16);
        if self.nodes.values().any(|n| {
            n.in_handshake() && n.ip.eq_ignore_ascii_case(&ip) && n.port == port && n.cport == cport
        }) {
            return Err(HandshakeError::InProgress);
        }
        let name = super::nodes::random_name();
        let mut n = Node::new(name, flags::HANDSHAKE | flags::MEET, now);
        n.ip = ip;
        n.port = port;
        n.cport = cport;
        self.nodes.insert(name, n);
        Ok(())
    }

    /// An outbound link connected: PING it, or MEET it once.
    pub fn link_connected(&mut self, link: u64, now: u64) {
        let Some(node) = self.links.get(&link).and_then(|l| l.node) else {
            return;
        };
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let old = n.ping_sent;
        let kind = if n.has(flags::MEET) {
            bus::MEET
        } else {
            bus::PING
        };
        self.send_ping(link, kind, now);
        if let Some(n) = self.nodes.get_mut(&node) {
            if old != 0 {
                n.ping_sent = old;
            }
            n.flags &= !flags::MEET;
        }
    }

    /// An outbound connection failed (`clusterNodeCronHandleReconnect`).
    pub fn link_failed(&mut self, link: u64, now: u64) {
        if let Some(n) = self
            .links
            .get(&link)
            .and_then(|l| l.node)
            .and_then(|n| self.nodes.get_mut(&n))
        {
            if n.ping_sent == 0 {
                n.ping_sent = now;
            }
        }
        self.free_link(link);
    }

    fn mark_failing_if_needed(&mut self, name: Name, now: u64) {
        let needed = self.size / 2 + 1;
        let Some(n) = self.nodes.get(&name) else {
            return;
        };
        if !n.timed_out() || n.failed() {
            return;
        }
        let mut failures = self.failure_reports(&name, now);
        if self.me().is_master() {
            failures += 1;
        }
        if failures < needed {
            return;
        }
        tracing::info!(
            "Marking node {} as failing (quorum reached).",
            super::nodes::name_str(&name)
        );
        if let Some(n) = self.nodes.get_mut(&name) {
            n.flags &= !flags::PFAIL;
            n.flags |= flags::FAIL;
            n.fail_time = now;
        }
        self.send_fail(name);
        self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
    }

    fn clear_failure_if_needed(&mut self, name: Name, now: u64) {
        let timeout = self.settings.node_timeout;
        let Some(n) = self.nodes.get_mut(&name) else {
            return;
        };
        // A replica or a slotless primary at once; a primary still owning
        // slots after twice the node timeout (nobody failed it over).
        if n.is_slave()
            || n.numslots == 0
            || (n.is_master() && now.saturating_sub(n.fail_time) > timeout * 2)
        {
            n.flags &= !flags::FAIL;
            self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
        }
    }

    pub(super) fn set_node_as_master(&mut self, name: Name) {
        let myself = self.myself;
        if let Some(n) = self.nodes.get_mut(&name) {
            if n.is_master() {
                return;
            }
            if n.replicaof.is_some() && name != myself {
                n.flags |= flags::MIGRATE_TO;
            }
            n.flags &= !flags::SLAVE;
            n.flags |= flags::MASTER;
            self.set_replicaof(name, None);
            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
        }
    }

    /// `clusterUpdateSlotsConfigWith`: a primary left without slots (it
    /// was failed over) becomes a replica of the new owner, as does a
    /// replica whose primary lost its last slots.
    fn update_slots_config_with(
        &mut self,
        sender: Name,
        epoch: u64,
        slots: &[u8; bus::SLOT_BYTES],
    ) {
        if sender == self.myself {
            tracing::warn!("Discarding UPDATE message about myself.");
            return;
        }
        let me = self.me();
        let curmaster = if me.is_master() {
            Some(self.myself)
        } else {
            me.replicaof
        };
        let (mut newmaster, mut sender_slots, mut migrated) = (false, 0, 0);
        let mut dirty = Vec::new();
        for j in 0..SLOTS {
            if bit(slots, j) {
                sender_slots += 1;
                if self.slots[j] == Some(sender) {
                    self.owner_not_claiming[j / 8] &= !(1 << (j & 7));
                    continue;
                }
                if self.importing[j].is_some() {
                    continue;
                }
                let unclaimed = self.slot_unclaimed(j);
                let older = self.slots[j]
                    .and_then(|o| self.nodes.get(&o))
                    .is_some_and(|o| o.config_epoch < epoch);
                if unclaimed || older {
                    if self.slots[j] == Some(self.myself) {
                        dirty.push(j as u16);
                    }
                    if self.slots[j].is_some() && self.slots[j] == curmaster {
                        newmaster = true;
                        migrated += 1;
                    }
                    self.del_slot(j);
                    self.add_slot(sender, j);
                    self.owner_not_claiming[j / 8] &= !(1 << (j & 7));
                    self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
                }
            } else if self.slots[j] == Some(sender) {
                self.owner_not_claiming[j / 8] |= 1 << (j & 7);
            }
        }
        let cur_empty = curmaster
            .and_then(|m| self.nodes.get(&m))
            .is_some_and(|m| m.numslots == 0);
        let grandmaster = self
            .me()
            .replicaof
            .and_then(|m| self.nodes.get(&m))
            .and_then(|m| m.replicaof)
            .filter(|g| *g != self.myself);
        if newmaster
            && cur_empty
            && (self.settings.allow_replica_migration || sender_slots == migrated)
        {
            tracing::warn!(
                "Configuration change detected. Reconfiguring myself as a replica of {}",
                super::nodes::name_str(&sender)
            );
            self.set_master(sender);
            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
        } else if let Some(g) = grandmaster {
            tracing::warn!(
                "I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {}",
                super::nodes::name_str(&g)
            );
            self.set_master(g);
            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
        } else {
            self.dirty_slots.extend(dirty);
        }
    }

    /// `isSlotUnclaimed`.
    pub(super) fn slot_unclaimed(&self, j: usize) -> bool {
        self.slots[j].is_none() || self.owner_not_claiming[j / 8] & (1 << (j & 7)) != 0
    }

    fn process_gossip(&mut self, sender: Option<Name>, gossip: &[Gossip], now: u64) {
        let sender_is_master = sender
            .and_then(|s| self.nodes.get(&s))
            .is_some_and(|s| s.is_master());
        for g in gossip {
            let gflags = g.flags;
            let gip = String::from_utf8_lossy(g.ip()).into_owned();
            if self.nodes.contains_key(&g.name) {
                if let Some(s) = sender.filter(|_| sender_is_master && g.name != self.myself) {
                    if gflags & (flags::FAIL | flags::PFAIL) != 0 {
                        if let Some(n) = self.nodes.get_mut(&g.name) {
                            match n.fail_reports.iter_mut().find(|(r, _)| *r == s) {
                                Some(r) => r.1 = now,
                                None => n.fail_reports.push((s, now)),
                            }
                        }
                        self.mark_failing_if_needed(g.name, now);
                    } else if let Some(n) = self.nodes.get_mut(&g.name) {
                        n.fail_reports.retain(|(r, _)| *r != s);
                    }
                }
                let reports = self.failure_reports(&g.name, now);
                let Some(n) = self.nodes.get_mut(&g.name) else {
                    continue;
                };
                if gflags & (flags::FAIL | flags::PFAIL) == 0 && n.ping_sent == 0 && reports == 0 {
                    let pong = u64::from(g.pong_received) * 1000;
                    if pong <= now + 500 && pong > n.pong_received {
                        n.pong_received = pong;
                    }
                }
                if n.flags & (flags::FAIL | flags::PFAIL) != 0
                    && gflags & flags::NOADDR == 0
                    && gflags & (flags::FAIL | flags::PFAIL) == 0
                    && (!n.ip.eq_ignore_ascii_case(&gip) || n.port != g.port || n.cport != g.cport)
                {
                    let old = n.link.take();
                    n.ip = gip;
                    n.port = g.port;
                    n.pport = g.pport;
                    n.cport = g.cport;
                    n.flags &= !flags::NOADDR;
                    if let Some(l) = old {
                        self.links.remove(&l);
                    }
                }
            } else if sender.is_some()
                && gflags & flags::NOADDR == 0
                && !self.blacklisted(&g.name, now)
            {
                let mut n = Node::new(g.name, gflags, now);
                n.ip = gip;
                n.port = g.port;
                n.pport = g.pport;
                n.cport = g.cport;
                self.nodes.insert(g.name, n);
            }
        }
    }

    /// Handles one message from `link` (`clusterProcessPacket`); `peer_ip`
    /// is the link's remote address, `local_ip` ours on it. False when the
    /// link was freed.
    pub fn process(
        &mut self,
        link: u64,
        msg: Message,
        peer_ip: &str,
        local_ip: &str,
        now: u64,
    ) -> bool {
        let Some(l) = self.links.get(&link) else {
            return false;
        };
        let (inbound, link_node) = (l.inbound, l.node);
        let Message { header, body } = msg;
        let h = &header;
        let kind = h.kind;
        if let Some(c) = self.stats_received.get_mut(usize::from(kind)) {
            *c += 1;
        }
        // getNodeFromLinkAndMsg
        let sender: Option<Name> =
            match link_node.filter(|n| self.nodes.get(n).is_some_and(|n| !n.in_handshake())) {
                Some(n) => Some(n),
                None => {
                    let s = self.nodes.contains_key(&h.sender).then_some(h.sender);
                    if let (Some(s), None, true) = (s, link_node, inbound) {
                        if let Some(l) = self.links.get_mut(&link) {
                            l.node = Some(s);
                        }
                        if let Some(n) = self.nodes.get_mut(&s) {
                            n.inbound_link = Some(link);
                        }
                    }
                    s
                }
            };
        let mut sender_config_epoch = 0;
        if let Some(s) = sender {
            let current = self.current_epoch;
            if let Some(n) = self.nodes.get_mut(&s) {
                n.data_received = now;
                if !n.in_handshake() {
                    sender_config_epoch = h.config_epoch;
                    if h.current_epoch > current {
                        self.current_epoch = h.current_epoch;
                    }
                    if h.config_epoch > n.config_epoch {
                        n.config_epoch = h.config_epoch;
                        self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
                    }
                    n.repl_offset = h.offset;
                }
            }
            self.note_paused_offset(s, h.mflags[0], h.offset);
        }
        let is_ping = matches!(kind, bus::PING | bus::PONG | bus::MEET);
        if kind == bus::PING || kind == bus::MEET {
            if (kind == bus::MEET || self.me().ip.is_empty())
                && self.settings.announce_ip.is_empty()
                && !local_ip.is_empty()
                && self.me().ip != local_ip
            {
                self.me_mut().ip = local_ip.to_string();
                tracing::warn!("IP address for this node updated to {local_ip}");
                self.todo |= todo::SAVE_CONFIG;
            }
            if sender.is_none() && kind == bus::MEET {
                let name = super::nodes::random_name();
                let mut n = Node::new(name, flags::HANDSHAKE, now);
                n.ip = if h.ip().is_empty() {
                    peer_ip.to_string()
                } else {
                    String::from_utf8_lossy(h.ip()).into_owned()
                };
                n.port = h.port;
                n.pport = h.pport;
                n.cport = h.cport;
                self.nodes.insert(name, n);
                self.todo |= todo::SAVE_CONFIG;
                if let Body::Ping { gossip, .. } = &body {
                    // A MEET's gossip is trusted (as in Redis).
                    let g = gossip.clone();
                    self.process_gossip(Some(h.sender).filter(|_| false), &g, now);
                }
            }
            self.send_ping(link, bus::PONG, now);
        }
        if is_ping {
            if !inbound {
                let Some(ln) = link_node else {
                    return true;
                };
                if self.nodes.get(&ln).is_some_and(|n| n.in_handshake()) {
                    if let Some(s) = sender {
                        // We already know this node: update its address and
                        // drop the handshake node (and this link).
                        if self.update_address(s, link, h, peer_ip) {
                            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                        }
                        self.del_node(ln);
                        return false;
                    }
                    self.rename_node(ln, h.sender);
                    if let Some(n) = self.nodes.get_mut(&h.sender) {
                        n.flags &= !flags::HANDSHAKE;
                        n.flags |= h.flags & (flags::MASTER | flags::SLAVE);
                    }
                    self.todo |= todo::SAVE_CONFIG;
                } else if ln != h.sender {
                    if let Some(n) = self.nodes.get_mut(&ln) {
                        n.flags |= flags::NOADDR;
                        n.ip.clear();
                        n.port = 0;
                        n.pport = 0;
                        n.cport = 0;
                    }
                    self.free_link(link);
                    self.todo |= todo::SAVE_CONFIG;
                    return false;
                }
            }
            // Re-resolve: a handshake node was just renamed to the sender.
            let sender = sender.or_else(|| {
                (!inbound)
                    .then_some(h.sender)
                    .filter(|s| self.nodes.contains_key(s))
            });
            if let Some(s) = sender {
                if let Some(n) = self.nodes.get_mut(&s) {
                    n.flags = (n.flags & !flags::NOFAILOVER) | (h.flags & flags::NOFAILOVER);
                }
                if kind == bus::PING
                    && !self.nodes.get(&s).is_some_and(|n| n.in_handshake())
                    && self.update_address(s, link, h, peer_ip)
                {
                    self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                }
            }
            if !inbound && kind == bus::PONG {
                if let Some(ln) = self.links.get(&link).and_then(|l| l.node) {
                    let mut clear_fail = false;
                    if let Some(n) = self.nodes.get_mut(&ln) {
                        n.pong_received = now;
                        n.ping_sent = 0;
                        if n.timed_out() {
                            n.flags &= !flags::PFAIL;
                            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                        } else if n.failed() {
                            clear_fail = true;
                        }
                    }
                    if clear_fail {
                        self.clear_failure_if_needed(ln, now);
                    }
                }
            }
            if let Some(s) = sender {
                if h.replicaof == [0; bus::NAMELEN] {
                    self.set_node_as_master(s);
                } else {
                    // A replica (kept for when replication exists).
                    let was_master = self.nodes.get(&s).is_some_and(|n| n.is_master());
                    if was_master {
                        self.del_node_slots(s);
                        if let Some(n) = self.nodes.get_mut(&s) {
                            n.flags &= !(flags::MASTER | flags::MIGRATE_TO);
                            n.flags |= flags::SLAVE;
                        }
                        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                    }
                    let changed = self
                        .nodes
                        .get(&s)
                        .is_some_and(|n| n.replicaof != Some(h.replicaof));
                    if changed && self.nodes.contains_key(&h.replicaof) {
                        self.set_replicaof(s, Some(h.replicaof));
                        self.todo |= todo::SAVE_CONFIG;
                    }
                }
                let sender_master = match self.nodes.get(&s) {
                    Some(n) if n.is_master() => Some(s),
                    Some(n) => n.replicaof,
                    None => None,
                };
                let dirty = sender_master
                    .and_then(|m| self.nodes.get(&m))
                    .is_some_and(|m| *m.slots != *h.myslots);
                if dirty && self.nodes.get(&s).is_some_and(|n| n.is_master()) {
                    let slots = h.myslots.clone();
                    self.update_slots_config_with(s, sender_config_epoch, &slots);
                }
                if dirty {
                    for j in 0..SLOTS {
                        if bit(&h.myslots, j) {
                            if self.slots[j] == Some(s) || self.slot_unclaimed(j) {
                                continue;
                            }
                            let owner = self.slots[j].and_then(|o| self.nodes.get(&o));
                            if let Some(o) = owner.filter(|o| o.config_epoch > sender_config_epoch)
                            {
                                let about = o.name;
                                let l = self.nodes.get(&s).and_then(|n| n.link);
                                self.send_update(l, about);
                                break;
                            }
                        }
                    }
                }
                // configEpoch collision (`clusterHandleConfigEpochCollision`).
                let me = self.me();
                if me.is_master()
                    && self.nodes.get(&s).is_some_and(|n| n.is_master())
                    && sender_config_epoch == me.config_epoch
                    && s > self.myself
                {
                    self.current_epoch += 1;
                    let e = self.current_epoch;
                    self.me_mut().config_epoch = e;
                    self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
                    tracing::debug!(
                        "WARNING: configEpoch collision with node {}. configEpoch set to {e}",
                        super::nodes::name_str(&s)
                    );
                }
                if let Body::Ping { gossip, exts } = &body {
                    let g = gossip.clone();
                    self.process_gossip(Some(s), &g, now);
                    let mut hostname = String::new();
                    for e in exts {
                        if let Ext::Hostname(hn) = e {
                            hostname = String::from_utf8_lossy(hn).into_owned();
                        }
                    }
                    if let Some(n) = self.nodes.get_mut(&s) {
                        if n.hostname != hostname {
                            n.hostname = hostname;
                            self.todo |= todo::SAVE_CONFIG;
                        }
                    }
                }
            }
            return true;
        }
        match body {
            Body::Fail { about } if sender.is_some() => {
                if let Some(n) = self.nodes.get_mut(&about) {
                    {
                        if n.flags & (flags::FAIL | flags::MYSELF) == 0 {
                            tracing::info!(
                                "FAIL message received from {} about {}",
                                super::nodes::name_str(&h.sender),
                                super::nodes::name_str(&about)
                            );
                            n.flags |= flags::FAIL;
                            n.fail_time = now;
                            n.flags &= !flags::PFAIL;
                            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                        }
                    }
                }
            }
            Body::Update {
                config_epoch,
                name,
                slots,
            } => {
                if sender.is_none() {
                    return true;
                }
                let Some(n) = self.nodes.get(&name) else {
                    return true;
                };
                if n.config_epoch >= config_epoch {
                    return true;
                }
                if n.is_slave() {
                    self.set_node_as_master(name);
                }
                if let Some(n) = self.nodes.get_mut(&name) {
                    n.config_epoch = config_epoch;
                }
                self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
                self.update_slots_config_with(name, config_epoch, &slots);
            }
            Body::Empty if kind == bus::FAILOVER_AUTH_REQUEST => {
                if let Some(s) = sender {
                    self.vote_if_needed(s, h, now);
                }
            }
            Body::Empty if kind == bus::FAILOVER_AUTH_ACK => {
                if let Some(s) = sender {
                    self.on_failover_ack(s, h.current_epoch);
                }
            }
            Body::Empty if kind == bus::MFSTART => self.on_mfstart(sender, link, now),
            // PUBLISH is delivered by `net` (it needs the server's Pub/Sub);
            // modules do not exist here.
            _ => {}
        }
        true
    }

    /// `nodeUpdateAddressIfNeeded`.
    fn update_address(&mut self, name: Name, link: u64, h: &Header, peer_ip: &str) -> bool {
        let Some(n) = self.nodes.get_mut(&name) else {
            return false;
        };
        if n.link == Some(link) {
            return false;
        }
        let ip = if h.ip().is_empty() {
            peer_ip.to_string()
        } else {
            String::from_utf8_lossy(h.ip()).into_owned()
        };
        if n.port == h.port && n.cport == h.cport && n.pport == h.pport && n.ip == ip {
            return false;
        }
        n.ip = ip;
        n.port = h.port;
        n.pport = h.pport;
        n.cport = h.cport;
        n.flags &= !flags::NOADDR;
        tracing::warn!(
            "Address updated for node {}, now {}:{}",
            super::nodes::name_str(&name),
            n.ip,
            n.port
        );
        if let Some(l) = n.link.take() {
            self.links.remove(&l);
        }
        true
    }

    /// `clusterCron`, every 100 ms: returns the links to connect.
    pub fn cron(&mut self, now: u64) -> Vec<Connect> {
        self.iteration += 1;
        let timeout = self.settings.node_timeout;
        let handshake_timeout = timeout.max(1000);
        self.stats_pfail_nodes = 0;
        let mut connects = Vec::new();
        let names: Vec<Name> = self.nodes.keys().copied().collect();
        for name in &names {
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if n.flags & (flags::MYSELF | flags::NOADDR) != 0 {
                continue;
            }
            if n.has(flags::PFAIL) {
                self.stats_pfail_nodes += 1;
            }
            if n.in_handshake() && now.saturating_sub(n.ctime) > handshake_timeout {
                self.del_node(*name);
                continue;
            }
            if n.link.is_none() {
                let (ip, cport) = (n.ip.clone(), n.cport);
                let (id, rx) = self.new_link(Some(*name), false, now);
                if let Some(n) = self.nodes.get_mut(name) {
                    n.link = Some(id);
                }
                connects.push(Connect { id, ip, cport, rx });
            }
        }
        if self.iteration.is_multiple_of(10) {
            // Ping the node with the oldest pong among a few.
            let mut best: Option<(u64, u64)> = None;
            for n in self.nodes.values().take(5) {
                if n.ping_sent != 0 || n.flags & (flags::MYSELF | flags::HANDSHAKE) != 0 {
                    continue;
                }
                let Some(l) = n.link else {
                    continue;
                };
                if self.links.get(&l).is_some_and(|l| l.ctime == now) {
                    continue;
                }
                if best.is_none_or(|(p, _)| n.pong_received < p) {
                    best = Some((n.pong_received, l));
                }
            }
            if let Some((_, l)) = best {
                self.send_ping(l, bus::PING, now);
            }
        }
        let mut update = false;
        for name in &names {
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if n.flags & (flags::MYSELF | flags::NOADDR | flags::HANDSHAKE) != 0 {
                continue;
            }
            let ping_delay = now.saturating_sub(n.ping_sent);
            let data_delay = now.saturating_sub(n.data_received);
            if let Some(l) = n.link {
                let lctime = self.links.get(&l).map_or(now, |l| l.ctime);
                if now.saturating_sub(lctime) > timeout
                    && n.ping_sent != 0
                    && ping_delay > timeout / 2
                    && data_delay > timeout / 2
                {
                    self.free_link(l);
                }
            }
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if let Some(l) = n.link {
                if n.ping_sent == 0 && now.saturating_sub(n.pong_received) > timeout / 2 {
                    self.send_ping(l, bus::PING, now);
                    continue;
                }
            }
            // A primary in a manual failover PINGs its replica every tick.
            if self.mf_ping_replica(*name, now) {
                continue;
            }
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if n.ping_sent == 0 {
                continue;
            }
            let delay = ping_delay.min(data_delay);
            if delay > timeout && n.flags & (flags::PFAIL | flags::FAIL) == 0 {
                if let Some(n) = self.nodes.get_mut(name) {
                    n.flags |= flags::PFAIL;
                }
                update = true;
            }
        }
        self.manual_failover_check_timeout(now);
        if self.me().is_slave() {
            self.handle_manual_failover();
            self.handle_replica_failover(now);
            self.replica_migration_cron(now);
        }
        if update || !self.ok {
            self.update_state(now);
        }
        connects
    }

    /// Work deferred to the end of an event (`clusterBeforeSleep`).
    pub fn before_sleep(&mut self, now: u64) {
        // A manual failover goes from the paused offset to the election
        // request in three steps Redis takes in consecutive event loop
        // iterations; here in one go.
        for _ in 0..3 {
            if self.todo & todo::HANDLE_MANUAL_FAILOVER != 0 {
                self.todo &= !todo::HANDLE_MANUAL_FAILOVER;
                if self.me().is_slave() {
                    self.handle_manual_failover();
                    self.handle_replica_failover(now);
                }
            } else if self.todo & todo::HANDLE_FAILOVER != 0 {
                self.handle_replica_failover(now);
            } else {
                break;
            }
        }
        if self.todo & todo::UPDATE_STATE != 0 {
            self.update_state(now);
        }
        if self.todo & todo::SAVE_CONFIG != 0 {
            if let Err(e) = self.save_config().map_err(|e| e.to_string()) {
                // Redis exits here ("Fatal: can't update cluster config
                // file."); redlog logs and keeps serving.
                if self.save_error.as_deref() != Some(&e) {
                    tracing::error!("can't update cluster config file: {e}");
                }
                self.save_error = Some(e);
            } else {
                self.save_error = None;
            }
        }
    }
}
