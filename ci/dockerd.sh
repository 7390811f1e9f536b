#!/usr/bin/env bash
# A private Docker engine for slipway's tests: `ci/dockerd.sh start` prints the DOCKER_HOST to use,
# `ci/dockerd.sh stop` ends it (by the PID in its pidfile, never by name).
#
# Everything lives in $SLIPWAY_DOCKERD_DIR (default /tmp/slipway-dockerd): socket, images, containers,
# pidfile, log. No registry, no pulls: tests build their images FROM scratch.
#
# Flags, and why (this machine is shared by several builds, and may already run another dockerd):
#   --bridge=$BRIDGE      our own bridge with its own subnet, created here, so we never fight another
#                         engine over docker0 or 172.17.0.0/16.
#   --iptables=false      no NAT rules, no FORWARD policy change, no DOCKER chains in the host's
#   --ip-forward=false    tables that another engine (or the host) owns. Publishing a port still works:
#   --ip-masq=false       with iptables off, dockerd's userland proxy (docker-proxy) listens on
#                         127.0.0.1:<port> and forwards to the container over our bridge. Containers get
#                         no route to the outside, which tests never need.
#   --host unix://...     a private socket, so nothing else talks to (or is confused by) this engine.
set -euo pipefail

DIR=${SLIPWAY_DOCKERD_DIR:-/tmp/slipway-dockerd}
BRIDGE=${SLIPWAY_DOCKERD_BRIDGE:-slipway-br0}
SUBNET_ADDR=${SLIPWAY_DOCKERD_BRIDGE_ADDR:-10.231.0.1/24}
SOCK="$DIR/docker.sock"
HOST="unix://$SOCK"
DEADLINE_SECS=${SLIPWAY_DOCKERD_DEADLINE:-60}

die() { echo "ci/dockerd.sh: $*" >&2; exit 1; }

running_pid() {
  local pid
  pid=$(cat "$DIR/pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

answers() { docker -H "$HOST" info >/dev/null 2>&1; }

start() {
  command -v dockerd >/dev/null || die "dockerd not found: apt-get install docker.io"
  mkdir -p "$DIR"
  if running_pid >/dev/null && answers; then
    echo "$HOST"
    return
  fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$SUBNET_ADDR" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  dockerd --host "$HOST" --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$DIR/pid" \
    --bridge="$BRIDGE" --iptables=false --ip-forward=false --ip-masq=false \
    >"$DIR/dockerd.log" 2>&1 </dev/null &
  local waited=0
  until answers; do
    if [ "$waited" -ge $((DEADLINE_SECS * 10)) ]; then
      tail -n 30 "$DIR/dockerd.log" >&2 || true
      die "dockerd did not answer on $HOST within ${DEADLINE_SECS}s (log above: $DIR/dockerd.log)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "$HOST"
}

stop() {
  local pid
  pid=$(running_pid) || { echo "ci/dockerd.sh: not running"; return; }
  kill "$pid"
  # dockerd stops its containers first (up to their stop timeouts), so give it a while.
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { echo "ci/dockerd.sh: stopped"; return; }
    sleep 0.1
  done
  die "dockerd (pid $pid) is still running after 30s"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: ci/dockerd.sh start|stop" ;;
esac
