# Helpers the end-to-end scripts share, sourced by them (not run):
#   source "$here/lib.sh"
# A check prints "ok" or "FAIL" with its figures and remembers a failure in
# $fail; `finish NAME` prints the verdict and exits with it.
# shellcheck shell=bash

fail=0

check() { # NAME ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then echo "ok   $1: $2"; else echo "FAIL $1: $2, expected $3"; fail=1; fi
}

check_cmp() { # NAME ACTUAL OP BOUND (OP: test's -ge, -le, -gt ...)
  if test "$2" "$3" "$4"; then echo "ok   $1: $2 ($3 $4)"; else echo "FAIL $1: $2, expected $3 $4"; fail=1; fi
}

# metric_sum HOST:PORT NAME [LABEL-TEXT...]: the sum of the series of NAME on
# the agent's /metrics whose labels contain every LABEL-TEXT, rounded to an
# integer (0 when there is none, or no page).
metric_sum() {
  local address=$1 name=$2
  shift 2
  curl -fs --max-time 5 "$address/metrics" | awk -v n="$name" -v want="$*" '
    ($1 == n || index($1, n "{") == 1) {
      k = split(want, w, " "); ok = 1
      for (i = 1; i <= k; i++) if (!index($1, w[i])) ok = 0
      if (ok) v += $2
    }
    END { printf "%.0f\n", v }'
}

# wait_healthy HOST:PORT PID LOG: waits up to 15 s for the agent's /healthz;
# if the agent dies or stays unhealthy, prints its log and exits 1.
wait_healthy() {
  for _ in $(seq 150); do
    curl -fs --max-time 1 "$1/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: the agent did not start:"
  cat "$3"
  exit 1
}

# haproxy_routes_config STATS FRONT PREFIX ADDRESS[=...]...: an HTTP-mode
# HAProxy configuration with its Prometheus exporter on STATS and, on FRONT,
# the path PREFIXi routed to the i-th ADDRESS (backend hi, anything after "="
# ignored), connections to servers reused.
haproxy_routes_config() {
  local stats=$1 front=$2 prefix=$3 i
  shift 3
  local servers=("$@")
  printf '%s\n' "global" "  maxconn 256" "defaults" "  mode http" "  timeout connect 2s" \
    "  timeout client 10s" "  timeout server 10s" "  http-reuse always" "frontend stats" "  bind $stats" \
    "  http-request use-service prometheus-exporter if { path /metrics }" "frontend front" "  bind $front"
  for i in "${!servers[@]}"; do echo "  use_backend h$i if { path_beg $prefix$i }"; done
  for i in "${!servers[@]}"; do printf '%s\n' "backend h$i" "  server s ${servers[$i]%%=*}"; done
}

finish() { # NAME: the verdict line, and the exit status
  [ "$fail" -eq 0 ] && echo "$1: all checks passed" || echo "$1: FAILED"
  exit "$fail"
}
