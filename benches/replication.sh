#!/usr/bin/env bash
# Primary throughput with one replica attached (issue 20's closing note):
# redis-benchmark -q -t set -c 50 -P 16 -n N against
#   - redlog alone and redlog with a redis-server 7.0 replica,
#   - redis-server alone and redis-server with a redis-server replica,
# back to back in the same run (this 2-core VM drifts within seconds),
# ROUNDS times (default 3), medians. Both primaries run with `appendonly
# no` (Redis's default) so the replication stream is the only extra work.
# Prints the four medians and the ratios redlog+replica / redlog alone and
# redlog+replica / redis+replica.
# Usage: benches/replication.sh [N]   (N defaults to 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
ROUNDS=${ROUNDS:-3}
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

start_redlog() { # PORT
    mkdir -p "$WORK/l$1"
    "$REDLOG_BIN" --port "$1" --dir "$WORK/l$1" --appendonly no >"$WORK/l$1.log" 2>&1 &
    PIDS+=($!)
    wait_up "$1"
}
start_redis() { # PORT [replicaof PORT]
    mkdir -p "$WORK/r$1"
    local extra=()
    [ $# -gt 1 ] && extra=(--replicaof 127.0.0.1 "$2")
    redis-server --port "$1" --dir "$WORK/r$1" --save '' --appendonly no \
        --logfile "$WORK/r$1.log" "${extra[@]}" &
    PIDS+=($!)
    wait_up "$1"
}
link_up() { # REPLICA_PORT (2 minutes at most: the machine is shared)
    for _ in $(seq 2400); do
        redis-cli -p "$1" info replication | grep -q 'master_link_status:up' && return 0
        sleep 0.05
    done
    echo "replica on $1 did not link (redlog on $L, redis-server on $R)" >&2
    tail -5 "$WORK/r$1.log" >&2
    return 1
}
rps() { # PORT
    redis-cli -p "$1" flushall >/dev/null
    redis-benchmark -p "$1" -q -t set -c 50 -P 16 -n "$N" -r 100000 |
        tr '\r' '\n' | awk '/requests per second/ { print $2 }' | tail -1
}

L=$(free_port); start_redlog "$L"
R=$(free_port); start_redis "$R"
LA=() RA=() LR=() RR=()
for round in $(seq "$ROUNDS"); do
    LA+=("$(rps "$L")"); RA+=("$(rps "$R")")
done
LREP=$(free_port); start_redis "$LREP" "$L"; link_up "$LREP"
RREP=$(free_port); start_redis "$RREP" "$R"; link_up "$RREP"
for round in $(seq "$ROUNDS"); do
    LR+=("$(rps "$L")"); RR+=("$(rps "$R")")
done
la=$(median "${LA[@]}"); ra=$(median "${RA[@]}")
lr=$(median "${LR[@]}"); rr=$(median "${RR[@]}")
echo "SET -c 50 -P 16 -n $N, medians of $ROUNDS (requests/s)"
echo "redlog alone:          $la"
echo "redlog + replica:      $lr"
echo "redis-server alone:    $ra"
echo "redis-server + replica: $rr"
echo "redlog+replica / redlog alone:        $(ratio "$lr" "$la")"
echo "redlog+replica / redis-server+replica: $(ratio "$lr" "$rr")"
# The replicas got everything: same key count on both sides.
sleep 1
echo "keys: redlog $(redis-cli -p "$L" dbsize) / its replica $(redis-cli -p "$LREP" dbsize)"
