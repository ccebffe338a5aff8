#!/usr/bin/env bash
# Mean wall time of one sweep with N idle loopback TCP connections on the
# host that sockeye does not follow (2N sockets), for the sweep iterator the
# kernel allows (or --sweep-iterator given as $3). Loopback only, bounded.
# Usage: bench/sweep_cost.sh build/sockeye N [ITERATOR]
set -euo pipefail
agent=$1 n=$2 iterator=${3:-auto}
port=19581 metrics=19582
need=$((2 * n + 64))
if [ "$need" -gt "$(ulimit -Hn)" ]; then
  echo "sweep_cost: $n connections need $need file descriptors; the hard limit is $(ulimit -Hn)" >&2
  exit 2
fi
# Raise only the soft limit, and only if needed (the agent inherits it).
[ "$(ulimit -Sn)" -ge "$need" ] || ulimit -Sn "$need"
ready=$(mktemp)
python3 - "$n" "$port" "$ready" <<'PY' &
import socket, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port)); listener.listen(4096)
held = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port)); s, _ = listener.accept(); held += [c, s]
open(sys.argv[3], "w").write("ready")
time.sleep(40)
PY
holder=$!
agent_pid=
trap 'kill $holder ${agent_pid} 2>/dev/null; wait 2>/dev/null; rm -f "$ready"' EXIT
for _ in $(seq 60); do
  [ -s "$ready" ] && break
  kill -0 $holder 2>/dev/null || { echo "sweep_cost: opening the connections failed" >&2; exit 1; }
  sleep 1
done
[ -s "$ready" ] || { echo "sweep_cost: connections not open after 60 s" >&2; exit 1; }
"$agent" --web.listen-address 127.0.0.1:$metrics --include 127.0.0.2/32 --sweep-interval 100ms \
  --sweep-iterator "$iterator" --log.level warn &
agent_pid=$!
sleep 12
kill -0 "$agent_pid" 2>/dev/null || { echo "sweep_cost: the agent exited" >&2; exit 1; }
curl -s --max-time 10 http://127.0.0.1:$metrics/metrics |
  awk -v n="$n" '/^sockeye_sweeps_total\{result="ok"\}/ {ok=$2} /^sockeye_sweep_duration_seconds_total/ {s=$2}
    /^sockeye_probe_info\{hook="sweep"/ {match($0, /target="[^"]*"/); t=substr($0, RSTART+8, RLENGTH-9)}
    END {if (!ok) {print "sweep_cost: no successful sweep in the scrape" > "/dev/stderr"; exit 1}
         printf "%d idle connections (%d sockets), sweep over %s: %d sweeps, mean %.3f ms\n", n, 2*n, t, ok, 1000*s/ok}'
