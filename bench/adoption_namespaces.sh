#!/usr/bin/env bash
# Start-up time of the agent (process start to "serving metrics") with N
# extra network namespaces, each holding a sleeping process, which adoption
# walks one by one (an iter/tcp iterator created inside each). Three runs.
#
#   sudo bench/adoption_namespaces.sh build/sockeye N
#
# Run it with N=0 too, for the baseline in the same window. Other TCP sockets
# on the host make every walk longer: TCP's hash tables are shared by all
# namespaces (unless net.ipv4.tcp_child_ehash_entries is set).
set -euo pipefail
agent=$(realpath "${1:?usage: adoption_namespaces.sh path/to/sockeye N}")
count=${2:?usage: adoption_namespaces.sh path/to/sockeye N}
[ "$(id -u)" -eq 0 ] || { echo "adoption_namespaces.sh: needs root" >&2; exit 1; }

log=$(mktemp)
sleepers=()
cleanup() {
  [ ${#sleepers[@]} -gt 0 ] && kill "${sleepers[@]}" 2>/dev/null
  for i in $(seq 1 "$count"); do ip netns del "sockeye-bench$i" 2>/dev/null || true; done
  rm -f "$log"
}
trap cleanup EXIT

for i in $(seq 1 "$count"); do
  ip netns add "sockeye-bench$i"
  ip netns exec "sockeye-bench$i" sleep 600 &
  sleepers+=($!)
done
sleep 1
echo "TCP sockets on the host: $(ss -tanH | wc -l)"
for run in 1 2 3; do
  start=$(date +%s%N)
  "$agent" --include 127.0.0.9/32 --web.listen-address 127.0.0.1:19558 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 3000); do
    grep -q "serving metrics" "$log" && break
    kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.005
  done
  end=$(date +%s%N)
  walked=$(curl -fs 127.0.0.1:19558/metrics |
    awk '/^sockeye_adoption_network_namespaces[{]result="walked"[}]/ { print $2 }')
  echo "N=$count run $run: start-up $(((end - start) / 1000000)) ms, namespaces walked $walked"
  kill $pid
  wait $pid 2>/dev/null || true
done
