#!/usr/bin/env bash
# Resharding 1M keys between two nodes (issue 21's closing note), redlog
# against redis-server 7.0 in the same run. For each kind: two cluster nodes
# A and B (CLUSTER ADDSLOTSRANGE 0 16383 on A, CLUSTER MEET), N keys
# `key:I` = `value:I` loaded into A with `redis-cli --pipe` (timed), then
#   redis-cli --cluster reshard A --cluster-from A --cluster-to B
#     --cluster-slots 16384 --cluster-yes --cluster-pipeline PIPE
# moves every slot with its keys to B (MIGRATE ... KEYS, timed). Both nodes
# run with `cluster-allow-replica-migration no` so that A, left without
# slots, stays a primary (no replication sync after the move), and without
# persistence. Prints the seconds per phase and the ratios redlog /
# redis-server (lower is faster for redlog).
# Usage: benches/reshard.sh [N [PIPE]]   (N defaults to 1000000, PIPE to 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PIPE=${2:-1000}
if [ -z "${REDLOG_BIN:-}" ]; then
    cargo build --release --quiet
    REDLOG_BIN=target/release/redlog
fi
. benches/lib.sh
scratch_dir
start_node() { start_cluster_node "$1" "$2" --cluster-allow-replica-migration no; } # KIND PORT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# The load: N SETs in RESP, made once.
seq 0 $((N - 1)) | awk '{ k = "key:" $1; v = "value:" $1;
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v }' >"$WORK/load.resp"

run() { # KIND: sets FILL and MOVE (seconds)
    local a b t0 t1 t2 n
    a=$(cluster_port)
    start_node "$1" "$a"
    b=$(cluster_port)
    start_node "$1" "$b"
    redis-cli -p "$a" cluster addslotsrange 0 16383 >/dev/null
    redis-cli -p "$a" cluster meet 127.0.0.1 "$b" >/dev/null
    for p in "$a" "$b"; do
        for _ in $(seq 1200); do
            redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' && break
            sleep 0.05
        done
    done
    # Both must know each other before redis-cli's checks.
    for _ in $(seq 1200); do
        [ "$(redis-cli -p "$b" cluster nodes | grep -c connected)" = 2 ] && break
        sleep 0.05
    done
    t0=$(now)
    redis-cli -p "$a" --pipe <"$WORK/load.resp" >"$WORK/pipe-$1.log"
    t1=$(now)
    n=$(redis-cli -p "$a" dbsize)
    [ "$n" = "$N" ] || { echo "$1: $n keys loaded, wanted $N" >&2; exit 1; }
    redis-cli --cluster reshard "127.0.0.1:$a" --cluster-from "$(redis-cli -p "$a" cluster myid)" \
        --cluster-to "$(redis-cli -p "$b" cluster myid)" --cluster-slots 16384 --cluster-yes \
        --cluster-pipeline "$PIPE" >"$WORK/reshard-$1.log" 2>&1 ||
        { echo "$1: reshard failed" >&2; tail -20 "$WORK/reshard-$1.log" >&2; exit 1; }
    t2=$(now)
    n=$(redis-cli -p "$b" dbsize)
    [ "$n" = "$N" ] || { echo "$1: $n keys on the target, wanted $N" >&2; exit 1; }
    FILL=$(secs "$t0" "$t1")
    MOVE=$(secs "$t1" "$t2")
}

run redis-server
RF=$FILL RM=$MOVE
run redlog
LF=$FILL LM=$MOVE
echo "N=$N keys, --cluster-pipeline $PIPE (seconds; ratio redlog/redis-server, lower is better)"
printf '%-34s %12s %8s %8s\n' phase redis-server redlog ratio
printf '%-34s %12s %8s %8s\n' "load (redis-cli --pipe)" "$RF" "$LF" "$(ratio "$LF" "$RF")"
printf '%-34s %12s %8s %8s\n' "reshard 16384 slots A -> B" "$RM" "$LM" "$(ratio "$LM" "$RM")"
