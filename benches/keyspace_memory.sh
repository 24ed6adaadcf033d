#!/usr/bin/env bash
# Bytes per key, redlog beside redis-server 7.0 in the same run: the same
# keyspace is loaded into a fresh server of each (redis-cli --pipe), and the
# RSS growth (VmRSS from /proc/<pid>/status, before and after the load) and
# INFO memory's used_memory growth are printed with their ratios
# (redlog / redis; below 1 means redlog uses less).
#
# Shapes (N = $SIZE, default 1000000):
#   str     N strings "key:<i>" with 16-byte values
#   hash    N/5 hashes "h:<i>" of 5 fields (f1..f5 -> 8-byte values)
#   zset    N/10 sorted sets "z:<i>" of 5 members (m1..m5, integer scores)
#   list    N/10 lists "l:<i>" of 5 elements of 8 bytes
#   set     N/10 sets "s:<i>" of 5 members (m1..m5: hashtable in 7.0)
#   intset  N/10 sets "i:<i>" of 5 small integers
# each without TTL and with one (EXPIRE 100000 on every key: "+ttl" rows).
#
# Memory given back (N/2 keys, 500k by default):
#   expiry    N/2 keys SET ... EX 3; RSS loaded, then once active expiry
#             has removed them all (DBSIZE 0), and 10 s later;
#   flushall  N/2 keys, FLUSHALL; RSS right after and 10 s later.
# Absolute RSS is compared there (the goal is about what the process
# holds, not its growth).
#
# Usage: benches/keyspace_memory.sh [SHAPE...]   (default: all, then "back")
#        SIZE=10000000 for 10M keys; REDLOG_BIN=path to use an existing
#        redlog binary instead of building target/release/redlog.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1000000}
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


# gen SHAPE TTL: writes the RESP load to $WORK/SHAPE-TTL.resp (once) and
# prints its path.
gen() {
    local f="$WORK/$1-$2.resp"
    [ -f "$f" ] || python3 - "$1" "$2" "$SIZE" >"$f" <<'PY'
import sys
shape, ttl, size = sys.argv[1], sys.argv[2] == "ttl", int(sys.argv[3])
out = sys.stdout.buffer
buf = []
def cmd(*parts):
    buf.append(b"*%d\r\n" % len(parts))
    for p in parts:
        buf.append(b"$%d\r\n%s\r\n" % (len(p), p))
    if len(buf) > 100000:
        out.write(b"".join(buf)); buf.clear()
if shape == "str":
    for i in range(size):
        k = b"key:%d" % i
        v = b"v%015d" % i
        if ttl: cmd(b"SET", k, v, b"EX", b"100000")
        else: cmd(b"SET", k, v)
elif shape == "back":
    for i in range(size // 2):
        cmd(b"SET", b"key:%d" % i, b"v%015d" % i, b"EX", b"3")
elif shape == "flush":
    for i in range(size // 2):
        cmd(b"SET", b"key:%d" % i, b"v%015d" % i)
else:
    n, prefix = {"hash": (size // 5, b"h:"), "zset": (size // 10, b"z:"),
                 "list": (size // 10, b"l:"), "set": (size // 10, b"s:"),
                 "intset": (size // 10, b"i:")}[shape]
    for i in range(n):
        k = prefix + b"%d" % i
        if shape == "hash":
            cmd(b"HSET", k, *[x for j in range(1, 6) for x in (b"f%d" % j, b"v%07d" % (i + j))])
        elif shape == "zset":
            cmd(b"ZADD", k, *[x for j in range(1, 6) for x in (b"%d" % (i + j), b"m%d" % j)])
        elif shape == "list":
            cmd(b"RPUSH", k, *[b"e%07d" % (i + j) for j in range(1, 6)])
        elif shape == "set":
            cmd(b"SADD", k, *[b"m%d" % j for j in range(1, 6)])
        else:
            cmd(b"SADD", k, *[b"%d" % (i + j) for j in range(1, 6)])
        if ttl: cmd(b"EXPIRE", k, b"100000")
out.write(b"".join(buf))
PY
    echo "$f"
}

# start SERVER: starts a fresh server, sets PID and PORT.
start() {
    PORT=$(free_port)
    if [ "$1" = redis ]; then
        redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no >/dev/null 2>&1 &
    else
        local dir="$WORK/redlog-$PORT"
        mkdir -p "$dir"
        "$REDLOG_BIN" --port "$PORT" --dir "$dir" >/dev/null 2>&1 &
    fi
    PID=$!
    wait_up "$PORT"
}

stop() {
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    rm -rf "$WORK"/redlog-*
}

# load SERVER SHAPE TTL -> "rss_growth_bytes used_memory_growth_bytes"
load() {
    local file before ub after ua
    file=$(gen "$2" "$3")
    start "$1"
    sleep 0.5
    before=$(rss_kb "$PID")
    ub=$(used_memory "$PORT")
    redis-cli -p "$PORT" --pipe <"$file" >/dev/null
    sleep 1
    after=$(rss_kb "$PID")
    ua=$(used_memory "$PORT")
    stop
    echo "$(( (after - before) * 1024 )) $(( ua - ub ))"
}

# back SERVER CASE -> "rss_loaded rss_empty rss_later" in kB (absolute)
back() {
    local file loaded empty later n
    file=$(gen "$2" none)
    start "$1"
    redis-cli -p "$PORT" --pipe <"$file" >/dev/null
    loaded=$(rss_kb "$PID")
    if [ "$2" = back ]; then
        for _ in $(seq 300); do
            n=$(redis-cli -p "$PORT" dbsize)
            [ "$n" = 0 ] && break
            sleep 0.1
        done
        [ "$n" = 0 ] || { echo "$1: $n keys left after 30 s" >&2; exit 1; }
    else
        redis-cli -p "$PORT" flushall >/dev/null
    fi
    empty=$(rss_kb "$PID")
    sleep 10
    later=$(rss_kb "$PID")
    stop
    echo "$loaded $empty $later"
}

SHAPES=("$@")
[ ${#SHAPES[@]} -gt 0 ] || SHAPES=(str hash zset list set intset back)

printf '%-12s %10s %12s %12s %7s %12s %12s %7s\n' shape keys "redis B/key" "redlog B/key" "rss" \
    "redis used" "redlog used" "used"
for shape in "${SHAPES[@]}"; do
    [ "$shape" = back ] && continue
    case $shape in
        str) keys=$SIZE ;; hash) keys=$((SIZE / 5)) ;; *) keys=$((SIZE / 10)) ;;
    esac
    for ttl in none ttl; do
        read -r rr ru < <(load redis "$shape" "$ttl")
        read -r lr lu < <(load redlog "$shape" "$ttl")
        name=$shape; [ "$ttl" = ttl ] && name="$shape+ttl"
        printf '%-12s %10s %12s %12s %7s %12s %12s %7s\n' "$name" "$keys" \
            "$(ratio "$rr" "$keys")" "$(ratio "$lr" "$keys")" "$(ratio "$lr" "$rr")" \
            "$(ratio "$ru" "$keys")" "$(ratio "$lu" "$keys")" "$(ratio "$lu" "$ru")"
    done
done

for shape in "${SHAPES[@]}"; do
    [ "$shape" = back ] || continue
    echo
    echo "memory given back ($((SIZE / 2)) keys; absolute RSS in MB)"
    printf '%-10s %-7s %8s %8s %8s\n' case server loaded empty "+10s"
    for c in back flush; do
        read -r rl re rt < <(back redis "$c")
        read -r ll le lt < <(back redlog "$c")
        label=$c; [ "$c" = back ] && label="expiry"; [ "$c" = flush ] && label="flushall"
        printf '%-10s %-7s %8s %8s %8s\n' "$label" redis "$((rl / 1024))" "$((re / 1024))" "$((rt / 1024))"
        printf '%-10s %-7s %8s %8s %8s\n' "$label" redlog "$((ll / 1024))" "$((le / 1024))" "$((lt / 1024))"
        printf '%-10s %-7s %8s %8s %8s\n' "$label" ratio "$(ratio "$ll" "$rl")" "$(ratio "$le" "$re")" \
            "$(ratio "$lt" "$rt")"
    done
done
echo "SIZE=$SIZE; B/key = growth / keys (RSS: VmRSS, used: INFO used_memory); redlog: $REDLOG_BIN"
