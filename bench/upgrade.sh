#!/usr/bin/env bash
# The daemon as the weak link (issue 14), in one run:
#   1. UPGRADES upgrades in place (`slipway upgrade`) in a row under wrk: failed requests (socket errors and
#      non-2xx, goal 0), the time each upgrade took (median, p95, min–max), and whether the app's
#      instances are the same processes at the end;
#   2. the listening gap after `kill -9` of the daemon until a restarted one accepts: refused connections
#      and the gap's length, with the daemon binding its own socket, and with the socket held outside it
#      (as systemd's socket activation holds it; goal 0 refused);
#   3. adopting INSTANCES running instances: time from starting a daemon after `kill -9` until it
#      serves (they are all adopted before it accepts), and an upgrade with that many.
# Usage: bench/upgrade.sh [upgrades] [instances]     (SLIPWAY_BIN defaults to target/release/slipway)
set -euo pipefail
UPGRADES=${1:-20} INSTANCES=${2:-100}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing: apt-get install -y python3"; exit 1; }
W=$(mktemp -d)
stop_all() {
  # The daemon of the moment (daemon.pid follows upgrades), then anything its run dir still names.
  local pid
  pid=$(cat "$W/state/daemon.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for f in "$W"/state/run/*.pid; do
    [ -f "$f" ] && kill -KILL "-$(head -n1 "$f")" 2>/dev/null || true
  done
  return 0
}
trap 'stop_all; rm -rf "$W"' EXIT
ms() { date +%s%3N; }
serve() { ( "$BIN" serve --state-dir "$W/state" --listen "${1:-127.0.0.1:0}" >>"$W/daemon.log" 2>&1 & ) }
wait_serving() {
  for _ in $(seq 600); do
    [ -S "$W/state/slipway.sock" ] && [ -s "$W/state/proxy.addr" ] && [ -s "$W/state/daemon.pid" ] && return 0
    sleep 0.05
  done
  echo "the daemon did not start; its log:" >&2; tail -20 "$W/daemon.log" >&2; exit 1
}
# Deploys $1 instances of the demo app, as apps of at most 50 (a process has at most 64 replicas).
app() {
  local left=$1 n=0
  APPS=()
  while [ "$left" -gt 0 ]; do
    n=$((n + 1))
    local count=$(( left > 50 ? 50 : left ))
    left=$((left - count))
    mkdir -p "$W/app$n"
    cat > "$W/app$n/slipway.toml" <<T
app = "bench$n"
[env]
DEMO_VERSION = "v1"
[processes.web]
cmd = "'$BIN' demo-app"
replicas = $count
readiness = { http = "/ready", period = "200ms" }
[deploy]
strategy = "blue-green"
progress_deadline = "300s"
T
    "$BIN" --state-dir "$W/state" --config "$W/app$n/slipway.toml" deploy >/dev/null
    APPS+=("bench$n")
  done
}
pids() {
  for a in "${APPS[@]}"; do
    "$BIN" --state-dir "$W/state" --app "$a" status --json
  done | python3 -c 'import json,sys; d=json.JSONDecoder(); t=sys.stdin.read(); out=[]; i=0
while i < len(t):
    if t[i].isspace(): i += 1; continue
    o, i = d.raw_decode(t, i); out += [x["pid"] for x in o["instances"]]
print(sorted(out))'
}
stats() { # label, then numbers: median, p95, min–max
  local label=$1; shift
  printf '%s\n' "$@" | sort -n | awk -v l="$label" '{v[NR]=$1} END {
    p95 = v[int((NR*95+99)/100)]; printf "%s: median %s, p95 %s, min–max %s–%s (n=%d)\n", l, v[int((NR+1)/2)], p95, v[1], v[NR], NR }'
}
reset() { stop_all; rm -rf "$W/state"; : > "$W/daemon.log"; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BIN"

echo "## 1. $UPGRADES upgrades in a row under wrk (2 instances, wrk -t2 -c16)"
reset; serve; wait_serving; app 2
before=$(pids)
addr=$(cat "$W/state/proxy.addr")
wrk -t2 -c16 -d600s "http://$addr/" > "$W/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 2
times=()
for i in $(seq "$UPGRADES"); do
  t0=$(ms)
  "$BIN" --state-dir "$W/state" upgrade >/dev/null
  times+=($(( $(ms) - t0 )))
  sleep 0.5
done
sleep 1
kill -INT "$wrk_pid"; wait "$wrk_pid" || true
requests=$(awk '/requests in/ {print $1}' "$W/wrk.txt")
errors=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' "$W/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $5}' "$W/wrk.txt")
echo "requests: $requests, socket errors: ${errors:-0}, non-2xx answers: ${non2xx:-0}"
stats "upgrade time (ms, slipway upgrade until the new daemon serves)" "${times[@]}"
[ "$(pids)" = "$before" ] && echo "instances: the same 2 processes before and after" || echo "instances: CHANGED ($before -> $(pids))"

echo "## 2. listening gap after kill -9 until a restarted daemon accepts (5 rounds each)"
python3 - "$BIN" "$W" <<'PY'
import json, os, signal, socket, subprocess, sys, time
BIN, W = sys.argv[1], sys.argv[2]
state = os.path.join(W, "gap-state")
log = open(os.path.join(W, "gap.log"), "ab")
def serve(held, listen="127.0.0.1:0"):
    if held is None:
        return subprocess.Popen([BIN, "serve", "--state-dir", state, "--listen", listen], stdout=log, stderr=log)
    # As systemd passes it: descriptor 3, LISTEN_FDS, LISTEN_PID (the shell's pid, which exec keeps).
    os.set_inheritable(held.fileno(), True)
    return subprocess.Popen(["sh", "-c", f'exec 3<&{held.fileno()}; LISTEN_PID=$$ exec "$0" "$@"', BIN, "serve",
                             "--state-dir", state, "--listen", "127.0.0.1:0"],
                            env=dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="proxy"),
                            pass_fds=[held.fileno()], stdout=log, stderr=log)
def wait_file(path):
    for _ in range(600):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return open(path).read().strip()
        time.sleep(0.05)
    raise SystemExit(f"{path} never appeared")
def get(addr):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 200")
def cleanup():
    # Whatever daemon and instances the run left, by their pid files (each instance leads its group).
    pid = os.path.join(state, "daemon.pid")
    if os.path.exists(pid):
        try: os.kill(int(open(pid).read()), signal.SIGKILL)
        except (OSError, ValueError): pass
    run = os.path.join(state, "run")
    for f in os.listdir(run) if os.path.isdir(run) else []:
        if f.endswith(".pid"):
            try: os.killpg(int(open(os.path.join(run, f)).readline()), signal.SIGKILL)
            except (OSError, ValueError): pass
try:
  for mode in ("own socket", "socket held outside (socket activation)"):
      gaps, refused_all = [], []
      subprocess.run(["rm", "-rf", state])
      held = None
      if mode != "own socket":
          held = socket.socket(); held.bind(("127.0.0.1", 0)); held.listen(4096)
      daemon = serve(held)
      addr = wait_file(os.path.join(state, "proxy.addr"))
      os.makedirs(os.path.join(W, "gap-app"), exist_ok=True)
      with open(os.path.join(W, "gap-app", "slipway.toml"), "w") as f:
          f.write(f'app = "gap"\n[env]\nDEMO_VERSION = "v1"\n[processes.web]\ncmd = "\'{BIN}\' demo-app"\nreplicas = 2\n'
                  'readiness = { http = "/ready", period = "200ms" }\n')
      subprocess.run([BIN, "--state-dir", state, "--config", os.path.join(W, "gap-app", "slipway.toml"), "deploy"],
                     check=True, stdout=subprocess.DEVNULL)
      for _ in range(5):
          os.remove(os.path.join(state, "proxy.addr"))
          daemon.send_signal(signal.SIGKILL); daemon.wait()
          killed = time.monotonic()
          daemon = serve(held, addr)
          refused, first_ok = 0, None
          while first_ok is None and time.monotonic() - killed < 60:
              try:
                  if get(addr):
                      first_ok = time.monotonic()
              except OSError:
                  refused += 1
                  time.sleep(0.002)
          if first_ok is None:
              raise SystemExit(f"{mode}: no answer within 60 s of the restart")
          gaps.append(round((first_ok - killed) * 1000))
          refused_all.append(refused)
      daemon.send_signal(signal.SIGTERM); daemon.wait()
      gaps.sort()
      print(f"{mode}: refused connections per kill -9: {refused_all}; kill -9 to first answer (ms): "
            f"median {gaps[len(gaps)//2]}, min–max {gaps[0]}–{gaps[-1]}")
finally:
  cleanup()
PY

echo "## 3. $INSTANCES instances: adopted after kill -9, and upgraded"
reset; serve; wait_serving; app "$INSTANCES"
before=$(pids)
kill -KILL "$(cat "$W/state/daemon.pid")"
sleep 0.5
rm -f "$W/state/proxy.addr" "$W/state/daemon.pid"
t0=$(ms); serve; wait_serving; adopt=$(( $(ms) - t0 ))
adopted=$(grep -c 'left running by the previous daemon' "$W/daemon.log" || true)
[ "$(pids)" = "$before" ] && same="the same processes" || same="NOT the same processes"
echo "start after kill -9 until serving, $adopted instances adopted ($same): $adopt ms"
t0=$(ms); "$BIN" --state-dir "$W/state" upgrade >/dev/null; up=$(( $(ms) - t0 ))
[ "$(pids)" = "$before" ] && same="the same processes" || same="NOT the same processes"
echo "slipway upgrade with $INSTANCES instances ($same): $up ms"
