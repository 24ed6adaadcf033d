#!/usr/bin/env python3
"""A redlog replica of a redlog primary, killed with SIGKILL during load and
restarted from its own data directory (issue 20).

    python3 redis-tests/repl_restart.py path/to/redlog

A writer appends to lists (RPUSH of increasing numbers) and increments
counters on the primary while the replica is killed and restarted twice.
Checks:
- after each restart the replica resynchronises partially (the primary's
  INFO stats `sync_partial_ok` grows, `sync_full` does not);
- once the writer stops and WAIT 1 says the replica acknowledged, both
  keyspaces are equal key by key: every list holds exactly the numbers
  pushed, in order, once (nothing lost, nothing doubled), every counter
  its value;
- WAIT returns 1 with the replica attached.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import redis

import harness
from harness import check, free_port, wait_for

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"


def start_redlog(d, port, primary_port=None):
    os.makedirs(d, exist_ok=True)
    cmd = [REDLOG, "--port", str(port), "--dir", d, "--appendonly", "yes"]
    if primary_port is not None:
        cmd += ["--replicaof", "127.0.0.1", str(primary_port)]
    log = open(os.path.join(d, "log"), "a")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    harness.PROCS.append(p)
    if not wait_for(lambda: redis.Redis(port=port).ping(), 30):
        raise SystemExit(f"redlog on port {port} did not start")
    return p


def main():
    harness.main("redlog-repl-restart-", run)


def run(work):
    pp, rp = free_port(), free_port()
    start_redlog(os.path.join(work, "primary"), pp)
    rdir = os.path.join(work, "replica")
    replica = start_redlog(rdir, rp, pp)
    prim = redis.Redis(port=pp, decode_responses=True)
    rep = lambda: redis.Redis(port=rp, decode_responses=True, socket_timeout=2)
    up = lambda: rep().info("replication").get("master_link_status") == "up"
    check("the replica links to the primary", wait_for(up, 20), str(rep().info("replication")))

    pushed = {}  # list key -> numbers acknowledged
    counts = {}  # counter key -> value acknowledged
    stop = threading.Event()
    err = []

    def writer():
        client = redis.Redis(port=pp, decode_responses=True)
        i = 0
        while not stop.is_set():
            lk, ck = f"list:{i % 7}", f"ctr:{i % 5}"
            try:
                client.rpush(lk, i)
                pushed.setdefault(lk, []).append(str(i))
                counts[ck] = client.incr(ck)
                if i % 50 == 0:
                    client.set(f"str:{i}", "x" * (i % 100), px=3600_000)
            except redis.exceptions.RedisError as e:
                err.append(repr(e))
                return
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    wait_for(lambda: sum(map(len, pushed.values())) > 2000, 20)
    for round_ in (1, 2):
        stats = prim.info("stats")
        full0, part0 = stats["sync_full"], stats["sync_partial_ok"]
        replica.send_signal(signal.SIGKILL)
        replica.wait()
        time.sleep(0.5)  # the primary keeps taking writes meanwhile
        replica = start_redlog(rdir, rp, pp)
        check(f"restart {round_}: the replica links again", wait_for(up, 30),
              str(rep().info("replication")))
        stats = prim.info("stats")
        check(f"restart {round_}: partial resynchronisation, no full sync",
              stats["sync_partial_ok"] == part0 + 1 and stats["sync_full"] == full0,
              f"sync_full {full0}->{stats['sync_full']}, "
              f"sync_partial_ok {part0}->{stats['sync_partial_ok']}")
        time.sleep(0.5)
    stop.set()
    t.join()
    check("the writer saw no error", not err, str(err[:3]))

    n = prim.execute_command("WAIT", 1, 5000)
    check("WAIT 1 5000 returns 1", n == 1, str(n))
    r = rep()
    bad = [k for k, v in pushed.items() if r.lrange(k, 0, -1) != v]
    check("every list on the replica holds each pushed number once, in order", not bad,
          f"{bad[:3]}: {[len(r.lrange(k, 0, -1)) for k in bad[:3]]} vs "
          f"{[len(pushed[k]) for k in bad[:3]]}")
    bad = [k for k, v in counts.items() if r.get(k) != str(v)]
    check("every counter on the replica has its value", not bad, str(bad[:3]))
    pk = sorted(prim.scan_iter(count=1000))
    rk = sorted(r.scan_iter(count=1000))
    check("both keyspaces hold the same keys", pk == rk, f"{len(pk)} vs {len(rk)}")
    diff = [k for k in pk if prim.dump(k) != r.dump(k)]
    check("DUMP payloads equal key by key", not diff, str(diff[:3]))


if __name__ == "__main__":
    main()
