#!/usr/bin/env bash
# Throughput of the issue 16 data commands, redlog against redis-server on
# this machine, same run, same client: redis-benchmark -c 50 at -P 1 and
# -P 16, one command at a time with the two servers back to back (the
# machine's speed drifts within seconds). Prints requests/s for both and
# the redlog/redis ratio (median of ROUNDS rounds, alternating which server
# goes first).
#
# Commands: SETBIT / GETBIT of bit 99999 of random keys among 100000
# (redis-benchmark's __rand_int__ is 12 digits with leading zeros, which a
# bit offset may not have), BITCOUNT of a 12.5 KB bitmap, PFADD of random elements, PFCOUNT of
# one HyperLogLog, GEOADD of random members, GEOSEARCH within 50 km of a
# point among 10000 members (COUNT 10 ASC), SORT of a 1000-element list of
# numbers. Both servers are filled the same way (one EVAL) before the runs.
#
# Usage: benches/datatypes.sh [N]   (N defaults to 100000 requests per
# run; GEOSEARCH and SORT, each hundreds of times the work of a SETBIT, get
# N/10; the -P 16 runs send 10 times as many)
# env ROUNDS (default 3), PIPELINES (default "1 16"), TESTS (a comma list
# of the names below) narrow the run. With PIN=1 (the default when
# `taskset` exists and there are 2 CPUs or more) both servers run on CPU 1
# and redis-benchmark on CPU 0, so client and server do not compete.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
CLIENTS=50
ROUNDS=${ROUNDS:-3}
TESTS=${TESTS:-setbit,getbit,bitcount,pfadd,pfcount,geoadd,geosearch,sort}

cargo build --release --quiet

. benches/lib.sh
WORK=$(mktemp -d)
REDIS_PORT=$(free_port)
REDLOG_PORT=$(free_port)
while [ "$REDLOG_PORT" = "$REDIS_PORT" ]; do REDLOG_PORT=$(free_port); done

PIN=${PIN:-$([ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null && echo 1 || echo 0)}
SERVER_CPU=()
CLIENT_CPU=()
if [ "$PIN" = 1 ]; then
    SERVER_CPU=(taskset -c 1)
    CLIENT_CPU=(taskset -c 0)
fi

"${SERVER_CPU[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
# No persistence on either side.
"${SERVER_CPU[@]}" target/release/redlog --port "$REDLOG_PORT" ${REDLOG_ARGS:-} --appendonly no --dir "$WORK/redlog-data" >"$WORK/redlog.log" 2>&1 &
REDLOG_PID=$!
cleanup() {
    kill "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    wait "$REDIS_PID" "$REDLOG_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
wait_up "$REDIS_PORT"
wait_up "$REDLOG_PORT"

# The same data on both: a bitmap, a HyperLogLog, 10000 geo members on a
# 100 x 100 grid of 0.01 degree steps, a list of 1000 numbers.
FILL='
for i = 0, 99999, 7 do redis.call("SETBIT", "bits", i, 1) end
for i = 1, 1000 do redis.call("PFADD", "hll", "e" .. i) end
for i = 0, 9999 do
  redis.call("GEOADD", "geo", 13 + (i % 100) * 0.01, 37 + math.floor(i / 100) * 0.01, "m" .. i)
end
for i = 1, 1000 do redis.call("RPUSH", "sortlist", (i * 7919) % 100003) end
return 1'
for port in "$REDIS_PORT" "$REDLOG_PORT"; do
    redis-cli -p "$port" EVAL "$FILL" 0 >/dev/null
done

# command NAME -> "requests divisor<tab>command line" for redis-benchmark
command_of() {
    case $1 in
    setbit) printf '1\tSETBIT bits:__rand_int__ 99999 1' ;;
    getbit) printf '1\tGETBIT bits:__rand_int__ 99999' ;;
    bitcount) printf '1\tBITCOUNT bits' ;;
    pfadd) printf '1\tPFADD hll e__rand_int__' ;;
    pfcount) printf '1\tPFCOUNT hll' ;;
    geoadd) printf '1\tGEOADD geoadd 13.361389 38.115556 m__rand_int__' ;;
    geosearch) printf '10\tGEOSEARCH geo FROMLONLAT 13.5 37.5 BYRADIUS 50 km ASC COUNT 10' ;;
    sort) printf '10\tSORT sortlist' ;;
    *) echo "unknown test $1" >&2; return 1 ;;
    esac
}

# bench PORT PIPELINE TEST -> requests per second
bench() {
    local spec div cmdline n
    spec=$(command_of "$3")
    div=$(cut -f1 <<<"$spec")
    cmdline=$(cut -f2 <<<"$spec")
    n=$((N / div))
    [ "$2" = 1 ] || n=$((n * 10))
    # shellcheck disable=SC2086
    "${CLIENT_CPU[@]}" redis-benchmark -h 127.0.0.1 -p "$1" -q -n "$n" -c "$CLIENTS" -P "$2" -r 100000 $cmdline 2>&1 |
        tr '\r' '\n' | grep 'requests per second' | tail -1 |
        sed -E 's/.*: ([0-9.]+) requests per second.*/\1/'
}

echo "redis-benchmark -q -n $N -c $CLIENTS -r 100000: per command, $ROUNDS rounds of redis and redlog back to back (alternating which goes first), median rps ($(redis-server --version | cut -d' ' -f3) vs redlog $(git describe --always --dirty 2>/dev/null || echo '?'))"
printf '%-4s %-62s %12s %12s %7s  %s\n' "-P" "command" "redis rps" "redlog rps" "ratio" "per-round ratios"
IFS=, read -r -a tests <<<"$TESTS"
for pipeline in ${PIPELINES:-1 16}; do
    for t in "${tests[@]}"; do
        paired_rounds bench "$REDIS_PORT" "$REDLOG_PORT" "$pipeline" "$t"
        for i in "${!RS[@]}"; do
            RS[i]=${RS[$i]:-0}
            LS[i]=${LS[$i]:-0}
        done
        rm=$(median "${RS[@]}")
        lm=$(median "${LS[@]}")
        printf '%-4s %-62s %12s %12s %7s  %s\n' "$pipeline" "$(command_of "$t" | cut -f2)" "$rm" "$lm" "$(ratio "$lm" "$rm")" "$(round_ratios)"
    done
done
