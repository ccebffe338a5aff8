#!/usr/bin/env bash
# Installs what is missing, builds, and runs the agent with default settings
# (all outbound TCP of this host; metrics on :19480/metrics). Extra
# arguments go to sockeye, e.g. scripts/run.sh --process nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target sockeye

# Where the metrics will be (the address follows a --web.listen-address
# given here).
address=:19480
previous=""
for arg in "$@"; do
  case "$arg" in --web.listen-address=*) address=${arg#*=} ;; esac
  [ "$previous" = --web.listen-address ] && address=$arg
  previous=$arg
done
host=${address%:*}
port=${address##*:}
case "$host" in "" | 0.0.0.0 | "[::]") host=localhost ;; esac
# The hint comes once the agent accepts connections, below its start-up
# log. Ctrl-C reaches the agent with the rest of the foreground process group.
./build/sockeye "$@" &
agent=$!
trap 'kill -TERM $agent 2>/dev/null' TERM HUP
for _ in $(seq 100); do
  kill -0 $agent 2>/dev/null || break
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    cat <<EOF

sockeye is serving http://$host:$port/metrics (Ctrl-C stops it). In another shell, try:
  curl -s $host:$port/metrics | grep '^sockeye_backend'     # per-backend series, once this host opens TCP connections
  curl -s $host:$port/metrics | grep '^sockeye_probe_info'  # the kernel hooks sockeye chose
  ./build/sockeye --check                                   # what this kernel offers, without starting
  docs/metrics.md lists every series, docs/configuration.md every setting.

EOF
    break
  fi
  sleep 0.1
done
rc=0
wait $agent || rc=$?
[ $rc -lt 128 ] || wait $agent || rc=$?
exit $rc
