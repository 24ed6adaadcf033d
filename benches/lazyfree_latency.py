#!/usr/bin/env python3
"""Latency of a concurrent PING while a big value is deleted: DEL (freed
on the spot, under the keyspace lock) against UNLINK (freed on the
lazy-free thread), for a 5M-member set and a 5M-field hash.

Usage: benches/lazyfree_latency.py PORT [N]   (N defaults to 5000000)

Against a running server (redlog or redis-server). For each value type and
each command: fills the key (one EVAL), starts a client that PINGs in a
loop, sends the deletion from another connection, and prints the
deletion's own time and the longest PING round trip seen while it ran
(and for 200 ms after). No packages needed beyond python3.
"""
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000_000


def conn():
    s = socket.create_connection(("127.0.0.1", PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def call(s, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("closed")
        buf += chunk
    return buf


FILL = {
    "set": "for i = 1, tonumber(ARGV[1]) do redis.call('SADD', KEYS[1], 'm' .. i) end return 1",
    "hash": "for i = 1, tonumber(ARGV[1]) do redis.call('HSET', KEYS[1], 'f' .. i, i) end return 1",
}


def run(kind, cmd):
    c = conn()
    call(c, "DEL", "big")
    t = time.perf_counter()
    call(c, "EVAL", FILL[kind], 1, "big", N)
    fill_s = time.perf_counter() - t
    stop = threading.Event()
    worst = [0.0]
    pings = [0]

    def pinger():
        p = conn()
        while not stop.is_set():
            t0 = time.perf_counter()
            call(p, "PING")
            worst[0] = max(worst[0], time.perf_counter() - t0)
            pings[0] += 1
        p.close()

    th = threading.Thread(target=pinger)
    th.start()
    time.sleep(0.2)
    worst[0] = 0.0
    t = time.perf_counter()
    reply = call(c, cmd, "big")
    del_ms = (time.perf_counter() - t) * 1000
    time.sleep(0.2)
    stop.set()
    th.join()
    c.close()
    print(f"{kind:5} {N:>9} {cmd:7} reply {reply.strip().decode():4}  "
          f"{cmd} took {del_ms:9.2f} ms  worst concurrent PING {worst[0] * 1000:9.2f} ms  "
          f"(fill {fill_s:.1f} s)", flush=True)


for kind in ("set", "hash"):
    for cmd in ("DEL", "UNLINK"):
        run(kind, cmd)
