#!/usr/bin/env bash
# Back-to-back blue-green deploys under wrk load, through the real binary and the bundled demo app.
# Prints: failed requests seen by wrk (goal 0), and per deploy the time from the new release's last
# instance becoming ready to 100 % of traffic on it (slipway's own overhead beyond the app's readiness;
# goal <= 200 ms), then the daemon's idle RSS and the binary's size.
# Usage: bench/deploys.sh [deploys] [connections]     (SLIPWAY_BIN defaults to target/release/slipway)
set -euo pipefail
N=${1:-20} C=${2:-16}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
W=$(mktemp -d)
cleanup() {
  [ -f "$W/wrk.pid" ] && kill "$(cat "$W/wrk.pid")" 2>/dev/null || true
  if [ -f "$W/daemon.pid" ]; then
    kill -TERM "$(cat "$W/daemon.pid")" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$(cat "$W/daemon.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/app"
write_app() {
  cat > "$W/app/slipway.toml" <<T
app = "bench"
[env]
DEMO_VERSION = "$1"
[processes.web]
cmd = "'$BIN' demo-app"
replicas = 2
readiness = { http = "/ready", period = "100ms" }
grace = "5s"
[deploy]
strategy = "blue-green"
scale_down_delay = "1s"
T
}
S="--state-dir $W/state --config $W/app/slipway.toml"
"$BIN" serve --threads "${THREADS:-2}" --state-dir "$W/state" --listen 127.0.0.1:0 >"$W/daemon.log" 2>&1 & echo $! > "$W/daemon.pid"
for _ in $(seq 300); do [ -S "$W/state/slipway.sock" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.1; done
ADDR=$(cat "$W/state/proxy.addr")
write_app v0; "$BIN" $S deploy >/dev/null
wrk -t1 -c"$C" -d600s "http://$ADDR/" >"$W/wrk.out" 2>&1 & echo $! > "$W/wrk.pid"
sleep 1
start=$(date +%s.%N)
for i in $(seq 1 "$N"); do write_app "v$i"; "$BIN" $S deploy >/dev/null || echo "deploy $i failed"; done
end=$(date +%s.%N)
kill -INT "$(cat "$W/wrk.pid")"; while kill -0 "$(cat "$W/wrk.pid")" 2>/dev/null; do sleep 0.1; done; rm "$W/wrk.pid"
requests=$(awk '/requests in/ {print $1}' "$W/wrk.out")
failed=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}' "$W/wrk.out")
echo "deploys=$N in $(echo "$end - $start" | bc) s under wrk -c$C: requests=$requests failed=$failed"
curl -s --unix-socket "$W/state/slipway.sock" "http://x/v1/apps/bench/events?limit=1000" | python3 -c '
import json,sys
ev=json.load(sys.stdin); ready={}; gaps=[]
for e in ev:
    if e["kind"]=="instance_ready": ready[e["release"]]=e["at"]
    if e["kind"]=="rollout_succeeded" and e["release"] in ready and e["release"]>1: gaps.append(e["at"]-ready[e["release"]])
gaps.sort()
if gaps: print("ready->100%% on new release (ms): min=%d median=%d max=%d over %d deploys" % (gaps[0], gaps[len(gaps)//2], gaps[-1], len(gaps)))
'
sleep 2
echo "daemon idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/"$(cat "$W/daemon.pid")"/status)"
echo "binary: $(stat -c %s "$BIN") bytes ($BIN)"
