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
#
# PINNED=1: the per-core comparison (issue 19). Unpinned, redis-benchmark
# takes a whole core of this 2-core machine and both servers wait for it;
# pinned, each server runs on core 1 (`taskset -c 1`) and redis-benchmark
# on core 0 (`taskset -c 0`), so the servers' own cost per request shows.
# Both servers then run with `appendonly yes`, `appendfsync everysec`, and
# the tests default to set,get,incr,mset,xadd,xrange (XADD to a stream,
# XRANGE - + COUNT 10 on a stream of 100 entries). Each -P 1 run also
# reports the p99 and p99.9 latency (`--precision 3`: p99 from the latency
# summary, p99.9 as the first HDR percentile step at or above 99.9%),
# medians over the rounds, and the last line is the geometric mean of the
# rps ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
PINNED=${PINNED:-0}
if [ "$PINNED" = 1 ]; then
    TESTS=${TESTS:-set,get,incr,mset,xadd,xrange}
    SERVER_CPU=(taskset -c 1)
    CLIENT_CPU=(taskset -c 0)
    PERSIST=(--appendonly yes --appendfsync everysec)
else
    TESTS=${TESTS:-ping_inline,ping_mbulk,set,get,incr,mset}
    SERVER_CPU=()
    CLIENT_CPU=()
    # No persistence on either side (the issue's comparison).
    PERSIST=(--appendonly no)
fi
# redis-benchmark's default suite, test by test
[ "$TESTS" = all ] && TESTS=ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,lrange_500,lrange_600,mset
CLIENTS=50
ROUNDS=${ROUNDS:-3}

# REDLOG_BIN runs that redlog binary instead of building target/release
# (a "before" binary kept aside, for a before/after comparison).
if [ -z "${REDLOG_BIN:-}" ]; then
    cargo build --release --quiet
    REDLOG_BIN=target/release/redlog
fi

. benches/lib.sh
WORK=$(mktemp -d)
REDIS_PORT=$(free_port)
REDLOG_PORT=$(free_port)
while [ "$REDLOG_PORT" = "$REDIS_PORT" ]; do REDLOG_PORT=$(free_port); done

"${SERVER_CPU[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' "${PERSIST[@]}" \
    --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
"${SERVER_CPU[@]}" "$REDLOG_BIN" --port "$REDLOG_PORT" ${REDLOG_ARGS:-} "${PERSIST[@]}" --dir "$WORK/redlog-data" >"$WORK/redlog.log" 2>&1 &
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

if [ "$PINNED" = 1 ]; then
    # The stream XRANGE reads: 100 entries, on both servers.
    for port in "$REDIS_PORT" "$REDLOG_PORT"; do
        for i in $(seq 100); do echo "XADD bench:range * field value$i"; done |
            redis-cli -p "$port" >/dev/null
    done
    # pinned_bench PORT PIPELINE TEST -> "rps<tab>p99<tab>p99.9" (ms)
    pinned_bench() {
        local n=$N cmd=()
        [ "$2" = 1 ] || n=$((N * 10))
        case $3 in
            xadd) cmd=(XADD bench:xadd '*' field value) ;;
            xrange) cmd=(XRANGE bench:range - + COUNT 10) ;;
            *) cmd=(-t "$3") ;;
        esac
        "${CLIENT_CPU[@]}" redis-benchmark -h 127.0.0.1 -p "$1" -n "$n" -c "$CLIENTS" -P "$2" \
            --precision 3 "${cmd[@]}" 2>&1 | tr '\r' '\n' | awk '
            /throughput summary:/ { rps = $3 }
            /latency summary/ { getline; getline; p99 = $5 }
            /^[0-9.]+% <= / && p999 == "" { pc = $1; sub("%", "", pc); if (pc + 0 >= 99.9) p999 = $3 }
            END { if (rps != "") printf "%s\t%s\t%s\n", rps, p99, p999 }'
    }
    col() { cut -s -f"$1" <<<"$2"; }
    echo "pinned: servers on core 1, redis-benchmark on core 0; appendonly yes, appendfsync everysec; -n $N (x10 at -P 16) -c $CLIENTS; $ROUNDS rounds alternating which server goes first, medians ($(redis-server --version | cut -d' ' -f3) vs redlog $REDLOG_BIN at $(git describe --always --dirty 2>/dev/null || echo '?'))"
    printf '%-4s %-8s %12s %12s %6s %9s %9s %9s %9s  %s\n' "-P" test "redis rps" "redlog rps" ratio "r p99" "l p99" "r p99.9" "l p99.9" "per-round ratios"
    IFS=, read -r -a tests <<<"$TESTS"
    logsum=0
    cases=0
    for pipeline in ${PIPELINES:-1 16}; do
        for t in "${tests[@]}"; do
            paired_rounds pinned_bench "$REDIS_PORT" "$REDLOG_PORT" "$pipeline" "$t"
            rr=(); lr=(); r99=(); l99=(); r999=(); l999=()
            for i in "${!RS[@]}"; do
                rr+=("$(col 1 "${RS[$i]}")"); lr+=("$(col 1 "${LS[$i]}")")
                r99+=("$(col 2 "${RS[$i]}")"); l99+=("$(col 2 "${LS[$i]}")")
                r999+=("$(col 3 "${RS[$i]}")"); l999+=("$(col 3 "${LS[$i]}")")
                rr[i]=${rr[i]:-0}; lr[i]=${lr[i]:-0}
            done
            rm=$(median "${rr[@]}"); lm=$(median "${lr[@]}")
            lat=("-" "-" "-" "-")
            if [ "$pipeline" = 1 ]; then
                lat=("$(median "${r99[@]}")" "$(median "${l99[@]}")" "$(median "${r999[@]}")" "$(median "${l999[@]}")")
            fi
            RS=("${rr[@]}"); LS=("${lr[@]}")
            printf '%-4s %-8s %12s %12s %6s %9s %9s %9s %9s  %s\n' "$pipeline" "$t" "$rm" "$lm" "$(ratio "$lm" "$rm")" \
                "${lat[@]}" "$(round_ratios)"
            logsum=$(awk -v s="$logsum" -v a="$lm" -v b="$rm" 'BEGIN { print s + (a > 0 && b > 0 ? log(a / b) : 0) }')
            cases=$((cases + 1))
        done
    done
    awk -v s="$logsum" -v n="$cases" 'BEGIN { printf "geometric mean of the rps ratios: %.2f\n", exp(s / n) }'
    exit 0
fi

echo "redis-benchmark -q -n $N -c $CLIENTS -t $TESTS: per test, $ROUNDS rounds of redis and redlog back to back (alternating which goes first), median rps ($(redis-server --version | cut -d' ' -f3) vs redlog $REDLOG_BIN at $(git describe --always --dirty 2>/dev/null || echo '?'))"
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
