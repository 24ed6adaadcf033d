#!/usr/bin/env bash
# Issue 5's stream figures, redlog (release) beside redis-server in the same
# run, both with `appendonly yes` and `appendfsync everysec`:
#   1. load a stream of N entries (default 10,000,000) with two small fields
#      (`XADD s <ms>-0 f1 v1 f2 <ms>`, ms = 1..N) through redis-cli --pipe;
#   2. memory: Redis `MEMORY USAGE s SAMPLES 0` and the used_memory delta;
#      redlog VmRSS after the load and after a restart, minus the VmRSS of
#      the same server before the load (empty);
#   3. restart time of redlog until XLEN answers N: after a clean SHUTDOWN
#      and after kill -9;
#   4. XRANGE s <random ms> + COUNT 10 (redis-benchmark -r N: __rand_int__
#      is a random existing millisecond, zero-padded, as both servers parse it);
#   5. XADD xb * f v with 50 clients at -P 1 and -P 16.
# Prints redis / redlog / ratio per line.
# Usage: benches/streams_10m.sh [N] [BENCH_REQUESTS]
#   env REDIS_PORT (7300), REDLOG_PORT (7301), REDLOG_BIN (target/release/redlog;
#   built with cargo build --release when it is the default and missing).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
REQ=${2:-200000}
REDIS_PORT=${REDIS_PORT:-7300}
REDLOG_PORT=${REDLOG_PORT:-7301}
REDLOG_BIN=${REDLOG_BIN:-target/release/redlog}
[ -x "$REDLOG_BIN" ] || cargo build --release --quiet

WORK=$(mktemp -d)
REDIS_PID=
REDLOG_PID=
cleanup() {
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
    [ -n "$REDLOG_PID" ] && kill -9 "$REDLOG_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

. benches/lib.sh
start_redlog() {
    "$REDLOG_BIN" --port "$REDLOG_PORT" --appendonly yes --appendfsync everysec \
        --dir "$WORK/redlog-data" >>"$WORK/redlog.log" 2>&1 &
    REDLOG_PID=$!
}
# rps PORT ARGS... -> requests per second of one redis-benchmark line
rps() {
    local port=$1
    shift
    redis-benchmark -h 127.0.0.1 -p "$port" -q "$@" 2>&1 | tr '\r' '\n' |
        grep 'requests per second' | tail -1 | sed -E 's/^[^:]+: ([0-9.]+) requests per second.*/\1/'
}
ratio() { awk -v a="${2:-0}" -v b="${1:-0}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
row() { printf '%-44s %14s %14s %7s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync everysec --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
start_redlog
wait_up "$REDIS_PORT"
wait_up "$REDLOG_PORT"

echo "streams, N=$N, redis $(redis-server --version | cut -d' ' -f3) vs redlog $(git describe --always --dirty 2>/dev/null || echo '?'), appendonly yes everysec on both"
redis_base=$(used_memory "$REDIS_PORT")
redlog_empty_kb=$(rss_kb "$REDLOG_PID")

# The load: explicit ids <ms>-0, ms = 1..N, two small fields.
gen() {
    python3 - "$N" <<'EOF'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
step = 100000
for base in range(1, n + 1, step):
    parts = []
    for ms in range(base, min(n, base + step - 1) + 1):
        i = b"%d" % ms
        idb = i + b"-0"
        parts.append(b"*7\r\n$4\r\nXADD\r\n$1\r\ns\r\n$%d\r\n%s\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$%d\r\n%s\r\n"
                     % (len(idb), idb, len(i), i))
    out.write(b"".join(parts))
EOF
}
for port in "$REDIS_PORT" "$REDLOG_PORT"; do
    t0=$(date +%s.%N)
    gen | redis-cli -p "$port" --pipe >"$WORK/pipe-$port.log" 2>&1 || { cat "$WORK/pipe-$port.log"; exit 1; }
    t1=$(date +%s.%N)
    len=$(redis-cli -p "$port" xlen s)
    printf 'load on port %s: XLEN %s in %.1f s (%s)\n' "$port" "$len" "$(echo "$t1 - $t0" | bc)" \
        "$(tail -1 "$WORK/pipe-$port.log" | tr -d '\r')"
done

redis_usage=$(redis-cli -p "$REDIS_PORT" memory usage s samples 0)
redis_delta=$(($(used_memory "$REDIS_PORT") - redis_base))
redlog_load_kb=$(($(rss_kb "$REDLOG_PID") - redlog_empty_kb))
echo "memory (MB; redis: MEMORY USAGE s SAMPLES 0 / used_memory delta; redlog: VmRSS minus empty server's $((redlog_empty_kb / 1024)) MB)"
printf '  redis MEMORY USAGE  %8.1f MB (%.1f B/entry)\n' "$(echo "$redis_usage / 1048576" | bc -l)" "$(echo "$redis_usage / $N" | bc -l)"
printf '  redis used_memory   %8.1f MB (%.1f B/entry)\n' "$(echo "$redis_delta / 1048576" | bc -l)" "$(echo "$redis_delta / $N" | bc -l)"
printf '  redlog after load   %8.1f MB (%.1f B/entry)\n' "$(echo "$redlog_load_kb / 1024" | bc -l)" "$(echo "$redlog_load_kb * 1024 / $N" | bc -l)"

# restart_redlog HOW: stop redlog (shutdown | kill9), start it, time until
# XLEN answers N.
restart_redlog() {
    if [ "$1" = shutdown ]; then
        redis-cli -p "$REDLOG_PORT" shutdown >/dev/null 2>&1 || true
    else
        kill -9 "$REDLOG_PID"
    fi
    wait "$REDLOG_PID" 2>/dev/null || true
    local t0 t1 len
    t0=$(date +%s.%N)
    start_redlog
    while :; do
        len=$(redis-cli -p "$REDLOG_PORT" xlen s 2>/dev/null || true)
        [ "$len" = "$N" ] && break
        kill -0 "$REDLOG_PID" 2>/dev/null || { echo "redlog died; log:" >&2; tail "$WORK/redlog.log" >&2; exit 1; }
        sleep 0.005
    done
    t1=$(date +%s.%N)
    printf '  restart after %-9s XLEN=%s after %.3f s\n' "$1:" "$len" "$(echo "$t1 - $t0" | bc)"
}
echo "redlog restart until XLEN answers"
restart_redlog shutdown
sleep 1
printf '  redlog after restart %7.1f MB\n' "$(echo "($(rss_kb "$REDLOG_PID") - $redlog_empty_kb) / 1024" | bc -l)"
restart_redlog kill9
sleep 1
printf '  redlog after kill -9 %7.1f MB\n' "$(echo "($(rss_kb "$REDLOG_PID") - $redlog_empty_kb) / 1024" | bc -l)"

printf '%-44s %14s %14s %7s\n' "redis-benchmark (-c 50 -n $REQ)" "redis rps" "redlog rps" "ratio"
args=(-c 50 -n "$REQ" -r "$N" XRANGE s __rand_int__ + COUNT 10)
row "XRANGE s <rand ms> + COUNT 10 (-P 1)" "$(rps "$REDIS_PORT" "${args[@]}")" "$(rps "$REDLOG_PORT" "${args[@]}")"
for p in 1 16; do
    args=(-c 50 -P "$p" -n "$REQ" XADD xb '*' f v)
    row "XADD xb * f v (-P $p)" "$(rps "$REDIS_PORT" "${args[@]}")" "$(rps "$REDLOG_PORT" "${args[@]}")"
done
