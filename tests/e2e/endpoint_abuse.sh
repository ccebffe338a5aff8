#!/usr/bin/env bash
# The metrics endpoint under abuse while the agent follows a loaded proxy:
# 500 slowloris connections, 1,000 concurrent scrapers, 1 MiB headers and
# random bytes (tests/e2e/endpoint_abuse.py), beside a real nginx pool driven
# by wrk. The honest scraper runs as a process of its own, as Prometheus would.
# Required: every honest /healthz and /metrics request answered within
# 1 s, no record lost that the load alone would not lose, and the agent's
# memory and file descriptors bounded.
#
#   sudo tests/e2e/endpoint_abuse.sh path/to/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: endpoint_abuse.sh path/to/sockeye}")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "endpoint_abuse.sh: needs root" >&2; exit 1; }
for tool in nginx wrk curl python3; do
  command -v $tool >/dev/null || { echo "endpoint_abuse.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2; exit 1; }
done
ulimit -n 8192 # the abuse holds ~1,600 sockets; the agent caps itself at 1,024 connections

work=$(mktemp -d)
chmod 755 "$work"
port=19586
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && nginx -c "$work/nginx.conf" -s stop 2>/dev/null
  [ -n "${KEEP:-}" ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
metric() { metric_sum "127.0.0.1:$port" "$@"; }

head -c 1024 /dev/zero | tr '\0' x >"$work/1k"
cat >"$work/nginx.conf" <<NGINX
worker_processes 1; pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 1024; }
http { access_log off;
  upstream pool { server 127.0.84.1:8080; keepalive 16; }
  server { listen 127.0.84.100:8080;
    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.84.1:8080; location / { root $work; try_files /1k =404; } }
}
NGINX
nginx -c "$work/nginx.conf"
"$agent" --include 127.0.84.0/24 --web.listen-address "127.0.0.1:$port" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
wait_healthy "127.0.0.1:$port" "$agent_pid" "$work/agent.log"
fds() { ls "/proc/$agent_pid/fd" | wc -l; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$agent_pid/status"; }
hwm_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$agent_pid/status"; }

echo "--- the load alone (5 s)"
wrk -t1 -c16 -d5s http://127.0.84.100:8080/ | grep -E "Requests/sec"
lost_before=$(metric sockeye_events_lost_total)
fds_before=$(fds)
rss_before=$(rss_kb)
echo "     agent: $fds_before fds, RSS $rss_before KiB, records lost $lost_before"

echo "--- the load with the abuse (10 s)"
wrk -t1 -c16 -d10s http://127.0.84.100:8080/ >"$work/wrk.txt" &
wrk_pid=$!
python3 "$here/endpoint_abuse.py" "127.0.0.1:$port" 10 honest >"$work/honest.txt" &
honest_pid=$!
python3 "$here/endpoint_abuse.py" "127.0.0.1:$port" 10 abuse >"$work/abuse.txt"
wait $honest_pid
fds_during=$(fds)
wait $wrk_pid
grep -E "Requests/sec" "$work/wrk.txt"
cat "$work/abuse.txt" "$work/honest.txt"
fig() { cat "$work/abuse.txt" "$work/honest.txt" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
check "honest requests failed or slower than 1 s" "$(fig honest_failed)" 0
check_cmp "honest requests answered" "$(fig honest_ok)" -ge 30
check_cmp "slowest honest request (ms)" "$(fig honest_max_ms | cut -d. -f1)" -le 1000
check_cmp "abusive scrapes served (pages)" "$(fig abusive_pages)" -gt 0
check_cmp "1 MiB headers answered 431 or closed" "$(($(fig big_header_431) + $(fig big_header_closed)))" -gt 0
check "agent alive" "$(kill -0 $agent_pid 2>/dev/null && echo yes || echo no)" yes
check "records lost beyond the load's own" "$(($(metric sockeye_events_lost_total) - lost_before))" 0
sleep 6 # the header deadline (5 s) closes what the abuse left open
fds_after=$(fds)
echo "     agent: $fds_during fds during the abuse, $fds_after after; RSS peak $(hwm_kb) KiB, now $(rss_kb) KiB"
check_cmp "agent fds during the abuse (the cap: 1,024 connections)" "$fds_during" -le $((fds_before + 1100))
check_cmp "agent fds after the abuse" "$fds_after" -le $((fds_before + 20))
check_cmp "agent RSS peak (KiB)" "$(hwm_kb)" -le 200000
curl -fs -m 5 "127.0.0.1:$port/metrics" | grep '^sockeye_http_connections_rejected_total' | sed 's/^/     /'

finish "endpoint abuse"
