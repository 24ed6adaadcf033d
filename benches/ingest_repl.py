#!/usr/bin/env python3
"""LOGPARSE INGEST throughput of a redlog primary without a replica, with
a redlog replica and with a redis-server 7.0 replica attached (the
ingested entries travel as XADDs, the learning as PING records).

    python3 benches/ingest_repl.py [path/to/redlog] [lines]

Prints lines/s for each case and the ratios to the case without a
replica; each case ingests the same text in INGEST calls of 10k lines
into a fresh key and waits (WAIT) until the replica has it all.
"""
import os
import subprocess
import sys
import tempfile
import time

import redis

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "redis-tests"))
from harness import free_port, wait_for  # noqa: E402

REDLOG = sys.argv[1] if len(sys.argv) > 1 else "target/release/redlog"
LINES = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
FMT = "<Date> <Time> <Level> <Component>: <Content>"


def start(kind, work, extra=()):
    port = free_port()
    d = os.path.join(work, f"{kind}-{port}")
    os.makedirs(d)
    if kind == "redlog":
        cmd = [REDLOG, "--port", str(port), "--dir", d, *extra]
    else:
        cmd = ["redis-server", "--port", str(port), "--dir", d, "--save", "", *extra]
    p = subprocess.Popen(cmd, stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
    r = redis.Redis(port=port)
    wait_for(lambda: r.ping())
    return p, port, r


def text(n, start):
    return "".join(
        f"2024-01-01 10:{i % 60:02d}:{i % 60:02d} INFO comp{i % 7}: request {i} from 10.0.{i % 250}.{i % 9} took {i % 500} ms\n"
        for i in range(start, start + n))


def run(replica, work):
    pp, pport, p = start("redlog", work)
    procs = [pp]
    try:
        p.execute_command("LOGPARSE", "FORMAT", "SET", "app", FMT)
        if replica:
            rp_, _, r = start(replica, work, ["--replicaof", "127.0.0.1", str(pport)])
            procs.append(rp_)
            wait_for(lambda: r.info("replication").get("master_link_status") == "up", 30)
        chunks = [text(10_000, i) for i in range(0, LINES, 10_000)]
        t = time.perf_counter()
        for c in chunks:
            p.execute_command("LOGPARSE", "INGEST", "logs", "app", c)
        if replica:
            p.execute_command("WAIT", 1, 0)
        return LINES / (time.perf_counter() - t)
    finally:
        for x in procs:
            x.kill()
            x.wait()


def main():
    with tempfile.TemporaryDirectory() as work:
        base = run(None, work)
        print(f"no replica:           {base:10.0f} lines/s")
        for kind in ("redlog", "redis-server"):
            v = run(kind, work)
            print(f"{kind + ' replica:':22s}{v:10.0f} lines/s  ({v / base:.2f}x)")


if __name__ == "__main__":
    main()
