#!/usr/bin/env bash
# Controller failover over rounds (issue 13): runs crates/cli/tests/kubernetes.rs's kill -9 test
# (`the_controller_killed_mid_canary_is_replaced_by_its_standby_which_finishes_the_canary`: two
# `serve --kubernetes --lease` controllers, the leader kill -9'd at a canary's pause under load) ROUNDS
# times with the Lease's duration LEASE (default 15s: slipway's default), and prints each round's
# takeover — kill -9 → the standby holding the Lease, → the standby serving — with the median and min–max.
# Needs ci/kube.sh's cluster and ci/dockerd.sh's engine: started here (and stopped at the end) unless
# KUBECONFIG and SLIPWAY_TEST_DOCKER_HOST are already set. The test's binary is the debug build.
# Usage: bench/failover.sh [rounds] [lease]
set -euo pipefail
ROUNDS=${1:-5} LEASE=${2:-15s}
cd "$(dirname "$0")/.."
out=$(mktemp)
started=0
cleanup() {
  rm -f "$out"
  if [ "$started" = 1 ]; then ci/kube.sh stop >/dev/null 2>&1 || true; ci/dockerd.sh stop >/dev/null || true; fi
}
trap cleanup EXIT
if [ -z "${KUBECONFIG:-}" ] || [ -z "${SLIPWAY_TEST_DOCKER_HOST:-}" ]; then
  started=1
  SLIPWAY_TEST_DOCKER_HOST=$(ci/dockerd.sh start)
  export SLIPWAY_TEST_DOCKER_HOST
  KUBE_ENV=$(ci/kube.sh start)
  eval "$KUBE_ENV"
fi
cargo test -q -p slipway --features kubernetes --test kubernetes --no-run 2>/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg); lease $LEASE, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  SLIPWAY_TEST_LEASE=$LEASE cargo test -q -p slipway --features kubernetes --test kubernetes -- \
    --exact the_controller_killed_mid_canary_is_replaced_by_its_standby_which_finishes_the_canary \
    --nocapture 2>&1 | grep '^takeover:' | tee -a "$out" | sed "s/^/round $round: /"
done
python3 - "$out" <<'PY'
import re, statistics, sys
rows = [re.findall(r"([0-9.]+) s", l)[:2] for l in open(sys.argv[1])]
lease = [float(r[0]) for r in rows]
serve = [float(r[1]) for r in rows]
if not rows:
    sys.exit("no round finished")
def show(name, xs):
    print(f"{name}: median {statistics.median(xs):.1f} s (min–max {min(xs):.1f}–{max(xs):.1f}) over {len(xs)} rounds")
show("kill -9 → the standby holds the Lease", lease)
show("kill -9 → the standby serves", serve)
PY
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
