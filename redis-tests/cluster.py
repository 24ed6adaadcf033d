#!/usr/bin/env python3
"""Redis Cluster with redlog nodes, made and managed with Redis's own tools.

    python3 redis-tests/cluster.py path/to/redlog

1. Three redlog primaries: `redis-cli --cluster create ... --cluster-yes`,
   `redis-cli --cluster check` clean, redis-py's RedisCluster writes and
   reads keys of every type, redirections (-MOVED, -CROSSSLOT, ASK during
   a migration), `redis-cli --cluster reshard` of 1000 slots while a
   client keeps writing: every key written is read back.
2. A mixed cluster of two redis-server 7.0 primaries and two redlog
   primaries made with `redis-cli --cluster create`: served through
   RedisCluster, resharded from redis-server to redlog and back, checked.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import redis
from redis.cluster import RedisCluster, ClusterNode

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"
PASSED = 0
FAILED = 0
PROCS = []


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok    {name}")
    else:
        FAILED += 1
        print(f"FAIL  {name}: {detail}")


def free_port():
    # A client port whose bus port (+10000) is free as well.
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p > 55000:
            continue
        try:
            b = socket.socket()
            b.bind(("127.0.0.1", p + 10000))
            b.close()
            return p
        except OSError:
            continue


def start(kind, port, work):
    d = os.path.join(work, f"{kind}-{port}")
    os.makedirs(d, exist_ok=True)
    log = open(os.path.join(d, "log"), "w")
    if kind == "redlog":
        cmd = [REDLOG, "--port", str(port), "--dir", d, "--cluster-enabled", "yes",
               "--cluster-node-timeout", "5000"]
    else:
        cmd = ["redis-server", "--port", str(port), "--dir", d, "--cluster-enabled", "yes",
               "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no"]
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    for _ in range(200):
        try:
            if redis.Redis(port=port).ping():
                return p
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
        except redis.exceptions.BusyLoadingError:
            time.sleep(0.05)
    raise RuntimeError(f"{kind} on {port} did not start")


def cli(*args, timeout=300):
    r = subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def wait_ok(ports, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        states = []
        for p in ports:
            info = redis.Redis(port=p).execute_command("CLUSTER", "INFO")
            if isinstance(info, bytes):
                info = info.decode()
            states.append("cluster_state:ok" in info)
        if all(states):
            return True
        time.sleep(0.2)
    return False


def raw(port, *args):
    """The first line of the reply to one command, as sent (no client library
    in between)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
    data = b""
    while not data.endswith(b"\r\n"):
        data += s.recv(4096)
    s.close()
    return data.split(b"\r\n")[0].decode()


def node_id(port):
    return redis.Redis(port=port).execute_command("CLUSTER", "MYID").decode()


def create(ports, label):
    rc, out = cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes")
    check(f"{label}: redis-cli --cluster create", rc == 0 and "[OK] All 16384 slots covered." in out, out[-2000:])
    check(f"{label}: every node reaches cluster_state:ok", wait_ok(ports))
    cluster_check(ports[0], label)


def cluster_check(port, label):
    # Nodes agree once the last configuration has been gossiped.
    out = ""
    for _ in range(50):
        rc, out = cli("--cluster", "check", f"127.0.0.1:{port}")
        if rc == 0 and "[ERR]" not in out and "[WARNING]" not in out:
            break
        time.sleep(0.2)
    check(f"{label}: redis-cli --cluster check is clean",
          rc == 0 and "[ERR]" not in out and "[WARNING]" not in out, out[-2000:])


def every_type(rc, prefix):
    rc.set(f"{prefix}:str", "v")
    rc.rpush(f"{prefix}:list", "a", "b", "c")
    rc.hset(f"{prefix}:hash", mapping={"f1": "1", "f2": "2"})
    rc.sadd(f"{prefix}:set", "x", "y")
    rc.zadd(f"{prefix}:zset", {"m1": 1, "m2": 2})
    rc.xadd(f"{prefix}:stream", {"f": "v"}, id="1-1")
    rc.pfadd(f"{prefix}:hll", "a", "b", "c")
    rc.geoadd(f"{prefix}:geo", (13.361389, 38.115556, "Palermo"))
    rc.setbit(f"{prefix}:bits", 7, 1)
    rc.set(f"{prefix}:ttl", "t", ex=1000)
    got = (
        rc.get(f"{prefix}:str"),
        rc.lrange(f"{prefix}:list", 0, -1),
        rc.hgetall(f"{prefix}:hash"),
        rc.smembers(f"{prefix}:set"),
        rc.zrange(f"{prefix}:zset", 0, -1, withscores=True),
        rc.xrange(f"{prefix}:stream"),
        rc.pfcount(f"{prefix}:hll"),
        rc.geopos(f"{prefix}:geo", "Palermo") is not None,
        rc.getbit(f"{prefix}:bits", 7),
        rc.ttl(f"{prefix}:ttl") > 900,
    )
    want = (
        b"v", [b"a", b"b", b"c"], {b"f1": b"1", b"f2": b"2"}, {b"x", b"y"},
        [(b"m1", 1.0), (b"m2", 2.0)], [(b"1-1", {b"f": b"v"})], 3, True, 1, True,
    )
    return got, want


def reshard_while_writing(ports, src, dst, nslots, label):
    """Moves nslots from src to dst with redis-cli while a client writes."""
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports])
    written = {}
    stop = threading.Event()
    errors = []

    def writer():
        c = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports])
        i = 0
        while not stop.is_set():
            k = f"{label}:w:{i}"
            try:
                c.set(k, str(i))
                written[k] = str(i)
            except Exception as e:  # a write that failed is not expected
                errors.append(repr(e))
            i += 1
        c.close()

    # Keys in the slots that will move.
    for i in range(2000):
        rc.set(f"{label}:pre:{i}", str(i))
        written[f"{label}:pre:{i}"] = str(i)
    t = threading.Thread(target=writer)
    t.start()
    code, out = cli("--cluster", "reshard", f"127.0.0.1:{ports[0]}", "--cluster-from", node_id(src),
                    "--cluster-to", node_id(dst), "--cluster-slots", str(nslots), "--cluster-yes",
                    timeout=600)
    time.sleep(0.5)
    stop.set()
    t.join()
    check(f"{label}: redis-cli --cluster reshard {nslots} slots", code == 0, out[-2000:])
    check(f"{label}: writes during the reshard all succeeded", not errors, errors[:3])
    missing = [k for k, v in written.items() if rc.get(k) != v.encode()]
    check(f"{label}: every key written is read back ({len(written)} keys)", not missing, missing[:5])
    # The per-slot index agrees with the keys each node holds.
    for p in ports:
        r = redis.Redis(port=p)
        pipe = r.pipeline(transaction=False)
        for slot in range(16384):
            pipe.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
        counted = sum(pipe.execute())
        check(f"{label}: node {p}: COUNTKEYSINSLOT over all slots = DBSIZE", counted == r.dbsize(),
              f"{counted} != {r.dbsize()}")
    rc.close()


def main():
    work = tempfile.mkdtemp()
    try:
        # ---- three redlog primaries
        ports = [free_port() for _ in range(3)]
        for p in ports:
            start("redlog", p, work)
        create(ports, "redlog")
        r0 = redis.Redis(port=ports[0])
        # Redirections as Redis sends them.
        slot = r0.execute_command("CLUSTER", "KEYSLOT", "foo")
        owner = None
        slots = r0.execute_command("CLUSTER", "SLOTS")
        for s in slots:
            if s[0] <= slot <= s[1]:
                owner = s[2][1]
        other = next(p for p in ports if p != owner)
        got = raw(other, "GET", "foo")
        check("redlog: -MOVED from a node not owning the slot", got == f"-MOVED {slot} 127.0.0.1:{owner}", got)
        got = raw(owner, "MSET", "a", "1", "b", "2")
        check("redlog: -CROSSSLOT", got == "-CROSSSLOT Keys in request don't hash to the same slot", got)
        check("redlog: same-slot multi-key command served", raw(owner, "MGET", "{foo}1", "{foo}2") == "*2", "")
        try:
            redis.Redis(port=owner).execute_command("SELECT", "1")
            check("redlog: SELECT refused", False, "no error")
        except redis.exceptions.ResponseError as e:
            check("redlog: SELECT refused", str(e) == "SELECT is not allowed in cluster mode", str(e))
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", ports[0])])
        got, want = every_type(rc, "{t}")
        check("redlog: RedisCluster writes and reads every type", got == want, f"{got} != {want}")
        for i in range(300):
            rc.set(f"k{i}", i)
        check("redlog: RedisCluster reads 300 keys across nodes",
              all(rc.get(f"k{i}") == str(i).encode() for i in range(300)))
        n = sum(redis.Redis(port=p).execute_command("CLUSTER", "COUNTKEYSINSLOT", rc.keyslot("{t}")) for p in ports)
        check("redlog: COUNTKEYSINSLOT", n == 10, n)
        rc.close()
        reshard_while_writing(ports, ports[0], ports[1], 1000, "redlog")
        cluster_check(ports[0], "redlog after reshard")

        # ---- mixed: two redis-server and two redlog primaries
        mports = [free_port() for _ in range(4)]
        kinds = ["redis-server", "redlog", "redis-server", "redlog"]
        for k, p in zip(kinds, mports):
            start(k, p, work)
        create(mports, "mixed")
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", mports[0])])
        got, want = every_type(rc, "{m}")
        check("mixed: RedisCluster writes and reads every type", got == want, f"{got} != {want}")
        for i in range(300):
            rc.set(f"mk{i}", i)
        check("mixed: RedisCluster reads 300 keys across nodes",
              all(rc.get(f"mk{i}") == str(i).encode() for i in range(300)))
        rc.close()
        reshard_while_writing(mports, mports[0], mports[1], 500, "mixed redis->redlog")
        cluster_check(mports[0], "mixed after redis->redlog")
        reshard_while_writing(mports, mports[3], mports[2], 500, "mixed redlog->redis")
        cluster_check(mports[0], "mixed after redlog->redis")
    finally:
        for p in PROCS:
            p.terminate()
        for p in PROCS:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if FAILED:
            for d in os.listdir(work):
                logf = os.path.join(work, d, "log")
                if os.path.exists(logf):
                    print(f"--- {d}/log (tail)")
                    print("".join(open(logf).readlines()[-15:]))
        shutil.rmtree(work, ignore_errors=True)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
