#!/usr/bin/env bash
# Three-primary cluster throughput (issue 21's closing note): three
# redis-server 7.0 primaries and three redlog primaries on this machine,
# each trio made into a cluster with `redis-cli --cluster create`, then
#   redis-benchmark --cluster -t set,get -n N -c 50 -P 16   (pipelined)
#   redis-benchmark --cluster -t set,get -n N/3 -c 50       (one at a time)
# against each cluster back to back, alternating which goes first, ROUNDS
# times (default 3); prints the medians (requests per second, aggregate over
# the three nodes) and the ratios redlog / redis-server. Both kinds run
# without persistence (`appendonly no`, no RDB snapshots).
# Usage: benches/cluster.sh [N]   (N defaults to 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
ROUNDS=${ROUNDS:-3}
if [ -z "${REDLOG_BIN:-}" ]; then
    cargo build --release --quiet
    REDLOG_BIN=target/release/redlog
fi
. benches/lib.sh
scratch_dir
start_node() { start_cluster_node "$1" "$2"; } # KIND PORT

make_cluster() { # KIND: sets FIRST to its first port
    local ports=() addrs=() p
    for _ in 1 2 3; do
        p=$(cluster_port)
        start_node "$1" "$p"
        ports+=("$p")
        addrs+=("127.0.0.1:$p")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-yes >"$WORK/create-$1.log" 2>&1
    for p in "${ports[@]}"; do
        for _ in $(seq 600); do
            redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' && break
            sleep 0.05
        done
    done
    FIRST=${ports[0]}
}

# bench PORT TEST PIPELINE COUNT: requests per second of one test.
bench() {
    redis-benchmark --cluster -p "$1" -q -t "$2" -c 50 -P "$3" -n "$4" -r 100000 2>/dev/null |
        tr '\r' '\n' | awk '/requests per second/ { print $2 }' | tail -1
}

make_cluster redis-server
R=$FIRST
make_cluster redlog
L=$FIRST
echo "three primaries each: redis-server on $R..., redlog on $L... (N=$N, ROUNDS=$ROUNDS)"
printf '%-28s %14s %14s %8s  %s\n' test redis-server redlog ratio "per-round ratios"
for spec in "set 16 $N" "get 16 $N" "set 1 $((N / 3))" "get 1 $((N / 3))"; do
    read -r t pipe n <<<"$spec"
    paired_rounds bench "$R" "$L" "$t" "$pipe" "$n"
    r=$(median "${RS[@]}")
    l=$(median "${LS[@]}")
    printf '%-28s %14s %14s %8s  %s\n' "${t^^} -P $pipe -n $n" "$r" "$l" "$(ratio "$l" "$r")" "$(round_ratios)"
done
