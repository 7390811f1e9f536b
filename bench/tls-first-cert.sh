#!/usr/bin/env bash
# Time from a new host's first request to an answer over a valid certificate (issue 12): on-demand TLS
# against pebble (Debian's ACME test server, validating at once: PEBBLE_VA_NOSLEEP). Each of HOSTS new
# names is requested once with curl, which verifies the chain against pebble's root; the time covers the
# daemon asking its `ask` URL, the ACME order (HTTP-01 answered by the daemon's proxy), issuance, and the
# handshake and request. Then the same names again, now with their certificates. Then the same with
# Caddy's on-demand TLS (Debian's caddy 2.6, GOMAXPROCS=1), same pebble, same ports, same ask URL.
# Usage: bench/tls-first-cert.sh [hosts]   (SLIPWAY_BIN defaults to target/release/slipway)
set -euo pipefail
HOSTS=${1:-5}
cd "$(dirname "$0")/.."
BIN=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")
[ -x "$BIN" ] || { echo "build first: cargo build --release -p slipway"; exit 1; }
for tool in pebble pebble-challtestsrv curl openssl python3; do
  command -v $tool >/dev/null || { echo "$tool is missing (apt-get install -y pebble curl openssl python3)"; exit 1; }
done
W=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$W/state/daemon.pid" ] && kill -TERM "$(cat "$W/state/daemon.pid")" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1; rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(free_port) TLS=$(free_port) PEB=$(free_port) MGMT=$(free_port) DNS=$(free_port) ASK=$(free_port) CTS=$(free_port)

# pebble's own API certificate (a CA certificate would not do as a server's own for rustls).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -addext basicConstraints=critical,CA:FALSE \
  -keyout "$W/api.key" -out "$W/api.pem" 2>/dev/null
cat > "$W/pebble.json" <<J
{"pebble": {"listenAddress": "127.0.0.1:$PEB", "managementListenAddress": "127.0.0.1:$MGMT",
  "certificate": "$W/api.pem", "privateKey": "$W/api.key", "httpPort": $HTTP, "tlsPort": $TLS,
  "ocspResponderURL": "", "externalAccountBindingRequired": false, "domainBlocklist": [],
  "certificateValidityPeriod": 3600}}
J
pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$DNS" -http01 "" -https01 "" \
  -tlsalpn01 "" -management "127.0.0.1:$CTS" >"$W/cts.log" 2>&1 & pids+=($!)
PEBBLE_VA_NOSLEEP=1 pebble -config "$W/pebble.json" -dnsserver "127.0.0.1:$DNS" >"$W/pebble.log" 2>&1 & pids+=($!)
# The operator's ask endpoint: approves every name.
python3 -c "
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '0'); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', $ASK), H).serve_forever()" & pids+=($!)
for _ in $(seq 100); do curl -sf --cacert "$W/api.pem" "https://127.0.0.1:$PEB/dir" >/dev/null && break; sleep 0.1; done

"$BIN" serve --state-dir "$W/state" --listen "127.0.0.1:$HTTP" --tls-listen "127.0.0.1:$TLS" \
  --acme-email ops@bench.test --acme-directory "https://127.0.0.1:$PEB/dir" --acme-ca-root "$W/api.pem" \
  --on-demand-ask "http://127.0.0.1:$ASK/check" >"$W/daemon.log" 2>&1 &
for _ in $(seq 300); do [ -S "$W/state/slipway.sock" ] && [ -s "$W/state/proxy-tls.addr" ] && break; sleep 0.1; done
mkdir -p "$W/app"
cat > "$W/app/slipway.toml" <<T
app = "bench"
[processes.web]
cmd = "'$BIN' demo-app"
replicas = 1
readiness = { http = "/ready", period = "100ms" }
T
"$BIN" --state-dir "$W/state" --config "$W/app/slipway.toml" deploy >/dev/null
curl -sf --cacert "$W/api.pem" "https://127.0.0.1:$MGMT/roots/0" > "$W/root.pem"

ms() { date +%s%3N; }
get() { curl -sf --max-time 60 --cacert "$W/root.pem" --resolve "$1:$TLS:127.0.0.1" "https://$1:$TLS/" >/dev/null; }
stats() {
  local label=$1; shift
  printf '%s\n' "$@" | sort -n | awk -v l="$label" '{v[NR]=$1} END {
    printf "%s: median %s ms, min–max %s–%s ms (n=%d)\n", l, v[int((NR+1)/2)], v[1], v[NR], NR }'
}
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BIN"
first=() again=()
for i in $(seq "$HOSTS"); do
  t0=$(ms); get "new$i.bench.test" || { echo "new$i.bench.test: no valid answer"; tail -5 "$W/daemon.log"; exit 1; }
  first+=($(( $(ms) - t0 )))
done
for i in $(seq "$HOSTS"); do
  t0=$(ms); get "new$i.bench.test"; again+=($(( $(ms) - t0 )))
done
stats "slipway: first request to a new host (ask + ACME order + issuance + request)" "${first[@]}"
stats "slipway: the next request to it (certificate in place, new connection)" "${again[@]}"

command -v caddy >/dev/null || { echo "caddy is not installed (apt-get install -y caddy): no comparison"; exit 0; }
# Caddy on the same ports (pebble validates there): slipway stops first.
kill -TERM "$(cat "$W/state/daemon.pid")"
for _ in $(seq 100); do [ -f "$W/state/daemon.pid" ] && kill -0 "$(cat "$W/state/daemon.pid")" 2>/dev/null || break; sleep 0.1; done
rm -f "$W/state/daemon.pid"
APP=$(free_port)
PORT=$APP "$BIN" demo-app >"$W/app.log" 2>&1 & pids+=($!)
cat > "$W/Caddyfile" <<C
{
  admin off
  http_port $HTTP
  https_port $TLS
  email ops@bench.test
  acme_ca https://127.0.0.1:$PEB/dir
  acme_ca_root $W/api.pem
  storage file_system $W/caddy-data
  skip_install_trust
  on_demand_tls {
    ask http://127.0.0.1:$ASK/check
  }
}
https:// {
  tls {
    on_demand
  }
  reverse_proxy 127.0.0.1:$APP
}
C
( HOME=$W GOMAXPROCS=1 exec caddy run --config "$W/Caddyfile" --adapter caddyfile >"$W/caddy.log" 2>&1 ) & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HTTP/" && break; sleep 0.1; done
curl -sI "http://127.0.0.1:$HTTP/" | grep -qi '^server: caddy' || { echo "caddy is not the one answering"; tail -5 "$W/caddy.log"; exit 1; }
cfirst=() cagain=()
for i in $(seq "$HOSTS"); do
  t0=$(ms); get "caddy$i.bench.test" || { echo "caddy$i.bench.test: no valid answer"; tail -5 "$W/caddy.log"; exit 1; }
  cfirst+=($(( $(ms) - t0 )))
done
for i in $(seq "$HOSTS"); do
  t0=$(ms); get "caddy$i.bench.test"; cagain+=($(( $(ms) - t0 )))
done
stats "caddy: first request to a new host" "${cfirst[@]}"
stats "caddy: the next request to it" "${cagain[@]}"
