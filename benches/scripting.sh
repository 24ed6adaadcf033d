#!/usr/bin/env bash
# EVALSHA and FCALL throughput of redlog against redis-server 7.0, same run,
# same client: the same body (INCR, EXPIRE, GET of KEYS[1]) as a cached
# script and as a library function, `redis-benchmark -c 50 -n N -P 1|16`,
# servers pinned with `taskset -c 1`, redis-benchmark with `taskset -c 0`,
# ROUNDS (default 3) rounds alternating which server goes first, median
# requests/s and the redlog/redis ratio.
# Usage: benches/scripting.sh [N]   (N defaults to 200000)
# env REDIS_PORT / REDLOG_PORT pick the ports (default: free ones);
# REDLOG_BIN runs that redlog binary instead of building target/release
# (to measure an older build in the same conditions).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
ROUNDS=${ROUNDS:-3}

if [ -z "${REDLOG_BIN:-}" ]; then
    cargo build --release --quiet
    REDLOG_BIN=target/release/redlog
fi

. benches/lib.sh
WORK=$(mktemp -d)
REDIS_PORT=${REDIS_PORT:-$(free_port)}
REDLOG_PORT=${REDLOG_PORT:-$(free_port)}
taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
taskset -c 1 "$REDLOG_BIN" --port "$REDLOG_PORT" --appendonly no \
    --dir "$WORK/redlog-data" >"$WORK/redlog.log" 2>&1 &
REDLOG_PID=$!
cleanup() {
    kill "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    wait "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
wait_up "$REDIS_PORT"
wait_up "$REDLOG_PORT"

BODY="redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 100)
return redis.call('GET', KEYS[1])"
LIB="#!lua name=bench
redis.register_function('f', function(keys, args)
    redis.call('INCR', keys[1])
    redis.call('EXPIRE', keys[1], 100)
    return redis.call('GET', keys[1])
end)"
SHA=""
for p in "$REDIS_PORT" "$REDLOG_PORT"; do
    [ "$(redis-cli -p "$p" FUNCTION LOAD REPLACE "$LIB")" = bench ]
    SHA=$(redis-cli -p "$p" SCRIPT LOAD "$BODY")
done

bench() {
    local port=$1 pipeline=$2
    shift 2
    taskset -c 0 redis-benchmark -h 127.0.0.1 -p "$port" -q -n "$N" -c 50 -P "$pipeline" "$@" 2>&1 |
        tr '\r' '\n' | grep 'requests per second' | tail -1 |
        sed -E 's/^[^:]+: ([0-9.]+) requests per second.*/\1/'
}

echo "redis-benchmark -n $N -c 50 (INCR, EXPIRE, GET; servers on cpu 1, client on cpu 0): $ROUNDS rounds, median rps ($(redis-server --version | cut -d' ' -f3) vs redlog ${REDLOG_BIN}, $(git describe --always --dirty 2>/dev/null || echo "?"))"
printf '%-8s %-4s %14s %14s %7s  %s\n' "command" "-P" "redis rps" "redlog rps" "ratio" "per-round ratios"
for what in EVALSHA FCALL; do
    for pipeline in 1 16; do
        if [ "$what" = EVALSHA ]; then
            paired_rounds bench "$REDIS_PORT" "$REDLOG_PORT" "$pipeline" EVALSHA "$SHA" 1 key
        else
            paired_rounds bench "$REDIS_PORT" "$REDLOG_PORT" "$pipeline" FCALL f 1 key
        fi
        r=$(median "${RS[@]}")
        l=$(median "${LS[@]}")
        printf '%-8s %-4s %14s %14s %7s  %s\n' "$what" "$pipeline" "$r" "$l" "$(ratio "$l" "$r")" "$(round_ratios)"
    done
done
