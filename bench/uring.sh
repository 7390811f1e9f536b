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
. "$ROOT/bench/lib.sh"
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
nginx_backend 19050 $W/backend.pid > $W/backend.conf
nginx_proxy 19051 19050 $W/np.pid > $W/nginx.conf
nginx -c $W/backend.conf & PIDS+=($!)
nginx -c $W/nginx.conf & NGINX=$!; PIDS+=($NGINX)
"$BIN" 127.0.0.1:19052 127.0.0.1:19050 2>/dev/null & SLIPWAY=$!; PIDS+=($SLIPWAY)
"$RELAY" epoll 127.0.0.1:19053 127.0.0.1:19050 & EPOLL=$!; PIDS+=($EPOLL)
"$RELAY" uring 127.0.0.1:19054 127.0.0.1:19050 & URING=$!; PIDS+=($URING)
"$RELAY" uring-tuned 127.0.0.1:19055 127.0.0.1:19050 & TUNED=$!; PIDS+=($TUNED)
for port in 19051 19052 19053 19054 19055; do
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$port/ && break; sleep 0.05; done
done
for round in $(seq $ROUNDS); do
  echo "round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  cpu_per_request nginx $NGINX 19051 $W/results
  cpu_per_request slipway $SLIPWAY 19052 $W/results
  cpu_per_request epoll $EPOLL 19053 $W/results
  cpu_per_request uring $URING 19054 $W/results
  cpu_per_request tuned $TUNED 19055 $W/results
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
