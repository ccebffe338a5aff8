#!/usr/bin/env bash
# HTTP status per backend against real proxies: nginx and HAProxy (HTTP mode,
# keep-alive pools) in front of backends that answer 200, 301, 404, 500 and
# 503, one that sends its body 200 ms after its headers, and one that never
# answers (nginx gives up after proxy_read_timeout 1s: a 504). sockeye's
#   sockeye_backend_responses_total{code}         = nginx's $upstream_status
#                                                   classes per backend, and
#                                                   haproxy_server_http_responses_total
#   sockeye_backend_requests_unanswered_total     = nginx's 504s of the mute backend
#   sockeye_backend_response_duration_seconds     mean within max(1 ms, 5 %) of nginx's
#                                                   $upstream_response_time
# A real Prometheus scrapes the agent: its rate() and histogram_quantile() of the
# new families agree with the agent's own numbers.
# Traffic stays on loopback (127.0.78.x, 127.0.79.x); every load is a bounded
# number of requests.
#
#   sudo tests/e2e/http_status.sh path/to/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: http_status.sh path/to/sockeye}")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "http_status.sh: needs root" >&2; exit 1; }
for tool in nginx haproxy curl python3 prometheus; do
  command -v $tool >/dev/null || {
    echo "http_status.sh: $tool missing (bash packaging/install-deps.sh --test)" >&2
    exit 1
  }
done

work=$(mktemp -d)
chmod 755 "$work" # nginx workers (www-data) write their log here
port=19582
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
metric() { # NAME LABEL-TEXT...: the sum of the series whose labels contain every LABEL-TEXT
  local name=$1
  shift
  curl -fs "127.0.0.1:$port/metrics" | awk -v n="$name" -v want="$*" '
    ($1 == n || index($1, n "{") == 1) {
      k = split(want, w, " "); ok = 1
      for (i = 1; i <= k; i++) if (!index($1, w[i])) ok = 0
      if (ok) v += $2
    }
    END { print v + 0 }'
}

# Backends: nginx's on 127.0.78.N, HAProxy's on 127.0.79.N.
ngx_backends=(127.0.78.1:8080=200 127.0.78.2:8080=301 127.0.78.3:8080=404 127.0.78.4:8080=500
  127.0.78.5:8080=503 127.0.78.6:8080=slow 127.0.78.7:8080=mute)
hap_backends=(127.0.79.1:8080=200 127.0.79.2:8080=301 127.0.79.3:8080=404 127.0.79.4:8080=500
  127.0.79.5:8080=503)
python3 "$here/http_status_backend.py" "${ngx_backends[@]}" "${hap_backends[@]}" >"$work/backend.log" 2>&1 &
pids+=($!)

{
  echo "worker_processes 1; pid $work/nginx.pid; error_log $work/error.log;"
  echo "events { worker_connections 512; }"
  echo "http { access_log off;"
  echo "  log_format up '\$upstream_addr \$upstream_status \$upstream_response_time';"
  for i in "${!ngx_backends[@]}"; do
    echo "  upstream b$i { server ${ngx_backends[$i]%=*}; keepalive 4; }"
  done
  echo "  server { listen 127.0.78.100:8080; access_log $work/upstream.log up;"
  echo "    proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_read_timeout 1s;"
  echo "    proxy_next_upstream off;"
  for i in "${!ngx_backends[@]}"; do echo "    location /b$i { proxy_pass http://b$i; }"; done
  echo "  }"
  echo "}"
} >"$work/nginx.conf"
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)

haproxy_routes_config 127.0.79.100:8404 127.0.79.100:8080 /h "${hap_backends[@]}" >"$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)

"$agent" --include 127.0.78.0/24 --include 127.0.79.0/24 --web.listen-address "127.0.0.1:$port" \
  >"$work/agent.log" 2>&1 &
pids+=($!)
prom=127.0.0.1:19583
cat >"$work/prometheus.yml" <<PROM
global: { scrape_interval: 1s }
scrape_configs:
  - job_name: sockeye
    static_configs: [ { targets: ["127.0.0.1:$port"] } ]
PROM
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="$prom" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "127.0.0.1:$port/healthz" >/dev/null 2>&1 && curl -fs -o /dev/null 127.0.78.100:8080/b0 &&
    curl -fs -o /dev/null 127.0.79.100:8404/metrics && break
  sleep 0.1
done
grep -q "http_status.*cgroup_skb" "$work/agent.log" || {
  echo "FAIL: the agent did not attach its HTTP status program:"
  cat "$work/agent.log"
  exit 1
}
# Which build runs: bpf_rdonly_cast (6.2+) or bpf_skc_to_tcp_sock.
grep "probe http_status:" "$work/agent.log"

echo "--- load: a bounded number of requests per route"
for i in 0 1 2 3 4; do
  curl -s -o /dev/null "http://127.0.78.100:8080/b$i?n=[1-40]"
  curl -s -o /dev/null "http://127.0.79.100:8080/h$i?n=[1-40]"
done
curl -s -o /dev/null "http://127.0.78.100:8080/b5?n=[1-20]"
curl -s -o /dev/null "http://127.0.78.100:8080/b6?n=[1-3]"
# nginx closes its idle pooled connections on reload: every response completes.
kill -HUP "$(cat "$work/nginx.pid")"
sleep 2

status_class() { awk -v a="$1" '$1 == a { c[substr($2, 1, 1) "xx"]++ } END { for (k in c) print k, c[k] }' "$work/upstream.log"; }
settled() { # NAME LABELS EXPECTED: waits up to 10 s for the metric to reach EXPECTED
  for _ in $(seq 100); do
    [ "$(metric "$1" "$2")" = "$3" ] && break
    sleep 0.1
  done
  metric "$1" "$2"
}

echo "--- nginx: responses per backend and class = \$upstream_status"
for i in 0 1 2 3 4 5; do
  addr=${ngx_backends[$i]%=*}
  while read -r class count; do
    check "$addr code=$class" "$(settled sockeye_backend_responses_total "backend=\"$addr\" code=\"$class\"" "$count")" "$count"
  done < <(status_class "$addr")
done
mute=${ngx_backends[6]%=*}
timeouts=$(awk -v a="$mute" '$1 == a && $2 == 504' "$work/upstream.log" | wc -l)
check "$mute: responses (never answers)" "$(metric sockeye_backend_responses_total "backend=\"$mute\"")" 0
check "$mute: requests unanswered, closed by the proxy (nginx's 504s)" \
  "$(settled sockeye_backend_requests_unanswered_total "backend=\"$mute\" closed_by=\"local\"" "$timeouts")" "$timeouts"

echo "--- nginx: response duration of the slow-body backend vs \$upstream_response_time"
slow=${ngx_backends[5]%=*}
n_slow=$(awk -v a="$slow" '$1 == a' "$work/upstream.log" | wc -l)
check "$slow: responses completed" \
  "$(settled sockeye_backend_response_duration_seconds_count "backend=\"$slow\"" "$n_slow")" "$n_slow"
ngx_mean=$(awk -v a="$slow" '$1 == a { s += $3; n++ } END { printf "%.6f", s / n }' "$work/upstream.log")
sk_mean=$(awk -v s="$(metric sockeye_backend_response_duration_seconds_sum "backend=\"$slow\"")" \
  -v n="$n_slow" 'BEGIN { printf "%.6f", s / n }')
within=$(awk -v a="$sk_mean" -v b="$ngx_mean" 'BEGIN { d = a - b; if (d < 0) d = -d;
  t = 0.05 * b; if (t < 0.001) t = 0.001; print (d <= t) ? "yes" : "no" }')
check "mean response duration: sockeye ${sk_mean}s, nginx ${ngx_mean}s, within max(1 ms, 5 %)" "$within" yes

echo "--- HAProxy: responses per server and class = haproxy_server_http_responses_total"
curl -fs 127.0.79.100:8404/metrics >"$work/haproxy.metrics"
for i in 0 1 2 3 4; do
  addr=${hap_backends[$i]%=*}
  for class in 1xx 2xx 3xx 4xx 5xx other; do
    hap=$(awk -v p="proxy=\"h$i\"" -v c="code=\"$class\"" \
      'index($1, "haproxy_server_http_responses_total{") == 1 && index($1, p) && index($1, c) { v += $2 } END { print v + 0 }' \
      "$work/haproxy.metrics")
    [ "$hap" = 0 ] && [ "$(metric sockeye_backend_responses_total "backend=\"$addr\" code=\"$class\"")" = 0 ] && continue
    check "$addr (h$i) code=$class" "$(settled sockeye_backend_responses_total "backend=\"$addr\" code=\"$class\"" "$hap")" "$hap"
  done
done

echo "--- Prometheus: the same numbers through rate() and histogram_quantile()"
query() { # PROMQL: the first result's value, or "none"
  curl -fsG "http://$prom/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
for _ in $(seq 60); do
  [ "$(query "up{job=\"sockeye\"}")" = 1 ] && [ "$(query "sum(sockeye_backend_responses_total{backend=\"${hap_backends[4]%=*}\"})")" != none ] && break
  sleep 0.5
done
sleep 2 # a last scrape after the counts settled
for i in 3 4; do
  addr=${ngx_backends[$i]%=*}
  check "Prometheus: $addr 5xx responses as scraped" \
    "$(query "sum(sockeye_backend_responses_total{backend=\"$addr\",code=\"5xx\"})")" \
    "$(metric sockeye_backend_responses_total "backend=\"$addr\" code=\"5xx\"")"
done
p50=$(query "histogram_quantile(0.5, sum by (le) (sockeye_backend_response_duration_seconds_bucket{backend=\"$slow\"}))")
in_bucket=$(awk -v q="$p50" 'BEGIN { print (q > 0.1 && q <= 0.25) ? "yes" : "no" }')
check "Prometheus: median response duration of $slow ($p50 s) in the (0.1 s, 0.25 s] bucket of 0.2 s bodies" "$in_bucket" yes
ratio=$(query "sum(rate(sockeye_backend_responses_total{backend=~\"127.0.78.*\",code=\"5xx\"}[1m])) / sum(rate(sockeye_backend_responses_total{backend=~\"127.0.78.*\"}[1m])) > 0")
check "Prometheus: a 5xx ratio over nginx's backends is computed (rate)" "$([ "$ratio" != none ] && echo yes || echo no)" yes

finish "http status"
