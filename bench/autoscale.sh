#!/usr/bin/env bash
# Autoscaling and cold starts through the real proxy (issue 16), in one run:
#   1. a stepped wrk load, low → high → low, on the demo app (20 ms a request) autoscaled on concurrency
#      (2 in flight per instance, 1–8 instances, a 10 s window): failed requests of each step (socket
#      errors and non-2xx, goal 0), the instance count at the end of each step, and every scale event
#      (flapping would show as more than one change a step);
#   2. ROUNDS cold starts of the same app scaled to zero: the first request's latency (curl, client side)
#      and the daemon's own measure (wake → serving), against the app's own start time (the same
#      command started by hand until it answers): median, p95, min–max.
# Usage: bench/autoscale.sh [rounds]      (SLIPWAY_BIN defaults to target/release/slipway)
set -euo pipefail
ROUNDS=${1:-10}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool"; exit 1; }
done
W=$(mktemp -d)
stop_all() {
  local pid
  pid=$(cat "$W/state/daemon.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for f in "$W"/state/run/*.pid; do
    [ -f "$f" ] && kill -KILL "-$(head -n1 "$f")" 2>/dev/null || true
  done
  return 0
}
trap 'stop_all; rm -rf "$W"' EXIT
api() { curl -s --unix-socket "$W/state/slipway.sock" "http://slipway$1"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
stats() { # label, then numbers: median, p95, min–max
  local label=$1; shift
  printf '%s\n' "$@" | sort -n | awk -v l="$label" '{v[NR]=$1} END {
    p95 = v[int((NR*95+99)/100)]; printf "%s: median %s, p95 %s, min–max %s–%s (n=%d)\n", l, v[int((NR+1)/2)], p95, v[1], v[NR], NR }'
}
wrk_step() { # connections, seconds → "requests errors non2xx"
  wrk -t1 -c"$1" -d"$2"s "http://$(cat "$W/state/proxy.addr")/" > "$W/wrk.txt" 2>&1 || true
  local requests errors non2xx
  requests=$(awk '/requests in/ {print $1}' "$W/wrk.txt")
  errors=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' "$W/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$W/wrk.txt")
  echo "$requests ${errors:-0} ${non2xx:-0}"
}
app() { # formation lines → deploys the demo app with them
  mkdir -p "$W/app"
  cat > "$W/app/slipway.toml" <<T
app = "bench"
[env]
DEMO_VERSION = "v1"
DEMO_LATENCY_MS = "20"
[processes.web]
cmd = "exec '$BIN' demo-app"
$1
readiness = { http = "/ready", period = "100ms" }
[deploy]
strategy = "blue-green"
progress_deadline = "120s"
T
  "$BIN" --state-dir "$W/state" --config "$W/app/slipway.toml" deploy >/dev/null
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BIN"
( "$BIN" serve --state-dir "$W/state" --listen 127.0.0.1:0 >>"$W/daemon.log" 2>&1 & )
for _ in $(seq 600); do [ -S "$W/state/slipway.sock" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.05; done

echo "## 1. stepped load: wrk -c2 for 20 s, -c32 for 30 s, -c2 for 30 s (target 2 in flight per instance)"
app $'replicas = { min = 1, max = 8 }\nautoscale = { concurrency = 2, window = "10s" }'
for step in "2 20" "32 30" "2 30"; do
  set -- $step
  read -r requests errors non2xx <<< "$(wrk_step "$1" "$2")"
  count=$(api /v1/apps/bench | field 'd["scaling"]["replicas"]')
  echo "  -c$1 for $2 s: $requests requests, $errors socket errors, $non2xx non-2xx; $count instance(s) at the end"
done
api "/v1/apps/bench/events?tail=1000" | python3 -c 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["kind"]=="scaled"]
ev.sort(key=lambda e: e["at"])
print(f"  scale events: {len(ev)}")
for e in ev: print("   ", e["message"])'

echo "## 2. $ROUNDS cold starts (idle_after 1s), against the app started by hand"
app $'replicas = { min = 0, max = 1 }\nidle_after = "1s"'
own=(); first=()
for _ in $(seq "$ROUNDS"); do
  # The app's own start: the same command, until it answers.
  own+=("$(python3 - "$BIN" <<'PY'
import os, socket, subprocess, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
t0 = time.monotonic()
p = subprocess.Popen([sys.argv[1], "demo-app"], env=dict(os.environ, PORT=str(port), DEMO_LATENCY_MS="20"),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if c.recv(16).startswith(b"HTTP/1.1 200"): break
    except OSError:
        time.sleep(0.002)
print(round((time.monotonic() - t0) * 1000))
p.kill(); p.wait()
PY
)")
  for _ in $(seq 600); do
    [ "$(api /v1/apps/bench | field 'sum(1 for i in d["instances"] if i["process"]=="web")')" = 0 ] && break
    sleep 0.1
  done
  t=$(curl -s -o /dev/null -w '%{time_total}' "http://$(cat "$W/state/proxy.addr")/")
  first+=("$(awk -v t="$t" 'BEGIN {printf "%d", t*1000}')")
  sleep 1.2
done
stats "the app's own start (ms, exec until /ready answers)" "${own[@]}"
stats "first request after idle (ms, client side, curl)" "${first[@]}"
mapfile -t measured < <(api "/v1/apps/bench/events?tail=1000" | python3 -c 'import json,re,sys
for e in json.load(sys.stdin):
    if e["kind"] == "cold_start": print(re.search(r"after (\d+) ms", e["message"]).group(1))')
stats "cold start as the daemon measures it (ms, wake → serving)" "${measured[@]}"
