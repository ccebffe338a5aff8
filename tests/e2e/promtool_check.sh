#!/usr/bin/env bash
# Starts the real agent, drives a little loopback traffic through it, scrapes
# /metrics (text 0.0.4 and OpenMetrics) and lints both with promtool: any
# warning fails the test. Exit 77 = skipped (ctest SKIP_RETURN_CODE).
set -euo pipefail
agent=${1:?usage: promtool_check.sh path/to/sockeye}

skip() {
  if [ "${SOCKEYE_REQUIRE_BPF:-0}" = 1 ]; then echo "FAIL (SOCKEYE_REQUIRE_BPF=1): $*"; exit 1; fi
  echo "SKIP: $*"; exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root: the agent needs CAP_BPF and CAP_PERFMON"
command -v promtool >/dev/null || skip "promtool not installed (packaging/install-deps.sh --test)"

work=$(mktemp -d)
cleanup() {
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$agent" --web.listen-address "127.0.0.1:$port" --include 127.0.0.5/32 --pool "lab=127.0.0.5/32" \
  >"$work/agent.log" 2>&1 &
agent_pid=$!

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log"; echo "FAIL: agent exited"; exit 1; }
  sleep 0.1
done

# Backends: one that answers, one port that refuses.
(cd "$work" && exec python3 -m http.server 18555 --bind 127.0.0.5) >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do curl -sf http://127.0.0.5:18555/ >/dev/null 2>&1 && break; sleep 0.1; done
for _ in 1 2 3; do curl -sf http://127.0.0.5:18555/ >/dev/null; done
curl -s http://127.0.0.5:18556/ >/dev/null 2>&1 || true

# Wait for the records to be visible (sweep interval is 1 s).
for _ in $(seq 50); do
  curl -s "http://127.0.0.1:$port/metrics" | grep -q 'sockeye_backend_connect_failures_total{backend="127.0.0.5:18556",pool="lab",reason="refused"} 1' && break
  sleep 0.1
done

curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "http://127.0.0.1:$port/metrics" >"$work/metrics.om"

status=0
grep -q 'sockeye_backend_requests_total{backend="127.0.0.5:18555",pool="lab"} 4' "$work/metrics.txt" ||
  { echo "FAIL: expected 4 requests to 127.0.0.5:18555"; grep 127.0.0.5 "$work/metrics.txt" | head -40; status=1; }
grep -q 'sockeye_backend_connect_failures_total{backend="127.0.0.5:18556",pool="lab",reason="refused"} 1' "$work/metrics.txt" ||
  { echo "FAIL: expected one refused connect to 127.0.0.5:18556"; status=1; }
tail -n1 "$work/metrics.om" | grep -qx '# EOF' || { echo "FAIL: OpenMetrics output does not end in # EOF"; status=1; }

# promtool's linter parses the 0.0.4 text format only (OpenMetrics escapes
# quotes in HELP, which that parser rejects), so OpenMetrics is checked for
# the same samples instead.
if ! out=$(promtool check metrics <"$work/metrics.txt" 2>&1) || [ -n "$out" ]; then
  echo "FAIL: promtool check metrics:"; echo "$out"; status=1
fi
grep -q '^# TYPE sockeye_backend_requests counter$' "$work/metrics.om" ||
  { echo "FAIL: OpenMetrics counter metadata should drop _total"; status=1; }
grep -q '^sockeye_backend_requests_total{backend="127.0.0.5:18555",pool="lab"} 4$' "$work/metrics.om" ||
  { echo "FAIL: OpenMetrics output lacks the request counter"; status=1; }
[ $status -eq 0 ] && echo "promtool check metrics: clean on $(wc -l <"$work/metrics.txt") lines; OpenMetrics structure ok"
exit $status
