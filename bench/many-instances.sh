#!/usr/bin/env bash
# Many instances on one daemon (issue 16): APPS apps of PER instances each (default 100 × 10 = 1,000) of a
# tiny static server (busybox httpd), in one run:
#   1. proxy requests/s to one app (wrk, its instances) with only that app routed, then again with every
#      app routed: what the route table's size costs a request (median of 3 rounds each, and the ratio);
#   2. the time to deploy every app (4 deploys at a time), and the daemon's RSS after each quarter of them:
#      memory per instance, and whether it grows linearly;
#   3. the daemon's CPU while idle with every instance running (its own utime+stime over IDLE seconds),
#      as % of one core, several windows: median and min–max.
# Usage: bench/many-instances.sh [apps] [per-app] [idle-seconds] [readiness-period]
#        (SLIPWAY_BIN: target/release/slipway; without a readiness period, slipway's default: 10s while
#        passing, checks within milliseconds while starting)
set -euo pipefail
APPS=${1:-100} PER=${2:-10} IDLE=${3:-20} PERIOD=${4:-}
PERIOD_KEY=${PERIOD:+", period = \"$PERIOD\""}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: apt-get install -y curl"; exit 1; }
BUSYBOX=$(command -v busybox) || { echo "busybox is missing: apt-get install -y busybox-static"; exit 1; }
W=$(mktemp -d)
stop_all() {
  local pid
  pid=$(cat "$W/state/daemon.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for f in "$W"/state/run/*.pid; do
    [ -f "$f" ] && kill -KILL "-$(head -n1 "$f")" 2>/dev/null || true
  done
  return 0
}
trap 'stop_all; rm -rf "$W"' EXIT
ms() { date +%s%3N; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$(cat "$W/state/daemon.pid")/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$(cat "$W/state/daemon.pid")/stat"; }
serving() { # instances serving, over every app (GET /v1/apps on the local socket)
  curl -s --unix-socket "$W/state/slipway.sock" http://slipway/v1/apps | python3 -c 'import json,sys
print(sum(1 for a in json.load(sys.stdin) for x in a["instances"] if x["serving"]))'
}
mkapp() {
  local n=$1
  mkdir -p "$W/m$n/www"
  echo "m$n" > "$W/m$n/www/index.html"
  cat > "$W/m$n/slipway.toml" <<T
app = "m$n"
[routing]
hosts = ["m$n.test"]
[processes.web]
cmd = "exec '$BUSYBOX' httpd -f -p 127.0.0.1:\$PORT -h www"
replicas = $PER
readiness = { http = "/"$PERIOD_KEY }
[deploy]
strategy = "blue-green"
progress_deadline = "600s"
T
}
deploy() { "$BIN" --state-dir "$W/state" --config "$W/m$1/slipway.toml" deploy >/dev/null; }
bench_wrk() { # host → requests/s
  wrk -t1 -c16 -d5s -H "Host: $1" "http://$(cat "$W/state/proxy.addr")/" | awk '/Requests\/sec/ {print $2}'
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BIN; $APPS apps × $PER instances of busybox httpd, readiness http every ${PERIOD:-10s (default)}"
( "$BIN" serve --state-dir "$W/state" --listen 127.0.0.1:0 >>"$W/daemon.log" 2>&1 & )
for _ in $(seq 600); do [ -s "$W/state/daemon.pid" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.05; done
echo "daemon RSS with no app: $(rss_mb) MB"
for n in $(seq "$APPS"); do mkapp "$n"; done

deploy 1
one=()
for _ in 1 2 3; do one+=("$(bench_wrk m1.test)"); done
echo "## 1. one app routed: m1 requests/s: ${one[*]}"

echo "## 2. deploying $((APPS - 1)) more apps, 4 at a time"
t0=$(ms)
quarter=$(( (APPS + 3) / 4 ))
done_apps=1
for start in $(seq 2 "$quarter" "$APPS"); do
  end=$(( start + quarter - 1 )); [ "$end" -gt "$APPS" ] && end=$APPS
  seq "$start" "$end" | xargs -P 4 -I{} "$BIN" --state-dir "$W/state" --config "$W/m{}/slipway.toml" deploy >/dev/null
  done_apps=$end
  echo "  $done_apps apps ($((done_apps * PER)) instances) after $(( ($(ms) - t0) / 1000 )) s: daemon RSS $(rss_mb) MB"
done
total_ms=$(( $(ms) - t0 ))
all=$(serving)
echo "deployed in $((total_ms / 1000)).$(( total_ms % 1000 / 100 )) s; instances serving: $all of $((APPS * PER))"

echo "## 3. idle: $((APPS * PER)) instances, nobody sending requests (daemon CPU over ${IDLE}s windows)"
hz=$(getconf CLK_TCK)
sleep 5
cpus=()
for _ in 1 2 3; do
  a=$(cpu_ticks); sleep "$IDLE"; b=$(cpu_ticks)
  cpus+=("$(awk -v a="$a" -v b="$b" -v hz="$hz" -v s="$IDLE" 'BEGIN {printf "%.2f", (b-a)*100/hz/s}')")
done
sorted=$(printf '%s\n' "${cpus[@]}" | sort -n | tr '\n' ' ')
echo "daemon CPU, % of one core: ${cpus[*]} (sorted: $sorted)"
echo "daemon RSS idle: $(rss_mb) MB; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

many=()
for _ in 1 2 3; do many+=("$(bench_wrk m1.test)"); done
echo "## 1 again. $APPS apps routed: m1 requests/s: ${many[*]}"
python3 - "${one[*]}" "${many[*]}" <<'PY'
import statistics, sys
one = [float(x) for x in sys.argv[1].split()]
many = [float(x) for x in sys.argv[2].split()]
print(f"median one app {statistics.median(one):.0f}/s, {len(many)} rounds with all apps {statistics.median(many):.0f}/s: ratio {statistics.median(many)/statistics.median(one):.2f}")
PY
