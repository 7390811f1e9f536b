#!/usr/bin/env bash
# Deploy overhead of the Docker runtime against the process runtime, in the same run: the same demo app
# (2 web instances, blue-green, readiness http /ready every 100 ms), once as a command, once as a
# FROM-scratch image, N back-to-back deploys each under wrk load. Per runtime it prints failed requests
# (goal 0) and, over the deploys, the medians (min–max) of:
#   command        `slipway deploy` from start until it returned with 100 % on the new release
#   start → ready  rollout started → the new release's last instance ready (process spawn or container
#                  create+start, plus the app's own start and first passing probe)
#   ready → 100 %  last instance ready → switch (slipway's overhead beyond the app's readiness)
# Usage: DOCKER_HOST=unix:///... bench/docker-deploys.sh [deploys] [connections]
#        (SLIPWAY_BIN defaults to target/release/slipway; the image's demo app is built statically
#         into target/static)
set -euo pipefail
N=${1:-10} C=${2:-16}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway (or set SLIPWAY_BIN)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
docker info >/dev/null 2>&1 || { echo "no Docker engine at ${DOCKER_HOST:-the default socket}"; exit 1; }
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  cargo build -q -p slipway-demo-app --target x86_64-unknown-linux-gnu
DEMO=target/static/x86_64-unknown-linux-gnu/debug/slipway-demo-app

W=$(mktemp -d)
TAG="slipway-bench-$$:demo"
cleanup() {
  [ -f "$W/wrk.pid" ] && kill "$(cat "$W/wrk.pid")" 2>/dev/null || true
  if [ -f "$W/daemon.pid" ]; then
    kill -TERM "$(cat "$W/daemon.pid")" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$(cat "$W/daemon.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  docker rmi -f "$TAG" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/image"
cp "$DEMO" "$W/image/slipway-demo-app"
printf 'FROM scratch\nCOPY slipway-demo-app /slipway-demo-app\nENV DEMO_BIND=0.0.0.0\nUSER 1000:1000\nENTRYPOINT ["/slipway-demo-app"]\n' >"$W/image/Dockerfile"
docker build -q -t "$TAG" "$W/image" >/dev/null

"$BIN" serve --threads "${THREADS:-2}" --state-dir "$W/state" --listen 127.0.0.1:0 >"$W/daemon.log" 2>&1 & echo $! > "$W/daemon.pid"
for _ in $(seq 300); do [ -S "$W/state/slipway.sock" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.1; done
ADDR=$(cat "$W/state/proxy.addr")

# $1 app, $2 version, $3 runtime (process | image)
write_app() {
  mkdir -p "$W/$1"
  if [ "$3" = image ]; then run="image = \"$TAG\""; else run="cmd = \"'$BIN' demo-app\""; fi
  cat > "$W/$1/slipway.toml" <<T
app = "$1"
[routing]
hosts = ["$1"]
[env]
DEMO_VERSION = "$2"
[processes.web]
$run
replicas = 2
readiness = { http = "/ready", period = "100ms" }
grace = "5s"
[deploy]
strategy = "blue-green"
scale_down_delay = "1s"
T
}

run() { # $1 app, $2 runtime
  local app=$1 runtime=$2 S="--state-dir $W/state --config $W/$1/slipway.toml"
  write_app "$app" v0 "$runtime"; "$BIN" $S deploy >/dev/null
  wrk -t1 -c"$C" -d600s -H "Host: $app" "http://$ADDR/" >"$W/wrk-$app.out" 2>&1 & echo $! > "$W/wrk.pid"
  sleep 1
  : >"$W/cmd-$app"
  for i in $(seq 1 "$N"); do
    write_app "$app" "v$i" "$runtime"
    local t0 t1
    t0=$(date +%s%N)
    "$BIN" $S deploy >/dev/null || echo "$runtime deploy $i failed"
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 )) >>"$W/cmd-$app"
  done
  kill -INT "$(cat "$W/wrk.pid")"; while kill -0 "$(cat "$W/wrk.pid")" 2>/dev/null; do sleep 0.1; done; rm "$W/wrk.pid"
  local requests failed
  requests=$(awk '/requests in/ {print $1}' "$W/wrk-$app.out")
  failed=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}' "$W/wrk-$app.out")
  curl -s --unix-socket "$W/state/slipway.sock" "http://x/v1/apps/$app/events?limit=1000" >"$W/events-$app.json"
  python3 - "$runtime" "$N" "$C" "$requests" "$failed" "$W/cmd-$app" "$W/events-$app.json" <<'PY'
import json, sys
runtime, n, c, requests, failed, cmd_file, events_file = sys.argv[1:]
cmd = [int(l) for l in open(cmd_file) if l.strip()]
started, ready, start_ready, ready_switch = {}, {}, [], []
for e in json.load(open(events_file)):
    v = e["release"]
    if e["kind"] == "rollout_started": started[v] = e["at"]
    if e["kind"] == "instance_ready": ready[v] = e["at"]
    if e["kind"] == "rollout_succeeded" and v in ready and v in started and v > 1:
        start_ready.append(ready[v] - started[v]); ready_switch.append(e["at"] - ready[v])
def med(xs):
    xs = sorted(xs)
    return "%d ms (%d–%d)" % (xs[len(xs) // 2], xs[0], xs[-1]) if xs else "n/a"
print(f"{runtime:7}  deploys={n} wrk -c{c}: requests={requests} failed={failed}")
print(f"         command {med(cmd)} | start → ready {med(start_ready)} | ready → 100% {med(ready_switch)}")
PY
}

run bench-process process
run bench-image image
echo "binary: $BIN; engine: $(docker version -f '{{.Server.Version}}')"
