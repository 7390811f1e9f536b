#!/usr/bin/env bash
# Instructions per proxied request of the whole product (`slipway serve --threads 1`, one app whose
# instance is a tiny nginx) for each slipway binary given, under callgrind: two daemons each, one loaded
# by wrk for D seconds and one for 3×D, and per request = the difference of their instructions over the
# difference of their requests, so start-up and the deploy cancel out. Repeatable on a loaded machine,
# unlike requests/s: it compares builds (an optimisation level, a change in the request path) by the
# work they do per request. This VM has no hardware counters for `perf stat`, hence valgrind (and
# callgrind_control could not switch instrumentation on in a running daemon here, hence two runs).
# Usage: bench/serve-instructions.sh [-d seconds] [-c connections] BINARY...     (defaults 10 s, 16)
set -euo pipefail
D=10 C=16
while getopts "d:c:" o; do case $o in d) D=$OPTARG ;; c) C=$OPTARG ;; *) exit 2 ;; esac; done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-d seconds] [-c connections] BINARY..." >&2; exit 2; }
for tool in wrk nginx valgrind callgrind_control curl; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
W=$(mktemp -d)
SERVE=""
stop_serve() {
  [ -n "$SERVE" ] || return 0
  kill -TERM "$SERVE" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$SERVE" 2>/dev/null || break; sleep 0.1; done
  SERVE=""
}
trap 'stop_serve; rm -rf "$W"' EXIT
cat > "$W/instance.tpl" <<'B'
worker_processes 1; daemon off; pid __DIR__/b-__PORT__.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:__PORT__; keepalive_requests 1000000; location / { return 200 "ok\n"; } } }
B
sed -i "s|__DIR__|$W|" "$W/instance.tpl"
mkdir -p "$W/app"
cat > "$W/app/slipway.toml" <<T
app = "bench"
[processes.web]
cmd = "sed s/__PORT__/\$PORT/g $W/instance.tpl > $W/i-\$PORT.conf && exec nginx -c $W/i-\$PORT.conf"
replicas = 1
readiness = { tcp = true, period = "1s" }
T
# run BIN SECONDS: one daemon under callgrind, deploy, wrk; prints "instructions requests".
run() {
  rm -rf "$W/state" "$W"/cg.out*
  (cd "$W" && exec valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" \
    "$1" serve --threads 1 --state-dir "$W/state" --listen 127.0.0.1:0 >"$W/serve.log" 2>&1) &
  SERVE=$!
  for _ in $(seq 600); do [ -S "$W/state/slipway.sock" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.1; done
  "$1" --state-dir "$W/state" --config "$W/app/slipway.toml" deploy >"$W/deploy.log" 2>&1 \
    || { cat "$W/deploy.log" >&2; exit 1; }
  local addr reqs
  addr=$(cat "$W/state/proxy.addr")
  for _ in $(seq 300); do curl -sf -o /dev/null "http://$addr/" && break; sleep 0.1; done
  reqs=$(wrk -t1 -c"$C" -d"${2}s" "http://$addr/" | awk '/requests in/ {print $1}')
  stop_serve
  echo "$(awk '/^summary:/ {s += $2} END {print s}' "$W"/cg.out*) $reqs"
}
for BIN in "$@"; do
  BIN=$(realpath "$BIN")
  read -r i1 r1 < <(run "$BIN" "$D")
  read -r i2 r2 < <(run "$BIN" $((3 * D)))
  awk -v b="$BIN" -v i1="$i1" -v r1="$r1" -v i2="$i2" -v r2="$r2" \
    'BEGIN { printf "%s: %d and %d requests; per request %d instructions\n", b, r1, r2, (i2 - i1) / (r2 - r1) }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
