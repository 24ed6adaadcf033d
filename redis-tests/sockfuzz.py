#!/usr/bin/env python3
"""Socket-level fuzzer: for a bounded time, several concurrent connections
send a running redlog random and mutated RESP2 / RESP3-typed / inline
frames and every command of its table (COMMAND, COMMAND DOCS) with
edge-case arguments: huge, negative and non-numeric numbers, empty
strings, NUL bytes, missing and extra arguments, keys of every type.
Connections come and go; some disconnect in the middle of a frame or
with a reset. Replies are drained, not checked: this looks for crashes,
hangs and leaks, not wrong answers (difffuzz does those).

Fails (exit 1) when the server stops accepting connections, when a PING
on a separate connection takes more than STALL_S while the fuzzing runs,
or afterwards when PING takes more than 100 ms or the server's RSS grew
by more than 100 MB from where it started (after FLUSHALL on both ends).
On failure the last frames each connection sent are printed.

Usage: sockfuzz.py PORT PID SECONDS [SEED] [CONNECTIONS]
Prints one summary line: `sockfuzz: N cases ...`."""
import os, random, socket, sys, threading, time

STALL_S = 5.0
PING_AFTER_MS = 100.0
RSS_GROWTH_MAX = 100 << 20

# Never sent: they stop the server or change what the checks rely on.
# (CONFIG RESETSTAT would zero the counter the summary reads; PFSELFTEST
# is a self-test that takes about half a second of server time per call,
# as in Redis, and would turn the run into a run of self-tests. CLIENT
# PAUSE holds every client's commands for as long as it is told, as in
# Redis: a random timeout stalls the PING watchdog by design. ACL SETUSER,
# DELUSER and LOAD can lock the watchdog's default user out.)
EXCLUDED = {
    "shutdown",
    "config|set",
    "config|resetstat",
    "pfselftest",
    "client|pause",
    "acl|setuser",
    "acl|deluser",
    "acl|load",
}
# CONFIG SET parameters the fuzzer may change (restored at the end):
# encodings, notifications, expiry effort, retention. Not the ones that
# lock clients out (requirepass, maxclients, bind, port), move files
# (dir), or make the server drop connections (timeout, buffer limits).
CONFIG_SAFE = [
    "hz", "active-expire-effort", "notify-keyspace-events",
    "zset-max-listpack-entries", "zset-max-listpack-value",
    "hash-max-listpack-entries", "hash-max-listpack-value",
    "set-max-intset-entries", "list-max-listpack-size",
    "list-compress-depth", "slowlog-log-slower-than", "slowlog-max-len",
    "stream-retention-ms", "stream-retention-bytes",
    "lazyfree-lazy-user-flush",
]
# Commands whose count argument sizes the reply (a negative count repeats
# members): huge counts would legitimately build gigabyte replies.
SMALL_COUNTS = {"srandmember", "hrandfield", "zrandmember"}
# Commands whose numbers are bit or byte offsets: an offset near 2^32
# bits legitimately allocates a 512 MB string.
OFFSETS = {"setbit", "bitfield", "setrange"}
# Blocking commands: most get a short timeout, or the connection would
# wait for good and queue everything sent after.
BLOCKING = {
    "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin",
    "bzpopmax", "bzmpop", "xread", "xreadgroup",
}
# Frames after which the rest of the connection's bytes are likely taken
# as part of a broken request: the connection usually ends with them.
DESYNC = {"mutated", "random", "resp3", "limits"}

# Numbers at the edges: no positive value between 10^4 and 2^31, so an
# offset (SETRANGE) cannot legitimately allocate hundreds of megabytes.
NUMBERS = [
    "0", "1", "-1", "2", "3", "10", "100", "10000", "-10000", "-0", "+1",
    "007", " 1", "1 ", "0x1f", "1e3", "1.5", "-1.5", ".5", "0.0000001",
    "2147483647", "2147483648", "-2147483648", "-2147483649",
    "4294967295", "4294967296", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616",
    "99999999999999999999999999999", "1e308", "1e309", "-1e309",
    "inf", "-inf", "+inf", "nan", "-nan", "(1", "(inf", "(-inf", "[a",
    "(a", "-", "+", "*", "$", "0-0", "0-1", "1-0", "1-*",
    "18446744073709551615-18446744073709551615",
    "18446744073709551616-0", "1-18446744073709551616", "-1-1",
]
STRINGS = [
    b"", b"\0", b"a\0b", b"\0\0\0\0", b"\r\n", b"\n", b"\r", b"\xff\xfe\x80",
    b"*", b"?", b"[a-", b"\\", b'"', b"'", b"k0", b"-", b"~", b"#", b"%",
    b"\xc3\xa9", b"\xf0\x9f\x92\xa9", b" ", b"\t", b"*1\r\n$4\r\nPING\r\n",
    b"<Date> <Content>", b"\\d+", b"syslog", b"json", b"%Y-%m-%d",
]
KEYS = [b"k0", b"k1", b"k2", b"k3", b"{k}4", b"", b"\0"]


def resp_parse(buf, i=0):
    """One RESP2/RESP3 value from buf at i: (value, next index)."""
    j = buf.index(b"\r\n", i)
    t, line = buf[i:i + 1], buf[i + 1:j]
    i = j + 2
    if t in (b"+", b"-", b":", b",", b"(", b"#", b"_"):
        return line, i
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            return None, i
        if len(buf) < i + n + 2:
            raise IndexError("incomplete")
        return buf[i:i + n], i + n + 2
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = int(line)
        if n < 0:
            return None, i
        if t in (b"%", b"|"):
            n *= 2
        out = []
        for _ in range(n):
            v, i = resp_parse(buf, i)
            out.append(v)
        return out, i
    raise ValueError(f"bad reply type {t!r}")


def enc(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Rpc:
    """A plain blocking connection for setup, checks and probes."""

    def __init__(self, port, timeout=30.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def call(self, *args):
        self.s.sendall(enc([a if isinstance(a, bytes) else str(a).encode() for a in args]))
        while True:
            try:
                v, i = resp_parse(self.buf)
                self.buf = self.buf[i:]
                return v
            except (ValueError, IndexError):
                pass
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("connection closed")
            self.buf += d

    def close(self):
        self.s.close()


def command_table(port):
    """[(argv prefix, arity, key positions, tokens)] for every command and
    subcommand, from COMMAND and COMMAND DOCS."""
    c = Rpc(port)
    table = c.call("COMMAND")
    docs = c.call("COMMAND", "DOCS")
    c.close()
    tokens = {}

    def walk_tokens(v, out):
        if isinstance(v, list):
            for k, x in zip(v, v[1:]):
                if k == b"token" and isinstance(x, bytes):
                    out.add(x)
            for x in v:
                walk_tokens(x, out)

    for name, doc in zip(docs[::2], docs[1::2]):
        out = set()
        walk_tokens(doc, out)
        tokens[name.lower()] = sorted(out)
        # Subcommands' docs are nested under "subcommands".
        if isinstance(doc, list):
            for k, x in zip(doc, doc[1:]):
                if k == b"subcommands" and isinstance(x, list):
                    for sname, sdoc in zip(x[::2], x[1::2]):
                        sout = set()
                        walk_tokens(sdoc, sout)
                        tokens[sname.lower()] = sorted(sout)
    cmds = []

    def add(entry, prefix):
        name = entry[0].lower()
        arity, first, last, step = (int(x) for x in entry[1:2] + entry[3:6])
        keys = set()
        if first > 0 and step > 0:
            end = last if last > 0 else 64 + last
            keys = set(range(first, end + 1, step))
        subs = entry[9] if len(entry) > 9 and isinstance(entry[9], list) else []
        if name.decode() not in EXCLUDED:
            argv = [p.upper() for p in name.split(b"|")]
            cmds.append((argv, arity, keys, tokens.get(name, [])))
        for s in subs:
            add(s, prefix)

    for entry in table:
        add(entry, [])
    return cmds


class Fuzzer:
    def __init__(self, port, seed, cmds, config_params):
        self.port = port
        self.seed = seed
        self.cmds = cmds
        self.config_params = config_params
        self.lock = threading.Lock()
        self.cases = 0
        self.kinds = {}
        self.closed_by_server = 0
        self.disconnects_mid_frame = 0
        self.connections = 0
        self.failure = None
        self.recent = {}

    # ---------------------------------------------------------- generators

    def arg(self, r, cmd, i):
        argv, arity, keys, toks = cmd
        pos = len(argv) - 1 + i  # argv index of this argument
        if pos in keys and r.random() < 0.9:
            return r.choice(KEYS)
        x = r.random()
        if toks and x < 0.35:
            t = r.choice(toks)
            return t.lower() if r.random() < 0.2 else t
        if x < 0.6:
            n = r.choice(NUMBERS).encode()
            name = argv[0].lower().decode()
            if (name in SMALL_COUNTS or name in OFFSETS) and n.lstrip(b"-").isdigit() and len(n) > 3:
                n = b"-7" if n.startswith(b"-") else b"7"
            return n
        if x < 0.75:
            return str(r.randint(-5, 20)).encode()
        if x < 0.9:
            s = r.choice(STRINGS)
            return s if r.random() < 0.9 else s * r.randint(2, 200)
        if x < 0.97:
            return r.choice(KEYS)
        return bytes(r.getrandbits(8) for _ in range(r.randint(0, 12)))

    def command(self, r):
        if self.config_params and r.random() < 0.01:
            args = [b"CONFIG", b"SET"]
            for _ in range(r.choice([1, 1, 1, 2])):
                args.append(r.choice(self.config_params).encode())
                args.append(r.choice(NUMBERS + ["yes", "no", "KEA", "Ex", "-2", "5"]).encode())
            if r.random() < 0.1:
                args.pop()
            return args
        cmd = r.choice(self.cmds)
        argv, arity, keys, toks = cmd
        need = (arity if arity > 0 else -arity) - len(argv)
        if r.random() < 0.85:
            n = max(need, 0)
            if arity < 0:
                n += r.choice([0, 0, 1, 2, 3, 4, 6, 9])
        else:
            n = max(0, need + r.randint(-3, 3))
        args = list(argv) + [self.arg(r, cmd, i + 1) for i in range(n)]
        if argv[0].lower().decode() in BLOCKING and r.random() < 0.9:
            short = r.choice([b"0.01", b"0.001", b"1"])
            args = [short if a in (b"0", b"+1", b"007") or (a.isdigit() and len(a) > 3) else a
                    for a in args]
        return args

    def inline(self, r, args):
        parts = []
        for a in args:
            q = r.random()
            if q < 0.6 and a and all(33 <= c < 127 and c not in b"\"'\\" for c in a):
                parts.append(a)
            elif q < 0.9:
                parts.append(b'"' + b"".join(
                    b"\\x%02x" % c if c < 32 or c > 126 or c in b'"\\' else bytes([c]) for c in a
                ) + b'"')
            else:
                parts.append(b"'" + a.replace(b"'", b"\\'") + b"'")
        line = b" ".join(parts)
        if r.random() < 0.1:
            line = self.mutate(r, line)
        return line + r.choice([b"\r\n", b"\n", b"\r\n", b"\n\n", b"\r\r\n"])

    def mutate(self, r, data):
        data = bytearray(data)
        for _ in range(r.randint(1, 4)):
            op = r.random()
            n = len(data)
            if op < 0.3 and n:
                data[r.randrange(n)] ^= 1 << r.randrange(8)
            elif op < 0.5:
                data.insert(r.randint(0, n), r.choice(b"\0\r\n*$-:+ \"'\\0123456789x"))
            elif op < 0.65 and n:
                del data[r.randrange(n)]
            elif op < 0.8 and n:
                # A header's number replaced by an edge value.
                i = r.randrange(n)
                v = r.choice(NUMBERS + ["536870912", "536870911", "1048577", "10", "11"]).encode()
                data[i:i + r.randint(0, 3)] = v
            elif n:
                del data[r.randint(0, n - 1):]
        return bytes(data)

    RESP3_FRAMES = [
        b"%1\r\n+a\r\n+b\r\n", b"~2\r\n:1\r\n:2\r\n", b">2\r\n+message\r\n+x\r\n",
        b"#t\r\n", b"_\r\n", b",3.14\r\n", b"(12345678901234567890\r\n",
        b"=7\r\ntxt:abc\r\n", b"|1\r\n+key\r\n+val\r\n*1\r\n$4\r\nPING\r\n",
        b"!3\r\nerr\r\n", b"$5\r\nhello\r\n", b"+PING\r\n", b"-ERR x\r\n",
        b":1\r\n", b"*2\r\n+GET\r\n:1\r\n", b"*1\r\n*1\r\n$4\r\nPING\r\n",
    ]

    def frame(self, r):
        """(kind, bytes) of one case."""
        x = r.random()
        if x < 0.55:
            return "command", enc(self.command(r))
        if x < 0.67:
            return "inline", self.inline(r, self.command(r))
        if x < 0.79:
            return "mutated", self.mutate(r, enc(self.command(r)))
        if x < 0.82:
            return "resp3", self.mutate(r, r.choice(self.RESP3_FRAMES)) if r.random() < 0.5 \
                else r.choice(self.RESP3_FRAMES)
        if x < 0.85:
            return "hello", enc([b"HELLO", r.choice([b"3", b"2", b"3", b"4", b"-1", b"x"])]
                                + r.choice([[], [], [b"AUTH", b"default", b"pw"],
                                            [b"SETNAME", r.choice(STRINGS)]]))
        if x < 0.88:
            return "random", bytes(r.getrandbits(8) for _ in range(r.randint(1, 64)))
        if x < 0.9:
            # Headers at and past the limits.
            return "limits", r.choice([
                b"*1\r\n$536870912\r\n", b"*1\r\n$536870913\r\n", b"*2147483648\r\n",
                b"*1048577\r\n", b"*-1\r\n", b"*0\r\n", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n",
                b"*" + b"9" * 70000, b"P" * 70000, b"PING " + b"\0" * 10 + b"\r\n",
                b"*1\r\n$" + b"1" * 70000,
            ])
        # A pipeline: several commands in one write.
        return "pipeline", b"".join(enc(self.command(r)) for _ in range(r.randint(2, 30)))

    # ----------------------------------------------------------- the workers

    def fail(self, why):
        with self.lock:
            if self.failure is None:
                self.failure = why

    def worker(self, wid, deadline):
        r = random.Random(self.seed * 1000 + wid)
        recent = []
        self.recent[wid] = recent
        while time.time() < deadline and self.failure is None:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=STALL_S)
                s.settimeout(2.0)
            except socket.timeout:
                self.fail(f"connecting took more than {STALL_S} s (accept stalled)")
                return
            except OSError as e:
                self.fail(f"connect failed: {e}")
                return
            with self.lock:
                self.connections += 1
            closed = False
            n = r.choice([1, 5, 20, 100, 400])
            for _ in range(n):
                if time.time() >= deadline or self.failure is not None:
                    break
                kind, data = self.frame(r)
                recent.append(data[:300])
                del recent[:-12]
                try:
                    if r.random() < 0.05 and len(data) > 1:
                        # Split in two writes: the server sees a partial frame.
                        k = r.randrange(1, len(data))
                        s.sendall(data[:k])
                        time.sleep(0.001)
                        s.sendall(data[k:])
                    else:
                        s.sendall(data)
                except (socket.timeout, OSError):
                    closed = True
                with self.lock:
                    self.cases += 1
                    self.kinds[kind] = self.kinds.get(kind, 0) + 1
                if closed or not self.drain(s):
                    closed = True
                    with self.lock:
                        self.closed_by_server += 1
                    break
                if kind in DESYNC and r.random() < 0.6:
                    break
                if r.random() < 0.003:
                    # Every key goes now and then: the RSS check measures
                    # leaks, not data the fuzzer legitimately stored.
                    try:
                        s.sendall(enc([b"FLUSHALL"]))
                    except OSError:
                        break
            try:
                end = r.random()
                if not closed and end < 0.3:
                    # Disconnect in the middle of a frame.
                    _, data = self.frame(r)
                    s.sendall(data[: r.randint(0, max(len(data) - 1, 0))])
                    with self.lock:
                        self.disconnects_mid_frame += 1
                elif not closed and end < 0.4:
                    # Reset instead of a clean close.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            except OSError:
                pass
            s.close()

    def drain(self, s):
        """Reads whatever replies arrived; False once the server closed."""
        s.setblocking(False)
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    return False
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            s.setblocking(True)
            s.settimeout(2.0)

    def prober(self, deadline, out):
        """PINGs on its own connection while the workers run."""
        worst = 0.0
        c = None
        while time.time() < deadline and self.failure is None:
            try:
                if c is None:
                    c = Rpc(self.port, timeout=STALL_S)
                t = time.time()
                if c.call("PING") != b"PONG":
                    c.close()
                    c = None  # a fuzzed CLIENT KILL may have hit it
                    continue
                dt = time.time() - t
                worst = max(worst, dt)
            except socket.timeout:
                self.fail(f"PING took more than {STALL_S} s during fuzzing (server stalled)")
                break
            except (OSError, EOFError):
                c = None
            time.sleep(0.05)
        out.append(worst)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main():
    port, pid, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else random.randrange(1 << 30)
    nconn = int(sys.argv[5]) if len(sys.argv) > 5 else 8

    cmds = command_table(port)
    c = Rpc(port)
    conf = c.call("CONFIG", "GET", "*")
    conf = dict(zip(conf[::2], conf[1::2]))
    params = [p for p in CONFIG_SAFE if p.encode() in conf]
    saved = {p: conf[p.encode()] for p in params}
    c.call("FLUSHALL")
    c.close()
    time.sleep(0.2)
    rss_start = rss(pid)

    f = Fuzzer(port, seed, cmds, params)
    deadline = time.time() + seconds
    threads = [threading.Thread(target=f.worker, args=(i, deadline)) for i in range(nconn)]
    worst = []
    threads.append(threading.Thread(target=f.prober, args=(deadline, worst)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    problems = []
    if f.failure:
        problems.append(f.failure)
    try:
        os.kill(pid, 0)
    except OSError:
        problems.append("the server process is gone")
    ping_ms = None
    rss_end = None
    processed = None
    if not problems:
        time.sleep(0.5)  # let the server finish with the closed connections
        try:
            c = Rpc(port, timeout=10)
            t = time.time()
            ok = c.call("PING") == b"PONG"
            ping_ms = (time.time() - t) * 1000
            if not ok:
                problems.append("PING afterwards did not answer PONG")
            elif ping_ms > PING_AFTER_MS:
                problems.append(f"PING afterwards took {ping_ms:.1f} ms (> {PING_AFTER_MS:.0f} ms)")
            info = c.call("INFO", "stats")
            for line in (info or b"").split(b"\r\n"):
                if line.startswith(b"total_commands_processed:"):
                    processed = int(line.split(b":")[1])
            # A FAILOVER the fuzz started (a fuzz connection that sent
            # SYNC is a replica) pauses writes until it ends, as in Redis:
            # end it before the writes below.
            c.call("FAILOVER", "ABORT")
            for p, v in saved.items():
                c.call("CONFIG", "SET", p, v)
            c.call("FLUSHALL")
            c.close()
            time.sleep(0.5)
            rss_end = rss(pid)
            if rss_end - rss_start > RSS_GROWTH_MAX:
                problems.append(
                    f"RSS grew from {rss_start >> 20} MB to {rss_end >> 20} MB (> 100 MB)"
                )
        except (OSError, EOFError) as e:
            problems.append(f"PING afterwards failed: {e}")
    kinds = " ".join(f"{k}={v}" for k, v in sorted(f.kinds.items()))
    print(
        f"sockfuzz: {f.cases} cases ({kinds}) over {f.connections} connections "
        f"({f.disconnects_mid_frame} dropped mid-frame, {f.closed_by_server} closed by the server) "
        f"in {seconds:.0f} s, seed {seed}, {len(cmds)} commands in the table"
        + (f", {processed} run by the server" if processed is not None else "")
        + "; "
        f"worst PING while fuzzing {max(worst or [0]) * 1000:.1f} ms"
        + (f"; PING after {ping_ms:.2f} ms" if ping_ms is not None else "")
        + (f"; RSS {rss_start >> 20} MB -> {rss_end >> 20} MB" if rss_end is not None else "")
    )
    if problems:
        for p in problems:
            print(f"sockfuzz: FAILED: {p}")
        for wid, recent in sorted(f.recent.items()):
            print(f"  connection {wid}, last frames sent (oldest first):")
            for d in recent:
                print(f"    {d!r}")
        sys.exit(1)


if __name__ == "__main__":
    main()
