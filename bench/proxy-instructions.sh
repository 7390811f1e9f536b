#!/usr/bin/env bash
# Instructions per request of the proxy alone (slipway-proxy-bench) and of nginx as a proxy (one worker),
# under callgrind: repeatable on a loaded machine, unlike requests/s. Both proxies sit in front of the same
# tiny nginx backend; wrk drives each for a few seconds (valgrind slows the proxy ~50x, so a few thousand
# requests), and instructions/request = the proxy's total instructions / requests wrk completed (start-up
# is a few million instructions, under 1 % of the total).
# Usage: bench/proxy-instructions.sh [seconds] [connections]      (defaults 10 32)
# Env PROXY_BIN: the bench binary (default target/release/slipway-proxy-bench; build it with
#   `cargo build --release -p slipway-proxy --bin slipway-proxy-bench --features mimalloc`);
#   CALLGRIND_OUT: keep slipway's callgrind profile there (for callgrind_annotate).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${1:-10} C=${2:-32}
BIN=${PROXY_BIN:-$ROOT/target/release/slipway-proxy-bench}
for tool in wrk nginx valgrind curl; do command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 1; }; done
[ -x "$BIN" ] || { echo "no $BIN: build it first" >&2; exit 1; }
. "$ROOT/bench/lib.sh"
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
nginx_backend 19020 $W/backend.pid > $W/backend.conf
nginx_proxy 19021 19020 $W/np.pid > $W/nginx.conf
nginx -c $W/backend.conf & PIDS+=($!)

wait_for() { for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }

# measure NAME PORT OUTFILE CMD...: runs CMD under callgrind, loads it, prints instructions/request.
measure() {
  local name=$1 port=$2 out=$3; shift 3
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >$W/$name.log 2>&1 & local pid=$!
  PIDS+=($pid)
  wait_for $port
  local reqs
  reqs=$(wrk -t1 -c$C -d${D}s http://127.0.0.1:$port/ | awk '/requests in/ {print $1}')
  kill -INT $pid; wait $pid 2>/dev/null || true
  local ir
  ir=$(awk '/^summary:/ {print $2}' "$out")
  awk -v n="$name" -v ir="$ir" -v r="$reqs" 'BEGIN { printf "%-8s requests=%-7d instructions=%-12d per request=%d\n", n, r, ir, ir / r }'
}
measure slipway 19022 "${CALLGRIND_OUT:-$W/slipway.out}" "$BIN" 127.0.0.1:19022 127.0.0.1:19020
measure nginx 19021 $W/nginx.out nginx -c $W/nginx.conf
