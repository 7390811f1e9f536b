#!/usr/bin/env bash
# History retention over many deploys, in one run: two daemons side by side, deployed to alternately
# with the same cheap app (the bundled demo app, one instance, recreate) — one pruning with a small
# policy, one keeping everything (every limit out of reach). Every SAMPLE deploys it prints, for each,
# the state database's size (slipway.db + its -wal), the daemon's RSS, and the rows of the tables that
# grow (events, rollouts); at the end, how much each grew over the second half of the run.
# Usage: bench/retention.sh [deploys] [sample-every]    (SLIPWAY_BIN defaults to target/release/slipway)
set -euo pipefail
N=${1:-1000} SAMPLE=${2:-100}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing (it counts the rows): apt-get install -y python3"; exit 1; }
W=$(mktemp -d)
stop() {
  local pid_file=$1
  [ -f "$pid_file" ] || return 0
  kill -TERM "$(cat "$pid_file")" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$(cat "$pid_file")" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pid_file"
}
cleanup() { stop "$W/pruned.pid"; stop "$W/kept.pid"; rm -rf "$W"; }
trap cleanup EXIT

# pruned: what a small installation might choose; kept: nothing is ever old or many enough.
declare -A POLICY=(
  [pruned]="--keep-events 500 --keep-rollouts 50 --keep-audit 500 --prune-every 5s"
  [kept]="--keep-events 1000000000 --keep-events-for 100000days --keep-rollouts 1000000000 --keep-rollouts-for 100000days --keep-audit 1000000000 --keep-audit-for 100000days"
)
for d in pruned kept; do
  mkdir -p "$W/$d/app"
  # shellcheck disable=SC2086
  "$BIN" serve --state-dir "$W/$d/state" --listen 127.0.0.1:0 ${POLICY[$d]} >"$W/$d/daemon.log" 2>&1 &
  echo $! > "$W/$d.pid"
done
for d in pruned kept; do
  for _ in $(seq 300); do [ -S "$W/$d/state/slipway.sock" ] && break; sleep 0.1; done
done
write_app() {
  cat > "$W/$1/app/slipway.toml" <<T
app = "soak"
[env]
DEMO_VERSION = "$2"
[processes.web]
cmd = "'$BIN' demo-app"
replicas = 1
readiness = { http = "/ready", period = "100ms" }
grace = "5s"
[deploy]
strategy = "recreate"
T
}
sample() {
  local d=$1 db="$W/$1/state/slipway.db"
  local bytes wal rss rows
  bytes=$(stat -c %s "$db")
  wal=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$W/$d.pid")/status")
  rows=$(python3 - "$db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
print(*(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("events", "rollouts")))
PY
)
  echo "$bytes $wal $rss $rows"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $N deploys to each daemon, alternately; $BIN"
echo "# pruned: ${POLICY[pruned]}"
echo "# kept: every limit out of reach"
printf '%8s | %-51s | %-51s\n' "" "pruned" "kept"
printf '%8s |%s |%s\n' deploys "$(printf ' %8s' "db KB" "wal KB" "rss MB" events rollouts)" \
  "$(printf ' %8s' "db KB" "wal KB" "rss MB" events rollouts)"
declare -A HALF LAST
start=$(date +%s)
for i in $(seq 1 "$N"); do
  for d in pruned kept; do
    write_app "$d" "v$i"
    "$BIN" --state-dir "$W/$d/state" --config "$W/$d/app/slipway.toml" deploy >/dev/null \
      || { echo "deploy $i to $d failed; its log:"; tail -20 "$W/$d/daemon.log"; exit 1; }
  done
  if (( i % SAMPLE == 0 || i == 1 )); then
    line=$(printf '%8d |' "$i")
    for d in pruned kept; do
      read -r bytes wal rss events rollouts < <(sample "$d")
      line+=$(printf ' %8d %8d %8.1f %8d %8d |' $((bytes / 1024)) $((wal / 1024)) "$(echo "$rss / 1024" | bc -l)" "$events" "$rollouts")
      LAST[$d]="$bytes $rss"
      (( i <= N / 2 )) && HALF[$d]="$bytes $rss"
    done
    echo "${line% |}"
  fi
done
echo "# $((N * 2)) deploys in $(( $(date +%s) - start )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for d in pruned kept; do
  read -r b0 r0 <<<"${HALF[$d]}"; read -r b1 r1 <<<"${LAST[$d]}"
  echo "# $d, over the second half of the run: slipway.db $(( (b1 - b0) / 1024 )) KB, rss $(( (r1 - r0) / 1024 )) MB"
done
# Where the bytes are at the end: the biggest tables and indexes (SQLite's dbstat).
for d in pruned kept; do
  python3 - "$W/$d/state/slipway.db" "$d" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
try:
    rows = c.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 4").fetchall()
    print(f"# {sys.argv[2]}, biggest: " + ", ".join(f"{n} {b // 1024} KB" for n, b in rows))
except sqlite3.OperationalError as e:
    print(f"# {sys.argv[2]}: no per-table sizes ({e})")
PY
done
