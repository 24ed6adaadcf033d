#!/usr/bin/env bash
# FCALL throughput of redlog against redis-server, same run, same client:
# a library function whose body does INCR, EXPIRE, GET, called with
# `redis-benchmark -c 50 -n N [-P 16] FCALL f 1 key`, the two servers back
# to back, ROUNDS (default 3) rounds alternating which goes first, median
# requests/s and the redlog/redis ratio.
# Usage: benches/fcall.sh [N]   (N defaults to 200000)
# env REDIS_PORT / REDLOG_PORT pick the ports (default: free ones).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
ROUNDS=${ROUNDS:-3}

cargo build --release --quiet

. benches/lib.sh
WORK=$(mktemp -d)
REDIS_PORT=${REDIS_PORT:-$(free_port)}
REDLOG_PORT=${REDLOG_PORT:-$(free_port)}
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
target/release/redlog --port "$REDLOG_PORT" --appendonly no --dir "$WORK/redlog-data" >"$WORK/redlog.log" 2>&1 &
REDLOG_PID=$!
cleanup() {
    kill "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    wait "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
wait_up "$REDIS_PORT"
wait_up "$REDLOG_PORT"

LIB="#!lua name=bench
redis.register_function('f', function(keys, args)
    redis.call('INCR', keys[1])
    redis.call('EXPIRE', keys[1], 100)
    return redis.call('GET', keys[1])
end)"
for p in "$REDIS_PORT" "$REDLOG_PORT"; do
    [ "$(redis-cli -p "$p" FUNCTION LOAD REPLACE "$LIB")" = bench ]
done

bench() {
    redis-benchmark -h 127.0.0.1 -p "$1" -q -n "$N" -c 50 -P "$2" FCALL f 1 key 2>&1 |
        tr '\r' '\n' | grep 'requests per second' | tail -1 |
        sed -E 's/^[^:]+: ([0-9.]+) requests per second.*/\1/'
}

echo "redis-benchmark -n $N -c 50 FCALL f 1 key (INCR, EXPIRE, GET): $ROUNDS rounds, median rps ($(redis-server --version | cut -d' ' -f3) vs redlog $(git describe --always --dirty 2>/dev/null || echo '?'))"
printf '%-4s %14s %14s %7s  %s\n' "-P" "redis rps" "redlog rps" "ratio" "per-round ratios"
for pipeline in 1 16; do
    paired_rounds bench "$REDIS_PORT" "$REDLOG_PORT" "$pipeline"
    r=$(median "${RS[@]}")
    l=$(median "${LS[@]}")
    printf '%-4s %14s %14s %7s  %s\n' "$pipeline" "$r" "$l" "$(ratio "$l" "$r")" "$(round_ratios)"
done
