#!/usr/bin/env python3
"""Redis Cluster replicas and failover with redlog nodes (issue 21).

    python3 redis-tests/cluster_failover.py path/to/redlog

1. Six redlog nodes: `redis-cli --cluster create ... --cluster-replicas 1
   --cluster-yes`, `--cluster check` clean, replicas listed by CLUSTER
   NODES / SLOTS / REPLICAS, READONLY reads on a replica (MOVED without
   it), RedisCluster writes; kill -9 a primary: its replica is promoted
   within 3x cluster-node-timeout and every key written before (once the
   replica had caught up) is read back; the old primary, restarted, turns
   into a replica of the new one.
2. Mixed: redis-server and redlog primaries, each with a replica of the
   other kind added by `redis-cli --cluster add-node --cluster-slave`
   (CLUSTER REPLICATE); kill -9 the redis-server primary: the redlog
   replica wins the election; kill -9 the redlog primary: the redis-server
   replica wins, with votes from both kinds.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis
from redis.cluster import RedisCluster, ClusterNode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402  (free_port, cli, check helpers)

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"
TIMEOUT_MS = 2000
PROCS = {}


def start(kind, port, work):
    d = os.path.join(work, f"{kind}-{port}")
    os.makedirs(d, exist_ok=True)
    log = open(os.path.join(d, "log"), "a")
    common = ["--port", str(port), "--dir", d, "--cluster-enabled", "yes",
              "--cluster-node-timeout", str(TIMEOUT_MS)]
    if kind == "redlog":
        cmd = [REDLOG, *common]
    else:
        cmd = ["redis-server", *common, "--save", "", "--appendonly", "no"]
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    PROCS[port] = p
    for _ in range(200):
        try:
            if redis.Redis(port=port).ping():
                return p
        except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
            time.sleep(0.05)
    raise RuntimeError(f"{kind} on {port} did not start")


def nodes(port):
    """CLUSTER NODES as {id: (port, flags, master)}."""
    text = redis.Redis(port=port).execute_command("CLUSTER", "NODES")
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.strip().splitlines():
        f = line.split()
        out[f[0]] = (int(f[1].split(":")[1].split("@")[0]), f[2].split(","), f[3])
    return out


def role_of(port, about):
    """'master' / 'slave' as `port` sees node `about` (by port)."""
    for _, (p, flags, _) in nodes(port).items():
        if p == about:
            return "master" if "master" in flags else "slave"
    return None


def master_of(port):
    """The client port of the primary `port` replicates, per its own view."""
    n = nodes(port)
    for _, (p, flags, m) in n.items():
        if "myself" in flags and m != "-":
            return n[m][0] if m in n else None
    return None


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return True
        except (redis.exceptions.RedisError, OSError, KeyError):
            pass
        time.sleep(0.05)
    return False


def caught_up(primary, replica):
    m = redis.Redis(port=primary).info("replication")["master_repl_offset"]
    r = redis.Redis(port=replica).info("replication")
    return r.get("master_link_status") == "up" and r.get("slave_repl_offset") == m


def kill9(port):
    p = PROCS[port]
    p.kill()
    p.wait()


def failover_test(primary, replica, others, label, keys):
    """kill -9 `primary`; `replica` must be promoted in time, seen by all."""
    t0 = time.time()
    kill9(primary)
    won = wait_for(lambda: role_of(replica, replica) == "master"
                   and all(role_of(o, replica) == "master" for o in others), 3 * TIMEOUT_MS / 1000)
    took = time.time() - t0
    C.check(f"{label}: replica promoted within 3x node timeout ({took:.1f}s)", won,
            f"after {took:.1f}s: {nodes(replica)}")
    ok = C.wait_ok([replica, *others], timeout=10)
    C.check(f"{label}: cluster_state:ok again", ok)
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", replica)])
    bad = [k for k, v in keys.items() if rc.get(k) != v]
    rc.close()
    C.check(f"{label}: every key written before is readable", not bad, f"{len(bad)} missing, e.g. {bad[:3]}")


def write_keys(port, prefix, n):
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port)])
    keys = {}
    for i in range(n):
        k = f"{prefix}{i}"
        rc.set(k, str(i))
        keys[k] = str(i).encode()
    rc.close()
    return keys


def redlog_six(work):
    ports = [C.free_port() for _ in range(6)]
    for p in ports:
        start("redlog", p, work)
    rc_, out = C.cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                     "--cluster-replicas", "1", "--cluster-yes")
    C.check("six redlog: --cluster create --cluster-replicas 1", rc_ == 0 and "[OK] All 16384 slots covered." in out,
            out[-2000:])
    C.check("six redlog: cluster_state:ok", C.wait_ok(ports))
    C.cluster_check(ports[0], "six redlog")
    # Every node learns the replicas' role from their pings.
    wait_for(lambda: all(sum(1 for v in nodes(q).values() if "slave" in v[1]) == 3 for q in ports), 10)
    primaries = [p for p in ports if role_of(ports[0], p) == "master"]
    replicas = [p for p in ports if role_of(ports[0], p) == "slave"]
    C.check("six redlog: three primaries, three replicas", len(primaries) == 3 and len(replicas) == 3,
            f"{nodes(ports[0])}\n--cluster create said:\n{out[-3000:]}")
    pairs = {master_of(r): r for r in replicas}
    C.check("six redlog: every primary has a replica", sorted(pairs) == sorted(primaries), pairs)
    p0 = primaries[0]
    r0 = pairs.get(p0)
    got = redis.Redis(port=p0).execute_command("CLUSTER", "REPLICAS", C.node_id(p0))
    C.check("six redlog: CLUSTER REPLICAS lists the replica", len(got) == 1 and C.node_id(r0) in got[0].decode(),
            got)
    keys = write_keys(ports[0], "k", 600)
    C.check("six redlog: replicas catch up", wait_for(lambda: all(caught_up(p, r) for p, r in pairs.items()), 20))
    # Replicas appear once their offset was gossiped (a ping or two).
    C.check("six redlog: CLUSTER SLOTS lists a replica per range", wait_for(
        lambda: all(len(s) == 4 for s in redis.Redis(port=ports[1]).execute_command("CLUSTER", "SLOTS")), 10),
        redis.Redis(port=ports[1]).execute_command("CLUSTER", "SLOTS"))
    # A key of p0's, read on its replica.
    key = next(k for k in keys if C.raw(p0, "GET", k).startswith("$"))
    got = C.raw(r0, "GET", key)
    C.check("six redlog: a replica redirects without READONLY", got.startswith("-MOVED ") and got.endswith(f":{p0}"),
            got)
    r = redis.Redis(port=r0)
    r.execute_command("READONLY")
    C.check("six redlog: READONLY reads on the replica", r.get(key) == keys[key])
    try:
        r.set(key, "x")
        C.check("six redlog: READONLY client's write is redirected", False, "no error")
    except redis.exceptions.ResponseError as e:
        C.check("six redlog: READONLY client's write is redirected",
                isinstance(e, redis.exceptions.MovedError) and str(e).endswith(f":{p0}"), repr(e))
    # Sharded Pub/Sub: SPUBLISH on the primary reaches the replica's
    # subscribers (PUBLISHSHARD to the shard).
    chan = key
    ps = redis.Redis(port=r0).pubsub()
    ps.ssubscribe(chan)
    ps.get_sharded_message(timeout=1)
    redis.Redis(port=p0).execute_command("SPUBLISH", chan, "hello")
    msg = None
    end = time.time() + 5
    while msg is None and time.time() < end:
        msg = ps.get_sharded_message(timeout=0.5)
    ps.close()
    C.check("six redlog: SPUBLISH on a primary reaches its replica's subscribers",
            msg is not None and msg.get("data") == b"hello", msg)
    r.execute_command("READWRITE")
    got = C.raw(r0, "GET", key)
    C.check("six redlog: READWRITE", got.startswith("-MOVED "), got)
    others = [p for p in ports if p not in (p0, r0)]
    failover_test(p0, r0, others, "six redlog", keys)
    # The old primary comes back and follows the new one.
    start("redlog", p0, work)
    C.check("six redlog: the old primary rejoins as a replica of the winner",
            wait_for(lambda: master_of(p0) == r0 and role_of(others[0], p0) == "slave", 20), nodes(p0))
    C.check("six redlog: the old primary resyncs", wait_for(lambda: caught_up(r0, p0), 20))
    C.cluster_check(r0, "six redlog after failover")


def mixed(work):
    kinds = ["redis-server", "redlog", "redis-server"]
    mports = [C.free_port() for _ in range(3)]
    for k, p in zip(kinds, mports):
        start(k, p, work)
    rc_, out = C.cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in mports], "--cluster-yes")
    C.check("mixed: --cluster create", rc_ == 0, out[-2000:])
    C.check("mixed: cluster_state:ok", C.wait_ok(mports))
    # A redlog replica of the first redis-server, a redis-server replica of
    # the redlog primary.
    rep_kinds = [("redlog", mports[0]), ("redis-server", mports[1])]
    reps = []
    for k, m in rep_kinds:
        p = C.free_port()
        start(k, p, work)
        rc_, out = C.cli("--cluster", "add-node", f"127.0.0.1:{p}", f"127.0.0.1:{mports[0]}",
                         "--cluster-slave", "--cluster-master-id", C.node_id(m))
        C.check(f"mixed: add-node --cluster-slave ({k} replica)", rc_ == 0 and "[OK] New node added correctly." in out,
                out[-1500:])
        reps.append(p)
    allp = mports + reps
    C.check("mixed: replicas known to every node",
            wait_for(lambda: all(role_of(q, r) == "slave" for q in allp for r in reps), 20))
    C.check("mixed: replicas replicate their primaries",
            wait_for(lambda: master_of(reps[0]) == mports[0] and master_of(reps[1]) == mports[1], 10))
    C.check("mixed: cluster_state:ok with replicas", C.wait_ok(allp))
    keys = write_keys(mports[0], "m", 400)
    C.check("mixed: replicas catch up", wait_for(
        lambda: caught_up(mports[0], reps[0]) and caught_up(mports[1], reps[1]), 20))
    C.cluster_check(mports[0], "mixed with replicas")
    failover_test(mports[0], reps[0], [mports[1], mports[2], reps[1]], "mixed: redlog replica of redis-server", keys)
    failover_test(mports[1], reps[1], [reps[0], mports[2]], "mixed: redis-server replica of redlog", keys)


def stop_all(work, tail):
    """Stops every node started (SIGTERM, SIGKILL after 10 s); after a
    failed check prints the last `tail` lines of each node's log; removes
    `work`."""
    for p in PROCS.values():
        if p.poll() is None:
            p.terminate()
    for p in PROCS.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    if C.FAILED:
        for d in sorted(os.listdir(work)):
            logf = os.path.join(work, d, "log")
            if os.path.exists(logf):
                print(f"--- {d}/log (tail)")
                print("".join(open(logf).readlines()[-tail:]))
    shutil.rmtree(work, ignore_errors=True)


def main():
    work = tempfile.mkdtemp()
    try:
        redlog_six(work)
        mixed(work)
    finally:
        stop_all(work, 12)
    print(f"{C.PASSED} passed, {C.FAILED} failed")
    sys.exit(1 if C.FAILED else 0)


if __name__ == "__main__":
    main()
