#!/usr/bin/env python3
"""Differential fuzzer: the same random command sequence against a real
redis-server and against redlog, reply by reply, byte for byte. Stops at the
first difference and prints the command, both replies, the commands before
it and a few probes of the key. See redis-tests/README.md ("Differential
fuzzing") for what the grammar leaves out and why.

Usage: difffuzz.py REDIS_PORT REDLOG_PORT SEED COMMANDS (odd seeds use RESP3;
       at the end the whole keyspaces are compared)
       difffuzz.py REDIS_PORT REDLOG_PORT compare resp2|resp3
       (only the keyspace comparison: after redlog restarted)"""
import random, re, socket, sys

def enc(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d: raise EOFError
            self.buf += d
        i = self.buf.index(b"\r\n")
        l, self.buf = self.buf[:i], self.buf[i+2:]
        return l
    def _n(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d: raise EOFError
            self.buf += d
        r, self.buf = self.buf[:n], self.buf[n:]
        return r
    def reply(self):
        l = self._line()
        t = l[:1]
        if t in (b"+", b"-", b":", b",", b"_", b"#", b"("):
            return l
        if t in (b"$", b"=", b"!"):
            n = int(l[1:])
            if n < 0: return l
            return l + b"|" + self._n(n + 2)[:-2]
        if t in (b"*", b"~", b">", b"%", b"|"):
            n = int(l[1:])
            if n < 0: return l
            m = 2 if t in (b"%", b"|") else 1
            return l + b"[" + b",".join(self.reply() for _ in range(n * m)) + b"]"
        raise ValueError(l)
    def call(self, args):
        self.s.sendall(enc(args))
        return self.reply()

R = random.Random()
K = lambda p: R.choice([f"{p}{i}" for i in range(3)] + ["x0", "x1"])
ANY = lambda: K(R.choice("slhtzq"))
M = lambda: R.choice(["0", "1", "2", "5", "-3", "m0", "m1", "m2", "abc", "", "10", "3.5"])
I = lambda lo=-3, hi=4: str(R.randint(lo, hi))
F = lambda: R.choice(["0", "1.5", "-2", "inf", "-inf", "+inf", "(1", "(2.5", "3", "nan", "1e3", "abc"])

BIG = lambda: R.choice(["x" * 65, "y" * 70, "9" * 20, "12345678901234567890123", "-0", "007", "1.0"])
NUMS = lambda n: [str(R.randint(-50, 300)) for _ in range(n)]

def gen2():
    return R.choice([
        lambda: ["SADD", K("t")] + NUMS(R.randint(1, 140)),
        lambda: ["SADD", K("t"), BIG()],
        lambda: ["RPUSH", K("l")] + NUMS(R.randint(1, 140)),
        lambda: ["RPUSH", K("l"), BIG()],
        lambda: ["HSET", K("h"), BIG(), M()],
        lambda: ["HSET", K("h")] + sum([[f"f{i}", v] for i, v in enumerate(NUMS(R.randint(1, 70)))], []),
        lambda: ["ZADD", K("z")] + sum([[str(R.randint(0, 5)), v] for v in NUMS(R.randint(1, 70))], []),
        lambda: ["ZADD", K("z"), "1", BIG()],
        lambda: ["SET", K("s"), BIG()], lambda: ["APPEND", K("s"), BIG()],
        lambda: ["INCR", K("s")], lambda: ["DECR", K("s")], lambda: ["INCRBY", K("s"), R.choice(["9223372036854775807", "-9223372036854775808", "1"])],
        lambda: ["OBJECT", "ENCODING", ANY()],
        # The encoding thresholds move under the values: conversions happen
        # at the next write that crosses one, and never back.
        lambda: ["CONFIG", "SET", R.choice(["hash-max-listpack-entries", "zset-max-listpack-entries", "set-max-intset-entries", "hash-max-ziplist-entries"]), R.choice(["0", "1", "2", "16", "64", "128", "512"])],
        lambda: ["CONFIG", "SET", R.choice(["hash-max-listpack-value", "zset-max-listpack-value", "zset-max-ziplist-value"]), R.choice(["0", "1", "3", "20", "64"])],
        lambda: ["UNLINK", ANY(), ANY()], lambda: ["OBJECT", "FREQ", ANY()],
        lambda: ["SELECT", R.choice(["0", "1"])], lambda: ["MOVE", ANY(), R.choice(["0", "1"])],
        lambda: ["SWAPDB", "0", "1"],
        # No TTL / EXPIRETIME reads: expiries are mostly set relative to
        # the clock, which the two servers read microseconds apart.
        lambda: ["EXPIRE", ANY(), R.choice(["0", "-1", "9999999999999999"])],
        lambda: ["EXPIREAT", ANY(), R.choice(["4102444800", "4102444801", "1"]), R.choice(["NX", "XX", "GT", "LT"])][:R.randint(3, 4)],
        lambda: ["PERSIST", ANY()],
        # A key created already expired: later writes find it expired.
        lambda: ["SET", ANY(), M(), "PXAT", "1"], lambda: ["SET", ANY(), M(), "PXAT", "1"],
        lambda: ["SETEX", K("s"), R.choice(["0", "-5", "100", "abc"]), M()],
        lambda: ["GETEX", K("s"), R.choice(["PERSIST", "EX", "PX"]), R.choice(["0", "100000", "-1"])][:R.randint(2, 4)],
        lambda: ["SET", K("s"), M(), "EXAT", R.choice(["1", "99999999999", "0", "-1"])],
        lambda: ["SET", K("s"), M(), "GET", "NX"],
        lambda: ["SRANDMEMBER", K("t"), "0"], lambda: ["SPOP", K("t"), "0"],
        lambda: ["LPOS", K("l"), R.choice(["1", "2", "x" * 65]), "RANK", R.choice(["1", "-1", "0"])],
        lambda: ["SMISMEMBER", K("t"), "1", "2", "300"], lambda: ["SINTERCARD", "1", K("t"), "LIMIT", "5"],
        lambda: ["ZRANGE", K("z"), "0", "5", "WITHSCORES"], lambda: ["ZRANK", K("z"), R.choice(["1", "2", "x" * 65])],
        lambda: ["HGET", K("h"), "f3"], lambda: ["HSTRLEN", K("h"), "f1"],
        lambda: ["LRANGE", K("l"), "0", "3"], lambda: ["LINDEX", K("l"), "-1"],
        lambda: ["TYPE", ANY()], lambda: ["EXISTS", ANY()], lambda: ["STRLEN", K("s")],
        lambda: ["GETRANGE", K("s"), "0", "-1"],
        # Blocking forms: served at once, or timing out after 10 ms.
        lambda: ["BLPOP", K("l"), K("l"), R.choice(["0.01", "-1", "abc", "0.001"])],
        lambda: ["BRPOP", K("l"), "0.01"], lambda: ["BLMOVE", K("l"), K("l"), "LEFT", "RIGHT", "0.01"],
        lambda: ["BLMPOP", "0.01", "2", K("l"), K("l"), "LEFT", "COUNT", "2"],
        lambda: ["BZPOPMIN", K("z"), K("z"), "0.01"], lambda: ["BZPOPMAX", K("z"), "0.01"],
        lambda: ["BZMPOP", "0.01", "1", K("z"), "MIN"],
        lambda: ["XREAD", "BLOCK", "10", "STREAMS", K("q"), R.choice(["$", "0"])],
        lambda: ["XREADGROUP", "GROUP", "g", "a", "BLOCK", "10", "STREAMS", K("q"), ">"],
        # Transactions on the one connection: queued replies, EXEC after
        # errors, WATCH aborts by this client's own writes.
        lambda: ["MULTI"], lambda: ["MULTI"], lambda: ["EXEC"], lambda: ["DISCARD"],
        lambda: ["WATCH", ANY()], lambda: ["UNWATCH"],
    ])()

FL = lambda: R.choice(["0.1", "0.2", "-0", "1e308", "-1e308", "1.7976931348623157e308", "4.9e-324",
                       "123456789012345678", "1e-5", "5.0e3", "-1.5e-3", "3.14159265358979323846", "1e17",
                       "0x1p3", "  1", "1e400", "inf", "-inf", ".5", "5.", "+7", "1_0"])

def gen3():
    """Number formatting and parsing: scores, float increments, weights."""
    return R.choice([
        lambda: ["ZADD", K("z"), FL(), M()], lambda: ["ZINCRBY", K("z"), FL(), M()],
        lambda: ["ZSCORE", K("z"), M()], lambda: ["ZMSCORE", K("z"), M(), M()],
        lambda: ["ZRANGE", K("z"), "0", "-1", "WITHSCORES"],
        lambda: ["ZRANGEBYSCORE", K("z"), R.choice(["-inf", FL()]), R.choice(["+inf", FL()]), "WITHSCORES"],
        lambda: ["ZUNIONSTORE", K("z"), "2", K("z"), K("z"), "WEIGHTS", FL(), FL()] + R.choice([[], ["AGGREGATE", "SUM"], ["AGGREGATE", "MIN"]]),
        lambda: ["ZINTER", "2", K("z"), K("z"), "WEIGHTS", FL(), FL(), "WITHSCORES"],
        lambda: ["INCRBYFLOAT", K("s"), FL()], lambda: ["HINCRBYFLOAT", K("h"), M(), FL()],
        lambda: ["SET", K("s"), FL()], lambda: ["HSET", K("h"), M(), FL()],
        lambda: ["INCRBY", K("s"), R.choice(["1", "-1", "9223372036854775807", "-9223372036854775808", "1.0", "01", "-0"])],
        lambda: ["HINCRBY", K("h"), M(), R.choice(["1", "9223372036854775807", "-9223372036854775808", "x"])],
        lambda: ["GET", K("s")], lambda: ["HGET", K("h"), M()],
        lambda: ["ZCOUNT", K("z"), R.choice(["-inf", "(" + FL(), FL()]), R.choice(["+inf", "(" + FL(), FL()])],
    ])()

# Keyspace walks: "SCANALL" is this script's own word for a whole cursor
# iteration (SCAN, HSCAN, SSCAN, ZSCAN until cursor 0), compared as the
# sorted multiset of what it returned: the order is the hash tables'.
PAT = lambda: R.choice(["*", "k*", "x?", "[st]*", "*1", "h[0-1]", "\\*", "z[^0]", "*[", "m?"])

def gen4():
    return R.choice([
        lambda: ["KEYS", PAT()],
        lambda: ["SCANALL", "SCAN"] + R.choice([[], ["MATCH", PAT()], ["TYPE", R.choice(["string", "list", "zset", "stream", "nope"])], ["COUNT", "3"]]),
        lambda: ["SCANALL", "HSCAN", K("h")] + R.choice([[], ["MATCH", PAT()], ["COUNT", "2"]]),
        lambda: ["SCANALL", "SSCAN", K("t")] + R.choice([[], ["MATCH", PAT()], ["COUNT", "2"]]),
        lambda: ["SCANALL", "ZSCAN", K("z")] + R.choice([[], ["MATCH", PAT()], ["COUNT", "2"]]),
        lambda: ["TOUCH", ANY(), ANY()], lambda: ["UNLINK", ANY()],
        lambda: ["OBJECT", "FOO", ANY()],
        lambda: ["HRANDFIELD", K("h"), "0"], lambda: ["ZRANDMEMBER", K("z"), "0"],
        lambda: ["LPOS", K("l"), "1", "COUNT", "0", "MAXLEN", "0"],
        lambda: ["SUBSTR", K("s"), "1", "-2"], lambda: ["GETRANGE", K("s"), "-100", "100"],
        lambda: ["SETRANGE", K("s"), "0", ""], lambda: ["APPEND", K("s"), ""],
    ])()

BITS = lambda: R.choice(["u1", "u4", "u8", "i8", "i5", "u16", "i16", "u63", "i64", "i63", "u64", "x8"])
BOFF = lambda: R.choice(["0", "1", "7", "8", "13", "31", "64", "100", "#0", "#1", "#3", "-1", "x"])
BV = lambda: R.choice(["0", "1", "-1", "127", "128", "255", "256", "-129", "9223372036854775807", "-9223372036854775808", "100000"])
RI = lambda: R.choice(["0", "1", "2", "-1", "-2", "-3", "5", "7", "8", "15", "16", "-9", "-17", "100", "-100"])

def bitfield_ops():
    ops = []
    for _ in range(R.randint(1, 4)):
        ops += R.choice([
            lambda: ["GET", BITS(), BOFF()],
            lambda: ["SET", BITS(), BOFF(), BV()],
            lambda: ["INCRBY", BITS(), BOFF(), BV()],
            lambda: ["OVERFLOW", R.choice(["WRAP", "SAT", "FAIL", "NO"])],
        ])()
    # Now and then a truncated list (syntax errors).
    return ops if R.random() < 0.9 else ops[:R.randint(0, len(ops))]

HLL_ELE = lambda: R.choice(["a", "b", "c", "x" * 40, "1", "2", str(R.randint(0, 5000))])

def gen_hll():
    return R.choice([
        lambda: ["PFADD", K("s")] + [HLL_ELE() for _ in range(R.randint(0, 6))],
        lambda: ["PFADD", K("s")] + [str(R.randint(0, 10**6)) for _ in range(R.randint(50, 400))],
        lambda: ["PFCOUNT", K("s")] + R.choice([[], [K("s")], [ANY()]]),
        lambda: ["PFMERGE", K("s"), K("s")] + R.choice([[], [K("s")], [ANY()]]),
        lambda: ["PFDEBUG", R.choice(["ENCODING", "DECODE", "TODENSE", "NOPE"]), K("s")],
        lambda: ["GET", K("s")],
    ])()

SORTPAT = lambda: R.choice(["nosort", "s*", "h*->f1", "h*->m0", "x*", "*", "#", "noast", "s*->x"])

def gen_sort():
    """SORT over lists, sets, zsets with patterns into the s/h keys."""
    opts = []
    for _ in range(R.randint(0, 4)):
        opts += R.choice([
            lambda: ["ASC"], lambda: ["DESC"], lambda: ["ALPHA"],
            lambda: ["LIMIT", I(-2, 4), I(-2, 4)],
            lambda: ["BY", SORTPAT()], lambda: ["GET", SORTPAT()],
            lambda: ["STORE", K(R.choice("ls"))],
        ])()
    src = R.choice([K("l"), K("l"), K("z"), K("s"), K("h")])
    # Only the orders Redis defines are compared (any key may hold any
    # type after RENAME/COPY, so the source's type is unknown here):
    # - BY a constant keeps the native order, which a set does not have;
    #   with STORE Redis sorts a set ALPHA instead, so such sorts STORE;
    # - a numeric SORT ... STORE that Redis refuses for a stale errno (see
    #   main) would leave the keyspaces different: STORE sorts are ALPHA;
    # - ALPHA BY a pattern leaves ties (missing BY keys) in load order,
    #   which is a sorted set's dict order in Redis, and LIMIT reorders
    #   them with Redis's partial quicksort: no ALPHA with such a BY (and
    #   no BY at all where STORE makes the sort ALPHA).
    last_by = None
    for a, b in zip(opts, opts[1:]):
        if a == "BY":
            last_by = b
    if last_by is not None and "*" not in last_by and "STORE" not in opts:
        opts += ["STORE", K("s")]
    if "STORE" in opts and "ALPHA" not in opts:
        opts.append("ALPHA")
    if last_by is not None and "*" in last_by and "ALPHA" in opts:
        if "STORE" in opts:
            kept, i = [], 0
            while i < len(opts):
                if opts[i] == "BY" and i + 1 < len(opts):
                    i += 2
                    continue
                kept.append(opts[i])
                i += 1
            opts = kept
        else:
            opts = [o for o in opts if o != "ALPHA"]
    if R.random() < 0.3 and "STORE" not in opts:
        return ["SORT_RO", src] + opts
    return ["SORT", src] + opts

def gen_bits():
    """Bitmaps over the string keys (and wrong types)."""
    return R.choice([
        lambda: ["SETBIT", K("s"), R.choice(["0", "1", "7", "8", "15", "63", "100", "-1", "x"]), R.choice(["0", "1", "1", "2"])],
        lambda: ["GETBIT", R.choice([K("s"), ANY()]), R.choice(["0", "1", "7", "12", "63", "1000"])],
        lambda: ["BITCOUNT", R.choice([K("s"), ANY()])] + R.choice([[], [RI(), RI()], [RI(), RI(), R.choice(["BIT", "BYTE", "bit", "NO"])], [RI()]]),
        lambda: ["BITPOS", R.choice([K("s"), ANY()]), R.choice(["0", "1", "0", "1", "2"])] + R.choice([[], [RI()], [RI(), RI()], [RI(), RI(), R.choice(["BIT", "BYTE"])]]),
        lambda: ["BITOP", R.choice(["AND", "OR", "XOR", "NOT", "nand"]), K("s"), K("s")] + R.choice([[], [K("s")], [K("s"), ANY()]]),
        lambda: ["BITFIELD", K("s")] + bitfield_ops(),
        lambda: ["BITFIELD_RO", R.choice([K("s"), ANY()]), "GET", BITS(), BOFF()] + R.choice([[], ["GET", BITS(), BOFF()], ["SET", "u8", "0", "1"]]),
        lambda: ["SET", K("s"), R.choice(["\xff\xf0", "foobar", "\x00\x01\x80", "12", "-5", ""]).encode().decode("unicode_escape")],
    ])()

GEO_LON = lambda: R.choice(["0", "180", "-180", "13.361389", "15.087269", "181", "x", f"{R.uniform(-180, 180):.6f}", f"{R.uniform(-3, 3):.3f}", f"{R.uniform(-3, 3):.3f}"])
GEO_LAT = lambda: R.choice(["0", "85.05112878", "-85.05112878", "38.115556", "86", "y", f"{R.uniform(-85, 85):.6f}", f"{R.uniform(-3, 3):.3f}", f"{R.uniform(-3, 3):.3f}"])
GEO_M = lambda: R.choice("abcdefgh")
GEO_UNIT = lambda: R.choice(["m", "km", "km", "km", "mi", "ft", "KM", "yd"])
GEO_DIST = lambda: R.choice(["0", "1", "50", "200", "500", "1000", "3000", "20000", "-1", "x"])
GEO_KEY = lambda: R.choice([K("z"), K("z"), ANY()])

def geo_opts(search, store):
    """GEOSEARCH / GEORADIUS options in random order, invalid ones included."""
    opts = []
    for _ in range(R.randint(0, 4)):
        o = R.random()
        if o < 0.15 and not store:
            opts.append(R.choice(["WITHDIST", "WITHCOORD", "WITHHASH", "withdist"]))
        elif o < 0.3:
            opts.append(R.choice(["ASC", "DESC"]))
        elif o < 0.5:
            opts += ["COUNT", R.choice(["1", "2", "3", "5", "0", "-1", "x"])] + R.choice([[], ["ANY"], ["ANY"]])
        elif o < 0.55:
            opts.append("ANY")
        elif o < 0.65 and not search:
            opts += [R.choice(["STORE", "STOREDIST"]), K("z")]
        elif o < 0.7 and store:
            opts.append("STOREDIST")
        elif o < 0.72:
            opts.append(R.choice(["BOGUS", "STORE"]))
    return opts

def geo_from():
    return R.choice([
        lambda: ["FROMMEMBER", GEO_M()], lambda: ["FROMLONLAT", GEO_LON(), GEO_LAT()],
        lambda: ["FROMLONLAT", f"{R.uniform(-180, 180):.4f}", f"{R.uniform(-85, 85):.4f}"], lambda: [],
    ])()

def geo_by():
    return R.choice([
        lambda: ["BYRADIUS", GEO_DIST(), GEO_UNIT()], lambda: ["BYBOX", GEO_DIST(), GEO_DIST(), GEO_UNIT()],
        lambda: ["BYRADIUS", R.choice(["2000", "8000", "15000"]), "km"], lambda: [],
    ])()

def geo_parts(store):
    """FROM*, BY* and options, now and then in another order or repeated."""
    parts = [geo_from(), geo_by(), geo_opts(True, store)]
    if R.random() < 0.2:
        R.shuffle(parts)
    if R.random() < 0.05:
        parts.append(R.choice([geo_from, geo_by])())
    return sum(parts, [])

def gen_geo():
    """Geo commands over the sorted-set keys (and wrong types)."""
    return R.choice([
        lambda: ["GEOADD", K("z")] + R.choice([[], [], ["NX"], ["XX"], ["CH"], ["XX", "CH"], ["NX", "XX"]]) + sum(([GEO_LON(), GEO_LAT(), GEO_M()] for _ in range(R.randint(1, 4))), []),
        lambda: ["GEOADD", K("z")] + sum(([f"{R.uniform(-180, 180):.5f}", f"{R.uniform(-85, 85):.5f}", GEO_M()] for _ in range(R.randint(1, 6))), []),
        lambda: ["GEOPOS", GEO_KEY()] + [GEO_M() for _ in range(R.randint(0, 3))],
        lambda: ["GEOHASH", GEO_KEY()] + [GEO_M() for _ in range(R.randint(0, 3))],
        lambda: ["GEODIST", GEO_KEY(), GEO_M(), GEO_M()] + R.choice([[], [GEO_UNIT()], ["km", "x"]]),
        lambda: ["GEOSEARCH", GEO_KEY()] + geo_parts(False),
        lambda: ["GEOSEARCHSTORE", K("z"), GEO_KEY()] + geo_parts(True),
        lambda: [R.choice(["GEORADIUS", "GEORADIUS_RO"]), GEO_KEY(), GEO_LON(), GEO_LAT(), GEO_DIST(), GEO_UNIT()] + geo_opts(False, False),
        lambda: [R.choice(["GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]), GEO_KEY(), GEO_M(), GEO_DIST(), GEO_UNIT()] + geo_opts(False, False),
        lambda: ["ZRANGE", K("z"), "0", "-1", "WITHSCORES"],
    ])()

def crc64(data):
    """Redis's CRC-64/Jones (the DUMP footer), reflected."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x95AC9329AC4BC9B5 if crc & 1 else 0)
    return crc

RESTORE_TTL = lambda: R.choice([["0"], ["0"], ["100000"], ["-1"], ["x"], ["1", "ABSTTL"], ["4102444800000", "ABSTTL"]])
RESTORE_OPTS = lambda: R.choice([[], [], ["REPLACE"], ["REPLACE"], ["IDLETIME", R.choice(["0", "100", "-1", "x"])],
                                 ["FREQ", R.choice(["0", "5", "255", "256", "-1"])], ["IDLETIME", "1", "FREQ", "1"],
                                 ["REPLACE", "FREQ", "3"], ["REPLACE", "IDLETIME", "1000"], ["IDLETIME"], ["FOO"]])

def gen_dump():
    """DUMP, and RESTORE of a DUMP (this script's DUMPRESTORE: the payload
    one server DUMPed, RESTOREd on both, to a key of the same family, so
    the SORT grammar's lists stay lists) or of a damaged payload
    (RESTOREBAD)."""
    return R.choice([
        lambda: ["DUMP", ANY()],
        lambda: (lambda ttl, p: ["DUMPRESTORE", R.choice("ab"), K(p), K(p), ttl[0]] + RESTORE_OPTS() + ttl[1:])(RESTORE_TTL(), R.choice("slhtzq")),
        lambda: (lambda p: ["DUMPRESTORE", R.choice("ab"), K(p), K(p), "0", "REPLACE"])(R.choice("slhtzq")),
        lambda: (lambda p: ["DUMPRESTORE", R.choice("ab"), K(p), K(p), "0", "REPLACE"])(R.choice("slhtzq")),
        lambda: (lambda p: ["DUMPRESTORE", R.choice("ab"), K(p), K(p), "0", "REPLACE"])(R.choice("slhtzq")),
        lambda: ["RESTOREBAD", R.choice(["trunc", "version", "crc", "type", "body", "empty", "tail"]), ANY(), K("s")],
        lambda: ["OBJECT", "FREQ", ANY()],
    ])()

def dump_deterministic(redis, key):
    """A DUMP both servers must produce byte for byte: not a stream
    (delivery times, Redis's node history), not a hash table (dict
    order), not a list (quicklist node boundaries depend on history)."""
    t = redis.call(["TYPE", key])
    if t in (b"+stream", b"+list"):
        return False
    return redis.call(["OBJECT", "ENCODING", key]) != b"$9|hashtable"

def bulk_of(r):
    return r.split(b"|", 1)[1] if r[:1] == b"$" and b"|" in r else None

def damage(kind, p):
    """A damaged DUMP payload: caught by the footer checks, or with a
    valid footer and a body the decoder must refuse."""
    if kind == "empty":
        return b""
    if kind == "trunc":
        return p[:-1]
    if kind == "version":
        return p[:-10] + bytes([11, 0]) + p[-8:]
    if kind == "crc":
        return p[:-1] + bytes([p[-1] ^ 1])
    if kind == "tail":
        return p + b"x"
    body = p[:-10]
    if kind == "type":
        body = bytes([99]) + body[1:]
    else:
        body = body[:-1]
    body += p[-10:-8]
    return body + crc64(body).to_bytes(8, "little")

def gen():
    r = R.random()
    if R.random() < 0.04:
        return gen_dump()
    if r < 0.03:
        return gen_sort()
    if r < 0.05:
        return gen_bits()
    if r < 0.07:
        return gen_hll()
    if r < 0.1:
        return gen_geo()
    if r < 0.12:
        return gen4()
    if r < 0.25:
        return gen3()
    if r < 0.5:
        return gen2()
    c = R.choice([
        lambda: ["SET", K("s"), M()] + R.choice([[], ["NX"], ["XX"], ["GET"], ["KEEPTTL"], ["EX", "100"], ["PX", "0"], ["EX", "-1"]]),
        lambda: ["GET", K("s")], lambda: ["INCR", K("s")], lambda: ["INCRBY", K("s"), I(-100, 100)],
        lambda: ["INCRBYFLOAT", K("s"), R.choice(["1.5", "-0.25", "1e2", "abc", "inf"])],
        lambda: ["APPEND", K("s"), M()], lambda: ["SETRANGE", K("s"), I(-1, 8), M()],
        lambda: ["GETRANGE", K("s"), I(-5, 5), I(-5, 5)], lambda: ["STRLEN", K("s")],
        lambda: ["MSET", K("s"), M(), K("s"), M()], lambda: ["MSETNX", K("s"), M(), K("s"), M()],
        lambda: ["MGET", K("s"), K("s"), ANY()], lambda: ["GETDEL", K("s")], lambda: ["GETSET", K("s"), M()],
        lambda: ["LCS", K("s"), K("s")] + R.choice([[], ["LEN"], ["IDX"], ["IDX", "MINMATCHLEN", "1", "WITHMATCHLEN"]]),
        lambda: ["DEL", ANY(), ANY()], lambda: ["EXISTS", ANY(), ANY()], lambda: ["TYPE", ANY()],
        lambda: ["RENAME", ANY(), ANY()], lambda: ["RENAMENX", ANY(), ANY()],
        lambda: ["COPY", ANY(), ANY()] + R.choice([[], ["REPLACE"], ["DB", "1"]]),
        lambda: ["EXPIRE", ANY(), I(100, 1000)] + R.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]]),
        lambda: ["PERSIST", ANY()], lambda: ["OBJECT", "ENCODING", ANY()],
        lambda: ["RPUSH", K("l"), M(), M()], lambda: ["LPUSH", K("l"), M()], lambda: ["LPUSHX", K("l"), M()],
        lambda: ["LPOP", K("l")] + R.choice([[], [I(0, 3)], ["-1"]]), lambda: ["RPOP", K("l"), I(0, 3)],
        lambda: ["LRANGE", K("l"), I(-5, 5), I(-5, 5)], lambda: ["LINDEX", K("l"), I(-4, 4)],
        lambda: ["LINSERT", K("l"), R.choice(["BEFORE", "AFTER"]), M(), M()],
        lambda: ["LSET", K("l"), I(-4, 4), M()], lambda: ["LTRIM", K("l"), I(-4, 4), I(-4, 4)],
        lambda: ["LREM", K("l"), I(-2, 2), M()], lambda: ["LPOS", K("l"), M()] + R.choice([[], ["RANK", I(-2, 2)], ["COUNT", "0"], ["MAXLEN", "2", "COUNT", "2"]]),
        lambda: ["LMOVE", K("l"), K("l"), R.choice(["LEFT", "RIGHT"]), R.choice(["LEFT", "RIGHT"])],
        lambda: ["LMPOP", "2", K("l"), K("l"), R.choice(["LEFT", "RIGHT"])] + R.choice([[], ["COUNT", I(1, 3)]]),
        lambda: ["LLEN", K("l")],
        lambda: ["HSET", K("h"), M(), M(), M(), M()], lambda: ["HSETNX", K("h"), M(), M()], lambda: ["HDEL", K("h"), M(), M()],
        lambda: ["HGET", K("h"), M()], lambda: ["HMGET", K("h"), M(), M()], lambda: ["HGETALL", K("h")],
        lambda: ["HINCRBY", K("h"), M(), I()], lambda: ["HINCRBYFLOAT", K("h"), M(), R.choice(["0.5", "abc", "1e400"])],
        lambda: ["HKEYS", K("h")], lambda: ["HVALS", K("h")], lambda: ["HLEN", K("h")], lambda: ["HSTRLEN", K("h"), M()],
        lambda: ["HEXISTS", K("h"), M()],
        lambda: ["SADD", K("t"), M(), M()], lambda: ["SREM", K("t"), M()], lambda: ["SMEMBERS", K("t")],
        lambda: ["SISMEMBER", K("t"), M()], lambda: ["SMISMEMBER", K("t"), M(), M()], lambda: ["SCARD", K("t")],
        lambda: ["SMOVE", K("t"), K("t"), M()], lambda: ["SINTER", K("t"), K("t")], lambda: ["SUNION", K("t"), K("t")],
        lambda: ["SDIFF", K("t"), K("t")], lambda: ["SINTERSTORE", K("t"), K("t"), K("t")],
        lambda: ["SUNIONSTORE", K("t"), K("t"), K("t")], lambda: ["SDIFFSTORE", K("t"), K("t"), K("t")],
        lambda: ["SINTERCARD", "2", K("t"), K("t")] + R.choice([[], ["LIMIT", I(0, 2)]]),
        lambda: ["ZADD", K("z")] + R.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["CH"], ["INCR"], ["GT", "CH"], ["NX", "XX"]]) + [F(), M()],
        lambda: ["ZINCRBY", K("z"), F(), M()], lambda: ["ZREM", K("z"), M(), M()], lambda: ["ZSCORE", K("z"), M()],
        lambda: ["ZMSCORE", K("z"), M(), M()], lambda: ["ZRANK", K("z"), M()], lambda: ["ZREVRANK", K("z"), M()],
        lambda: ["ZCARD", K("z")], lambda: ["ZCOUNT", K("z"), F(), F()],
        lambda: ["ZRANGE", K("z"), I(-3, 3), I(-3, 3)] + R.choice([[], ["WITHSCORES"], ["REV"], ["REV", "WITHSCORES"]]),
        lambda: ["ZRANGE", K("z"), F(), F(), "BYSCORE"] + R.choice([[], ["LIMIT", I(0, 2), I(-1, 2)], ["REV"], ["WITHSCORES"]]),
        lambda: ["ZRANGEBYSCORE", K("z"), F(), F()] + R.choice([[], ["WITHSCORES"], ["LIMIT", I(0, 2), I(-1, 2)]]),
        lambda: ["ZREVRANGEBYSCORE", K("z"), F(), F()],
        lambda: ["ZRANGEBYLEX", K("z"), R.choice(["-", "[0", "(1", "[m", "+"]), R.choice(["+", "[2", "(m1", "-"])],
        lambda: ["ZLEXCOUNT", K("z"), R.choice(["-", "[0", "(1"]), R.choice(["+", "[2", "(m1"])],
        lambda: ["ZREVRANGEBYLEX", K("z"), R.choice(["+", "[2", "(m1", "-"]), R.choice(["-", "[0", "(1", "[m"])] + R.choice([[], ["LIMIT", I(0, 3), I(-1, 2)]]),
        lambda: ["ZRANGEBYLEX", K("z"), R.choice(["-", "[0", "(1", "[m"]), R.choice(["+", "[2", "(m1"]), "LIMIT", I(0, 3), I(-1, 2)],
        lambda: ["ZRANGE", K("z"), R.choice(["-", "[0", "(1", "[m", "+"]), R.choice(["+", "[2", "(m1", "-"]), "BYLEX"] + R.choice([[], ["REV"], ["LIMIT", I(0, 3), I(-1, 3)], ["REV", "LIMIT", I(0, 3), I(-1, 3)]]),
        lambda: ["ZRANGESTORE", K("z"), K("z"), R.choice(["-", "[0", "(1"]), R.choice(["+", "[2", "(m1"]), "BYLEX"],
        lambda: ["ZREMRANGEBYLEX", K("z"), R.choice(["-", "[0", "(1", "[m"]), R.choice(["+", "[2", "(m1", "[0"])],
        lambda: ["ZPOPMIN", K("z")] + R.choice([[], [I(0, 3)]]), lambda: ["ZPOPMAX", K("z"), I(0, 3)],
        lambda: ["ZREMRANGEBYRANK", K("z"), I(-3, 3), I(-3, 3)], lambda: ["ZREMRANGEBYSCORE", K("z"), F(), F()],
        lambda: ["ZUNIONSTORE", K("z"), "2", K("z"), ANY()] + R.choice([[], ["WEIGHTS", "2", "-1"], ["AGGREGATE", "MIN"], ["AGGREGATE", "MAX"]]),
        lambda: ["ZINTERSTORE", K("z"), "2", K("z"), K("t")], lambda: ["ZDIFFSTORE", K("z"), "2", K("z"), K("z")],
        lambda: ["ZUNION", "2", K("z"), K("t"), "WITHSCORES"], lambda: ["ZINTER", "2", K("z"), K("z")],
        lambda: ["ZDIFF", "2", K("z"), K("z"), "WITHSCORES"], lambda: ["ZINTERCARD", "2", K("z"), K("z")],
        lambda: ["ZRANGESTORE", K("z"), K("z"), I(0, 2), I(-1, 3)],
        lambda: ["ZMPOP", "2", K("z"), K("z"), R.choice(["MIN", "MAX"])] + R.choice([[], ["COUNT", I(1, 3)]]),
        lambda: ["XADD", K("q"), f"{R.randint(1, 9)}-{R.choice(['*', '0', '1', '2'])}", "f", M()],
        lambda: ["XADD", K("q")] + R.choice([["MAXLEN", I(0, 3)], ["MINID", "3"], ["NOMKSTREAM"], []]) + [f"{R.randint(1, 9)}-*", "f", M()],
        lambda: ["XLEN", K("q")], lambda: ["XRANGE", K("q"), R.choice(["-", "2", "(3-0", "3-1"]), R.choice(["+", "5", "(6"])] + R.choice([[], ["COUNT", I(0, 2)]]),
        lambda: ["XREVRANGE", K("q"), "+", "-", "COUNT", I(0, 3)],
        lambda: ["XDEL", K("q"), f"{R.randint(1, 9)}-{R.randint(0, 2)}"], lambda: ["XTRIM", K("q"), R.choice(["MAXLEN", "MINID"]), I(0, 5)],
        lambda: ["XGROUP", "CREATE", K("q"), R.choice(["g", "h"]), R.choice(["0", "$", "3-0"])] + R.choice([[], ["MKSTREAM"], ["ENTRIESREAD", "2"]]),
        lambda: ["XREADGROUP", "GROUP", R.choice(["g", "h"]), R.choice(["a", "b"]), "COUNT", I(1, 3), "STREAMS", K("q"), R.choice([">", "0"])],
        lambda: ["XACK", K("q"), "g", f"{R.randint(1, 9)}-{R.randint(0, 2)}"],
        lambda: ["XPENDING", K("q"), "g"], lambda: ["XINFO", "GROUPS", K("q")],
        lambda: ["XREAD", "COUNT", "2", "STREAMS", K("q"), R.choice(["0", "3-0"])],
        lambda: ["XSETID", K("q"), f"{R.randint(1, 12)}-0"],
        lambda: ["XGROUP", "DESTROY", K("q"), "h"], lambda: ["XGROUP", "SETID", K("q"), "g", R.choice(["0", "$"])],
        lambda: ["XAUTOCLAIM", K("q"), "g", "b", "0", "0-0", "COUNT", "2", "JUSTID"],
        lambda: ["XCLAIM", K("q"), "g", "b", "0", f"{R.randint(1, 9)}-{R.randint(0, 2)}", "JUSTID"],
    ])
    return c()

# A generated command run from a script instead: redis.call / pcall reply
# conversions in both protocols, error tables, cjson and cmsgpack of them.
SCRIPTS = [
    "return redis.call(unpack(ARGV))",
    "return redis.pcall(unpack(ARGV))",
    "redis.setresp(3) return redis.call(unpack(ARGV))",
    "redis.setresp(3) return redis.pcall(unpack(ARGV))",
    "local r = redis.pcall(unpack(ARGV)) return {type(r), r}",
    "return cjson.encode({redis.pcall(unpack(ARGV))})",
    "redis.setresp(3) return cjson.encode({redis.pcall(unpack(ARGV))})",
    "return cmsgpack.pack(redis.pcall(unpack(ARGV)))",
    "redis.setresp(3) return {redis.pcall(unpack(ARGV))}",
]
# The same bodies as functions of one library (FCALL), and as no-writes
# functions (FCALL_RO: write commands get the read-only script error).
def library():
    lines = ["#!lua name=difffuzz"]
    for i, body in enumerate(SCRIPTS):
        body = body.replace("ARGV", "args")
        lines.append(f"redis.register_function('fz{i}', function(keys, args) {body} end)")
        lines.append(f"redis.register_function{{function_name='fzro{i}', callback=function(keys, args) {body} end, flags={{'no-writes'}}}}")
    return "\n".join(lines)

# SORT stays out of scripts: main resets Redis's stale errno before it
# (see there), which a script around it would defeat.
NOT_IN_SCRIPTS = {"SCANALL", "KEYS", "MULTI", "EXEC", "DISCARD", "SORT", "SORT_RO", "DUMPRESTORE", "RESTOREBAD", "DUMP"}
RS = random.Random()

# Replies whose order Redis 7.0 leaves to its hash tables (random seed).
UNORDERED = {"KEYS", "SMEMBERS", "SINTER", "SUNION", "SDIFF", "HKEYS", "HVALS", "HGETALL"}

# Lex ranges over differing scores are unspecified (Redis documents it);
# Redis's skiplist answer then depends on its random node levels, while a
# listpack is walked deterministically, so only listpacks are compared.
LEX = {"ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX", "ZRANGE", "ZRANGESTORE"}

def lex_unspecified(redis, cmd):
    if cmd[0] in ("ZRANGE", "ZRANGESTORE") and "BYLEX" not in cmd:
        return False
    key = cmd[2] if cmd[0] == "ZRANGESTORE" else cmd[1]
    return redis.call(["OBJECT", "ENCODING", key]) == b"$8|skiplist"

def norm(r):
    """An aggregate of bulk strings with its elements sorted (HGETALL and
    RESP3 maps: fields and values alike, a multiset comparison)."""
    if r[:1] not in (b"*", b"~", b"%") or b"[" not in r:
        return r
    head, body = r.split(b"[", 1)
    body = body[:-1]
    # Re-split the flat elements: all are bulk strings here.
    items, i = [], 0
    while i < len(body):
        j = body.index(b"|", i)
        n = int(body[i + 1:j])
        items.append(body[i:j + 1 + n])
        i = j + 1 + n + 1
    return head + b"[" + b",".join(sorted(items)) + b"]"

def scanall(c, cmd):
    """A whole SCAN-family iteration: its elements sorted, or the first
    reply that is not a cursor page (an error)."""
    cur, seen = b"0", []
    name = cmd[0]
    key = cmd[1:2] if name != "SCAN" else []
    rest = cmd[2:] if name != "SCAN" else cmd[1:]
    for _ in range(10000):
        r = c.call([name] + key + [cur] + rest)
        if not r.startswith(b"*2[$"):
            return r
        j = r.index(b"|")
        n = int(r[4:j])
        cur = r[j + 1:j + 1 + n]
        seen.append(r[j + 1 + n + 1:-1])
        if cur == b"0":
            break
    items = []
    for chunk in seen:
        items.extend(norm(chunk).split(b"[", 1)[1][:-1].split(b",") if b"[" in chunk else [])
    return b",".join(sorted(i for i in items if i))

def state(c):
    """Everything a client can read back from databases 0 and 1, in a
    canonical form: per key its type, contents (unordered ones sorted) and
    whether it has a TTL (not its value: the clock)."""
    out = []
    for db in ("0", "1"):
        c.call(["SELECT", db])
        keys = sorted(norm(c.call(["KEYS", "*"])).split(b","))
        for k in keys:
            if b"|" not in k:
                continue
            key = k.split(b"|", 1)[1]
            t = c.call(["TYPE", key])
            read = {
                b"+string": [["GET", key]],
                b"+list": [["LRANGE", key, "0", "-1"]],
                b"+hash": [["HGETALL", key]],
                b"+set": [["SMEMBERS", key]],
                b"+zset": [["ZRANGE", key, "0", "-1", "WITHSCORES"]],
                # Not XINFO STREAM FULL: delivery and seen times are clock
                # reads. The PEL summaries hold the rest.
                b"+stream": [["XRANGE", key, "-", "+"], ["XINFO", "GROUPS", key],
                             ["XINFO", "STREAM", key], ["XPENDING", key, "g"],
                             ["XPENDING", key, "h"]],
            }.get(t, [])
            vals = []
            for cmd in read:
                r = c.call(cmd)
                if cmd[0] in ("HGETALL", "SMEMBERS"):
                    r = norm(r)
                if cmd[:2] == ["XINFO", "STREAM"]:
                    # radix-tree-keys / -nodes: Redis's tree, redlog's segments.
                    r = re.sub(rb"radix-tree-(keys|nodes),:\d+", b"", r)
                vals.append(r)
            ttl = c.call(["TTL", key])
            out.append((db, key, t, vals, ttl == b":-1"))
    c.call(["SELECT", "0"])
    return out

def compare_states(a, b, what):
    sa, sb = state(a), state(b)
    if sa == sb:
        return 0
    print(f"{what}: keyspaces differ")
    da, db_ = {x[:2]: x for x in sa}, {x[:2]: x for x in sb}
    for k in sorted(set(da) | set(db_)):
        if da.get(k) != db_.get(k):
            print(f"  {k}:\n    redis : {str(da.get(k))[:400]}\n    redlog: {str(db_.get(k))[:400]}")
    return 1

def main():
    if sys.argv[3] == "compare":
        # After a restart of redlog: its replayed keyspace against Redis's.
        a, b = Conn(int(sys.argv[1])), Conn(int(sys.argv[2]))
        if sys.argv[4] == "resp3":
            for c in (a, b):
                c.call(["HELLO", "3"])
        return compare_states(a, b, "after redlog's restart")
    rport, lport, seed, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    # Odd seeds speak RESP3, even ones RESP2.
    resp3 = seed % 2 == 1
    R.seed(seed)
    RS.seed(seed)
    a, b = Conn(rport), Conn(lport)
    for c in (a, b):
        if resp3:
            # The HELLO replies differ (server name, version, id).
            c.call(["HELLO", "3"])
        c.call(["FLUSHALL"])
        c.call(["SELECT", "0"])
        # Redis 7.0's encoding thresholds (a seed may have moved them).
        c.call(["CONFIG", "SET", "hash-max-listpack-entries", "512", "hash-max-listpack-value", "64",
                "zset-max-listpack-entries", "128", "zset-max-listpack-value", "64",
                "set-max-intset-entries", "512"])
        c.call(["FUNCTION", "FLUSH"])
        # RESTORE checks payloads deeply, as redlog always does.
        c.call(["CONFIG", "SET", "sanitize-dump-payload", "yes"])
        assert c.call(["FUNCTION", "LOAD", library()]) == b"$8|difffuzz"
    hist = []
    in_multi = False
    for i in range(n):
        cmd = gen()
        # Inside MULTI a reply comes back within EXEC's, where the
        # comparison cannot sort or skip it.
        while in_multi and cmd[0] in UNORDERED | LEX | {"SCANALL", "KEYS", "SORT", "SORT_RO", "DUMPRESTORE", "RESTOREBAD", "DUMP"}:
            cmd = gen()
        # A generator of its own, so the command sequence of a seed is the
        # same with or without scripts.
        wrap = RS.random()
        if wrap < 0.15 and cmd[0] not in UNORDERED | LEX | NOT_IN_SCRIPTS:
            k = RS.randrange(len(SCRIPTS))
            if wrap < 0.1:
                cmd = ["EVAL", SCRIPTS[k], "0"] + cmd
            elif wrap < 0.13:
                cmd = ["FCALL", f"fz{k}", "0"] + cmd
            else:
                cmd = ["FCALL_RO", f"fzro{k}", "0"] + cmd
        if cmd[0] == "MULTI":
            in_multi = True
        elif cmd[0] in ("EXEC", "DISCARD"):
            in_multi = False
        hist.append(cmd)
        unspecified = cmd[0] in LEX and lex_unspecified(a, cmd)
        if unspecified and cmd[0] in ("ZREMRANGEBYLEX", "ZRANGESTORE"):
            # Not sent: the keyspaces would differ from here on.
            continue
        if cmd[0] == "SCANALL":
            ra, rb = scanall(a, cmd[1:]), scanall(b, cmd[1:])
        elif cmd[0] == "DUMP":
            ra, rb = a.call(cmd), b.call(cmd)
            if not dump_deterministic(a, cmd[1]):
                ra, rb = ra[:1], rb[:1]
        elif cmd[0] == "DUMPRESTORE":
            # Both DUMPs (compared where Redis's bytes are deterministic),
            # then one of them RESTOREd on both servers: Redis's payload
            # read by redlog, redlog's by Redis.
            det = dump_deterministic(a, cmd[2])
            da, db_ = a.call(["DUMP", cmd[2]]), b.call(["DUMP", cmd[2]])
            payload = bulk_of(da if cmd[1] == "a" else db_)
            if payload is None:
                payload = b"nothing"
            restore = ["RESTORE", cmd[3], cmd[4], payload] + cmd[5:]
            ra, rb = a.call(restore), b.call(restore)
            if det:
                ra, rb = da + b" " + ra, db_ + b" " + rb
        elif cmd[0] == "RESTOREBAD":
            payload = bulk_of(a.call(["DUMP", cmd[2]])) or b"\x00\x01x\x0a\x00" + bytes(8)
            restore = ["RESTORE", cmd[3], "0", damage(cmd[1], payload), "REPLACE"]
            ra, rb = a.call(restore), b.call(restore)
        elif cmd[0] in ("SORT", "SORT_RO") and "STORE" not in cmd:
            # Redis 7.0's SORT reads errno after strtod without clearing
            # it, so an earlier ERANGE (a subnormal score, say) can make it
            # fail a sort of valid numbers. When Redis says so, ask again
            # after a connection has come and gone (the accept loop leaves
            # errno at EAGAIN); values that really do not convert fail
            # every time.
            ra, rb = a.call(cmd), b.call(cmd)
            for _ in range(3):
                if b"can't be converted" not in ra or b"can't be converted" in rb:
                    break
                socket.create_connection(("127.0.0.1", rport)).close()
                a.call(["PING"])
                ra = a.call(cmd)
        else:
            ra, rb = a.call(cmd), b.call(cmd)
        if unspecified:
            continue
        if cmd[0] in UNORDERED:
            ra, rb = norm(ra), norm(rb)
        if ra != rb:
            print(f"seed {seed} step {i}: {' '.join(repr(x) for x in cmd)}")
            d = next((k for k in range(min(len(ra), len(rb))) if ra[k] != rb[k]), min(len(ra), len(rb)))
            print(f"  redis : ...{ra[max(0, d - 200):d + 200]!r}")
            print(f"  redlog: ...{rb[max(0, d - 200):d + 200]!r}")
            print("  history:", "; ".join(" ".join(h) for h in hist[-12:]))
            if len(cmd) > 1:
                for probe in (["GET", cmd[1]], ["TYPE", cmd[1]], ["OBJECT", "ENCODING", cmd[1]], ["ZRANGE", cmd[1], "0", "-1", "WITHSCORES"]):
                    print("  probe", probe, "\n    redis :", a.call(probe)[:600], "\n    redlog:", b.call(probe)[:600])
            return 1
    if in_multi:
        for c in (a, b):
            c.call(["DISCARD"])
    return compare_states(a, b, f"seed {seed} end")

sys.exit(main())
