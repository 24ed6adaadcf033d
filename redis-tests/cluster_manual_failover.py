#!/usr/bin/env python3
"""CLUSTER FAILOVER [FORCE|TAKEOVER] with redlog nodes (issue 21).

    python3 redis-tests/cluster_manual_failover.py path/to/redlog

1. The error replies on a primary, byte for byte as a redis-server 7.0
   cluster node's.
2. Six redlog nodes (three primaries, three replicas, node timeout 2 s):
   - default mode while a RedisCluster client keeps writing: the replica
     becomes the primary, the old primary its replica (CLUSTER NODES from
     every node, ROLE on both), no acknowledged write is lost;
   - FORCE on another replica: the same swap;
   - a killed primary whose replica has cluster-replica-no-failover: the
     default mode is refused with "Master is down or failed" (the same text
     a redis-server replica gives in part 3), TAKEOVER takes its slots and
     every key is readable.
3. Mixed: a redlog replica of a redis-server primary and a redis-server
   replica of a redlog primary, each promoted by the default mode (the
   same MFSTART / PAUSED / FORCEACK messages both ways), the old primary
   following; then the redis-server replica's "Master is down" reply.

Helpers come from cluster.py (C) and cluster_failover.py (F). Prints one
line per check and "N passed, M failed"; exit status 1 on any failure.
"""
import os
import sys
import tempfile
import threading
import time

import redis
from redis.cluster import RedisCluster, ClusterNode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402
import cluster_failover as F  # noqa: E402

MASTER_DOWN = {}


def role(port):
    r = redis.Redis(port=port).execute_command("ROLE")
    return r[0].decode() if isinstance(r[0], bytes) else r[0]


def swapped(new, old, others):
    """`new` is a primary and `old` its replica, as every node sees it."""
    return (role_of_all(new, "master", [new, old, *others])
            and role_of_all(old, "slave", [new, old, *others])
            and F.master_of(old) == new)


def flags_of(port, about):
    """CLUSTER NODES flags of node `about` (by port) as `port` sees it."""
    return next((v[1] for v in F.nodes(port).values() if v[0] == about), [])


def role_of_all(port, want, seen_by):
    return all(F.role_of(q, port) == want for q in seen_by)


def check_swap(new, old, others, label):
    t0 = time.time()
    ok = F.wait_for(lambda: swapped(new, old, others), 15)
    C.check(f"{label}: roles swapped in CLUSTER NODES on every node ({time.time() - t0:.1f}s)", ok,
            f"{F.nodes(new)}")
    ok = F.wait_for(lambda: role(new) == "master" and role(old) == "slave", 10)
    C.check(f"{label}: ROLE master on the new primary, slave on the old", ok,
            f"{redis.Redis(port=new).execute_command('ROLE')} / {redis.Redis(port=old).execute_command('ROLE')}")
    ok = F.wait_for(lambda: F.caught_up(new, old), 20)
    C.check(f"{label}: the old primary replicates the new one", ok,
            redis.Redis(port=old).info("replication"))


class Writer(threading.Thread):
    """Writes keys through RedisCluster until stopped; keeps the ones
    acknowledged."""

    def __init__(self, port, prefix):
        super().__init__(daemon=True)
        self.port, self.prefix = port, prefix
        self.acked = {}
        self.errors = 0
        self.stop = threading.Event()

    def run(self):
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", self.port)])
        i = 0
        while not self.stop.is_set():
            k = f"{self.prefix}{i}"
            try:
                if rc.set(k, str(i)):
                    self.acked[k] = str(i).encode()
                i += 1
            except redis.exceptions.RedisError:
                self.errors += 1
                time.sleep(0.05)
        rc.close()


def lost(port, keys):
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port)])
    bad = [k for k, v in keys.items() if rc.get(k) != v]
    rc.close()
    return bad


def errors_as_redis(work):
    rport = C.free_port()
    F.start("redis-server", rport, work)
    lport = C.free_port()
    F.start("redlog", lport, work)
    for args in [("CLUSTER", "FAILOVER"), ("CLUSTER", "FAILOVER", "FORCE"), ("CLUSTER", "FAILOVER", "TAKEOVER"),
                 ("CLUSTER", "FAILOVER", "x"), ("CLUSTER", "FAILOVER", "FORCE", "x"),
                 ("CLUSTER", "failover", "takeover", "force")]:
        want, got = C.raw(rport, *args), C.raw(lport, *args)
        C.check(f"errors: {' '.join(args)} -> {want}", got == want, got)
    for p in (rport, lport):
        F.kill9(p)


def redlog_six(work):
    ports = [C.free_port() for _ in range(6)]
    for p in ports:
        F.start("redlog", p, work)
    rc_, out = C.cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                     "--cluster-replicas", "1", "--cluster-yes")
    C.check("six redlog: --cluster create --cluster-replicas 1", rc_ == 0, out[-2000:])
    C.check("six redlog: cluster_state:ok", C.wait_ok(ports))
    F.wait_for(lambda: all(sum(1 for v in F.nodes(q).values() if "slave" in v[1]) == 3 for q in ports), 10)
    primaries = [p for p in ports if F.role_of(ports[0], p) == "master"]
    replicas = [p for p in ports if F.role_of(ports[0], p) == "slave"]
    pairs = {F.master_of(r): r for r in replicas}
    C.check("six redlog: three primaries with a replica each", sorted(pairs) == sorted(primaries)
            and len(primaries) == 3, F.nodes(ports[0]))
    keys = F.write_keys(ports[0], "k", 300)
    C.check("six redlog: replicas catch up",
            F.wait_for(lambda: all(F.caught_up(p, r) for p, r in pairs.items()), 20))

    # Default mode while a client writes.
    p0, r0 = primaries[0], pairs[primaries[0]]
    others = [p for p in ports if p not in (p0, r0)]
    w = Writer(ports[0], "w")
    w.start()
    time.sleep(0.5)
    got = C.raw(r0, "CLUSTER", "FAILOVER")
    C.check("six redlog: CLUSTER FAILOVER on a replica -> +OK", got == "+OK", got)
    # The client writes on until every node saw the swap.
    F.wait_for(lambda: swapped(r0, p0, others), 15)
    time.sleep(0.3)
    w.stop.set()
    w.join()
    check_swap(r0, p0, others, "default mode")
    C.check(f"default mode: the client kept writing ({len(w.acked)} acknowledged, {w.errors} retried)",
            len(w.acked) > 50)
    bad = lost(ports[0], {**keys, **w.acked})
    C.check("default mode: no acknowledged write lost", not bad, f"{len(bad)} lost, e.g. {bad[:5]}")
    C.check("default mode: cluster_state:ok", C.wait_ok(ports))
    info = redis.Redis(port=r0).execute_command("CLUSTER", "INFO")
    info = info.decode() if isinstance(info, bytes) else info
    C.check("default mode: cluster_stats_messages_mfstart_sent in CLUSTER INFO",
            "cluster_stats_messages_mfstart_sent:1" in info, info)

    # FORCE.
    p1, r1 = primaries[1], pairs[primaries[1]]
    got = C.raw(r1, "CLUSTER", "FAILOVER", "FORCE")
    C.check("six redlog: CLUSTER FAILOVER FORCE -> +OK", got == "+OK", got)
    check_swap(r1, p1, [p for p in ports if p not in (p1, r1)], "FORCE")
    C.cluster_check(r1, "six redlog after default mode and FORCE")

    # A dead primary: the default mode is refused, TAKEOVER works.
    p2, r2 = primaries[2], pairs[primaries[2]]
    redis.Redis(port=r2).config_set("cluster-replica-no-failover", "yes")
    F.kill9(p2)
    alive = [p for p in ports if p != p2]
    seen = F.wait_for(lambda: "fail" in flags_of(r2, p2), 15)
    C.check("TAKEOVER: the killed primary is flagged fail", seen)
    got = C.raw(r2, "CLUSTER", "FAILOVER")
    MASTER_DOWN["redlog"] = got
    C.check("TAKEOVER: the default mode is refused", got.startswith("-ERR Master is down"), got)
    got = C.raw(r2, "CLUSTER", "FAILOVER", "TAKEOVER")
    C.check("six redlog: CLUSTER FAILOVER TAKEOVER -> +OK", got == "+OK", got)
    ok = F.wait_for(lambda: role_of_all(r2, "master", alive), 10)
    C.check("TAKEOVER: every node sees the replica as a primary", ok, F.nodes(r2))
    C.check("TAKEOVER: cluster_state:ok", C.wait_ok(alive))
    bad = lost(r2, keys)
    C.check("TAKEOVER: every key readable", not bad, f"{len(bad)} missing, e.g. {bad[:3]}")
    for p in alive:
        F.kill9(p)


def mixed(work):
    kinds = ["redis-server", "redlog", "redis-server"]
    mports = [C.free_port() for _ in range(3)]
    for k, p in zip(kinds, mports):
        F.start(k, p, work)
    rc_, out = C.cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in mports], "--cluster-yes")
    C.check("mixed: --cluster create", rc_ == 0, out[-2000:])
    C.check("mixed: cluster_state:ok", C.wait_ok(mports))
    reps = []
    for k, m in [("redlog", mports[0]), ("redis-server", mports[1])]:
        p = C.free_port()
        F.start(k, p, work)
        rc_, out = C.cli("--cluster", "add-node", f"127.0.0.1:{p}", f"127.0.0.1:{mports[0]}",
                         "--cluster-slave", "--cluster-master-id", C.node_id(m))
        C.check(f"mixed: add-node --cluster-slave ({k} replica)", rc_ == 0, out[-1500:])
        reps.append(p)
    allp = mports + reps
    C.check("mixed: replicas known to every node",
            F.wait_for(lambda: all(F.role_of(q, r) == "slave" for q in allp for r in reps), 20))
    C.check("mixed: cluster_state:ok with replicas", C.wait_ok(allp))
    keys = F.write_keys(mports[0], "m", 300)
    C.check("mixed: replicas catch up", F.wait_for(
        lambda: F.caught_up(mports[0], reps[0]) and F.caught_up(mports[1], reps[1]), 20))
    for (new, old, label) in [(reps[0], mports[0], "mixed: redlog replica of redis-server"),
                              (reps[1], mports[1], "mixed: redis-server replica of redlog")]:
        got = C.raw(new, "CLUSTER", "FAILOVER")
        C.check(f"{label}: CLUSTER FAILOVER -> +OK", got == "+OK", got)
        check_swap(new, old, [p for p in allp if p not in (new, old)], label)
    C.check("mixed: cluster_state:ok after both", C.wait_ok(allp))
    bad = lost(mports[2], keys)
    C.check("mixed: every key readable", not bad, f"{len(bad)} missing, e.g. {bad[:3]}")
    # The redis-server replica (the first primary, now replica of the redlog
    # node) whose primary dies: Redis's "Master is down" text.
    old = mports[0]
    redis.Redis(port=old).config_set("cluster-replica-no-failover", "yes")
    F.kill9(reps[0])
    F.wait_for(lambda: "fail" in flags_of(old, reps[0]), 15)
    MASTER_DOWN["redis-server"] = C.raw(old, "CLUSTER", "FAILOVER")
    C.check(f"mixed: 'Master is down' as redis-server ({MASTER_DOWN.get('redis-server')})",
            MASTER_DOWN.get("redlog") == MASTER_DOWN["redis-server"], MASTER_DOWN)


def main():
    work = tempfile.mkdtemp()
    t0 = time.time()
    try:
        errors_as_redis(work)
        redlog_six(work)
        mixed(work)
    finally:
        F.stop_all(work, 15)
    print(f"{C.PASSED} passed, {C.FAILED} failed ({time.time() - t0:.0f}s)")
    sys.exit(1 if C.FAILED else 0)


if __name__ == "__main__":
    main()
