#!/usr/bin/env bash
# The operations issue's closing figures: redlog against redis-server 7.0 on
# this machine, same run, same client, each server pinned to CPU 1 and
# redis-benchmark to CPU 0 (taskset), no persistence on either side.
#   acl: GET and SET, 50 clients, -P 1 and -P 16, as a user with 20 key
#        patterns (the one benchmark keys match last) and 10 command rules,
#        the same ACL on both servers.
#   tls: GET and SET, 50 clients, -P 1 and -P 16, over TLS (redis-benchmark
#        --tls; Debian's redis is built with TLS), certificates made here
#        with openssl, clients not authenticated by certificate.
# Usage: benches/acl_tls_benchmark.sh [N]   (N defaults to 100000; -P 16
# runs send 10 x N). ROUNDS (default 3) pairs per test, alternating which
# server goes first; medians reported. REDLOG_BIN overrides the binary
# (default target/release/redlog, built here).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
CLIENTS=50
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
if [ -z "${REDLOG_BIN:-}" ]; then
    cargo build --release --quiet
    REDLOG_BIN=target/release/redlog
    REDLOG_LABEL="redlog $(git describe --always --dirty 2>/dev/null || echo '?')"
else
    REDLOG_LABEL="redlog $REDLOG_BIN"
fi

. benches/lib.sh
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# 20 key patterns, the benchmark's `key:*` last; 10 command rules.
PATTERNS=""
for i in $(seq 1 19); do PATTERNS+="~app$i:* "; done
PATTERNS+="~key:*"
RULES="-@all +get +set +ping +incr +mset +lpush +hset +sadd +config|get"
ACL_USER="user bench on >benchpass $PATTERNS $RULES"

# Certificates: a CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$WORK/ext.cnf"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/ext.cnf" -out "$WORK/server.crt" 2>/dev/null
TLS_ARGS=(--tls-cert-file "$WORK/server.crt" --tls-key-file "$WORK/server.key"
    --tls-ca-cert-file "$WORK/ca.crt" --tls-auth-clients no)

start_pair() { # name: sets REDIS_PORT, REDLOG_PORT (ACL conf) or TLS ports
    local name=$1 extra_redis=() extra_redlog=()
    REDIS_PORT=$(free_port)
    REDLOG_PORT=$(free_port)
    while [ "$REDLOG_PORT" = "$REDIS_PORT" ]; do REDLOG_PORT=$(free_port); done
    if [ "$name" = acl ]; then
        printf '%s\n' "$ACL_USER" >"$WORK/acl.conf"
        extra_redis=("$WORK/acl.conf" --port "$REDIS_PORT")
        extra_redlog=("$WORK/acl.conf" --port "$REDLOG_PORT")
    else
        extra_redis=(--port 0 --tls-port "$REDIS_PORT" "${TLS_ARGS[@]}")
        extra_redlog=(--port 0 --tls-port "$REDLOG_PORT" "${TLS_ARGS[@]}")
    fi
    taskset -c "$SERVER_CPU" redis-server "${extra_redis[@]}" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$WORK" --logfile "$WORK/redis-$name.log" &
    PIDS+=($!)
    mkdir -p "$WORK/redlog-$name"
    taskset -c "$SERVER_CPU" "$REDLOG_BIN" "${extra_redlog[@]}" --bind 127.0.0.1 \
        --appendonly no --dir "$WORK/redlog-$name" >"$WORK/redlog-$name.log" 2>&1 &
    PIDS+=($!)
}

CLI_ARGS=()
up() { # port
    for _ in $(seq 600); do
        [ "$(redis-cli "${CLI_ARGS[@]}" -p "$1" ping 2>/dev/null || true)" = PONG ] && return 0
        sleep 0.05
    done
    echo "server on $1 did not start" >&2
    return 1
}

BENCH_ARGS=()
# bench PORT PIPELINE TEST -> "NAME<tab>rps"
bench() {
    local n=$N
    [ "$2" = 1 ] || n=$((N * 10))
    taskset -c "$CLIENT_CPU" redis-benchmark "${BENCH_ARGS[@]}" -h 127.0.0.1 -p "$1" -q \
        -n "$n" -c "$CLIENTS" -P "$2" -t "$3" 2>&1 |
        tr '\r' '\n' | grep 'requests per second' | tail -1 |
        sed -E 's/^([^:]+): ([0-9.]+) requests per second.*/\1\t\2/'
}

run() { # label
    for pipeline in 1 16; do
        for t in set get; do
            paired_rounds bench "$REDIS_PORT" "$REDLOG_PORT" "$pipeline" "$t"
            for i in "${!RS[@]}"; do
                r=$(cut -s -f2 <<<"${RS[$i]}"); l=$(cut -s -f2 <<<"${LS[$i]}")
                RS[i]=${r:-0}; LS[i]=${l:-0}
            done
            rm=$(median "${RS[@]}"); lm=$(median "${LS[@]}")
            printf '%-4s %-4s %-4s %14s %14s %7s  %s\n' "$1" "$pipeline" "$t" "$rm" "$lm" \
                "$(ratio "$lm" "$rm")" "$(round_ratios)"
        done
    done
}

echo "redis-benchmark -q -n $N (x10 at -P 16) -c $CLIENTS; servers on CPU $SERVER_CPU, client on CPU $CLIENT_CPU; $ROUNDS rounds, medians ($(redis-server --version | cut -d' ' -f3) vs $REDLOG_LABEL)"
printf '%-4s %-4s %-4s %14s %14s %7s  %s\n' mode -P test "redis rps" "redlog rps" ratio "per-round ratios"

start_pair acl
CLI_ARGS=(--user bench --pass benchpass --no-auth-warning)
up "$REDIS_PORT"
up "$REDLOG_PORT"
BENCH_ARGS=(--user bench -a benchpass)
run acl

start_pair tls
CLI_ARGS=(--tls --cacert "$WORK/ca.crt")
up "$REDIS_PORT"
up "$REDLOG_PORT"
BENCH_ARGS=(--tls --cacert "$WORK/ca.crt")
run tls
