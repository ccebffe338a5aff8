#!/usr/bin/env bash
# Least privilege: the running agent holds no capability once it has
# started (CapEff, CapPrm and CapAmb in /proc/PID/status), as root and as an
# unprivileged user given the packaged unit's AmbientCapabilities= the way
# systemd would (setpriv); --keep-capabilities keeps them; and the unit's
# ambient set is the one docs/security.md lists.
#
#   sudo tests/e2e/capabilities.sh path/to/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: capabilities.sh path/to/sockeye}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "capabilities.sh: needs root" >&2; exit 1; }
for tool in curl setpriv capsh; do
  command -v $tool >/dev/null || {
    echo "capabilities.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2
    exit 1
  }
done

port=19586
work=$(mktemp -d)
agent_pid=""
stop_agent() {
  if [ -n "$agent_pid" ]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=""
  fi
}
cleanup() {
  stop_agent
  [ -n "${KEEP:-}" ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/e2e/lib.sh
source "$repo/tests/e2e/lib.sh"

# start LOG [PREFIX...] -- [FLAG...]: the agent, serving on loopback.
start() {
  local log=$1 prefix=()
  shift
  while [ "$1" != -- ]; do
    prefix+=("$1")
    shift
  done
  shift
  "${prefix[@]}" "$agent" --include 127.0.86.0/24 --web.listen-address "127.0.0.1:$port" "$@" >"$log" 2>&1 &
  agent_pid=$!
  wait_healthy "127.0.0.1:$port" "$agent_pid" "$log"
}
caps_of() { # PID: CapEff CapPrm CapAmb
  awk '$1 == "CapEff:" { e = $2 } $1 == "CapPrm:" { p = $2 } $1 == "CapAmb:" { a = $2 } END { print e, p, a }' \
    "/proc/$1/status"
}
names() { # MASK: the capability names, upper case, sorted, one line
  capsh --decode="$1" | sed 's/.*=//' | tr ',' '\n' | tr '[:lower:]' '[:upper:]' | sort | tr '\n' ' '
}
zero="0000000000000000 0000000000000000 0000000000000000"
bounding=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)

echo "--- as root"
start "$work/root.log" --
check "CapEff CapPrm CapAmb after start" "$(caps_of "$agent_pid")" "$zero"
stop_agent
start "$work/root-keep.log" -- --keep-capabilities
check "with --keep-capabilities: CapEff = the bounding set it started with" \
  "$(caps_of "$agent_pid" | cut -d' ' -f1)" "$bounding"
stop_agent

echo "--- the packaged unit's ambient set"
unit_caps=$(sed -n 's/^AmbientCapabilities=//p' "$repo/packaging/systemd/sockeye.service" | tr ' ' '\n' | grep . |
  sort | tr '\n' ' ')
# docs/security.md, "The systemd unit": the bullet that names the ambient capabilities.
doc_caps=$(awk '/^## The systemd unit/ { s = 1 } s && /ambient capabilities/ { b = 1 } b { print } b && /;$/ { exit }' \
  "$repo/docs/security.md" | grep -oE 'CAP_[A-Z_]+' | sort | tr '\n' ' ')
check "unit's AmbientCapabilities = docs/security.md's list" "$unit_caps" "$doc_caps"
caps=$(for c in $unit_caps; do
  c=${c#CAP_}
  printf ',+%s' "${c,,}"
done)
caps=${caps#,}
# shellcheck disable=SC2054 # the commas are setpriv's
as_unit=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all,"$caps"
  --ambient-caps=-all,"$caps" --bounding-set=-all,"$caps" --no-new-privs)
start "$work/unit.log" "${as_unit[@]}" --
check "as nobody with the unit's ambient set: CapEff CapPrm CapAmb after start" "$(caps_of "$agent_pid")" "$zero"
stop_agent
start "$work/unit-keep.log" "${as_unit[@]}" -- --keep-capabilities
check "as nobody with --keep-capabilities: CapEff = the unit's ambient set" \
  "$(names "$(caps_of "$agent_pid" | cut -d' ' -f1)")" "$unit_caps"
stop_agent

finish capabilities
