#!/usr/bin/env bash
# User-space instructions per keep-alive request, counted by callgrind:
# repeatable whatever else the machine is doing, so it is the figure to
# compare two builds by. ekilibri (profiling build) runs under valgrind in
# front of three nginx backends; wrk -t1 -cCONNS drives it for SECONDS.
# Usage: bench/instructions.sh [SECONDS] [CONNS]    (default 8, 50)
# Needs: valgrind, nginx, wrk. Prints the total, the request count, their
# ratio, and the functions with the most instructions. CALLGRIND_OUT=FILE
# keeps the raw profile (for callgrind_annotate --inclusive=yes / --auto=yes).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SECS=${1:-8}
CONNS=${2:-50}
(cd "$ROOT" && cargo build --profile profiling --bin ekilibri >/dev/null)
start_backends
start_ekilibri "$ROOT/target/profiling/ekilibri" \
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out"
requests=$(wrk -t1 -c"$CONNS" -d"${SECS}s" "http://$ADDR/" | awk '/requests in/ {print $1}')
stop_ekilibri
total=$(callgrind_annotate "$WORK/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "requests: $requests  instructions: $total  per request: $((total / requests))"
cp "$WORK/callgrind.out" "${CALLGRIND_OUT:-/dev/null}" 2>/dev/null || true
callgrind_annotate "$WORK/callgrind.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n '2,16p' | cut -c1-150
