#!/usr/bin/env bash
# What --cgroup saves: the HTTP status programs attached to the cgroup v2
# root (every process's packets run them) against the proxy's own cgroup
# (only its sockets' packets do), side by side in one run. An nginx proxy
# (keep-alive clients and upstreams, 1 KiB responses) in a cgroup of its
# own; its backends (a second nginx) and wrk outside it, as a proxy host's
# other processes. For each mode and round: wrk for SECONDS under a
# system-wide perf profile, and per proxied request the CPU in sockeye's
# programs, the tracepoint dispatch and the cgroup dispatch; the agent's
# response count shows it read the proxy's responses both ways.
#
#   sudo bench/cgroup_scope_cost.sh build/sockeye [ROUNDS=3] [SECONDS=4]
set -euo pipefail
agent=$(realpath "${1:?usage: cgroup_scope_cost.sh path/to/sockeye [rounds] [seconds]}")
rounds=${2:-3}
seconds=${3:-4}
[ "$(id -u)" -eq 0 ] || { echo "cgroup_scope_cost.sh: needs root" >&2; exit 1; }
for tool in nginx wrk curl perf python3; do
  command -v $tool >/dev/null || {
    echo "cgroup_scope_cost.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2; exit 1; }
done
root=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
[ -n "$root" ] || { echo "cgroup_scope_cost.sh: no cgroup v2 hierarchy is mounted" >&2; exit 1; }
work=$(mktemp -d)
cgroup=$root/sockeye-bench-proxy
mkdir -p "$cgroup"
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  for pid in "$work"/*.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; done
  sleep 0.3
  rmdir "$cgroup" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

body=$(head -c 1024 /dev/zero | tr '\0' 'x')
cat >"$work/proxy.conf" <<CONF
worker_processes 1;
pid $work/proxy.pid;
error_log $work/proxy.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server 127.0.0.41:8080; server 127.0.0.42:8080; keepalive 32; }
  server {
    listen 127.0.0.40:8000;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
cat >"$work/backend.conf" <<CONF
worker_processes 1;
pid $work/backend.pid;
error_log $work/backend.log;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.41:8080; listen 127.0.0.42:8080; location / { return 200 "$body"; } }
}
CONF
nginx -c "$work/backend.conf" -p "$work"
# The proxy starts inside its cgroup, so its listener and every socket it
# makes belong to it.
bash -c "echo \$\$ > '$cgroup/cgroup.procs'; exec nginx -c '$work/proxy.conf' -p '$work'"
for _ in $(seq 50); do curl -sf http://127.0.0.40:8000/ >/dev/null && break; sleep 0.1; done
wrk -t1 -c16 -d2s http://127.0.0.40:8000/ >/dev/null  # warm up the upstream pool

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "# sockeye --cgroup: nginx proxy in $cgroup, its backends and wrk outside; wrk -t1 -c16 -d${seconds}s"
echo "# machine: $(nproc) CPUs, $(uname -r)"
echo "mode    round  requests  busy_us_per_req  programs  tracepoint_dispatch  cgroup_dispatch  sockeye_us_per_req  responses_read"
for r in $(seq "$rounds"); do
  for mode in root scoped; do
    scope=()
    [ "$mode" = scoped ] && scope=(--cgroup "$cgroup")
    "$agent" --web.listen-address "127.0.0.1:$port" --include 127.0.0.41/32 --include 127.0.0.42/32 \
      --frontend-include 127.0.0.40/32:8000 "${scope[@]}" >"$work/agent.log" 2>&1 &
    agent_pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    responses() {
      curl -sf "http://127.0.0.1:$port/metrics" |
        awk '/^sockeye_(backend|frontend)_responses_total/ { s += $NF } END { printf "%d\n", s }'
    }
    before=$(responses)
    perf record -a -g -F 4000 -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>&1 &
    wrk -t1 -c16 -d"${seconds}s" http://127.0.0.40:8000/ >"$work/wrk.txt"
    wait %2 2>/dev/null || true
    sleep 1.5  # one sweep
    read_now=$(( $(responses) - before ))
    kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
    requests=$(grep -oE '[0-9]+ requests in' "$work/wrk.txt" | cut -d' ' -f1)
    perf report -i "$work/perf.data" --no-children --sort sym -g none -F sample,sym -q 2>/dev/null |
      python3 -c '
import re, sys
mode, rnd, reqs, read = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
groups = [("programs", r"^bpf_prog_"),
          ("tracepoint", r"bpf_trace_run|__bpf_trace_|__traceiter_|bpf_trampoline"),
          ("cgroup", r"__cgroup_bpf_run|bpf_prog_run_array_cg|cgroup_bpf|__bpf_prog_run_save_cb"),
          ("idle", r"halt|idle|cpuidle")]
total = {name: 0 for name, _ in groups}
other = 0
for line in sys.stdin:
    m = re.match(r"\s*(\d+)\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    name = next((n for n, p in groups if re.search(p, m.group(2).strip())), None)
    if name:
        total[name] += int(m.group(1))
    else:
        other += int(m.group(1))
us = lambda samples: samples / 4000 / reqs * 1e6  # perf -F 4000: one sample is 1/4000 s
busy = other + total["programs"] + total["tracepoint"] + total["cgroup"]
ours = total["programs"] + total["tracepoint"] + total["cgroup"]
programs, tracepoint, cgroup = (us(total[n]) for n in ("programs", "tracepoint", "cgroup"))
print(f"{mode:6}  {rnd:>5}  {reqs:8}  {us(busy):15.1f}  {programs:8.2f}  {tracepoint:19.2f}  "
      f"{cgroup:15.2f}  {us(ours):18.2f}  {read / reqs:.2f} a request")
' "$mode" "$r" "$requests" "$read_now"
  done
done
