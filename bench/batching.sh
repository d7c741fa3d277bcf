#!/usr/bin/env bash
# Why syscalls per keep-alive request fall as a proxy gets slower.
#
# Every proxy here makes exactly one read and one write on each side per
# keep-alive request; what differs is how many `epoll_wait` calls they
# share. A proxy that finishes its work before the next event arrives goes
# back to wait with few events ready, so it waits more often per request.
# This script shows it on the floor forwarder (bench/floor.rs), whose only
# change between runs is FLOOR_SPIN_NS: CPU burnt per event, without a
# syscall. ekilibri and HAProxy run once beside it for reference.
#
# Usage: bench/batching.sh [SPIN_NS ...]    (default: 0 500 1000 2500)
# Knobs of bench/compare.sh pass through (DURATION, DURATION_SC, ...); it
# runs the ka50 profile, one round each, with syscall counting.
# Prints one table: CPU µs per request, syscalls per request, and the
# epoll_wait share (syscalls - 4) for each proxy and spin.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -eq 0 ] && set -- 0 500 1000 2500
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/batching.XXXXXX")
export PROFILES=ka50 ROUNDS=1 IDLE_CONNS=0 SYSCALLS=1 DURATION=${DURATION:-5}
first=1
for spin in "$@"; do
  proxies=(floor)
  [ "$first" = 1 ] && proxies=(floor haproxy ekilibri)
  first=0
  FLOOR_SPIN_NS=$spin BENCH_WORK=$WORKDIR/spin$spin \
    bash "$ROOT/bench/compare.sh" "${proxies[@]}" > "$WORKDIR/spin$spin.out" 2>&1 ||
    { echo "run with FLOOR_SPIN_NS=$spin failed, see $WORKDIR/spin$spin.out" >&2; exit 1; }
done
printf '%-9s %8s %7s %8s %8s %12s %10s\n' proxy spin_ns req/s p99_us cpu_us sys/req epoll/req
for spin in "$@"; do
  awk -F'\t' -v spin="$spin" '
    FNR == 1 { next }
    FILENAME ~ /load.tsv$/ { rps[$3] = $4; p99[$3] = $6; cpu[$3] = $8; next }
    { sc[$2] = $4; order[++n] = $2 }
    END { for (i = 1; i <= n; i++) { p = order[i]
            printf "%-9s %8s %7.1fk %8s %8.2f %12.2f %10.2f\n", p, (p == "floor") ? spin : "-",
              rps[p] / 1000, p99[p], cpu[p], sc[p], sc[p] - 4 } }' \
    "$WORKDIR/spin$spin/load.tsv" "$WORKDIR/spin$spin/syscalls.tsv"
done
echo "raw results: $WORKDIR"
