#!/usr/bin/env bash
# What sending the app folder costs a deploy over TCP: `slipway deploy --detach` (returns once the
# release is frozen, recorded and its rollout started) with the folder uploaded, against
# `--no-upload` (the daemon reads the same folder at the same path), alternating, ROUNDS each, for a
# folder of FILES files of text (~4 KiB each) plus a node_modules the upload leaves out. Then the
# state database after those deploys, raw and at gzip level 1 (the level the Kubernetes state copy
# uses).
# Usage: bench/upload.sh [rounds] [files]     (SLIPWAY_BIN defaults to target/release/slipway)
# ALL_NEW=1: every deploy changes every file (a first deploy, or rebuilt assets), so every file is a
# new blob; by default one file changes per deploy.
set -euo pipefail
ROUNDS=${1:-10} FILES=${2:-2000}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
W=$(mktemp -d)
stop_all() {
  local pid
  pid=$(cat "$W/state/daemon.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  return 0
}
trap 'stop_all; rm -rf "$W"' EXIT
ms() { date +%s%3N; }

mkdir -p "$W/app/src" "$W/app/node_modules/big"
python3 - "$W/app" "$FILES" <<'PY'
import os, random, sys
root, files = sys.argv[1], int(sys.argv[2])
random.seed(7)
words = [f"w{i}" for i in range(5000)]
for i in range(files):
    d = os.path.join(root, "src", f"d{i % 50}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.txt"), "w") as f:
        f.write(" ".join(random.choice(words) for _ in range(700)))
with open(os.path.join(root, "node_modules", "big", "blob.bin"), "wb") as f:
    f.write(os.urandom(32 << 20))
PY
cat >"$W/app/slipway.toml" <<EOF
app = "shop"

[processes.web]
cmd = "'$BIN' demo-app"
replicas = 1
readiness = { http = "/ready", period = "100ms" }

[deploy]
strategy = "recreate"
EOF

( "$BIN" serve --state-dir "$W/state" --listen 127.0.0.1:0 --api 127.0.0.1:0 >>"$W/daemon.log" 2>&1 & )
for _ in $(seq 600); do [ -s "$W/state/api.addr" ] && [ -s "$W/state/api-token" ] && break; sleep 0.05; done
export SLIPWAY_SERVER="http://$(cat "$W/state/api.addr")" SLIPWAY_TOKEN=$(cat "$W/state/api-token")
export SLIPWAY_STATE_DIR=/nonexistent

settled() {
  for _ in $(seq 600); do
    "$BIN" --config "$W/app/slipway.toml" status --json | python3 -c \
      'import json,sys; sys.exit(0 if json.load(sys.stdin)["rollout"] is None else 1)' && return 0
    sleep 0.1
  done
  echo "the rollout did not end" >&2; exit 1
}
deploy() {
  local started
  echo "r$RANDOM" >"$W/app/src/changed.txt"
  if [ -n "${ALL_NEW:-}" ]; then
    python3 - "$W/app/src" "$RANDOM" <<'PY'
import os, sys
for d, _, names in os.walk(sys.argv[1]):
    for n in names:
        with open(os.path.join(d, n), "r+") as f:
            f.write(sys.argv[2].rjust(8))  # the first 8 bytes: every file's content is new
PY
  fi
  started=$(ms)
  "$BIN" --config "$W/app/slipway.toml" deploy --detach "$@" >"$W/out" 2>&1 || { cat "$W/out"; exit 1; }
  echo $(($(ms) - started))
  settled
}
deploy >/dev/null # the first release, so every measured one replaces another
: >"$W/upload" ; : >"$W/path"
for r in $(seq "$ROUNDS"); do
  deploy >>"$W/upload"
  deploy --no-upload >>"$W/path"
done
sent=$(grep -o 'sent the app folder: .*' "$W/out" || true)
[ -n "$sent" ] || { "$BIN" --config "$W/app/slipway.toml" deploy --detach >"$W/out"; sent=$(grep -o 'sent the app folder: .*' "$W/out"); }
stats() {
  sort -n "$1" | awk -v name="$2" '{ v[NR] = $1 } END {
    p95 = v[int((NR * 95 + 99) / 100)]
    printf "%-10s median %5d ms  p95 %5d ms  min-max %d-%d ms  (%d deploys)\n", name, v[int((NR + 1) / 2)], p95, v[1], v[NR], NR }'
}
echo "deploy --detach over TCP, $FILES files + 32 MiB node_modules (left out), $(date -u '+%F %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "upload: $sent"
stats "$W/upload" "upload"
stats "$W/path" "no-upload"
settled
db="$W/state/slipway.db"
raw=$(python3 - "$db" <<'PY'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1])
out = sys.argv[1] + ".copy"
dst = sqlite3.connect(out)
src.backup(dst)
dst.close()
print(out)
PY
)
echo "state after $((ROUNDS * 2 + 2)) deploys: $(stat -c %s "$raw") bytes, gzip -1 $(gzip -1 -c "$raw" | wc -c) bytes"
