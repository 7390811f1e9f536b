#!/usr/bin/env bash
# OFREP single-flag evaluations per second, against a minimal hyper "hello" server in the same run.
#
# Both servers get one tokio worker thread (`slipway serve --threads 1`; the hello server's runtime is
# current-thread); wrk runs one thread with C connections, POSTing an OFREP body whose targeting key
# changes on every request, to:
#   hello   any path → "hello" (bench/yardstick/src/main.rs: hyper http1, nothing else)
#   ofrep   POST /ofrep/v1/evaluate/flags/new-checkout with an evaluation key (X-API-Key, hashed and
#           looked up, rate-limited per key) — the flag has targeting: a staff rule, then a 10 % split
# Rounds alternate hello / ofrep so both see the same background load; medians and their ratio are
# printed (goal: ofrep ≥ 0.5 × hello).
#
# Usage: bench/ofrep.sh [seconds=10] [connections=32] [rounds=3]
#        Build first: cargo build --release -p slipway && cargo build --release -p slipway-yardstick
set -euo pipefail
D=${1:-10} C=${2:-32} R=${3:-3}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
HELLO=$(realpath "${HELLO_BIN:-target/release/hello_server}")
for f in "$BIN" "$HELLO"; do
  [ -x "$f" ] || { echo "missing $f: build first (see the header)"; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
W=$(mktemp -d)
cleanup() {
  for p in hello daemon; do
    [ -f "$W/$p.pid" ] && kill -TERM "$(cat "$W/$p.pid")" 2>/dev/null || true
  done
  if [ -f "$W/daemon.pid" ]; then
    for _ in $(seq 100); do kill -0 "$(cat "$W/daemon.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$W"
}
trap cleanup EXIT

"$HELLO" 127.0.0.1:0 1 > "$W/hello.addr" & echo $! > "$W/hello.pid"
"$BIN" serve --state-dir "$W/state" --listen 127.0.0.1:0 --api 127.0.0.1:0 --threads 1 \
  > "$W/daemon.log" 2>&1 & echo $! > "$W/daemon.pid"
for _ in $(seq 100); do [ -s "$W/state/api.addr" ] && [ -s "$W/hello.addr" ] && break; sleep 0.1; done
API=$(tr -d '\n' < "$W/state/api.addr"); HELLO_ADDR=$(tr -d '\n' < "$W/hello.addr")
export SLIPWAY_STATE_DIR="$W/state"
cat > "$W/flags.json" <<'J'
{"flags": {"new-checkout": {
  "variants": {"on": true, "off": false}, "defaultVariant": "off",
  "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on",
                       {"fractional": [["on", 10], ["off", 90]]}]}}}}
J
"$BIN" flags --app bench import "$W/flags.json" > /dev/null
KEY=$("$BIN" flags --app bench key create bench --rate unlimited 2>/dev/null)
cat > "$W/post.lua" <<L
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$KEY"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil,
    '{"context":{"targetingKey":"user-' .. n .. '","email":"u' .. n .. '@mail.test"}}')
end
L
# One request by hand, so a broken setup fails loudly instead of measuring errors.
curl -sf -X POST "http://$API/ofrep/v1/evaluate/flags/new-checkout" -H "X-API-Key: $KEY" \
  -d '{"context":{"targetingKey":"u1"}}' | grep -q '"reason"' || { echo "OFREP does not answer"; exit 1; }

rps() { # url
  wrk -t1 -c"$C" -d"${D}s" -s "$W/post.lua" "$1" | awk '
    /Non-2xx/ {bad=1} /Requests\/sec/ {r=$2} END {if (bad) print "errors"; else print r}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$W/hello.rps"; : > "$W/ofrep.rps"
for i in $(seq "$R"); do
  rps "http://$HELLO_ADDR/" >> "$W/hello.rps"
  rps "http://$API/ofrep/v1/evaluate/flags/new-checkout" >> "$W/ofrep.rps"
done
if grep -q errors "$W/hello.rps" "$W/ofrep.rps"; then echo "non-2xx answers during the run"; exit 1; fi
H=$(median < "$W/hello.rps"); O=$(median < "$W/ofrep.rps")
echo "date: $(date -u +%Y-%m-%d)  load average: $(cut -d' ' -f1-3 /proc/loadavg)  ${D}s x ${R} rounds, ${C} connections"
printf '%-28s %12s   rounds: %s\n' "hello (hyper, 1 thread)" "$H" "$(tr '\n' ' ' < "$W/hello.rps")"
printf '%-28s %12s   rounds: %s\n' "OFREP single flag (slipway)" "$O" "$(tr '\n' ' ' < "$W/ofrep.rps")"
awk -v o="$O" -v h="$H" 'BEGIN {printf "ratio OFREP / hello: %.2f (goal >= 0.50)\n", o / h}'
