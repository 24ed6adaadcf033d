#!/usr/bin/env bash
# LOGPARSE INGEST end to end: `redis-cli -x LOGPARSE INGEST <key> hdfs < file`
# against a release redlog with appendonly yes / appendfsync everysec on a
# temporary dir. Target: at least 300k lines/s.
#
# The input repeats Loghub's HDFS_2k.log (CRLF) until it holds LINES lines.
# For scale, the same run times the transport of the same bytes to
# redis-server 7.0 (`redis-cli -x SET`, appendonly yes everysec): no parsing,
# one 70 MB value; redlog's INGEST also parses, mines and stores 500k
# stream entries, so that line is a floor, not a competitor.
#
# Usage: benches/logparse_ingest.sh [LINES] [RUNS] [REDIS_PORT] [REDLOG_PORT]
#        defaults 500000, 3, 7200, 7201. Expects target/release/redlog
#        (`cargo build --release`); REDLOG_BIN overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-500000}
RUNS=${2:-3}
RPORT=${3:-7200}
LPORT=${4:-7201}
BIN=${REDLOG_BIN:-target/release/redlog}

SRC=tests/data/loghub/HDFS_2k.log
[ -f "$SRC" ] || { echo "$SRC not found" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
    redis-cli -p "$LPORT" shutdown nosave >/dev/null 2>&1 || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

. benches/lib.sh

SRC_LINES=$(grep -c . "$SRC")
REPS=$(( (LINES + SRC_LINES - 1) / SRC_LINES ))
for _ in $(seq "$REPS"); do cat "$SRC"; done | head -n "$LINES" >"$WORK/in.log"
N=$(grep -c . "$WORK/in.log")
echo "input: $N lines, $(stat -c %s "$WORK/in.log") bytes"

mkdir -p "$WORK/redis" "$WORK/redlog"
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync everysec --dir "$WORK/redis" --logfile "$WORK/redis.log" &
PIDS+=($!)
"$BIN" --port "$LPORT" --dir "$WORK/redlog" --appendonly yes \
    --appendfsync everysec >"$WORK/redlog.log" 2>&1 &
PIDS+=($!)
wait_up "$RPORT"
wait_up "$LPORT"

secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$@"; }
now() { date +%s.%N; }

for r in $(seq "$RUNS"); do
    t0=$(now)
    redis-cli -p "$RPORT" -x SET "in:$r" <"$WORK/in.log" >/dev/null
    t1=$(now)
    out=$(redis-cli -p "$LPORT" -x LOGPARSE INGEST "hdfs:$r" hdfs <"$WORK/in.log")
    t2=$(now)
    parsed=$(echo "$out" | sed -n 2p)
    rs=$(secs "$t0" "$t1")
    ls=$(secs "$t1" "$t2")
    python3 - "$N" "$parsed" "$rs" "$ls" "$r" <<'EOF'
import sys
n, parsed, rs, ls, r = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
print(f"run {r}: redis SET (transport) {rs:.3f}s = {n/rs:,.0f} lines/s | "
      f"redlog INGEST {ls:.3f}s = {n/ls:,.0f} lines/s (parsed {parsed}) | "
      f"target 300k: {n/ls/300000:.2f}x | redlog/redis-transport {rs/ls:.2f}")
EOF
    redis-cli -p "$RPORT" del "in:$r" >/dev/null
done
