#!/usr/bin/env bash
# Full synchronization to a replica: redlog vs redis-server, from the same
# redis-server 7.0 primary.
#
#     bash benches/replica_sync.sh [KEYS] [STREAM_ENTRIES]   (default 1000000 each)
#
# The primary holds KEYS string keys (DEBUG POPULATE) and one stream of
# STREAM_ENTRIES entries. A redis-server replica, then a redlog replica
# (release build, appendonly yes, its default), are started with
# `--replicaof`; each is timed from its start until INFO says the link is
# up with the primary's offset. Prints both times and redlog's / redis's
# ratio (the issue's target: at most 1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
KEYS=${1:-1000000}
ENTRIES=${2:-1000000}
REDLOG=target/release/redlog
T=$(mktemp -d /tmp/redlog-replsync.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

P=$(free_port)
mkdir -p "$T/p"
redis-server --port "$P" --dir "$T/p" --save '' --appendonly no \
    --repl-diskless-sync yes --repl-diskless-sync-delay 0 --enable-debug-command yes >"$T/p.log" 2>&1 &
PIDS+=("$!")
wait_up "$P"
redis-cli -p "$P" debug populate "$KEYS" key 16 >/dev/null
python3 - "$ENTRIES" >"$T/xadd.txt" <<'EOF'
import sys
n = int(sys.argv[1])
w = sys.stdout.write
for i in range(1, n + 1):
    w(f"*7\r\n$4\r\nXADD\r\n$6\r\nstream\r\n${len(str(i)) + 2}\r\n{i}-1\r\n$4\r\nhost\r\n$5\r\nweb-1\r\n$3\r\nmsg\r\n${len('line ' + str(i))}\r\nline {i}\r\n")
EOF
redis-cli -p "$P" --pipe <"$T/xadd.txt" >/dev/null
echo "primary: $(redis-cli -p "$P" dbsize) keys, stream of $(redis-cli -p "$P" xlen stream) entries"

# sync_time KIND: seconds from the replica's start to a caught-up link.
sync_time() {
    local kind=$1 port dir start
    port=$(free_port)
    dir="$T/$kind"
    mkdir -p "$dir"
    start=$(date +%s.%N)
    if [ "$kind" = redis ]; then
        redis-server --port "$port" --dir "$dir" --save '' --appendonly no \
            --replicaof 127.0.0.1 "$P" >"$dir.log" 2>&1 &
    else
        "$REDLOG" --port "$port" --dir "$dir" --replicaof 127.0.0.1 "$P" >"$dir.log" 2>&1 &
    fi
    local pid=$!
    PIDS+=("$pid")
    local want
    while true; do
        want=$(redis-cli -p "$P" info replication | sed -n 's/^master_repl_offset:\([0-9]*\).*/\1/p')
        if redis-cli -p "$port" info replication 2>/dev/null | grep -q '^master_link_status:up' &&
            [ "$(redis-cli -p "$port" info replication | sed -n 's/^slave_repl_offset:\([0-9]*\).*/\1/p')" = "$want" ]; then
            break
        fi
        sleep 0.05
    done
    local end
    end=$(date +%s.%N)
    [ "$(redis-cli -p "$port" dbsize)" = "$(redis-cli -p "$P" dbsize)" ] || echo "$kind: dbsize differs" >&2
    kill -9 "$pid" 2>/dev/null || true
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

R=$(sync_time redis)
L=$(sync_time redlog)
echo "full sync: redis-server replica ${R} s, redlog replica ${L} s, ratio redlog/redis $(ratio "$L" "$R")"
