#!/usr/bin/env python3
"""redis-sentinel fails over a group of redlog servers (issue 20).

    python3 redis-tests/sentinel.py path/to/redlog

A redlog primary with two redlog replicas (each started from its own
config file, so Sentinel's CONFIG REWRITE has a file to rewrite) and one
redis-sentinel 7.0 with quorum 1. A redis-py `Sentinel` client writes
keys in a loop. The primary is killed with SIGKILL; then:

- Sentinel promotes one replica within 10 s (get-master-addr-by-name
  names it, and it reports role:master);
- the other replica follows the new primary (master_port, link up);
- the client keeps writing through Sentinel, and every write the client
  saw acknowledged after the kill is on the new primary and on the
  following replica;
- the promoted replica's config file names no primary any more and the
  other's names the new one (CONFIG REWRITE after the role change).

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
from redis.sentinel import Sentinel

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"


def start_redlog(work, port, primary_port=None):
    d = os.path.join(work, f"redlog-{port}")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "redlog.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\ndir {d}\nappendonly yes\n")
        if primary_port is not None:
            f.write(f"replicaof 127.0.0.1 {primary_port}\n")
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen([REDLOG, conf], stdout=log, stderr=subprocess.STDOUT)
    harness.PROCS.append(p)
    if not wait_for(lambda: redis.Redis(port=port).ping(), 20):
        raise SystemExit(f"redlog on port {port} did not start")
    return p, conf


def info(port, section="replication"):
    return redis.Redis(port=port, socket_timeout=2).info(section)


def main():
    harness.main("redlog-sentinel-", run)


def run(work):
    pp, rp1, rp2, sp = free_port(), free_port(), free_port(), free_port()
    primary, _ = start_redlog(work, pp)
    _, conf1 = start_redlog(work, rp1, pp)
    _, conf2 = start_redlog(work, rp2, pp)
    up = lambda port: info(port).get("master_link_status") == "up"
    check("both replicas linked to the primary", wait_for(lambda: up(rp1) and up(rp2), 20),
          f"{info(rp1)} {info(rp2)}")
    check("the primary lists two online replicas",
          wait_for(lambda: info(pp).get("connected_slaves") == 2, 10), str(info(pp)))

    sconf = os.path.join(work, "sentinel.conf")
    with open(sconf, "w") as f:
        f.write(f"port {sp}\ndir {work}\n"
                f"sentinel monitor mymaster 127.0.0.1 {pp} 1\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 10000\n"
                "sentinel parallel-syncs mymaster 2\n")
    slog = open(os.path.join(work, "sentinel.log"), "w")
    harness.PROCS.append(subprocess.Popen(["redis-sentinel", sconf], stdout=slog,
                                  stderr=subprocess.STDOUT))
    sent = redis.Redis(port=sp, decode_responses=True)
    check("sentinel discovers both replicas",
          wait_for(lambda: len(sent.execute_command("SENTINEL", "REPLICAS", "mymaster")) == 2, 20),
          "")

    sentinel = Sentinel([("127.0.0.1", sp)], socket_timeout=1.0)
    writes = {}  # key -> (value, acknowledged at)
    errors = [0]
    stop = threading.Event()

    def writer():
        i = 0
        client = sentinel.master_for("mymaster", socket_timeout=1.0)
        while not stop.is_set():
            key, val = f"k:{i}", f"v:{i}"
            try:
                client.set(key, val)
                writes[key] = (val, time.time())
                i += 1
            except (redis.exceptions.RedisError, OSError):
                errors[0] += 1
                time.sleep(0.05)

    t = threading.Thread(target=writer)
    t.start()
    check("writes through Sentinel before the failover",
          wait_for(lambda: len(writes) >= 200, 20), f"{len(writes)} writes")

    killed_at = time.time()
    primary.send_signal(signal.SIGKILL)
    primary.wait()

    def promoted():
        host, port = sentinel.discover_master("mymaster")
        return port != pp and info(port).get("role") == "master"

    ok = wait_for(promoted, 15)
    elapsed = time.time() - killed_at
    check("a replica is promoted within 10 s", ok and elapsed <= 10.0,
          f"promoted={ok} after {elapsed:.1f} s")
    if not ok:
        stop.set()
        t.join()
        return
    new_port = sentinel.discover_master("mymaster")[1]
    other = rp2 if new_port == rp1 else rp1
    check("the other replica follows the new primary",
          wait_for(lambda: info(other).get("master_port") == new_port and up(other), 20),
          str(info(other)))
    n_before = len(writes)
    check("the client keeps writing after the failover",
          wait_for(lambda: len(writes) >= n_before + 200, 20),
          f"{len(writes) - n_before} writes after, {errors[0]} errors")
    stop.set()
    t.join()

    # The old primary is dead (SIGKILL, reaped) before killed_at: every write
    # acknowledged after it was acknowledged by the promoted replica.
    after = {k: v for k, (v, at) in writes.items() if at > killed_at}
    new = redis.Redis(port=new_port, decode_responses=True)
    missing = [k for k, v in after.items() if new.get(k) != v]
    check("every write acknowledged after the kill is on the new primary",
          after and not missing, f"{len(missing)} of {len(after)} missing, e.g. {missing[:3]}")
    offset = new.info("replication")["master_repl_offset"]
    follower = redis.Redis(port=other, decode_responses=True)
    caught_up = wait_for(
        lambda: follower.info("replication").get("slave_repl_offset", -1) >= offset, 10)
    missing = [k for k, v in after.items() if follower.get(k) != v]
    check("... and on the replica that follows it", caught_up and not missing,
          f"caught_up={caught_up}, {len(missing)} of {len(after)} missing")

    new_conf = conf1 if new_port == rp1 else conf2
    other_conf = conf2 if new_port == rp1 else conf1
    text = open(new_conf).read()
    check("CONFIG REWRITE: the promoted server's file names no primary",
          "replicaof" not in text and "slaveof" not in text, text)
    text = open(other_conf).read()
    check("CONFIG REWRITE: the follower's file names the new primary",
          f"replicaof 127.0.0.1 {new_port}" in text, text)


if __name__ == "__main__":
    main()
