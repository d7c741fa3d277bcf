#!/usr/bin/env bash
# Requests/s and latency percentiles with wrk (keep-alive), straight to one
# backend and through ekilibri (one backend, so the proxy is the only
# difference). Usage: bench/wrk_direct_vs_proxy.sh [CONNS] [SECONDS]
# Needs wrk (apt-get install -y wrk) and a release build (cargo build --release).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONNS=${1:-50}
SECS=${2:-10}
BIN=$ROOT/target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ekilibri-wrk.XXXXXX")
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_addr() { # log file -> bound address
  for _ in $(seq 200); do
    a=$(grep -o 'listening on [0-9.]*:[0-9]*' "$1" | head -1 | cut -d' ' -f3 || true)
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.05
  done
  echo "no listening line in $1" >&2; exit 1
}

"$BIN/command" --listen 127.0.0.1:0 --name b1 >"$WORK/backend.log" 2>&1 & PIDS+=($!)
B=$(wait_addr "$WORK/backend.log")
printf 'servers = ["%s"]\nlisten = "127.0.0.1:0"\npool_size = %s\n' "$B" "${POOL_SIZE:-10}" >"$WORK/ekilibri.toml"
RUST_LOG=warn "$BIN/ekilibri" -f "$WORK/ekilibri.toml" >"$WORK/ekilibri.log" 2>&1 & PIDS+=($!)
EK_PID=$!
RUST_LOG=info "$BIN/ekilibri" --check -f "$WORK/ekilibri.toml" >/dev/null
sleep 0.2
E=$(grep -o '127.0.0.1:[0-9]*' <(sed -n '1,5p' "$WORK/ekilibri.log") | head -1 || true)
[ -n "$E" ] || { E=$(ss -ltnp 2>/dev/null | grep "pid=$EK_PID," | grep -o '127.0.0.1:[0-9]*' | head -1); }

run() { # name url
  wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$2" >"$WORK/$1.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$1.txt")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$1.txt")
  errs=$(grep -E 'Socket errors|Non-2xx' "$WORK/$1.txt" | tr '\n' ' ' || true)
  printf '%-10s %12s %10s %10s  %s\n' "$1" "$rps" "$p50" "$p99" "$errs"
}
printf 'wrk -t1 -c%s -d%ss, keep-alive, GET /health\n' "$CONNS" "$SECS"
printf '%-10s %12s %10s %10s\n' target 'req/s' p50 p99
run direct "http://$B/health"
run ekilibri "http://$E/health"
echo "ekilibri peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$EK_PID/status)"
