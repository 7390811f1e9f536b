#!/usr/bin/env bash
# Issue 19's io_uring experiment: what io_uring saves per proxied request, everything else equal. The same
# minimal HTTP/1.1 relay (bench/uring: one keep-alive backend connection per client, no header rewriting)
# over epoll (tokio, current thread) and over io_uring (one ring, one thread; `tuned`: single issuer,
# deferred task work), in front of the same tiny
# nginx backend as bench/proxy-cpu.sh, with nginx as a proxy (one worker) and slipway's proxy measured in
# the same rounds, alternating, so load changes hit all. Per contestant: requests/s, p99, and user and kernel
# µs per request from its /proc/PID/stat; the last lines are medians and per-round ratios.
# Usage: bench/uring.sh [seconds] [connections] [rounds]      (defaults 5 32 5)
# Env PROXY_BIN: slipway's bench binary (default target/release/slipway-proxy-bench).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${1:-5} C=${2:-32} ROUNDS=${3:-5}
BIN=${PROXY_BIN:-$ROOT/target/release/slipway-proxy-bench}
RELAY_TARGET=${RELAY_TARGET:-$ROOT/target/uring}
for tool in wrk nginx curl; do command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 1; }; done
[ -x "$BIN" ] || { echo "no $BIN: build it first (cargo build --release -p slipway-proxy --bin slipway-proxy-bench)" >&2; exit 1; }
(cd "$ROOT/bench/uring" && CARGO_TARGET_DIR=$RELAY_TARGET cargo build --release --locked -q)
RELAY=$RELAY_TARGET/release/uring-relay
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
cat > $W/backend.conf <<B
worker_processes 1; daemon off; pid $W/backend.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:19050; keepalive_requests 1000000; location / { return 200 "ok\n"; } } }
B
cat > $W/nginx.conf <<B
worker_processes 1; daemon off; master_process off; pid $W/np.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; upstream b { server 127.0.0.1:19050; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:19051; keepalive_requests 1000000; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
B
nginx -c $W/backend.conf & PIDS+=($!)
nginx -c $W/nginx.conf & NGINX=$!; PIDS+=($NGINX)
"$BIN" 127.0.0.1:19052 127.0.0.1:19050 2>/dev/null & SLIPWAY=$!; PIDS+=($SLIPWAY)
"$RELAY" epoll 127.0.0.1:19053 127.0.0.1:19050 & EPOLL=$!; PIDS+=($EPOLL)
"$RELAY" uring 127.0.0.1:19054 127.0.0.1:19050 & URING=$!; PIDS+=($URING)
"$RELAY" uring-tuned 127.0.0.1:19055 127.0.0.1:19050 & TUNED=$!; PIDS+=($TUNED)
for port in 19051 19052 19053 19054 19055; do
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$port/ && break; sleep 0.05; done
done
ticks() { awk '{print $14, $15}' /proc/$1/stat; }
TCK=$(getconf CLK_TCK)
measure() { # name pid port
  local before after out reqs rps p99
  before=$(ticks $2)
  out=$(wrk -t1 -c$C -d${D}s --latency http://127.0.0.1:$3/)
  after=$(ticks $2)
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$before $after" | awk -v n=$1 -v r=$reqs -v rps=$rps -v p99=$p99 -v t=$TCK '{
    u=($3-$1)/t*1e6/r; s=($4-$2)/t*1e6/r;
    printf "%-8s rps=%-10s p99=%-8s user=%5.2f µs/req  kernel=%5.2f µs/req\n", n, rps, p99, u, s }' | tee -a $W/results
}
for round in $(seq $ROUNDS); do
  echo "round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  measure nginx $NGINX 19051
  measure slipway $SLIPWAY 19052
  measure epoll $EPOLL 19053
  measure uring $URING 19054
  measure tuned $TUNED 19055
done
python3 - $W/results <<'PY'
import re, statistics, sys
def field(line, key):
    value = re.search(key + r'=\s*(\S+)', line).group(1)
    for unit, scale in (('ms', 1000), ('us', 1)):
        if value.endswith(unit):
            return float(value[:-2]) * scale
    return float(value)
lines = open(sys.argv[1]).read().splitlines()
names = ('nginx', 'slipway', 'epoll', 'uring', 'tuned')
rows = {n: [l for l in lines if l.startswith(n)] for n in names}
for n in names:
    rs = rows[n]
    m = {k: statistics.median(field(l, k) for l in rs) for k in ('rps', 'p99', 'user', 'kernel')}
    lo, hi = min(field(l, 'rps') for l in rs), max(field(l, 'rps') for l in rs)
    print(f"median {n:8} rps={m['rps']:.0f} ({lo:.0f}-{hi:.0f}) p99={m['p99']:.0f}us user={m['user']:.2f} kernel={m['kernel']:.2f} µs/req")
def ratios(a, b):
    rs = [field(x, 'rps') / field(y, 'rps') for x, y in zip(rows[a], rows[b])]
    print(f"{a}/{b} rps per round: {' '.join(f'{r:.2f}' for r in rs)}; median {statistics.median(rs):.2f}")
ratios('uring', 'epoll'); ratios('tuned', 'epoll'); ratios('uring', 'nginx'); ratios('slipway', 'nginx'); ratios('epoll', 'nginx')
PY
