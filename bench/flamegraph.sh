#!/usr/bin/env bash
# Flamegraph of ekilibri under the keep-alive profile (wrk -t1 -c50, round
# robin over three nginx backends), with perf record -g and inferno.
# Usage: bench/flamegraph.sh [OUT.svg] [SECONDS]   (default docs/flamegraph-ka50.svg, 10)
# Needs: perf (linux-perf), nginx, wrk, inferno (cargo install inferno).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/docs/flamegraph-ka50.svg}
SECS=${2:-10}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ekilibri-flame.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$WORK/backend.pid" ] && kill "$(cat "$WORK/backend.pid")" 2>/dev/null || true; }
trap cleanup EXIT
command -v inferno-flamegraph >/dev/null || cargo install inferno >/dev/null
(cd "$ROOT" && cargo build --profile profiling --bin ekilibri >/dev/null)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
B1=$(free_port) B2=$(free_port) B3=$(free_port)
sed -e "s|@WORK@|$WORK|g" -e "s|@B1@|$B1|g" -e "s|@B2@|$B2|g" -e "s|@B3@|$B3|g" \
    -e "s|@NOFILE@|4096|g" -e "s|@WORKER_CONNS@|4000|g" -e "s|@BACKEND_WORKERS@|1|g" \
    "$ROOT/bench/proxy/backend.nginx.conf.tmpl" > "$WORK/backend.conf"
mkdir -p "$WORK/backend_tmp"
nginx -c "$WORK/backend.conf" -g 'daemon on;' -e "$WORK/backend.error.log"
printf 'servers = ["127.0.0.1:%s","127.0.0.1:%s","127.0.0.1:%s"]\nlisten = "127.0.0.1:0"\npool_size = 10\n' \
  "$B1" "$B2" "$B3" > "$WORK/ekilibri.toml"
RUST_LOG=warn "$ROOT/target/profiling/ekilibri" -f "$WORK/ekilibri.toml" 2>"$WORK/ekilibri.log" & PIDS+=($!)
EK=$!
for _ in $(seq 100); do
  ADDR=$(ss -ltnpH 2>/dev/null | grep "pid=$EK," | awk '{print $4}' | head -1)
  [ -n "$ADDR" ] && break; sleep 0.05
done
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
