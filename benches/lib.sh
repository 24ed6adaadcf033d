# Helpers shared by the benchmark scripts (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A free client port whose cluster bus port (+10000) is free too.
cluster_port() {
    python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p > 55000: continue
    try:
        b = socket.socket(); b.bind(("127.0.0.1", p + 10000)); b.close(); print(p); break
    except OSError: pass'
}

# wait_up PORT: waits (30 s at most) until the server on PORT answers PING.
wait_up() {
    for _ in $(seq 600); do
        [ "$(redis-cli -p "$1" ping 2>/dev/null || true)" = PONG ] && return 0
        sleep 0.05
    done
    echo "server on $1 did not start" >&2
    return 1
}

# scratch_dir: makes WORK (a temporary directory) and PIDS (the servers
# started), and removes both at exit.
scratch_dir() {
    WORK=$(mktemp -d)
    PIDS=()
    trap scratch_cleanup EXIT
}
scratch_cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

# start_cluster_node KIND PORT [ARGS...]: a cluster-enabled node without
# persistence (redlog from REDLOG_BIN, or redis-server) on PORT with its
# directory under WORK and ARGS added, in PIDS; returns once it answers.
start_cluster_node() {
    local kind=$1 port=$2 d="$WORK/$1-$2"
    shift 2
    mkdir -p "$d"
    local common=(--port "$port" --dir "$d" --cluster-enabled yes --appendonly no "$@")
    if [ "$kind" = redlog ]; then
        "$REDLOG_BIN" "${common[@]}" >"$d/log" 2>&1 &
    else
        redis-server "${common[@]}" --save '' --logfile "$d/log" &
    fi
    PIDS+=($!)
    wait_up "$port"
}

# ratio A B: A / B with two decimals (0 when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# paired_rounds CMD REDIS_ARG REDLOG_ARG ARGS...: ROUNDS times, runs
# `CMD REDIS_ARG ARGS...` and `CMD REDLOG_ARG ARGS...` back to back,
# alternating which goes first (the machine's speed drifts within
# seconds); their outputs in the arrays RS and LS, a failed run as "".
paired_rounds() {
    local cmd=$1 redis=$2 redlog=$3 round
    shift 3
    RS=()
    LS=()
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            RS+=("$("$cmd" "$redis" "$@" || true)")
            LS+=("$("$cmd" "$redlog" "$@" || true)")
        else
            LS+=("$("$cmd" "$redlog" "$@" || true)")
            RS+=("$("$cmd" "$redis" "$@" || true)")
        fi
    done
}

# round_ratios: the per-round ratios LS[i] / RS[i] of numeric RS and LS.
round_ratios() {
    local i out=""
    for i in "${!RS[@]}"; do out+="$(ratio "${LS[$i]:-0}" "${RS[$i]:-0}") "; done
    echo "$out"
}

# median VALUES...: the median (the lower middle one of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# rss_kb PID: the process's resident set size in KiB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# used_memory PORT: INFO memory's used_memory of the server on PORT.
used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
