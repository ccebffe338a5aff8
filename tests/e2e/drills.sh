#!/usr/bin/env bash
# Why this file is long (~410 lines): the four drills share one nginx setup
# (proxy, backends, keep-alive pools) and the helpers that compare sockeye's
# counters with nginx's log; split apart, each would repeat them.
#
# Fault drills against a real nginx (a proxy with upstream keep-alive pools in
# front of nginx backends, all on loopback), each one ending in sockeye's
# counters compared with nginx's own upstream log ($upstream_bytes_sent,
# $upstream_bytes_received, one line per attempt) and the backends' count of
# accepted connections (stub_status):
#   1. a 4 KiB ring buffer under wrk load: losses counted, the agent alive,
#      requests, bytes and connections exact (records the ring had no room
#      for wait in a kernel map: sockeye_events_deferred_total);
#   2. kill -9 mid-run: no BPF program or link of the dead agent left in the
#      kernel, process_start_time_seconds moves, the pool connections open
#      across the restart count exactly from the restart on;
#   3. 100 SIGHUPs within a second while scraping and while traffic runs;
#   4. map limits: 64 connections open at once with --hot-slots 16, 9
#      backends with --max-backends 4.
# The capabilities after start are tests/e2e/capabilities.sh. Loads are
# bounded in time and connections; traffic stays on 127.0.83.x.
#
#   sudo tests/e2e/drills.sh path/to/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: drills.sh path/to/sockeye}")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "drills.sh: needs root" >&2; exit 1; }
for tool in nginx wrk curl bpftool python3 ss; do
  command -v $tool >/dev/null || {
    echo "drills.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2
    exit 1
  }
done

work=$(mktemp -d)
chmod 755 "$work" # nginx workers (www-data) write their logs and read body.txt here
port=19584
status_port=19585 # the backends' stub_status
front=127.0.83.100:8080
churn=127.0.83.1:8080 # keepalive 4 under 16 clients: connections open and close all the time
pool=127.0.83.2:8080  # keepalive 64: connections stay open
overflow_backends=(127.0.83.11:8080 127.0.83.12:8080 127.0.83.13:8080 127.0.83.14:8080
  127.0.83.15:8080 127.0.83.16:8080 127.0.83.17:8080 127.0.83.18:8080)
# The backend side only: its checks count adopted backend connections and
# hot slots, which followed client connections would share.
filters=(--include 127.0.83.0/24 --exclude "${front%:*}/32" --no-frontends)
agent_pid=""
stop_agent() {
  if [ -n "$agent_pid" ]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=""
  fi
}
bg_pids=()
cleanup() {
  stop_agent
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && nginx -c "$work/nginx.conf" -s stop 2>/dev/null
  [ -f "$work/backends.pid" ] && nginx -c "$work/backends.conf" -s stop 2>/dev/null
  [ -n "${KEEP:-}" ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

head -c 700 /dev/zero | tr '\0' x >"$work/body.txt"
# Two nginx instances: the proxy is reloaded to close its pools, the
# backends' own count of accepted connections (stub_status) runs on.
{
  echo "worker_processes 1; pid $work/backends.pid; error_log $work/backends.err;"
  echo "events { worker_connections 1024; }"
  echo "http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;"
  echo "  server { listen 127.0.0.1:$status_port; location / { stub_status; } }"
  echo "  server {"
  for b in $churn $pool "${overflow_backends[@]}"; do echo "    listen $b;"; done
  echo "    location / { root $work; try_files /body.txt =404; }"
  echo "  }"
  echo "}"
} >"$work/backends.conf"
{
  echo "worker_processes 1; pid $work/nginx.pid; error_log $work/error.log;"
  echo "events { worker_connections 1024; }"
  echo "http { access_log off; keepalive_requests 1000000;"
  echo "  log_format up '\$upstream_addr \$upstream_bytes_sent \$upstream_bytes_received';"
  echo "  upstream churn { server $churn; keepalive 4; keepalive_requests 1000000; }"
  echo "  upstream pool { server $pool; keepalive 64; keepalive_requests 1000000; keepalive_timeout 300s; }"
  for i in "${!overflow_backends[@]}"; do echo "  upstream o$i { server ${overflow_backends[$i]}; keepalive 2; }"; done
  echo "  server { listen $front; access_log $work/upstream.log up;"
  echo "    proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_next_upstream off;"
  echo "    location /churn { proxy_pass http://churn; }"
  echo "    location /pool { proxy_pass http://pool; }"
  for i in "${!overflow_backends[@]}"; do echo "    location /o$i { proxy_pass http://o$i; }"; done
  echo "  }"
  echo "}"
} >"$work/nginx.conf"
nginx -c "$work/backends.conf"
nginx -c "$work/nginx.conf"

# start_agent LOG [FLAG...]: the agent following the backends (not the
# clients' connections to the proxy).
start_agent() {
  local log=$1
  shift
  "$agent" "${filters[@]}" --web.listen-address "127.0.0.1:$port" "$@" >"$log" 2>&1 &
  agent_pid=$!
  wait_healthy "127.0.0.1:$port" "$agent_pid" "$log"
}
scrape() { curl -fs --max-time 5 "127.0.0.1:$port/metrics"; }
metric() { metric_sum "127.0.0.1:$port" "$@"; } # NAME [LABEL-TEXT...]
load() { wrk -t1 -c"$1" -d"$2"s "http://$front$3" >/dev/null; }
# Requests that complete after wrk stopped (it aborts the ones in flight and
# nginx closes their upstream connections): the pool keeps some open.
complete_requests() { for _ in 1 2 3 4; do curl -fs -o /dev/null "http://$front$1"; done; }
log_mark() { wc -l <"$work/upstream.log"; }
# nginx's counts for BACKEND in the upstream log after line MARK. An attempt
# that sent nothing (its client went away first) is no request.
ngx_requests() { tail -n +$(($2 + 1)) "$work/upstream.log" | awk -v a="$1" '$1 == a && $2 > 0' | wc -l; }
ngx_sent() { tail -n +$(($2 + 1)) "$work/upstream.log" | awk -v a="$1" '$1 == a { s += $2 } END { print s + 0 }'; }
ngx_received() { tail -n +$(($2 + 1)) "$work/upstream.log" | awk -v a="$1" '$1 == a { s += $3 } END { print s + 0 }'; }
# Connections the backends accepted, this read's own included.
accepts() { curl -fs "127.0.0.1:$status_port/" | awk 'NR == 3 { print $1 }'; }
# Upstream connections opened since the accepts() value MARK was read.
opened_since() { echo $(($(accepts) - $1 - 1)); }
pool_open() { ss -Htn state established dst "${1%:*}" "dport = :${1#*:}" | wc -l; }
# nginx closes its idle upstream connections when it reloads; the agent then
# has every close. Waits up to 8 s for the active connections to reach 0.
close_pools() {
  nginx -c "$work/nginx.conf" -s reload
  for _ in $(seq 80); do
    [ "$(metric sockeye_backend_connections_active)" = 0 ] && break
    sleep 0.1
  done
  sleep 1.2 # a sweep interval for the last progress records
}
# same NAME ACTUAL EXPECTED: an exact check, losses or not: a record the ring
# buffer has no room for waits in the kernel's unsent_records map.
same() { check "$@"; }
# exact NAME BACKEND LOG-MARK: sockeye's counters of BACKEND against nginx's
# upstream log after the mark.
exact() {
  local b=$2 m=$3
  same "$1: requests = nginx's upstream requests" \
    "$(metric sockeye_backend_requests_total "backend=\"$b\"")" "$(ngx_requests "$b" "$m")"
  same "$1: sent bytes = sum of \$upstream_bytes_sent" \
    "$(metric sockeye_backend_sent_bytes_total "backend=\"$b\"")" "$(ngx_sent "$b" "$m")"
  same "$1: received bytes = sum of \$upstream_bytes_received" \
    "$(metric sockeye_backend_received_bytes_total "backend=\"$b\"")" "$(ngx_received "$b" "$m")"
}
# connections NAME ACCEPTS-MARK: every backend's connections since the mark
# (left in $opened).
connections() {
  opened=$(opened_since "$2")
  check "$1: active connections after nginx closed its pools" "$(metric sockeye_backend_connections_active)" 0
  same "$1: connections established = accepted by the backends" \
    "$(metric sockeye_backend_connections_established_total)" "$opened"
  same "$1: connections closed = accepted by the backends" \
    "$(metric sockeye_backend_connections_closed_total)" "$opened"
}
alive() { kill -0 "$agent_pid" 2>/dev/null && curl -fs --max-time 1 "127.0.0.1:$port/healthz" || echo dead; }
for _ in $(seq 50); do curl -fs -o /dev/null "http://$front/pool" && break; sleep 0.1; done
nginx -c "$work/nginx.conf" -s reload # the pool connection of that probe closes
sleep 0.5

echo "--- 1. ring buffer of 4 KiB under load"
m=$(log_mark)
a=$(accepts)
# A sweep every 100 ms: the full sweep (every 30 intervals) retires connections
# whose close record was lost within 3 s.
start_agent "$work/agent1.log" --ringbuf-size 4KiB --sweep-interval 100ms
load 16 4 /churn &
bg_pids+=($!)
load 8 4 /pool
wait "${bg_pids[@]}"
bg_pids=()
close_pools
lost=$(metric sockeye_events_lost_total)
echo "     records lost (sockeye_events_lost_total): $lost, by kind:" \
  "$(scrape | awk '/^sockeye_events_lost_total\{/ && $2 > 0 { match($1, /kind="[a-z_]+"/); printf "%s=%s ", substr($1, RSTART + 6, RLENGTH - 7), $2 }')"
echo "     records processed: $(metric sockeye_events_total); connections retired by a full sweep" \
  "(close record not yet in): $(metric sockeye_connections_retired_total); turns lost: $(metric sockeye_turns_lost_total)"
check_cmp "records lost with a 4 KiB ring buffer (sockeye_events_lost_total)" "$lost" -gt 0
check "agent alive (/healthz)" "$(alive)" ok
echo "     records deferred to the kernel map (sockeye_events_deferred_total): $(metric sockeye_events_deferred_total)"
exact "churn pool $churn" "$churn" "$m"
exact "keep-alive pool $pool" "$pool" "$m"
connections "both pools" "$a"
# Every connection's opening and closing record is either counted or lost and
# counted as lost.
check "connections established + their records lost (kind=connected) = accepted by the backends" \
  $(($(metric sockeye_backend_connections_established_total) + $(metric sockeye_events_lost_total 'kind="connected"'))) \
  "$opened"
check "connections closed + their records lost (kind=closed) = accepted by the backends" \
  $(($(metric sockeye_backend_connections_closed_total) + $(metric sockeye_events_lost_total 'kind="closed"'))) \
  "$opened"
stop_agent

echo "--- 2. kill -9 mid-run and a restart"
prog_ids() { # PID: the ids of the BPF programs and links it holds
  grep -hs -E '^(prog_id|link_id):' /proc/"$1"/fdinfo/* | sort -u
}
count_progs() { # FILE NAME...: programs in bpftool's list FILE with one of these names
  local file=$1
  shift
  python3 -c 'import json, sys
names = set(sys.argv[1:])
print(sum(1 for p in json.load(sys.stdin) if p.get("name") in names))' "$@" <"$file"
}
# FILE: programs in bpftool's list FILE named like the agent's, not there
# before it started and loaded no later than its last: also those it may
# have attached and let go of (no descriptor of its own to find them by).
count_agents_progs() {
  python3 -c 'import json, sys
before = set(p["id"] for p in json.load(open(sys.argv[1])))
first, last, names = int(sys.argv[2]), int(sys.argv[3]), set(sys.argv[5:])
print(sum(1 for p in json.load(open(sys.argv[4])) if p.get("name") in names and p["id"] not in before
          and first <= p["id"] <= last))' "$work/progs-before.json" "${progs[0]}" "${progs[-1]}" "$1" "${names[@]}"
}
live_ids() { # KIND (prog, link) ID...: how many of these ids the kernel still has
  local kind=$1
  shift
  bpftool "$kind" show -j | python3 -c 'import json, sys
ids = set(int(i) for i in sys.argv[1:])
print(sum(1 for p in json.load(sys.stdin) if p.get("id") in ids))' "$@"
}
bpftool prog show -j >"$work/progs-before.json"
start_agent "$work/agent2a.log"
start1=$(metric process_start_time_seconds)
held=$(prog_ids "$agent_pid")
mapfile -t progs < <(awk -F'\t' '$1 == "prog_id:" { print $2 }' <<<"$held" | sort -nu)
mapfile -t links < <(awk -F'\t' '$1 == "link_id:" { print $2 }' <<<"$held" | sort -u)
mapfile -t names < <(for id in "${progs[@]}"; do bpftool prog show id "$id" -j |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["name"])'; done | sort -u)
echo "     the running agent holds ${#progs[@]} programs (${#names[@]} names) and ${#links[@]} links"
check_cmp "BPF links held by the running agent" "${#links[@]}" -gt 0
bpftool prog show -j >"$work/progs-running.json"
before=$(count_progs "$work/progs-before.json" "${names[@]}")
running=$(count_progs "$work/progs-running.json" "${names[@]}")
load 4 4 /pool &
bg_pids+=($!)
sleep 2
kill -9 "$agent_pid"
{ wait "$agent_pid"; } 2>/dev/null || true
agent_pid=""
for _ in $(seq 50); do
  [ "$(live_ids prog "${progs[@]}")" = 0 ] && [ "$(live_ids link "${links[@]}")" = 0 ] && break
  sleep 0.1
done
bpftool prog show -j >"$work/progs-after.json"
after=$(count_progs "$work/progs-after.json" "${names[@]}")
echo "     programs named like sockeye's: $before before start, $running while running, $after after kill -9" \
  "(other agents on the host count too)"
check "programs of the killed agent still loaded (bpftool prog show)" "$(live_ids prog "${progs[@]}")" 0
check "links of the killed agent still attached (bpftool link show)" "$(live_ids link "${links[@]}")" 0
check_cmp "programs named like sockeye's loaded by the agent, while running" \
  "$(count_agents_progs "$work/progs-running.json")" -ge "${#progs[@]}"
check "programs named like sockeye's loaded by the agent, after kill -9" \
  "$(count_agents_progs "$work/progs-after.json")" 0
wait "${bg_pids[@]}"
bg_pids=()
complete_requests /pool
open=$(pool_open "$pool")
check_cmp "pool connections open across the restart (ss)" "$open" -gt 0
m=$(log_mark)
start_agent "$work/agent2b.log"
start2=$(metric process_start_time_seconds)
check "process_start_time_seconds moved ($start1 -> $start2)" "$([ "$start2" -gt "$start1" ] && echo yes || echo no)" yes
adopted=$(sed -n 's/.*following \([0-9]*\) connections that were open at start-up.*/\1/p' "$work/agent2b.log")
check "connections adopted at the restart = open pool connections" "$adopted" "$open"
load 4 2 /pool
close_pools
check "active connections after nginx closed its pool" "$(metric sockeye_backend_connections_active)" 0
exact "after the restart, $pool" "$pool" "$m"
stop_agent

echo "--- 3. 100 SIGHUPs within a second, while scraping and under load"
printf 'pool = ["churn=%s", "pool=%s"]\n' "${churn%:*}/32" "${pool%:*}/32" >"$work/sockeye.toml"
m=$(log_mark)
a=$(accepts)
start_agent "$work/agent3.log" --config "$work/sockeye.toml"
load 16 3 /churn &
bg_pids+=($!)
load 8 3 /pool &
bg_pids+=($!)
(
  for _ in $(seq 200); do
    curl -fs --max-time 2 -o /dev/null "127.0.0.1:$port/metrics" && echo ok || echo fail
  done >"$work/scrapes.txt"
) &
scraper=$!
sleep 0.5
# A pause without a process per signal: read's timeout on a pipe nobody writes.
exec {idle}<> <(:)
t0=$(date +%s%N)
for _ in $(seq 100); do
  kill -HUP "$agent_pid"
  read -r -t 0.006 -u "$idle" || true
done
t1=$(date +%s%N)
wait "${bg_pids[@]}"
bg_pids=()
wait "$scraper"
scrapes=$(grep -c ok "$work/scrapes.txt" || true)
scrape_fail=$(grep -c fail "$work/scrapes.txt" || true)
reloads=$(grep -c "configuration reloaded" "$work/agent3.log" || true)
echo "     100 SIGHUPs in $(((t1 - t0) / 1000000)) ms; reloads logged: $reloads (signals coalesce);" \
  "scrapes served: $scrapes"
check_cmp "SIGHUPs sent within a second (ms)" "$(((t1 - t0) / 1000000))" -le 1000
check_cmp "reloads applied" "$reloads" -gt 0
check "scrapes failed during the storm" "$scrape_fail" 0
check "records lost with the default ring buffer (sockeye_events_lost_total)" "$(metric sockeye_events_lost_total)" 0
check "agent alive (/healthz)" "$(alive)" ok
close_pools
exact "churn pool $churn" "$churn" "$m"
exact "keep-alive pool $pool" "$pool" "$m"
connections "both pools" "$a"
check "pool label kept through the reloads" \
  "$(metric sockeye_backend_requests_total "backend=\"$pool\" pool=\"pool\"")" "$(ngx_requests "$pool" "$m")"
stop_agent

echo "--- 4. map limits: 64 connections on 16 hot slots, 8 backends on 4 series"
# 64 connections open at once, 5 requests each, then closed: at most 16 of
# them hold a slot. The client counts its own bytes.
start_agent "$work/agent4.log" --hot-slots 16 --max-backends 4
read -r held_sent held_received held_requests < <(python3 "$here/drills_hold.py" "$pool" 64 5)
for _ in $(seq 50); do
  [ "$(metric sockeye_backend_connections_closed_total)" = 64 ] && break
  sleep 0.1
done
fallbacks=$(metric sockeye_hot_slot_fallbacks_total)
echo "     64 connections held open at once: $fallbacks hot-slot fallbacks"
check_cmp "hot-slot fallbacks (at least 64 - 16 slots)" "$fallbacks" -ge 48
check_cmp "hot-slot fallbacks (at most 64)" "$fallbacks" -le 64
check "16 hot slots, 64 held connections: established" "$(metric sockeye_backend_connections_established_total)" 64
check "16 hot slots, 64 held connections: closed" "$(metric sockeye_backend_connections_closed_total)" 64
check "16 hot slots, 64 held connections: requests = the client's" \
  "$(metric sockeye_backend_requests_total "backend=\"$pool\"")" "$held_requests"
check "16 hot slots, 64 held connections: sent bytes = the client's" \
  "$(metric sockeye_backend_sent_bytes_total "backend=\"$pool\"")" "$held_sent"
check "16 hot slots, 64 held connections: received bytes = the client's" \
  "$(metric sockeye_backend_received_bytes_total "backend=\"$pool\"")" "$held_received"
# Then nginx's pool of up to 64 under load: the counts since are nginx's.
m=$(log_mark)
a=$(accepts)
base_requests=$(metric sockeye_backend_requests_total "backend=\"$pool\"")
base_sent=$(metric sockeye_backend_sent_bytes_total "backend=\"$pool\"")
base_received=$(metric sockeye_backend_received_bytes_total "backend=\"$pool\"")
base_established=$(metric sockeye_backend_connections_established_total)
load 64 2 /pool
close_pools
echo "     then nginx's pool under wrk -c 64: $(metric sockeye_hot_slot_fallbacks_total) hot-slot fallbacks in all"
check "16 hot slots, nginx's pool: requests = nginx's upstream requests" \
  $(($(metric sockeye_backend_requests_total "backend=\"$pool\"") - base_requests)) "$(ngx_requests "$pool" "$m")"
check "16 hot slots, nginx's pool: sent bytes = sum of \$upstream_bytes_sent" \
  $(($(metric sockeye_backend_sent_bytes_total "backend=\"$pool\"") - base_sent)) "$(ngx_sent "$pool" "$m")"
check "16 hot slots, nginx's pool: received bytes = sum of \$upstream_bytes_received" \
  $(($(metric sockeye_backend_received_bytes_total "backend=\"$pool\"") - base_received)) "$(ngx_received "$pool" "$m")"
check "16 hot slots, nginx's pool: connections established = accepted by the backends" \
  $(($(metric sockeye_backend_connections_established_total) - base_established)) "$(opened_since "$a")"
check "16 hot slots: active connections at the end" "$(metric sockeye_backend_connections_active)" 0
m=$(log_mark)
opened_by=()
for i in "${!overflow_backends[@]}"; do
  a=$(accepts)
  curl -fs -o /dev/null "http://$front/o$i?n=[1-3]"
  opened_by+=("$(opened_since "$a")")
done
close_pools
own=0
for b in "${overflow_backends[@]}"; do
  [ "$(metric sockeye_backend_requests_total "backend=\"$b\"")" != 0 ] && own=$((own + 1))
done
# The pool's backend took the first of the 4 series.
check "backends with their own series (sockeye_backends)" "$(metric sockeye_backends)" 4
check "of the 8 new backends, with their own series" "$own" 3
# 5 folded, but the gauge is capped at --max-backends (docs/metrics.md).
check "distinct addresses in (overflow) (sockeye_backends_overflow, capped at 4)" \
  "$(metric sockeye_backends_overflow)" 4
overflow_conns=0
overflow_reqs=0
for i in "${!overflow_backends[@]}"; do
  b=${overflow_backends[$i]}
  [ "$(metric sockeye_backend_requests_total "backend=\"$b\"")" != 0 ] && continue
  overflow_conns=$((overflow_conns + opened_by[i]))
  overflow_reqs=$((overflow_reqs + $(ngx_requests "$b" "$m")))
done
check "connections in (overflow) (sockeye_backend_overflow_connections_total)" \
  "$(metric sockeye_backend_overflow_connections_total)" "$overflow_conns"
check "requests in (overflow) = nginx's attempts to the 5 folded backends" \
  "$(metric sockeye_backend_requests_total 'backend="(overflow)"')" "$overflow_reqs"
stop_agent

echo "drills: ${SECONDS} s"
finish drills
