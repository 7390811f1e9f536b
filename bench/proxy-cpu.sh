#!/usr/bin/env bash
# CPU time per request of the proxy alone (slipway-proxy-bench, current-thread runtime) and of nginx as a
# proxy (one worker, no master), in front of the same tiny nginx backend: user and kernel µs per request,
# from the proxy process's utime/stime (/proc/PID/stat) around a wrk run. Less noisy than requests/s on a
# loaded machine (it measures the work, not the share of the cores the proxy got), and it alternates the
# two proxies so load changes hit both.
# Usage: bench/proxy-cpu.sh [seconds] [connections] [rounds]      (defaults 8 32 3)
# Env PROXY_BIN: the bench binary (default target/release/slipway-proxy-bench).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${1:-8} C=${2:-32} ROUNDS=${3:-3}
BIN=${PROXY_BIN:-$ROOT/target/release/slipway-proxy-bench}
for tool in wrk nginx curl; do command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 1; }; done
[ -x "$BIN" ] || { echo "no $BIN: build it first" >&2; exit 1; }
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
cat > $W/backend.conf <<B
worker_processes 1; daemon off; pid $W/backend.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:19040; keepalive_requests 1000000; location / { return 200 "ok\n"; } } }
B
cat > $W/nginx.conf <<B
worker_processes 1; daemon off; master_process off; pid $W/np.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; upstream b { server 127.0.0.1:19040; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:19041; keepalive_requests 1000000; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
B
nginx -c $W/backend.conf & PIDS+=($!)
nginx -c $W/nginx.conf & NGINX=$!; PIDS+=($NGINX)
"$BIN" 127.0.0.1:19042 127.0.0.1:19040 2>/dev/null & SLIPWAY=$!; PIDS+=($SLIPWAY)
for port in 19041 19042; do
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$port/ && break; sleep 0.05; done
done
ticks() { awk '{print $14, $15}' /proc/$1/stat; }
TCK=$(getconf CLK_TCK)
measure() { # name pid port
  local before after out
  before=$(ticks $2)
  out=$(wrk -t1 -c$C -d${D}s --latency http://127.0.0.1:$3/)
  after=$(ticks $2)
  local reqs rps p99
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$before $after" | awk -v n=$1 -v r=$reqs -v rps=$rps -v p99=$p99 -v t=$TCK '{
    u=($3-$1)/t*1e6/r; s=($4-$2)/t*1e6/r;
    printf "%-8s rps=%-10s p99=%-8s user=%5.2f µs/req  kernel=%5.2f µs/req\n", n, rps, p99, u, s }'
}
for round in $(seq $ROUNDS); do
  echo "round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  measure nginx $NGINX 19041
  measure slipway $SLIPWAY 19042
done
