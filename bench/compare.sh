#!/usr/bin/env bash
# Side-by-side benchmark: ekilibri vs nginx vs HAProxy (one worker each,
# round robin over three nginx backends, wrk -t1), using the harness in
# bench/proxy/ (see bench/proxy/README.md for what it measures and how).
#
# Installs what it needs (Debian: wrk nginx-light haproxy linux-perf) when
# run as root, builds ekilibri in release mode, then runs
#   bench/proxy/proxy_bench.sh none floor nginx haproxy ekilibri
# Every knob of the harness passes through (ROUNDS, DURATION, PROFILES,
# IDLE_CONNS, SYSCALLS, ...). Defaults here: ROUNDS=3 DURATION=10
# PROFILES="ka50 ka400 close50".
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

need=()
for t in wrk nginx haproxy curl python3; do command -v "$t" >/dev/null || need+=("$t"); done
if ! command -v perf >/dev/null; then need+=(perf); fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    pkgs=()
    for t in "${need[@]}"; do
      case $t in nginx) pkgs+=(nginx-light) ;; perf) pkgs+=(linux-perf) ;; *) pkgs+=("$t") ;; esac
    done
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null || true
  else
    echo "missing: ${need[*]} (install them, or run as root to have them installed)" >&2
  fi
fi
# nginx-light's package starts a default server on port 80; the harness
# uses its own configs and ports only.

(cd "$ROOT" && cargo build --release --bin ekilibri --example tcp_floor >/dev/null)
export EKILIBRI_BIN=$ROOT/target/release/ekilibri
export FLOOR_BIN=$ROOT/target/release/examples/tcp_floor
export ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} PROFILES=${PROFILES:-"ka50 ka400 close50"}
[ $# -eq 0 ] && set -- none floor nginx haproxy ekilibri
exec bash "$ROOT/bench/proxy/proxy_bench.sh" "$@"
