#!/usr/bin/env python3
"""Replication, replica side: redlog as a replica of a real redis-server 7.0.

    python3 redis-tests/replica.py path/to/redlog

1. A redis-server primary (disk-less sync) holding every type (strings with
   TTLs, lists, hashes, sets, zsets, streams with groups and PELs, several
   databases); REPLICAOF on redlog; more writes once the link is up (MULTI,
   scripts, stream group commands, expiries, deletions); both keyspaces
   compared key by key once the offsets match.
2. INFO replication, ROLE, CLIENT LIST flags=M; READONLY refusals.
3. The link killed (CLIENT KILL TYPE replica on the primary, CLIENT KILL
   TYPE master on redlog): partial resyncs (`sync_partial_ok`), data equal.
4. A clean restart of redlog with `--replicaof`: partial resync from its
   own WAL.
5. REPLICAOF NO ONE: promoted, `master_replid2` is the primary's id.
6. A fake primary (python) sending a corrupt, then a truncated RDB: refused,
   retried, the old data still served.

The primary and the replica are started by `start_primary` / `start_replica`
which take the kind ("redis" or "redlog"), so the roles can be swapped.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import os
import socket
import subprocess
import sys
import threading
import time

import redis

import harness
from harness import check, free_port, wait_for

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"


def start(kind, port, work, extra=()):
    d = os.path.join(work, f"{kind}-{port}")
    os.makedirs(d, exist_ok=True)
    log = open(os.path.join(d, "log"), "a")
    if kind == "redlog":
        cmd = [REDLOG, "--port", str(port), "--dir", d]
    else:
        cmd = ["redis-server", "--port", str(port), "--dir", d, "--save", "",
               "--appendonly", "no", "--repl-diskless-sync", "yes",
               "--repl-diskless-sync-delay", "0"]
    p = subprocess.Popen(cmd + list(extra), stdout=log, stderr=subprocess.STDOUT)
    harness.PROCS.append(p)
    for _ in range(300):
        try:
            if redis.Redis(port=port).ping():
                return p
        except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{kind} on port {port} did not start")


def start_primary(kind, work):
    port = free_port()
    return port, start(kind, port, work)


def start_replica(kind, work, extra=()):
    port = free_port()
    return port, start(kind, port, work, extra)


def info(r, section="replication"):
    return r.info(section)


def in_sync(p, r):
    """The replica is up and has processed everything the primary sent."""
    pi, ri = info(p), info(r)
    return (ri.get("master_link_status") == "up"
            and ri.get("slave_repl_offset") == pi.get("master_repl_offset"))


def wait_sync(p, r, timeout=20.0):
    # A PING from the primary may move its offset: retry until stable.
    return wait_for(lambda: in_sync(p, r), timeout)


def stream_state(c, key):
    """A stream's entries, ids, groups, consumers and pending entries
    (delivery times left out: they are the primary's clock)."""
    d = c.xinfo_stream(key, full=True)
    groups = []
    for g in d.get("groups") or []:
        pel = [(x[0], x[1], x[3]) for x in g["pending"]]
        consumers = sorted((cc[b"name"], [(x[0], x[2]) for x in cc[b"pending"]])
                           for cc in g["consumers"])
        # entries-read is left out: Redis 7.0 propagates XREADGROUP as
        # XCLAIM ... LASTID, which leaves it unknown on a replica (a
        # redis-server replica shows nil where its primary counts).
        groups.append((g["name"], g["last-delivered-id"], pel, consumers))
    return (c.xrange(key), d["last-generated-id"], d["length"], d["max-deleted-entry-id"],
            d["entries-added"], sorted(groups))


def value_of(c, key):
    t = c.type(key)
    if t == b"string":
        v = c.get(key)
    elif t == b"list":
        v = c.lrange(key, 0, -1)
    elif t == b"hash":
        v = sorted(c.hgetall(key).items())
    elif t == b"set":
        v = sorted(c.smembers(key))
    elif t == b"zset":
        v = c.zrange(key, 0, -1, withscores=True)
    elif t == b"stream":
        v = stream_state(c, key)
    else:
        v = None
    return t, v


def compare(pport, rport, dbs=(0, 3)):
    """Every key of both servers: type, value, expiry (absolute, 2 s slack
    for the PXAT rounding of relative TTLs). Returns a list of differences."""
    diffs = []
    for db in dbs:
        p = redis.Redis(port=pport, db=db)
        r = redis.Redis(port=rport, db=db)
        pk, rk = sorted(p.keys("*")), sorted(r.keys("*"))
        if pk != rk:
            diffs.append(f"db{db} keys differ: only primary {set(pk) - set(rk)}, "
                         f"only replica {set(rk) - set(pk)}")
            continue
        for k in pk:
            if value_of(p, k) != value_of(r, k):
                diffs.append(f"db{db} {k!r}: {value_of(p, k)!r} != {value_of(r, k)!r}")
            pt, rt = p.pexpiretime(k), r.pexpiretime(k)
            if (pt < 0) != (rt < 0) or abs(pt - rt) > 2000:
                diffs.append(f"db{db} {k!r} expiry {pt} != {rt}")
    return diffs


def write_all_types(c, tag):
    c.set(f"s:{tag}", "v")
    c.set(f"ttl:{tag}", "x", ex=1000)
    c.set(f"pttl:{tag}", "y", px=500000)
    c.set(f"int:{tag}", 42)
    c.incrby(f"int:{tag}", 5)
    c.append(f"s:{tag}", "-appended")
    c.rpush(f"l:{tag}", *[f"e{i}" for i in range(20)])
    c.lpop(f"l:{tag}")
    c.lset(f"l:{tag}", 3, "changed")
    c.rpush(f"biglist:{tag}", *["x" * 100 for _ in range(300)])
    c.hset(f"h:{tag}", mapping={f"f{i}": i for i in range(10)})
    c.hdel(f"h:{tag}", "f3")
    c.hset(f"bigh:{tag}", mapping={f"f{i}": "v" * 80 for i in range(200)})
    c.sadd(f"set:{tag}", *range(30))
    c.sadd(f"sset:{tag}", "a", "b", "c")
    c.srem(f"sset:{tag}", "b")
    c.zadd(f"z:{tag}", {f"m{i}": i * 1.5 for i in range(50)})
    c.zincrby(f"z:{tag}", 10, "m1")
    c.zadd(f"bigz:{tag}", {f"m{i}" * 10: i for i in range(200)})
    c.expire(f"h:{tag}", 3000)
    sk = f"x:{tag}"
    for i in range(30):
        c.xadd(sk, {"n": i, "tag": tag})
    c.xgroup_create(sk, "g1", id="0")
    c.xgroup_create(sk, "g2", id="$")
    c.xreadgroup("g1", "alice", {sk: ">"}, count=5)
    c.xreadgroup("g1", "bob", {sk: ">"}, count=3)
    ids = [e[0] for e in c.xrange(sk, count=2)]
    c.xack(sk, "g1", ids[0])
    c.xclaim(sk, "g1", "carol", 0, [ids[1]])
    c.xdel(sk, c.xrange(sk)[-1][0])
    c.xgroup_createconsumer(sk, "g2", "dave")
    c.xadd(f"trim:{tag}", {"a": 1}, maxlen=5)
    for i in range(10):
        c.xadd(f"trim:{tag}", {"a": i}, maxlen=5, approximate=False)
    c.set(f"gone:{tag}", 1)
    c.delete(f"gone:{tag}")
    c3 = redis.Redis(port=c.connection_pool.connection_kwargs["port"], db=3)
    c3.set(f"db3:{tag}", "three")
    c3.rpush(f"db3l:{tag}", 1, 2, 3)


def after_link_writes(c):
    write_all_types(c, "after")
    pipe = c.pipeline(transaction=True)
    pipe.set("tx:a", 1)
    pipe.incr("tx:a")
    pipe.rpush("tx:l", "x", "y")
    pipe.execute()
    c.eval("redis.call('set', KEYS[1], ARGV[1]); redis.call('lpush', KEYS[2], ARGV[1])",
           2, "lua:s", "lua:l", "from-lua")
    c.set("exp:soon", 1, px=200)
    c.blpop(["nothing-here"], timeout=0.1)
    c.rpush("moved:src", 1, 2, 3)
    c.lmove("moved:src", "moved:dst", "LEFT", "RIGHT")
    c.zpopmin("z:after")
    c.spop("set:after")
    c.flushdb()  # db 0 emptied on both sides...
    write_all_types(c, "refill")  # ...and refilled


def fake_primary(rdb_payloads, seen):
    """A listening socket speaking just enough of the primary's protocol to
    send, for each connection in turn, one of `rdb_payloads` (bytes sent
    after `+FULLRESYNC`). Records every PSYNC it gets in `seen`."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        i = 0
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            payload = rdb_payloads[min(i, len(rdb_payloads) - 1)]
            i += 1
            f = conn.makefile("rb")
            try:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    if line.startswith(b"*"):
                        n = int(line[1:])
                        args = []
                        for _ in range(n):
                            ln = int(f.readline()[1:])
                            args.append(f.read(ln + 2)[:-2])
                        cmd = args[0].upper()
                        if cmd == b"PING":
                            conn.sendall(b"+PONG\r\n")
                        elif cmd == b"REPLCONF":
                            conn.sendall(b"+OK\r\n")
                        elif cmd == b"PSYNC":
                            seen.append(args)
                            conn.sendall(b"+FULLRESYNC " + b"a" * 40 + b" 100\r\n")
                            conn.sendall(payload)
                            time.sleep(0.2)
                            break
            except OSError:
                pass
            f.close()
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def main():
    harness.main("redlog-replica-", run, keep_on_failure=True)


def run(work):
    pport, _ = start_primary("redis", work)
    rport, rproc = start_replica("redlog", work)
    p = redis.Redis(port=pport)
    r = redis.Redis(port=rport)

    # 1. Data before the link, the link, data after.
    write_all_types(p, "before")
    r.set("replica-own", "dropped by the full sync")
    check("REPLICAOF host port", r.execute_command("REPLICAOF", "127.0.0.1", pport) == b"OK")
    check("REPLICAOF the same primary again",
          r.execute_command("REPLICAOF", "127.0.0.1", pport) == b"OK Already connected to specified master")
    check("full sync: link up and offsets equal", wait_sync(p, r), str(info(r)))
    ri = info(r)
    pi = info(p)
    check("replica takes the primary's replication id",
          ri["master_replid"] == pi["master_replid"], f"{ri['master_replid']} {pi['master_replid']}")
    d = compare(pport, rport)
    check("keyspaces equal after the full sync", not d, "\n".join(d[:10]))
    check("the replica's own key is gone", r.get("replica-own") is None)
    after_link_writes(p)
    check("stream applied: offsets equal", wait_sync(p, r), str(info(r)))
    d = compare(pport, rport)
    check("keyspaces equal after writes on the live link", not d, "\n".join(d[:10]))

    # 2. What a replica shows, and refuses.
    ri = info(r)
    expect = ["role", "master_host", "master_port", "master_link_status",
              "master_last_io_seconds_ago", "master_sync_in_progress",
              "slave_read_repl_offset", "slave_repl_offset", "slave_priority",
              "slave_read_only", "replica_announced", "connected_slaves",
              "master_failover_state", "master_replid", "master_replid2",
              "master_repl_offset", "second_repl_offset", "repl_backlog_active",
              "repl_backlog_size", "repl_backlog_first_byte_offset", "repl_backlog_histlen"]
    check("INFO replication fields and order (as redis-server 7.0's replica)",
          list(ri.keys()) == expect, str(list(ri.keys())))
    role = r.execute_command("ROLE")
    check("ROLE of a replica", role[:4] == [b"slave", b"127.0.0.1", pport, b"connected"]
          and role[4] == ri["slave_repl_offset"], str(role))
    cl = r.execute_command("CLIENT", "LIST", "TYPE", "master")
    check("CLIENT LIST TYPE master: flags=M", b"flags=M" in cl and f":{pport} ".encode() in cl, str(cl))
    try:
        r.set("k", "v")
        check("READONLY write refused", False, "accepted")
    except redis.exceptions.ReadOnlyError as e:
        check("READONLY write refused", str(e) == "You can't write against a read only replica.", str(e))
    try:
        r.eval("return redis.call('set', 'k', 'v')", 0)
        check("READONLY inside a script", False, "accepted")
    except redis.exceptions.ReadOnlyError as e:
        # redis-py strips the READONLY code.
        check("READONLY inside a script",
              str(e).startswith("You can't write against a read only replica. script:"), str(e))
    check("reads are served", r.get("s:refill") == b"v-appended")

    # 3. Link drops: partial resync.
    r.config_set("replica-read-only", "no")
    r.set("own-write", "1")
    check("replica-read-only no: write accepted", r.get("own-write") == b"1")
    r.config_set("replica-read-only", "yes")
    p.execute_command("CLIENT", "KILL", "TYPE", "replica")
    p.set("during-drop", "x")
    p.rpush("l:before", "more")
    check("reconnected after CLIENT KILL TYPE replica", wait_sync(p, r), str(info(r)))
    check("primary counted a partial resync", info(p, "stats")["sync_partial_ok"] == 1,
          str(info(p, "stats")["sync_partial_ok"]))
    r.execute_command("CLIENT", "KILL", "TYPE", "master")
    p.xadd("x:before", {"after": "kill"})
    check("reconnected after CLIENT KILL TYPE master", wait_sync(p, r), str(info(r)))
    check("second partial resync", info(p, "stats")["sync_partial_ok"] == 2,
          str(info(p, "stats")["sync_partial_ok"]))
    r.config_set("replica-read-only", "no")
    r.delete("own-write")
    r.config_set("replica-read-only", "yes")
    d = compare(pport, rport)
    check("keyspaces equal after partial resyncs", not d, "\n".join(d[:10]))

    # 4. A clean restart: partial resync from redlog's own data. The
    # stream's last SELECT (db 3) is not repeated after a partial resync.
    p3 = redis.Redis(port=pport, db=3)
    p3.set("db3-before-restart", 1)
    check("db 3 write applied", wait_sync(p, r), str(info(r)))
    try:
        r.execute_command("SHUTDOWN")
    except redis.exceptions.ConnectionError:
        pass
    rproc.wait(timeout=20)
    p3.set("db3-while-down", "y")
    rproc = start("redlog", rport, work, ["--replicaof", "127.0.0.1", str(pport)])
    r = redis.Redis(port=rport)
    check("restarted replica in sync", wait_sync(p, r), str(info(r)))
    p3.set("db3-after-restart", "z")
    check("restarted replica in sync after a db 3 write", wait_sync(p, r), str(info(r)))
    check("db 3 writes land in db 3", redis.Redis(port=rport, db=3).get("db3-after-restart") == b"z"
          and r.get("db3-after-restart") is None)
    check("restart resynced partially", info(p, "stats")["sync_partial_ok"] == 3
          and info(p, "stats")["sync_full"] == 1, str(info(p, "stats")))
    d = compare(pport, rport)
    check("keyspaces equal after the restart", not d, "\n".join(d[:10]))
    check("CONFIG GET replicaof", r.config_get("replicaof") == {"replicaof": f"127.0.0.1 {pport}"},
          str(r.config_get("replicaof")))

    # 5. Promotion.
    old_id = info(r)["master_replid"]
    off = info(r)["master_repl_offset"]
    check("REPLICAOF NO ONE", r.execute_command("REPLICAOF", "NO", "ONE") == b"OK")
    ri = info(r)
    check("promoted: role master, old id second", ri["role"] == "master"
          and ri["master_replid2"] == old_id and ri["second_repl_offset"] == off + 1
          and ri["master_replid"] != old_id, str(ri))
    check("ROLE of a master", r.execute_command("ROLE") == [b"master", off, []],
          str(r.execute_command("ROLE")))
    r.set("keep", "old data")
    check("promoted replica accepts writes", r.get("keep") == b"old data")

    # 6. Corrupt and truncated RDBs from a fake primary.
    rdb_path = os.path.join(work, "primary.rdb")
    subprocess.run(["redis-cli", "-p", str(pport), "--rdb", rdb_path],
                   check=True, capture_output=True)
    good = open(rdb_path, "rb").read()
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2] ^= 0xFF
    corrupt = bytes(corrupt)
    bad_crc = good[:-8] + bytes(8 - 1) + b"\x01"
    truncated = good[: len(good) // 2]
    for name, payloads in [
        ("a corrupt RDB", [b"$%d\r\n" % len(corrupt) + corrupt]),
        ("an RDB with a wrong checksum", [b"$%d\r\n" % len(bad_crc) + bad_crc]),
        ("a truncated RDB", [b"$%d\r\n" % len(good) + truncated]),
        ("a truncated disk-less RDB", [b"$EOF:" + b"m" * 40 + b"\r\n" + truncated]),
    ]:
        seen = []
        srv = fake_primary(payloads, seen)
        fport = srv.getsockname()[1]
        r.execute_command("REPLICAOF", "127.0.0.1", fport)
        retried = wait_for(lambda: len(seen) >= 2, 15)
        ri = info(r)
        check(f"{name} is refused and the sync retried",
              retried and ri["master_link_status"] == "down", f"{len(seen)} PSYNCs, {ri}")
        check(f"{name}: the old data is still served",
              r.get("keep") == b"old data" and r.get("s:refill") == b"v-appended")
        r.execute_command("REPLICAOF", "NO", "ONE")
        srv.close()
    # replica-serve-stale-data no while the link is down.
    r.execute_command("REPLICAOF", "127.0.0.1", free_port())
    r.config_set("replica-serve-stale-data", "no")
    try:
        r.get("keep")
        check("MASTERDOWN while the link is down", False, "served")
    except redis.exceptions.ResponseError as e:
        check("MASTERDOWN while the link is down",
              isinstance(e, redis.exceptions.MasterDownError)
              and str(e) == "Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
              str(e))
    check("stale commands still served (INFO)", info(r)["master_link_status"] == "down")
    r.config_set("replica-serve-stale-data", "yes")
    check("replica-serve-stale-data yes: served", r.get("keep") == b"old data")
    r.execute_command("REPLICAOF", "NO", "ONE")
    check("redlog still running", rproc.poll() is None)


if __name__ == "__main__":
    main()
