# Shared by bench/flamegraph.sh and bench/instructions.sh: three nginx
# backends (one worker, `200 ok`) and one ekilibri in front of them, all on
# free loopback ports, stopped on exit. Source it, then call:
#   start_backends                  -> B1 B2 B3, WORK
#   start_ekilibri BIN [WRAPPER...] -> EK (pid), ADDR (host:port)
#   stop_ekilibri
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ekilibri-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  [ -f "$WORK/backend.pid" ] && kill "$(cat "$WORK/backend.pid")" 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_backends() {
  B1=$(free_port) B2=$(free_port) B3=$(free_port)
  sed -e "s|@WORK@|$WORK|g" -e "s|@B1@|$B1|g" -e "s|@B2@|$B2|g" -e "s|@B3@|$B3|g" \
      -e "s|@NOFILE@|4096|g" -e "s|@WORKER_CONNS@|4000|g" -e "s|@BACKEND_WORKERS@|1|g" \
      "$ROOT/bench/proxy/backend.nginx.conf.tmpl" > "$WORK/backend.conf"
  mkdir -p "$WORK/backend_tmp"
  nginx -c "$WORK/backend.conf" -g 'daemon on;' -e "$WORK/backend.error.log"
}

start_ekilibri() { # BIN [WRAPPER...]: the wrapper (e.g. valgrind) runs BIN
  local bin=$1; shift
  local port; port=$(free_port)
  printf 'servers = ["127.0.0.1:%s","127.0.0.1:%s","127.0.0.1:%s"]\nlisten = "127.0.0.1:%s"\npool_size = 10\n' \
    "$B1" "$B2" "$B3" "$port" > "$WORK/ekilibri.toml"
  RUST_LOG=warn "$@" "$bin" -f "$WORK/ekilibri.toml" >/dev/null 2>"$WORK/ekilibri.log" &
  EK=$!
  PIDS+=("$EK")
  ADDR=127.0.0.1:$port
  for _ in $(seq 600); do
    curl -s -m 1 -o /dev/null "http://$ADDR/" && return 0
    sleep 0.05
  done
  echo "ekilibri did not start (see $WORK/ekilibri.log)" >&2; exit 1
}

stop_ekilibri() { # graceful stop; a wrapper's child (valgrind) gets the signal too
  pkill -TERM -P "$EK" 2>/dev/null || true
  kill -TERM "$EK" 2>/dev/null || true
  wait "$EK" 2>/dev/null || true
}
