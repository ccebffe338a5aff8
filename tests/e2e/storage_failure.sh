#!/usr/bin/env bash
# Socket-storage allocation failure: connects whose socket storage the
# kernel refuses must be counted (sockeye_connections_unfollowed_total),
# never silent, and the agent must stay alive. The kernel charges socket
# storage to the socket's option memory, capped by net.core.optmem_max
# (per network namespace since Linux 6.8): in a namespace of its own, with
# the cap below one storage entry, every connect's storage is refused. The
# same connects with the default cap first show they are followed there.
# A memory cgroup limit on the agent does not make it fail: docs/security.md,
# "Failure modes", says why (measured).
#
#   sudo tests/e2e/storage_failure.sh path/to/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: storage_failure.sh path/to/sockeye}")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "storage_failure.sh: needs root" >&2; exit 1; }
for tool in ip curl python3 sysctl; do
  command -v $tool >/dev/null || {
    echo "storage_failure.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2
    exit 1
  }
done
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# Before 6.8 the cap is one for the whole host: lowering it would starve
# every socket on the machine, not just the test's.
read -r major minor < <(uname -r | awk -F'[.-]' '{ print $1, $2 }')
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 8 ]; }; then
  echo "storage_failure.sh: skipped: net.core.optmem_max is per network namespace from Linux 6.8 on ($(uname -r))"
  exit 77
fi

port=19587
backend=127.0.86.1:8080
ns=sockeye-optmem-$$
work=$(mktemp -d)
agent_pid=""
server_pid=""
cleanup() {
  for p in $agent_pid $server_pid; do kill "$p" 2>/dev/null || true; done
  for p in $agent_pid $server_pid; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
# The backend, in the namespace: answers every request with a few bytes.
# (Started without the function, so that $! is the server itself.)
ip netns exec "$ns" python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
' "${backend%:*}" "${backend#*:}" &
server_pid=$!

"$agent" --include "${backend%:*}/32" --web.listen-address "127.0.0.1:$port" >"$work/agent.log" 2>&1 &
agent_pid=$!
wait_healthy "127.0.0.1:$port" "$agent_pid" "$work/agent.log"
for _ in $(seq 50); do in_ns curl -fs -o /dev/null "http://$backend/" && break; sleep 0.1; done

# N connects from inside the namespace, one request each; prints how many
# succeeded.
connects() {
  local ok=0
  for _ in $(seq "$1"); do in_ns curl -fs -o /dev/null --max-time 2 "http://$backend/" && ok=$((ok + 1)); done
  echo "$ok"
}
established() { metric_sum "127.0.0.1:$port" sockeye_backend_connections_established_total; }
unfollowed() { metric_sum "127.0.0.1:$port" sockeye_connections_unfollowed_total; }
settle() { sleep 1.5; } # the agent reads and aggregates records on its own tick

n=20
default_cap=$(in_ns sysctl -n net.core.optmem_max)
host_cap=$(sysctl -n net.core.optmem_max)
echo "--- $n connects with net.core.optmem_max $default_cap (the default)"
settle # the connects that waited for the backend above are counted first
est0=$(established) unf0=$(unfollowed)
check "connects answered" "$(connects $n)" $n
settle
check "connections followed" "$(($(established) - est0))" $n
check "storage allocations refused" "$(($(unfollowed) - unf0))" 0

echo "--- $n connects with net.core.optmem_max 64 in the namespace (below one storage entry)"
in_ns sysctl -qw net.core.optmem_max=64
check "the host's own cap unchanged" "$(sysctl -n net.core.optmem_max)" "$host_cap"
est1=$(established) unf1=$(unfollowed)
check "connects answered (the traffic itself does not need the option memory)" "$(connects $n)" $n
settle
check "storage allocations refused, counted" "$(($(unfollowed) - unf1))" $n
check "connections followed" "$(($(established) - est1))" 0
check "agent alive and healthy" "$(curl -fs --max-time 1 "127.0.0.1:$port/healthz" >/dev/null && kill -0 $agent_pid && echo yes || echo no)" yes

echo "--- the cap restored: followed again"
in_ns sysctl -qw net.core.optmem_max="$default_cap"
est2=$(established)
check "connects answered" "$(connects $n)" $n
settle
check "connections followed" "$(($(established) - est2))" $n

finish "storage failure"
