#!/usr/bin/env bash
# Durability benchmarks, redlog beside redis-server 7.0 on this machine in
# the same run:
#  1. redis-benchmark SET, 50 clients, -P 1 and -P 16, with the AOF / WAL on
#     under appendfsync everysec and always.
#  2. Startup replay of a WAL (redlog) against loading an AOF of the same
#     writes (Redis, aof-use-rdb-preamble no): records/s and MB/s.
#  3. Compaction of 1M keys (BGREWRITEAOF on both): duration, and the worst
#     latency a concurrent GET client saw meanwhile.
# Usage: benches/durability.sh [SET_REQUESTS] [REPLAY_WRITES] [COMPACT_KEYS]
#        defaults: 100000, 8000000 (about 1 GiB of WAL with 100-byte values), 1000000
#        SECTIONS="1 3" runs only those sections (default: all three);
#        ROUNDS (default 3): section 1 runs each side that many times,
#        alternating which goes first, and reports the medians.
#        PINNED=1: every server runs on core 1 (`taskset -c 1`) and every
#        client (redis-benchmark, the fill script) on core 0
#        (`taskset -c 0`): the per-core comparison of issue 19, where the
#        client no longer competes with the server for a core. Section 1
#        then also prints the p99 and p99.9 latency of the -P 1 runs
#        (`--precision 3`; p99.9 is the first HDR percentile step at or
#        above 99.9%), medians over the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
REPLAY=${2:-8000000}
KEYS=${3:-1000000}
ROUNDS=${ROUNDS:-3}
if [ "${PINNED:-0}" = 1 ]; then
    SERVER_CPU=(taskset -c 1)
    CLIENT_CPU=(taskset -c 0)
else
    SERVER_CPU=()
    CLIENT_CPU=()
fi

# REDLOG_BIN runs that redlog binary instead of building target/release
# (a "before" binary kept aside, for a before/after comparison).
if [ -z "${REDLOG_BIN:-}" ]; then
    cargo build --release --quiet
    REDLOG_BIN=target/release/redlog
fi

. benches/lib.sh
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_redis DIR PORT FSYNC ; start_redlog DIR PORT FSYNC
start_redis() {
    mkdir -p "$1"
    "${SERVER_CPU[@]}" redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "$3" \
        --aof-use-rdb-preamble no --auto-aof-rewrite-percentage 0 \
        --dir "$1" --logfile "$1/redis.log" &
    PIDS+=($!)
    wait_up "$2"
}
start_redlog() {
    "${SERVER_CPU[@]}" "$REDLOG_BIN" --port "$2" --dir "$1" --appendfsync "$3" \
        --auto-aof-rewrite-percentage 0 >>"$1.log" 2>&1 &
    PIDS+=($!)
    wait_up "$2"
}
stop() { redis-cli -p "$1" shutdown >/dev/null 2>&1 || true; sleep 0.5; }

# set_rps PORT PIPELINE -> "rps<tab>p99<tab>p99.9" (ms)
set_rps() {
    "${CLIENT_CPU[@]}" redis-benchmark -h 127.0.0.1 -p "$1" -n "$N" -c 50 -P "$2" --precision 3 -t set 2>&1 |
        tr '\r' '\n' | awk '
        /throughput summary:/ { rps = $3 }
        /latency summary/ { getline; getline; p99 = $5 }
        /^[0-9.]+% <= / && p999 == "" { pc = $1; sub("%", "", pc); if (pc + 0 >= 99.9) p999 = $3 }
        END { if (rps != "") printf "%s\t%s\t%s\n", rps, p99, p999 }'
}
# column I of each of the arrays' values
cols() { local i=$1; shift; for v in "$@"; do c=$(cut -s -f"$i" <<<"$v"); echo "${c:-0}"; done; }

want() { [[ " ${SECTIONS:-1 2 3} " == *" $1 "* ]]; }

if want 1; then
echo "== 1. SET with persistence, -n $N -c 50, $ROUNDS rounds alternating which server goes first, median rps ($(redis-server --version | cut -d' ' -f3) vs redlog $REDLOG_BIN at $(git describe --always --dirty 2>/dev/null || echo '?'))"
printf '%-9s %-4s %12s %12s %7s %9s %9s %9s %9s  %s\n' fsync -P redis redlog ratio "r p99" "l p99" "r p99.9" "l p99.9" "per-round ratios"
for fsync in everysec always; do
    RP=$(free_port); LP=$(free_port)
    start_redis "$WORK/r-$fsync" "$RP" "$fsync"
    start_redlog "$WORK/l-$fsync" "$LP" "$fsync"
    for P in 1 16; do
        paired_rounds set_rps "$RP" "$LP" "$P"
        mapfile -t r99 < <(cols 2 "${RS[@]}"); mapfile -t l99 < <(cols 2 "${LS[@]}")
        mapfile -t r999 < <(cols 3 "${RS[@]}"); mapfile -t l999 < <(cols 3 "${LS[@]}")
        mapfile -t RS < <(cols 1 "${RS[@]}"); mapfile -t LS < <(cols 1 "${LS[@]}")
        r=$(median "${RS[@]}"); l=$(median "${LS[@]}")
        lat=(- - - -)
        [ "$P" = 1 ] && lat=("$(median "${r99[@]}")" "$(median "${l99[@]}")" "$(median "${r999[@]}")" "$(median "${l999[@]}")")
        printf '%-9s %-4s %12s %12s %7s %9s %9s %9s %9s  %s\n' "$fsync" "$P" "$r" "$l" "$(ratio "$l" "$r")" "${lat[@]}" "$(round_ratios)"
    done
    stop "$RP"; stop "$LP"
done
fi

if want 2; then
echo
echo "== 2. Startup replay of $REPLAY SET writes (random keys, 100-byte values)"
RP=$(free_port); LP=$(free_port)
start_redis "$WORK/replay-r" "$RP" no
start_redlog "$WORK/replay-l" "$LP" no
for port in "$RP" "$LP"; do
    "${CLIENT_CPU[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -q -n "$REPLAY" -r 100000000 -d 100 -c 50 -P 64 -t set >/dev/null 2>&1
done
stop "$RP"; stop "$LP"
aof_bytes=$(du -sb "$WORK/replay-r/appendonlydir" | cut -f1)
wal_bytes=$(du -sb "$WORK/replay-l/wal" | cut -f1)
start_redis "$WORK/replay-r" "$RP" no
start_redlog "$WORK/replay-l" "$LP" no
r_secs=$(grep -o 'DB loaded from append only file: [0-9.]* seconds' "$WORK/replay-r/redis.log" | tail -1 | grep -o '[0-9.]*' | tail -1)
[ -n "$r_secs" ] || r_secs=$(grep -o 'DB loaded from.*: [0-9.]* seconds' "$WORK/replay-r/redis.log" | tail -1 | grep -o '[0-9.]* seconds' | cut -d' ' -f1)
l_secs=$(grep -o 'in [0-9.]* seconds' "$WORK/replay-l.log" | tail -1 | cut -d' ' -f2)
printf '%-8s %14s %10s %14s %10s\n' server bytes seconds records/s MB/s
awk -v n="$REPLAY" -v b="$aof_bytes" -v s="$r_secs" 'BEGIN { printf "%-8s %14d %10.3f %14.0f %10.1f\n", "redis", b, s, n / s, b / s / 1e6 }'
awk -v n="$REPLAY" -v b="$wal_bytes" -v s="$l_secs" 'BEGIN { printf "%-8s %14d %10.3f %14.0f %10.1f\n", "redlog", b, s, n / s, b / s / 1e6 }'
echo "redlog/redis replay speed (records/s): $(ratio "$r_secs" "$l_secs")"
stop "$RP"; stop "$LP"
fi

if want 3; then
echo
echo "== 3. Compaction of $KEYS keys with a concurrent GET client (10 clients)"
printf '%-8s %12s %16s\n' server seconds worst-GET-ms
for server in redis redlog; do
    P=$(free_port)
    if [ "$server" = redis ]; then start_redis "$WORK/c-r" "$P" everysec; else start_redlog "$WORK/c-l" "$P" everysec; fi
    "${CLIENT_CPU[@]}" redis-benchmark -h 127.0.0.1 -p "$P" -q -n "$KEYS" -r "$KEYS" -d 20 -c 50 -P 64 -t set >/dev/null 2>&1
    # Fill every key of the range (random keys above leave gaps).
    "${CLIENT_CPU[@]}" python3 - "$P" "$KEYS" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
batch = []
for i in range(n):
    k = b"key:%012d" % i
    batch.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n" % (len(k), k))
    if len(batch) == 10000 or i == n - 1:
        s.sendall(b"".join(batch))
        need = len(batch) * 5
        got = 0
        while got < need:
            got += len(s.recv(1 << 20))
        batch = []
PY
    "${CLIENT_CPU[@]}" redis-benchmark -h 127.0.0.1 -p "$P" -n 400000 -c 10 -r "$KEYS" -t get >"$WORK/lat-$server.txt" 2>&1 &
    BENCH=$!
    sleep 0.5
    start=$(date +%s.%N)
    redis-cli -p "$P" bgrewriteaof >/dev/null
    while redis-cli -p "$P" info persistence | grep -q 'aof_rewrite_in_progress:1'; do sleep 0.01; done
    end=$(date +%s.%N)
    wait "$BENCH" || true
    worst=$(tr '\r' '\n' <"$WORK/lat-$server.txt" | awk '/latency summary/ { getline; getline; print $6 }' | tail -1)
    awk -v s="$start" -v e="$end" -v w="$worst" -v n="$server" 'BEGIN { printf "%-8s %12.3f %16s\n", n, e - s, w }'
    stop "$P"
done
fi
