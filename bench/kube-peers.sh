#!/usr/bin/env bash
# slipway against Argo Rollouts on the same cluster, in the same run (issue 13): a blue-green of two
# pods of the same image (the demo app), readiness `GET /ready` every second, the deploy being a change
# of one env var (a new pod template each round, so neither side can reuse old pods). Each side switches
# a Service's selector — Argo's `activeService`, slipway's `[kubernetes] service` — and one observer
# (bench/kube_switch_watch.py, watches through `kubectl proxy`) notes when the new pods became Ready and
# when the Service's selector moved to them. Rounds alternate which tool goes first.
#   deploy → switch:   the deploy command's start → the selector on the new pods
#   pods ready:        the deploy command's start → the last new pod Ready (the kubelet's part)
#   reaction:          the last new pod Ready → the switch (the controller's own part; goal ≤ 1 s)
#   API requests:      the controller's requests from the deploy until the old pods are gone, counted in
#                      the API server's audit log by user agent (ci/kube.sh start with SLIPWAY_KUBE_AUDIT=1,
#                      which this script sets when it starts the cluster; without the log: not counted)
# Prints each round and medians, p95 and min–max; the controllers' RSS at the end.
# Needs slipway built with --features kubernetes (SLIPWAY_BIN, default target/release/slipway) and Go
# (Argo Rollouts' controller is built from the Go module proxy into ~/.cache/slipway-kube, once).
# Starts ci/kube.sh and ci/dockerd.sh (and stops them) unless KUBECONFIG and SLIPWAY_TEST_DOCKER_HOST are set.
# Usage: bench/kube-peers.sh [rounds]
set -euo pipefail
ROUNDS=${1:-5}
ARGO=v1.10.1
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
"$BIN" kube rbac >/dev/null 2>&1 || { echo "$BIN is not built with --features kubernetes"; exit 1; }
TRIPLE=x86_64-unknown-linux-gnu
DEMO=target/static/$TRIPLE/debug/slipway-demo-app
[ -x "$DEMO" ] || RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  cargo build -q -p slipway-demo-app --target "$TRIPLE"

# Argo Rollouts' controller: its go.mod pins Kubernetes' staging modules with `replace` lines, which
# `go install` refuses, so a wrapper module repeats them (as ci/kube's does for Kubernetes).
CACHE=${SLIPWAY_KUBE_CACHE:-$HOME/.cache/slipway-kube}/argo-rollouts-$ARGO
if [ ! -x "$CACHE/rollouts-controller" ]; then
  echo "# building Argo Rollouts $ARGO's controller (once, into $CACHE)" >&2
  mkdir -p "$CACHE/src"
  src=$(cd / && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json \
    "github.com/argoproj/argo-rollouts@$ARGO" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  { printf 'module slipway.bench/argo\n\ngo 1.26\n\nrequire github.com/argoproj/argo-rollouts %s\n\n' "$ARGO"
    sed -n '/^replace (/,/^)/p' "$src/go.mod"; } > "$CACHE/src/go.mod"
  (cd "$CACHE/src" && GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    go build -o "$CACHE/rollouts-controller" github.com/argoproj/argo-rollouts/cmd/rollouts-controller)
  mkdir -p "$CACHE/crds"
  cp "$src"/manifests/crds/*-crd.yaml "$CACHE/crds/"
  chmod -R u+w "$CACHE/crds"
fi

W=$(mktemp -d) NS=bench-peers-$$ started=0 argo_pid="" proxy_pid=""
cleanup() {
  local pid
  for pid in "$argo_pid" "$proxy_pid"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
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
  eval "$(SLIPWAY_KUBE_AUDIT=1 ci/kube.sh start)"
fi
AUDIT=$(dirname "$KUBECONFIG")/audit.log
PATH=$SLIPWAY_KUBE_BIN:$PATH
ms() { date +%s%3N; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# The image: the demo app alone, imported into the node (both sides run the same one).
mkdir -p "$W/image"
cp "$DEMO" "$W/image/slipway-demo-app"
printf 'FROM scratch\nCOPY slipway-demo-app /slipway-demo-app\nENV DEMO_BIND=0.0.0.0 DEMO_VERSION=v1\nUSER 1000:1000\nENTRYPOINT ["/slipway-demo-app"]\n' \
  > "$W/image/Dockerfile"
docker -H "$SLIPWAY_TEST_DOCKER_HOST" build -q -t bench-peers:v1 "$W/image" >/dev/null 2>&1
docker -H "$SLIPWAY_TEST_DOCKER_HOST" save -o "$W/image.tar" bench-peers:v1
ci/kube.sh import-image "$W/image.tar" >/dev/null

kubectl create namespace "$NS" >/dev/null
kubectl apply --server-side -f "$CACHE/crds" >/dev/null
for _ in $(seq 600); do
  [ "$(kubectl get crd rollouts.argoproj.io -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ] && break
  sleep 0.1
done
kubectl proxy --port=0 > "$W/proxy.out" 2>&1 &
proxy_pid=$!
for _ in $(seq 200); do grep -q "Starting to serve" "$W/proxy.out" && break; sleep 0.05; done
PROXY="http://$(sed -n 's/.*Starting to serve on \(.*\)/\1/p' "$W/proxy.out")"

# Argo Rollouts: its controller from outside the cluster, this namespace only.
"$CACHE/rollouts-controller" --kubeconfig "$KUBECONFIG" --namespaced --namespace "$NS" \
  --metricsPort 0 --healthzPort 0 --leader-elect=false --loglevel warn > "$W/argo.log" 2>&1 &
argo_pid=$!
rollout() {
  cat <<Y
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: demo}
spec:
  replicas: 2
  revisionHistoryLimit: 1
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
      - name: app
        image: bench-peers:v1
        imagePullPolicy: Never
        env: [{name: ROUND, value: "$1"}, {name: PORT, value: "9000"}]
        ports: [{containerPort: 9000}]
        readinessProbe: {httpGet: {path: /ready, port: 9000}, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3}
        resources: {requests: {memory: 16Mi, cpu: 50m}}
  strategy:
    blueGreen: {activeService: demo-active, autoPromotionEnabled: true, scaleDownDelaySeconds: 3}
---
apiVersion: v1
kind: Service
metadata: {name: demo-active}
spec: {selector: {app: demo}, ports: [{port: 80, targetPort: 9000}]}
Y
}

# slipway: one controller from outside the cluster, the same namespace, its Service `shop-active`.
mkdir -p "$W/app"
config() {
  cat > "$W/app/slipway.toml" <<T
app = "shop"
[env]
ROUND = "$1"
[processes.web]
image = "bench-peers:v1"
replicas = 2
readiness = { http = "/ready", period = "1s", timeout = "1s", failure_threshold = 3 }
[deploy]
strategy = "blue-green"
progress_deadline = "120s"
scale_down_delay = "3s"
[kubernetes]
service = "shop-active"
requests = { memory = "16m", cpus = "0.05" }
T
}
( DOCKER_HOST=$SLIPWAY_TEST_DOCKER_HOST "$BIN" serve --kubernetes --namespace "$NS" --state-dir "$W/state" \
    --listen 127.0.0.1:0 >>"$W/daemon.log" 2>&1 & )
for _ in $(seq 600); do [ -s "$W/state/daemon.pid" ] && [ -s "$W/state/proxy.addr" ] && break; sleep 0.05; done
slipway() { DOCKER_HOST=$SLIPWAY_TEST_DOCKER_HOST "$BIN" --state-dir "$W/state" --config "$W/app/slipway.toml" "$@"; }

# Two pods left, both Ready: the last round's old ones gone.
settled() {
  local selector=$1 n
  for _ in $(seq 1200); do
    n=$(kubectl -n "$NS" get pods -l "$selector" -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c '^ True$' || true)
    total=$(kubectl -n "$NS" get pods -l "$selector" -o name 2>/dev/null | wc -l)
    [ "$n" = 2 ] && [ "$total" = 2 ] && return 0
    sleep 0.1
  done
  echo "pods of $selector did not settle" >&2; return 1
}

ARGO_PODS=app=demo SLIPWAY_PODS=slipway.dev/app=shop
rollout 0 | kubectl -n "$NS" apply -f - >/dev/null
config 0
slipway deploy >/dev/null
settled "$ARGO_PODS"; settled "$SLIPWAY_PODS"

# One deploy, observed: prints "total ready reaction" in ms.
measure() {
  local tool=$1 round=$2 out t0
  out=$W/watch-$tool-$round
  if [ "$tool" = argo ]; then
    python3 bench/kube_switch_watch.py "$PROXY" "$NS" demo-active "$ARGO_PODS" rollouts-pod-template-hash 2 180 > "$out" 2> "$out.err" &
  else
    python3 bench/kube_switch_watch.py "$PROXY" "$NS" shop-active "$SLIPWAY_PODS" slipway.dev/release 2 180 > "$out" 2> "$out.err" &
  fi
  local watcher=$!
  for _ in $(seq 200); do grep -q watching "$out.err" && break; sleep 0.05; done
  t0=$(ms)
  if [ "$tool" = argo ]; then
    kubectl -n "$NS" patch rollout demo --type json \
      -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/env/0/value\",\"value\":\"$round\"}]" >/dev/null
  else
    config "$round"; slipway deploy >/dev/null
  fi
  wait "$watcher" || { cat "$out" "$out.err" >&2; return 1; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); t0=int(sys.argv[2]); print(r["switched_ms"]-t0, r["ready_ms"]-t0, r["switched_ms"]-r["ready_ms"])' "$out" "$t0"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BIN against Argo Rollouts $ARGO; blue-green, 2 pods, readiness every 1 s; $ROUNDS rounds"
# The requests of `tool`'s controller in the audit log after line $2 (one per audit ID), or "-".
requests() {
  [ -r "$AUDIT" ] || { echo -; return; }
  python3 - "$AUDIT" "$2" "$1" <<'PY'
import json, sys
path, skip, tool = sys.argv[1], int(sys.argv[2]), sys.argv[3]
agent = {"argo": "rollouts-controller", "slipway": "slipway/"}[tool]
ids = set()
with open(path) as log:
    for n, line in enumerate(log):
        if n >= skip:
            event = json.loads(line)
            if event.get("userAgent", "").startswith(agent):
                ids.add(event["auditID"])
print(len(ids))
PY
}

echo "round tool deploy→switch_ms pods_ready_ms reaction_ms api_requests"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="argo slipway"; else order="slipway argo"; fi
  for tool in $order; do
    before=$( [ -r "$AUDIT" ] && wc -l < "$AUDIT" || echo 0)
    timing=$(measure "$tool" "$round")
    if [ "$tool" = argo ]; then settled "$ARGO_PODS"; else settled "$SLIPWAY_PODS"; fi
    echo "$round $tool $timing $(requests "$tool" "$before")" | tee -a "$W/results"
  done
done
stats() {  # column $1 of tool $2: median (p95, min–max)
  awk -v t="$2" -v c="$1" '$2 == t {print $c}' "$W/results" | sort -n | awk '
    {v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; p = v[int(NR*0.95 + 0.999)];
      printf "%d ms (p95 %d, %d–%d)", m, p, v[1], v[NR]}'
}
for tool in slipway argo; do
  echo "$tool: deploy→switch $(stats 3 "$tool"); pods ready $(stats 4 "$tool"); reaction $(stats 5 "$tool"); API requests per deploy $(stats 6 "$tool" | sed 's/ ms//')"
done
echo "RSS: slipway's controller $(rss_mb "$(cat "$W/state/daemon.pid")") MB (with its proxy), Argo Rollouts' controller $(rss_mb "$argo_pid") MB"
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
