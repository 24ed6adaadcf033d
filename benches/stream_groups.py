#!/usr/bin/env python3
"""Consumer-group consume loop, side by side on two servers.

For each server: fills stream `bench` with N entries, creates group `g`,
then C consumer processes each loop `XREADGROUP GROUP g cI COUNT 10
STREAMS bench >` followed by `XACK bench g <ids>` until the stream is
drained; reports entries consumed per second. Then measures memory per
pending entry: INFO memory used_memory before and after delivering P
entries without acknowledging them (a second group), divided by P.

Usage: benches/stream_groups.py [--entries N] [--consumers C] [--pending P]
                                PORT [PORT ...]
Raw sockets, RESP2, no dependencies.
"""
import argparse
import multiprocessing as mp
import socket
import time


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(1 << 16)
            if not d:
                raise EOFError
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            d = self.s.recv(1 << 16)
            if not d:
                raise EOFError
            self.buf += d
        v, self.buf = self.buf[:n], self.buf[n + 2:]
        return v

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b":"):
            return int(rest) if t == b":" else rest
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def cmd(self, *args):
        self.s.sendall(enc(*args))
        return self.read()

    def pipeline(self, cmds):
        self.s.sendall(b"".join(enc(*c) for c in cmds))
        return [self.read() for _ in cmds]


def fill(c, key, n):
    for base in range(0, n, 1000):
        c.pipeline([("XADD", key, "*", "field", "value-%d" % i)
                    for i in range(base, min(n, base + 1000))])


def consumer(port, name, q):
    c = Conn(port)
    done = 0
    while True:
        r = c.cmd("XREADGROUP", "GROUP", "g", name, "COUNT", 10,
                  "STREAMS", "bench", ">")
        if not r or not r[0][1]:
            break
        ids = [e[0] for e in r[0][1]]
        c.cmd("XACK", "bench", "g", *ids)
        done += len(ids)
    q.put(done)


def used_memory(c):
    info = c.cmd("INFO", "memory").decode()
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return None


def run(port, entries, consumers, pending):
    c = Conn(port)
    c.cmd("DEL", "bench", "pel")
    fill(c, "bench", entries)
    c.cmd("XGROUP", "CREATE", "bench", "g", "0")
    q = mp.Queue()
    procs = [mp.Process(target=consumer, args=(port, "c%d" % i, q))
             for i in range(consumers)]
    t0 = time.time()
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    dt = time.time() - t0
    # Memory per pending entry.
    fill(c, "pel", pending)
    c.cmd("XGROUP", "CREATE", "pel", "g", "0")
    before = used_memory(c)
    got = 0
    while got < pending:
        r = c.cmd("XREADGROUP", "GROUP", "g", "c", "COUNT", 1000,
                  "STREAMS", "pel", ">")
        if not r:
            break
        got += len(r[0][1])
    after = used_memory(c)
    per = None if before is None or after is None else (after - before) / max(got, 1)
    c.cmd("DEL", "bench", "pel")
    return total, dt, per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100000)
    ap.add_argument("--consumers", type=int, default=50)
    ap.add_argument("--pending", type=int, default=100000)
    ap.add_argument("ports", type=int, nargs="+")
    a = ap.parse_args()
    for port in a.ports:
        total, dt, per = run(port, a.entries, a.consumers, a.pending)
        print("port %d: %d entries consumed by %d consumers in %.2f s = %.0f entries/s; "
              "memory per pending entry: %s bytes"
              % (port, total, a.consumers, dt, total / dt,
                 "n/a" if per is None else "%.1f" % per))


if __name__ == "__main__":
    main()
