# What the proxy benchmarks share (sourced, not run): the tiny nginx backend every proxy is measured in
# front of, nginx as the peer proxy, and CPU time per request from a process's /proc/PID/stat.

# nginx_backend PORT PIDFILE: one worker answering "ok" on 127.0.0.1:PORT (prints the config).
nginx_backend() {
  cat <<B
worker_processes 1; daemon off; pid $2; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$1; keepalive_requests 1000000; location / { return 200 "ok\n"; } } }
B
}

# nginx_proxy LISTEN_PORT BACKEND_PORT PIDFILE: nginx as a proxy, one worker and no master, keep-alive
# to the backend (prints the config).
nginx_proxy() {
  cat <<B
worker_processes 1; daemon off; master_process off; pid $3; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; upstream b { server 127.0.0.1:$2; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$1; keepalive_requests 1000000; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
B
}

# ticks PID: its user and system CPU time so far, in clock ticks.
ticks() { awk '{print $14, $15}' /proc/$1/stat; }

# cpu_per_request NAME PID PORT RESULTS [BACKEND]: one `wrk -t1 -c$C -d${D}s` run against PORT, printed (and
# appended to RESULTS) as requests/s, p99, and PID's user and kernel µs per request; with BACKEND (the pid of
# the process that answers behind the proxy, e.g. `nginx_worker MASTER`), also `peers=`, the backend's and
# wrk's CPU µs per request, and `all=`, the three together: what the request cost the whole machine.
# With WRK_ON set (a CPU list), wrk runs there (`taskset`).
cpu_per_request() {
  local before after out reqs rps p99 peers="" b0="0 0" b1="0 0" pin=()
  [ -z "${WRK_ON:-}" ] || pin=(taskset -c "$WRK_ON")
  [ -z "${5:-}" ] || b0=$(ticks $5)
  before=$(ticks $2)
  out=$(/usr/bin/time -f "wrk-cpu %U %S" "${pin[@]}" wrk -t1 -c$C -d${D}s --latency http://127.0.0.1:$3/ 2>&1)
  after=$(ticks $2)
  [ -z "${5:-}" ] || b1=$(ticks $5)
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  [ -z "${5:-}" ] || peers=$(echo "$b0 $b1 $(echo "$out" | awk '/^wrk-cpu/ {print $2 + $3}')" |
    awk -v r=$reqs -v t=$(getconf CLK_TCK) '{printf "%.2f", (($3+$4-$1-$2)/t + $5)*1e6/r}')
  echo "$before $after" | awk -v n=$1 -v r=$reqs -v rps=$rps -v p99=$p99 -v t=$(getconf CLK_TCK) -v peers=$peers '{
    u=($3-$1)/t*1e6/r; s=($4-$2)/t*1e6/r;
    printf "%-8s rps=%-10s p99=%-8s user=%5.2f µs/req  kernel=%5.2f µs/req", n, rps, p99, u, s
    if (peers != "") printf "  peers=%5.2f µs/req  all=%5.2f µs/req", peers, u+s+peers
    printf "\n" }' | tee -a $4
}

# nginx_worker MASTER: the pid of the one worker of the nginx whose master is MASTER (waits for it).
nginx_worker() {
  local worker=""
  for _ in $(seq 100); do worker=$(pgrep -P "$1" | head -1) && [ -n "$worker" ] && break; sleep 0.05; done
  echo "$worker"
}
