#!/usr/bin/env bash
# Flamegraph of ekilibri under the keep-alive profile (wrk -t1 -c50, round
# robin over three nginx backends), with perf record -g and inferno.
# Usage: bench/flamegraph.sh [OUT.svg] [SECONDS]   (default docs/flamegraph-ka50.svg, 10)
# Needs: perf (linux-perf), nginx, wrk, inferno (cargo install inferno).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
OUT=${1:-$ROOT/docs/flamegraph-ka50.svg}
SECS=${2:-10}
command -v inferno-flamegraph >/dev/null || cargo install inferno >/dev/null
(cd "$ROOT" && cargo build --profile profiling --bin ekilibri >/dev/null)
start_backends
start_ekilibri "$ROOT/target/profiling/ekilibri"
wrk -t1 -c50 -d2s "http://$ADDR/" >/dev/null
perf record -F 2999 -g -p "$EK" -o "$WORK/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
PERF=$!
wrk -t1 -c50 -d"${SECS}s" "http://$ADDR/" | grep -E 'Requests/sec|Latency'
wait $PERF || true
perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf > "$WORK/folded.txt"
inferno-flamegraph --title "ekilibri, wrk -t1 -c50 keep-alive" < "$WORK/folded.txt" > "$OUT"
echo "flamegraph: $OUT"
echo "top self-time frames:"
awk '{n=$NF; $NF=""; split($0, f, ";"); leaf=f[length(f)]; self[leaf]+=n; total+=n} END {for (k in self) printf "%6.2f%%  %s\n", 100*self[k]/total, k}' "$WORK/folded.txt" | sort -rn | head -25
