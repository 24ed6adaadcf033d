#!/usr/bin/env bash
# Reference write rates of dd on the disk used by `cargo bench --bench storage`
# (REDLOG_BENCH_DIR, default target/bench-data), with the same write sizes as
# the append benchmarks:
#   124 B   = one framed 100 B record (8 B frame + 16 B key + value) per write
#   1048 B  = one framed 1 KiB record per write
#   65536 B = one 64 KiB batch per write
# and, for the Always bench, one fdatasync'd 124 B write at a time (oflag=dsync).
# Usage: benches/dd_compare.sh [MiB per run, default 2048: about what one
# criterion case writes, so both run past the kernel dirty-page limit]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${REDLOG_BENCH_DIR:-target/bench-data}/dd"
mib="${1:-2048}"
mkdir -p "$dir"
run() { # label, dd args...
    local label="$1"; shift
    rm -f "$dir/out"
    local line
    line=$(LC_ALL=C dd if=/dev/zero of="$dir/out" "$@" 2>&1 | tail -1)
    printf '%-28s %s\n' "$label" "$line"
}
for bs in 124 1048 65536; do
    count=$(( mib * 1024 * 1024 / bs ))
    run "dd bs=$bs (no sync)" bs="$bs" count="$count"
done
run "dd bs=124 oflag=dsync" bs=124 count=2000 oflag=dsync
rm -rf "$dir"
