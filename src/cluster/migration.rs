//! A primary's replicas in Redis's order, and replica migration (Redis
//! 7.0's `clusterNodeAddSlave` / `clusterNodeRemoveSlave`,
//! `clusterCountNonFailingSlaves`, `clusterHandleSlaveMigration`), on
//! `State` under its lock.
//!
//! Redis keeps `master->slaves` in the order the replicas were added
//! (nodes.conf lines at load, then gossip and CLUSTER REPLICATE); CLUSTER
//! SLOTS, SHARDS and REPLICAS list them in that order. Here a node's
//! primary is `Node::replicaof` and its place in the list
//! `Node::replica_seq`, both set only by `State::set_replicaof`.
//!
//! A primary is an orphan when it serves slots, has no replica that is not
//! FAIL, and is flagged MIGRATE_TO: it had replicas (the flag is set when
//! a replica is added and cleared when the last one leaves the list; a
//! failed replica stays in the list), it took over from a primary that had
//! replicas, or it got its first slot while some primary had replicas.
//! A replica of a primary with the most working replicas, when that
//! primary keeps more than `cluster-migration-barrier` working replicas
//! (neither FAIL nor PFAIL), and only the one with the smallest node id
//! among all such primaries' replicas, becomes a replica of the orphan
//! after the orphan stayed one for `CLUSTER_SLAVE_MIGRATION_DELAY`, while
//! the cluster state is ok and `cluster-allow-replica-migration` is yes.

use super::nodes::{flags, Name, Node, State};

/// `CLUSTER_SLAVE_MIGRATION_DELAY` (ms).
pub const MIGRATION_DELAY_MS: u64 = 5000;

impl State {
    /// Makes `master` the primary of `node` (None: no primary), as Redis's
    /// `clusterNodeRemoveSlave` from the old primary (which loses its
    /// MIGRATE_TO flag with its last replica) then `clusterNodeAddSlave`
    /// to the new one (which gets MIGRATE_TO). The replica goes to the end
    /// of the new primary's list.
    pub fn set_replicaof(&mut self, node: Name, master: Option<Name>) {
        let Some(old) = self.nodes.get(&node).map(|n| n.replicaof) else {
            return;
        };
        if old == master {
            return;
        }
        self.replica_seq += 1;
        let seq = self.replica_seq;
        if let Some(n) = self.nodes.get_mut(&node) {
            n.replicaof = master;
            n.replica_seq = seq;
        }
        if let Some(o) = old {
            if self.replica_count(o) == 0 {
                if let Some(o) = self.nodes.get_mut(&o) {
                    o.flags &= !flags::MIGRATE_TO;
                }
            }
        }
        if let Some(m) = master.and_then(|m| self.nodes.get_mut(&m)) {
            m.flags |= flags::MIGRATE_TO;
        }
    }

    /// The replicas of `master` in the order they were added (Redis's
    /// `master->slaves`).
    pub fn replicas(&self, master: Name) -> Vec<&Node> {
        let mut v: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.replicaof == Some(master))
            .collect();
        v.sort_by_key(|n| n.replica_seq);
        v
    }

    /// `master->numslaves`.
    pub fn replica_count(&self, master: Name) -> usize {
        self.nodes
            .values()
            .filter(|n| n.replicaof == Some(master))
            .count()
    }

    /// `clusterCountNonFailingSlaves`: replicas not flagged FAIL.
    pub fn ok_replica_count(&self, master: Name) -> usize {
        self.nodes
            .values()
            .filter(|n| n.replicaof == Some(master) && !n.failed())
            .count()
    }

    /// `clusterMastersHaveSlaves`: some node that is not a replica has
    /// replicas.
    pub fn masters_have_replicas(&self) -> bool {
        self.nodes.values().any(|r| {
            r.replicaof
                .and_then(|m| self.nodes.get(&m))
                .is_some_and(|m| !m.is_slave())
        })
    }

    /// The part of `clusterCron` that decides whether to consider a
    /// migration (this node is a replica): there is an orphaned primary,
    /// some primary has at least two working replicas, ours has the most.
    pub fn replica_migration_cron(&mut self, now: u64) {
        let me = self.me();
        if !me.is_slave() || !self.settings.allow_replica_migration {
            return;
        }
        let my_master = me.replicaof;
        let (mut orphaned, mut max_slaves, mut this_slaves) = (0, 0, 0);
        for n in self.nodes.values() {
            if n.flags & (flags::MYSELF | flags::NOADDR | flags::HANDSHAKE) != 0
                || !n.is_master()
                || n.failed()
            {
                continue;
            }
            let ok = self.ok_replica_count(n.name);
            if ok == 0 && n.numslots > 0 && n.has(flags::MIGRATE_TO) {
                orphaned += 1;
            }
            max_slaves = max_slaves.max(ok);
            if my_master == Some(n.name) {
                this_slaves = ok;
            }
        }
        if orphaned > 0 && max_slaves >= 2 && this_slaves == max_slaves {
            self.handle_replica_migration(max_slaves, now);
        }
    }

    /// `clusterHandleSlaveMigration`.
    pub fn handle_replica_migration(&mut self, max_slaves: usize, now: u64) {
        if !self.ok {
            return;
        }
        let Some(my_master) = self.me().replicaof else {
            return;
        };
        let ok_siblings = self
            .nodes
            .values()
            .filter(|n| {
                n.replicaof == Some(my_master) && n.flags & (flags::FAIL | flags::PFAIL) == 0
            })
            .count() as u64;
        if ok_siblings <= self.settings.migration_barrier {
            return;
        }
        let mut candidate = self.myself;
        let mut target: Option<Name> = None;
        // Redis walks its node dict; the first orphan with slots it meets
        // is the target. Name order makes that choice stable here.
        let mut names: Vec<Name> = self.nodes.keys().copied().collect();
        names.sort();
        for name in names {
            let Some(node) = self.nodes.get(&name) else {
                continue;
            };
            let ok = if node.is_master() {
                self.ok_replica_count(name)
            } else {
                0
            };
            let orphan =
                !node.is_slave() && !node.failed() && node.has(flags::MIGRATE_TO) && ok == 0;
            let numslots = node.numslots;
            if ok == max_slaves {
                for r in self.replicas(name) {
                    if r.name < candidate {
                        candidate = r.name;
                    }
                }
            }
            let Some(node) = self.nodes.get_mut(&name) else {
                continue;
            };
            if orphan {
                if target.is_none() && numslots > 0 {
                    target = Some(name);
                }
                if node.orphaned_time == 0 {
                    node.orphaned_time = now;
                }
            } else {
                node.orphaned_time = 0;
            }
        }
        let Some(target) = target else {
            return;
        };
        let since = self.nodes.get(&target).map_or(now, |t| t.orphaned_time);
        if candidate == self.myself && now.saturating_sub(since) > MIGRATION_DELAY_MS {
            tracing::warn!(
                "Migrating to orphaned master {}",
                super::nodes::name_str(&target)
            );
            self.set_master(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::bus::NAMELEN;
    use crate::cluster::nodes::{Node, Settings};

    fn name(c: u8) -> Name {
        [c; NAMELEN]
    }

    /// Primaries `a` (slot 1, replicas this node and `c`... as given) and
    /// `o` (slot 2, one replica `x`); this node is a replica of `a`.
    fn cluster(my_name: u8, sibling: u8) -> State {
        let settings = Settings {
            node_timeout: 2000,
            allow_replica_migration: true,
            migration_barrier: 1,
            config_file: std::env::temp_dir().join(format!(
                "redlog-migration-test-{}-{}.conf",
                std::process::id(),
                crate::random::random_hex(8)
            )),
            ..Settings::default()
        };
        let mut st = State::new(settings, 1);
        let old = st.myself;
        st.rename_node(old, name(my_name));
        st.myself = name(my_name);
        for (m, slot) in [(b'a', 1), (b'o', 2)] {
            st.nodes
                .insert(name(m), Node::new(name(m), flags::MASTER, 1));
            st.add_slot(name(m), slot);
        }
        for (r, m) in [(sibling, b'a'), (b'x', b'o')] {
            st.nodes
                .insert(name(r), Node::new(name(r), flags::SLAVE, 1));
            st.set_replicaof(name(r), Some(name(m)));
        }
        st.set_master(name(b'a'));
        st.ok = true;
        st
    }

    #[test]
    fn replicas_are_listed_in_the_order_they_were_added() {
        let mut st = cluster(b'm', b'c');
        let a = name(b'a');
        let order = |st: &State| -> Vec<u8> { st.replicas(a).iter().map(|n| n.name[0]).collect() };
        // `c` was added before this node (`m`), though `m` > `c`.
        assert_eq!(order(&st), vec![b'c', b'm']);
        st.nodes
            .insert(name(b'b'), Node::new(name(b'b'), flags::SLAVE, 1));
        st.set_replicaof(name(b'b'), Some(a));
        assert_eq!(order(&st), vec![b'c', b'm', b'b']);
        // Gossip repeating the same primary does not move it.
        st.set_replicaof(name(b'c'), Some(a));
        assert_eq!(order(&st), vec![b'c', b'm', b'b']);
        // Leaving and coming back puts it last.
        st.set_replicaof(name(b'c'), Some(name(b'o')));
        st.set_replicaof(name(b'c'), Some(a));
        assert_eq!(order(&st), vec![b'm', b'b', b'c']);
        let _ = std::fs::remove_file(&st.settings.config_file);
    }

    #[test]
    fn migrate_to_follows_the_replica_list() {
        let mut st = cluster(b'm', b'c');
        let (o, x) = (name(b'o'), name(b'x'));
        assert!(st.nodes[&o].has(flags::MIGRATE_TO));
        // A failed replica stays in the list: still flagged.
        st.nodes.get_mut(&x).unwrap().flags |= flags::FAIL;
        assert!(st.nodes[&o].has(flags::MIGRATE_TO));
        assert_eq!(st.ok_replica_count(o), 0);
        // Forgotten: the primary loses the flag with its last replica.
        st.del_node(x);
        assert!(!st.nodes[&o].has(flags::MIGRATE_TO));
        // A new primary's first slot flags it while others have replicas.
        let n = name(b'n');
        st.nodes.insert(n, Node::new(n, flags::MASTER, 1));
        st.add_slot(n, 3);
        assert!(st.nodes[&n].has(flags::MIGRATE_TO));
        let _ = std::fs::remove_file(&st.settings.config_file);
    }

    #[test]
    fn the_smallest_replica_of_the_richest_primary_migrates_after_the_delay() {
        // This node `b` is the smaller of a's two replicas.
        let mut st = cluster(b'b', b'c');
        let (o, x) = (name(b'o'), name(b'x'));
        st.nodes.get_mut(&x).unwrap().flags |= flags::FAIL;
        st.replica_migration_cron(10_000);
        assert_eq!(st.me().replicaof, Some(name(b'a')));
        assert_eq!(st.nodes[&o].orphaned_time, 10_000);
        st.replica_migration_cron(15_000);
        assert_eq!(st.me().replicaof, Some(name(b'a')));
        st.replica_migration_cron(15_001);
        assert_eq!(st.me().replicaof, Some(o));
        assert_eq!(st.replicas(name(b'a')).len(), 1);
        let _ = std::fs::remove_file(&st.settings.config_file);
    }

    #[test]
    fn nothing_moves_without_the_conditions() {
        for case in 0..4 {
            // `case` 0: this node is not the smallest replica.
            let mut st = cluster(if case == 0 { b'm' } else { b'b' }, b'c');
            let x = name(b'x');
            st.nodes.get_mut(&x).unwrap().flags |= flags::FAIL;
            match case {
                1 => st.settings.migration_barrier = 2,
                2 => st.settings.allow_replica_migration = false,
                3 => st.ok = false,
                _ => {}
            }
            st.replica_migration_cron(10_000);
            st.replica_migration_cron(20_000);
            assert_eq!(st.me().replicaof, Some(name(b'a')), "case {case}");
            let _ = std::fs::remove_file(&st.settings.config_file);
        }
    }
}
