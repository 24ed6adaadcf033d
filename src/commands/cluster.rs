//! CLUSTER and ASKING (Redis 7.0's `clusterCommand`, `askingCommand`), and
//! `redirect`: the check `server::execute` runs before a keyed command in
//! cluster mode (Redis's `getNodeByQuery` + `clusterRedirectClient`).
//!
//! CLUSTER REPLICATE, FAILOVER, READONLY and READWRITE are in `cluster_repl`.

use super::cluster_repl::syntax_sub;
use super::flags::*;
use super::{arg_i64, c_str_lossy, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::cluster::bus;
use crate::cluster::gossip::HandshakeError;
use crate::cluster::nodes::{self, flags as nf, todo, Name, State};
use crate::cluster::slots::{key_slot, SLOTS};
use crate::cluster::Cluster;
use bytes::Bytes;
use std::sync::Arc;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("asking", asking),
    ("cluster|count-failure-reports", count_failure_reports),
    ("cluster|slots", slots),
    ("cluster|replicas", replicas),
    ("cluster|slaves", replicas),
    ("cluster|myid", myid),
    ("cluster|forget", forget),
    ("cluster|delslots", addslots),
    ("cluster|getkeysinslot", getkeysinslot),
    ("cluster|addslots", addslots),
    ("cluster|delslotsrange", addslotsrange),
    ("cluster|meet", meet),
    ("cluster|reset", reset),
    ("cluster|flushslots", flushslots),
    ("cluster|addslotsrange", addslotsrange),
    ("cluster|countkeysinslot", countkeysinslot),
    ("cluster|set-config-epoch", set_config_epoch),
    ("cluster|keyslot", keyslot),
    ("cluster|saveconfig", saveconfig),
    ("cluster|help", help),
    ("cluster|bumpepoch", bumpepoch),
    ("cluster|info", info),
    ("cluster|links", links),
    ("cluster|setslot", setslot),
    ("cluster|shards", shards),
    ("cluster|failover", super::cluster_repl::failover),
    ("cluster|replicate", super::cluster_repl::replicate),
    ("cluster|nodes", nodes_cmd),
];

fn disabled() -> CmdError {
    CmdError::new("ERR This instance has cluster support disabled")
}

fn cluster<'a>(ctx: &Ctx<'a>) -> Result<&'a Arc<Cluster>, CmdError> {
    ctx.shared.cluster.as_ref().ok_or_else(disabled)
}

/// Runs `f` on the locked state, then the deferred work (`before_sleep`).
fn with_state<R>(c: &Cluster, f: impl FnOnce(&mut State) -> R) -> R {
    let mut st = c.state.lock();
    let r = f(&mut st);
    st.before_sleep(crate::cluster::now_ms());
    r
}

/// ASKING
fn asking(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.shared.cluster.is_none() {
        return Err(disabled());
    }
    ctx.client.asking = true;
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    super::args::help_reply(
        ctx,
        "CLUSTER",
        &[
            "ADDSLOTS <slot> [<slot> ...]",
            "    Assign slots to current node.",
            "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Assign slots which are between <start-slot> and <end-slot> to current node.",
            "BUMPEPOCH",
            "    Advance the cluster config epoch.",
            "COUNT-FAILURE-REPORTS <node-id>",
            "    Return number of failure reports for <node-id>.",
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "DELSLOTS <slot> [<slot> ...]",
            "    Delete slots information from current node.",
            "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
            "FAILOVER [FORCE|TAKEOVER]",
            "    Promote current replica node to being a master.",
            "FORGET <node-id>",
            "    Remove a node from the cluster.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by current node in a slot.",
            "FLUSHSLOTS",
            "    Delete current node own slots information.",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MEET <ip> <port> [<bus-port>]",
            "    Connect nodes into a working cluster.",
            "MYID",
            "    Return the node id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "REPLICATE <node-id>",
            "    Configure current node as replica to <node-id>.",
            "RESET [HARD|SOFT]",
            "    Reset current node (default: soft).",
            "SET-CONFIG-EPOCH <epoch>",
            "    Set config epoch of current node.",
            "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
            "    Set slot state.",
            "REPLICAS <node-id>",
            "    Return <node-id> replicas.",
            "SAVECONFIG",
            "    Force saving cluster configuration on disk.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "LINKS",
            "    Return information about all network links between this node and its peers.",
            "    Output format is an array where each array element is a map containing attributes of a link",
        ],
    );
    Ok(())
}

fn myid(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let me = c.state.lock().myself;
    ctx.out.bulk(&me);
    Ok(())
}

fn nodes_cmd(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let text = c.state.lock().describe_nodes(0);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn keyslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    ctx.out.int(i64::from(key_slot(&args[2])));
    Ok(())
}

fn countkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    let slot = arg_i64(&args[2])?;
    if !(0..SLOTS as i64).contains(&slot) {
        return Err(CmdError::new("ERR Invalid slot"));
    }
    let n = ctx.ks.dbs[0]
        .slot_index
        .as_ref()
        .map_or(0, |ix| ix.count(slot as u16));
    ctx.out.int(n as i64);
    Ok(())
}

fn getkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    let slot = arg_i64(&args[2])?;
    let max = arg_i64(&args[3])?;
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return Err(CmdError::new("ERR Invalid slot or number of keys"));
    }
    let keys = ctx.ks.dbs[0]
        .slot_index
        .as_ref()
        .map_or_else(Vec::new, |ix| ix.keys(slot as u16, max as usize));
    ctx.out.array(keys.len());
    for k in keys {
        ctx.out.bulk(&k);
    }
    Ok(())
}

/// Redis's `getSlotOrReply`.
fn slot_arg(a: &[u8]) -> Result<usize, CmdError> {
    match crate::protocol::parse::parse_i64(a) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Ok(s as usize),
        _ => Err(CmdError::new("ERR Invalid or out of range slot")),
    }
}

/// `checkSlotAssignmentsOrReply`.
fn check_slots(st: &State, seen: &mut [u8], del: bool, start: usize, end: usize) -> CmdResult {
    for (s, owner) in st.slots.iter().enumerate().take(end + 1).skip(start) {
        if del && owner.is_none() {
            return Err(CmdError::new(format!("ERR Slot {s} is already unassigned")));
        } else if !del && owner.is_some() {
            return Err(CmdError::new(format!("ERR Slot {s} is already busy")));
        }
        seen[s] += 1;
        if seen[s] == 2 {
            return Err(CmdError::new(format!(
                "ERR Slot {s} specified multiple times"
            )));
        }
    }
    Ok(())
}

/// `clusterUpdateSlots`.
fn update_slots(st: &mut State, seen: &[u8], del: bool) {
    let me = st.myself;
    for (j, &on) in seen.iter().enumerate() {
        if on != 0 {
            st.importing[j] = None;
            if del {
                st.del_slot(j);
            } else {
                st.add_slot(me, j);
            }
        }
    }
    st.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
}

/// ADDSLOTS / DELSLOTS
fn addslots(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let del = is_opt(&args[1], "delslots");
    let slots = args[2..]
        .iter()
        .map(|a| slot_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    with_state(c, |st| {
        let mut seen = vec![0u8; SLOTS];
        for &s in &slots {
            check_slots(st, &mut seen, del, s, s)?;
        }
        update_slots(st, &seen, del);
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}

/// ADDSLOTSRANGE / DELSLOTSRANGE
fn addslotsrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    if args.len() % 2 == 1 {
        let name = if is_opt(&args[1], "delslotsrange") {
            "cluster|delslotsrange"
        } else {
            "cluster|addslotsrange"
        };
        return Err(CmdError::wrong_args(name));
    }
    let del = is_opt(&args[1], "delslotsrange");
    with_state(c, |st| {
        let mut seen = vec![0u8; SLOTS];
        for pair in args[2..].chunks(2) {
            let start = slot_arg(&pair[0])?;
            let end = slot_arg(&pair[1])?;
            if start > end {
                return Err(CmdError::new(format!(
                    "ERR start slot number {start} is greater than end slot number {end}"
                )));
            }
            check_slots(st, &mut seen, del, start, end)?;
        }
        update_slots(st, &seen, del);
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}

fn flushslots(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    if !ctx.ks.dbs[0].is_empty() {
        return Err(CmdError::new(
            "ERR DB must be empty to perform CLUSTER FLUSHSLOTS.",
        ));
    }
    with_state(c, |st| {
        let me = st.myself;
        st.del_node_slots(me);
        st.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
    });
    ctx.out.ok();
    Ok(())
}

fn meet(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    if args.len() > 5 {
        return Err(syntax_sub(args));
    }
    let Some(port) = crate::protocol::parse::parse_i64(&args[3]) else {
        return Err(CmdError::new(format!(
            "ERR Invalid TCP base port specified: {}",
            c_str_lossy(&args[3])
        )));
    };
    let cport = match args.get(4) {
        Some(a) => crate::protocol::parse::parse_i64(a).ok_or_else(|| {
            CmdError::new(format!(
                "ERR Invalid TCP bus port specified: {}",
                c_str_lossy(a)
            ))
        })?,
        None => port + 10000,
    };
    let ip = c_str_lossy(&args[2]);
    let r = with_state(c, |st| {
        st.start_handshake(&ip, port, cport, crate::cluster::now_ms())
    });
    if r == Err(HandshakeError::Invalid) {
        return Err(CmdError::new(format!(
            "ERR Invalid node address specified: {ip}:{}",
            c_str_lossy(&args[3])
        )));
    }
    ctx.out.ok();
    Ok(())
}

fn unknown_node(a: &[u8]) -> CmdError {
    CmdError::new(format!("ERR Unknown node {}", c_str_lossy(a)))
}

fn forget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    with_state(c, |st| {
        let Some(n) = st.lookup(&args[2]).map(|n| n.name) else {
            return Err(unknown_node(&args[2]));
        };
        if n == st.myself {
            return Err(CmdError::new(
                "ERR I tried hard but I can't forget myself...",
            ));
        }
        if st.me().is_slave() && st.me().replicaof == Some(n) {
            return Err(CmdError::new("ERR Can't forget my master!"));
        }
        let until = crate::cluster::now_ms() + 60_000;
        st.blacklist.insert(n, until);
        st.del_node(n);
        st.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}

fn replicas(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let lines = {
        let st = c.state.lock();
        let Some(n) = st.lookup(&args[2]) else {
            return Err(unknown_node(&args[2]));
        };
        if n.is_slave() {
            return Err(CmdError::new("ERR The specified node is not a master"));
        }
        let mut lines = Vec::new();
        for r in replicas_of(&st, n.name, false) {
            let mut s = String::new();
            st.describe_node(r, &[], &mut s);
            lines.push(s);
        }
        lines
    };
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.bulk(l.as_bytes());
    }
    Ok(())
}

fn count_failure_reports(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let n = {
        let mut st = c.state.lock();
        let Some(name) = st.lookup(&args[2]).map(|n| n.name) else {
            return Err(unknown_node(&args[2]));
        };
        st.failure_reports(&name, crate::cluster::now_ms())
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn set_config_epoch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let epoch = arg_i64(&args[2])?;
    with_state(c, |st| {
        if epoch < 0 {
            return Err(CmdError::new(format!(
                "ERR Invalid config epoch specified: {epoch}"
            )));
        }
        if st.nodes.len() > 1 {
            return Err(CmdError::new("ERR The user can assign a config epoch only when the node does not know any other node."));
        }
        if st.me().config_epoch != 0 {
            return Err(CmdError::new("ERR Node config epoch is already non-zero"));
        }
        st.me_mut().config_epoch = epoch as u64;
        tracing::warn!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH");
        if st.current_epoch < epoch as u64 {
            st.current_epoch = epoch as u64;
        }
        st.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}

fn bumpepoch(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let (bumped, e) = with_state(c, |st| {
        let b = st.bump_epoch_without_consensus();
        (b, st.me().config_epoch)
    });
    ctx.out
        .simple(&format!("{} {e}", if bumped { "BUMPED" } else { "STILL" }));
    Ok(())
}

fn saveconfig(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    c.state
        .lock()
        .save_config_as(true)
        .map_err(|e| CmdError::new(format!("ERR error saving the cluster node config: {e}")))?;
    ctx.out.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    if args.len() > 3 {
        return Err(syntax_sub(args));
    }
    let hard = match args.get(2) {
        None => false,
        Some(a) if is_opt(a, "hard") => true,
        Some(a) if is_opt(a, "soft") => false,
        Some(_) => return Err(CmdError::syntax()),
    };
    let master = c.state.lock().me().is_master();
    if master && !ctx.ks.dbs[ctx.client.db].is_empty() {
        return Err(CmdError::new(
            "ERR CLUSTER RESET can't be called with master nodes containing keys",
        ));
    }
    super::cluster_repl::reset_replica(ctx);
    with_state(c, |st| st.reset(hard));
    ctx.out.ok();
    Ok(())
}

fn setslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let slot = slot_arg(&args[2])?;
    let keys_in_slot = ctx.ks.dbs[0]
        .slot_index
        .as_ref()
        .map_or(0, |ix| ix.count(slot as u16));
    let now = crate::cluster::now_ms();
    let action = &args[3];
    let dont_know =
        |a: &[u8]| CmdError::new(format!("ERR I don't know about node {}", c_str_lossy(a)));
    let invalid = || {
        CmdError::new("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    };
    with_state(c, |st| {
        if st.me().is_slave() {
            return Err(CmdError::new("ERR Please use SETSLOT only with masters."));
        }
        let me = st.myself;
        if is_opt(action, "migrating") && args.len() == 5 {
            if st.slots[slot] != Some(me) {
                return Err(CmdError::new(format!(
                    "ERR I'm not the owner of hash slot {slot}"
                )));
            }
            let Some(n) = st.lookup(&args[4]) else {
                return Err(dont_know(&args[4]));
            };
            if n.is_slave() {
                return Err(CmdError::new("ERR Target node is not a master"));
            }
            st.migrating[slot] = Some(n.name);
        } else if is_opt(action, "importing") && args.len() == 5 {
            if st.slots[slot] == Some(me) {
                return Err(CmdError::new(format!(
                    "ERR I'm already the owner of hash slot {slot}"
                )));
            }
            let Some(n) = st.lookup(&args[4]) else {
                return Err(dont_know(&args[4]));
            };
            if n.is_slave() {
                return Err(CmdError::new("ERR Target node is not a master"));
            }
            st.importing[slot] = Some(n.name);
        } else if is_opt(action, "stable") && args.len() == 4 {
            st.importing[slot] = None;
            st.migrating[slot] = None;
        } else if is_opt(action, "node") && args.len() == 5 {
            let Some(n) = st.lookup(&args[4]) else {
                return Err(CmdError::new(format!(
                    "ERR Unknown node {}",
                    c_str_lossy(&args[4])
                )));
            };
            if n.is_slave() {
                return Err(CmdError::new("ERR Target node is not a master"));
            }
            let n = n.name;
            if st.slots[slot] == Some(me) && n != me && keys_in_slot != 0 {
                return Err(CmdError::new(format!("ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot.")));
            }
            if keys_in_slot == 0 && st.migrating[slot].is_some() {
                st.migrating[slot] = None;
            }
            let was_mine = st.slots[slot] == Some(me);
            st.del_slot(slot);
            st.add_slot(n, slot);
            // A primary left without slots turns into a replica of `n`.
            if was_mine && n != me && st.me().numslots == 0 && st.settings.allow_replica_migration {
                tracing::warn!(
                    "Configuration change detected. Reconfiguring myself as a replica of {}",
                    nodes::name_str(&n)
                );
                st.set_master(n);
                st.todo |= todo::FSYNC_CONFIG;
            }
            if n == me && st.importing[slot].is_some() {
                if st.bump_epoch_without_consensus() {
                    tracing::warn!("configEpoch updated after importing slot {slot}");
                }
                st.importing[slot] = None;
                st.broadcast_pong(now);
            }
        } else {
            return Err(invalid());
        }
        st.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}

fn info(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let text = {
        let st = c.state.lock();
        let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
        for s in st.slots.iter().flatten() {
            assigned += 1;
            match st.nodes.get(s) {
                Some(n) if n.failed() => fail += 1,
                Some(n) if n.timed_out() => pfail += 1,
                _ => ok += 1,
            }
        }
        let me = st.me();
        let my_epoch = match me.replicaof.and_then(|m| st.nodes.get(&m)) {
            Some(m) if me.is_slave() => m.config_epoch,
            _ => me.config_epoch,
        };
        let mut s = format!(
            "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{my_epoch}\r\n",
            if st.ok { "ok" } else { "fail" },
            st.nodes.len(),
            st.size,
            st.current_epoch,
        );
        let mut tot = 0;
        for (i, &n) in st.stats_sent.iter().enumerate() {
            if n != 0 {
                tot += n;
                s.push_str(&format!(
                    "cluster_stats_messages_{}_sent:{n}\r\n",
                    bus::type_name(i)
                ));
            }
        }
        s.push_str(&format!("cluster_stats_messages_sent:{tot}\r\n"));
        let mut tot = 0;
        for (i, &n) in st.stats_received.iter().enumerate() {
            if n != 0 {
                tot += n;
                s.push_str(&format!(
                    "cluster_stats_messages_{}_received:{n}\r\n",
                    bus::type_name(i)
                ));
            }
        }
        s.push_str(&format!("cluster_stats_messages_received:{tot}\r\n"));
        s.push_str("total_cluster_links_buffer_limit_exceeded:0\r\n");
        s
    };
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// `addNodeToNodeReply`.
fn node_reply(ctx: &mut Ctx, st: &State, n: &nodes::Node) {
    ctx.out.array(4);
    match st.settings.endpoint_type.as_str() {
        "hostname" => ctx.out.bulk(if n.hostname.is_empty() {
            b"?"
        } else {
            n.hostname.as_bytes()
        }),
        "unknown-endpoint" => ctx.out.null(),
        _ => ctx.out.bulk(n.ip.as_bytes()),
    }
    ctx.out.int(i64::from(n.port));
    ctx.out.bulk(&n.name);
    let ip_entry = st.settings.endpoint_type != "ip";
    let host_entry = st.settings.endpoint_type != "hostname" && !n.hostname.is_empty();
    ctx.out.map(usize::from(ip_entry) + usize::from(host_entry));
    if ip_entry {
        ctx.out.bulk(b"ip");
        ctx.out.bulk(n.ip.as_bytes());
    }
    if host_entry {
        ctx.out.bulk(b"hostname");
        ctx.out.bulk(n.hostname.as_bytes());
    }
}

/// Slot ranges in slot order: (start, end, owner).
fn ranges(st: &State) -> Vec<(usize, usize, Name)> {
    let mut v = Vec::new();
    let mut j = 0;
    while j < SLOTS {
        if let Some(n) = st.slots[j] {
            let start = j;
            while j + 1 < SLOTS && st.slots[j + 1] == Some(n) {
                j += 1;
            }
            v.push((start, j, n));
        }
        j += 1;
    }
    v
}

fn slots(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?.clone();
    let st = c.state.lock();
    let rs = ranges(&st);
    ctx.out.array(rs.len());
    for (s, e, n) in rs {
        // Replicas that are not failed and have some data
        // (`isReplicaAvailable`).
        let reps = replicas_of(&st, n, true);
        ctx.out.array(3 + reps.len());
        ctx.out.int(s as i64);
        ctx.out.int(e as i64);
        if let Some(node) = st.nodes.get(&n) {
            node_reply(ctx, &st, node);
        }
        for r in reps {
            node_reply(ctx, &st, r);
        }
    }
    Ok(())
}

/// The replicas of `master` in the order they were added, as Redis's
/// `master->slaves`; `available`: only those not failed with a non-zero
/// offset.
fn replicas_of(st: &State, master: Name, available: bool) -> Vec<&nodes::Node> {
    st.replicas(master)
        .into_iter()
        .filter(|r| r.is_slave())
        .filter(|r| !available || (!r.failed() && r.repl_offset != 0))
        .collect()
}

fn shards(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?.clone();
    let st = c.state.lock();
    let rs = ranges(&st);
    let mut masters: Vec<&nodes::Node> = st.nodes.values().filter(|n| n.is_master()).collect();
    masters.sort_by_key(|n| n.name);
    ctx.out.array(masters.len());
    for m in masters {
        ctx.out.map(2);
        ctx.out.bulk(b"slots");
        let mine: Vec<_> = rs.iter().filter(|r| r.2 == m.name).collect();
        ctx.out.array(mine.len() * 2);
        for r in mine {
            ctx.out.int(r.0 as i64);
            ctx.out.int(r.1 as i64);
        }
        ctx.out.bulk(b"nodes");
        let mut members: Vec<&nodes::Node> = vec![m];
        members.extend(replicas_of(&st, m.name, false));
        ctx.out.array(members.len());
        for n in members {
            let host = !n.hostname.is_empty();
            ctx.out
                .map(if n.port != 0 { 7 } else { 6 } + usize::from(host));
            ctx.out.bulk(b"id");
            ctx.out.bulk(&n.name);
            if n.port != 0 {
                ctx.out.bulk(b"port");
                ctx.out.int(i64::from(n.port));
            }
            ctx.out.bulk(b"ip");
            ctx.out.bulk(n.ip.as_bytes());
            ctx.out.bulk(b"endpoint");
            ctx.out.bulk(st.endpoint(n).as_bytes());
            if host {
                ctx.out.bulk(b"hostname");
                ctx.out.bulk(n.hostname.as_bytes());
            }
            ctx.out.bulk(b"role");
            ctx.out.bulk(if n.is_slave() {
                b"replica" as &[u8]
            } else {
                b"master"
            });
            ctx.out.bulk(b"replication-offset");
            ctx.out.int(n.repl_offset as i64);
            ctx.out.bulk(b"health");
            ctx.out.bulk(if n.failed() {
                b"fail" as &[u8]
            } else if n.is_slave() && n.repl_offset == 0 {
                b"loading"
            } else {
                b"online"
            });
        }
    }
    Ok(())
}

fn links(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?.clone();
    let st = c.state.lock();
    let mut ls: Vec<(&u64, &nodes::Link)> = st
        .links
        .iter()
        .filter(|(_, l)| {
            l.node
                .is_some_and(|n| st.nodes.get(&n).is_some_and(|n| !n.has(nf::MYSELF)))
        })
        .collect();
    ls.sort_by_key(|(id, _)| **id);
    ctx.out.array(ls.len());
    for (_, l) in ls {
        ctx.out.map(6);
        ctx.out.bulk(b"direction");
        ctx.out
            .bulk(if l.inbound { b"from" as &[u8] } else { b"to" });
        ctx.out.bulk(b"node");
        ctx.out.bulk(&l.node.unwrap_or([b'0'; 40]));
        ctx.out.bulk(b"create-time");
        ctx.out.int(l.ctime as i64);
        ctx.out.bulk(b"events");
        ctx.out.bulk(if l.inbound { b"r" as &[u8] } else { b"rw" });
        ctx.out.bulk(b"send-buffer-allocated");
        ctx.out.int(l.send_buffer_allocated as i64);
        ctx.out.bulk(b"send-buffer-used");
        ctx.out.int(0);
    }
    Ok(())
}

// ---- redirection (`getNodeByQuery`) ----

/// The keys (or, for sharded Pub/Sub, channels) a command names, as
/// Redis's `getKeysFromCommand`.
fn command_keys(idx: usize, args: &[Bytes]) -> Vec<&Bytes> {
    let t = super::table();
    match t.entries[idx].full_name.as_str() {
        "spublish" => args.get(1).into_iter().collect(),
        "ssubscribe" | "sunsubscribe" => args[1..].iter().collect(),
        _ => t.keys(idx, args),
    }
}

/// Whether the table entry takes part in redirection (Redis skips commands
/// with no key specs and no movable keys, except EXEC).
fn routed(idx: usize) -> bool {
    let t = super::table();
    let e = &t.entries[idx];
    let name = e.full_name.as_str();
    name == "exec"
        || e.cmd.has(MOVABLE_KEYS)
        || !t.key_specs(idx).is_empty()
        || matches!(name, "spublish" | "ssubscribe" | "sunsubscribe")
}

/// The redirection or error a command gets in cluster mode, None when
/// this node serves it. `cmd_flags` are the command's effective flags
/// (a script's own flags for EVAL). Also returns whether the client's
/// MULTI must be discarded (EXEC) rather than flagged.
pub fn redirect(
    c: &Cluster,
    ks: &mut crate::db::Keyspace,
    client: &crate::node::Client,
    idx: usize,
    args: &[Bytes],
    cmd_flags: u32,
    now_ms: u64,
) -> Option<CmdError> {
    if !routed(idx) {
        return None;
    }
    let t = super::table();
    let name = t.entries[idx].full_name.as_str();
    let single = [(idx, args.to_vec())];
    let commands: &[(usize, Vec<Bytes>)] = if name == "exec" {
        match &client.multi {
            Some(m) => &m.queue,
            None => return None,
        }
    } else {
        &single
    };
    let is_shard = matches!(name, "spublish" | "ssubscribe" | "sunsubscribe");
    let st = c.state.lock();
    let mut first: Option<(Bytes, u16, Name)> = None;
    let (mut migrating, mut importing, mut multiple) = (false, false, false);
    let (mut missing, mut existing) = (0, 0);
    for (cidx, cargs) in commands {
        for k in command_keys(*cidx, cargs) {
            let slot = key_slot(k);
            match &first {
                None => {
                    let Some(owner) = st.slots[usize::from(slot)] else {
                        return Some(CmdError::new("CLUSTERDOWN Hash slot not served"));
                    };
                    if owner == st.myself && st.migrating[usize::from(slot)].is_some() {
                        migrating = true;
                    } else if st.importing[usize::from(slot)].is_some() {
                        importing = true;
                    }
                    first = Some((k.clone(), slot, owner));
                }
                Some((fk, fslot, _)) => {
                    if fk != k {
                        if *fslot != slot {
                            return Some(CmdError::new(
                                "CROSSSLOT Keys in request don't hash to the same slot",
                            ));
                        }
                        multiple = true;
                    }
                }
            }
            if (migrating || importing) && !is_shard {
                let db = &ks.dbs[0];
                if db.contains(k) && !db.is_expired(k, now_ms) {
                    existing += 1;
                } else {
                    missing += 1;
                }
            }
        }
    }
    let (_, slot, owner) = first?;
    if !st.ok {
        let allow = if is_shard {
            st.settings.allow_pubsubshard_when_down
        } else {
            st.settings.allow_reads_when_down
        };
        if !allow {
            return Some(CmdError::new("CLUSTERDOWN The cluster is down"));
        }
        if !is_shard && cmd_flags & WRITE != 0 {
            return Some(CmdError::new(
                "CLUSTERDOWN The cluster is down and only accepts read commands",
            ));
        }
    }
    if (migrating || importing) && name == "migrate" {
        return None;
    }
    let to = |n: &Name, kind: &str| {
        let node = st.nodes.get(n)?;
        Some(CmdError::new(format!(
            "{kind} {slot} {}:{}",
            st.endpoint(node),
            node.port
        )))
    };
    if migrating && missing > 0 {
        if existing > 0 {
            return Some(CmdError::new(
                "TRYAGAIN Multiple keys request during rehashing of slot",
            ));
        }
        let target = st.migrating[usize::from(slot)]?;
        return to(&target, "ASK");
    }
    if importing && (client.asking || cmd_flags & ASKING != 0) {
        if multiple && missing > 0 {
            return Some(CmdError::new(
                "TRYAGAIN Multiple keys request during rehashing of slot",
            ));
        }
        return None;
    }
    if owner != st.myself {
        // A replica serves reads about its primary's slots to READONLY
        // clients (and sharded Pub/Sub to anyone).
        let me = st.me();
        let write = if name == "exec" {
            commands
                .iter()
                .any(|(i, _)| t.entries[*i].cmd.flags & WRITE != 0)
        } else {
            cmd_flags & WRITE != 0
        };
        if (client.readonly || is_shard) && !write && me.is_slave() && me.replicaof == Some(owner) {
            return None;
        }
        return to(&owner, "MOVED");
    }
    None
}
