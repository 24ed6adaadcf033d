#!/usr/bin/env python3
"""Replica-side expiry as Redis 7.0 (issue 20): a redis-server 7.0 primary
with its active expiry off (`DEBUG SET-ACTIVE-EXPIRE 0`, so keys go only
when the primary looks them up), a redis-server replica as the reference
and a redlog replica (`appendonly yes`).

    python3 redis-tests/replica_expiry.py path/to/redlog

Checks:
- a key whose TTL passed stays on the redlog replica until the primary's
  DEL: clients get nil / 0 / -2 / none for it, KEYS and SCAN skip it,
  DBSIZE and INFO keyspace still count it, `expired_keys` stays 0, the
  replica's cron deletes nothing; every answer equals the redis-server
  replica's;
- RANDOMKEY when every key is volatile and logically expired names one
  (both replicas);
- the primary's DEL (its lazy expiry) removes it on both replicas;
- the redlog replica killed with SIGKILL after reading an expired key and
  after the primary's DELs restarts with a partial resync (the primary's
  `sync_partial_ok` grows, `sync_full` does not): its own lookups wrote
  nothing to its WAL, so its saved replication position holds;
- after REPLICAOF NO ONE the former replica expires keys itself.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import os
import signal
import subprocess
import sys
import time

import redis

import harness
from harness import check, free_port, wait_for

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"


def spawn(cmd, work, name, port):
    log = open(os.path.join(work, f"{name}.log"), "a")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    harness.PROCS.append(p)
    if not wait_for(lambda: redis.Redis(port=port).ping(), 30):
        raise SystemExit(f"{name} on port {port} did not start")
    return p


def start_redlog(work, port, primary_port):
    d = os.path.join(work, "redlog")
    os.makedirs(d, exist_ok=True)
    return spawn([REDLOG, "--port", str(port), "--dir", d, "--appendonly", "yes",
                  "--replicaof", "127.0.0.1", str(primary_port)], work, "redlog", port)


def link_up(c):
    return c.info("replication").get("master_link_status") == "up"


def answers(c):
    """What a client sees of the keys `k`, `k2` and `keep`."""
    cursor, keys = 0, []
    while True:
        cursor, batch = c.scan(cursor, count=100)
        keys += batch
        if cursor == 0:
            break
    info = c.info("keyspace").get("db0", {})
    return {
        "GET k": c.get("k"),
        "EXISTS k": c.exists("k"),
        "TTL k": c.ttl("k"),
        "PTTL k2": c.pttl("k2"),
        "TYPE k": c.type("k"),
        "STRLEN k": c.strlen("k"),
        "KEYS *": sorted(c.keys("*")),
        "SCAN": sorted(keys),
        "DBSIZE": c.dbsize(),
        "INFO keyspace": (info.get("keys"), info.get("expires")),
        "expired_keys": c.info("stats")["expired_keys"],
    }


def main():
    harness.main("redlog-replica-expiry-", run)


def run(work):
    pp, sp, rp = free_port(), free_port(), free_port()
    spawn(["redis-server", "--port", str(pp), "--save", "", "--appendonly", "no",
           "--dir", work, "--enable-debug-command", "yes",
           "--repl-ping-replica-period", "1"], work, "primary", pp)
    prim = redis.Redis(port=pp, decode_responses=True)
    prim.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    spawn(["redis-server", "--port", str(sp), "--save", "", "--appendonly", "no",
           "--dir", work, "--replicaof", "127.0.0.1", str(pp)], work, "reference", sp)
    redlog = start_redlog(work, rp, pp)
    ref = redis.Redis(port=sp, decode_responses=True)
    rep = redis.Redis(port=rp, decode_responses=True, socket_timeout=5)
    check("both replicas link to the redis-server primary",
          wait_for(lambda: link_up(ref) and link_up(rep), 20))

    prim.set("keep", "v")
    prim.set("k", "v", px=300)
    prim.set("k2", "v", px=300)
    check("WAIT 2: both replicas have the keys", prim.wait(2, 5000) == 2)
    time.sleep(0.6)  # TTLs passed; the primary has deleted nothing yet
    # Several cron ticks of the replicas pass: neither deletes anything.
    time.sleep(0.5)
    got, want = answers(rep), answers(ref)
    check("an expired key is hidden but kept, as on a redis-server replica",
          got == want, f"redlog {got}\nredis-server {want}")
    check("... nil for it, DBSIZE still counts it, nothing expired",
          got["GET k"] is None and got["DBSIZE"] == 3 and got["expired_keys"] == 0,
          repr(got))

    # The primary's lazy expiry: its DEL reaches both replicas.
    prim.get("k")
    check("the primary expired k", prim.info("stats")["expired_keys"] == 1)
    prim.wait(2, 5000)
    check("the primary's DEL removes it (DBSIZE 2 on both replicas)",
          wait_for(lambda: rep.dbsize() == 2 and ref.dbsize() == 2, 5),
          f"{rep.dbsize()} {ref.dbsize()}")

    # kill -9 after reading an expired key (which a replica must not
    # delete, nor log) and after the primary's DEL: a partial resync.
    rep.get("k2")
    before = prim.info("stats")
    redlog.send_signal(signal.SIGKILL)
    redlog.wait()
    prim.set("while-down", "1")
    redlog = start_redlog(work, rp, pp)
    rep = redis.Redis(port=rp, decode_responses=True, socket_timeout=5)
    check("the restarted replica links again", wait_for(lambda: link_up(rep), 20))
    after = prim.info("stats")
    check("... with a partial resync (sync_partial_ok +1, sync_full unchanged)",
          after["sync_partial_ok"] == before["sync_partial_ok"] + 1
          and after["sync_full"] == before["sync_full"],
          f"before {before['sync_partial_ok']}/{before['sync_full']} "
          f"after {after['sync_partial_ok']}/{after['sync_full']}")
    check("... and still holds the expired k2 hidden, and what was missed",
          wait_for(lambda: rep.get("while-down") == "1", 5)
          and rep.dbsize() == 3 and rep.get("k2") is None, repr(answers(rep)))
    prim.get("k2")
    prim.wait(2, 5000)
    check("the primary's DEL of k2 reaches the restarted replica",
          wait_for(lambda: rep.dbsize() == 2, 5), repr(rep.dbsize()))

    # Every key volatile and expired: RANDOMKEY names one anyway.
    prim.flushall()
    prim.set("g", "v", px=100)
    prim.wait(2, 5000)
    time.sleep(0.3)
    check("RANDOMKEY with only expired volatile keys names one, as redis-server",
          rep.randomkey() == ref.randomkey() == "g", f"{rep.randomkey()} {ref.randomkey()}")

    # Promoted: the former replica expires keys itself.
    rep.replicaof("no", "one")
    check("after REPLICAOF NO ONE the expired key goes at its lookup",
          rep.get("g") is None and rep.dbsize() == 0
          and rep.info("stats")["expired_keys"] == 1, repr(answers(rep)))
    log = open(os.path.join(work, "redlog.log")).read()
    check("the redlog replica logged no error from its master",
          "sending an error to its master" not in log, log[-1500:])


if __name__ == "__main__":
    main()
