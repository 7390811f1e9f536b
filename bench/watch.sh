#!/usr/bin/env bash
# The watch after promotion, measured: a release that goes bad ~30 s after it reached 100 %, under ~1,000
# rps through slipway's proxy, rolled back automatically to the release it replaced. Each run deploys a
# healthy release (0.3 % errors) and lets it serve ~10 s, then a bad one (blue-green, watch = "5m") whose
# instances answer 3 % errors from DEMO_ERRORS_AFTER_MS after they start (the seed's bad canary, but
# promoted). The replaced release is not kept warm (scale_down_delay = "1s"), so the rollback starts it
# again, as after a rolling or canary rollout.
#
#   promoted -> first error: the bad release's rollout_succeeded event to its first 5xx in /metrics
#                            (sampled every 0.1 s): when the regression began, after 100 %.
#   detect:                  first error -> the watch_regressed event (the watch's fail verdict).
#   rollback:                first error -> rollout_succeeded of the rollback release (v1's bits serve
#                            100 % again, the bad release drained).
#   errors:                  the bad release's 5xx count in /metrics at the end (what users got).
#
# Load: wrk -t1 -c10 against the demo app with DEMO_LATENCY_MS=6 (about 1,000 rps, as bench/canary.sh).
#
# Usage: bench/watch.sh [runs=5] [connections=10] [latency_ms=6] [errors_after_ms=31000]
#        SLIPWAY_BIN defaults to target/release/slipway.
set -euo pipefail
N=${1:-5} C=${2:-10} LAT=${3:-6} AFTER=${4:-31000}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
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
write_app() { # version error_rate errors_after_ms
  cat > "$W/app/slipway.toml" <<T
app = "bench"
[env]
DEMO_VERSION = "$1"
DEMO_ERROR_RATE = "$2"
DEMO_ERRORS_AFTER_MS = "$3"
DEMO_LATENCY_MS = "$LAT"
[processes.web]
cmd = "'$BIN' demo-app"
replicas = 4
readiness = { http = "/ready", period = "100ms" }
grace = "5s"
[deploy]
strategy = "blue-green"
scale_down_delay = "1s"
watch = "5m"
T
}
S="--state-dir $W/state --config $W/app/slipway.toml"
SOCK="$W/state/slipway.sock"
api() { curl -sf --unix-socket "$SOCK" "http://x$1"; }
stable() { "$BIN" $S status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); s=s[0] if isinstance(s,list) else s; print(s["stable"]["version"])'; }

"$BIN" serve --state-dir "$W/state" --listen 127.0.0.1:0 >"$W/daemon.log" 2>&1 & echo $! > "$W/daemon.pid"
for _ in $(seq 300); do [ -S "$SOCK" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.1; done
ADDR=$(cat "$W/state/proxy.addr")
write_app good-0 0.003 0; "$BIN" $S deploy >/dev/null
wrk -t1 -c"$C" -d3600s "http://$ADDR/" >"$W/wrk.out" 2>&1 & echo $! > "$W/wrk.pid"
sleep 2

echo "run  bad  promoted->first_error_s  detect_s  rollback_s  errors  rps_total"
for i in $(seq 1 "$N"); do
  write_app "good-$i" 0.003 0; "$BIN" $S deploy >/dev/null
  sleep 10  # the healthy release's numbers, before the switch
  last_event=$(api "/v1/apps/bench/events?limit=1000" | python3 -c 'import json,sys; e=json.load(sys.stdin); print(e[-1]["id"] if e else 0)')
  write_app "bad-$i" 0.03 "$AFTER"; "$BIN" $S deploy >"$W/deploy.out" 2>&1 || { echo "run $i: the bad release did not go live"; cat "$W/deploy.out"; exit 1; }
  bad=$(stable)
  # The first 5xx of the bad release, by the script's clock (ms), and its last count.
  ( first=""
    while true; do
      n=$(api /metrics | awk -v r="release=\"v$bad\"" 'index($0, "slipway_requests_total{app=\"bench\"," r) && /class="5xx"/ {print $NF}')
      if [ -n "$n" ] && [ "$n" != "0" ]; then
        [ -z "$first" ] && first=$(date +%s%3N) && echo "$first" > "$W/first"
        echo "$n" > "$W/errors"
      fi
      sleep 0.1
    done ) & echo $! > "$W/sampler.pid"
  for _ in $(seq 1800); do # at most 3 minutes for the watch to roll back
    [ "$(stable)" -gt "$bad" ] && break
    sleep 0.1
  done
  sleep 0.5; kill "$(cat "$W/sampler.pid")"; rm "$W/sampler.pid"
  [ "$(stable)" -gt "$bad" ] || { echo "run $i: v$bad was not rolled back"; tail -20 "$W/daemon.log"; exit 1; }
  api "/v1/apps/bench/events?after=$last_event&limit=1000" > "$W/events.json"
  read -r promoted detect rollback < <(python3 - "$W/events.json" "$bad" "$(cat "$W/first")" <<'PY'
import json, sys
events = json.load(open(sys.argv[1])); bad = int(sys.argv[2]); first = int(sys.argv[3])
at = lambda kind, v: next(e["at"] for e in events if e["kind"] == kind and e.get("release") == v)
promoted = at("rollout_succeeded", bad)
detected = at("watch_regressed", bad)
back = next(e["at"] for e in events if e["kind"] == "rollout_succeeded" and (e.get("release") or 0) > bad)
print("%.2f %.2f %.2f" % ((first - promoted) / 1000, (detected - first) / 1000, (back - first) / 1000))
PY
)
  errors=$(cat "$W/errors"); rm -f "$W/first" "$W/errors"
  rps=$("$BIN" $S status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); s=s[0] if isinstance(s,list) else s; print(round(sum(t["rps"] for t in s.get("traffic",[]))))')
  printf "%3d  %3s  %21s  %8s  %10s  %6s  %9s\n" "$i" "v$bad" "$promoted" "$detect" "$rollback" "$errors" "$rps"
  echo "$i $promoted $detect $rollback $errors" >> "$W/results"
done
kill -INT "$(cat "$W/wrk.pid")"; while kill -0 "$(cat "$W/wrk.pid")" 2>/dev/null; do sleep 0.1; done; rm "$W/wrk.pid"
echo
python3 - "$W/results" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
for name, i in (("seconds promoted -> first error", 1), ("seconds first error -> watch fails", 2), ("seconds first error -> rolled back", 3), ("errors the bad release served", 4)):
    c = sorted(float(r[i]) for r in rows)
    print("%-36s median %7.2f   min %7.2f   max %7.2f   (%d runs)" % (name, statistics.median(c), c[0], c[-1], len(c)))
PY
awk '/requests in/ {r=$1} /Requests\/sec/ {print "wrk: " r " requests, " $2 " rps average"} /Non-2xx/ {print "wrk: non-2xx " $NF " (the apps own 500s)"} /Socket errors/ {print "wrk: " $0}' "$W/wrk.out"
