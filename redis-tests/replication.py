#!/usr/bin/env python3
"""Replication with a real redis-server 7.0 on the other end (issue 20).

    python3 redis-tests/replication.py path/to/redlog [redis-server|redlog]

redlog is the primary, redis-server 7.0 its replica (`--replicaof`):

1. Data of every type written before the link is up (strings with TTLs,
   lists, hashes, sets, zsets, a stream with a group and a PEL), then the
   replica attaches (full resync, disk-less RDB with the EOF mark), then
   more writes of every kind but streams go through the command stream
   (MULTI/EXEC, SELECT, expiries, LINSERT, pops, FLUSHDB ...; stream
   changes are not propagated yet): both keyspaces are compared key by
   key (DUMP payloads where the encodings match, else values and TTLs).
2. WAIT returns the number of replicas that acknowledged; with
   `min-replicas-to-write` writes are refused with -NOREPLICAS when too
   few replicas are good.
3. `CLIENT KILL TYPE replica`: the replica reconnects and continues with
   a partial resync (+CONTINUE, checked in its log), and nothing is lost.

`start_primary` / `start_replica` take the kind ("redlog" or
"redis-server"), so the roles can be swapped once redlog replicates too.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"
# The replica's kind: redis-server (default) or redlog.
REPLICA = sys.argv[2] if len(sys.argv) > 2 else "redis-server"
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
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(kind, port, work, extra=()):
    d = os.path.join(work, f"{kind}-{port}")
    os.makedirs(d, exist_ok=True)
    logpath = os.path.join(d, "log")
    log = open(logpath, "w")
    if kind == "redlog":
        cmd = [REDLOG, "--port", str(port), "--dir", d, *extra]
    else:
        cmd = ["redis-server", "--port", str(port), "--dir", d, "--save", "",
               "--appendonly", "no", *extra]
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    for _ in range(200):
        try:
            if redis.Redis(port=port).ping():
                return p, logpath
        except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{kind} on port {port} did not start")


def start_primary(kind, port, work, extra=()):
    return start(kind, port, work, extra)


def start_replica(kind, port, primary_port, work, extra=()):
    return start(kind, port, work, ["--replicaof", "127.0.0.1", str(primary_port), *extra])


def wait_for(cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return True
        except redis.exceptions.RedisError:
            pass
        time.sleep(0.05)
    return False


def link_up(r):
    return r.info("replication").get("master_link_status") == "up"


def write_all_types(r, tag):
    """Writes of every type, several paths each (whole values, operations)."""
    now_ms = int(time.time() * 1000)
    r.set(f"{tag}:s", "value")
    r.set(f"{tag}:int", 12345)
    r.set(f"{tag}:ttl", "v", px=600000)
    r.set(f"{tag}:ttl2", "v")
    r.pexpireat(f"{tag}:ttl2", now_ms + 900000)
    r.set(f"{tag}:persist", "v", ex=1000)
    r.persist(f"{tag}:persist")
    r.append(f"{tag}:s", "-more")
    r.setrange(f"{tag}:s", 2, "XY")
    r.incrbyfloat(f"{tag}:f", 1.5)
    r.rpush(f"{tag}:l", *[f"e{i}" for i in range(10)])
    r.lpush(f"{tag}:l", "head")
    r.lpop(f"{tag}:l")
    r.rpop(f"{tag}:l", 2)
    r.lset(f"{tag}:l", 1, "set")
    r.linsert(f"{tag}:l", "BEFORE", "e4", "ins")
    r.rpush(f"{tag}:l", "e2")
    r.lrem(f"{tag}:l", 1, "e2")
    r.ltrim(f"{tag}:l", 0, 6)
    r.rpush(f"{tag}:big", *[f"x{i}" * 20 for i in range(300)])
    r.hset(f"{tag}:h", mapping={f"f{i}": i for i in range(20)})
    r.hdel(f"{tag}:h", "f3")
    r.hincrby(f"{tag}:h", "f1", 10)
    r.hincrbyfloat(f"{tag}:h", "f2", 0.25)
    r.hset(f"{tag}:bigh", mapping={f"f{i}": "v" * 100 for i in range(200)})
    r.sadd(f"{tag}:set", *range(50))
    r.srem(f"{tag}:set", 7)
    r.sadd(f"{tag}:sset", "a", "b", "c")
    r.spop(f"{tag}:sset")
    r.zadd(f"{tag}:z", {f"m{i}": i * 1.5 for i in range(30)})
    r.zincrby(f"{tag}:z", 0.1, "m1")
    r.zrem(f"{tag}:z", "m2")
    r.zpopmin(f"{tag}:z")
    r.zadd(f"{tag}:bigz", {f"m{i}": i for i in range(300)})
    r.pfadd(f"{tag}:hll", *range(100))
    r.setbit(f"{tag}:bits", 100, 1)
    r.rename(f"{tag}:int", f"{tag}:renamed")
    r.copy(f"{tag}:h", f"{tag}:hcopy")
    r.set(f"{tag}:gone", "x")
    r.delete(f"{tag}:gone")
    p = r.pipeline(transaction=True)
    p.set(f"{tag}:tx1", "a")
    p.incr(f"{tag}:tx2")
    p.rpush(f"{tag}:txl", "a", "b")
    p.execute()
    r.execute_command("SELECT", 3)
    r.set(f"{tag}:db3", "three")
    r.execute_command("SELECT", 0)


def write_stream(r, tag):
    key = f"{tag}:stream"
    for i in range(20):
        r.xadd(key, {"n": i, "tag": tag}, id=f"{1000 + i}-0")
    r.xgroup_create(key, "g", id="0")
    r.xreadgroup("g", "alice", {key: ">"}, count=5)
    r.xreadgroup("g", "bob", {key: ">"}, count=3)
    r.xack(key, "g", "1000-0")


def keyspace(r):
    """Every key of every database: (db, key) -> (type, value, ttl-ish, dump)."""
    out = {}
    for db in range(16):
        c = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=db)
        for k in c.scan_iter(count=1000):
            t = c.type(k).decode()
            if t == "string":
                v = c.get(k)
            elif t == "list":
                v = c.lrange(k, 0, -1)
            elif t == "hash":
                v = sorted(c.hgetall(k).items())
            elif t == "set":
                v = sorted(c.smembers(k))
            elif t == "zset":
                v = c.zrange(k, 0, -1, withscores=True)
            elif t == "stream":
                groups = c.xinfo_groups(k)
                v = (c.xrange(k), [(g["name"], g["pending"], g["last-delivered-id"])
                                   for g in groups],
                     [c.xpending_range(k, g["name"], "-", "+", 1000) for g in groups])
                v = repr(v)
            else:
                v = None
            pexp = c.execute_command("PEXPIRETIME", k)
            enc = c.object("encoding", k)
            out[(db, k)] = (t, v, pexp, enc, c.dump(k) if t != "stream" else None)
    return out


def compare(a, b):
    """Differences between two keyspaces: same keys, values, absolute
    expiries; DUMP payloads equal where both report the same encoding."""
    diffs = []
    for k in sorted(set(a) | set(b), key=repr):
        if k not in a or k not in b:
            diffs.append(f"{k}: only on {'primary' if k in a else 'replica'}")
            continue
        ta, va, ea, enca, da = a[k]
        tb, vb, eb, encb, db_ = b[k]
        if (ta, va, ea) != (tb, vb, eb):
            diffs.append(f"{k}: {(ta, va, ea)!r} != {(tb, vb, eb)!r}")
        elif enca == encb and enca != b"hashtable" and da is not None and da != db_:
            # Hash tables iterate in each server's own order.
            diffs.append(f"{k}: DUMP payloads differ ({enca})")
    return diffs


def main():
    work = tempfile.mkdtemp(prefix="redlog-repl-")
    try:
        run(work)
    finally:
        for p in PROCS:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


def run(work):
    pport, rport = free_port(), free_port()
    _, plog = start_primary("redlog", pport, work,
                            ["--repl-ping-replica-period", "1"])
    pr = redis.Redis(port=pport)
    write_all_types(pr, "before")
    write_stream(pr, "before")
    pr.function_load("#!lua name=libbefore\nredis.register_function('fb', function() return 1 end)")

    _, rlog = start_replica(REPLICA, rport, pport, work)
    rr = redis.Redis(port=rport)
    check(f"{REPLICA} replica: link up after a full resync", wait_for(lambda: link_up(rr)),
          open(rlog).read()[-2000:])
    log = open(rlog).read()
    check("full resync is disk-less with the EOF mark",
          "Full resync from master" in log and "EOF" in log, log[-1500:])

    write_all_types(pr, "after")
    pr.execute_command("SELECT", 0)
    # Expiry on the primary reaches the replica as a DEL.
    pr.set("after:short", "x", px=100)
    time.sleep(0.3)
    pr.get("after:short")
    pr.flushdb()  # db 0 only: db 3 keeps its keys
    write_all_types(pr, "again")
    pr.function_load("#!lua name=libafter\nredis.register_function('fa', function() return 2 end)")

    n = pr.execute_command("WAIT", 1, 5000)
    check("WAIT 1 5000 answers 1 once the replica acknowledged", n == 1, repr(n))
    same = wait_for(lambda: not compare(keyspace(pr), keyspace(rr)), 5)
    diffs = compare(keyspace(pr), keyspace(rr))
    check(f"keyspaces equal key by key ({len(keyspace(pr))} keys)", same and not diffs,
          "\n".join(diffs[:15]))
    # FUNCTION LIST entries are flat [name, value, ...] lists in RESP2.
    libs = sorted(dict(zip(lib[::2], lib[1::2]))[b"library_name"]
                  for lib in rr.function_list())
    check("FUNCTION libraries replicated (RDB and stream)", libs == [b"libafter", b"libbefore"],
          repr(libs))
    pi, ri = pr.info("replication"), rr.info("replication")
    check("offsets agree (master_repl_offset)",
          wait_for(lambda: rr.info("replication")["master_repl_offset"]
                   == pr.info("replication")["master_repl_offset"]),
          f"{pi.get('master_repl_offset')} vs {ri.get('master_repl_offset')}")
    check("INFO slave0 line and CLIENT LIST flags=S",
          pi.get("connected_slaves") == 1 and "slave0" in pi
          and b"flags=S" in pr.execute_command("CLIENT", "LIST", "TYPE", "replica"),
          repr(pi))
    n = pr.execute_command("WAIT", 2, 300)
    check("WAIT 2 300 times out with the one replica", n == 1, repr(n))

    # min-replicas-to-write
    pr.config_set("min-replicas-to-write", 2)
    try:
        pr.set("refused", "x")
        check("min-replicas-to-write 2 refuses writes", False, "SET succeeded")
    except redis.exceptions.ResponseError as e:
        check("min-replicas-to-write 2 refuses writes with -NOREPLICAS",
              str(e) == "NOREPLICAS Not enough good replicas to write.", str(e))
    pr.config_set("min-replicas-to-write", 1)
    check("min-replicas-to-write 1 accepts writes", pr.set("accepted", "x"))
    pr.config_set("min-replicas-to-write", 0)

    # Partial resync after the link is killed.
    killed = pr.execute_command("CLIENT", "KILL", "TYPE", "replica")
    check("CLIENT KILL TYPE replica kills the replica link", killed == 1, repr(killed))
    for i in range(100):
        pr.set(f"during:{i}", i)
    pr.rpush("during:list", *range(10))
    check("replica reconnects", wait_for(lambda: link_up(rr) and
                                         pr.info("replication")["connected_slaves"] == 1))
    log = open(rlog).read()
    check("reconnection is a partial resync (+CONTINUE)",
          "Successful partial resynchronization with master" in log, log[-1500:])
    pr.execute_command("WAIT", 1, 5000)
    same = wait_for(lambda: not compare(keyspace(pr), keyspace(rr)), 5)
    diffs = compare(keyspace(pr), keyspace(rr))
    check("keyspaces equal after the partial resync", same and not diffs,
          "\n".join(diffs[:15]))
    plog_text = open(plog).read()
    check("primary logged no propagation error",
          "cannot propagate" not in plog_text and "cannot decode" not in plog_text,
          plog_text[-1500:])
    check("replica logged no error from its master",
          "sending an error to its master" not in open(rlog).read(),
          open(rlog).read()[-1500:])


if __name__ == "__main__":
    main()
