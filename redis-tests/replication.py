#!/usr/bin/env python3
"""Replication with a real redis-server 7.0 on the other end (issue 20).

    python3 redis-tests/replication.py path/to/redlog [redis-server|redlog]

redlog is the primary, redis-server 7.0 its replica (`--replicaof`):

1. Data of every type written before the link is up (strings with TTLs,
   lists, hashes, sets, zsets, a stream with a group and a PEL), then the
   replica attaches (full resync, disk-less RDB with the EOF mark), then
   more writes of every kind go through the command stream (MULTI/EXEC,
   SELECT, expiries, LINSERT, pops, FLUSHDB ..., and every stream command
   that changes a stream: XADD with * and explicit ids, approximate and
   MINID trimming, XDEL, XTRIM, XSETID, XGROUP's subcommands, XREADGROUP
   with and without NOACK and blocked, XACK, XCLAIM, XAUTOCLAIM, inside
   MULTI and EVAL too, and streams copied or renamed (sent whole) then
   changed in the same transaction, script or pipelined batch): both keyspaces are compared key by key (DUMP
   payloads where the encodings match, else values and TTLs; streams by
   XRANGE and XINFO STREAM FULL but for consumers' seen-time, a wall
   clock, the radix tree's node and key counts, each server's own layout,
   and groups' entries-read and lag, which a Redis 7.0 replica does not
   get from an XREADGROUP either).
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
import subprocess
import sys
import threading
import time

import redis

import harness
from harness import check, free_port, wait_for

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"
# The replica's kind: redis-server (default) or redlog.
REPLICA = sys.argv[2] if len(sys.argv) > 2 else "redis-server"


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
    harness.PROCS.append(p)
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


def write_streams_live(r, port):
    """Stream changes after the link is up: each must reach the replica as
    Redis 7.0 propagates it."""
    k = "live:s"
    for i in range(300):
        r.xadd(k, {"n": i})  # * ids
    r.xadd(k, {"x": 1}, maxlen=250, approximate=True)
    r.xadd(k, {"x": 2}, maxlen=240)
    r.xtrim(k, maxlen=100, approximate=True)
    r.xtrim(k, maxlen=90)
    # LIMIT stays in the rewritten command: the replica ignores it.
    r.execute_command("XADD", k, "MAXLEN", "~", 80, "LIMIT", 5, "*", "y", 1)
    r.execute_command("XTRIM", k, "MAXLEN", "~", 85, "LIMIT", 3)
    first = r.xrange(k, count=3)
    r.xadd(k, {"x": 3}, minid=first[2][0], approximate=True)
    r.xtrim(k, minid=r.xrange(k, count=5)[4][0])
    r.xdel(k, r.xrange(k, count=1)[0][0], "1-1")
    e = "live:explicit"
    r.xadd(e, {"f": "v"}, id="1-1")
    r.xadd(e, {"f": "v"}, id="2-*")
    r.xadd(e, {"f": "v"}, id="5")
    r.xadd(e, {"f": "v"}, id="7-3", minid="2-0")
    r.xadd(e, {"f": "v"})
    r.execute_command("XSETID", e, "99999999999999-5", "ENTRIESADDED", 40,
                      "MAXDELETEDID", "3-0")
    # Groups.
    r.xgroup_create(k, "g", id="$")
    r.xgroup_create(k, "g2", id="0", entries_read=0)
    r.xgroup_create("live:mk", "g", id="$", mkstream=True)
    r.xgroup_setid(k, "g", id="0")
    r.xgroup_createconsumer(k, "g", "c1")
    r.xgroup_createconsumer(k, "g", "c1")
    r.xgroup_createconsumer(k, "g", "gone")
    r.xgroup_delconsumer(k, "g", "gone")
    r.xgroup_delconsumer(k, "g", "nosuch")
    r.xgroup_create(k, "g3", id="0")
    r.xgroup_destroy(k, "g3")
    r.xgroup_destroy(k, "nosuch")
    r.xreadgroup("g", "c1", {k: ">"}, count=2)
    r.xreadgroup("g", "c2", {k: ">"}, count=5)
    r.xreadgroup("g2", "n1", {k: ">"}, count=4, noack=True)
    r.xreadgroup("g2", "n2", {k: ">"}, count=1, noack=True)
    pel = r.xpending_range(k, "g", "-", "+", 100)
    r.xack(k, "g", pel[0]["message_id"], "1-1")
    # XCLAIM: claimed, JUSTID, RETRYCOUNT, a deleted entry, LASTID alone.
    r.xclaim(k, "g", "c3", 0, [pel[1]["message_id"]])
    r.xclaim(k, "g", "c3", 0, [pel[2]["message_id"]], justid=True)
    r.xclaim(k, "g", "c4", 0, [pel[3]["message_id"]], retrycount=7, idle=5)
    r.xdel(k, pel[4]["message_id"])
    r.xclaim(k, "g", "c5", 0, [pel[4]["message_id"]])
    r.execute_command("XCLAIM", k, "g", "c5", 0, "1-1", "LASTID",
                      r.xrevrange(k, count=3)[-1][0])
    # XAUTOCLAIM with a deleted entry in the PEL.
    r.xdel(k, pel[5]["message_id"])
    r.xautoclaim(k, "g", "c6", 0, count=3)
    r.xautoclaim(k, "g", "c7", 0, justid=True)
    # A blocked XREADGROUP served by an XADD.
    b = "live:block"
    r.xgroup_create(b, "g", id="$", mkstream=True)
    waiter = redis.Redis(port=port)
    out = []
    t = threading.Thread(target=lambda: out.append(
        waiter.xreadgroup("g", "w", {b: ">"}, block=5000)))
    t.start()
    wait_for(lambda: r.info("clients")["blocked_clients"] == 1, 5)
    r.xadd(b, {"wake": 1})
    t.join()
    check("blocked XREADGROUP served by an XADD", bool(out and out[0]), repr(out))
    # MULTI: a stream created and read in one transaction.
    p = r.pipeline(transaction=True)
    p.xadd("live:multi", {"a": 1})
    p.xadd("live:multi", {"a": 2})
    p.xgroup_create("live:multi", "g", id="0")
    p.xreadgroup("g", "m", {"live:multi": ">"}, count=1)
    p.xadd(k, {"in": "multi"}, maxlen=50, approximate=True)
    p.execute()
    # EVAL: the same from a script.
    r.eval("redis.call('XADD', KEYS[1], '*', 'a', 1) "
           "redis.call('XGROUP', 'CREATE', KEYS[1], 'g', '0') "
           "redis.call('XREADGROUP', 'GROUP', 'g', 'e', 'NOACK', 'STREAMS', KEYS[1], '>') "
           "redis.call('XADD', KEYS[1], '*', 'a', 2) "
           "redis.call('XREADGROUP', 'GROUP', 'g', 'f', 'STREAMS', KEYS[1], '>') "
           "return 1", 1, "live:eval")
    # A stream sent whole (COPY, RENAME: a RESTORE of the stream as it is
    # at the end of the batch) then changed in the same transaction,
    # script or pipelined batch: the change reaches the replica once.
    p = r.pipeline(transaction=True)
    p.copy(k, "live:copy")
    p.xadd("live:copy", {"after": "copy"})
    p.xgroup_create("live:copy", "copied", id="0")
    p.execute()
    r.eval("redis.call('COPY', KEYS[1], KEYS[2]) "
           "redis.call('XADD', KEYS[2], '*', 'b', 1) "
           "redis.call('RENAME', KEYS[2], KEYS[3]) "
           "redis.call('XADD', KEYS[3], '*', 'c', 1) "
           "redis.call('COPY', KEYS[3], KEYS[4]) "
           "redis.call('XADD', KEYS[4], '*', 'd', 1) "
           "redis.call('DEL', KEYS[4]) "
           "redis.call('XADD', KEYS[4], '*', 'e', 1) return 1",
           4, k, "live:copy2", "live:copy3", "live:copy4")
    p = r.pipeline(transaction=False)
    p.copy(k, "live:copy5")
    p.xadd("live:copy5", {"p": 1})
    p.xtrim("live:copy5", maxlen=10)
    p.execute()
    # Another database.
    redis.Redis(port=port, db=2).xadd("live:db2", {"a": 1})


def stream_full(c, k):
    """XINFO STREAM FULL without what legitimately differs between two
    servers: consumers' seen-time (each server's clock when it saw the
    consumer), the radix tree's key and node counts (its layout), and a
    group's entries-read and lag: Redis 7.0 propagates an XREADGROUP
    delivery as XCLAIM ... LASTID, which leaves the replica's entries-read
    unknown (nil; checked with a redis-server primary and replica)."""
    drop = {"seen-time", "radix-tree-keys", "radix-tree-nodes", "entries-read", "lag"}

    def norm(v):
        if isinstance(v, dict):
            return sorted((norm(a), norm(b)) for a, b in v.items()
                          if (a.decode() if isinstance(a, bytes) else a) not in drop)
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v
    return norm(c.xinfo_stream(k, full=True))


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
                                   for g in groups], stream_full(c, k))
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
    harness.main("redlog-repl-", run)


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
    write_streams_live(pr, pport)
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
