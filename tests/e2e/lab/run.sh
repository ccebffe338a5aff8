#!/usr/bin/env bash
# Proof against real proxies: sockeye beside a real nginx reverse proxy and a real
# HAProxy, each in front of its own backends on 127.0.77.x:8080, driven by wrk and
# curl. sockeye's per-backend numbers are compared with what the proxies and the
# backends log themselves; a real Prometheus scrapes the agent and is queried; the
# agent is restarted under idle keep-alive pools and must count the traffic after
# its start exactly.
#
#   sudo tests/e2e/lab/run.sh ./build/sockeye      (root; ~2 minutes)
#
# Traffic goes to loopback addresses only; every load is bounded in time.
# Exit 0 only if every assertion passes. LAB_KEEP=1 keeps the work dir.
set -uo pipefail
agent=$(readlink -f "${1:?usage: run.sh path/to/sockeye}")
here=$(cd "$(dirname "$0")" && pwd)
PY=$(command -v /usr/bin/python3 || command -v python3)
lab() { "$PY" "$here/lab.py" "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (BPF, and binding loopback ports)"; exit 2; }
[ -x "$agent" ] || { echo "run.sh: $agent is not executable"; exit 2; }

need=()
for p in nginx:nginx haproxy:haproxy wrk:wrk prometheus:prometheus curl:curl strace:strace tcpdump:tcpdump ss:iproute2; do
  command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
# Installing belongs to the install step, before any timed test.
if [ ${#need[@]} -gt 0 ]; then
  echo "run.sh: missing ${need[*]} (bash packaging/install-deps.sh --test installs them)"
  exit 2
fi

T=$(mktemp -d /tmp/sockeye-lab.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [ "${LAB_KEEP:-0}" = 1 ]; then echo "work dir kept: $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

AGENT=$(lab topo agent); PROM=$(lab topo prom); HAP_STATS=$(lab topo hap_stats)
step() { printf '\n--- %s (t=%ss)\n' "$*" "$SECONDS"; }
fail=0
note_fail() { echo "FAIL: $*"; fail=1; }

listening() { # addr:port
  [ -n "$(ss -Hltn state listening src "$1")" ]
}
wait_listen() { # addr:port pid what
  for _ in $(seq 100); do
    listening "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "run.sh: $3 exited"; tail -20 "$T"/*.log; exit 1; }
    sleep 0.1
  done
  echo "run.sh: $3 not listening on $1"; exit 1
}

for a in $(lab topo addrs:nginx) $(lab topo addrs:delay) $(lab topo addrs:reset) $(lab topo addrs:reset0) \
         $(lab topo addrs:refuse) "$AGENT" "$PROM" "$HAP_STATS"; do
  listening "$a" && { echo "run.sh: $a is already in use (a previous lab still running?)"; exit 2; }
done

step "configs in $T"
lab render "$T"
chmod 755 "$T" "$T/www"   # the nginx workers do not run as root

step "backends"
nginx -p "$T" -e "$T/backend-nginx.error.log" -c "$T/backend-nginx.conf" -g 'daemon off;' &
pids+=($!); bn_pid=$!
"$PY" "$here/backend.py" delay "$T/backend-delay.log" "$(lab topo delay)" $(lab topo addrs:delay) \
  >"$T/backend-delay.out" 2>&1 &
pids+=($!); bd_pid=$!
"$PY" "$here/backend.py" reset "$T/backend-reset.log" "$(lab topo reset_wait)" $(lab topo addrs:reset) \
  >"$T/backend-reset.out" 2>&1 &
pids+=($!); br_pid=$!
"$PY" "$here/backend.py" reset "$T/backend-reset0.log" 0 $(lab topo addrs:reset0) >"$T/backend-reset0.out" 2>&1 &
pids+=($!); br0_pid=$!
for a in $(lab topo addrs:nginx); do wait_listen "$a" "$bn_pid" "backend nginx"; done
for a in $(lab topo addrs:delay); do wait_listen "$a" "$bd_pid" "delay backend"; done
for a in $(lab topo addrs:reset); do wait_listen "$a" "$br_pid" "reset backend"; done
for a in $(lab topo addrs:reset0); do wait_listen "$a" "$br0_pid" "reset-at-once backend"; done

start_agent() { # log file
  # shellcheck disable=SC2046
  # The backend side (its checks compare backend connections with ss and the
  # proxies' counters); tests/e2e/frontends.sh covers the client side.
  "$agent" --web.listen-address "$AGENT" $(lab topo includes) --no-frontends >"$1" 2>&1 &
  agent_pid=$!; pids+=($agent_pid)
  for _ in $(seq 100); do
    curl -sf "http://$AGENT/healthz" >/dev/null 2>&1 && { grep -h 'open at start-up' "$1"; return 0; }
    kill -0 "$agent_pid" 2>/dev/null || { cat "$1"; echo "run.sh: agent exited"; exit 1; }
    sleep 0.1
  done
  cat "$1"; echo "run.sh: agent not healthy"; exit 1
}
step "tcpdump on lo for the slow backends (true time to first byte on the wire)"
# shellcheck disable=SC2046
tcpdump -i lo -n -U -s 128 --time-stamp-precision=nano -w "$T/slow.pcap" \
  "tcp port 8080 and ($(lab topo addrs:delay | sed 's/:8080//g; s/ / or host /g; s/^/host /'))" \
  2>"$T/tcpdump.log" &
pids+=($!); tcpdump_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$T/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'listening on' "$T/tcpdump.log" || { cat "$T/tcpdump.log"; echo "run.sh: tcpdump did not start"; exit 1; }

step "sockeye $("$agent" --version 2>&1 | head -1): $(lab topo includes)"
start_agent "$T/agent1.log"

step "proxies and Prometheus"
nginx -p "$T" -e "$T/proxy-nginx.error.log" -c "$T/proxy-nginx.conf" -g 'daemon off;' &
pids+=($!); px_pid=$!
haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
pids+=($!); hap_pid=$!
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
  --web.listen-address="$PROM" --log.level=warn >"$T/prometheus.log" 2>&1 &
pids+=($!); prom_pid=$!
wait_listen "$(lab topo route:ngx-fast | sed 's|http://||')" "$px_pid" "proxy nginx"
wait_listen "$HAP_STATS" "$hap_pid" "haproxy"
wait_listen "$PROM" "$prom_pid" "prometheus"
for _ in $(seq 100); do
  curl -sf "http://$PROM/api/v1/targets" | grep -q '"health":"up"' && break; sleep 0.2
done
curl -sf "http://$PROM/api/v1/targets" | grep -q '"health":"up"' || note_fail "Prometheus never scraped the agent"
echo "haproxy: $(haproxy -v | head -1)"

step "prime every answering route once (so each series exists before the load)"
t_prime=$SECONDS
for k in ngx-fast ngx-slow ngx-close ngx-v6 hap-fast hap-slow hap-close ngx-reset hap-reset ngx-rstnow hap-rstnow; do
  curl -s -m 5 -o /dev/null "$(lab topo route:$k)/1k"
done
curl -s -m 5 -o /dev/null "$(lab topo route:hap-splice)/256k"
sleep 2.5

wrk_run() { # name url extra-env... -- wrk-args...
  local name=$1 url=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" wrk "$@" --timeout 10s -s "$here/load.lua" "$url" >"$T/wrk-$name.txt" 2>&1
  printf '%-12s %s\n' "$name" "$(grep -E 'requests in|Non-2xx|Socket errors' "$T/wrk-$name.txt" | tr -s ' ' | paste -sd';')"
}

step "load: wrk through nginx (-d cuts requests in flight; nginx logs them exactly)"
wrk_run ngx-fast "$(lab topo route:ngx-fast)/1k" LAB_SECS=0 -- -t2 -c4 -d5s
wrk_run ngx-slow "$(lab topo route:ngx-slow)/" LAB_SECS=0 LAB_BODY=2000 -- -t2 -c4 -d5s
wrk_run ngx-close "$(lab topo route:ngx-close)/1k" LAB_SECS=0 -- -t2 -c4 -d3s
wrk_run ngx-v6 "$(lab topo route:ngx-v6)/1k" LAB_SECS=0 -- -t2 -c4 -d3s

step "load: wrk through HAProxy (one connection per thread, each stops after a complete response at ~4 s)"
wrk_run hap-fast "$(lab topo route:hap-fast)/1k" LAB_SECS=4 -- -t4 -c4 -d6s
wrk_run hap-slow "$(lab topo route:hap-slow)/" LAB_SECS=4 LAB_BODY=2000 -- -t4 -c4 -d6s
wrk_run hap-close "$(lab topo route:hap-close)/1k" LAB_SECS=3 -- -t4 -c4 -d5s
wrk_run hap-splice "$(lab topo route:hap-splice)/256k" LAB_SECS=4 -- -t4 -c4 -d6s &
wrk_pid=$!
sleep 1.5
timeout -s INT 3 strace -f -c -p "$hap_pid" -o "$T/strace-splice.txt" >/dev/null 2>&1
wait "$wrk_pid"
echo "strace -f -c -p <haproxy> for 3 s during the TCP-mode (splice) load:"
head -12 "$T/strace-splice.txt" | sed 's/^/    /'
grep -qE ' splice$' "$T/strace-splice.txt" && echo "  -> haproxy moves the TCP-mode data with splice()" ||
  echo "  -> NOTE: no splice() call seen: haproxy did not splice"

step "curl: large bodies, slow ones one at a time (leaves idle pooled connections), refusing and resetting backends"
for k in ngx-fast hap-fast; do curl -s -m 10 "$(lab topo route:$k)/256k?n=[1-3]" >/dev/null; done
for k in ngx-slow hap-slow; do
  curl -s -m 10 "$(lab topo route:$k)/?n=[1-3]" >/dev/null
  curl -s -m 10 --data-binary @"$T/upload" "$(lab topo route:$k)/upload?n=[1-2]" >/dev/null  # 1 MiB POSTs
done
for k in ngx-refuse hap-refuse ngx-reset hap-reset ngx-rstnow hap-rstnow; do
  n=3; [[ $k == *rstnow ]] && n=10
  codes=$(curl -s -m 5 -o /dev/null -w '%{http_code} ' "$(lab topo route:$k)/x?n=[1-$n]" 2>/dev/null)
  printf '%-12s %2d requests -> HTTP %s(curl exit %s)\n' "$k" "$n" "$codes" "$?"
done

step "wait for the agent's numbers to settle"
lab wait-stable "http://$AGENT/metrics" 30 || fail=1

step "compare (main load)"
lab check-main "$T" | tee "$T/check-main.txt"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

step "Prometheus"
sleep 3
lab check-prom "$T" $((SECONDS - t_prime + 3)) | tee "$T/check-prom.txt"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

step "restart: stop the agent while nginx holds idle keep-alive upstream connections"
for k in ngx-fast ngx-slow; do
  n=$(ss -Htn state established dst "$(lab topo addr:$k)" | wc -l)
  echo "$k: $n idle upstream connections open"
  [ "$n" -gt 0 ] || note_fail "precondition: nginx holds no idle connection to $k"
done
kill -TERM "$agent_pid"; wait "$agent_pid"; echo "agent stopped (exit $?)"
ss_before=$(lab ss-count)
start_agent "$T/agent2.log"
echo "$ss_before $(lab ss-count)" >"$T/ss-restart.txt"
sleep 1.5
lab mark "$T" restart
curl -s -m 20 "$(lab topo route:ngx-fast)/1k?n=[1-100]" >/dev/null
curl -s -m 20 "$(lab topo route:ngx-slow)/?n=[1-20]" >/dev/null
wrk_run ngx-fast-2 "$(lab topo route:ngx-fast)/1k" LAB_SECS=0 -- -t2 -c4 -d2s
lab wait-stable "http://$AGENT/metrics" 30 || fail=1
lab check-restart "$T" | tee "$T/check-restart.txt"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

step "done"
if [ "$fail" = 0 ]; then echo "LAB PASSED"; else echo "LAB FAILED"; grep -h '^FAIL' "$T"/check-*.txt 2>/dev/null; fi
exit "$fail"
