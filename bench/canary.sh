#!/usr/bin/env bash
# The seed's canary scenario, measured: ~1,000 rps through slipway's proxy, the stable release answering
# 0.3 % errors, a canary answering 3 % at 10 % of the traffic with an error-rate analysis step. Each run
# deploys the bad canary and prints how long it took to take the canary's weight back to 0 and how many
# errors the canary served users before that. Repeated N times (a fresh v1 each time), then median / max.
#
#   time to weight 0:  from the canary taking traffic (its first instance ready; the 10 % weight is given
#                      at once) to the analysis' fail verdict, which sets the weight to 0 on the same tick.
#                      `from start` counts from the rollout_started event (includes the canary's boot).
#   canary errors:     v2's 5xx count in /metrics (slipway_requests_total{release="v2",class="5xx"}),
#                      sampled every 0.1 s while the canary has counters (they go with its weight).
#
# Load: wrk -t1 -c10 against the demo app with DEMO_LATENCY_MS=6 (Debian's wrk has no -R rate limit: 10
# connections each waiting ~6 ms + overhead land near 1,000 rps). The achieved rps is printed: adjust the
# connections / latency if it is far from 1,000 on another machine or build.
#
# Usage: bench/canary.sh [runs=5] [connections=10] [latency_ms=6]
#        SLIPWAY_BIN defaults to target/release/slipway (it must know canaries: `deploy --canary`).
set -euo pipefail
N=${1:-5} C=${2:-10} LAT=${3:-6}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
"$BIN" deploy --help | grep -q -- --canary || { echo "$BIN predates canaries: rebuild it"; exit 1; }
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "$tool is missing: apt-get install -y $tool"; exit 1; }
done
W=$(mktemp -d)
cleanup() {
  [ -f "$W/sampler.pid" ] && kill "$(cat "$W/sampler.pid")" 2>/dev/null || true
  [ -f "$W/wrk.pid" ] && kill "$(cat "$W/wrk.pid")" 2>/dev/null || true
  if [ -f "$W/daemon.pid" ]; then
    kill -TERM "$(cat "$W/daemon.pid")" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$(cat "$W/daemon.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/app"
write_app() { # version error_rate strategy-lines
  cat > "$W/app/slipway.toml" <<T
app = "bench"
[env]
DEMO_VERSION = "$1"
DEMO_ERROR_RATE = "$2"
DEMO_LATENCY_MS = "$LAT"
[processes.web]
cmd = "'$BIN' demo-app"
replicas = 4
readiness = { http = "/ready", period = "100ms" }
grace = "5s"
[deploy]
$3
[analysis.golden]
error_rate = { max = "1%", compare = "stable" }
T
}
STABLE='strategy = "blue-green"
scale_down_delay = "1s"'
CANARY='strategy = "canary"
progress_deadline = "5m"
steps = [ { weight = 10 }, { analysis = "golden", for = "5m" } ]'
S="--state-dir $W/state --config $W/app/slipway.toml"
SOCK="$W/state/slipway.sock"
api() { curl -sf --unix-socket "$SOCK" "http://x$1"; }

"$BIN" serve --state-dir "$W/state" --listen 127.0.0.1:0 >"$W/daemon.log" 2>&1 & echo $! > "$W/daemon.pid"
for _ in $(seq 300); do [ -S "$SOCK" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.1; done
ADDR=$(cat "$W/state/proxy.addr")
write_app v1 0.003 "$STABLE"; "$BIN" $S deploy >/dev/null
wrk -t1 -c"$C" -d3600s "http://$ADDR/" >"$W/wrk.out" 2>&1 & echo $! > "$W/wrk.pid"
sleep 2

echo "run  from_ready_s  from_start_s  canary_errors  canary_requests  rps_total"
for i in $(seq 1 "$N"); do
  v=$((i + 1))  # release numbers: v1 stays stable, each failed canary takes the next number
  last_event=$(api "/v1/apps/bench/events?limit=1000" | python3 -c 'import json,sys; e=json.load(sys.stdin); print(e[-1]["id"] if e else 0)')
  # Sample /metrics while the canary runs: its counters vanish with its weight.
  ( while true; do
      api /metrics | grep -E "^slipway_requests_total\{app=\"bench\",release=\"v$v\"" > "$W/m.tmp" && mv "$W/m.tmp" "$W/m.last"
      sleep 0.1
    done ) & echo $! > "$W/sampler.pid"
  write_app "canary-$i" 0.03 "$CANARY"
  t0=$(date +%s.%N)
  if "$BIN" $S deploy >"$W/deploy.out" 2>&1; then echo "run $i: the bad canary went live!"; cat "$W/deploy.out"; exit 1; fi
  t1=$(date +%s.%N)
  sleep 0.3; kill "$(cat "$W/sampler.pid")"; rm "$W/sampler.pid"
  errors=$(awk '/class="5xx"/ {print $NF}' "$W/m.last" 2>/dev/null || echo "?")
  requests=$(awk '{n+=$NF} END {print n+0}' "$W/m.last" 2>/dev/null || echo "?")
  rm -f "$W/m.last"
  api "/v1/apps/bench/events?after=$last_event&limit=1000" > "$W/events.json"
  read -r from_ready from_start < <(python3 - "$W/events.json" "$v" <<'PY'
import json, sys
events = json.load(open(sys.argv[1])); v = int(sys.argv[2])
mine = [e for e in events if e.get("release") == v]
start = next(e["at"] for e in mine if e["kind"] == "rollout_started")
ready = next((e["at"] for e in mine if e["kind"] == "instance_ready"), start)
fail = next((e["at"] for e in mine if e["kind"] == "analysis" and "fail" in e["message"]), None)
if fail is None:
    fail = next(e["at"] for e in mine if e["kind"].startswith("rollout_") and e["kind"] != "rollout_started")
print("%.2f %.2f" % ((fail - ready) / 1000, (fail - start) / 1000))
PY
)
  status=$("$BIN" $S status --json)
  echo "$status" | python3 -c 'import json,sys; s=json.load(sys.stdin); s=s[0] if isinstance(s,list) else s; assert s["stable"]["version"]==1, s' \
    || { echo "run $i: v1 is not stable after the rollback"; exit 1; }
  rps=$(echo "$status" | python3 -c 'import json,sys; s=json.load(sys.stdin); s=s[0] if isinstance(s,list) else s; print(round(sum(t["rps"] for t in s.get("traffic",[]))))')
  printf "%3d  %11s  %12s  %13s  %15s  %9s\n" "$i" "$from_ready" "$from_start" "$errors" "$requests" "$rps"
  echo "$i $from_ready $from_start $errors" >> "$W/results"
  [ "$i" = 1 ] && grep -h "" "$W/deploy.out" | tail -3 | sed 's/^/    deploy: /'
done
kill -INT "$(cat "$W/wrk.pid")"; while kill -0 "$(cat "$W/wrk.pid")" 2>/dev/null; do sleep 0.1; done; rm "$W/wrk.pid"
echo
python3 - "$W/results" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
def col(i):
    return sorted(float(r[i]) for r in rows if r[i] not in ("?", ""))
for name, i in (("seconds canary ready -> weight 0", 1), ("seconds rollout start -> weight 0", 2), ("errors the canary served", 3)):
    c = col(i)
    if c:
        print("%-36s median %7.2f   max %7.2f   (%d runs)" % (name, statistics.median(c), c[-1], len(c)))
PY
awk '/requests in/ {r=$1; t=$4} /Requests\/sec/ {print "wrk: " r " requests, " $2 " rps average"} /Non-2xx/ {print "wrk: non-2xx " $NF " (the apps own 500s)"} /Socket errors/ {print "wrk: " $0}' "$W/wrk.out"
