#!/usr/bin/env bash
# Throughput of redlog against redis-server on this machine, same run, same
# client: redis-benchmark -q -n N -c 50 -t ping,set,get,incr,mset at -P 1
# and -P 16. Prints requests/s for both and the redlog/redis ratio.
# Usage: benches/redis_benchmark.sh [N]   (N defaults to 100000; the -P 16
# runs send 10 x N requests so that each lasts more than a blink)
# env TESTS=all runs redis-benchmark's whole default suite (no -t);
# PIPELINES="1" runs only -P 1; ROUNDS (default 3) repeats each side that
# many times, alternating which server goes first, and reports the medians
# (runs on this 2-core machine swing by +-10%).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TESTS=${TESTS:-ping,set,get,incr,mset}
CLIENTS=50
ROUNDS=${ROUNDS:-3}

cargo build --release --quiet

. benches/lib.sh
WORK=$(mktemp -d)
REDIS_PORT=$(free_port)
REDLOG_PORT=$(free_port)
while [ "$REDLOG_PORT" = "$REDIS_PORT" ]; do REDLOG_PORT=$(free_port); done

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
# No persistence on either side (the issue's comparison).
target/release/redlog --port "$REDLOG_PORT" ${REDLOG_ARGS:-} --appendonly no --dir "$WORK/redlog-data" >"$WORK/redlog.log" 2>&1 &
REDLOG_PID=$!
cleanup() {
    kill "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    wait "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for port in "$REDIS_PORT" "$REDLOG_PORT"; do
    for _ in $(seq 100); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = PONG ] && break
        sleep 0.1
    done
done

# bench PORT PIPELINE -> lines "TEST rps"
bench() {
    local n=$N
    [ "$2" = 1 ] || n=$((N * 10))
    local t=(-t "$TESTS")
    [ "$TESTS" = all ] && t=()   # redis-benchmark's whole default suite
    redis-benchmark -h 127.0.0.1 -p "$1" -q -n "$n" -c "$CLIENTS" -P "$2" "${t[@]}" 2>&1 |
        tr '\r' '\n' | grep 'requests per second' |
        sed -E 's/^([^:]+): ([0-9.]+) requests per second.*/\1\t\2/'
}

echo "redis-benchmark -q -n $N -c $CLIENTS -t $TESTS, $ROUNDS rounds alternating which server goes first, median rps ($(redis-server --version | cut -d' ' -f3) vs redlog $(git describe --always --dirty 2>/dev/null || echo '?'))"
printf '%-4s %-16s %14s %14s %7s  %s\n' "-P" "test" "redis rps" "redlog rps" "ratio" "per-round ratios"
for pipeline in ${PIPELINES:-1 16}; do
    redis_all=""
    redlog_all=""
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            r=$(bench "$REDIS_PORT" "$pipeline" || true)
            l=$(bench "$REDLOG_PORT" "$pipeline" || true)  # redis-benchmark stops at the first error reply
        else
            l=$(bench "$REDLOG_PORT" "$pipeline" || true)
            r=$(bench "$REDIS_PORT" "$pipeline" || true)
        fi
        redis_all+=$(sed "s/^/$round\t/" <<<"$r")$'\n'
        redlog_all+=$(sed "s/^/$round\t/" <<<"$l")$'\n'
    done
    # Test names in redis-benchmark's order, from the first round.
    awk -F'\t' '$1 == 1 { print $2 }' <<<"$redis_all" | while IFS= read -r name; do
        mapfile -t rs < <(awk -F'\t' -v n="$name" '$2 == n { print $3 }' <<<"$redis_all")
        mapfile -t ls < <(awk -F'\t' -v n="$name" '$2 == n { print $3 }' <<<"$redlog_all")
        per=""
        for i in "${!rs[@]}"; do
            per+=$(awk -v a="${ls[$i]:-0}" -v b="${rs[$i]}" 'BEGIN { printf "%.2f ", (b > 0 ? a / b : 0) }')
        done
        rm=$(median "${rs[@]}")
        lm=$( [ "${#ls[@]}" = "${#rs[@]}" ] && median "${ls[@]}" || echo 0)
        ratio=$(awk -v a="$lm" -v b="$rm" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        printf '%-4s %-16s %14s %14s %7s  %s\n' "$pipeline" "$name" "$rm" "$lm" "$ratio" "$per"
    done
done
