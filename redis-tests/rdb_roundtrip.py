#!/usr/bin/env python3
"""RDB interchange with a real redis-server 7.0, every type (a stream with
consumer groups, consumers and PEL included), in both directions:

1. DUMP from redis-server, RESTORE into redlog (the running server at
   REDLOG_PORT), contents compared; DUMP from redlog, RESTORE into
   redis-server, contents compared.
2. redis-server SAVE -> `redlog import-rdb` into a new data directory ->
   a redlog on it: every key compared (contents and TTL presence).
3. `redlog export-rdb` of that directory -> a redis-server loading the
   file: every key compared.

Usage: rdb_roundtrip.py REDLOG_BIN REDLOG_PORT WORKDIR
Needs redis-server on PATH. Exit status 0 when everything matched.
"""
import os, socket, subprocess, sys, time

BIN, REDLOG_PORT, WORK = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class C:
    def __init__(s, port):
        for _ in range(200):
            try:
                s.s = socket.create_connection(("127.0.0.1", port)); break
            except OSError:
                time.sleep(0.05)
        s.buf = b""

    def line(s):
        while b"\r\n" not in s.buf:
            d = s.s.recv(65536)
            if not d: raise EOFError
            s.buf += d
        l, s.buf = s.buf.split(b"\r\n", 1); return l

    def read(s):
        l = s.line()
        if l[:1] == b"$":
            n = int(l[1:])
            if n < 0: return None
            while len(s.buf) < n + 2: s.buf += s.s.recv(65536)
            d = s.buf[:n]; s.buf = s.buf[n + 2:]; return d
        if l[:1] == b"*":
            n = int(l[1:]); return None if n < 0 else [s.read() for _ in range(n)]
        return l

    def __call__(s, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.s.sendall(out); return s.read()


def wait_ready(c):
    for _ in range(400):
        r = c("ping")
        if r == b"+PONG": return
        time.sleep(0.05)
    raise RuntimeError("server not ready")


def fill(r):
    r("flushall")
    for db in (0, 3):
        r("select", db)
        r("set", "s", "hello"); r("set", "n", "12"); r("set", "big", "x" * 300)
        r("set", "ttl", "v"); r("pexpire", "ttl", 900000)
        r("rpush", "l", *["e%d" % i for i in range(1000)])
        r("sadd", "si", "1", "2", "3"); r("sadd", "ss", "a", "b")
        r("sadd", "sb", *[str(i) for i in range(600)])
        r("zadd", "z", "1", "a", "2.5", "b"); r("zadd", "zb", *sum([[str(i / 3), "m%d" % i] for i in range(300)], []))
        r("hset", "h", "f", "v"); r("hset", "hb", *sum([["f%d" % i, "v" * i] for i in range(100)], []))
        for i in range(1, 300): r("xadd", "x", "%d-1" % i, "a", str(i), "b", "y" * (i % 5))
        r("xadd", "x", "400-0", "other", "1")
        r("xgroup", "create", "x", "g", "0"); r("xgroup", "create", "x", "g2", "$")
        r("xreadgroup", "group", "g", "c1", "count", "5", "streams", "x", ">")
        r("xreadgroup", "group", "g", "c3", "count", "2", "streams", "x", ">")
        r("xack", "x", "g", "1-1")
        r("xgroup", "createconsumer", "x", "g", "c2")
    r("select", 0)


def contents(c, k):
    t = c("type", k)
    if t == b"+string": return c("get", k)
    if t == b"+list": return c("lrange", k, 0, -1)
    if t == b"+set": return sorted(c("smembers", k))
    if t == b"+zset": return c("zrange", k, 0, -1, "withscores")
    if t == b"+hash": return sorted(c("hgetall", k))
    if t == b"+stream":
        f = c("xinfo", "stream", k, "full")
        return f[:2] + f[6:]  # radix-tree-keys/nodes are Redis's own structure
    return t


def compare(a, b, what):
    bad, n = [], 0
    for db in range(16):
        a("select", db); b("select", db)
        ka, kb = sorted(a("keys", "*")), sorted(b("keys", "*"))
        if ka != kb:
            bad.append("db %d keys %r vs %r" % (db, ka, kb)); continue
        for k in ka:
            n += 1
            if contents(a, k) != contents(b, k): bad.append("db %d key %r content" % (db, k))
            if (a("pttl", k) == b":-1") != (b("pttl", k) == b":-1"): bad.append("db %d key %r ttl" % (db, k))
    a("select", 0); b("select", 0)
    print(("ok    " if not bad and n else "FAIL  ") + "%s: %d keys compared" % (what, n))
    for x in bad[:10]: print("      " + x)
    return not bad and n > 0


def redis_server(d, extra=()):
    port = free_port()
    subprocess.check_call(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", d, "--daemonize", "yes",
                           "--logfile", os.path.join(d, "redis.log"), *extra])
    c = C(port); wait_ready(c); return port, c


def main():
    ok = True
    rdir = os.path.join(WORK, "redis"); os.makedirs(rdir, exist_ok=True)
    rport, r = redis_server(rdir)
    servers = [r]
    try:
        l = C(REDLOG_PORT)
        fill(r); l("flushall")
        # 1. DUMP/RESTORE both ways.
        for db in (0, 3):
            r("select", db); l("select", db)
            for k in r("keys", "*"):
                ttl = r("pttl", k); ttl = 0 if ttl == b":-1" else int(ttl[1:])
                rep = l("restore", k, ttl, r("dump", k))
                if rep != b"+OK": print("FAIL  RESTORE %r into redlog: %r" % (k, rep)); ok = False
        ok &= compare(r, l, "redis-server DUMP -> redlog RESTORE")
        for db in (0, 3):
            r("select", db); l("select", db)
            for k in l("keys", "*"):
                d = l("dump", k)
                ttl = l("pttl", k); ttl = 0 if ttl == b":-1" else int(ttl[1:])
                r("del", k)
                rep = r("restore", k, ttl, d)
                if rep != b"+OK": print("FAIL  RESTORE %r into redis-server: %r" % (k, rep)); ok = False
        r("select", 0); l("select", 0)
        ok &= compare(l, r, "redlog DUMP -> redis-server RESTORE")
        # 2. SAVE -> import-rdb.
        fill(r)
        r("save")
        imp = os.path.join(WORK, "imported")
        out = subprocess.run([BIN, "import-rdb", os.path.join(rdir, "dump.rdb"), "--dir", imp],
                             capture_output=True, text=True)
        print("      " + out.stdout.strip())
        if out.returncode != 0: print("FAIL  import-rdb: " + out.stderr[-500:]); return False
        port = free_port()
        p = subprocess.Popen([BIN, "--port", str(port), "--dir", imp], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            c = C(port); wait_ready(c)
            ok &= compare(r, c, "redis-server SAVE -> redlog import-rdb")
            try: c("shutdown")
            except EOFError: pass
        finally:
            p.wait(timeout=30)
        # 3. export-rdb -> redis-server loads it.
        edir = os.path.join(WORK, "exported"); os.makedirs(edir, exist_ok=True)
        out = subprocess.run([BIN, "export-rdb", imp, os.path.join(edir, "dump.rdb")],
                             capture_output=True, text=True)
        if out.returncode != 0: print("FAIL  export-rdb: " + out.stderr[-500:]); return False
        eport, e = redis_server(edir)
        servers.append(e)
        ok &= compare(r, e, "redlog export-rdb -> redis-server load")
    finally:
        for c in servers:
            try: c("shutdown", "nosave")
            except Exception: pass
    return ok


sys.exit(0 if main() else 1)
