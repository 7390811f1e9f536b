#!/usr/bin/env bash
# Controller memory with many apps on Kubernetes (issue 13): APPS apps (default 100) of one pod each —
# the demo app's static binary on `scratch`, imported into the node — deployed 4 at a time by one
# `slipway serve --kubernetes` (from outside the cluster, admin kubeconfig) on ci/kube.sh's one-node
# cluster. Prints the controller's RSS with no app, after each quarter and idle, its CPU while idle
# (IDLE-second windows), and the time to deploy every app.
# Needs slipway built with --features kubernetes (SLIPWAY_BIN, default target/release/slipway). Starts
# ci/kube.sh and ci/dockerd.sh (and stops them) unless KUBECONFIG and SLIPWAY_TEST_DOCKER_HOST are set.
# Usage: bench/kube-many-apps.sh [apps] [idle-seconds]
set -euo pipefail
APPS=${1:-100} IDLE=${2:-20}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
"$BIN" kube rbac >/dev/null 2>&1 || { echo "$BIN is not built with --features kubernetes"; exit 1; }
TRIPLE=x86_64-unknown-linux-gnu
DEMO=target/static/$TRIPLE/debug/slipway-demo-app
[ -x "$DEMO" ] || RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  cargo build -q -p slipway-demo-app --target "$TRIPLE"
W=$(mktemp -d) NS=bench-many-$$ started=0
cleanup() {
  local pid
  pid=$(cat "$W/state/daemon.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1800); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  if [ "$started" = 1 ]; then ci/kube.sh stop >/dev/null 2>&1 || true; ci/dockerd.sh stop >/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
if [ -z "${KUBECONFIG:-}" ] || [ -z "${SLIPWAY_TEST_DOCKER_HOST:-}" ]; then
  started=1
  SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start)
  export SLIPWAY_TEST_DOCKER_HOST
  eval "$(ci/kube.sh start)"
fi
PATH=$SLIPWAY_KUBE_BIN:$PATH
ms() { date +%s%3N; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$(cat "$W/state/daemon.pid")/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$(cat "$W/state/daemon.pid")/stat"; }

# The image: the demo app alone, imported into the node (there is no registry).
mkdir -p "$W/image"
cp "$DEMO" "$W/image/slipway-demo-app"
printf 'FROM scratch\nCOPY slipway-demo-app /slipway-demo-app\nENV DEMO_BIND=0.0.0.0 DEMO_VERSION=v1\nUSER 1000:1000\nENTRYPOINT ["/slipway-demo-app"]\n' \
  > "$W/image/Dockerfile"
docker -H "$SLIPWAY_TEST_DOCKER_HOST" build -q -t bench-many:v1 "$W/image" >/dev/null
docker -H "$SLIPWAY_TEST_DOCKER_HOST" save -o "$W/image.tar" bench-many:v1
ci/kube.sh import-image "$W/image.tar" >/dev/null

kubectl create namespace "$NS" >/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BIN; $APPS apps × 1 pod (the demo app), namespace $NS, one node"
( DOCKER_HOST=$SLIPWAY_TEST_DOCKER_HOST "$BIN" serve --kubernetes --namespace "$NS" --state-dir "$W/state" \
    --listen 127.0.0.1:0 >>"$W/daemon.log" 2>&1 & )
for _ in $(seq 600); do [ -s "$W/state/daemon.pid" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.05; done
echo "controller RSS with no app: $(rss_mb) MB"
for n in $(seq "$APPS"); do
  mkdir -p "$W/k$n"
  cat > "$W/k$n/slipway.toml" <<T
app = "k$n"
[routing]
hosts = ["k$n.test"]
[processes.web]
image = "bench-many:v1"
replicas = 1
readiness = { http = "/ready", period = "10s" }
[deploy]
strategy = "blue-green"
progress_deadline = "600s"
[kubernetes]
requests = { memory = "8m", cpus = "0.005" }
T
done
t0=$(ms)
quarter=$(( (APPS + 3) / 4 ))
for start in $(seq 1 "$quarter" "$APPS"); do
  end=$(( start + quarter - 1 )); [ "$end" -gt "$APPS" ] && end=$APPS
  seq "$start" "$end" | xargs -P 4 -I{} env DOCKER_HOST="$SLIPWAY_TEST_DOCKER_HOST" \
    "$BIN" --state-dir "$W/state" --config "$W/k{}/slipway.toml" deploy >/dev/null
  echo "  $end apps ($end pods) after $(( ($(ms) - t0) / 1000 )) s: controller RSS $(rss_mb) MB"
done
total=$(( $(ms) - t0 ))
running=$(kubectl -n "$NS" get pods --field-selector=status.phase=Running -o name | wc -l)
echo "deployed in $((total / 1000)).$(( total % 1000 / 100 )) s; pods running: $running of $APPS"
hz=$(getconf CLK_TCK)
sleep 5
cpus=()
for _ in 1 2 3; do
  a=$(cpu_ticks); sleep "$IDLE"; b=$(cpu_ticks)
  cpus+=("$(awk -v a="$a" -v b="$b" -v hz="$hz" -v s="$IDLE" 'BEGIN {printf "%.2f", (b-a)*100/hz/s}')")
done
echo "controller CPU idle, % of one core: ${cpus[*]} (sorted: $(printf '%s\n' "${cpus[@]}" | sort -n | tr '\n' ' '))"
echo "controller RSS idle: $(rss_mb) MB; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
