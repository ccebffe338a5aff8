#!/usr/bin/env bash
# Why this file is long (~475 lines): it is one sequential test, each step
# working on what the ones before set up (the installed package, the running
# agent, its port and connections), with one cleanup trap undoing all of it.
#
# End-to-end test of the Debian package, as root:
#   build the .deb (packaging/build-deb.sh), lintian, dpkg -i, files in place,
#   systemd-analyze verify/security on the installed unit, then run the
#   installed binary the way sockeye.service does (its ExecStart, User=,
#   Group=, AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=,
#   parsed from the installed unit, applied with setpriv) on a free loopback
#   port: scrape /metrics and /healthz, adopt a connection that was open
#   before the start (needs the /proc capabilities), follow a new one,
#   SIGHUP with an edited config, SIGTERM within 1 s; the system calls and
#   socket families it uses must be allowed by the unit's SystemCallFilter=
#   and RestrictAddressFamilies=; reinstall, remove, purge, nothing left.
#
#   tests/packaging/test_deb.sh            # builds the .deb
#   SOCKEYE_DEB=path.deb tests/packaging/test_deb.sh   # tests that one
#
# Exits 0 only if every check passed. Safe to run repeatedly: whatever it
# installed or started is purged or stopped on exit, also on failure.
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAX_EXPOSURE=2.5 # systemd-analyze security; 2.2 with systemd 252 (SECURITY.md)
TEST_COMM=skytest # comm of the test's client processes (--process filter)

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL $*"; }
# check DESCRIPTION COMMAND...: runs COMMAND, passes if it exits 0.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}
fatal() {
  not_ok "$*"
  finish
}

if [ "$(id -u)" -ne 0 ]; then
  echo "test_deb.sh: must run as root (dpkg -i, BPF)" >&2
  exit 1
fi

# --- Preconditions -------------------------------------------------------------------
need=(dpkg-deb dpkg-shlibdeps help2man lintian systemd-analyze setpriv curl strace python3 adduser)
for tool in "${need[@]}"; do
  if ! command -v "$tool" >/dev/null; then
    echo "test_deb.sh: $tool missing, running packaging/install-packaging-deps.sh"
    bash "$src/packaging/install-packaging-deps.sh" || fatal "installing the packaging tools"
    break
  fi
done
pkg_status=$(dpkg-query -W -f='${db:Status-Status}' sockeye 2>/dev/null)
if [ -n "$pkg_status" ] && [ "$pkg_status" != not-installed ]; then
  echo "test_deb.sh: the sockeye package is installed; this test installs and purges it." >&2
  echo "Purge it first (dpkg --purge sockeye) if it is a left-over." >&2
  exit 1
fi
if getent passwd sockeye >/dev/null || getent group sockeye >/dev/null; then
  echo "test_deb.sh: a sockeye user or group exists without the package; the test would" >&2
  echo "delete it on purge. Remove it first (deluser --system sockeye) if it is a left-over." >&2
  exit 1
fi

work=$(mktemp -d /tmp/sockeye-test-deb.XXXXXX)
chmod 0755 "$work"
installed=0
agent_pid=""
strace_pid=""
holder_pid=""

cleanup() {
  local pid
  for pid in "$agent_pid" "$strace_pid" "$holder_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  if [ "$installed" = 1 ]; then
    dpkg --purge sockeye >/dev/null 2>&1 || echo "test_deb.sh: cleanup: dpkg --purge sockeye failed" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "test_deb.sh: interrupted"; exit 130' INT TERM

# --- Build and lint --------------------------------------------------------------------
if [ -n "${SOCKEYE_DEB:-}" ]; then
  deb=$SOCKEYE_DEB
else
  echo "building the .deb (packaging/build-deb.sh)..."
  if ! deb=$("$src/packaging/build-deb.sh" -o "$work/out" 2>"$work/build.log" | tail -n 1); then
    tail -n 30 "$work/build.log"
    fatal "packaging/build-deb.sh"
  fi
fi
[ -f "$deb" ] || fatal "no .deb at '$deb'"
ok "built $(basename "$deb")"

lintian --fail-on error --display-info "$deb" >"$work/lintian.txt" 2>&1
lintian_rc=$?
sed -i '/running with root privileges is not recommended/d' "$work/lintian.txt"
if [ "$lintian_rc" -eq 0 ] && ! grep -q '^E:' "$work/lintian.txt"; then
  ok "lintian: no errors ($(grep -c '^W:' "$work/lintian.txt") warnings, $(grep -c '^I:' "$work/lintian.txt") info)"
else
  not_ok "lintian (exit $lintian_rc)"
fi
sed 's/^/     /' "$work/lintian.txt"

# --- Install ---------------------------------------------------------------------------------
installed=1
if ! dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1; then
  cat "$work/dpkg-i.log"
  fatal "dpkg -i"
fi
ok "dpkg -i"

for f in /usr/sbin/sockeye /etc/sockeye/sockeye.toml /lib/systemd/system/sockeye.service \
  /usr/share/man/man8/sockeye.8.gz /usr/share/doc/sockeye/changelog.Debian.gz \
  /usr/share/doc/sockeye/copyright; do
  check "installed: $f" test -f "$f"
done
check "/usr/sbin/sockeye is executable" test -x /usr/sbin/sockeye
check "conffile: /etc/sockeye/sockeye.toml" \
  sh -c "dpkg-query -W -f='\${Conffiles}' sockeye | grep -q '^ /etc/sockeye/sockeye.toml '"
check "dpkg --verify (md5sums)" dpkg --verify sockeye
check "system user sockeye (uid < 1000, no login shell)" \
  sh -c 'u=$(getent passwd sockeye) && [ "$(echo "$u" | cut -d: -f3)" -lt 1000 ] && echo "$u" | grep -q ":/usr/sbin/nologin$"'
check "group sockeye" sh -c "getent group sockeye >/dev/null"
check "enabled: multi-user.target.wants/sockeye.service" \
  test -L /etc/systemd/system/multi-user.target.wants/sockeye.service
sockeye_uid=$(id -u sockeye 2>/dev/null)

# The man page documents every flag of --help.
man -l /usr/share/man/man8/sockeye.8.gz 2>"$work/man.err" | col -b >"$work/man.txt"
missing=""
for flag in $(/usr/sbin/sockeye --help | grep -oE -- '--[a-z][a-z.-]*[a-z]' | sort -u); do
  grep -qF -- "$flag" "$work/man.txt" || missing="$missing $flag"
done
check "man page covers every --help flag${missing:+ (missing:$missing)}" test -z "$missing"
check "man page renders without warnings" test ! -s "$work/man.err"
check "installed config passes --check (root)" \
  sh -c '/usr/sbin/sockeye --config /etc/sockeye/sockeye.toml --check >/dev/null 2>&1'
# The config documents every flag as a key, and every example line in it is
# valid: uncommented all at once (but for check, btf-path, web.config.file
# and cgroup, which would change what --check does or need a file or a
# service that is not there), it still passes --check.
missing=""
for flag in $(/usr/sbin/sockeye --help | grep -oE -- '^ +--[a-z][a-z.-]*[a-z]' | sed 's/^ *--//' | sort -u); do
  case "$flag" in help | version | config) continue ;; esac
  grep -qE "^#$flag = " /etc/sockeye/sockeye.toml || missing="$missing $flag"
done
check "config lists every flag as a key${missing:+ (missing:$missing)}" test -z "$missing"
sed -E 's/^#([a-z]|  "|\])/\1/' /etc/sockeye/sockeye.toml | grep -vE '^(check|btf-path|web.config.file|cgroup) ' >"$work/all-keys.toml"
check "config with every key uncommented passes --check" \
  sh -c '/usr/sbin/sockeye --config "$1" --check >/dev/null 2>&1' sh "$work/all-keys.toml"

# --- The unit ------------------------------------------------------------------------------
unit=/lib/systemd/system/sockeye.service
if systemd-analyze verify "$unit" >"$work/verify.txt" 2>&1 && [ ! -s "$work/verify.txt" ]; then
  ok "systemd-analyze verify $unit: clean"
else
  not_ok "systemd-analyze verify $unit"
  sed 's/^/     /' "$work/verify.txt"
fi
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null |
  sed -n 's/.*Overall exposure level for sockeye.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security: exposure ${exposure:-?} <= $MAX_EXPOSURE" \
  awk -v e="${exposure:-99}" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }'

# Values of KEY in the [Service] section, one per line, in order.
unit_values() {
  awk -v key="$1" '
    /^\[/ { section = $0; next }
    section == "[Service]" && index($0, key "=") == 1 { print substr($0, length(key) + 2) }
  ' "$unit"
}
# "CAP_BPF CAP_PERFMON" (several lines merged) -> "+bpf,+perfmon" for setpriv.
setpriv_caps() {
  local caps=""
  local line cap
  while IFS= read -r line; do
    case "$line" in "~"* | "") echo "unsupported capability line: '$line'" >&2; return 1 ;; esac
    for cap in $line; do
      cap=${cap#CAP_}
      caps="$caps,+${cap,,}"
    done
  done
  echo "${caps#,}"
}

exec_start=$(unit_values ExecStart | head -n 1)
unit_user=$(unit_values User | tail -n 1)
unit_group=$(unit_values Group | tail -n 1)
ambient=$(unit_values AmbientCapabilities | setpriv_caps) || ambient=""
bounding=$(unit_values CapabilityBoundingSet | setpriv_caps) || bounding=""
nnp=$(unit_values NoNewPrivileges | tail -n 1)
echo "     unit: ExecStart=$exec_start User=$unit_user Group=$unit_group"
echo "     unit: ambient=$ambient bounding=$bounding NoNewPrivileges=$nnp"
[ -n "$exec_start" ] && [ -n "$unit_user" ] && [ -n "$ambient" ] && [ -n "$bounding" ] ||
  fatal "parsing ExecStart/User/AmbientCapabilities/CapabilityBoundingSet from $unit"
case "$exec_start" in [-@:+!]*) fatal "ExecStart prefix not supported by this test: $exec_start" ;; esac
read -r -a argv <<<"$exec_start"
# The unit's own config path is swapped for a copy that listens on a free
# loopback port and follows only this test's client processes.
config=$work/sockeye.toml
subst=0
for i in "${!argv[@]}"; do
  if [ "${argv[$i]}" = /etc/sockeye/sockeye.toml ]; then
    argv[$i]=$config
    subst=1
  fi
done
[ "$subst" = 1 ] || fatal "ExecStart does not use /etc/sockeye/sockeye.toml: $exec_start"

# shellcheck disable=SC2054 # the commas are setpriv's
setpriv_argv=(setpriv --reuid="$unit_user" --regid="${unit_group:-$unit_user}" --init-groups
  --inh-caps=-all,"$ambient" --ambient-caps=-all,"$ambient" --bounding-set=-all,"$bounding")
[ "$nnp" = yes ] && setpriv_argv+=(--no-new-privs)
# Of the unit's sandboxing, what matters to the agent and can be had without
# systemd: ProtectProc=invisible (a /proc that hides other users' processes
# unless ptrace-able, which the /proc capabilities make them) and a read-only
# root file system (ProtectSystem=strict), in a private mount namespace.
protect_proc=$(unit_values ProtectProc | tail -n 1)
protect_system=$(unit_values ProtectSystem | tail -n 1)
sandbox_script='set -e
mount --make-rprivate /
[ "$1" = invisible ] && mount -t proc -o hidepid=invisible proc /proc
[ "$2" = strict ] && mount -o remount,bind,ro /
shift 2
exec "$@"'
sandbox_argv=(unshare --mount sh -c "$sandbox_script" sh "${protect_proc:-default}" "${protect_system:-no}")
echo "     sandbox: ProtectProc=${protect_proc:-default} ProtectSystem=${protect_system:-no} (emulated with unshare)"

check "--check as $unit_user with the unit's capabilities" \
  sh -c '"$@" >/dev/null 2>&1' sh "${setpriv_argv[@]}" /usr/sbin/sockeye --config /etc/sockeye/sockeye.toml --check

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
{
  cat /etc/sockeye/sockeye.toml
  echo
  echo "# added by tests/packaging/test_deb.sh"
  echo "web.listen-address = \"127.0.0.1:$port\""
  echo "process = [\"$TEST_COMM\"]"
} >"$config"
chmod 0644 "$config"

# A root-owned process named $TEST_COMM with a connection open before the
# agent starts: the agent adopts it only if it may read that process's
# /proc/PID/fd (CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH), as user sockeye.
cat >"$work/holder.py" <<EOF
import socket, sys, time
open("/proc/self/comm", "w").write("$TEST_COMM")
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
cli = socket.create_connection(srv.getsockname())
peer, _ = srv.accept()
cli.sendall(b"ping")
peer.recv(4)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
EOF
python3 "$work/holder.py" "$work/backend.port" &
holder_pid=$!
for _ in $(seq 50); do [ -s "$work/backend.port" ] && break; sleep 0.1; done
backend_port=$(cat "$work/backend.port" 2>/dev/null)
[ -n "$backend_port" ] || fatal "test backend did not start"
backend="127.0.0.1:$backend_port"

# A new connection from a $TEST_COMM process, after the agent started.
new_connection() {
  python3 - "$backend_port" <<EOF
import socket, sys
open("/proc/self/comm", "w").write("$TEST_COMM")
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"GET / HTTP/1.0\r\n\r\n")
c.close()
EOF
}

scrape() { curl -fsS --max-time 5 "http://127.0.0.1:$port$1"; }
# wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}
metric_matches() {
  scrape /metrics >"$work/last-scrape.txt" 2>/dev/null
  grep -qE "$1" "$work/last-scrape.txt"
}

echo "     running: ${setpriv_argv[*]} ${argv[*]}"
"${sandbox_argv[@]}" "${setpriv_argv[@]}" "${argv[@]}" >"$work/agent.log" 2>&1 &
agent_pid=$!
if wait_for 15 sh -c "curl -fs --max-time 1 http://127.0.0.1:$port/healthz >/dev/null"; then
  ok "agent serves on 127.0.0.1:$port as $unit_user"
else
  sed 's/^/     /' "$work/agent.log"
  fatal "agent did not start serving"
fi

status=$(cat "/proc/$agent_pid/status" 2>/dev/null)
check "runs as uid $sockeye_uid ($unit_user)" \
  sh -c 'echo "$1" | grep -qE "^Uid:[[:space:]]+$2[[:space:]]+$2[[:space:]]"' sh "$status" "$sockeye_uid"
check "dropped every capability after start" \
  sh -c 'echo "$1" | grep -E "^Cap(Inh|Prm|Eff|Amb):" | grep -qv "0000000000000000$" && exit 1 || exit 0' sh "$status"
[ "$nnp" = yes ] && check "NoNewPrivs set" sh -c 'echo "$1" | grep -qE "^NoNewPrivs:[[:space:]]+1"' sh "$status"

check "/healthz says ok" sh -c "[ \"\$(curl -fsS --max-time 5 http://127.0.0.1:$port/healthz)\" = ok ]"
scrape /metrics >"$work/metrics.txt"
check "/metrics has sockeye_build_info" grep -q '^sockeye_build_info{' "$work/metrics.txt"
check "/metrics has process_ metrics" grep -q '^process_resident_memory_bytes ' "$work/metrics.txt"
active="^sockeye_backend_connections_active\{backend=\"$backend\"\} 1$"
check "adopted the connection open before start (reads other users' /proc/PID/fd)" \
  wait_for 5 metric_matches "$active"

new_connection
established="^sockeye_backend_connections_established_total\{backend=\"$backend\"\} [1-9]"
check "follows a new connection" wait_for 5 metric_matches "$established"
closed="^sockeye_backend_connections_closed_total\{backend=\"$backend\",closed_by=\"local\"\} [1-9]"
check "counts its close" wait_for 5 metric_matches "$closed"

# SIGHUP: a pool mapping added to the file relabels the backend.
echo 'pool = ["sockeye_test=127.0.0.0/8"]' >>"$config"
kill -HUP "$agent_pid"
check "SIGHUP re-reads the config (pool label appears)" \
  wait_for 5 metric_matches "^sockeye_backend_connections_established_total\{backend=\"$backend\",pool=\"sockeye_test\"\} [1-9]"
check "still running after SIGHUP" kill -0 "$agent_pid"
check "/metrics still served after SIGHUP" sh -c "curl -fs --max-time 5 -o /dev/null http://127.0.0.1:$port/metrics"
check "log says the pool mapping was loaded" grep -qE "configuration reloaded: .*1 pool mappings" "$work/agent.log"

# SIGTERM: exits 0 within 1 s.
start_ns=$(date +%s%N)
kill -TERM "$agent_pid"
exited=0
for _ in $(seq 100); do
  kill -0 "$agent_pid" 2>/dev/null || { exited=1; break; }
  sleep 0.01
done
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
if [ "$exited" = 1 ]; then
  wait "$agent_pid"
  rc=$?
  agent_pid=""
  check "SIGTERM: exited in ${elapsed_ms} ms (<= 1000)" test "$elapsed_ms" -le 1000
  check "SIGTERM: exit status $rc" test "$rc" -eq 0
else
  not_ok "SIGTERM: still running after ${elapsed_ms} ms"
fi
if [ "$failed" -gt 0 ]; then
  echo "     last scrape, test backend:"
  grep -F "backend=\"$backend\"" "$work/last-scrape.txt" 2>/dev/null | grep -v _bucket | sed 's/^/     /'
  echo "     agent log:"
  sed 's/^/     /' "$work/agent.log"
fi

# --- System calls and socket families against the unit's filters -----------------
# The same start, scrape, reload and stop, under strace, then every system
# call made after the exec of sockeye must be in SystemCallFilter= and every
# socket family in RestrictAddressFamilies=.
expand_syscalls() { # @group or name -> names, recursively
  local item
  for item in "$@"; do
    if [[ $item == @* ]]; then
      # shellcheck disable=SC2046 # one name per word
      expand_syscalls $(systemd-analyze syscall-filter "$item" 2>/dev/null |
        sed -n '2,$p' | sed -e 's/^[[:space:]]*//' -e '/^#/d' -e '/^$/d')
    else
      echo "$item"
    fi
  done
}
allowed=$work/allowed.txt
: >"$allowed"
first=1
while IFS= read -r line; do
  if [[ $line == "~"* ]]; then
    [ "$first" = 1 ] && fatal "SystemCallFilter= starts with a deny list; this test expects an allow list"
    expand_syscalls ${line#\~} | sort -u >"$work/deny.txt"
    sort -u "$allowed" | comm -23 - "$work/deny.txt" >"$work/allowed.new"
    mv "$work/allowed.new" "$allowed"
  else
    expand_syscalls $line >>"$allowed"
  fi
  first=0
done < <(unit_values SystemCallFilter)
sort -u -o "$allowed" "$allowed"
check "SystemCallFilter= parsed ($(wc -l <"$allowed") system calls allowed)" test -s "$allowed"
families=$(unit_values RestrictAddressFamilies | tr ' ' '\n' | sed '/^$/d' | sort -u)

port=$(free_port)
sed -i "s/^web.listen-address = .*/web.listen-address = \"127.0.0.1:$port\"/" "$config"
strace -f -qq -o "$work/strace.txt" "${sandbox_argv[@]}" "${setpriv_argv[@]}" "${argv[@]}" \
  >"$work/agent-strace.log" 2>&1 &
strace_pid=$!
if wait_for 20 sh -c "curl -fs --max-time 1 http://127.0.0.1:$port/healthz >/dev/null"; then
  # Signals go to sockeye itself (strace's child after setpriv's exec).
  agent_pid=$(pgrep -x sockeye -P "$strace_pid" | head -n 1)
  new_connection
  sleep 1.2 # one sweep
  scrape /metrics >/dev/null
  kill -HUP "$agent_pid"
  sleep 0.3
  scrape /metrics >/dev/null
  kill -TERM "$agent_pid"
  wait "$strace_pid"
  strace_pid=""
  agent_pid=""
  # Lines after sockeye's execve; setpriv's own calls come before it.
  awk '/execve\("\/usr\/sbin\/sockeye"/ { on = 1; next } on' "$work/strace.txt" >"$work/strace-agent.txt"
  grep -oE '^[0-9]+ +[a-z_0-9]+\(' "$work/strace-agent.txt" | sed -E 's/^[0-9]+ +//; s/\($//' |
    sort -u >"$work/used.txt"
  denied=$(comm -23 "$work/used.txt" "$allowed" | tr '\n' ' ')
  check "$(wc -l <"$work/used.txt") system calls used, all allowed by SystemCallFilter=${denied:+ (denied: $denied)}" \
    test -z "$denied"
  writes=$(grep -E '^[0-9]+ +((open|openat|creat)\(.*(O_WRONLY|O_RDWR|O_CREAT)|(mkdir|mkdirat|unlink|unlinkat|rename|renameat2?|truncate|symlink|symlinkat|link|linkat)\()' \
    "$work/strace-agent.txt" | grep -v ' = -1 ' | head -n 3)
  check "writes no files${writes:+ ($writes)}" test -z "$writes"
  used_families=$(grep -oE 'socket\(AF_[A-Z0-9]+' "$work/strace-agent.txt" | sed 's/socket(//' | sort -u)
  bad_families=$(comm -23 <(echo "$used_families" | sed '/^$/d') <(echo "$families"))
  check "socket families used ($(echo $used_families)) allowed by RestrictAddressFamilies=" \
    test -z "$bad_families"
else
  not_ok "agent under strace did not start"
  sed 's/^/     /' "$work/agent-strace.log"
fi

# --- Reinstall, remove, purge ----------------------------------------------------------------
echo "# local edit" >>/etc/sockeye/sockeye.toml
check "dpkg -i again (reinstall)" sh -c 'dpkg -i "$1" >/dev/null 2>&1' sh "$deb"
check "reinstall keeps the user's uid" test "$(id -u sockeye 2>/dev/null)" = "$sockeye_uid"
check "reinstall keeps the edited conffile" grep -q '^# local edit$' /etc/sockeye/sockeye.toml

check "dpkg --remove sockeye" sh -c 'dpkg --remove sockeye >/dev/null 2>&1'
check "remove: binary gone" test ! -e /usr/sbin/sockeye
check "remove: conffile kept" test -f /etc/sockeye/sockeye.toml

check "dpkg --purge sockeye" sh -c 'dpkg --purge sockeye >/dev/null 2>&1'
installed=0
for path in /usr/sbin/sockeye /etc/sockeye /lib/systemd/system/sockeye.service \
  /usr/share/man/man8/sockeye.8.gz /usr/share/doc/sockeye \
  /etc/systemd/system/sockeye.service \
  /etc/systemd/system/multi-user.target.wants/sockeye.service \
  /var/lib/systemd/deb-systemd-helper-enabled/sockeye.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/sockeye.service \
  /var/lib/systemd/deb-systemd-helper-masked/sockeye.service; do
  check "purge: $path gone" test ! -e "$path" -a ! -L "$path"
done
check "purge: user sockeye gone" sh -c '! getent passwd sockeye >/dev/null'
check "purge: group sockeye gone" sh -c '! getent group sockeye >/dev/null'
check "purge: no dpkg record" \
  sh -c 's=$(dpkg-query -W -f="\${db:Status-Status}" sockeye 2>/dev/null); [ -z "$s" ] || [ "$s" = not-installed ]'

finish
