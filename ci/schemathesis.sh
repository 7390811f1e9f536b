#!/usr/bin/env bash
# The API's OpenAPI document (GET /v1/openapi.json, docs/api.md) checked against a running daemon by
# schemathesis (PyPI; `.ci/run` installs the pinned version): every operation is called with examples
# generated from the document, valid and invalid, and every answer must be what the document says —
# no 5xx, a documented status, the documented content type, a body that fits the schema.
#
# What it runs against: a debug `slipway serve` with its state in a temp dir, the TCP API on a free
# loopback port, and one app deployed ("demo", the bundled demo app) with a cron job, a flag and an
# evaluation key, so that path parameters name real things half of the time (schemathesis dictionaries)
# and made-up ones the other half. The token is the daemon's own admin token, handed to schemathesis
# through the environment and its config file, never on a command line or in the output. The daemon
# is stopped by its PID when the script ends, however it ends.
#
# Arguments are passed on to `schemathesis run`, e.g. `--include-path /v1/apps/{app}/logs` or
# `--report har --report-dir /tmp/st` to look at one operation's requests.
# SLIPWAY_SCHEMATHESIS_EXAMPLES (default 25) bounds the test cases per operation and phase; the whole
# run also stops at SLIPWAY_SCHEMATHESIS_MAX_TIME seconds (default 150).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "ci/schemathesis.sh: $*" >&2; exit 1; }
command -v schemathesis >/dev/null \
  || die "schemathesis not found: python3 -m pip install schemathesis==4.32.5 (.ci/run does)"
command -v curl >/dev/null || die "curl not found"

cargo build --quiet --locked -p slipway
bin="$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)/slipway"

work=$(mktemp -d /tmp/slipway-schemathesis.XXXXXX)
state="$work/state"
daemon_pid=""
stop_daemon() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    # SIGTERM drains and stops the app's instances too; SIGKILL only if that takes over a minute.
    kill -TERM "$daemon_pid"
    for _ in $(seq 600); do
      kill -0 "$daemon_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$daemon_pid" 2>/dev/null && kill -KILL "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null || true
  fi
  daemon_pid=""
}
st_pid=""
cleanup() {
  status=$?
  if [ -n "$st_pid" ] && kill -0 "$st_pid" 2>/dev/null; then
    kill -TERM "$st_pid"
    wait "$st_pid" 2>/dev/null || true
  fi
  stop_daemon
  if [ "$status" -ne 0 ] && [ -f "$work/daemon.log" ]; then
    echo "--- the daemon's log (last 40 lines) ---" >&2
    tail -n 40 "$work/daemon.log" >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through the EXIT trap (background jobs ignore SIGINT: the trap stops them).
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls `cond` every 0.1 s until it holds, or fails after $1 seconds.
wait_for() {
  local secs=$1 what=$2
  shift 2
  for _ in $(seq $((secs * 10))); do
    "$@" && return 0
    kill -0 "$daemon_pid" 2>/dev/null || die "the daemon exited while waiting for $what"
    sleep 0.1
  done
  die "no $what after ${secs}s"
}

"$bin" serve --state-dir "$state" --listen 127.0.0.1:0 --api 127.0.0.1:0 \
  >"$work/daemon.log" 2>&1 </dev/null &
daemon_pid=$!
wait_for 60 "API address" test -s "$state/api.addr"
api=$(tr -d '\n' <"$state/api.addr")
wait_for 10 "API token" test -s "$state/api-token"
SLIPWAY_TOKEN=$(tr -d '\n' <"$state/api-token")
export SLIPWAY_TOKEN

# Set-up goes through the local socket, which asks for no token.
local_api() {
  curl --silent --show-error --fail-with-body --unix-socket "$state/slipway.sock" \
    -H 'Content-Type: application/json' "$@"
}

mkdir "$work/app"
cat >"$work/app/slipway.toml" <<EOF
app = "demo"

[processes.web]
cmd = "'$bin' demo-app"
replicas = 1
readiness = { http = "/ready", period = "100ms", timeout = "100ms", failure_threshold = 50 }

[cron.tick]
schedule = "@yearly"
cmd = "true"

[deploy]
strategy = "rolling"
progress_deadline = "60s"
EOF
# `deploy` returns when the rollout has ended; non-zero if it did not succeed.
"$bin" --state-dir "$state" --config "$work/app/slipway.toml" deploy >"$work/deploy.log" 2>&1 \
  || { cat "$work/deploy.log" >&2; die "the demo app did not deploy"; }
local_api -X POST http://slipway/v1/apps/demo/flags/checkout >/dev/null --data \
  '{"who": "ci", "action": "set", "definition": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}'
local_api -X POST http://slipway/v1/apps/demo/flag-keys >/dev/null --data \
  '{"who": "ci", "name": "ci-key"}'

cat >"$work/schemathesis.toml" <<'EOF'
# Nothing is kept between runs (crash files, examples): each run stands alone and leaves no files.
[cache]
enabled = false

# Every request carries the daemon's own admin token (it cannot be revoked, so the run keeps it).
# Requests without it (401) are not generated (`--generation-with-security-parameters false`): the
# door's refusals are crates/cli/tests/access.rs's and openapi.rs's; the time goes to the handlers.
[auth.openapi.bearer]
bearer = "${SLIPWAY_TOKEN}"

# Path parameters name what the set-up made half of the time, something made up otherwise.
[dictionaries]
apps = { values = ["demo"] }
jobs = { values = ["tick"] }
flags = { values = ["checkout"] }
names = { values = ["ci-key"] }

[parameters]
"path.app" = { dictionary = "apps", probability = 0.5 }
"path.job" = { dictionary = "jobs", probability = 0.5 }
"path.key" = { dictionary = "flags", probability = 0.5 }
"path.name" = { dictionary = "names", probability = 0.5 }
# `follow=true` keeps the answer open for new lines: a stream that never ends, which no test case can
# read to its end.
"query.follow" = "false"
EOF

# The document as the TCP API serves it, to any valid token (the header from a file: never on a
# command line). schemathesis sends its requests to the same daemon.
umask 077
printf 'Authorization: Bearer %s\n' "$SLIPWAY_TOKEN" >"$work/auth.header"
curl --silent --show-error --fail-with-body -H @"$work/auth.header" \
  "http://$api/v1/openapi.json" -o "$work/openapi.json"

# POST /v1/upgrade really replaces the daemon (crates/cli/tests/upgrade.rs and access.rs call it):
# left out here, where the run must keep talking to the daemon it started.
# POST /v1/apps/{app}/gate is a long poll: it answers when its window (`for_ms`, up to 24 h) ends, so
# during a canary it outlasts any request timeout (crates/cli/tests/ci_recipes.rs and canary tests call it).
# ci/schemathesis_hooks.py makes the tar.gz bodies of POST /v1/uploads.
# Runs schemathesis once with the seed $1; its output goes to the terminal and to $work/st.log.
run_schemathesis() {
  PYTHONPATH="$PWD/ci${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
  schemathesis --config-file "$work/schemathesis.toml" run "$work/openapi.json" --url "http://$api" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "${SLIPWAY_SCHEMATHESIS_EXAMPLES:-25}" \
    --max-time "${SLIPWAY_SCHEMATHESIS_MAX_TIME:-150}" \
    --request-timeout 30 \
    --workers 1 \
    --seed "$1" \
    --generation-database none \
    --generation-with-security-parameters false \
    --no-color \
    --exclude-path /v1/upgrade \
    --exclude-path '/v1/apps/{app}/gate' \
    "${st_args[@]}" >"$work/st.log" 2>&1 &
  # In the background so that a signal reaches the trap at once, not when schemathesis is done.
  st_pid=$!
  # The output as it comes; tail ends by itself once schemathesis has ended and all is shown.
  tail -n +1 -f --pid="$st_pid" "$work/st.log" &
  local tail_pid=$! status=0
  wait "$st_pid" || status=$?
  wait "$tail_pid" || true
  st_pid=""
  return "$status"
}

# True when the run failed only because Hypothesis itself crashed (its optimiser has raised IndexError
# from its own internals): no check failed, and every error's traceback ends inside Hypothesis. Such a
# run says nothing about the API, so it is run again with another seed — once.
crashed_inside_hypothesis() {
  ! grep -q '^Failures:' "$work/st.log" \
    && grep -q 'site-packages/hypothesis/internal/' "$work/st.log" \
    && ! awk '/^Errors:/ { on = 1; next } on && /^$/ { exit } on' "$work/st.log" | grep -v -q 'Runtime Error'
}

st_args=("$@")
started=$(date +%s)
seed="${SLIPWAY_SCHEMATHESIS_SEED:-$RANDOM}"
if ! run_schemathesis "$seed"; then
  crashed_inside_hypothesis || die "schemathesis failed (seed $seed)"
  seed=$((seed + 1))
  echo "ci/schemathesis.sh: Hypothesis crashed inside its own code (no check failed): once more, seed $seed" >&2
  run_schemathesis "$seed" || die "schemathesis failed (seed $seed)"
fi
echo "schemathesis: passed in $(($(date +%s) - started)) s"
# The daemon survived all of it.
kill -0 "$daemon_pid" 2>/dev/null || die "the daemon exited during the run"
