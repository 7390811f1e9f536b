#!/usr/bin/env bash
# Two builds of slipway measured in one sitting, alternating round by round (this machine is noisy: what
# changes between rounds hits both), through the same bench scripts: deploys under load, the bad canary,
# and the proxy's CPU per request. Prints each run's raw output under a "== round R: NAME" header; the
# numbers to compare are the scripts' own summary lines.
#
# Usage: bench/before-after.sh BEFORE_DIR AFTER_DIR [rounds=3]
#   Each DIR holds the release binaries `slipway` and `slipway-proxy-bench`, e.g. built with
#   `cargo build --release -p slipway -p slipway-proxy --bins` on each commit and copied out.
# Env DEPLOYS (10), CANARY_RUNS (3), CPU_SECONDS (8): the size of each measurement.
set -euo pipefail
BEFORE=$(realpath "$1") AFTER=$(realpath "$2") ROUNDS=${3:-3}
cd "$(dirname "$0")/.."
for dir in "$BEFORE" "$AFTER"; do
  for bin in slipway slipway-proxy-bench; do
    [ -x "$dir/$bin" ] || { echo "no $dir/$bin" >&2; exit 1; }
  done
done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  # Alternate which build goes first, so a trend in the machine's load does not favour one.
  if [ $((round % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for name in $order; do
    dir=$BEFORE; [ "$name" = after ] && dir=$AFTER
    echo "== round $round: $name (load $(cut -d' ' -f1 /proc/loadavg))"
    SLIPWAY_BIN=$dir/slipway bench/deploys.sh "${DEPLOYS:-10}" 16 | grep -E "deploys=|ready|RSS|binary"
    SLIPWAY_BIN=$dir/slipway bench/canary.sh "${CANARY_RUNS:-3}" | tail -4
    PROXY_BIN=$dir/slipway-proxy-bench bench/proxy-cpu.sh "${CPU_SECONDS:-8}" 32 1 | tail -3
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
