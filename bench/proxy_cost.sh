#!/usr/bin/env bash
# Proxy cost of sockeye on a real nginx reverse proxy with keep-alive
# upstreams (or without: PROXY_COST_UPSTREAM_KEEPALIVE=0), all on loopback:
#   (a) attributed: kernel BPF run time of every sockeye program (BPF stats)
#       plus the agent's own CPU time, as a share of the machine's busy CPU
#       time over the same interval; agent CPU-seconds per million requests;
#       agent peak RSS; events lost at that rate;
#   (b) observed: wrk requests/s and p99 without vs with the agent,
#       alternated ROUNDS times; median ratio and spread. Beside them, the
#       machine's busy CPU time per request in the same runs (all CPUs,
#       steal time excluded): what the agent costs whatever the throughput,
#       which on a shared VM swings with the neighbours.
#
#   sudo bench/proxy_cost.sh build/sockeye [ROUNDS=7] [SECONDS=8]
#
# The agent follows the backends (PROXY_COST_INCLUDE) and, as it does by
# default, the connections the proxy's listeners accept: here only nginx's
# 127.0.0.40:8000 (--frontend-include), not the backends' listeners, which on
# a real proxy host live elsewhere. PROXY_COST_AGENT_ARGS=--no-frontends
# measures the backend side alone.
set -euo pipefail
agent=$(realpath "${1:?usage: proxy_cost.sh path/to/sockeye [rounds] [seconds]}")
rounds=${2:-7}
seconds=${3:-8}
[ "$(id -u)" -eq 0 ] || { echo "proxy_cost.sh: needs root" >&2; exit 1; }
for tool in nginx wrk curl python3; do
  command -v $tool >/dev/null || { echo "proxy_cost.sh: $tool missing (apt-get install nginx wrk curl)" >&2; exit 1; }
done

work=$(mktemp -d)
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

body=$(head -c 1024 /dev/zero | tr '\0' 'x')
# PROXY_COST_UPSTREAM_KEEPALIVE=0: nginx's default instead, a new upstream
# connection per request (HTTP/1.0, the backend closes), so every request
# also pays the connection hooks: connect, storage, two records, close.
upstream_pool="keepalive 32;"
upstream_http='proxy_http_version 1.1; proxy_set_header Connection "";'
upstream_kind="2 keep-alive upstreams"
if [ "${PROXY_COST_UPSTREAM_KEEPALIVE:-1}" = 0 ]; then
  upstream_pool="" upstream_http="" upstream_kind="2 upstreams, a new connection per request"
fi
# PROXY_COST_CLIENT_KEEPALIVE=0: wrk asks for "Connection: close", so every
# request is also a new client (frontend) connection.
wrk_close=()
client_kind="keep-alive clients"
if [ "${PROXY_COST_CLIENT_KEEPALIVE:-1}" = 0 ]; then
  wrk_close=(-H "Connection: close") client_kind="a new client connection per request"
fi
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server 127.0.0.41:8080; server 127.0.0.42:8080; $upstream_pool }
  server {
    listen 127.0.0.40:8000;
    location / { proxy_pass http://app; $upstream_http }
  }
  server {
    listen 127.0.0.41:8080;
    listen 127.0.0.42:8080;
    location / { return 200 "$body"; }
  }
}
CONF
# PROXY_COST_PIN=1: nginx on CPU 1, wrk and the agent on CPU 0, so the agent's
# own threads never run on the proxy's CPU (the BPF programs still do).
pin_proxy=() pin_rest=()
if [ "${PROXY_COST_PIN:-0}" = 1 ]; then pin_proxy=(taskset -c 1) pin_rest=(taskset -c 0); fi
"${pin_proxy[@]}" nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 50); do curl -sf http://127.0.0.40:8000/ >/dev/null && break; sleep 0.1; done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
metrics() { curl -sf "http://127.0.0.1:$port/metrics"; }
sum_metric() { metrics | awk -v m="$1" 'index($0, m)==1 && $1 !~ /^#/ { s += $NF } END { printf "%.9f\n", s }'; }

# PROXY_COST_INCLUDE replaces the backends the agent follows; a network no
# traffic goes to (e.g. 192.0.2.1/32) leaves only the cost every socket pays.
include_args=()
for net in ${PROXY_COST_INCLUDE:-127.0.0.41/32 127.0.0.42/32}; do include_args+=(--include "$net"); done
# PROXY_COST_AGENT_ARGS: more agent flags, e.g. "--probe-mode segment".
read -r -a extra_agent_args <<<"${PROXY_COST_AGENT_ARGS:-}"
start_agent() {
  "${pin_rest[@]}" "$agent" --web.listen-address "127.0.0.1:$port" "${include_args[@]}" \
    --frontend-include 127.0.0.40/32:8000 "${extra_agent_args[@]}" "$@" \
    >"$work/agent.log" 2>&1 &
  agent_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$work/agent.log"; echo "agent did not start" >&2; exit 1
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""; }

# wrk: one thread, 16 connections; prints "rps p99_ms requests busy_us_per_request".
# PROXY_COST_PERF=DIR: record a system-wide perf profile (cpu-clock, call
# graphs) of each wrk run of part (b) into DIR/{with,without}-ROUND.data, to
# see where the observed cost goes beyond the BPF programs' own run time.
hz=$(getconf CLK_TCK)
perf_label=""
run_wrk() {
  if [ -n "${PROXY_COST_PERF:-}" ] && [ -n "$perf_label" ]; then
    perf record -a -g -o "$PROXY_COST_PERF/$perf_label.data" -- sleep "$seconds" >/dev/null 2>&1 &
  fi
  local busy_before busy_after
  read -r busy_before _ < <(cpu_busy_total)
  "${pin_rest[@]}" wrk -t1 -c16 -d"${seconds}s" --latency "${wrk_close[@]}" http://127.0.0.40:8000/ \
    >"$work/wrk.txt"
  read -r busy_after _ < <(cpu_busy_total)
  wait
  python3 - "$work/wrk.txt" "$busy_before" "$busy_after" "$hz" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
busy_ticks = float(sys.argv[3]) - float(sys.argv[2])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
reqs = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{rps:.1f} {float(p99.group(1)) * scale:.3f} {reqs} {busy_ticks / float(sys.argv[4]) / reqs * 1e6:.3f}")
PY
}

# Busy and total ticks over all CPUs: user nice system idle iowait irq
# softirq steal ...; idle, iowait and steal (time the hypervisor gave to
# someone else) are not busy.
cpu_busy_total() { awk '/^cpu / { t=0; for (i=2;i<=NF;i++) t+=$i; print t-$5-$6-$9, t }' /proc/stat; }
agent_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$agent_pid/stat"; }

echo "# sockeye proxy cost: nginx 1 worker, $upstream_kind, $client_kind, 1 KiB responses, wrk -t1 -c16 -d${seconds}s"
echo "# agent: $agent ${include_args[*]} --frontend-include 127.0.0.40/32:8000 ${extra_agent_args[*]}"
echo "# machine: $(nproc) CPUs, $(uname -r)"

# --- (a) attributed cost, BPF stats on.
run_wrk >/dev/null  # warm up nginx's upstream pool
start_agent --bpf-stats
sleep 1
worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -n1)
worker_ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat"; }
read -r busy0 _ < <(cpu_busy_total)
cpu0=$(agent_cpu_ticks)
w0=$(worker_ticks)
bpf0=$(sum_metric sockeye_bpf_program_run_time_seconds_total)
# A prefix: either build of the status program (on_cgroup_ingress, on_cgroup_ingress_cast).
status_metric='sockeye_bpf_program_run_time_seconds_total{program="on_cgroup_ingress'
status0=$(sum_metric "$status_metric")
status_runs_metric='sockeye_bpf_program_runs_total{program="on_cgroup_ingress'
status_runs0=$(sum_metric "$status_runs_metric")
req0=$(sum_metric sockeye_backend_requests_total)
# The frontend side's egress program, either build.
egress_metric='sockeye_bpf_program_run_time_seconds_total{program="on_cgroup_egress'
egress_runs_metric='sockeye_bpf_program_runs_total{program="on_cgroup_egress'
egress0=$(sum_metric "$egress_metric")
egress_runs0=$(sum_metric "$egress_runs_metric")
fe_req0=$(sum_metric 'sockeye_frontend_requests_total{listener="127.0.0.40:8000"')
fe_acc0=$(sum_metric 'sockeye_frontend_connections_accepted_total{listener="127.0.0.40:8000"')
read -r rps p99 total _ < <(run_wrk)
sleep 1.5  # one sweep, so the agent has counted everything
read -r busy1 _ < <(cpu_busy_total)
cpu1=$(agent_cpu_ticks)
w1=$(worker_ticks)
bpf1=$(sum_metric sockeye_bpf_program_run_time_seconds_total)
status1=$(sum_metric "$status_metric")
status_runs1=$(sum_metric "$status_runs_metric")
req1=$(sum_metric sockeye_backend_requests_total)
egress1=$(sum_metric "$egress_metric")
egress_runs1=$(sum_metric "$egress_runs_metric")
fe_req1=$(sum_metric 'sockeye_frontend_requests_total{listener="127.0.0.40:8000"')
fe_acc1=$(sum_metric 'sockeye_frontend_connections_accepted_total{listener="127.0.0.40:8000"')
lost=$(sum_metric sockeye_events_lost_total)
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$agent_pid/status")
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$agent_pid/status")
stop_agent
python3 - "$busy0" "$busy1" "$cpu0" "$cpu1" "$bpf0" "$bpf1" "$req0" "$req1" "$total" "$rps" "$lost" "$hwm" "$hz" "$w0" "$w1" "$rss" "$status0" "$status1" "$status_runs0" "$status_runs1" <<'PY'
import sys
b0, b1, c0, c1, f0, f1, r0, r1, total, rps, lost, hwm, hz, w0, w1, rss, s0, s1, n0, n1 = map(float, sys.argv[1:])
busy = (b1 - b0) / hz
agent_cpu = (c1 - c0) / hz
bpf = f1 - f0
counted = r1 - r0
print(f"(a) {total:.0f} requests at {rps:.0f}/s; sockeye counted {counted:.0f} upstream requests")
print(f"    machine busy CPU {busy:.2f} s; sockeye BPF programs {bpf:.3f} s + agent {agent_cpu:.2f} s "
      f"= {100 * (bpf + agent_cpu) / busy:.2f} % of it (target <= 2 %)")
print(f"    agent CPU per million requests: {agent_cpu / total * 1e6:.2f} s (target <= 1); "
      f"BPF per million requests: {bpf / total * 1e6:.2f} s")
# The HTTP status program (cgroup_skb ingress) runs for every received packet
# on the host, other traffic's included, so its share is printed on its own.
runs = n1 - n0
print(f"    of the BPF time, the HTTP status program (on_cgroup_ingress): {s1 - s0:.3f} s, "
      f"{(s1 - s0) / total * 1e6:.3f} s per million requests, {100 * (s1 - s0) / busy:.2f} % of busy CPU; "
      f"{runs / total:.2f} runs per request, {(s1 - s0) / runs * 1e9 if runs else 0:.1f} ns per run")
print(f"    agent peak RSS {hwm / 1024:.1f} MB, {rss / 1024:.1f} MB at the end; events lost {lost:.0f}")
# The single nginx worker (proxy and backends) is the bottleneck, and most
# hook runs happen in its syscalls and in the loopback softirqs they raise,
# so throughput follows the BPF time as a share of the worker's CPU, not of
# the machine's (an upper bound: some hooks run on wrk's CPU).
worker = (w1 - w0) / hz
print(f"    nginx worker CPU {worker:.2f} s ({worker / total * 1e6:.1f} us per request); "
      f"BPF time as a share of it: {100 * bpf / worker:.2f} % at most")
PY

  python3 - "$egress0" "$egress1" "$egress_runs0" "$egress_runs1" "$fe_req0" "$fe_req1" "$fe_acc0" "$fe_acc1" "$total" <<'PY'
import sys
e0, e1, n0, n1, q0, q1, a0, a1, total = map(float, sys.argv[1:])
runs = n1 - n0
print(f"    frontend 127.0.0.40:8000: sockeye counted {q1 - q0:.0f} requests on {a1 - a0:.0f} accepted connections; "
      f"the egress program (on_cgroup_egress): {e1 - e0:.3f} s, {(e1 - e0) / total * 1e6:.3f} s per million requests, "
      f"{runs / total:.2f} runs per request, {(e1 - e0) / runs * 1e9 if runs else 0:.1f} ns per run")
PY

# --- (b) observed: alternate without / with (BPF stats off). Odd rounds run
# without first, even rounds with first, so a drift of the machine's speed
# during a round does not always favour the same side.
echo "(b) round  rps_without  rps_with  ratio  p99_without_ms  p99_with_ms  cpu_us_per_req_without  with  ratio"
ratios=()
cpu_ratios=()
# PROXY_COST_PLACEBO=1 runs the "with" side without the agent (an A/A run):
# the spread and bias of the harness itself on this machine.
with_agent() {
  if [ "${PROXY_COST_PLACEBO:-0}" = 1 ]; then
    sleep 0.5
    read -r rps_on p99_on _ cpu_on < <(run_wrk)
    return
  fi
  start_agent
  sleep 0.5
  perf_label=with-$r
  read -r rps_on p99_on _ cpu_on < <(run_wrk)
  perf_label=""
  stop_agent
}
for r in $(seq "$rounds"); do
  if (( r % 2 == 0 )); then with_agent; fi
  perf_label=without-$r
  read -r rps_off p99_off _ cpu_off < <(run_wrk)
  perf_label=""
  if (( r % 2 == 1 )); then with_agent; fi
  ratio=$(python3 -c "print(f'{$rps_on / $rps_off:.3f}')")
  ratios+=("$ratio")
  # As a throughput ratio: CPU per request without / with.
  cpu_ratio=$(python3 -c "print(f'{$cpu_off / $cpu_on:.3f}')")
  cpu_ratios+=("$cpu_ratio")
  printf "    %5d  %11.0f  %8.0f  %5s  %14.3f  %11.3f  %22.2f  %4.2f  %5s\n" "$r" "$rps_off" "$rps_on" \
    "$ratio" "$p99_off" "$p99_on" "$cpu_off" "$cpu_on" "$cpu_ratio"
done
python3 -c "
import statistics, sys
n = len(sys.argv) // 2
for label, values, target in (('ratio', sys.argv[1:n + 1], ' (target >= 0.97)'),
                              ('CPU-per-request ratio (without / with)', sys.argv[n + 1:], '')):
    r = sorted(map(float, values))
    print(f'    median {label} {statistics.median(r):.3f} (min {r[0]:.3f}, max {r[-1]:.3f}) over {len(r)} rounds{target}')
" "${ratios[@]}" "${cpu_ratios[@]}"
