#!/usr/bin/env bash
# A proxy in a container: a real nginx in a network namespace of its own, with
# an upstream keep-alive pool to a backend in the same namespace, and sockeye
# on the host. The agent is restarted while the pool's connections are idle:
#   1. the restarted agent adopts every idle pool connection (it creates its
#      adoption iterator inside the namespace) and counts the traffic after
#      its start exactly against nginx's own log ($upstream_bytes_*);
#   2. started without CAP_SYS_ADMIN (capsh), it cannot enter the namespace:
#      it still starts, says so in its log, and exports
#      sockeye_adoption_network_namespaces{result="not_walked"} 1.
# All traffic stays inside the namespace (its own loopback); the agent serves
# its metrics on the host's loopback.
#
#   sudo tests/e2e/container_restart.sh path/to/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: container_restart.sh path/to/sockeye}")
[ "$(id -u)" -eq 0 ] || { echo "container_restart.sh: needs root" >&2; exit 1; }
for tool in nginx wrk curl ip ss capsh; do
  command -v $tool >/dev/null || {
    echo "container_restart.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2
    exit 1
  }
done

ns=sockeye-e2e-ctr
backend=127.0.0.2:8081
port=19581
work=$(mktemp -d)
chmod 755 "$work" # nginx workers (www-data) serve body.txt from it
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
  [ -f "$work/nginx.pid" ] && ip netns exec $ns nginx -c "$work/nginx.conf" -s stop 2>/dev/null
  sleep 0.2
  ip netns del $ns 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

fail=0
check() { # check NAME ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then
    echo "ok   $1: $2"
  else
    echo "FAIL $1: $2, expected $3"
    fail=1
  fi
}

ip netns del $ns 2>/dev/null || true
ip netns add $ns
ip netns exec $ns ip link set lo up

head -c 700 /dev/zero | tr '\0' x >"$work/body.txt"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 256; }
http {
  access_log off;
  log_format upstream '\$upstream_addr \$upstream_bytes_sent \$upstream_bytes_received';
  upstream pool { server $backend; keepalive 8; keepalive_timeout 300s; }
  server {
    listen 127.0.0.1:8080;
    access_log $work/upstream.log upstream;
    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen $backend;
    keepalive_timeout 300s;
    location / { root $work; try_files /body.txt =404; }
  }
}
EOF
ip netns exec $ns nginx -c "$work/nginx.conf"

# start_agent LOG [PREFIX...]: the agent on the host, following the backend.
start_agent() {
  local log=$1
  shift
  "$@" "$agent" --include "${backend%:*}/32:${backend#*:}" --web.listen-address "127.0.0.1:$port" >"$log" 2>&1 &
  agent_pid=$!
  for _ in $(seq 100); do
    curl -fs "127.0.0.1:$port/metrics" >/dev/null && return 0
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: the agent did not start:"
  cat "$log"
  exit 1
}
# metric NAME [LABEL-TEXT]: the sum of the matching series, 0 when none.
metric() {
  curl -fs "127.0.0.1:$port/metrics" |
    awk -v n="$1" -v l="${2:-}" '($1 == n || index($1, n "{") == 1) && index($1, l) { v += $2 } END { print v + 0 }'
}
load() { ip netns exec $ns wrk -t1 -c"$1" -d"$2"s http://127.0.0.1:8080/ >/dev/null; }
# When wrk stops, the requests it leaves in flight are aborted and nginx closes
# their upstream connections (a loaded machine once lost the whole pool so).
# Requests that complete afterwards leave at least one idle pool connection.
complete_requests() {
  for _ in 1 2 3 4; do ip netns exec $ns curl -fs -o /dev/null http://127.0.0.1:8080/; done
}
pool_open() { ip netns exec $ns ss -Htn state established dst "${backend%:*}" "dport = :${backend#*:}" | wc -l; }

echo "--- 1. the restarted agent adopts the idle pool inside the namespace"
start_agent "$work/agent1.log"
load 4 2
complete_requests
stop_agent
open=$(pool_open)
if [ "$open" -eq 0 ]; then
  echo "FAIL: nginx kept no idle upstream connection; its error log:"
  tail -n 20 "$work/error.log"
  exit 1
fi
mark=$(wc -l <"$work/upstream.log")
start_agent "$work/agent2.log"
adopted=$(sed -n 's/.*following \([0-9]*\) connections that were open at start-up.*/\1/p' "$work/agent2.log")
check "connections adopted at start-up (agent log) vs idle pool connections (ss in the namespace)" "$adopted" "$open"
check "active connections to the backend" "$(metric sockeye_backend_connections_active "backend=\"$backend\"")" "$open"
check "namespaces that could not be entered" \
  "$(metric sockeye_adoption_network_namespaces 'result="not_walked"')" 0
load 2 2
attempts=$(tail -n +$((mark + 1)) "$work/upstream.log" | wc -l)
sent=$(tail -n +$((mark + 1)) "$work/upstream.log" | awk '{ s += $2 } END { print s + 0 }')
received=$(tail -n +$((mark + 1)) "$work/upstream.log" | awk '{ s += $3 } END { print s + 0 }')
# Where the sweep walks TCP's hash tables (kernels that refuse map-element
# iterators, such as some 6.18 builds), it sees only the agent's own
# namespace: these connections report their totals at state changes and
# close. A reload makes nginx close its idle upstream connections.
ip netns exec $ns nginx -c "$work/nginx.conf" -s reload 2>/dev/null
for _ in $(seq 100); do
  [ "$(metric sockeye_backend_connections_active "backend=\"$backend\"")" = 0 ] && break
  sleep 0.1
done
check "active connections after nginx closed its pool" \
  "$(metric sockeye_backend_connections_active "backend=\"$backend\"")" 0
check "requests since the restart (nginx upstream attempts: $attempts)" \
  "$(metric sockeye_backend_requests_total "backend=\"$backend\"")" "$attempts"
check "sent bytes since the restart (sum of \$upstream_bytes_sent)" \
  "$(metric sockeye_backend_sent_bytes_total "backend=\"$backend\"")" "$sent"
check "received bytes since the restart (sum of \$upstream_bytes_received)" \
  "$(metric sockeye_backend_received_bytes_total "backend=\"$backend\"")" "$received"
stop_agent

echo "--- 2. without CAP_SYS_ADMIN the namespace is counted as not searched"
start_agent "$work/agent3.log" capsh --drop=cap_sys_admin -- -c 'exec "$0" "$@"'
check "namespaces that could not be entered" \
  "$(metric sockeye_adoption_network_namespaces 'result="not_walked"')" 1
grep -q "network namespaces .* were not searched for connections open before start-up" \
  "$work/agent3.log" && logged=yes || logged=no
check "the log says which namespaces were not searched, and why" "$logged" yes
stop_agent

[ $fail -eq 0 ] && echo "container restart: all checks passed" || echo "container restart: FAILED"
exit $fail
