#!/usr/bin/env bash
# Throughput of redlog against redis-server on this machine, same run, same
# client: redis-benchmark -q -n N -c 50 -t ping,set,get,incr,mset at -P 1
# and -P 16, one test at a time with the two servers back to back (the
# machine's speed drifts within seconds). Prints requests/s for both and
# the redlog/redis ratio.
# Usage: benches/redis_benchmark.sh [N]   (N defaults to 100000; the -P 16
# runs send 10 x N requests so that each lasts more than a blink)
# env TESTS=all runs redis-benchmark's whole default suite, test by test;
# PIPELINES="1" runs only -P 1; ROUNDS (default 3) repeats each pair that
# many times, alternating which server goes first, and reports the medians
# (single runs on this 2-core VM swing by +-10% and more).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TESTS=${TESTS:-ping_inline,ping_mbulk,set,get,incr,mset}
# redis-benchmark's default suite, test by test
[ "$TESTS" = all ] && TESTS=ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,lrange_500,lrange_600,mset
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
wait_up "$REDIS_PORT"
wait_up "$REDLOG_PORT"

# bench PORT PIPELINE TEST -> "NAME<tab>rps" of that test (the last line:
# the LRANGE tests print their LPUSH fill first)
bench() {
    local n=$N
    [ "$2" = 1 ] || n=$((N * 10))
    redis-benchmark -h 127.0.0.1 -p "$1" -q -n "$n" -c "$CLIENTS" -P "$2" -t "$3" 2>&1 |
        tr '\r' '\n' | grep 'requests per second' | tail -1 |
        sed -E 's/^([^:]+): ([0-9.]+) requests per second.*/\1\t\2/'
}

echo "redis-benchmark -q -n $N -c $CLIENTS -t $TESTS: per test, $ROUNDS rounds of redis and redlog back to back (alternating which goes first), median rps ($(redis-server --version | cut -d' ' -f3) vs redlog $(git describe --always --dirty 2>/dev/null || echo '?'))"
printf '%-4s %-32s %14s %14s %7s  %s\n' "-P" "test" "redis rps" "redlog rps" "ratio" "per-round ratios"
IFS=, read -r -a tests <<<"$TESTS"
for pipeline in ${PIPELINES:-1 16}; do
    for t in "${tests[@]}"; do
        paired_rounds bench "$REDIS_PORT" "$REDLOG_PORT" "$pipeline" "$t"
        name=$(cut -f1 <<<"${RS[0]}")
        name=${name:-$t}
        # "NAME<tab>rps" -> rps; redis-benchmark stops at the first error
        # reply: no rps, counted as 0.
        for i in "${!RS[@]}"; do
            r=$(cut -s -f2 <<<"${RS[$i]}"); l=$(cut -s -f2 <<<"${LS[$i]}")
            RS[i]=${r:-0}; LS[i]=${l:-0}
        done
        rm=$(median "${RS[@]}"); lm=$(median "${LS[@]}")
        printf '%-4s %-32s %14s %14s %7s  %s\n' "$pipeline" "$name" "$rm" "$lm" "$(ratio "$lm" "$rm")" "$(round_ratios)"
    done
done
