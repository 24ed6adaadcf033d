#!/usr/bin/env python3
"""FAILOVER between a primary and its replica, redlog and redis-server 7.0
in every pairing (issue 20).

    python3 redis-tests/failover.py path/to/redlog

Every scenario runs with redis-server 7.0 on both sides too, so the
expectations are Redis's own behaviour:

- errors: FAILOVER's refusals (syntax, values, no replica, not a replica,
  FORCE without TIMEOUT and TO, on a replica, ABORT with nothing to abort)
  compared reply by reply with redis-server's;
- a failover to a named replica and to any replica: the primary becomes a
  replica of the target, the target a primary under a new replication id
  (the old one second, so the old primary resyncs partially), the data
  equal on both, and later writes on the new primary reach the old one;
  pairings redlog -> redlog, redlog -> redis-server, redis-server -> redlog;
- a write sent during the failover waits, then gets -READONLY;
- a target that cannot catch up (DEBUG SLEEP): TIMEOUT without FORCE
  aborts (still primary, the waiting write then runs), FAILOVER ABORT ends
  a failover that waits, REPLICAOF and a second FAILOVER are refused
  meanwhile, and FORCE fails over at the deadline anyway.

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


def start(kind, work, primary_port=None):
    port = free_port()
    d = os.path.join(work, f"{kind}-{port}")
    os.makedirs(d, exist_ok=True)
    log = open(os.path.join(d, "log"), "w")
    extra = [] if primary_port is None else ["--replicaof", "127.0.0.1", str(primary_port)]
    if kind == "redlog":
        cmd = [REDLOG, "--port", str(port), "--dir", d, "--enable-debug-command", "yes", *extra]
    else:
        cmd = ["redis-server", "--port", str(port), "--dir", d, "--save", "",
               "--appendonly", "no", "--enable-debug-command", "yes", *extra]
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    harness.PROCS.append(p)
    r = redis.Redis(port=port, socket_timeout=20)
    if not wait_for(r.ping, 20):
        raise RuntimeError(f"{kind} on port {port} did not start")
    if primary_port is not None:
        if not wait_for(lambda: r.info("replication").get("master_link_status") == "up", 20):
            raise RuntimeError(f"{kind} on port {port} did not link to {primary_port}")
    return p, r, port


def stop(p):
    if p.poll() is None:
        p.kill()
        p.wait()


def reply(r, *args):
    """A command's reply, or its error's text."""
    try:
        v = r.execute_command(*args)
        return v.decode() if isinstance(v, bytes) else v
    except redis.exceptions.ResponseError as e:
        return f"-{e}"


def role(r):
    return r.execute_command("ROLE")[0].decode()


def failover_state(r):
    return r.info("replication").get("master_failover_state")


def online(primary, replica_port):
    """The primary lists the replica as online and acknowledged."""
    info = primary.info("replication")
    for i in range(info.get("connected_slaves", 0)):
        s = info.get(f"slave{i}", {})
        if s.get("port") == replica_port and s.get("state") == "online":
            return True
    return False


def write_some(r, tag):
    r.set(f"{tag}:s", "v")
    r.set(f"{tag}:ttl", "v", px=600000)
    r.rpush(f"{tag}:l", *range(20))
    r.hset(f"{tag}:h", mapping={f"f{i}": i for i in range(10)})
    r.sadd(f"{tag}:set", *range(10))
    r.zadd(f"{tag}:z", {f"m{i}": i for i in range(10)})
    r.xadd(f"{tag}:x", {"f": "v"}, id="1-1")
    r.xgroup_create(f"{tag}:x", "g", id="0")
    r.incr(f"{tag}:n")


def contents(r):
    out = {}
    for k in r.scan_iter(count=1000):
        out[k] = r.dump(k) if r.type(k) != b"stream" else repr(r.xrange(k))
    return out


def errors(work, kind):
    """FAILOVER's refusals, as redis-server or redlog replies them."""
    out = []
    p, r, port = start(kind, work)
    for args in [("FAILOVER", "TO"), ("FAILOVER", "TO", "127.0.0.1", "x"),
                 ("FAILOVER", "TIMEOUT", "0"), ("FAILOVER", "TIMEOUT", "-5"),
                 ("FAILOVER", "TIMEOUT", "x"), ("FAILOVER", "FORCE", "FORCE"),
                 ("FAILOVER", "BOGUS"), ("FAILOVER", "ABORT"), ("FAILOVER", "ABORT", "1"),
                 ("FAILOVER",), ("FAILOVER", "TIMEOUT", "10", "TIMEOUT", "10")]:
        out.append((args, reply(r, *args)))
    rp, rr, rport = start(kind, work, port)
    wait_for(lambda: online(r, rport), 10)
    for args in [("FAILOVER", "TO", "127.0.0.1", str(rport), "FORCE"),
                 ("FAILOVER", "FORCE", "TIMEOUT", "100"),
                 ("FAILOVER", "TO", "127.0.0.1", "1"),
                 ("FAILOVER", "TO", "127.0.0.1", "99999")]:
        out.append((args, reply(r, *args)))
    for args in [("FAILOVER",), ("FAILOVER", "ABORT"), ("PSYNC", "?", "-1", "FAILOVER")]:
        out.append((("replica",) + args, reply(rr, *args)))
    out.append((("primary", "PSYNC", "x", "1", "FAILOVER"),
                reply(r, "PSYNC", "x", "1", "FAILOVER")))
    stop(rp)
    stop(p)
    return out


def switch(work, pkind, tkind, named):
    """A failover from a `pkind` primary to its `tkind` replica."""
    name = f"{pkind} -> {tkind}{'' if named else ' (any replica)'}"
    p, r, port = start(pkind, work)
    write_some(r, "before")
    tp, t, tport = start(tkind, work, port)
    write_some(r, "linked")
    if not wait_for(lambda: online(r, tport), 10):
        check(f"{name}: the replica is online", False)
        return
    old_id = r.info("replication")["master_replid"]
    args = ["FAILOVER", "TO", "127.0.0.1", str(tport)] if named else ["FAILOVER"]
    got = reply(r, *args)
    # A write sent now waits for the failover, then is refused.
    late = {}

    def writer():
        late["reply"] = reply(redis.Redis(port=port, socket_timeout=20), "SET", "late", "1")
    th = threading.Thread(target=writer)
    th.start()
    done = wait_for(lambda: role(r) == "slave" and role(t) == "master"
                    and failover_state(r) == "no-failover"
                    and r.info("replication").get("master_link_status") == "up", 15)
    th.join(20)
    check(f"{name}: FAILOVER answers OK and the roles switch", got == "OK" and done,
          f"reply {got!r}, old primary {role(r)}/{failover_state(r)}, target {role(t)}")
    check(f"{name}: the write sent meanwhile gets READONLY",
          str(late.get("reply", "")).startswith("-You can't write against a read only replica")
          or str(late.get("reply", "")).startswith("-READONLY"), repr(late))
    ti = t.info("replication")
    ri = r.info("replication")
    check(f"{name}: the new primary keeps the old id second, the old one follows it",
          ti["master_replid2"] == old_id and ri["master_replid"] == ti["master_replid"]
          and ri["master_port"] == tport, f"{old_id} {ti} {ri}")
    t.set("after", "1")
    t.rpush("before:l", "x")
    ok = wait_for(lambda: r.get("after") == b"1", 10)
    same = wait_for(lambda: contents(r) == contents(t), 10)
    check(f"{name}: data equal, later writes reach the old primary", ok and same,
          f"{sorted(contents(r))} vs {sorted(contents(t))}")
    stop(tp)
    stop(p)


def stalled(work, kind, mode):
    """The target sleeps (DEBUG SLEEP) so it cannot acknowledge the last
    write. mode: timeout, abort, force. Returns what was observed."""
    p, r, port = start(kind, work)
    tp, t, tport = start(kind, work, port)
    wait_for(lambda: online(r, tport), 10)
    seen = {}
    sleeper = threading.Thread(
        target=lambda: redis.Redis(port=tport, socket_timeout=30).execute_command("DEBUG", "SLEEP", "3"))
    sleeper.start()
    time.sleep(0.3)
    r.set("k", "v")
    target = ["TO", "127.0.0.1", str(tport)]
    if mode == "timeout":
        seen["failover"] = reply(r, "FAILOVER", "TIMEOUT", "500")
    elif mode == "abort":
        seen["failover"] = reply(r, "FAILOVER", *target)
    else:
        seen["failover"] = reply(r, "FAILOVER", *target, "FORCE", "TIMEOUT", "300")
    seen["state"] = failover_state(r)
    seen["again"] = reply(r, "FAILOVER")
    seen["replicaof"] = reply(r, "REPLICAOF", "NO", "ONE")
    blocked = {}

    def writer():
        blocked["reply"] = reply(redis.Redis(port=port, socket_timeout=20), "SET", "w", "1")
        blocked["at"] = time.time()
    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.15)
    seen["write waits"] = "reply" not in blocked
    if mode == "abort":
        seen["abort"] = reply(r, "FAILOVER", "ABORT")
    th.join(20)
    seen["write"] = blocked.get("reply")
    if mode == "force":
        wait_for(lambda: role(t) == "master" and role(r) == "slave", 15)
    else:
        wait_for(lambda: failover_state(r) == "no-failover", 5)
    seen["end state"] = failover_state(r)
    seen["roles"] = (role(r), role(t))
    sleeper.join(30)
    if mode == "force":
        wait_for(lambda: r.info("replication").get("master_link_status") == "up", 10)
        seen["k on target"] = t.get("k")
    stop(tp)
    stop(p)
    return seen


def run(work):
    ours = errors(work, "redlog")
    theirs = errors(work, "redis-server")
    for (args, a), (_, b) in zip(ours, theirs):
        check(f"errors: {' '.join(args)}", a == b, f"redlog {a!r}, redis {b!r}")

    switch(work, "redlog", "redlog", True)
    switch(work, "redlog", "redis-server", True)
    switch(work, "redis-server", "redlog", True)
    switch(work, "redlog", "redlog", False)

    for mode in ["timeout", "abort", "force"]:
        a = stalled(work, "redlog", mode)
        b = stalled(work, "redis-server", mode)
        for key in b:
            check(f"stalled target, {mode}: {key}", a.get(key) == b[key],
                  f"redlog {a.get(key)!r}, redis {b[key]!r}")


if __name__ == "__main__":
    harness.main("redlog-failover-", run)
