#!/usr/bin/env bash
# A private Kubernetes cluster for slipway's tests, on loopback, with one real node.
#
#   ci/kube.sh build              build the binaries once into the cache (start does it when needed)
#   ci/kube.sh start              start the cluster; prints `export X=...` lines on stdout, the rest on stderr:
#                                   eval "$(ci/kube.sh start)"
#   ci/kube.sh import-image TAR   import an image tarball (`docker save` or OCI) into the node's containerd;
#                                 prints each image as REPO@sha256:DIGEST, which a pod can use as its
#                                 `image` (so can the tag, or the image ID `docker inspect` shows),
#                                 always with imagePullPolicy: Never: nothing can be pulled here
#   ci/kube.sh smoke              check that the node runs a Deployment whose pods answer HTTP on their IPs
#   ci/kube.sh stop               end everything start started (by the PIDs it recorded) and clean up
#
# Test only: nothing of this ships in the product. The Go module in ci/kube/ pins k8s.io/kubernetes and the
# matching k8s.io/* staging modules (its go.mod says why); `build` compiles etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kubectl, a static `pause` and `cri-reset` into
# $SLIPWAY_KUBE_CACHE/<version>/bin (default ~/.cache/slipway-kube), rebuilt only when ci/kube/ changes.
#
# Everything of a running cluster lives in $SLIPWAY_KUBE_DIR (default /tmp/slipway-kube): certificates and
# keys (made with openssl at each start), kubeconfigs, etcd's data, containerd's root/state/socket, the
# kubelet's root, logs, and `pids`. Each start begins from an empty cluster.
#
# Choices, and why (this machine is shared by several builds and may already run other servers):
#   ports              every listener binds 127.0.0.1 on a port found free at start, none fixed; except
#                      the kubelet's API, on the node's address $POD_GATEWAY (our bridge, see network):
#                      a Node's InternalIP may not be a loopback address, and the apiserver reaches the
#                      kubelet (logs, exec) at that IP.
#   TLS                our own CA; admin, controller-manager, scheduler, node and apiserver→kubelet client
#                      certificates; a kubelet serving certificate; a service-account signing key. All
#                      made with openssl at each start; nothing is reused between starts.
#   --endpoint-reconciler-type=none
#                      the apiserver advertises 127.0.0.1, which an Endpoints object may not hold, so it
#                      does not publish itself as the `kubernetes` Service.
#   no kube-proxy      it would write the host's iptables/nftables (and makeIPTablesUtilChains: false keeps
#                      the kubelet from doing so too). So ClusterIP Services do not route; pods are reached
#                      by their IPs (from EndpointSlices), which the host can do. No cluster DNS either.
#   containerd         Debian's containerd (1.6), a PRIVATE instance: own config, root, state, socket and
#                      runc root under $DIR, so a system containerd (if any) is never touched. The kubelet
#                      speaks CRI v1 to it; containerd 1.6 lacks the RuntimeConfig call, so the kubelet
#                      takes the cgroup driver from its own config (an error line in its log, harmless
#                      until Kubernetes 1.38 drops that fallback).
#   oom_score_adj      this VM withholds CAP_SYS_RESOURCE even from root, so containerd runs with
#                      restrict_oom_score_adj (see its config below).
#   cgroups            this VM has cgroup v1 (hybrid, no systemd as PID 1): cgroupfs driver, and
#                      failCgroupV1: false, since the kubelet refuses v1 by default since 1.35. Every pod
#                      cgroup lives under $CGROUP_ROOT, removed by stop.
#   network            CNI bridge + host-local from Debian's containernetworking-plugins, on our own bridge
#                      $BRIDGE with 10.232.0.1/24 (ci/dockerd.sh uses 10.231.0.0/24). We create the bridge
#                      and its address ourselves and run the plugin with isGateway=false and ipMasq=false,
#                      so it never turns on the host's ip_forward nor writes iptables rules: the host
#                      reaches pods directly on the bridge, pods reach the host (10.232.0.1) and each other,
#                      nothing beyond.
#   pause image        no registry here: a static Go `pause` (ci/kube/pause) packed as an image tarball at
#                      start and imported; containerd's sandbox_image points at it.
#   images             two ways onto the node: imported (import-image; pods use imagePullPolicy: Never),
#                      or pushed to the cluster's registry and pulled by the node like on any cluster.
#                      Image GC is off (threshold 100 %) so imported images stay.
#   registry           the CNCF distribution registry ($REGISTRY, built from the Go module proxy into the
#                      cache beside the Kubernetes binaries), on 127.0.0.1 at a free port, storage under
#                      $DIR; plain HTTP, which Docker allows for loopback registries by default and
#                      containerd is told in its hosts.toml. $SLIPWAY_TEST_REGISTRY is its host:port.
#                      A second one wants a login (htpasswd: bcrypt made by Python's crypt, a random
#                      password at each start): $SLIPWAY_TEST_PRIVATE_REGISTRY, $SLIPWAY_TEST_REGISTRY_LOGIN
#                      (user:password) — what an image pull secret would hold. A third wants the same
#                      login through the bearer-token exchange Docker Hub and GHCR use (its token server:
#                      ci/registry_token_server.py, RS256 with an openssl key made at start):
#                      $SLIPWAY_TEST_TOKEN_REGISTRY.
#   Gateway API        its standard CRDs ($GATEWAY_API, from the Go module proxy) are installed, so HTTPRoutes
#                      can be written and read back; no gateway controller runs, so nothing routes them.
#   stop               the kubelet first, then every pod through the CRI (ci/kube/cri-reset: that runs CNI
#                      DEL and removes the pods' network namespaces in /var/run/netns), then the rest by
#                      PID; then mounts under $DIR, the bridge and the cgroups go, and $DIR is removed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MOD="$HERE/kube"
DIR=${SLIPWAY_KUBE_DIR:-/tmp/slipway-kube}
CACHE=${SLIPWAY_KUBE_CACHE:-${HOME:-/root}/.cache/slipway-kube}
BRIDGE=${SLIPWAY_KUBE_BRIDGE:-slipway-kbr0}
POD_SUBNET=${SLIPWAY_KUBE_POD_SUBNET:-10.232.0.0/24}
POD_GATEWAY=${SLIPWAY_KUBE_POD_GATEWAY:-10.232.0.1}
SERVICE_RANGE=${SLIPWAY_KUBE_SERVICE_RANGE:-10.233.0.0/24}
DEADLINE_SECS=${SLIPWAY_KUBE_DEADLINE:-120}
NODE=slipway-node
# The Gateway API CRDs installed at start (HTTPRoute etc.; no gateway controller runs here). The newest
# release whose module Go 1.26 accepts; its zip, from the Go module proxy, holds the CRD manifests.
GATEWAY_API=v1.6.3
# The image registry pods pull from (see "registry" above).
REGISTRY=github.com/distribution/distribution/v3/cmd/registry@v3.1.2
CGROUP_ROOT=/slipway-kube
PAUSE_IMAGE=slipway.test/pause:1
VERSION=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$MOD/go.mod")
BIN="$CACHE/$VERSION/bin"
REGISTRY_BIN="$CACHE/registry-${REGISTRY##*@}/registry"
SOCK="$DIR/containerd/containerd.sock"

die() { echo "ci/kube.sh: $*" >&2; exit 1; }
say() { echo "ci/kube.sh: $*" >&2; }

# --- build ------------------------------------------------------------------------------------------

# The cache key: the module's files and the build step itself, so a change to either rebuilds.
build_key() {
  { cat "$MOD/go.mod" "$MOD/go.sum" "$MOD"/*/main.go; declare -f build; } | sha256sum | cut -c1-32
}

build() {
  command -v go >/dev/null || die "go not found (Go 1.26 is needed to build the cluster)"
  local key
  key=$(build_key)
  if [ "$(cat "$CACHE/$VERSION/key" 2>/dev/null)" = "$key" ] && [ -x "$BIN/kubelet" ]; then
    return
  fi
  say "building Kubernetes $VERSION into $BIN (from nothing: ~12 min on 2 cores)"
  local started=$SECONDS tmp="$CACHE/$VERSION/bin.new"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # One `go build` for all main packages, so shared packages compile once and in parallel.
  # The version the binaries report (kubectl version, the Node's kubeletVersion, /version), which `make`
  # in a Kubernetes checkout would stamp from git; without it they say v0.0.0-master.
  local minor=${VERSION#v1.} ldflags="-s -w" pkg
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags="$ldflags -X $pkg.gitTreeState=clean"
  done
  (cd "$MOD" && go build -buildvcs=false -trimpath -ldflags="$ldflags" -o "$tmp/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl \
    ./cri-reset) >&2
  mv "$tmp/server" "$tmp/etcd" # go names the binary of go.etcd.io/etcd/server/v3 after "server"
  (cd "$MOD" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags='-s -w' -o "$tmp/pause" ./pause) >&2
  rm -rf "$BIN" && mv "$tmp" "$BIN"
  echo "$key" >"$CACHE/$VERSION/key"
  say "built in $((SECONDS - started))s"
}

# The registry: its own small build (~1 min), so a new version of it does not rebuild Kubernetes.
build_registry() {
  [ -x "$REGISTRY_BIN" ] && return
  say "building the image registry ${REGISTRY##*/cmd/} into $REGISTRY_BIN"
  local tmp="${REGISTRY_BIN%/*}.new"
  rm -rf "$tmp" && mkdir -p "$tmp"
  (cd / && GOBIN="$tmp" GOTOOLCHAIN=local go install -trimpath -ldflags='-s -w' "$REGISTRY") >&2
  rm -rf "${REGISTRY_BIN%/*}" && mv "$tmp" "${REGISTRY_BIN%/*}"
}

# --- helpers ----------------------------------------------------------------------------------------

# N free TCP ports on 127.0.0.1: the kernel picks them (bind port 0), all held until all are picked so
# none repeats.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# run NAME CMD...: start a process in the background, log to $DIR/logs/NAME.log, record its PID.
run() {
  local name=$1
  shift
  "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$DIR/pids"
}

pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$DIR/pids" 2>/dev/null; }

# wait_for NAME WHAT CMD...: poll CMD every 0.2 s until it succeeds, for at most $DEADLINE_SECS; fail
# early (with NAME's log) if the process NAME has exited.
wait_for() {
  local name=$1 what=$2 pid deadline=$((SECONDS + DEADLINE_SECS))
  shift 2
  pid=$(pid_of "$name")
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$DIR/logs/$name.log" >&2 || true
      die "$name exited before $what (log above: $DIR/logs/$name.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$DIR/logs/$name.log" >&2 || true
      die "$what: not within ${DEADLINE_SECS}s (log above: $DIR/logs/$name.log)"
    fi
    sleep 0.2
  done
}

kubectl() { "$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" "$@"; }
ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# cert NAME CN [O] [SAN]: an EC key and a certificate signed by our CA, in $DIR/pki.
cert() {
  local name=$1 cn=$2 org=${3:-} san=${4:-} subj ext
  subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  ext="$DIR/pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/pki/$name.key" 2>/dev/null
  openssl req -new -key "$DIR/pki/$name.key" -subj "$subj" -out "$DIR/pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$DIR/pki/$name.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$ext" -out "$DIR/pki/$name.crt" 2>/dev/null
}

# kubeconfig NAME CERT: a kubeconfig for the apiserver with the client certificate CERT.
kubeconfig() {
  cat >"$DIR/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: slipway
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $DIR/pki/$2.crt
    client-key: $DIR/pki/$2.key
contexts:
- name: slipway
  context: {cluster: slipway, user: $2}
current-context: slipway
EOF
}

# image_tar NAME:TAG ROOTFS OUT ENTRYPOINT...: a `docker save`-format tarball of one layer (ROOTFS),
# which `ctr images import` reads. Used for the pause image; tests can use `docker save` instead.
image_tar() {
  local ref=$1 rootfs=$2 out=$3 work layer_sha config config_sha entry
  shift 3
  work=$(mktemp -d)
  tar -C "$rootfs" -cf "$work/layer.tar" .
  layer_sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  entry=$(printf '"%s",' "$@")
  config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[${entry%,}]},"
  config="$config\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer_sha\"]}}"
  printf '%s' "$config" >"$work/config.json"
  config_sha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
  mv "$work/config.json" "$work/$config_sha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$config_sha" "$ref" \
    >"$work/manifest.json"
  tar -C "$work" -cf "$out" manifest.json "$config_sha.json" layer.tar
  rm -rf "$work"
}

import_image() {
  [ -f "${1:-}" ] || die "usage: ci/kube.sh import-image <image tarball from docker save>"
  [ -S "$SOCK" ] || die "the cluster is not running (no $SOCK)"
  local out line ref digest repo
  out=$(ctr_ images import "$1" 2>&1) || { echo "$out" >&2; die "import of $1 failed"; }
  echo "$out" >&2
  # Each line "unpacking docker.io/library/app:1 (sha256:...)...done". containerd's CRI then knows the
  # image by that name and by its image ID (the config digest, = `docker inspect -f {{.Id}}`), but not
  # by repo@digest, which only a pull records: add that name too, so a pod can pin the digest.
  while read -r line; do
    ref=$(echo "$line" | sed -n 's/^unpacking \([^ ]*\) (\(sha256:[0-9a-f]*\)).*/\1/p')
    digest=$(echo "$line" | sed -n 's/^unpacking \([^ ]*\) (\(sha256:[0-9a-f]*\)).*/\2/p')
    [ -n "$ref" ] || continue
    repo=${ref%@*}
    case "${repo##*/}" in *:*) repo=${repo%:*} ;; esac
    ctr_ images tag --force "$ref" "$repo@$digest" >/dev/null
    echo "$repo@$digest"
  done <<<"$out"
}

# smoke: the node really runs pods and they serve. An image made here from busybox-static (no Docker
# needed) is imported and run by a Deployment of 2 replicas with a readiness probe, then each pod's IP is
# fetched from the host. Leaves nothing behind (deletes the Deployment and waits for its pods to go).
smoke() {
  [ -x /bin/busybox ] || die "/bin/busybox not found: apt-get install busybox-static"
  [ -f "$DIR/pids" ] || die "the cluster is not running: ci/kube.sh start"
  local work ref ip ips body deadline
  work=$(mktemp -d)
  mkdir -p "$work/rootfs/bin" "$work/rootfs/www"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  echo "slipway-kube-smoke" >"$work/rootfs/www/index.html"
  image_tar slipway.test/smoke:1 "$work/rootfs" "$work/smoke.tar" /bin/busybox httpd -f -p 8080 -h /www
  ref=$(import_image "$work/smoke.tar")
  rm -rf "$work"
  kubectl apply -f - >&2 <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: slipway-kube-smoke, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: slipway-kube-smoke}}
  template:
    metadata: {labels: {app: slipway-kube-smoke}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: $ref
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
YAML
  kubectl rollout status deployment/slipway-kube-smoke --timeout="${DEADLINE_SECS}s" >&2 ||
    { kubectl describe pods -l app=slipway-kube-smoke >&2; die "smoke: the Deployment did not become ready"; }
  ips=$(kubectl get pods -l app=slipway-kube-smoke -o jsonpath='{.items[*].status.podIP}')
  [ "$(echo "$ips" | wc -w)" = 2 ] || die "smoke: expected 2 pod IPs, got '$ips'"
  for ip in $ips; do
    body=$(curl -sS --max-time 5 "http://$ip:8080/") || die "smoke: GET http://$ip:8080/ failed"
    [ "$body" = "slipway-kube-smoke" ] || die "smoke: GET http://$ip:8080/ answered '$body'"
    say "smoke: pod $ip served $ref"
  done
  kubectl delete deployment slipway-kube-smoke --wait=true >&2
  deadline=$((SECONDS + DEADLINE_SECS))
  while [ -n "$(kubectl get pods -l app=slipway-kube-smoke -o name)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "smoke: pods still there after ${DEADLINE_SECS}s"
    sleep 0.2
  done
  say "smoke: ok"
}

exports() {
  echo "export KUBECONFIG=$DIR/admin.kubeconfig"
  # The apiserver's URL (also in the kubeconfig), for a process given only a token or a certificate.
  echo "export SLIPWAY_KUBE_APISERVER=$(awk '$1 == "server:" { print $2 }' "$DIR/admin.kubeconfig")"
  echo "export SLIPWAY_KUBE_BIN=$BIN"
  echo "export SLIPWAY_KUBE_NODE=$NODE"
  echo "export SLIPWAY_KUBE_CONTAINERD=$SOCK"
  echo "export SLIPWAY_KUBE_POD_SUBNET=$POD_SUBNET"
  echo "export SLIPWAY_TEST_REGISTRY=127.0.0.1:$(cat "$DIR/registry-port")"
  echo "export SLIPWAY_TEST_PRIVATE_REGISTRY=127.0.0.1:$(cat "$DIR/registry-private-port")"
  echo "export SLIPWAY_TEST_REGISTRY_LOGIN=$(cat "$DIR/registry-private/login")"
  echo "export SLIPWAY_TEST_TOKEN_REGISTRY=127.0.0.1:$(cat "$DIR/registry-token-port")"
}

# start_registry NAME PORT [LOGIN [TOKEN_PORT]]: a registry on 127.0.0.1:PORT (with LOGIN user:password,
# one that wants it: checked by the registry itself, or with TOKEN_PORT by a token server there that
# hands out bearer tokens), and containerd's hosts.toml for it (plain HTTP).
start_registry() {
  local name=$1 port=$2 login=${3:-} token_port=${4:-} auth=""
  mkdir -p "$DIR/$name/data" "$DIR/containerd/certs.d/127.0.0.1:$port"
  if [ -n "$token_port" ]; then
    echo "$login" >"$DIR/$name/login"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=slipway-test-tokens \
      -keyout "$DIR/$name/token.key" -out "$DIR/$name/token.crt" 2>/dev/null
    run "$name-tokens" python3 "$HERE/registry_token_server.py" "$token_port" "$DIR/$name/token.key" \
      "$DIR/$name/token.crt" slipway-test-tokens "$name" "$login"
    auth="auth: {token: {realm: \"http://127.0.0.1:$token_port/token\", service: $name, issuer: slipway-test-tokens, rootcertbundle: $DIR/$name/token.crt}}"
    wait_for "$name-tokens" "the token server" curl -sSf -o /dev/null "http://127.0.0.1:$token_port/token"
  elif [ -n "$login" ]; then
    echo "$login" >"$DIR/$name/login"
    python3 -W ignore -c 'import crypt, sys; u, p = sys.argv[1].split(":", 1)
print(u + ":" + crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH)))' "$login" >"$DIR/$name/htpasswd"
    auth="auth: {htpasswd: {realm: slipway-test, path: $DIR/$name/htpasswd}}"
  fi
  cat >"$DIR/$name/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $DIR/$name/data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
$auth
EOF
  # No telemetry exporter: the registry would otherwise try to reach an OTLP collector.
  OTEL_TRACES_EXPORTER=none run "$name" "$REGISTRY_BIN" serve "$DIR/$name/config.yml"
  cat >"$DIR/containerd/certs.d/127.0.0.1:$port/hosts.toml" <<EOF
server = "http://127.0.0.1:$port"
[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve"]
EOF
  echo "$port" >"$DIR/$name-port"
  # /v2/ answers 200, or 401 when it wants a login: either way it serves.
  wait_for "$name" "the registry's /v2/" curl -sS -o /dev/null "http://127.0.0.1:$port/v2/"
}

# --- start ------------------------------------------------------------------------------------------

start() {
  [ "$(id -u)" = 0 ] || die "must run as root (the kubelet and containerd need it)"
  for tool in openssl python3 containerd containerd-shim-runc-v2 runc ctr ip; do
    command -v "$tool" >/dev/null || die "$tool not found: apt-get install containerd runc iproute2 openssl"
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
    die "CNI plugins not found in /usr/lib/cni: apt-get install containernetworking-plugins"
  build
  build_registry
  if [ -f "$DIR/pids" ] && kubectl get --raw /readyz >/dev/null 2>&1; then
    say "already running"
    install_gateway_api
    exports
    return
  fi
  [ -f "$DIR/pids" ] && { say "stale state in $DIR: stopping it first"; stop; }
  cleanup_state
  mkdir -p "$DIR"/{pki,logs,etcd,containerd,kubelet,pod-logs,cni/net.d,cni/ipam}
  : >"$DIR/pids"
  # A start that fails stops what it had started, keeping the logs (stop removes $DIR) in $DIR.logs.
  trap 'if [ $? -ne 0 ]; then rm -rf "$DIR.logs"; cp -r "$DIR/logs" "$DIR.logs" 2>/dev/null;
    say "start failed: stopping what it started; logs kept in $DIR.logs"; stop; fi' EXIT
  local started=$SECONDS

  local etcd_port etcd_peer_port kcm_port sched_port kubelet_port kubelet_healthz registry_port
  local private_port token_registry_port token_port login
  read -r etcd_port etcd_peer_port API_PORT kcm_port sched_port kubelet_port kubelet_healthz \
    registry_port private_port token_registry_port token_port < <(free_ports 11)
  start_registry registry "$registry_port"
  login="slipway-test:$(openssl rand -hex 16)"
  start_registry registry-private "$private_port" "$login"
  start_registry registry-token "$token_registry_port" "$login" "$token_port"

  # Keys and certificates.
  openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/pki/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$DIR/pki/ca.key" -subj /CN=slipway-kube-ca -days 30 \
    -out "$DIR/pki/ca.crt" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/pki/sa.key" 2>/dev/null
  openssl ec -in "$DIR/pki/sa.key" -pubout -out "$DIR/pki/sa.pub" 2>/dev/null
  cert apiserver kube-apiserver "" "IP:127.0.0.1,DNS:localhost,IP:${SERVICE_RANGE%.0/*}.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  cert admin slipway-admin system:masters
  cert kcm system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert node "system:node:$NODE" system:nodes
  cert apiserver-kubelet kube-apiserver-kubelet-client system:masters
  cert kubelet-serving "$NODE" "" "IP:$POD_GATEWAY,IP:127.0.0.1,DNS:$NODE"
  kubeconfig admin admin
  kubeconfig kcm kcm
  kubeconfig scheduler scheduler
  kubeconfig node node

  # --unsafe-no-fsync: a throwaway cluster, so no fsync per write (which is most of etcd's latency).
  run etcd "$BIN/etcd" --name slipway --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "slipway=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync --log-level warn
  # SLIPWAY_KUBE_AUDIT=1: every request's metadata (verb, resource, user agent) in $DIR/audit.log, so
  # a bench can count each controller's requests (bench/kube-peers.sh). Off by default: it costs the
  # apiserver a write per request.
  local audit=()
  if [ "${SLIPWAY_KUBE_AUDIT:-}" = 1 ]; then
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived"]\nrules:\n- level: Metadata\n' \
      >"$DIR/audit-policy.yaml"
    audit=(--audit-policy-file "$DIR/audit-policy.yaml" --audit-log-path "$DIR/audit.log"
      --audit-log-maxsize 200 --audit-log-maxbackup 1)
  fi
  run kube-apiserver "$BIN/kube-apiserver" "${audit[@]}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --etcd-servers "http://127.0.0.1:$etcd_port" --cert-dir "$DIR/pki/apiserver-generated" \
    --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
    --client-ca-file "$DIR/pki/ca.crt" --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$DIR/pki/sa.pub" --service-account-signing-key-file "$DIR/pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_RANGE" --endpoint-reconciler-type none \
    --kubelet-client-certificate "$DIR/pki/apiserver-kubelet.crt" \
    --kubelet-client-key "$DIR/pki/apiserver-kubelet.key" \
    --kubelet-certificate-authority "$DIR/pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --profiling=false
  wait_for kube-apiserver "the apiserver's /readyz" kubectl get --raw /readyz
  say "apiserver ready on https://127.0.0.1:$API_PORT after $((SECONDS - started))s"

  run kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$DIR/kcm.kubeconfig" \
    --authentication-kubeconfig "$DIR/kcm.kubeconfig" --authorization-kubeconfig "$DIR/kcm.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --cert-dir "$DIR/pki/kcm-generated" \
    --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$DIR/pki/sa.key" --root-ca-file "$DIR/pki/ca.crt" \
    --cluster-signing-cert-file "$DIR/pki/ca.crt" --cluster-signing-key-file "$DIR/pki/ca.key" \
    --profiling=false
  run kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --cert-dir "$DIR/pki/scheduler-generated" \
    --leader-elect=false --profiling=false

  start_node "$kubelet_port" "$kubelet_healthz"

  # Pods in a namespace need its `default` ServiceAccount, which the controller-manager creates.
  wait_for kube-controller-manager "the default ServiceAccount" kubectl get serviceaccount default
  wait_for kubelet "node $NODE Ready" \
    kubectl wait --for=condition=Ready "node/$NODE" --timeout=1s
  install_gateway_api
  trap - EXIT
  say "cluster ready after $((SECONDS - started))s (logs: $DIR/logs)"
  exports
}

# The Gateway API's standard CRDs (GatewayClass, Gateway, HTTPRoute, ReferenceGrant), from the module
# sigs.k8s.io/gateway-api (downloaded once into Go's module cache), applied server-side: idempotent.
install_gateway_api() {
  local dir crds=() kind
  dir=$(cd / && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') ||
    die "cannot download sigs.k8s.io/gateway-api@$GATEWAY_API from the Go module proxy"
  for kind in gatewayclasses gateways httproutes referencegrants; do
    crds+=(-f "$dir/config/crd/standard/gateway.networking.k8s.io_$kind.yaml")
  done
  kubectl apply --server-side --force-conflicts "${crds[@]}" >&2
  kubectl wait --for=condition=Established --timeout="${DEADLINE_SECS}s" \
    crd/httproutes.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io >&2
  say "Gateway API $GATEWAY_API CRDs installed (no gateway controller)"
}

start_node() {
  local kubelet_port=$1 kubelet_healthz=$2
  # Our bridge, with its address, made here (see the header: no ip_forward, no iptables).
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$POD_GATEWAY/${POD_SUBNET#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  cat >"$DIR/cni/net.d/10-slipway.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "slipway-kube",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": false,
    "ipam": {"type": "host-local", "dataDir": "$DIR/cni/ipam",
             "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]]}
  }]
}
EOF
  cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$DIR/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # This VM withholds CAP_SYS_RESOURCE even from root (CapBnd lacks bit 24), so no process may lower an
  # oom_score_adj; the kubelet asks -998 for every sandbox and runc then fails with "failed to update
  # /proc/self/oom_score_adj: Permission denied". Restricted, containerd never goes below its own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$DIR/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$DIR/containerd/runc"
EOF
  run containerd containerd --config "$DIR/containerd/config.toml"
  wait_for containerd "containerd's socket" ctr --address "$SOCK" version

  # The pause image: a static binary in an otherwise empty image.
  local rootfs="$DIR/pause-rootfs"
  mkdir -p "$rootfs"
  cp "$BIN/pause" "$rootfs/pause"
  image_tar "$PAUSE_IMAGE" "$rootfs" "$DIR/pause.tar" /pause
  ctr_ images import "$DIR/pause.tar" >&2
  rm -rf "$rootfs" "$DIR/pause.tar"

  cat >"$DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $POD_GATEWAY
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
tlsCertFile: $DIR/pki/kubelet-serving.crt
tlsPrivateKeyFile: $DIR/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
podLogsDir: $DIR/pod-logs
resolvConf: ""
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
enableServer: true
# No KUBE-FIREWALL / KUBE-KUBELET-CANARY chains in the host's iptables: they are there for kube-proxy,
# which we do not run, and the host's tables are not ours.
makeIPTablesUtilChains: false
EOF
  # The kubelet wants its cgroup root to exist in every (v1) hierarchy; a cpuset child starts with no
  # CPUs nor memory nodes, so it gets its parent's.
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h${CGROUP_ROOT#/}"
  done
  if [ -f /sys/fs/cgroup/cpuset/cpuset.cpus ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.mems"
  fi
  run kubelet "$BIN/kubelet" --config "$DIR/kubelet.yaml" --kubeconfig "$DIR/node.kubeconfig" \
    --root-dir "$DIR/kubelet" --cert-dir "$DIR/kubelet/pki" \
    --hostname-override "$NODE" --node-ip "$POD_GATEWAY"
}

# --- stop -------------------------------------------------------------------------------------------

# stop_pids NAME...: TERM the recorded processes NAME... together, wait (30 s at most) until all exited.
stop_pids() {
  local name pid pids=()
  for name in "$@"; do
    pid=$(pid_of "$name")
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  local deadline=$((SECONDS + 30)) alive
  while :; do
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ ${#alive[@]} -gt 0 ] || return 0
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.1
  done
  say "still running after 30s: pid ${alive[*]} ($*): KILL"
  kill -KILL "${alive[@]}" 2>/dev/null || true
  for _ in $(seq 1 50); do
    sleep 0.1
    for pid in "${alive[@]}"; do kill -0 "$pid" 2>/dev/null && continue 2; done
    return 0
  done
  die "pid ${alive[*]} did not exit"
}

# Mounts, bridge and cgroups that start made, so an unclean exit leaves nothing behind either.
cleanup_state() {
  local m
  case "$DIR" in /*/*) ;; *) die "SLIPWAY_KUBE_DIR=$DIR: refusing to clean a top-level directory" ;; esac
  # Deepest first: containerd's overlay mounts, shm, and the kubelet's pod volumes all live under $DIR.
  for m in $(awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE"
  fi
  local h
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$h${CGROUP_ROOT#/}" ] || continue
    find "$h${CGROUP_ROOT#/}" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$DIR"
}

stop() {
  [ -f "$DIR/pids" ] || { say "not running"; cleanup_state; return; }
  stop_pids kubelet
  # With the kubelet gone, stop and remove every pod through the CRI: that kills the containers and
  # runs CNI DEL (veth and network namespace gone, IP released).
  if [ -n "$(pid_of containerd)" ] && kill -0 "$(pid_of containerd)" 2>/dev/null; then
    "$BIN/cri-reset" "unix://$SOCK" || say "cri-reset failed; cleaning up anyway"
  fi
  stop_pids kube-scheduler kube-controller-manager containerd
  # Should cri-reset have failed, end what containerd started and left running (its shims and their
  # containers' first processes), by the PIDs written in containerd's state directory.
  local f pid
  for f in "$DIR"/containerd/state/io.containerd.runtime.v2.task/*/*/{init,shim}.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && say "killed leftover pid $pid ($f)"
  done
  stop_pids kube-apiserver registry registry-private registry-token registry-token-tokens
  stop_pids etcd
  cleanup_state
  say "stopped"
}

case "${1:-}" in
  build) build; build_registry ;;
  start) start ;;
  stop) stop ;;
  import-image) import_image "${2:-}" ;;
  smoke) smoke ;;
  *) die "usage: ci/kube.sh build|start|stop|smoke|import-image <tarball>" ;;
esac
