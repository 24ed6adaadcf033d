#!/usr/bin/env python3
"""redlog-only state over replication, and UNBLOCKED at a role change
(issue 20).

    python3 redis-tests/repl_redlog.py path/to/redlog

One redlog primary P, with a redlog replica R1, a redis-server 7.0
replica R2 and a redlog replica R3 of R2 (chained through redis-server):

1. LOGPARSE formats and INGESTed streams written before the replicas
   attach reach R1 with the full resync (RDB aux fields `redlog-record`);
   those written after go through the stream as `PING <record>` and
   XADDs: R1 ends with the same formats (FORMAT GET), stream entries
   (XRANGE, XINFO STREAM) and templates (LOGPARSE TEMPLATES); R2 with the
   same stream entries and XINFO STREAM, no error and no warning in its
   log; R3 gets, through R2, the records made after it attached;
   master_repl_offset is the same on all four.
2. Retention (XCONFIG RETENTION-BYTES, small segments) trims P's stream
   by whole segments: R1 and R2 drop the same entries (XTRIM MINID); the
   XCONFIG settings themselves reach R1 (a record, and an aux field at the
   full resync for a stream configured before).
3. R1 promoted (REPLICAOF NO ONE): LOGPARSE PARSE and INGEST give the
   template ids P gives for the same lines.
4. UNBLOCKED: on redis-server and on redlog alike, clients blocked in
   BLPOP, XREAD BLOCK and WAIT when the server becomes a replica
   (REPLICAOF) get `-UNBLOCKED force unblock ...` and their connection is
   closed after it.

Prints one line per check and "N passed, M failed"; exit status 1 on any
failure.
"""
import socket
import sys
import threading
import time

import redis

import harness
from harness import check, free_port, wait_for
import replication as rp

FMT = "<Date> <Time> <Level> <Component>: <Content>"


def lines(tag, n, start=0):
    out = []
    for i in range(start, start + n):
        out.append(f"2024-01-0{1 + i % 9} 10:{i % 60:02d}:{i % 60:02d} INFO comp{i % 3}: "
                   f"{tag} user {i} logged in from 10.0.{i % 250}.{i % 7}")
        if i % 5 == 0:
            out.append(f"2024-01-02 11:00:{i % 60:02d} WARN disk: {tag} disk {i} is {i % 90}% full")
        if i % 17 == 0:
            out.append("garbage line without a format")
    return "\n".join(out) + "\n"


def ingest(r, key, fmt, text):
    return r.execute_command("LOGPARSE", "INGEST", key, fmt, text)


def xinfo(r, key):
    d = r.xinfo_stream(key)
    return {k: d.get(k) for k in ("length", "last-generated-id", "max-deleted-entry-id",
                                  "entries-added", "first-entry", "last-entry")}


def formats(r):
    names = sorted(r.execute_command("LOGPARSE", "FORMAT", "LIST"))
    return [(n, r.execute_command("LOGPARSE", "FORMAT", "GET", n)) for n in names]


def templates(r, key):
    return r.execute_command("LOGPARSE", "TEMPLATES", key, "COUNT", 1000)


def offset(r):
    return r.info("replication")["master_repl_offset"]


def main():
    harness.main("redlog-recs-", run)


def run(work):
    pport, r1port, r2port, r3port = free_port(), free_port(), free_port(), free_port()
    _, plog = rp.start("redlog", pport, work, ["--stream-segment-bytes", "4096"])
    p = redis.Redis(port=pport)
    p.execute_command("LOGPARSE", "FORMAT", "SET", "app", FMT)
    p.execute_command("LOGPARSE", "FORMAT", "SET", "gone", FMT)
    ingest(p, "logs:a", "app", lines("before", 200))
    p.execute_command("LOGPARSE", "PARSE", "app", "2024-01-01 10:00:00 INFO x: shared miner line 1")
    p.execute_command("LOGPARSE", "PARSE", "hdfs",
                      "081109 203615 148 INFO dfs.DataNode$PacketResponder: Received block 1")
    # A stream's own retention (XCONFIG) before the replicas attach: the
    # full resync carries it (entries of now: 10 days trims none).
    p.xadd("plain", {"f": "v"})
    p.execute_command("XCONFIG", "plain", "RETENTION-MS", 864000000)

    # Writable: LOGPARSE (FORMAT LIST/GET, TEMPLATES) is a write command.
    _, r1log = rp.start_replica("redlog", r1port, pport, work, ["--replica-read-only", "no"])
    _, r2log = rp.start_replica("redis-server", r2port, pport, work)
    r1, r2 = redis.Redis(port=r1port), redis.Redis(port=r2port)
    check("redlog and redis-server replicas: links up",
          wait_for(lambda: rp.link_up(r1) and rp.link_up(r2)),
          open(r1log).read()[-1500:] + open(r2log).read()[-1500:])
    _, r3log = rp.start_replica("redlog", r3port, r2port, work, ["--replica-read-only", "no"])
    r3 = redis.Redis(port=r3port)
    check("redlog replica of the redis-server replica: link up",
          wait_for(lambda: rp.link_up(r3)), open(r3log).read()[-1500:])

    # Log lines from here on must hold no warning or error.
    marks = {path: len(open(path).read()) for path in (r1log, r2log, r3log)}
    # After the links are up: through the stream.
    p.execute_command("LOGPARSE", "FORMAT", "SET", "later", FMT, "MINER", "DRAIN")
    p.execute_command("LOGPARSE", "FORMAT", "DEL", "gone")
    ingest(p, "logs:a", "app", lines("after", 300, 200))  # existing stream: learning
    ingest(p, "logs:b", "later", lines("new", 150))  # a stream INGEST creates
    p.execute_command("LOGPARSE", "PARSE", "app", "2024-01-01 10:00:00 INFO y: shared miner line 2")
    pipe = p.pipeline(transaction=True)
    pipe.execute_command("LOGPARSE", "INGEST", "logs:c", "app", lines("multi", 20))
    pipe.xadd("logs:c", {"f": "v"})
    pipe.execute()
    p.execute_command("WAIT", 2, 5000)

    same_offsets = wait_for(lambda: offset(p) == offset(r1) == offset(r2) == offset(r3))
    check("master_repl_offset equal on primary, both replicas and the chained one",
          same_offsets, f"{offset(p)} {offset(r1)} {offset(r2)} {offset(r3)}")
    check("formats equal on the redlog replica (full resync and stream)",
          formats(p) == formats(r1), f"{formats(p)}\n{formats(r1)}")
    for k in ("logs:a", "logs:b", "logs:c", "logs:a:malformed", "logs:b:malformed"):
        check(f"{k}: entries equal on the redlog replica",
              p.xrange(k) == r1.xrange(k) and xinfo(p, k) == xinfo(r1, k),
              f"{xinfo(p, k)}\n{xinfo(r1, k)}")
        check(f"{k}: entries and XINFO STREAM equal on the redis-server replica",
              p.xrange(k) == r2.xrange(k) and xinfo(p, k) == xinfo(r2, k),
              f"{xinfo(p, k)}\n{xinfo(r2, k)}")
    for k in ("logs:a", "logs:b", "logs:c"):
        check(f"{k}: LOGPARSE TEMPLATES equal on the redlog replica",
              templates(p, k) == templates(r1, k), f"{templates(p, k)}\n{templates(r1, k)}")
    later = p.execute_command("LOGPARSE", "FORMAT", "GET", "later")
    check("chained redlog replica (through redis-server) got the format made after it attached",
          wait_for(lambda: r3.execute_command("LOGPARSE", "FORMAT", "GET", "later") == later),
          repr(later))
    check("chained redlog replica: the stream a later INGEST created, with its templates",
          r3.xrange("logs:b") == p.xrange("logs:b")
          and templates(r3, "logs:b") == templates(p, "logs:b"))

    # Retention: whole segments go on P; replicas drop the same entries.
    before = p.xlen("logs:a")
    p.execute_command("XCONFIG", "logs:a", "RETENTION-BYTES", 8192)
    check("retention trimmed the primary's stream",
          wait_for(lambda: p.xlen("logs:a") < before, 5), f"{before} {p.xlen('logs:a')}")
    time.sleep(0.3)
    p.execute_command("WAIT", 2, 5000)
    for name, r in (("redlog", r1), ("redis-server", r2)):
        check(f"retention trim reached the {name} replica (XRANGE, XINFO STREAM)",
              wait_for(lambda r=r: r.xrange("logs:a") == p.xrange("logs:a")
                       and xinfo(r, "logs:a") == xinfo(p, "logs:a"), 5),
              f"{xinfo(p, 'logs:a')}\n{xinfo(r, 'logs:a')}")

    for path, who in ((r2log, "redis-server replica"), (r3log, "chained redlog replica"),
                      (r1log, "redlog replica")):
        whole = open(path).read()
        bad = [l for l in whole[marks[path]:].splitlines()
               if " # " in l or "error" in l.lower()]
        bad += [l for l in whole.splitlines()
                if "Unrecognized" in l or "sending an error" in l]
        check(f"{who} logged no error or warning", not bad, "\n".join(bad[:10]))
    ptext = open(plog).read()
    check("primary logged no propagation error",
          "cannot propagate" not in ptext and "cannot decode" not in ptext, ptext[-1500:])

    # Failover: the promoted redlog replica mines as the primary did.
    r1.execute_command("REPLICAOF", "NO", "ONE")
    # XCONFIG's reply shows both settings: the one set here, and the one
    # the primary's XCONFIG gave (full resync for `plain`, the stream for
    # `logs:a`).
    got = r1.execute_command("XCONFIG", "plain", "RETENTION-BYTES", 0)
    check("promoted replica: a stream's retention set before the full resync (XCONFIG)",
          got == [b"retention-ms", 864000000, b"retention-bytes", 0], repr(got))
    got = r1.execute_command("XCONFIG", "logs:a", "RETENTION-MS", 0)
    check("promoted replica: a stream's retention set through the stream (XCONFIG)",
          got == [b"retention-ms", 0, b"retention-bytes", 8192], repr(got))
    probe = ["2024-01-03 12:00:00 INFO comp1: after user 999 logged in from 10.0.9.9",
             "2024-01-03 12:00:01 WARN disk: after disk 7 is 3% full",
             "2024-01-03 12:00:02 INFO x: shared miner line 3"]
    for line in probe:
        a = p.execute_command("LOGPARSE", "PARSE", "app", line)
        b = r1.execute_command("LOGPARSE", "PARSE", "app", line)
        check(f"promoted replica: PARSE gives the primary's template ({line[20:40]}...)",
              a == b, f"{a}\n{b}")
    text = "\n".join(probe) + "\n"
    ingest(p, "logs:a", "app", text)
    ingest(r1, "logs:a", "app", text)
    ta = [e[1].get(b"template_id") for e in p.xrange("logs:a")[-3:]]
    tb = [e[1].get(b"template_id") for e in r1.xrange("logs:a")[-3:]]
    check("promoted replica: INGEST into a replicated stream gives the primary's template ids",
          ta == tb and None not in ta, f"{ta} {tb}")

    unblocked(work)


def blocked_reply(port, args):
    """Sends `args` on a raw socket; returns (reply bytes, closed after it)."""
    s = socket.create_connection(("127.0.0.1", port))
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        a = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    s.settimeout(10)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    try:
        closed = s.recv(4096) == b""
    except OSError:
        closed = True
    s.close()
    return data, closed


def unblocked(work):
    """Clients blocked when the server turns replica: as redis-server."""
    results = {}
    for kind in ("redis-server", "redlog"):
        port, other = free_port(), free_port()
        rp.start(kind, port, work)
        rp.start("redis-server", other, work)
        r = redis.Redis(port=port)
        r.xadd("s", {"a": 1})
        got = {}
        cmds = {"BLPOP": ["BLPOP", "nolist", 0],
                "XREAD": ["XREAD", "BLOCK", 0, "STREAMS", "s", "$"],
                "WAIT": ["WAIT", 1, 0]}
        threads = [threading.Thread(target=lambda n=n, c=c: got.__setitem__(n, blocked_reply(port, c)))
                   for n, c in cmds.items()]
        for t in threads:
            t.start()
        wait_for(lambda: r.info("clients")["blocked_clients"] >= 2 and len(r.client_list()) >= 4)
        time.sleep(0.2)
        r.execute_command("REPLICAOF", "127.0.0.1", other)
        for t in threads:
            t.join(10)
        got["errorstat"] = r.info("errorstats").get("errorstat_UNBLOCKED")
        results[kind] = got
    want = (b"-UNBLOCKED force unblock from blocking operation, instance state changed "
            b"(master -> replica?)\r\n", True)
    for n in ("BLPOP", "XREAD", "WAIT"):
        check(f"redis-server: blocked {n} gets UNBLOCKED and is closed at REPLICAOF",
              results["redis-server"].get(n) == want, repr(results["redis-server"].get(n)))
        check(f"redlog: blocked {n} as redis-server",
              results["redlog"].get(n) == results["redis-server"].get(n),
              repr(results["redlog"].get(n)))
    check("INFO errorstats counts the UNBLOCKED replies as redis-server",
          results["redlog"]["errorstat"] == results["redis-server"]["errorstat"] == {"count": 3},
          f"{results['redlog']['errorstat']} {results['redis-server']['errorstat']}")


if __name__ == "__main__":
    main()
