#!/usr/bin/env bash
# HTTPS through slipway vs nginx, HAProxy and Caddy, same certificate, same tiny backend (nginx answering "ok"), one worker
# each, in one run: new TLS connections a second, full and resumed (openssl s_time, one request each),
# keep-alive HTTP/1.1 requests/s and p99 (wrk), HTTP/2 requests/s (h2load), and the ratios.
# Usage: bench/tls.sh [seconds] [connections]
# Env SLIPWAY: the binary to measure (default: target/release/slipway; build it with
#   `cargo build --release -p slipway` first — a debug build measures the debug build).
set -u
D=${1:-8} C=${2:-32}
SLIPWAY=${SLIPWAY:-$(cd "$(dirname "$0")/.." && pwd)/target/release/slipway}
. "$(dirname "$0")/lib.sh"   # ticks
W=$(mktemp -d)
cleanup() {
  [ -f $W/slipway.pid ] && kill -TERM $(cat $W/slipway.pid) 2>/dev/null && sleep 1
  for p in $W/*.pidf; do [ -f "$p" ] && kill $(cat $p) 2>/dev/null; done
  rm -rf $W
}
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout $W/key.pem -out $W/cert.pem 2>/dev/null
cat > $W/backend.tpl <<B
worker_processes 1; daemon off; pid $W/nb-__PORT__.pidf; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:__PORT__; keepalive_requests 1000000; location / { return 200 "ok\n"; } } }
B
sed s/__PORT__/19100/g $W/backend.tpl > $W/backend.conf
cat > $W/nginx.conf <<B
worker_processes 1; daemon off; pid $W/np.pidf; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; upstream b { server 127.0.0.1:19100; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:19101 ssl http2; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; keepalive_requests 1000000;
    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
B
( exec nginx -c $W/backend.conf >/dev/null 2>&1 ) &
( exec nginx -c $W/nginx.conf >$W/nginx.log 2>&1 ) &
# HAProxy: one thread, the same certificate (cert and key in one file, as it reads them), h2 by ALPN.
cat $W/cert.pem $W/key.pem > $W/combined.pem
cat > $W/haproxy.cfg <<B
global
  nbthread 1

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend f
  bind 127.0.0.1:19104 ssl crt $W/combined.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2
  default_backend b
backend b
  server s1 127.0.0.1:19100
B
if command -v haproxy >/dev/null; then ( exec haproxy -db -f $W/haproxy.cfg >$W/haproxy.log 2>&1 ) & echo $! > $W/haproxy.pidf; fi
# Caddy (Debian's 2.6): GOMAXPROCS=1, the same certificate, h2 and http/1.1 by ALPN.
cat > $W/Caddyfile <<B
{
  admin off
  auto_https off
  storage file_system $W/caddy-data
}
https://127.0.0.1:19105 {
  tls $W/cert.pem $W/key.pem
  reverse_proxy 127.0.0.1:19100
}
B
if command -v caddy >/dev/null; then
  ( HOME=$W GOMAXPROCS=1 exec caddy run --config $W/Caddyfile --adapter caddyfile >$W/caddy.log 2>&1 ) & echo $! > $W/caddy.pidf
fi
# slipway: one worker thread, the same backend as its one instance, the same certificate as fallback.
mkdir -p $W/app $W/state && chmod 700 $W/state
cat > $W/app/slipway.toml <<T
app = "bench"
[processes.web]
cmd = "sh -c 'sed s/__PORT__/\$PORT/g $W/backend.tpl > $W/b-\$PORT.conf && exec nginx -c $W/b-\$PORT.conf'"
replicas = 1
readiness = { tcp = true, period = "100ms" }
T
( exec "$SLIPWAY" serve --threads 1 --state-dir $W/state --listen 127.0.0.1:19102 --tls-listen 127.0.0.1:19103 \
    --tls-cert $W/cert.pem --tls-key $W/key.pem >$W/slipway.log 2>&1 ) & echo $! > $W/slipway.pid
for _ in $(seq 100); do [ -S $W/state/slipway.sock ] && break; sleep 0.1; done
(cd $W/app && "$SLIPWAY" --state-dir $W/state deploy >/dev/null) || { echo "deploy failed"; tail $W/slipway.log; exit 1; }
sleep 1
# The proxy's process (nginx: its worker), for CPU time per request: less noisy than requests/s when
# the machine is busy, since it counts the work and not the share of the cores the proxy got.
pid_of() {
  case $1 in
    nginx) pgrep -P "$(cat $W/np.pidf)" | head -1 ;;
    slipway) cat $W/slipway.pid ;;
    *) cat $W/$1.pidf ;;
  esac
}
wrk_run() { # name port
  curl -sf --cacert $W/cert.pem -o /dev/null https://127.0.0.1:$2/ || { echo "$1: not answering"; return; }
  local pid before after
  pid=$(pid_of $1); before=$(ticks $pid)
  out=$(wrk -t1 -c$C -d${D}s --latency https://127.0.0.1:$2/ 2>&1)
  after=$(ticks $pid)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  cpu=$(echo "$before $after" | awk -v r=$reqs -v t=$(getconf CLK_TCK) '{printf "user=%.2f kernel=%.2f µs/req", ($3-$1)/t*1e6/r, ($4-$2)/t*1e6/r}')
  eval "${1}_rps=$rps; ${1}_p99=$p99"
  printf "%-8s https/1.1 keep-alive  rps=%-10s p99=%-8s %s\n" "$1" "$rps" "$p99" "$cpu"
}
h2_run() { # name port
  out=$(h2load -D $D -c $C -m 10 https://127.0.0.1:$2/ 2>&1)
  rps=$(echo "$out" | awk '/^finished in/ {gsub(",","",$4); print $4}')
  failed=$(echo "$out" | awk '/^requests:/ {print $8, $9}')
  eval "${1}_h2=$rps"
  printf "%-8s h2 (h2load -m10)      rps=%-10s %s\n" "$1" "$rps" "$failed"
}
handshakes() { # name port mode(-new|-reuse): new TLS connections a second, each with one request
  out=$(openssl s_time -connect 127.0.0.1:$2 $3 -time $D -www / 2>&1)
  # "N connections in T real seconds": wall-clock, not the client's user time.
  rate=$(echo "$out" | awk '/connections in [0-9]+ real seconds/ {printf "%.0f", $1 / $4}')
  eval "${1}_hs${3#-}=$rate"
  printf "%-8s handshakes %-6s     per s=%s\n" "$1" "${3#-}" "$rate"
}
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
handshakes nginx 19101 -new; handshakes haproxy 19104 -new; handshakes caddy 19105 -new; handshakes slipway 19103 -new
handshakes nginx 19101 -reuse; handshakes haproxy 19104 -reuse; handshakes caddy 19105 -reuse; handshakes slipway 19103 -reuse
wrk_run nginx 19101; wrk_run haproxy 19104; wrk_run caddy 19105; wrk_run slipway 19103
h2_run nginx 19101; h2_run haproxy 19104; h2_run caddy 19105; h2_run slipway 19103
for peer in nginx haproxy caddy; do
  eval "hn=\${${peer}_hsnew:-1} hr=\${${peer}_hsreuse:-1} r=\${${peer}_rps:-1} h=\${${peer}_h2:-1} p=\${${peer}_p99:-?}"
  awk -v peer=$peer -v a="${slipway_hsnew:-0}" -v b="$hn" -v c="${slipway_hsreuse:-0}" -v d="$hr" \
      -v e="${slipway_rps:-0}" -v f="$r" -v g="${slipway_h2:-0}" -v h="$h" \
    'BEGIN { printf "ratio slipway/%s: full handshakes %.2f, resumed %.2f, https/1.1 rps %.2f, h2 rps %.2f\n",
             peer, a/b, c/d, e/f, g/h }'
  echo "p99 https/1.1: slipway ${slipway_p99:-?} vs $peer $p"
done
