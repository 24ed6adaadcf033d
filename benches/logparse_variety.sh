#!/usr/bin/env bash
# LOGPARSE INGEST on input with no structure, against ordinary logs, and
# the latency other clients see meanwhile (issue 14 item 2).
#
# Inputs: syslog lines of pseudo-random words (every line its own
# template: the miner's worst case) at 16k, 64k and 256k lines, and 64k
# ordinary lines (Loghub's HDFS_2k.log repeated). Each is sent as one
# `LOGPARSE INGEST <key> <format> <text>` to a release
# redlog with appendonly yes / appendfsync everysec on a temporary dir,
# RUNS times (the request built in memory, timed from its first byte
# sent to the reply); the median time is reported. Targets: 64k varied lines at
# most 3x the time of 64k ordinary ones; 256k varied at most 4.5x the
# time of 64k varied (linear: 4x the lines).
#
# Then a 40 MB INGEST of varied lines runs while a second client sends
# PING after PING on its own connection; the worst and median PING round
# trips during the INGEST are reported. Target: worst PING under 50 ms.
#
# Usage: benches/logparse_variety.sh [RUNS] [PORT]   (defaults 3, a free
#        port). Expects target/release/redlog (`cargo build --release`);
#        REDLOG_BIN overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
RUNS=${1:-3}
PORT=${2:-$(free_port)}
BIN=${REDLOG_BIN:-target/release/redlog}
SRC=tests/data/loghub/HDFS_2k.log
[ -f "$SRC" ] || { echo "$SRC not found" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release" >&2; exit 1; }

WORK=$(mktemp -d)
PID=
cleanup() {
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# varied N SEED [MAX_BYTES]: N syslog lines of random lowercase words (4
# to 9 words of 3 to 8 letters after the header), as a random-words log
# would be; stops before MAX_BYTES when given.
varied() {
    python3 - "$1" "$2" "${3:-0}" <<'EOF'
import random, sys
n, seed, max_bytes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
letters = "abcdefghijklmnopqrstuvwxyz"
out = []
size = 0
for i in range(n):
    words = " ".join("".join(r.choice(letters) for _ in range(r.randint(3, 8)))
                     for _ in range(r.randint(4, 9)))
    line = f"Dec  1 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} host app[{r.randint(1, 99999)}]: {words}\n"
    if max_bytes and size + len(line) > max_bytes:
        break
    size += len(line)
    out.append(line)
sys.stdout.write("".join(out))
EOF
}

varied 16384 1 >"$WORK/v16k.log"
varied 65536 2 >"$WORK/v64k.log"
varied 262144 3 >"$WORK/v256k.log"
# 64k ordinary lines: Loghub's HDFS sample repeated.
python3 - "$SRC" 65536 >"$WORK/h64k.log" <<'EOF'
import sys
lines = [l for l in open(sys.argv[1], "rb").read().split(b"\n") if l.strip()]
n = int(sys.argv[2])
sys.stdout.buffer.write(b"".join(lines[i % len(lines)] + b"\n" for i in range(n)))
EOF
# 40 MB of varied lines for the latency run.
varied 2000000 4 41943040 >"$WORK/v40m.log"

mkdir -p "$WORK/data"
"$BIN" --port "$PORT" --dir "$WORK/data" --appendonly yes \
    --appendfsync everysec >"$WORK/redlog.log" 2>&1 &
PID=$!
wait_up "$PORT"

# ingest FILE FORMAT KEY: seconds for one INGEST of FILE into KEY, from
# the first byte sent to the last byte of the reply (the request is built
# in memory first, so only the server's time and the transport count).
ingest() {
    python3 - "$PORT" "$@" <<'EOF'
import socket, sys, time
port, path, fmt, key = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
data = open(path, "rb").read()
args = [b"LOGPARSE", b"INGEST", key, fmt, data]
req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
s = socket.create_connection(("127.0.0.1", port))
t0 = time.perf_counter()
s.sendall(req)
buf = b""
while not (buf.startswith(b"-") and buf.endswith(b"\r\n")) and buf.count(b"\r\n") < 15:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    buf += chunk
t1 = time.perf_counter()
if not buf.startswith(b"*8\r\n$6\r\nparsed\r\n"):
    sys.exit(f"INGEST failed: {buf[:200]!r}")
print(f"{t1 - t0:.3f}")
EOF
}

declare -A MED
for input in h64k:hdfs v16k:syslog v64k:syslog v256k:syslog; do
    name=${input%%:*}
    fmt=${input#*:}
    times=()
    for r in $(seq "$RUNS"); do
        times+=("$(ingest "$WORK/$name.log" "$fmt" "$name:$r")")
        redis-cli -p "$PORT" del "$name:$r" "$name:$r:malformed" >/dev/null
    done
    MED[$name]=$(median "${times[@]}")
    lines=$(grep -c . "$WORK/$name.log")
    echo "$name ($fmt, $lines lines, $(stat -c %s "$WORK/$name.log") bytes): ${times[*]} s, median ${MED[$name]} s"
done
echo "64k varied / 64k ordinary: $(ratio "${MED[v64k]}" "${MED[h64k]}")x (target <= 3)"
echo "256k varied / 64k varied:  $(ratio "${MED[v256k]}" "${MED[v64k]}")x (target <= 4.5)"
echo "16k -> 64k varied:         $(ratio "${MED[v64k]}" "${MED[v16k]}")x (linear: 4)"

# PING latency from another client during a 40 MB INGEST.
python3 - "$PORT" "$WORK/v40m.log" <<'EOF'
import socket, sys, threading, time
port, path = int(sys.argv[1]), sys.argv[2]
data = open(path, "rb").read()
lines = data.count(b"\n")

def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_reply(s, buf=b""):
    # Enough RESP for INGEST's flat reply and PING: read until the
    # expected number of lines of a complete reply arrived.
    while True:
        if buf.startswith(b"+") and buf.endswith(b"\r\n"):
            return buf
        if buf.startswith(b"-") and buf.endswith(b"\r\n"):
            return buf
        if buf.startswith(b"*8\r\n") and buf.count(b"\r\n") >= 15:
            return buf
        chunk = s.recv(1 << 16)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk

done = threading.Event()
rtts = []
def pinger():
    s = conn()
    while not done.is_set():
        t0 = time.perf_counter()
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        r = read_reply(s)
        rtts.append(time.perf_counter() - t0)
        assert r == b"+PONG\r\n", r

a = conn()
req = b"*5\r\n$8\r\nLOGPARSE\r\n$6\r\nINGEST\r\n$4\r\nv40m\r\n$6\r\nsyslog\r\n$%d\r\n%s\r\n" % (len(data), data)
t = threading.Thread(target=pinger)
t.start()
time.sleep(0.2)
rtts.clear()
t0 = time.perf_counter()
a.sendall(req)
reply = read_reply(a)
elapsed = time.perf_counter() - t0
done.set()
t.join()
rtts.sort()
print(f"40 MB INGEST ({len(data)} bytes, {lines} varied lines): {elapsed:.3f} s; "
      f"reply {reply[:60]!r}...")
print(f"concurrent PING during it: {len(rtts)} pings, worst {rtts[-1] * 1000:.1f} ms, "
      f"p99 {rtts[int(len(rtts) * 0.99)] * 1000:.2f} ms, median {rtts[len(rtts) // 2] * 1000:.2f} ms "
      f"(target: worst < 50 ms)")
EOF
