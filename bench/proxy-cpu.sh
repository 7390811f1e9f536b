#!/usr/bin/env bash
# CPU time per request of the proxy alone (slipway-proxy-bench, current-thread runtime) and of nginx as a
# proxy (one worker, no master), in front of the same tiny nginx backend: user and kernel µs per request,
# from the proxy process's utime/stime (/proc/PID/stat) around a wrk run. Less noisy than requests/s on a
# loaded machine (it measures the work, not the share of the cores the proxy got), and it alternates the
# two proxies round by round so load changes hit both; the last lines are the medians over the rounds.
# Usage: bench/proxy-cpu.sh [seconds] [connections] [rounds]      (defaults 8 32 3)
# Env PROXY_BIN: the bench binary (default target/release/slipway-proxy-bench).
# Env SLIPWAY_SERVE: measure the whole product instead: this `slipway` binary's `serve --threads 1`, with
#   an app deployed whose one instance is the same backend (its own nginx on another port).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${1:-8} C=${2:-32} ROUNDS=${3:-3}
BIN=${PROXY_BIN:-$ROOT/target/release/slipway-proxy-bench}
for tool in wrk nginx curl; do command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 1; }; done
[ -n "${SLIPWAY_SERVE:-}" ] || [ -x "$BIN" ] || { echo "no $BIN: build it first" >&2; exit 1; }
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
if [ -n "${SLIPWAY_SERVE:-}" ]; then
  sed 's/19040/__PORT__/; s|backend.pid|b-__PORT__.pid|' $W/backend.conf > $W/instance.tpl
  mkdir -p $W/app
  cat > $W/app/slipway.toml <<T
app = "bench"
[processes.web]
cmd = "sed s/__PORT__/\$PORT/g $W/instance.tpl > $W/i-\$PORT.conf && exec nginx -c $W/i-\$PORT.conf"
replicas = 1
readiness = { tcp = true, period = "100ms" }
T
  "$SLIPWAY_SERVE" serve --threads 1 --state-dir $W/state --listen 127.0.0.1:19042 >$W/daemon.log 2>&1 & SLIPWAY=$!
  for _ in $(seq 200); do [ -S $W/state/slipway.sock ] && break; sleep 0.05; done
  "$SLIPWAY_SERVE" --state-dir $W/state --config $W/app/slipway.toml deploy >$W/deploy.log 2>&1 \
    || { cat $W/deploy.log >&2; kill $SLIPWAY; exit 1; }
  # Stopped last, by SIGTERM, so it stops its instance too.
  trap 'kill $SLIPWAY 2>/dev/null; sleep 1; cleanup' EXIT
else
  "$BIN" 127.0.0.1:19042 127.0.0.1:19040 2>/dev/null & SLIPWAY=$!; PIDS+=($SLIPWAY)
fi
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
    printf "%-8s rps=%-10s p99=%-8s user=%5.2f µs/req  kernel=%5.2f µs/req\n", n, rps, p99, u, s }' | tee -a $W/results
}
for round in $(seq $ROUNDS); do
  echo "round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  measure nginx $NGINX 19041
  measure slipway $SLIPWAY 19042
done
# Medians per proxy; the rps ratio is the median of the per-round ratios.
python3 - $W/results <<'PY'
import re, statistics, sys
def field(line, key):
    value = re.search(key + r'=\s*(\S+)', line).group(1)
    if value.endswith('ms'):
        return float(value[:-2]) * 1000
    if value.endswith('us'):
        return float(value[:-2])
    return float(value)
lines = open(sys.argv[1]).read().splitlines()
rows = {n: [l for l in lines if l.startswith(n)] for n in ('nginx', 'slipway')}
for n, rs in rows.items():
    m = {k: statistics.median(field(l, k) for l in rs) for k in ('rps', 'p99', 'user', 'kernel')}
    print(f"median {n:8} rps={m['rps']:.0f} p99={m['p99']:.0f}us user={m['user']:.2f} kernel={m['kernel']:.2f} µs/req")
ratios = [field(s, 'rps') / field(g, 'rps') for s, g in zip(rows['slipway'], rows['nginx'])]
print(f"slipway/nginx rps per round: {' '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
PY
