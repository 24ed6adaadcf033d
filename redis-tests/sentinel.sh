#!/usr/bin/env bash
# redis-sentinel fails a redis-server primary over to a redlog replica.
#
#     bash redis-tests/sentinel.sh path/to/redlog
#
# A redis-server 7.0 primary, a redlog replica (`--replicaof`), one
# redis-sentinel monitoring the primary with quorum 1. The primary is killed
# with -9; within 10 s Sentinel has promoted the redlog replica (ROLE master,
# SENTINEL get-master-addr-by-name names it) and it accepts writes, with the
# data written before the failure. (Once the primary side is merged: all
# redlog, two replicas, the other one following the new primary.)
#
# Prints one line per check and "N passed, M failed"; exit status 1 on any
# failure.
set -u
REDLOG=${1:-target/release/redlog}
PASSED=0
FAILED=0
PIDS=()
T=$(mktemp -d /tmp/redlog-sentinel.XXXXXX)

cleanup() {
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$FAILED" -eq 0 ]; then rm -rf "$T"; else echo "(work directory kept: $T)"; fi
}
trap cleanup EXIT

check() { # name expected actual
    if [ "$2" = "$3" ]; then
        PASSED=$((PASSED + 1))
        echo "ok    $1"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL  $1: expected '$2', got '$3'"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_until() { # seconds command...
    local end=$((SECONDS + $1))
    shift
    while [ "$SECONDS" -lt "$end" ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

P=$(free_port)
R=$(free_port)
S=$(free_port)
mkdir -p "$T/p" "$T/r" "$T/s"
redis-server --port "$P" --dir "$T/p" --save '' --appendonly no \
    --repl-diskless-sync-delay 0 >"$T/p.log" 2>&1 &
PRIMARY=$!
PIDS+=("$PRIMARY")
wait_until 10 redis-cli -p "$P" ping
"$REDLOG" --port "$R" --dir "$T/r" --replicaof 127.0.0.1 "$P" >"$T/r.log" 2>&1 &
PIDS+=("$!")
wait_until 10 redis-cli -p "$R" ping
cat >"$T/s/sentinel.conf" <<EOF
port $S
dir $T/s
sentinel monitor mymaster 127.0.0.1 $P 1
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
EOF
redis-sentinel "$T/s/sentinel.conf" >"$T/s.log" 2>&1 &
PIDS+=("$!")
wait_until 10 redis-cli -p "$S" ping

redis-cli -p "$P" set before-failover 1 >/dev/null
redis-cli -p "$P" rpush list a b c >/dev/null
link_up() { redis-cli -p "$R" info replication | grep -q 'master_link_status:up'; }
check "redlog replica linked to the redis-server primary" 0 "$(wait_until 20 link_up; echo $?)"
replica_known() { redis-cli -p "$S" sentinel replicas mymaster | grep -qx "127.0.0.1:$R"; }
check "Sentinel discovered the redlog replica" 0 "$(wait_until 20 replica_known; echo $?)"
synced() { [ "$(redis-cli -p "$R" lrange list 0 -1 | tr '\n' ' ')" = "a b c " ]; }
check "data replicated" 0 "$(wait_until 10 synced; echo $?)"

kill -9 "$PRIMARY"
wait "$PRIMARY" 2>/dev/null
start=$SECONDS
promoted() {
    [ "$(redis-cli -p "$S" sentinel get-master-addr-by-name mymaster | tail -1)" = "$R" ] &&
        [ "$(redis-cli -p "$R" role | head -1)" = "master" ]
}
ok=$(wait_until 10 promoted; echo $?)
check "redlog promoted by Sentinel within 10 s of kill -9 (took $((SECONDS - start)) s)" 0 "$ok"
check "promoted replica accepts writes" "OK" "$(redis-cli -p "$R" set after-failover 2)"
check "data from before the failure" "1" "$(redis-cli -p "$R" get before-failover)"
check "promoted replica: replid2 is the old primary's" 1 \
    "$(redis-cli -p "$R" info replication | grep -c '^second_repl_offset:[1-9]')"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
