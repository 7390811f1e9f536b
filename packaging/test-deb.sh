#!/usr/bin/env bash
# Checks the slipway .deb on this machine, as root (CI containers run as root, without a running
# systemd): install it; check its files, its user and state dir, and the unit (`systemd-analyze
# verify` when available); start the daemon exactly as the unit's ExecStart says, as the unit's
# User, with its environment; deploy the bundled demo app over the TCP API and through the socket,
# and curl it through the proxy; stop the daemon (SIGTERM: it drains); install the package again (the
# upgrade path); then `dpkg -r` (state, user and config stay) and `dpkg -P` (all gone).
#
#   packaging/test-deb.sh [slipway.deb]      without a path it builds one with packaging/build-deb.sh
#
# It refuses to run where a slipway package, user or /var/lib/slipway already exists, so it never
# touches a real installation. Whatever happens, it stops what it started (by PID) and purges.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

say() { echo "test-deb: $*" >&2; }
fail() {
  echo "test-deb: FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "run it as root: it installs a package and creates a user"
command -v dpkg >/dev/null || fail "dpkg is missing: this test is for Debian and its derivatives"
command -v curl >/dev/null || fail "curl is missing (apt-get install curl)"
if dpkg-query -W -f='${Status}' slipway 2>/dev/null | grep -qv 'not-installed'; then
  fail "a slipway package is installed here already; this test installs and purges its own"
fi
getent passwd slipway >/dev/null && fail "a user named slipway exists already; the purge would delete it"
[ -e /var/lib/slipway ] && fail "/var/lib/slipway exists already; the purge would delete it"

deb=${1:-}
if [ -z "$deb" ]; then
  say "building the package (packaging/build-deb.sh)"
  deb=$(packaging/build-deb.sh | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at $deb"
build_done=$SECONDS

work=$(mktemp -d /tmp/slipway-test-deb.XXXXXX)
# The daemon runs as slipway and must read the app folder the CLI names.
chmod 0755 "$work"
runuser_pid=""
daemon_pid=""
installed=0

# Kills what a daemon that did not stop left running: the process groups in its pid files, only while
# they still are slipway instances (pids get reused).
reap_instances() {
  local f id pgid
  for f in /var/lib/slipway/run/*.pid; do
    [ -f "$f" ] || continue
    id=$(basename "$f" .pid)
    pgid=$(cat "$f" 2>/dev/null || true)
    case "$pgid" in '' | *[!0-9]*) continue ;; esac
    if { tr '\0' '\n' <"/proc/$pgid/environ"; } 2>/dev/null | grep -qx "SLIPWAY_INSTANCE=$id"; then
      kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
  done
}

# Waits up to $1 seconds for process $2 to end; returns 1 if it is still there.
wait_gone() {
  local end=$((SECONDS + $1))
  while kill -0 "$2" 2>/dev/null; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}

cleanup() {
  local status=$?
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait_gone 120 "$daemon_pid" || kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  if [ -n "$runuser_pid" ]; then
    wait "$runuser_pid" 2>/dev/null || true
  fi
  if [ "$installed" = 1 ]; then
    reap_instances
    dpkg -P slipway >/dev/null 2>&1 || say "cleanup: dpkg -P slipway failed"
  fi
  if [ "$status" != 0 ] && [ -f "$work/daemon.log" ]; then
    say "daemon log (last 40 lines):"
    tail -n 40 "$work/daemon.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# Polls `$3...` until it succeeds, for up to $1 seconds; fails naming $2.
wait_for() {
  local limit=$1 what=$2
  local deadline=$((SECONDS + limit))
  shift 2
  until "$@" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${limit} s waiting for: $what"
    if [ -n "$daemon_pid" ] && ! kill -0 "$daemon_pid" 2>/dev/null; then
      fail "the daemon exited while waiting for: $what"
    fi
    sleep 0.1
  done
}

say "installing $deb"
dpkg -i "$deb" >&2
installed=1

say "checking the installed files"
[ -x /usr/bin/slipway ] || fail "/usr/bin/slipway is missing"
/usr/bin/slipway --version >/dev/null || fail "slipway --version failed"
unit=$(dpkg -L slipway | grep '/systemd/system/slipway.service$') || fail "no slipway.service in the package"
zcat /usr/share/man/man1/slipway.1.gz | grep -q '^\.TH slipway' || fail "the man page is missing or empty"
for f in /usr/share/bash-completion/completions/slipway /usr/share/zsh/vendor-completions/_slipway \
  /usr/share/fish/vendor_completions.d/slipway.fish; do
  [ -s "$f" ] || fail "completion file $f is missing"
done
bash -c '. /usr/share/bash-completion/completions/slipway && complete -p slipway' >/dev/null \
  || fail "the bash completion does not load"
dpkg-query -W -f='${Conffiles}\n' slipway | grep -q '^ /etc/default/slipway ' \
  || fail "/etc/default/slipway is not a conffile"

say "checking the user and the state dir"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd slipway) || fail "no slipway user after install"
[ "$uid" -lt 1000 ] || fail "slipway is not a system user (uid $uid)"
[ "$home" = /var/lib/slipway ] || fail "slipway's home is $home"
case "$shell" in */nologin | */false) ;; *) fail "slipway can log in (shell $shell)" ;; esac
[ "$(stat -c '%U:%G %a' /var/lib/slipway)" = "slipway:slipway 700" ] \
  || fail "/var/lib/slipway is $(stat -c '%U:%G %a' /var/lib/slipway), not slipway:slipway 700"

if command -v systemd-analyze >/dev/null; then
  say "systemd-analyze verify $unit"
  # Without a running systemd it still parses the unit and checks its directives and ExecStart.
  verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
  if echo "$verify" | grep -q 'slipway.service'; then
    fail "systemd-analyze verify complains about the unit: $verify"
  fi
else
  say "systemd-analyze is not installed: the unit is not verified"
fi

# The unit's own settings: the daemon is started from them, not from a copy written here.
unit_value() { sed -n "s/^$1=//p" "$unit"; }
user=$(unit_value User)
exec_start=$(unit_value ExecStart)
workdir=$(unit_value WorkingDirectory)
env_file=$(unit_value EnvironmentFile)
env_file=${env_file#-}
[ "$user" = slipway ] || fail "the unit runs as '$user', not slipway"
[ -n "$exec_start" ] || fail "the unit has no ExecStart"
case "$exec_start" in *[\"\'\\]*) fail "ExecStart has quotes or escapes this script does not expand: $exec_start" ;; esac
[ "$(unit_value KillMode)" = process ] || fail "KillMode is not process: the apps would die with the daemon"
[ "$(unit_value Type)" = notify ] || fail "Type is not notify: systemd would not follow an upgraded daemon"
[ -n "$(unit_value ExecReload)" ] || fail "no ExecReload: systemctl reload would not upgrade in place"

say "configuring $env_file: any free port for the proxy, the TCP API on"
sed -i -e 's/^SLIPWAY_LISTEN=.*/SLIPWAY_LISTEN=127.0.0.1:0/' \
  -e 's/^SLIPWAY_OPTS=.*/SLIPWAY_OPTS="--api 127.0.0.1:0 --threads 2"/' "$env_file"

# The service's environment, as systemd builds it: Environment= lines, then the file.
declare -A env
while IFS= read -r line; do
  env[${line%%=*}]=${line#*=}
done < <(unit_value Environment)
while IFS= read -r line; do
  case "$line" in '' | '#'*) continue ;; esac
  value=${line#*=}
  value=${value#\"}
  value=${value%\"}
  env[${line%%=*}]=$value
done <"$env_file"
# ExecStart's words: ${NAME} is one argument, $NAME is split at spaces, as systemd does.
argv=()
set -f
for word in $exec_start; do
  case "$word" in
    '${'*'}') name=${word#??} && argv+=("${env[${name%?}]}") ;;
    '$'*) for part in ${env[${word#?}]}; do argv+=("$part"); done ;;
    *) argv+=("$word") ;;
  esac
done
set +f
environment=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" USER=slipway
  LOGNAME=slipway SHELL="$shell")
for name in "${!env[@]}"; do environment+=("$name=${env[$name]}"); done

say "starting, as slipway: ${argv[*]}"
runuser -u "$user" -- env -i -C "$workdir" "${environment[@]}" "${argv[@]}" >"$work/daemon.log" 2>&1 &
runuser_pid=$!
# runuser stays as the parent; the daemon is its child, and gets the signals.
child_of_runuser() {
  daemon_pid=$(ps -o pid= --ppid "$runuser_pid" | awk 'NR == 1 {print $1}')
  [ -n "$daemon_pid" ]
}
wait_for 30 "the daemon process" child_of_runuser
[ "$(stat -c %U "/proc/$daemon_pid")" = slipway ] || fail "the daemon does not run as slipway"
[ "$(readlink "/proc/$daemon_pid/exe")" = /usr/bin/slipway ] || fail "the daemon is not /usr/bin/slipway"
wait_for 60 "the daemon to listen (proxy.addr, api.addr, the socket)" \
  test -s /var/lib/slipway/proxy.addr -a -s /var/lib/slipway/api.addr -a -S /var/lib/slipway/slipway.sock
proxy=$(cat /var/lib/slipway/proxy.addr)
api=$(cat /var/lib/slipway/api.addr)
[ "$(stat -c '%U %a' /var/lib/slipway/slipway.sock)" = "slipway 600" ] || fail "the socket is not slipway's, 0600"

write_app() {
  mkdir -p "$work/app"
  cat >"$work/app/slipway.toml" <<TOML
app = "hello"

[env]
DEMO_VERSION = "$1"

[processes.web]
cmd = "/usr/bin/slipway demo-app"
replicas = 2
readiness = { http = "/ready", period = "200ms" }

[deploy]
strategy = "blue-green"
scale_down_delay = "1s"
TOML
  chmod -R a+rX "$work/app"
}
answer() { curl -fsS --max-time 10 "http://$proxy/"; }
answers() { answer | grep -q "$1"; }

say "deploying v1 over the TCP API (as root, with the daemon's token): the daemon reads the folder as slipway"
write_app v1
(cd "$work/app" && SLIPWAY_SERVER="http://$api" SLIPWAY_TOKEN="$(cat /var/lib/slipway/api-token)" \
  /usr/bin/slipway deploy -m "test-deb v1" >&2) || fail "deploy v1 failed"
wait_for 30 "v1 through the proxy" answers v1
say "curl http://$proxy/ -> $(answer)"

say "deploying v2 through the socket, as slipway (blue-green)"
write_app v2
(cd "$work/app" && runuser -u slipway -- /usr/bin/slipway --state-dir /var/lib/slipway deploy -m "test-deb v2" >&2) \
  || fail "deploy v2 failed"
wait_for 30 "v2 through the proxy" answers v2
say "curl http://$proxy/ -> $(answer)"
status=$(runuser -u slipway -- /usr/bin/slipway --state-dir /var/lib/slipway --app hello status --json)
instance_pids=$(echo "$status" | grep -o '"pid": [0-9]*' | grep -o '[0-9]*$' || true)
[ -n "$instance_pids" ] || fail "status shows no instance pids: $status"

say "stopping the daemon (SIGTERM to pid $daemon_pid: it drains)"
kill -TERM "$daemon_pid"
wait_gone 120 "$daemon_pid" || fail "the daemon did not exit within 120 s of SIGTERM"
daemon_pid=""
code=0
wait "$runuser_pid" || code=$?
runuser_pid=""
[ "$code" = 0 ] || fail "the daemon exited with $code"
for pid in $instance_pids; do
  if { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -q '^SLIPWAY_INSTANCE='; then
    fail "instance process $pid outlived the daemon"
  fi
done
grep -q '"message":"stopped"' "$work/daemon.log" || fail "the daemon's log does not end with stopped"

say "dpkg -i again (the upgrade path, to the same version): the state, the user and the config stay"
uid_before=$(id -u slipway)
dpkg -i "$deb" >&2
[ "$(id -u slipway)" = "$uid_before" ] || fail "the upgrade made a new slipway user"
grep -q '^SLIPWAY_LISTEN=127.0.0.1:0' /etc/default/slipway || fail "the upgrade reset /etc/default/slipway"
[ -f /var/lib/slipway/slipway.db ] || fail "the upgrade lost the state"
[ "$(stat -c '%U %a' /var/lib/slipway)" = "slipway 700" ] || fail "the upgrade changed /var/lib/slipway"

say "dpkg -r slipway: the state, the user and the config stay"
dpkg -r slipway >&2
[ ! -e /usr/bin/slipway ] || fail "/usr/bin/slipway is still there after remove"
[ ! -e "$unit" ] || fail "$unit is still there after remove"
[ -f /etc/default/slipway ] || fail "remove deleted /etc/default/slipway (a conffile)"
grep -q '^SLIPWAY_LISTEN=127.0.0.1:0' /etc/default/slipway || fail "remove reset /etc/default/slipway"
getent passwd slipway >/dev/null || fail "remove deleted the slipway user"
[ -f /var/lib/slipway/slipway.db ] || fail "remove deleted the state"
dpkg-query -W -f='${Status}\n' slipway | grep -q 'config-files' || fail "not in config-files state after remove"

say "dpkg -P slipway: everything goes"
dpkg -P slipway >&2
installed=0
[ ! -e /etc/default/slipway ] || fail "/etc/default/slipway is still there after purge"
[ ! -e /var/lib/slipway ] || fail "/var/lib/slipway is still there after purge"
! getent passwd slipway >/dev/null || fail "the slipway user is still there after purge"
! getent group slipway >/dev/null || fail "the slipway group is still there after purge"
# Enabling left a symlink in multi-user.target.wants/, remove a mask: purge takes both away.
leftover=$(find /etc/systemd/system -name 'slipway.service' 2>/dev/null)
[ -z "$leftover" ] || fail "systemd links left after purge: $leftover"
if dpkg-query -W -f='${Status}' slipway 2>/dev/null | grep -qv 'not-installed'; then
  fail "dpkg still knows slipway after purge"
fi

say "ok: build $((build_done - started)) s, install-to-purge $((SECONDS - build_done)) s"
