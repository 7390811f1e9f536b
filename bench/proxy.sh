#!/usr/bin/env bash
# Benchmarks slipway's data plane (crates/proxy, one worker thread) against direct / nginx / haproxy / caddy,
# all on the same tiny nginx backend, using the shared anchor script bench/proxy-anchors.sh.
# Usage: bench/proxy.sh [seconds] [connections]      (defaults 8 32)
# Builds target/release/slipway-proxy-bench (with mimalloc as its allocator) if it is missing
# (SLIPWAY_REBUILD=1 to force a rebuild).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/slipway-proxy-bench
if [ ! -x "$BIN" ] || [ "${SLIPWAY_REBUILD:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p slipway-proxy --bin slipway-proxy-bench --features mimalloc)
fi
for tool in wrk nginx curl; do command -v $tool >/dev/null || { echo "bench/proxy.sh: $tool is not installed" >&2; exit 1; }; done

RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT
PROXY_PORT=19009 INSTANCE_PORT=19010

# Started by the anchor script once it has exported BACKEND_TEMPLATE: our own instance (the same nginx
# backend config on its own port), then the proxy in front of it. Returns once the proxy answers.
cat > "$RUN/start.sh" <<START
set -eu
sed s/__PORT__/$INSTANCE_PORT/g "\$BACKEND_TEMPLATE" > "$RUN/instance.conf"
nginx -c "$RUN/instance.conf" >"$RUN/instance.log" 2>&1 &
echo \$! > "$RUN/instance.pid"
"$BIN" 127.0.0.1:$PROXY_PORT 127.0.0.1:$INSTANCE_PORT >"$RUN/proxy.log" 2>&1 &
echo \$! > "$RUN/proxy.pid"
for _ in \$(seq 200); do
  curl -sf -o /dev/null http://127.0.0.1:$PROXY_PORT/ && exit 0
  sleep 0.05
done
echo "slipway-proxy-bench did not answer: \$(tail -3 "$RUN/proxy.log")" >&2
exit 1
START
cat > "$RUN/stop.sh" <<STOP
for f in "$RUN/proxy.pid" "$RUN/instance.pid"; do [ -f "\$f" ] && kill \$(cat "\$f") 2>/dev/null; done
true
STOP

OURS_CMD="bash $RUN/start.sh" OURS_STOP="bash $RUN/stop.sh" bash "$ROOT/bench/proxy-anchors.sh" "${1:-8}" "${2:-32}"
