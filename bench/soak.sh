#!/usr/bin/env bash
# Soak: weeks of an agent's life compressed into MINUTES of mixed load, all on loopback.
#
#   sudo bench/soak.sh build/sockeye [MINUTES=30]
#
# For MINUTES, at once:
#   * nginx (one worker) proxying keep-alive traffic: wrk -c8 keep-alive clients, a keep-alive upstream pool to
#     127.0.0.61:8080 (the backend closes a pooled connection every 1,000 requests);
#   * nginx proxying a new connection per request: wrk -c2 with "Connection: close", no upstream pool, to
#     127.0.0.62:8080;
#   * connection churn over SOAK_BACKENDS (100,000) distinct backends, addresses in 127.201.0.0/16 times 10 ports,
#     one short connection each, spread over the run (build/bench/churn --phase load): past --max-backends they land
#     in the (overflow) series, and idle backends expire after --backend-idle-timeout;
#   * a gzip scrape of /metrics every second and a SIGHUP (reload) every minute;
#   * every 10 s: the agent's RSS, open fds and threads (/proc), the memlock of its BPF maps (/proc/PID/fdinfo) and
#     its lost counters.
# Then an exact phase: SOAK_EXACT_CONNECTIONS (1,000) connections with one request each to 127.0.0.63:8080, a backend
# one connection held since the start keeps in its own series. nginx stops gracefully, and every count sockeye keeps
# for the three backends and the proxy's listener must equal what nginx logged (requests, connections, bytes) and
# what the load tools made. Last, the least-squares slope per hour of RSS, fds, threads and map memory over the
# samples after a warm-up (SOAK_WARMUP_S; the goal is about 0).
#
# Exits 1 if a check fails (counts not exact, events lost, a scrape or reload failed, the agent died or did not
# exit cleanly). Rates: SOAK_KEEPALIVE_RPS (1000), SOAK_CLOSE_RPS (100); SOAK_AGENT_ARGS adds agent flags;
# SOAK_CHURN is the churn binary (default: bench/churn beside the agent).
set -euo pipefail
usage="usage: soak.sh path/to/sockeye [minutes]"
agent=$(realpath "${1:?$usage}")
minutes=${2:-30}
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || ((minutes < 1 || minutes > 1440)); then
  echo "soak.sh: MINUTES must be 1..1440" >&2
  exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "soak.sh: needs root" >&2; exit 1; }
churn_bin=${SOAK_CHURN:-$(dirname "$agent")/bench/churn}
[ -x "$churn_bin" ] || { echo "soak.sh: $churn_bin missing (build the project with its benchmarks)" >&2; exit 1; }
for tool in nginx wrk curl python3; do
  command -v $tool >/dev/null || { echo "soak.sh: $tool missing (packaging/install-deps.sh --test)" >&2; exit 1; }
done
backends=${SOAK_BACKENDS:-100000}
ka_rps=${SOAK_KEEPALIVE_RPS:-1000}
close_rps=${SOAK_CLOSE_RPS:-100}
exact_n=${SOAK_EXACT_CONNECTIONS:-1000}
for v in backends ka_rps close_rps exact_n; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: $v must be a positive integer" >&2; exit 2; }
done
((backends <= 640000)) || { echo "soak.sh: SOAK_BACKENDS at most 640000 (64,000 addresses x 10 ports)" >&2; exit 2; }
load_s=$((minutes * 60))
# The agent's state fills for --backend-idle-timeout (10 min) before expiry balances it: 40 % of the run, 12 min at
# most, 1 min at least.
warmup=${SOAK_WARMUP_S:-$(((load_s * 2 / 5) > 720 ? 720 : ((load_s * 2 / 5) < 60 ? 60 : load_s * 2 / 5)))}
read -r -a extra_agent_args <<<"${SOAK_AGENT_ARGS:-}"

work=$(mktemp -d)
pids=()
agent_pid=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

proxy=127.0.0.60:8000 ka=127.0.0.61:8080 per_req=127.0.0.62:8080 exact=127.0.0.63:8080 status=127.0.0.64:8081
body=$(head -c 1024 /dev/zero | tr '\0' 'x')
log() { echo "access_log $work/$1.log soak buffer=64k flush=2s;"; }
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  log_format soak '\$connection_requests \$request_length \$bytes_sent \$status';
  upstream ka { server $ka; keepalive 16; }
  upstream per_req { server $per_req; }
  server {
    listen $proxy; $(log frontend)
    location /ka { proxy_pass http://ka; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /close { proxy_pass http://per_req; }
  }
  server { listen $ka; $(log keepalive) location / { return 200 "$body"; } }
  server { listen $per_req; $(log per_request) location / { return 200 "$body"; } }
  server { listen $exact; keepalive_timeout 48h; $(log exact) location / { return 200 "$body"; } }
  server { listen $status; location / { stub_status; } }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 50); do curl -sf "http://$status/" >/dev/null && break; sleep 0.1; done
nginx_accepts() { curl -sf "http://$status/" | awk 'NR == 3 { print $1 }'; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
agent_cmd=("$agent" --web.listen-address "127.0.0.1:$port" --include "${ka%:*}/32" --include "${per_req%:*}/32"
  --include "${exact%:*}/32" --include 127.201.0.0/16 --frontend-include "${proxy%:*}/32:${proxy#*:}"
  "${extra_agent_args[@]}")
addresses=$(((backends + 9) / 10))
churn_cmd=("$churn_bin" --phase load --connections "$backends" --addresses "$addresses" --ports 10
  --rate "$(python3 -c "print(round($backends / $load_s, 3))")" --load-limit $((load_s + 30)))
echo "# sockeye soak: $minutes min of mixed load on loopback, then an exact phase"
echo "# command: $0 $*"
cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
mem_total=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'); machine: $(nproc) CPUs, $cpu_model, Linux $(uname -r), $mem_total"
echo "# agent: $("$agent" --version 2>&1 | head -n1)"
echo "#   ${agent_cmd[*]}"
echo "# method: nginx $(nginx -v 2>&1 | sed 's/.*\///') (1 worker); keep-alive: wrk -t1 -c8 to $proxy/ka, at most"
echo "#   $ka_rps req/s, upstream pool to $ka; per request: wrk -t1 -c2 'Connection: close' to $proxy/close,"
echo "#   at most $close_rps req/s, upstream $per_req without a pool;"
echo "#   churn: ${churn_cmd[*]}"
echo "#   a gzip scrape every 1 s, SIGHUP every 60 s, samples every 10 s; then $exact_n connections to $exact (one held"
echo "#   open since the start keeps its series), nginx stops, counts compared; slopes over samples after ${warmup} s"

"${agent_cmd[@]}" >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
if ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
  cat "$work/agent.log"
  echo "soak.sh: agent did not start" >&2
  exit 1
fi
accepts0=$(nginx_accepts)
# The held connection: its backend keeps its own series whatever the churn does to the others.
# It reads its response: sockeye counts the bytes an application read.
(exec 3<>"/dev/tcp/${exact%:*}/${exact#*:}" && printf 'GET /held HTTP/1.1\r\nHost: soak\r\n\r\n' >&3 &&
  { read -r -d '' -t 2 -N 65536 _ <&3 || true; } && exec sleep $((load_s + 900))) &
holder=$!
pids+=("$holder")

metric() {  # FILE NAME [LABEL]: the sum of NAME's series whose line contains LABEL
  awk -v m="$2" -v l="${3:-}" '$1 !~ /^#/ && (index($0, m "{") == 1 || index($0, m " ") == 1) &&
    (l == "" || index($0, l) > 0) { s += $NF } END { printf "%.0f\n", s }' "$1"
}
lost_total() {
  local f=$1
  echo $(($(metric "$f" sockeye_events_lost_total) + $(metric "$f" sockeye_turns_lost_total) +
    $(metric "$f" sockeye_iterator_records_lost_total)))
}
map_memlock() {  # bytes of memlock over the agent's BPF map fds
  local total=0 f
  for f in /proc/"$agent_pid"/fdinfo/*; do
    total=$((total + $(awk '/^map_type:/ { m = 1 } /^memlock:/ { v = $2 } END { print m ? v : 0 }' "$f" \
      2>/dev/null || echo 0)))
  done
  echo "$total"
}
sleep_until() {  # SECONDS after t0
  sleep "$(awk -v t="$t0" -v o="$1" -v n="$EPOCHREALTIME" 'BEGIN { d = t + o - n; printf "%.3f\n", (d > 0 ? d : 0) }')"
}

printf 'delay = function() return %d end\n' $((8000 / ka_rps > 0 ? 8000 / ka_rps : 0)) >"$work/ka.lua"
printf 'delay = function() return %d end\n' $((2000 / close_rps > 0 ? 2000 / close_rps : 0)) >"$work/close.lua"
t0=$EPOCHREALTIME
wrk -t1 -c8 -d"${load_s}s" -s "$work/ka.lua" "http://$proxy/ka" >"$work/wrk-ka.txt" 2>&1 &
pids+=($!)
wrk -t1 -c2 -d"${load_s}s" -s "$work/close.lua" -H "Connection: close" "http://$proxy/close" \
  >"$work/wrk-close.txt" 2>&1 &
pids+=($!)
"${churn_cmd[@]}" >"$work/churn.txt" 2>&1 &
churn_pid=$!
pids+=("$churn_pid")
(for i in $(seq 0 $((load_s - 1))); do
  sleep_until "$i"
  curl -s --compressed -m 10 -o "$work/scrape.tmp" -w '%{http_code} %{time_total}\n' \
    "http://127.0.0.1:$port/metrics" >>"$work/scrapes.txt" || echo "000 0" >>"$work/scrapes.txt"
  mv -f "$work/scrape.tmp" "$work/last.prom" 2>/dev/null || true
done) &
pids+=($!)
(for i in $(seq 1 "$minutes"); do
  sleep_until $((60 * i - 30))
  kill -HUP "$agent_pid" && echo "$i" >>"$work/hups.txt"
done) &
pids+=($!)

echo
printf '%7s %9s %5s %7s %10s %6s %7s | %7s %8s %8s %8s %8s %9s\n' t_s rss_MiB fds threads maps_KiB lost cpu_s \
  series ovf_addr ovf_conn expired followed scrape_ms
sample() {  # appends to samples.txt: t rss_kib fds threads memlock lost cpu_s
  local t rss fds threads mem lost=0 f="$work/last.prom" ms cpu
  t=$(awk -v t="$t0" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.1f", n - t }')
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent_pid/status")
  threads=$(awk '/^Threads/ { print $2 }' "/proc/$agent_pid/status")
  fds=$(find "/proc/$agent_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  mem=$(map_memlock)
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$agent_pid/stat")
  [ -s "$f" ] && lost=$(lost_total "$f")
  echo "$t $rss $fds $threads $mem $lost $cpu" >>"$work/samples.txt"
  ms=$(tail -n 1 "$work/scrapes.txt" 2>/dev/null | awk '{ printf "%.0f", $2 * 1000 }')
  of() { if [ -s "$f" ]; then metric "$f" "$1"; else echo -; fi; }
  printf '%7s %9.1f %5d %7d %10.1f %6d %7s | %7s %8s %8s %8s %8s %9s\n' "$t" \
    "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')" "$fds" "$threads" "$(awk -v m="$mem" 'BEGIN { print m / 1024 }')" \
    "$lost" "$cpu" "$(of sockeye_backends)" "$(of sockeye_backends_overflow)" \
    "$(of sockeye_backend_overflow_connections_total)" "$(of sockeye_backends_expired_total)" \
    "$(of sockeye_connections_followed)" "${ms:--}"
}
died=0
for i in $(seq 0 $((load_s / 10))); do
  sleep_until $((10 * i))
  kill -0 "$agent_pid" 2>/dev/null || { died=1; break; }
  sample
done
wait "$churn_pid" || true
for p in "${pids[@]}"; do [ "$p" = "$holder" ] || wait "$p" 2>/dev/null || true; done
kill -0 "$agent_pid" 2>/dev/null || died=1

# --- the exact phase: a new connection per request to the held backend, counted by curl.
curl -s -H "Connection: close" -w '%{stderr}%{http_code} %{num_connects}\n' \
  "http://$exact/exact[1-$exact_n]" >/dev/null 2>"$work/exact.txt" || true
exact_ok=$(awk '$1 == 200 { n++ } END { print n + 0 }' "$work/exact.txt")
exact_connects=$(awk '{ c += $2 } END { print c + 0 }' "$work/exact.txt")
accepts1=$(nginx_accepts)
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
nginx_pid=$(cat "$work/nginx.pid")
kill -QUIT "$nginx_pid"
for _ in $(seq 100); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$nginx_pid" 2>/dev/null && echo "soak.sh: nginx did not stop within 10 s" >&2

# nginx's own counts, per server: requests, connections (a connection's first request), bytes in and out.
log_counts() {  # NAME -> "requests connections request_bytes response_bytes"
  awk '{ r++; if ($1 == 1) c++; i += $2; o += $3 } END { printf "%d %d %d %d\n", r, c, i, o }' "$work/$1.log"
}
read -r ka_req ka_conn ka_in ka_out < <(log_counts keepalive)
read -r pr_req pr_conn pr_in pr_out < <(log_counts per_request)
read -r ex_req ex_conn ex_in ex_out < <(log_counts exact)
read -r fe_req _ _ _ < <(log_counts frontend)
# Every connection nginx accepted since the agent started, less the backends' (each carried a request) and the
# one that asked for the count: the proxy listener's, those that sent no request included.
fe_conn=$((accepts1 - accepts0 - ka_conn - pr_conn - ex_conn - 1))
read -r churn_line < <(grep '^churn-load:' "$work/churn.txt" || echo "churn-load: none=1")
churn_val() { tr ' ' '\n' <<<"$churn_line" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
wrk_requests() { awk '/requests in/ { print $1 }' "$1"; }
ka_n=$(wrk_requests "$work/wrk-ka.txt") close_n=$(wrk_requests "$work/wrk-close.txt")

checks=()
check() {  # OK WHAT...
  local ok=$1
  shift
  checks+=("$([ "$ok" = 1 ] && echo PASS || echo FAIL) $*")
}
eq() { [ "$1" = "$2" ] && echo 1 || echo 0; }
# The agent drains its ring and sweeps on its own clock: wait for the counts to settle (at most 30 s).
final="$work/final.prom"
settled() {
  local b
  for b in "$ka" "$per_req" "$exact"; do
    local l="backend=\"$b\""
    [ "$(metric "$final" sockeye_backend_connections_active "$l")" = 0 ] || return 1
    [ "$(metric "$final" sockeye_backend_connections_closed_total "$l")" = \
      "$(metric "$final" sockeye_backend_connections_established_total "$l")" ] || return 1
  done
  [ "$(metric "$final" sockeye_frontend_connections_active)" = 0 ] || return 1
  [ "$(metric "$final" sockeye_backend_requests_total "backend=\"$ka\"")" = "$ka_req" ] || return 1
}
for _ in $(seq 60); do
  [ "$died" = 0 ] || break
  curl -sf -o "$final" "http://127.0.0.1:$port/metrics" || true
  [ -s "$final" ] && settled && break
  sleep 0.5
done
[ "$died" = 0 ] && sample >/dev/null
touch "$final"

backend_checks() {  # NAME ADDR REQUESTS CONNECTIONS BYTES_IN BYTES_OUT
  local l="backend=\"$2\"" est closed req sent recv active
  est=$(metric "$final" sockeye_backend_connections_established_total "$l")
  closed=$(metric "$final" sockeye_backend_connections_closed_total "$l")
  active=$(metric "$final" sockeye_backend_connections_active "$l")
  req=$(metric "$final" sockeye_backend_requests_total "$l")
  sent=$(metric "$final" sockeye_backend_sent_bytes_total "$l")
  recv=$(metric "$final" sockeye_backend_received_bytes_total "$l")
  check "$(eq "$est $closed $active" "$4 $4 0")" \
    "$1 $2: connections established $est, closed $closed, active $active; nginx accepted $4"
  check "$(eq "$req" "$3")" "$1 $2: requests $req; nginx logged $3"
  check "$(eq "$sent $recv" "$5 $6")" "$1 $2: bytes sent $sent, received $recv; nginx read $5, wrote $6"
}
backend_checks keep-alive "$ka" "$ka_req" "$ka_conn" "$ka_in" "$ka_out"
backend_checks per-request "$per_req" "$pr_req" "$pr_conn" "$pr_in" "$pr_out"
backend_checks exact "$exact" "$ex_req" "$ex_conn" "$ex_in" "$ex_out"
check "$(eq "$ex_req $ex_conn" "$((exact_ok + 1)) $((exact_connects + 1))")" \
  "exact $exact: nginx logged $ex_req requests on $ex_conn connections; curl made $exact_ok requests on" \
  "$exact_connects connections, plus the held one"
l="listener=\"$proxy\""
fe_acc=$(metric "$final" sockeye_frontend_connections_accepted_total "$l")
fe_cnt=$(metric "$final" sockeye_frontend_requests_total "$l")
check "$(eq "$fe_acc $fe_cnt" "$fe_conn $fe_req")" \
  "proxy listener $proxy: accepted $fe_acc, requests $fe_cnt; nginx accepted $fe_conn, logged $fe_req" \
  "(wrk counted $((ka_n + close_n)) responses)"
ovf_est=$(metric "$final" sockeye_backend_connections_established_total 'backend="(overflow)"')
ovf_conn=$(metric "$final" sockeye_backend_overflow_connections_total)
check "$(eq "$ovf_est" "$ovf_conn")" \
  "(overflow): established $ovf_est == sockeye_backend_overflow_connections_total $ovf_conn;" \
  "$(metric "$final" sockeye_backends) backends with own series (max $(metric "$final" sockeye_backends_max))," \
  "$(metric "$final" sockeye_backends_expired_total) expired"
# Every churn connection is in a 127.201.x.y series or in (overflow) as long as no series expired; an expired
# backend's counts leave the page with it (sockeye_backends_expired_total).
churn_counted=$(($(metric "$final" sockeye_backend_connections_established_total 'backend="127.201.') + ovf_est))
if [ "$(metric "$final" sockeye_backends_expired_total)" = 0 ]; then
  check "$(eq "$churn_counted" "$(churn_val established)")" \
    "churn: established in 127.201.x.y series + (overflow) $churn_counted;" \
    "the load established $(churn_val established)"
else
  echo "churn: established in 127.201.x.y series + (overflow) $churn_counted; the load established" \
    "$(churn_val established); not compared: backends expired, their counts with them"
fi
check "$(eq "$(churn_val completed)" "$backends")" \
  "churn: $(churn_val completed) of $backends connections completed to distinct backends" \
  "($(churn_val failed_at_once) + $(churn_val failed_later) failed, $(churn_val abandoned) abandoned)" \
  "in $(churn_val seconds) s"
lost=$(lost_total "$final")
check "$(eq "$lost" 0)" "events, turns and iterator records lost: $lost"
hups=$(wc -l <"$work/hups.txt" 2>/dev/null || echo 0)
reloads=$(grep -c 'configuration reloaded' "$work/agent.log" || true)
check "$(eq "$reloads $hups" "$minutes $minutes")" "SIGHUP: $hups sent, $reloads reloads logged"
scrapes=$(wc -l <"$work/scrapes.txt")
bad_scrapes=$(awk '$1 != 200 { n++ } END { print n + 0 }' "$work/scrapes.txt")
scrape_ms=$(sort -n -k2 "$work/scrapes.txt" |
  awk '{ t[NR] = $2 } END { printf "median %.0f ms, max %.0f ms", t[int((NR + 1) / 2)] * 1000, t[NR] * 1000 }')
check "$(eq "$bad_scrapes" 0)" "scrapes: $scrapes, $bad_scrapes failed; $scrape_ms"
if [ "$died" = 0 ]; then
  kill "$agent_pid"
  rc=0
  wait "$agent_pid" || rc=$?
  agent_pid=""
  check "$(eq "$rc" 0)" "agent alive to the end; exit status $rc on SIGTERM"
else
  check 0 "agent alive to the end: it died; log tail: $(tail -n 5 "$work/agent.log" | tr '\n' ' ')"
fi

echo
per_s() { awk -v n="$1" -v s="$load_s" 'BEGIN { printf "%.0f/s", n / s }'; }
echo "load: wrk keep-alive $ka_n responses ($(per_s "$ka_n")), per request $close_n ($(per_s "$close_n"));" \
  "churn $(churn_val completed) connections in $(churn_val seconds) s; agent CPU $(tail -n 1 "$work/samples.txt" |
    awk '{ print $7 }') s"
echo "samples from ${warmup} s to the end of the load, least-squares slope per hour (goal: about 0):"
python3 - "$work/samples.txt" "$warmup" "$load_s" <<'PY'
import sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
warm = [r for r in rows if float(sys.argv[2]) <= r[0] <= float(sys.argv[3]) + 1]
print(f"| what | samples | first | last | min | max | slope per hour |")
print(f"|---|---|---|---|---|---|---|")
for col, name, scale, unit in ((1, "agent RSS", 1 / 1024, "MiB"), (2, "open fds", 1, ""), (3, "threads", 1, ""),
                               (4, "BPF map memlock", 1 / 1024, "KiB"), (5, "lost (events+turns+records)", 1, "")):
    if len(warm) < 3:
        print(f"| {name} | {len(warm)} | - | - | - | - | too few samples |")
        continue
    xs = [r[0] / 3600 for r in warm]
    ys = [r[col] * scale for r in warm]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    print(f"| {name} | {len(ys)} | {ys[0]:.1f} | {ys[-1]:.1f} | {min(ys):.1f} | {max(ys):.1f} | "
          f"{slope:+.2f} {unit}/h |")
PY
echo
echo "checks:"
failed=0
for c in "${checks[@]}"; do
  echo "  [${c%% *}] ${c#* }"
  [ "${c%% *}" = PASS ] || failed=$((failed + 1))
done
echo "$((${#checks[@]} - failed)) passed, $failed failed"
if ((failed)); then
  echo "--- agent log (last 20 lines)"; tail -n 20 "$work/agent.log"
  echo "--- churn load"; cat "$work/churn.txt"
  exit 1
fi
