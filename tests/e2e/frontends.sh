#!/usr/bin/env bash
# Frontend series against real proxies' own accounting of their client side:
# HAProxy (HTTP mode) on 127.0.0.61 in front of backends answering 200, 301,
# 404, 500 and 503 at once; nginx on 127.0.0.63 in front of the same codes
# answered after 30 ms. Clients: curl, keep-alive and not, GETs and POSTs.
#   HAProxy's exporter: haproxy_frontend_connections_total,
#   _http_requests_total, _http_responses_total{code}
#   = sockeye's accepted, requests, responses{code}
#   nginx's access log: connections ($connection), requests, $status classes,
#   sum($request_length) = received, sum($bytes_sent) = sent, mean
#   $request_time within max(1 ms, 5 %) of sockeye's mean response time
#   curl's own byte and connection counts = accepted, received and sent bytes,
#   on both listeners (HAProxy's byte counters are not wire bytes: see below)
# HAProxy's exporter listens on 127.0.0.62 with the measured listener's port:
# a listener left out by --frontend-include has no series although the kernel
# follows its port. A real Prometheus scrapes the agent.
# Traffic stays on loopback; every load is a bounded number of requests.
#
#   sudo tests/e2e/frontends.sh path/to/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: frontends.sh path/to/sockeye}")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "frontends.sh: needs root" >&2; exit 1; }
for tool in nginx haproxy curl python3 prometheus ss; do
  command -v $tool >/dev/null || {
    echo "frontends.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2
    exit 1
  }
done

work=$(mktemp -d)
chmod 755 "$work" # nginx workers (www-data) write their log here
port=19587
prom=127.0.0.1:19588
hap=127.0.0.61:18061
hap_stats=127.0.0.62:18061
ngx=127.0.0.63:18063
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

source "$here/lib.sh"
metric() { metric_sum "127.0.0.1:$port" "$@"; } # NAME LABEL-TEXT...
settled() { # NAME LABELS EXPECTED: waits up to 10 s for the metric to reach EXPECTED
  for _ in $(seq 100); do
    [ "$(metric "$1" "$2")" = "$3" ] && break
    sleep 0.1
  done
  metric "$1" "$2"
}
listening() { ss -Hltn "src $1" | grep -q .; }

codes=(200 301 404 500 503)
hap_backends=() ngx_backends=()
for i in "${!codes[@]}"; do
  hap_backends+=("127.0.0.7$i:8080=${codes[$i]}")
  ngx_backends+=("127.0.0.8$i:8080=${codes[$i]}@30")
done
python3 "$here/http_status_backend.py" "${hap_backends[@]}" "${ngx_backends[@]}" >"$work/backend.log" 2>&1 &
pids+=($!)

haproxy_routes_config "$hap_stats" "$hap" /r "${hap_backends[@]}" >"$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)

{
  echo "worker_processes 1; pid $work/nginx.pid; error_log $work/error.log;"
  echo "events { worker_connections 512; }"
  echo "http { access_log off;"
  echo "  log_format front '\$connection \$status \$request_length \$bytes_sent \$request_time \$upstream_header_time';"
  for i in "${!ngx_backends[@]}"; do
    echo "  upstream b$i { server ${ngx_backends[$i]%=*}; keepalive 4; }"
  done
  echo "  server { listen $ngx; access_log $work/access.log front;"
  echo "    proxy_http_version 1.1; proxy_set_header Connection \"\";"
  for i in "${!ngx_backends[@]}"; do echo "    location /r$i { proxy_pass http://b$i; }"; done
  echo "  }"
  echo "}"
} >"$work/nginx.conf"
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)

# The proxies must listen before the agent starts (it hands the listeners'
# ports to the kernel at start-up), and nothing connects to the measured
# listeners before it does: every count starts at zero on both sides.
for _ in $(seq 100); do
  listening "$hap" && listening "$hap_stats" && listening "$ngx" && break
  sleep 0.1
done
"$agent" --frontend-include 127.0.0.61/32 --frontend-include 127.0.0.63/32 --include 127.0.0.64/26 \
  --web.listen-address "127.0.0.1:$port" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
cat >"$work/prometheus.yml" <<PROM
global: { scrape_interval: 1s }
scrape_configs:
  - job_name: sockeye
    static_configs: [ { targets: ["127.0.0.1:$port"] } ]
PROM
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="$prom" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
wait_healthy "127.0.0.1:$port" "$agent_pid" "$work/agent.log"
for _ in $(seq 100); do
  curl -fs -o /dev/null "$hap_stats/metrics" && break
  sleep 0.1
done
grep -q "http_status.*cgroup_skb" "$work/agent.log" || {
  echo "FAIL: the agent did not attach its HTTP status program:"
  cat "$work/agent.log"
  exit 1
}

echo "--- load: a bounded number of requests per listener and route"
head -c 700 /dev/zero | tr '\0' x >"$work/body"
# Per transfer: bytes the client sent (size_request: request head and body),
# bytes it received (response heads + bodies) and connections it opened.
wfmt='%{size_request} %{size_header} %{size_download} %{num_connects}\n'
for front in "$hap" "$ngx"; do
  log=$work/curl-$front.log
  for i in "${!codes[@]}"; do
    curl -s -o /dev/null -w "$wfmt" "http://$front/r$i?keepalive=[1-12]" >>"$log"
    for n in 1 2 3; do
      curl -s -o /dev/null -w "$wfmt" -H 'Connection: close' "http://$front/r$i?close=$n" >>"$log"
    done
  done
  # POSTs over one connection; no Expect: 100-continue (an interim response).
  curl -s -o /dev/null -w "$wfmt" -H 'Expect:' --data-binary @"$work/body" "http://$front/r0?post=[1-4]" >>"$log"
done
client() { # FRONT FIELD: sent, received or connections, as curl counted them
  awk -v f="$2" '{ s += $1; r += $2 + $3; c += $4 }
    END { printf "%d\n", (f == "sent") ? s : (f == "received") ? r : c }' "$work/curl-$1.log"
}
requests_sent=$(wc -l <"$work/curl-$hap.log")

for front in "$hap" "$ngx"; do
  l="listener=\"$front\""
  n=$(client "$front" connections)
  echo "--- $front: connections, bytes and requests as the client counted them"
  check "$front accepted = curl's connections" "$(settled sockeye_frontend_connections_accepted_total "$l" "$n")" "$n"
  check "$front closed" "$(settled sockeye_frontend_connections_closed_total "$l" "$n")" "$n"
  check "$front active" "$(settled sockeye_frontend_connections_active "$l" 0)" 0
  r=$(client "$front" sent)
  check "$front received bytes = curl's request bytes" "$(settled sockeye_frontend_received_bytes_total "$l" "$r")" "$r"
  s=$(client "$front" received)
  check "$front sent bytes = curl's response bytes" "$(settled sockeye_frontend_sent_bytes_total "$l" "$s")" "$s"
  check "$front requests" "$(settled sockeye_frontend_requests_total "$l" "$requests_sent")" "$requests_sent"
  check "$front unanswered" "$(metric sockeye_frontend_requests_unanswered_total "$l")" 0
done

echo "--- HAProxy $hap: = its exporter's frontend counters"
curl -fs "$hap_stats/metrics" >"$work/haproxy.metrics"
hapm() { # NAME [LABEL-TEXT]: frontend "front"'s value
  awk -v n="$1" -v want="${2:-}" 'index($1, n "{") == 1 && index($1, "proxy=\"front\"") && index($1, want) { v += $2 }
    END { printf "%.0f\n", v }' "$work/haproxy.metrics"
}
l="listener=\"$hap\""
check "connections_total" "$(metric sockeye_frontend_connections_accepted_total "$l")" \
  "$(hapm haproxy_frontend_connections_total)"
# Not compared: HAProxy's bytes_in/bytes_out count the messages as it holds
# them internally (HTX, headers re-encoded; bytes_out the response as the
# server side delivered it), not the bytes on the client connection. curl's
# counts above are those.
echo "info HAProxy bytes_in_total $(hapm haproxy_frontend_bytes_in_total), bytes_out_total" \
  "$(hapm haproxy_frontend_bytes_out_total) (its internal message sizes; sockeye and curl count the wire)"
check "http_requests_total" "$(metric sockeye_frontend_requests_total "$l")" \
  "$(hapm haproxy_frontend_http_requests_total)"
for class in 1xx 2xx 3xx 4xx 5xx other; do
  check "http_responses_total{code=$class}" "$(metric sockeye_frontend_responses_total "$l code=\"$class\"")" \
    "$(hapm haproxy_frontend_http_responses_total "code=\"$class\"")"
done
check "the exporter's listener $hap_stats (same port, not included): no series" \
  "$(curl -fs "127.0.0.1:$port/metrics" | grep -c "listener=\"$hap_stats\"" || true)" 0

echo "--- nginx $ngx: = its access log"
# HTTP/1.1 without TLS: \$request_length is the request line, headers and body,
# all the client sends; \$bytes_sent all nginx sends for the request, headers
# included. Both sum exactly to the connections' payload bytes.
l="listener=\"$ngx\""
acc=$work/access.log
check "connections (distinct \$connection)" "$(metric sockeye_frontend_connections_accepted_total "$l")" \
  "$(awk '{ print $1 }' "$acc" | sort -u | wc -l)"
check "requests (log lines)" "$(metric sockeye_frontend_requests_total "$l")" "$(wc -l <"$acc")"
check "received bytes = sum(\$request_length)" "$(metric sockeye_frontend_received_bytes_total "$l")" \
  "$(awk '{ s += $3 } END { print s }' "$acc")"
check "sent bytes = sum(\$bytes_sent)" "$(metric sockeye_frontend_sent_bytes_total "$l")" \
  "$(awk '{ s += $4 } END { print s }' "$acc")"
for class in 2xx 3xx 4xx 5xx; do
  check "responses code=$class (\$status)" "$(metric sockeye_frontend_responses_total "$l code=\"$class\"")" \
    "$(awk -v c="${class:0:1}" 'substr($2, 1, 1) == c' "$acc" | wc -l)"
done
# sockeye: the request's arrival to the response's first byte leaving. nginx's
# \$request_time: from the event loop wake-up that read the request to the one
# that read the backend's response, which nginx writes at once in one piece
# (\$upstream_header_time, 30 ms, plus nginx's own processing). nginx's clock
# is cached per wake-up in whole milliseconds: each value is off by under 1 ms,
# unbiased, so the mean of ~70 is off by far less; the wake-up and write
# latencies the two leave out are tens of microseconds on loopback. 5 % of
# 30 ms (1.5 ms) covers both; 1 ms is the floor for a faster backend.
n_ngx=$(wc -l <"$acc")
check "response times counted" "$(metric sockeye_frontend_response_time_seconds_count "$l")" "$n_ngx"
ngx_mean=$(awk '{ s += $5 } END { printf "%.6f", s / NR }' "$acc")
up_mean=$(awk '{ s += $6 } END { printf "%.6f", s / NR }' "$acc")
sk_mean=$(awk -v s="$(curl -fs "127.0.0.1:$port/metrics" |
  awk -v l="$l" 'index($1, "sockeye_frontend_response_time_seconds_sum{") == 1 && index($1, l) { v += $2 }
    END { print v }')" -v n="$n_ngx" 'BEGIN { printf "%.6f", s / n }')
within=$(awk -v a="$sk_mean" -v b="$ngx_mean" 'BEGIN { d = a - b; if (d < 0) d = -d;
  t = 0.05 * b; if (t < 0.001) t = 0.001; print (d <= t) ? "yes" : "no" }')
name="mean response time: sockeye ${sk_mean}s, nginx \$request_time ${ngx_mean}s"
check "$name (\$upstream_header_time ${up_mean}s), within max(1 ms, 5 %)" "$within" yes

echo "--- Prometheus: the same numbers as scraped"
query() { # PROMQL: the first result's value, or "none"
  curl -fsG "http://$prom/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
want=$(metric sockeye_frontend_requests_total "listener=\"$ngx\"")
for _ in $(seq 60); do
  [ "$(query "sum(sockeye_frontend_requests_total{listener=\"$ngx\"})")" = "$want" ] && break
  sleep 0.5
done
check "Prometheus: requests of $ngx as scraped" \
  "$(query "sum(sockeye_frontend_requests_total{listener=\"$ngx\"})")" "$want"
p50=$(query "histogram_quantile(0.5, sum by (le) (sockeye_frontend_response_time_seconds_bucket{listener=\"$ngx\"}))")
in_bucket=$(awk -v q="$p50" 'BEGIN { print (q > 0.025 && q <= 0.05) ? "yes" : "no" }')
check "Prometheus: median response time of $ngx ($p50 s) in the (25 ms, 50 ms] bucket of a 30 ms backend" \
  "$in_bucket" yes

finish frontends
