#!/usr/bin/env bash
# The proxy benchmark with the whole product: `slipway serve --threads 1` (proxy, controller, supervisor and
# API in one process) serving an app deployed by `slipway deploy`, whose one instance is the anchors' nginx
# backend. Same run as direct / nginx / haproxy / caddy (bench/proxy-anchors.sh).
# Usage: bench/proxy-slipway.sh [seconds] [connections]      (defaults 8 32; SLIPWAY_BIN: target/release/slipway)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${SLIPWAY_BIN:-$ROOT/target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway" >&2; exit 1; }
RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT

cat > "$RUN/start.sh" <<START
set -eu
mkdir -p "$RUN/app"
cat > "$RUN/app/slipway.toml" <<T
app = "bench"
[env]
BACKEND_TEMPLATE = "\$BACKEND_TEMPLATE"
[processes.web]
cmd = "sed s/__PORT__/\\\$PORT/g \\"\\\$BACKEND_TEMPLATE\\" > $RUN/b-\\\$PORT.conf && exec nginx -c $RUN/b-\\\$PORT.conf"
replicas = 1
readiness = { tcp = true, period = "100ms" }
T
"$BIN" serve --threads 1 --state-dir "$RUN/state" --listen 127.0.0.1:19009 >"$RUN/daemon.log" 2>&1 &
echo \$! > "$RUN/daemon.pid"
for _ in \$(seq 200); do [ -S "$RUN/state/slipway.sock" ] && break; sleep 0.05; done
"$BIN" --state-dir "$RUN/state" --config "$RUN/app/slipway.toml" deploy >"$RUN/deploy.log" 2>&1 || { cat "$RUN/deploy.log" >&2; exit 1; }
START
cat > "$RUN/stop.sh" <<STOP
p=\$(cat "$RUN/daemon.pid" 2>/dev/null) || exit 0
kill -TERM \$p 2>/dev/null; for _ in \$(seq 100); do kill -0 \$p 2>/dev/null || exit 0; sleep 0.1; done; kill -KILL \$p
STOP
OURS_CMD="bash $RUN/start.sh" OURS_STOP="bash $RUN/stop.sh" bash "$ROOT/bench/proxy-anchors.sh" "${1:-8}" "${2:-32}"
