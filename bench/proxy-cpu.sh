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
# Env BUSY_POLL (with SLIPWAY_SERVE), e.g. 50us: also a second daemon with `--busy-poll $BUSY_POLL`, as a
#   third contender ("busy") in the same rounds.
# Env BASELINE (with SLIPWAY_SERVE): another build's `slipway` binary, served the same way as a contender
#   ("baseline") in the same rounds: a change measured against the build before it.
# Each line also has `peers=`, the CPU µs per request of the backend worker behind that proxy and of wrk,
# and `all=`, the proxy's and theirs: on 2 cores a proxy's saving can reappear as its peers' cost.
# Env PIN=1: wrk runs on CPU 0 and every backend worker on CPU 1, the proxies wherever the scheduler
#   puts them (all contenders alike). Unpinned, the scheduler tends to give a fast proxy a CPU of its
#   own and wrk and the backend the other, so requests/s measures that shared CPU more than the proxy;
#   pinned, the proxy shares a CPU with one of them, as it shares a host's CPUs with its apps.
# Env RELAY=1: also the floor ("relay"): bench/uring's minimal relay over epoll (tokio, one thread), which
#   makes the same system calls per request as both proxies and no HTTP work beyond framing (no header
#   rewriting, routing or metrics), in front of the same backend: the rate any such proxy can reach here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${1:-8} C=${2:-32} ROUNDS=${3:-3}
BIN=${PROXY_BIN:-$ROOT/target/release/slipway-proxy-bench}
for tool in wrk nginx curl; do command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 1; }; done
[ -n "${SLIPWAY_SERVE:-}" ] || [ -x "$BIN" ] || { echo "no $BIN: build it first" >&2; exit 1; }
. "$ROOT/bench/lib.sh"
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
nginx_backend 19040 $W/backend.pid > $W/backend.conf
nginx_proxy 19041 19040 $W/np.pid > $W/nginx.conf
nginx -c $W/backend.conf & BACKEND=$!; PIDS+=($BACKEND)
nginx -c $W/nginx.conf & NGINX=$!; PIDS+=($NGINX)
# The proxies measured, in the order each round runs them: "NAME PID PORT BEHIND", BEHIND being `shared`
# (the backend on 19040) or `instance` (the one nginx instance that daemon started).
CONTENDERS=("nginx $NGINX 19041 shared")
# serve_app NAME PORT [FLAGS...]: `slipway serve --threads 1 FLAGS` on PORT with the app deployed, as a
# contender; its PID in $W/NAME.pid. Stopped at exit by SIGTERM, so it stops its instance too.
DAEMONS=()
serve_app() {
  local name=$1 port=$2; shift 2
  mkdir -p $W/$name
  cat > $W/$name/slipway.toml <<T
app = "bench"
[processes.web]
cmd = "sed s/__PORT__/\$PORT/g $W/instance.tpl > $W/i-\$PORT.conf && exec nginx -c $W/i-\$PORT.conf"
replicas = 1
readiness = { tcp = true, period = "100ms" }
T
  "$SLIPWAY_SERVE" serve --threads 1 "$@" --state-dir $W/$name/state --listen 127.0.0.1:$port \
    >$W/$name/daemon.log 2>&1 & DAEMONS+=($!)
  echo $! > $W/$name.pid
  for _ in $(seq 200); do [ -S $W/$name/state/slipway.sock ] && break; sleep 0.05; done
  "$SLIPWAY_SERVE" --state-dir $W/$name/state --config $W/$name/slipway.toml deploy >$W/$name/deploy.log 2>&1 \
    || { cat $W/$name/deploy.log >&2; exit 1; }
  CONTENDERS+=("$name $(cat $W/$name.pid) $port instance")
}
if [ -n "${SLIPWAY_SERVE:-}" ]; then
  nginx_backend __PORT__ $W/b-__PORT__.pid > $W/instance.tpl
  trap 'for d in "${DAEMONS[@]}"; do kill $d 2>/dev/null; done; sleep 1; cleanup' EXIT
  serve_app slipway 19042
  [ -z "${BASELINE:-}" ] || SLIPWAY_SERVE=$BASELINE serve_app baseline 19045
  [ -z "${BUSY_POLL:-}" ] || serve_app busy 19043 --busy-poll "$BUSY_POLL"
else
  [ -z "${BUSY_POLL:-}" ] || { echo "BUSY_POLL needs SLIPWAY_SERVE (a flag of slipway serve)" >&2; exit 1; }
  "$BIN" 127.0.0.1:19042 127.0.0.1:19040 2>/dev/null & PIDS+=($!)
  CONTENDERS+=("slipway $! 19042 shared")
fi
if [ -n "${RELAY:-}" ]; then
  (cd "$ROOT/bench/uring" && CARGO_TARGET_DIR=${RELAY_TARGET:-$ROOT/target/uring} cargo build --release --locked -q)
  "${RELAY_TARGET:-$ROOT/target/uring}/release/uring-relay" epoll 127.0.0.1:19044 127.0.0.1:19040 & PIDS+=($!)
  CONTENDERS+=("relay $! 19044 shared")
fi
# Each contender answering, and the backend worker behind it, whose CPU counts in `peers=` with wrk's.
SHARED=$(nginx_worker $BACKEND)
BEHIND=()
for contender in "${CONTENDERS[@]}"; do
  set -- $contender
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$3/ && break; sleep 0.05; done
  if [ "$4" = shared ]; then BEHIND+=("$SHARED"); else BEHIND+=("$(nginx_worker "$(pgrep -P "$2" -x nginx | head -1)")"); fi
done
if [ -n "${PIN:-}" ]; then
  for worker in "${BEHIND[@]}"; do taskset -pc 1 "$worker" >/dev/null; done
  WRK_ON=0
fi
for round in $(seq $ROUNDS); do
  echo "round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  for i in "${!CONTENDERS[@]}"; do
    set -- ${CONTENDERS[$i]}
    cpu_per_request $1 $2 $3 $W/results "${BEHIND[$i]}"
  done
done
if [ -n "${BUSY_POLL:-}" ]; then
  # At rest the busy-polling daemon must not spin: its CPU over 3 s with no traffic.
  sleep 1; before=$(ticks $(cat $W/busy.pid)); sleep 3; after=$(ticks $(cat $W/busy.pid))
  echo "$before $after" | awk -v t=$(getconf CLK_TCK) '{printf "busy at rest: %.2f s of CPU in 3 s\n", ($3+$4-$1-$2)/t}'
fi
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
rows = {n: [l for l in lines if l.startswith(n)] for n in ('nginx', 'slipway', 'busy', 'baseline', 'relay')}
rows = {n: rs for n, rs in rows.items() if rs}
for n, rs in rows.items():
    m = {k: statistics.median(field(l, k) for l in rs) for k in ('rps', 'p99', 'user', 'kernel', 'peers', 'all')}
    lo, hi = min(field(l, 'rps') for l in rs), max(field(l, 'rps') for l in rs)
    print(f"median {n:8} rps={m['rps']:.0f} ({lo:.0f}-{hi:.0f}) p99={m['p99']:.0f}us user={m['user']:.2f} kernel={m['kernel']:.2f}"
          f" peers={m['peers']:.2f} all={m['all']:.2f} µs/req")
def ratios(a, b):
    rs = [field(x, 'rps') / field(y, 'rps') for x, y in zip(rows[a], rows[b])]
    print(f"{a}/{b} rps per round: {' '.join(f'{r:.2f}' for r in rs)}; median {statistics.median(rs):.2f}"
          f" ({min(rs):.2f}-{max(rs):.2f})")
for n in [n for n in rows if n != 'nginx']:
    ratios(n, 'nginx')
if 'baseline' in rows:
    ratios('slipway', 'baseline')
PY
