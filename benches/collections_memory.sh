#!/usr/bin/env bash
# Memory per element of the collections, redlog beside redis-server 7.0 in
# the same run: N elements loaded into one list (RPUSH), one hash (HSET),
# one set (SADD, non-integer members) and one sorted set (ZADD), each in a
# fresh server; the RSS growth (VmRSS from /proc/<pid>/status, before and
# after the load) divided by N is printed side by side.
# Members are "m:<i>" (hash values "v:<i>", scores <i>), loaded with
# redis-cli --pipe in commands of 1000 elements.
# Usage: benches/collections_memory.sh [N]        (default 1000000)
#        REDLOG_BIN=path to use an existing redlog binary instead of
#        building target/release/redlog.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
if [ -z "${REDLOG_BIN:-}" ]; then
    cargo build --release --quiet
    REDLOG_BIN=target/release/redlog
fi

. benches/lib.sh
WORK=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT


# Writes the RESP load for type $1 to stdout.
gen() {
    python3 - "$1" "$N" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(parts):
    b = [b"*%d\r\n" % len(parts)]
    for p in parts:
        b.append(b"$%d\r\n%s\r\n" % (len(p), p))
    out.write(b"".join(b))
for start in range(0, n, 1000):
    rng = range(start, min(n, start + 1000))
    if kind == "list":
        cmd([b"RPUSH", b"k"] + [b"m:%d" % i for i in rng])
    elif kind == "hash":
        cmd([b"HSET", b"k"] + [x for i in rng for x in (b"m:%d" % i, b"v:%d" % i)])
    elif kind == "set":
        cmd([b"SADD", b"k"] + [b"m:%d" % i for i in rng])
    else:
        cmd([b"ZADD", b"k"] + [x for i in rng for x in (b"%d" % i, b"m:%d" % i)])
PY
}

# measure SERVER TYPE -> bytes per element
measure() {
    local server=$1 kind=$2 port
    port=$(free_port)
    if [ "$server" = redis ]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no >/dev/null 2>&1 &
    else
        mkdir -p "$WORK/$kind"
        "$REDLOG_BIN" --port "$port" --dir "$WORK/$kind" >/dev/null 2>&1 &
    fi
    PID=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    local before after
    before=$(rss_kb "$PID")
    gen "$kind" | redis-cli -p "$port" --pipe >/dev/null
    local len
    len=$(case $kind in list) redis-cli -p "$port" llen k;; hash) redis-cli -p "$port" hlen k;; \
          set) redis-cli -p "$port" scard k;; zset) redis-cli -p "$port" zcard k;; esac)
    [ "$len" = "$N" ] || { echo "$server $kind: loaded $len of $N" >&2; exit 1; }
    after=$(rss_kb "$PID")
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    python3 -c "print('%.1f' % (($after - $before) * 1024 / $N))"
}

printf '%-6s %14s %14s %8s\n' type "redis B/elem" "redlog B/elem" ratio
for kind in list hash set zset; do
    r=$(measure redis "$kind")
    l=$(measure redlog "$kind")
    printf '%-6s %14s %14s %8s\n' "$kind" "$r" "$l" "$(python3 -c "print('%.2f' % ($l / $r))")"
done
echo "N=$N; RSS deltas from /proc/<pid>/status VmRSS; redlog: $REDLOG_BIN"
