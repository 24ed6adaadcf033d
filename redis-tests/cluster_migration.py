#!/usr/bin/env python3
"""Redis Cluster replica migration with redlog nodes (issue 21).

    python3 redis-tests/cluster_migration.py path/to/redlog

Three primaries P1, P2, P3 made with `redis-cli --cluster create`; P3 and
P2 get one replica each, then P1 two, the one with the greater node id
first (`--cluster add-node --cluster-slave`): CLUSTER REPLICAS, SLOTS and
SHARDS list P1's replicas in that order on every node (but the second
replica's own view). kill -9 P2's replica: P2 is an orphan (it serves slots
and had a replica).
1. With `cluster-migration-barrier 2` on P1's replicas nothing moves;
2. with the barrier back to 1 but `cluster-allow-replica-migration no`
   nothing moves;
3. with `yes`, the replica of P1 with the smallest node id becomes a
   replica of P2 (after CLUSTER_SLAVE_MIGRATION_DELAY, 5 s), is listed by
   CLUSTER REPLICAS on every node and catches up with P2's data; the other
   stays with P1.
Run all redlog, then mixed: redlog replicas migrating between redis-server
primaries (one redlog primary), then redis-server replicas migrating between
redlog primaries (step 3 only). Also CONFIG GET/SET of the two parameters
compared with redis-server's replies.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import os
import sys
import tempfile
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402  (free_port, cli, check, wait_ok, node_id, raw)
import cluster_failover as F  # noqa: E402  (start, nodes, master_of, wait_for, kill9, caught_up, write_keys)

# Past FAIL detection (node timeout, then the failure reports' gossip) and
# the 5 s migration delay.
QUIET_S = F.TIMEOUT_MS / 1000 + 5 + 2.5


def config_set(ports, name, value):
    for p in ports:
        redis.Redis(port=p).config_set(name, value)


def still_with(replicas, primary):
    return all(F.master_of(r) == primary for r in replicas)


def scenario(work, label, primary_kinds, replica_kind, negatives):
    mports = [C.free_port() for _ in range(3)]
    for k, p in zip(primary_kinds, mports):
        F.start(k, p, work)
    rc_, out = C.cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in mports], "--cluster-yes")
    C.check(f"{label}: --cluster create", rc_ == 0, out[-2000:])
    C.check(f"{label}: cluster_state:ok", C.wait_ok(mports))
    p1, p2, p3 = mports
    reps = [C.free_port() for _ in range(4)]
    for p in reps:
        F.start(replica_kind, p, work)
    # P1's replicas: the greater node id first, so that the order they were
    # added differs from node-id order.
    r1 = sorted(reps[:2], key=C.node_id, reverse=True)
    r2, r3 = reps[2], reps[3]
    joined = list(mports)
    # P3 gets a replica too: a primary that got its first slot while
    # another had replicas is a migration target as well (Redis's
    # clusterNodeSetSlotBit), and nodes that join late see P3 that way.
    for p, m in ((r3, p3), (r2, p2), (r1[0], p1), (r1[1], p1)):
        rc_, out = C.cli("--cluster", "add-node", f"127.0.0.1:{p}", f"127.0.0.1:{mports[0]}",
                         "--cluster-slave", "--cluster-master-id", C.node_id(m))
        C.check(f"{label}: add-node --cluster-slave ({replica_kind})",
                rc_ == 0 and "[OK] New node added correctly." in out, out[-1500:])
        joined.append(p)
        C.check(f"{label}: the replica is known to every node", F.wait_for(
            lambda: F.master_of(p) == m and all(F.role_of(q, p) == "slave" for q in joined), 20))
    allp = joined
    C.check(f"{label}: cluster_state:ok with replicas", C.wait_ok(allp))
    keys = F.write_keys(p2, "g", 300)
    # P2's keys only: what the migrated replica must receive.
    keys = {k: v for k, v in keys.items() if C.raw(p2, "GET", k).startswith("$")}
    p1_id = C.node_id(p1)
    want = [C.node_id(r) for r in r1]
    # The second replica may list itself first: it joins P1's replicas by
    # CLUSTER REPLICATE before it hears that the first one is one (Redis
    # too).
    viewers = [q for q in allp if q != r1[1]]

    def replicas_listed(q):
        got = [line.decode().split()[0] for line in
               redis.Redis(port=q).execute_command("CLUSTER", "REPLICAS", p1_id)]
        return got

    bad = {q: replicas_listed(q) for q in viewers if replicas_listed(q) != want}
    C.check(f"{label}: CLUSTER REPLICAS lists P1's replicas in the order they were added", not bad,
            f"want {want}, got {bad}")

    def slots_listed(q):
        for r in redis.Redis(port=q).execute_command("CLUSTER", "SLOTS"):
            if r[2][2].decode() == p1_id:
                return [x[2].decode() for x in r[3:]]
        return None

    C.check(f"{label}: CLUSTER SLOTS lists them in that order", F.wait_for(
        lambda: all(slots_listed(q) == want for q in viewers), 25), {q: slots_listed(q) for q in viewers})

    def shards_listed(q):
        def as_dict(x):
            return x if isinstance(x, dict) else dict(zip(x[::2], x[1::2]))

        for sh in redis.Redis(port=q).execute_command("CLUSTER", "SHARDS"):
            sh = {k.decode() if isinstance(k, bytes) else k: v for k, v in as_dict(sh).items()}
            ids = []
            for n in sh["nodes"]:
                n = {k.decode() if isinstance(k, bytes) else k: v for k, v in as_dict(n).items()}
                ids.append(n["id"].decode() if isinstance(n["id"], bytes) else n["id"])
            if ids and ids[0] == p1_id:
                return ids[1:]
        return None

    bad = {q: shards_listed(q) for q in viewers if shards_listed(q) != want}
    C.check(f"{label}: CLUSTER SHARDS lists them in that order", not bad, f"want {want}, got {bad}")
    F.kill9(r2)
    alive = [p for p in allp if p != r2]
    C.check(f"{label}: the killed replica is FAIL for P1's replicas", F.wait_for(
        lambda: all(any("fail" in v[1] for v in F.nodes(q).values()) for q in r1), 10 + QUIET_S))
    if negatives:
        config_set(r1, "cluster-migration-barrier", "2")
        time.sleep(QUIET_S)
        C.check(f"{label}: cluster-migration-barrier 2: no replica moves", still_with(r1, p1),
                f"P1 {p1}, P2 {p2}: {[F.master_of(r) for r in r1]}")
        # In this order: an orphan's `orphaned_time` may date from the
        # setup (Redis resets it only while looking for a target), so a
        # replica may move as soon as both allow it.
        config_set(r1, "cluster-allow-replica-migration", "no")
        config_set(r1, "cluster-migration-barrier", "1")
        time.sleep(QUIET_S)
        C.check(f"{label}: cluster-allow-replica-migration no: no replica moves", still_with(r1, p1),
                f"P1 {p1}, P2 {p2}: {[F.master_of(r) for r in r1]}")
        config_set(r1, "cluster-allow-replica-migration", "yes")
    ids = {r: C.node_id(r) for r in r1}
    mover = min(r1, key=lambda r: ids[r])
    stayer = max(r1, key=lambda r: ids[r])
    t0 = time.time()
    moved = F.wait_for(lambda: F.master_of(mover) == p2, 20)
    took = time.time() - t0
    C.check(f"{label}: the smallest-id replica of P1 migrates to orphaned P2 ({took:.1f}s)", moved,
            {r: F.master_of(r) for r in r1})
    C.check(f"{label}: the other replica stays with P1", F.master_of(stayer) == p1, F.master_of(stayer))
    p2_id = C.node_id(p2)
    C.check(f"{label}: CLUSTER REPLICAS of P2 lists it on every node", F.wait_for(
        lambda: all(any(ids[mover] in line.decode() for line in
                        redis.Redis(port=q).execute_command("CLUSTER", "REPLICAS", p2_id)) for q in alive), 15))
    C.check(f"{label}: the migrated replica catches up with P2", F.wait_for(lambda: F.caught_up(p2, mover), 20))
    r = redis.Redis(port=mover)
    r.execute_command("READONLY")
    bad = [k for k, v in keys.items() if r.get(k) != v]
    C.check(f"{label}: P2's keys read on the migrated replica", not bad and keys, f"{len(bad)} missing")
    return mports, reps


def config_compare(redlog_port, redis_port):
    cmds = [
        ("CONFIG", "GET", "cluster-migration-barrier"),
        ("CONFIG", "GET", "cluster-allow-replica-migration"),
        ("CONFIG", "SET", "cluster-migration-barrier", "-1"),
        ("CONFIG", "SET", "cluster-migration-barrier", "abc"),
        ("CONFIG", "SET", "cluster-migration-barrier", "2147483648"),
        ("CONFIG", "SET", "cluster-allow-replica-migration", "maybe"),
        ("CONFIG", "SET", "cluster-migration-barrier", "3"),
        ("CONFIG", "GET", "cluster-migration-barrier"),
        ("CONFIG", "SET", "cluster-allow-replica-migration", "no"),
        ("CONFIG", "GET", "cluster-allow-replica-migration"),
    ]
    for c in cmds:
        a = redis.Redis(port=redlog_port).execute_command(*c) if c[1] == "GET" else C.raw(redlog_port, *c)
        b = redis.Redis(port=redis_port).execute_command(*c) if c[1] == "GET" else C.raw(redis_port, *c)
        C.check(f"config: {' '.join(c)} as redis-server", a == b, f"redlog {a!r}, redis {b!r}")


def main():
    work = tempfile.mkdtemp()
    try:
        scenario(work, "redlog", ["redlog"] * 3, "redlog", True)
        mports, _ = scenario(work, "mixed, redlog replicas", ["redis-server", "redis-server", "redlog"],
                             "redlog", True)
        config_compare(mports[2], mports[0])
        scenario(work, "mixed, redis-server replicas", ["redlog", "redlog", "redis-server"],
                 "redis-server", False)
    finally:
        F.stop_all(work, 12)
    print(f"{C.PASSED} passed, {C.FAILED} failed")
    sys.exit(1 if C.FAILED else 0)


if __name__ == "__main__":
    main()
