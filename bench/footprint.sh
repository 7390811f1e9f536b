#!/usr/bin/env bash
# The daemon's footprint (issue 19): the binary's size, and its resident memory at start, idle with one
# app (2 instances) deployed, right after a wrk burst, and idle again 10 s later — over ROUNDS fresh daemons,
# as median and min–max — with where the idle memory is (heap, thread stacks, the binary's own pages).
# Usage: bench/footprint.sh [rounds]      (SLIPWAY_BIN defaults to target/release/slipway)
set -euo pipefail
ROUNDS=${1:-5}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
W=$(mktemp -d)
pid=""
stop_daemon() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  pid=""
}
trap 'stop_daemon; rm -rf "$W"' EXIT
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# kB of the process's mappings by kind: heap ([heap] and anonymous), stacks, the binary's file pages.
where() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { name = $6; if (name == "") name = "anon" }
    /^Rss:/ { if (name ~ /slipway$/) bin += $2; else if (name == "[heap]" || name == "anon") heap += $2;
              else if (name ~ /stack/) stack += $2; else other += $2 }
    END { printf "heap+anon %d kB, binary %d kB, stacks %d kB, other %d kB\n", heap, bin, stack, other }
  ' "/proc/$1/smaps"
}
mkdir -p "$W/app"
cat > "$W/app/slipway.toml" <<T
app = "bench"
[env]
DEMO_VERSION = "v1"
[processes.web]
cmd = "'$BIN' demo-app"
replicas = 2
readiness = { http = "/ready", period = "100ms" }
[deploy]
strategy = "blue-green"
T
: > "$W/results"
for round in $(seq "$ROUNDS"); do
  rm -rf "$W/state"
  "$BIN" serve --state-dir "$W/state" --listen 127.0.0.1:0 >"$W/daemon.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do [ -S "$W/state/slipway.sock" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.1; done
  sleep 2
  start=$(rss "$pid")
  "$BIN" --state-dir "$W/state" --config "$W/app/slipway.toml" deploy >/dev/null
  sleep 5
  idle=$(rss "$pid")
  [ "$round" = 1 ] && where "$pid" > "$W/where"
  wrk -t1 -c16 -d5s "http://$(cat "$W/state/proxy.addr")/" >/dev/null
  burst=$(rss "$pid")
  sleep 10
  after=$(rss "$pid")
  echo "$start $idle $burst $after" >> "$W/results"
  stop_daemon
done
echo "binary: $(stat -c %s "$BIN") bytes ($BIN)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$W/results" <<'PY'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
for i, name in enumerate(["at start, nothing deployed", "idle, one app deployed", "right after wrk -c16 5s", "idle 10 s later"]):
    v = sorted(r[i] / 1024 for r in rows)
    print(f"RSS {name:28s} median {statistics.median(v):5.1f} MB  (min–max {v[0]:.1f}–{v[-1]:.1f}, {len(v)} rounds)")
PY
echo "idle with one app, round 1: $(cat "$W/where")"
