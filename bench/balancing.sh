#!/usr/bin/env bash
# Balancing strategies against one degraded backend (see docs/balancing.md).
#
# Starts three `command` backends (b1, b2, b3) on ephemeral loopback ports,
# one of them degraded, and for each strategy runs ekilibri in front of them
# and drives it with wrk (closed loop: CONNS connections, each sending the
# next GET / as soon as the previous answer arrives). Prints one markdown
# table: requests/s, p50/p99/p99.9 latency, error rate and the share of
# requests each backend answered (the degraded one is marked with *).
#
# usage: bench/balancing.sh
# environment (defaults in brackets):
#   SCENARIO    latency: the degraded backend sleeps DELAY_MS per request;
#               errors: it answers ERROR_RATE of the requests with 503  [latency]
#   DELAY_MS    extra latency of the degraded backend, ms                 [20]
#   ERROR_RATE  fraction of 503s of the degraded backend                  [0.05]
#   DEGRADED    which backend is degraded: 1, 2 or 3                      [3]
#   DURATION    measured seconds per strategy                             [10]
#   WARMUP      unmeasured seconds before each measurement                [2]
#   CONNS       wrk connections                                           [32]
#   PACE_MS     ms each connection waits between requests (0 = closed loop
#               at full speed; e.g. 2 keeps the machine below saturation) [0]
#   ROUNDS      runs of every strategy; >1 reports per-column medians     [1]
#   STRATEGIES  space-separated list
#               [RoundRobin LeastConnections Random PowerOfTwoChoices LatencyAware]
#   KEEP        1: keep the work directory (configs, logs, wrk output)    [0]
#
# Needs wrk (installed with apt-get when missing and running as root) and
# release builds of ekilibri and command (built with `cargo build --release
# --bins` when missing or older than the sources). A strategy whose ekilibri
# does not start (e.g. an unknown strategy name) is reported as n/a.
# Every process is started on port 0 and killed by PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release
LUA=$ROOT/bench/balancing.lua

SCENARIO=${SCENARIO:-latency}
DELAY_MS=${DELAY_MS:-20}
ERROR_RATE=${ERROR_RATE:-0.05}
DEGRADED=${DEGRADED:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-1}
STRATEGIES=${STRATEGIES:-RoundRobin LeastConnections Random PowerOfTwoChoices LatencyAware}
KEEP=${KEEP:-0}

die() { echo "balancing.sh: $*" >&2; exit 2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

case $SCENARIO in
  latency) is_uint "$DELAY_MS" || die "DELAY_MS must be a whole number of ms, got '$DELAY_MS'" ;;
  errors) [[ $ERROR_RATE =~ ^(0(\.[0-9]+)?|1(\.0*)?)$ ]] || die "ERROR_RATE must be within 0..1, got '$ERROR_RATE'" ;;
  *) die "SCENARIO must be 'latency' or 'errors', got '$SCENARIO'" ;;
esac
[[ $DEGRADED =~ ^[123]$ ]] || die "DEGRADED must be 1, 2 or 3, got '$DEGRADED'"
for v in DURATION WARMUP CONNS ROUNDS; do
  is_uint "${!v}" && [ "${!v}" -ge 1 ] || die "$v must be a positive integer, got '${!v}'"
done

# --- tools ----------------------------------------------------------------

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk with apt-get ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q wrk >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; } \
      || die "cannot install wrk"
  else
    die "wrk is missing: apt-get install -y wrk (as root)"
  fi
fi

stale() { # binary -> true if missing or older than a source file
  [ -x "$1" ] || return 0
  [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$1" -print -quit 2>/dev/null)" ]
}
if stale "$BIN/ekilibri" || stale "$BIN/command"; then
  echo "building release binaries (cargo build --release --bins) ..." >&2
  (cd "$ROOT" && cargo build --release --bins -q) || die "build failed"
fi

# --- processes --------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ekilibri-balancing.XXXXXX")
PIDS=()
OK=0
cleanup() {
  local p
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    kill "$p" 2>/dev/null || true
  done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    wait "$p" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ] || [ "$OK" != 1 ]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() { # pid: drop from PIDS
  local p keep=()
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    [ "$p" = "$1" ] || keep+=("$p")
  done
  PIDS=(${keep[@]+"${keep[@]}"})
}

stop() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}

wait_addr() { # log pid -> prints the address of the first "listening on ADDR" line
  local a
  for _ in $(seq 200); do
    a=$(grep -o 'listening on [0-9.]*:[0-9]*' "$1" 2>/dev/null | head -1 | cut -d' ' -f3 || true)
    if [ -n "$a" ]; then echo "$a"; return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# --- backends ---------------------------------------------------------------

case $SCENARIO in
  latency) DEGRADE=(--delay-ms "$DELAY_MS"); WHAT="+$DELAY_MS ms per request" ;;
  errors) DEGRADE=(--error-rate "$ERROR_RATE"); WHAT="$ERROR_RATE of its requests answered 503" ;;
esac

BACKENDS=()
for i in 1 2 3; do
  extra=()
  [ "$i" = "$DEGRADED" ] && extra=("${DEGRADE[@]}")
  "$BIN/command" --listen 127.0.0.1:0 --name "b$i" ${extra[@]+"${extra[@]}"} \
    >"$WORK/b$i.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  addr=$(wait_addr "$WORK/b$i.log" "$pid") || die "backend b$i did not start: $(cat "$WORK/b$i.log")"
  BACKENDS+=("$addr")
done

# --- one measurement ------------------------------------------------------

# run STRATEGY ROUND: writes $WORK/res.STRATEGY.ROUND, either
#   "ok RAN_AS RPS P50 P99 P999 ERR% S1 S2 S3" or "na REASON"
run() {
  local s=$1 r=$2 cfg=$WORK/$1.toml log=$WORK/$1.$2.ekilibri.log out=$WORK/$1.$2.wrk
  local res=$WORK/res.$1.$2
  printf 'servers = ["%s", "%s", "%s"]\nlisten = "127.0.0.1:0"\nstrategy = "%s"\nread_timeout = 5000\npool_size = %s\n' \
    "${BACKENDS[0]}" "${BACKENDS[1]}" "${BACKENDS[2]}" "$s" "$CONNS" >"$cfg"

  RUST_LOG=info "$BIN/ekilibri" -f "$cfg" >"$WORK/$1.$2.ekilibri.out" 2>"$log" &
  local ek=$!
  PIDS+=("$ek")
  local addr
  if ! addr=$(wait_addr "$log" "$ek"); then
    stop "$ek"
    echo "na $(head -1 "$log" | sed "s|$WORK/||g" | tr -s ' \t' ' ')" >"$res"
    return
  fi
  local ran_as
  ran_as=$(grep -o 'strategy [A-Za-z]*' "$log" | head -1 | cut -d' ' -f2 || true)

  wrk -t1 -c"$CONNS" -d"${WARMUP}s" --timeout 10s "http://$addr/" >"$out.warmup" 2>&1 || true
  if ! PACE_MS=${PACE_MS:-0} wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$LUA" "http://$addr/" >"$out" 2>&1; then
    stop "$ek"
    echo "na wrk failed: $(tail -1 "$out")" >"$res"
    return
  fi
  stop "$ek"

  awk -v ran="${ran_as:-?}" '
    $1 == "BENCH" && $2 == "backend" { n[$3] = $4; next }
    $1 == "BENCH" { v[$2] = $3 }
    END {
      if (!("requests" in v) || v["requests"] == 0) { print "na no responses"; exit }
      err = 100 * (v["non2xx"] + v["sockerr"]) / (v["requests"] + v["sockerr"])
      printf "ok %s %.1f %.2f %.2f %.2f %.2f %.1f %.1f %.1f\n", ran, v["rps"],
        v["p50_us"] / 1000, v["p99_us"] / 1000, v["p999_us"] / 1000, err,
        100 * n["b1"] / v["requests"], 100 * n["b2"] / v["requests"], 100 * n["b3"] / v["requests"]
    }' "$out" >"$res"
}

median() { # numbers on stdin -> median
  sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

read -r -a STRATS <<<"$STRATEGIES"
for ((round = 1; round <= ROUNDS; round++)); do
  for s in "${STRATS[@]}"; do
    echo "round $round/$ROUNDS: $s ..." >&2
    run "$s" "$round"
    sleep 0.5 # let the backends finish requests still sleeping
  done
done

# --- report -------------------------------------------------------------------

col() { [ "$1" = "$DEGRADED" ] && echo "b$1* %" || echo "b$1 %"; }
echo
echo "Scenario \`$SCENARIO\`: b$DEGRADED* degraded ($WHAT); wrk -t1 -c$CONNS -d${DURATION}s ($([ "${PACE_MS:-0}" != 0 ] && echo "paced: ${PACE_MS} ms between requests per connection" || echo "closed loop"), GET /) after ${WARMUP}s warm-up; $ROUNDS round(s)$([ "$ROUNDS" -gt 1 ] && echo ', medians per column')."
echo "$(nproc) CPU(s): $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown); commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ' (modified)')"
echo
printf '| %-18s | %9s | %7s | %7s | %7s | %7s | %6s | %6s | %6s |\n' strategy 'req/s' 'p50 ms' 'p99 ms' 'p999 ms' 'error %' "$(col 1)" "$(col 2)" "$(col 3)"
printf '|%s|%s:|%s:|%s:|%s:|%s:|%s:|%s:|%s:|\n' -------------------- ---------- -------- -------- -------- -------- ------- ------- -------
for s in "${STRATS[@]}"; do
  na=""
  ran=""
  for ((round = 1; round <= ROUNDS; round++)); do
    read -r status rest <"$WORK/res.$s.$round"
    if [ "$status" != ok ]; then na=$rest; break; fi
    ran=${rest%% *}
  done
  if [ -n "$na" ]; then
    printf '| %-18s | %9s | %7s | %7s | %7s | %7s | %6s | %6s | %6s |\n' "$s" n/a n/a n/a n/a n/a n/a n/a n/a
    echo "  $s: $na" >>"$WORK/notes"
    continue
  fi
  vals=()
  for field in 3 4 5 6 7 8 9 10; do
    vals+=("$(for ((round = 1; round <= ROUNDS; round++)); do cut -d' ' -f"$field" "$WORK/res.$s.$round"; done | median)")
  done
  name=$s
  if [ "$ran" != "$s" ] && [ "$ran" != "?" ]; then
    name="$s (as $ran)"
    echo "  $s: ekilibri ran it as $ran" >>"$WORK/notes"
  fi
  printf '| %-18s | %9.0f | %7.2f | %7.2f | %7.2f | %7.2f | %6.1f | %6.1f | %6.1f |\n' "$name" "${vals[@]}"
done
if [ -s "$WORK/notes" ]; then
  echo
  echo "notes:"
  cat "$WORK/notes"
fi
OK=1
