#!/usr/bin/env bash
# The kernel matrix: the agent and its privileged test suite on Debian 12's
# 6.1 cloud kernel, Ubuntu 22.04's 5.15, Ubuntu 24.04's 6.8 and Debian 13's
# 6.12 under qemu, the refusal on Debian 11's 5.10, and the host-kernel checks.
#
#   run-matrix.sh BUILD_DIR
#
# Each guest boots once and runs its checks in order; the checks are listed
# below, guest by guest. In short: each kernel runs the privileged suite
# once in auto mode (5.15 and 6.1 each over two guests); 6.1 runs its data-path
# tests (the ones whose counts pass through the receive and send hooks) again
# in kprobe and in fentry mode (under lockdown=integrity), and the other
# kernels check that those modes' programs load and attach. 6.1 also runs the
# fallbacks of a receive hook and sweep that will not attach, the
# network-namespace tests, the verifier statistics and lockdown=confidentiality
# (kprobes refused with a reason, fentry loads, the auto mode counts); 5.10 the
# refusal naming the minimum kernel. On the host (6.18: tp_btf, no fentry, no
# kprobes): auto attaches no send hook, --probe-mode tracepoint picks tp_btf,
# forcing fentry or kprobe fails with a message saying what is missing.
#
# Output: one PASS/FAIL line per check with its seconds in the guest, one
# line per guest with its wall time, and a failing guest's console.
#
# The binaries are dynamically linked (Debian ships cpp-httplib only as a
# shared library), so each goes into the guest with its ldd closure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:?usage: run-matrix.sh BUILD_DIR}")
agent=$build/sockeye
suite=$build/tests/sockeye_bpf_tests
[ -x "$agent" ] && [ -x "$suite" ] || { echo "run-matrix: build $agent and $suite first" >&2; exit 1; }

fail=0
check() {  # check NAME CONDITION-EXIT-STATUS
  if [ "$2" -eq 0 ]; then echo "PASS: $1"; else echo "FAIL: $1"; fail=1; fi
}

# --- host kernel -------------------------------------------------------------
out=$("$agent" --check 2>&1) && rc=0 || rc=$?
echo "$out" | grep -qE '^  send +off ' && [ $rc -eq 0 ] && ok=0 || ok=1
check "host: --check passes and auto attaches no send hook" $ok
out=$("$agent" --check --probe-mode tracepoint 2>&1) && rc=0 || rc=$?
echo "$out" | grep -qE '^  send +tp_btf +sock_send_length' && [ $rc -eq 0 ] && ok=0 || ok=1
check "host: --check --probe-mode tracepoint picks tp_btf for send" $ok
for mode in fentry kprobe; do
  out=$("$agent" --check --probe-mode $mode 2>&1) && rc=0 || rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q "FAILED:.*$mode" && ok=0 || ok=1
  check "host: forcing $mode fails with a reason ($(echo "$out" | grep FAILED | cut -c1-140))" $ok
done

# External BTF (kernels without /sys/kernel/btf/vmlinux) and a bad path.
btf_copy=$(mktemp)
cp /sys/kernel/btf/vmlinux "$btf_copy"
out=$("$agent" --check --btf-path "$btf_copy" 2>&1) && rc=0 || rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^btf: *$btf_copy" && ok=0 || ok=1
check "host: --check with an external BTF file from --btf-path" $ok
rm -f "$btf_copy"
out=$("$agent" --check --btf-path /nonexistent.btf 2>&1) && rc=0 || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q -- "--btf-path.*nonexistent.btf" && ok=0 || ok=1
check "host: a missing --btf-path file is named ($out)" $ok

# Without CAP_BPF (and CAP_SYS_ADMIN, which also grants it) the error names
# the capability.
if command -v setpriv >/dev/null; then
  out=$(setpriv --bounding-set=-bpf,-perfmon,-sys_admin "$agent" --check 2>&1) && rc=0 || rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q "CAP_BPF" && ok=0 || ok=1
  check "host: without CAP_BPF, the failure names it ($(echo "$out" | grep -m1 -E 'FAILED|CAP_BPF' | cut -c1-120))" $ok
fi

# --- guests ------------------------------------------------------------------
# Each guest boots once and runs its checks in order (run-checks.sh); guests
# run side by side, SOCKEYE_VM_JOBS at a time (default: one more than the
# host's CPUs: under TCG a guest spends much of its suite waiting on timers,
# ~0.6 of a CPU on average in a measured run). Each guest has one vCPU: with
# guests side by side on two host CPUs, the same tests ran ~10 % faster than
# with two (multi-threaded TCG's cross-vCPU synchronisation).
# Every guest unpacks the same base initramfs (busybox, the two binaries and
# their libraries, ip and dash), packed once here. Kernels come from the
# cache only: packaging/install-deps.sh --test downloads them
# (tests/vm/fetch-kernels.sh); a missing one fails its guest's checks by name.
# SOCKEYE_VM_NICE runs the guests at that nice level (ctest sets 19, so the
# host tiers running beside them keep the CPU their timings need).
jobs=${SOCKEYE_VM_JOBS:-$(( $(nproc) + 1 ))}
work=$(mktemp -d "${TMPDIR:-/tmp}/sockeye-matrix.XXXXXX")
trap 'rm -rf "$work"' EXIT

files=()
add_with_libs() {  # add_with_libs BINARY DEST
  files+=(--file "$1:$2")
  while read -r lib; do
    files+=(--file "$(readlink -f "$lib"):$lib")  # the real file under the soname
  done < <(ldd "$1" | awk '/=> \// { print $3 } /^\s*\/lib/ { print $1 }' | sort -u)
}
add_with_libs "$agent" /usr/bin/sockeye
add_with_libs "$suite" /usr/bin/sockeye_bpf_tests
# The namespace tests (a veth pair into a namespace of their own) need
# iproute2's `ip`, and dash as /bin/sh, because Debian's busybox-static shell
# runs its own `ip` applet (no `ip netns`) before anything on PATH.
add_with_libs /usr/bin/ip /usr/bin/ip
add_with_libs /usr/bin/dash /usr/bin/dash
files+=(--file "$(readlink -f /lib64/ld-linux-x86-64.so.2):/lib64/ld-linux-x86-64.so.2")
files+=(--file "$here/run-checks.sh:/usr/bin/run-checks")
bash "$here/run-in-vm.sh" --build-base "$work/base.cpio.gz" "${files[@]}" 2>/dev/null

# The suite in one probe mode. The namespace tests run on their own
# (namespace_cmd); NestedStateChangesAreAllCounted runs on the host only: its
# 20,000 connects per round are slow under TCG. A shard ("I/N", gtest's own
# sharding) runs every Nth test, so one kernel's suite can be spread over guests
# that boot side by side.
suite_cmd() {  # suite_cmd MODE EXPECTED_SEND_MODE EXPECTED_RECEIVE [TESTS (a gtest filter)] [SHARD]
  local shard=""
  [ -z "${5:-}" ] || shard="GTEST_SHARD_INDEX=${5%/*} GTEST_TOTAL_SHARDS=${5#*/}"
  echo "SOCKEYE_REQUIRE_BPF=1 SOCKEYE_TEST_PROBE_MODE=$1 SOCKEYE_TEST_EXPECT_SEND_MODE=$2" \
       "SOCKEYE_TEST_EXPECT_RECEIVE='$3' SOCKEYE_TEST_EXPECT_SWEEP=bpf_sk_storage_map $shard" \
       "sockeye_bpf_tests '--gtest_filter=${4:-*}-*UnansweredSyn*:*StopsAnswering*:*InOtherNamespaces*:*NestedStateChanges*' --gtest_brief=1"
}
# The tests whose counts go through the receive and send hooks: bytes, turns,
# response times, statuses per turn, both sides. A probe mode changes only
# those two hooks, so these are what another mode runs again; state changes,
# resets, adoption, the sweep, reloads and the status program's builds are the
# same programs in every mode. Under TCG the floor of a test is its agent's
# start (~2.4 s, most of it the verifier), so each repeat is costly.
data_path_tests='*ExactCounts*:*MultiMegabyte*:*PeekedBytes*:*BytesReadAfterAReset*:*AbortiveClose*:*HotSlot*'
data_path_tests+=':*Frontend*:*ShutdownThenClose*:*HttpStatusClasses*:*ResponseDuration*:*LastResponseCompletes*'
data_path_tests+=':*UnansweredRequests*:*ProbeChoices*:*TimeToFirstByte*:*TurnsOf*:*Sendfile*:*AResponseBefore*'
namespace_cmd() {
  echo "ln -sf /usr/bin/dash /bin/sh && PATH=/usr/bin:\$PATH SOCKEYE_REQUIRE_BPF=1" \
       "sockeye_bpf_tests --gtest_filter='*UnansweredSyn*:*StopsAnswering*:*InOtherNamespaces*' --gtest_brief=1"
}
# Lockdown is raised at run time (securityfs), which the kernel allows upward
# only: the same state as booting with lockdown=..., without another boot.
lockdown_cmd() {  # lockdown_cmd LEVEL
  echo "echo $1 > /sys/kernel/security/lockdown && grep -q '\[$1\]' /sys/kernel/security/lockdown"
}
# Verifier statistics: sockeye --check's program table, on the console for the host.
stats_cmd() {  # stats_cmd MODE
  echo "sockeye --check --probe-mode $1 > /tmp/stats && sed 's/^/SOCKEYE_STATS $1 /' /tmp/stats > /dev/console"
}
# One --check, read for the hooks it chose and the status program.
check_cmd() {  # check_cmd EXPECTED_RECEIVE-REGEX
  echo "sockeye --check > /tmp/c 2>&1; grep -E 'receive|send|http_status' /tmp/c;" \
       "grep -qE '^  send +off ' /tmp/c && grep -qE '^  receive +$1' /tmp/c && grep -qE '^  http_status +cgroup_skb +ingress ' /tmp/c"
}

guests=()
declare -A guest_kernel guest_source guest_args guest_timeout
guest() {  # guest NAME KERNEL TIMEOUT [run-in-vm.sh options...]
  guests+=("$1"); guest_source[$1]=$2; guest_kernel[$1]=$(cached "$2"); guest_timeout[$1]=$3
  shift 3
  guest_args[${guests[-1]}]="$*"
  : >"$work/${guests[-1]}.checks"
}
add() {  # add GUEST LABEL COMMAND
  printf '%s\t%s\n' "$2" "$3" >>"$work/$1.checks"
}
cached() {  # cached NAME: the kernel's path, or empty (the reason goes to $work/NAME.missing)
  if [ "$1" = debian-12 ]; then
    bash "$here/install-vm-deps.sh" --cached 2>"$work/$1.missing" || true
  else
    bash "$here/install-pinned-kernel.sh" --cached "$1" 2>"$work/$1.missing" || true
  fi
}

# Guests are listed longest first, the order they start in. Seconds in the
# comments are one guest's wall time with three booted side by side on two
# host CPUs; timeouts are about three times that.

# Ubuntu 22.04's 5.15, the kernel of the largest LTS fleet: the hooks of 6.1;
# its verifier reports no instruction counts (5.16+). Its tests run ~1.7x
# longer than 6.1's under TCG, so its suite is split over two guests, the
# second under lockdown=integrity. Its other probe modes run programs the 6.1
# guests count with (fentry: tcp_sendmsg; segment: tcp_probe, kprobe mode's
# receive hook): here they must load and attach.
for shard in 0 1; do
  guest 5.15-$shard ubuntu-22.04 900
  if [ $shard = 0 ]; then
    add 5.15-$shard "--check: no send hook, responses at fentry sock_def_readable, the HTTP status program" \
      "$(check_cmd 'fentry +sock_def_readable')"
    add 5.15-$shard "--check --probe-mode segment receives at tcp_probe" \
      "sockeye --check --probe-mode segment | grep -qE '^  receive +tp_btf +tcp_probe'"
  else
    add 5.15-$shard "lockdown=integrity raised" "$(lockdown_cmd integrity)"
    add 5.15-$shard "lockdown=integrity: --check --probe-mode fentry sends at fentry tcp_sendmsg" \
      "sockeye --check --probe-mode fentry | grep -qE '^  send +fentry +tcp_sendmsg'"
  fi
  add 5.15-$shard "exact counts in auto mode (no send hook), tests $((shard + 1)) of every 2" \
    "$(suite_cmd auto off "fentry sock_def_readable" '*' "$shard/2")"
done

# Debian 12's 6.1 (no sock_send_length or sk_data_ready; fentry and kprobes):
# auto times responses at fentry sock_def_readable.
for shard in 0 1; do
  guest 6.1-$shard debian-12 900 --module tcp_diag
  [ $shard = 1 ] || add 6.1-$shard "--check: no send hook, responses at fentry sock_def_readable, the HTTP status program; --probe-mode fentry" \
    "$(check_cmd 'fentry +sock_def_readable') && sockeye --check --probe-mode fentry | grep -qE '^  send +fentry +tcp_sendmsg'"
  add 6.1-$shard "exact counts in auto mode (no send hook), tests $((shard + 1)) of every 2" \
    "$(suite_cmd auto off "fentry sock_def_readable" '*' "$shard/2")"
done

# 6.1 again: kprobes (their receive hook is segment mode's tcp_probe), the
# fallbacks, the namespace tests (veth) and the verifier statistics.
guest 6.1-kprobe debian-12 900 --module veth --module tcp_diag
add 6.1-kprobe "data-path counts with --probe-mode kprobe" \
  "$(suite_cmd kprobe kprobe "tp_btf tcp_probe" "$data_path_tests")"
add 6.1-kprobe "a receive hook and sweep that load but will not attach fall back to tcp_probe and iter/tcp, and --check says why" \
  "SOCKEYE_TEST_REFUSE_ATTACH=on_sock_def_readable_fentry,sweep_connections sockeye --check > /tmp/c 2>&1; cat /tmp/c; grep -qE '^  receive +tp_btf +tcp_probe' /tmp/c && grep -qE '^  sweep +iter +tcp$' /tmp/c && grep -q 'receive at fentry sock_def_readable: starting with it failed' /tmp/c && grep -q 'sweep over socket storage: starting with it failed' /tmp/c"
add 6.1-kprobe "the network-namespace tests (unanswered SYN, a backend that stops answering, other namespaces)" "$(namespace_cmd)"
for mode in auto fentry kprobe; do
  add 6.1-kprobe "verifier statistics with --probe-mode $mode" "$(stats_cmd $mode)"
done

# 6.1 locked down: fentry under integrity, kprobes refused under
# confidentiality while fentry still loads.
guest 6.1-lockdown debian-12 900 --module tcp_diag
add 6.1-lockdown "lockdown=integrity raised" "$(lockdown_cmd integrity)"
add 6.1-lockdown "lockdown=integrity: data-path counts with --probe-mode fentry" \
  "$(suite_cmd fentry fentry "tp_btf tcp_probe" "$data_path_tests")"
add 6.1-lockdown "lockdown=confidentiality raised" "$(lockdown_cmd confidentiality)"
add 6.1-lockdown "lockdown=confidentiality: --check passes with fentry, forcing kprobe fails with the reason" \
  "sockeye --check --probe-mode fentry | grep -qE '^  send +fentry' && ! sockeye --check --probe-mode kprobe > /tmp/k 2>&1; cat /tmp/k; grep -q 'FAILED' /tmp/k"
# Lockdown acts when programs load and attach, which --check above does for
# every program of auto mode; at run time they are the 6.1 guests', so three
# tests (counts, a timed response, the probe choices) stand for the suite.
add 6.1-lockdown "lockdown=confidentiality: counts, a timed response and the probe choices in auto mode" \
  "$(suite_cmd auto off "fentry sock_def_readable" '*ExactCountsOverKeepAlive*:*TimeToFirstByteOfADelayedBackend*:*ProbeChoicesAndHttpScrape*')"

# Ubuntu 24.04's 6.8 and Debian 13's 6.12: the host's tracepoints
# (sk_data_ready, sock_send_length), fentry and kprobes besides. Both run the
# whole suite in auto mode; fentry must load and attach (6.1 counts with it).
guest 6.12 debian-13 900 --module tcp_diag
add 6.12 "--check --probe-mode fentry sends at fentry tcp_sendmsg" \
  "sockeye --check --probe-mode fentry | grep -qE '^  send +fentry +tcp_sendmsg'"
add 6.12 "exact counts in auto mode (no send hook, sk_data_ready)" "$(suite_cmd auto off "tp_btf sk_data_ready")"
guest 6.8 ubuntu-24.04 900
add 6.8 "exact counts in auto mode (no send hook, sk_data_ready)" "$(suite_cmd auto off "tp_btf sk_data_ready")"

# Debian 11's 5.10 is older than sockeye supports (no socket storage from
# tracing programs before 5.11): the refusal must say so, name the program the
# verifier refused, and come at once (that program has no fallback).
guest 5.10 debian-11 300
add 5.10 "--check fails at once, naming the refused program and Linux 5.11 as the minimum" \
  "! sockeye --check > /tmp/c 2>&1; cat /tmp/c; grep -q 'FAILED: .*(program on_.*sockeye needs Linux 5.11 or later' /tmp/c && ! grep -q 'trying again' /tmp/c"

run_guest() {  # run_guest NAME: boots it; the console goes to $work/NAME.log
  local name=$1 start attempt
  start=$(date +%s)
  # A guest whose kernel dies before init (seen once in ~20 TCG boots:
  # an int3 oops while the kernel patches its own text) is booted once more;
  # the retry is reported. A failure after init is never retried.
  for attempt in 1 2; do
    # shellcheck disable=SC2086  # guest_args holds separate options
    nice -n "${SOCKEYE_VM_NICE:-0}" bash "$here/run-in-vm.sh" --kernel "${guest_kernel[$name]}" \
      --base "$work/base.cpio.gz" --timeout "${guest_timeout[$name]}" --mem 2048 --smp 1 -q --log "$work/$name.log" \
      --file "$work/$name.checks:/etc/checks" ${guest_args[$name]} -- sh /usr/bin/run-checks /etc/checks \
      >/dev/null 2>>"$work/$name.harness" || true
    grep -aq SOCKEYE_VM_READY "$work/$name.log" 2>/dev/null && break
    [ $attempt = 2 ] || cp "$work/$name.log" "$work/$name.first-boot.log" 2>/dev/null || true
  done
  echo $(( $(date +%s) - start )) >"$work/$name.seconds"
}
# SOCKEYE_VM_GUESTS="6.1 5.15" boots only the guests named (when working on one).
if [ -n "${SOCKEYE_VM_GUESTS:-}" ]; then
  wanted=()
  for name in "${guests[@]}"; do
    [[ " $SOCKEYE_VM_GUESTS " == *" $name "* ]] && wanted+=("$name")
  done
  guests=("${wanted[@]}")
fi
for name in "${guests[@]}"; do
  [ -n "${guest_kernel[$name]}" ] || continue
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_guest "$name" &
done
wait

for name in "${guests[@]}"; do
  if [ -z "${guest_kernel[$name]}" ]; then
    reason=$(grep -m1 . "$work/${guest_source[$name]}.missing" 2>/dev/null | sed 's/^[a-z-]*: //' || true)
    while IFS=$'\t' read -r label _; do
      check "$name $label (kernel not downloaded: ${reason:-see tests/vm/fetch-kernels.sh})" 1
    done <"$work/$name.checks"
    continue
  fi
  echo "guest $name: $(tr -d '\n' <"$work/$name.seconds") s ($(tail -n1 "$work/$name.harness"))"
  if [ -f "$work/$name.first-boot.log" ]; then
    echo "guest $name: its first boot died before init and it was booted again; that console's end:"
    grep -avE '^\s*$' "$work/$name.first-boot.log" | tail -n 12 | sed 's/^/    /'
  fi
  failed_here=0
  while IFS=$'\t' read -r label _; do
    line=$(tr -d '\r' <"$work/$name.log" | grep -a -F " $label" | grep -a -m1 '^SOCKEYE_CHECK ' || true)
    if [ -z "$line" ]; then
      check "$name $label (no result: the guest stopped before it)" 1; failed_here=1
    else
      read -r _ result seconds _ <<<"$line"
      if [ "$result" = PASS ]; then check "$name $label (${seconds}s)" 0
      else check "$name $label (${seconds}s)" 1; failed_here=1; fi
    fi
  done <"$work/$name.checks"
  if [ "$failed_here" = 1 ]; then
    if grep -aq '^--- output of: ' "$work/$name.log"; then
      # Each failed check's own output (run-checks.sh prints its last 40 lines).
      tr -d '\r' <"$work/$name.log" | awk '/^--- output of: / { on = 1 } on { print } /^SOCKEYE_CHECK / { on = 0 }'
    else
      echo "--- console of guest $name (last 80 lines)"
      grep -avE '^\s*$' "$work/$name.log" | tail -n 80 || true
    fi
  fi
done

# Verifier statistics per program and kernel, kept in tests/vm/VERIFIER-STATS.md
# so growth shows up in review (regenerate with SOCKEYE_UPDATE_VERIFIER_STATS=1).
stats() {  # stats LABEL < check-output
  awk -v k="$1" '/^programs/ { on=1; next } on && NF==2 { print k "\t" $1 "\t" $2 } on && NF!=2 { on=0 }'
}
{
  "$agent" --check | stats "host $(uname -r)"
  for mode in auto fentry kprobe; do
    tr -d '\r' <"$work/6.1-kprobe.log" 2>/dev/null | sed -n "s/^SOCKEYE_STATS $mode //p" | stats "6.1 ($mode)"
  done
} >"$build/verifier-stats.tsv"
echo "verifier statistics (instructions processed):"
column -t -s $'\t' "$build/verifier-stats.tsv"
if [ "${SOCKEYE_UPDATE_VERIFIER_STATS:-0}" = 1 ]; then
  {
    echo "# Verifier statistics"
    echo
    echo "Instructions the verifier processed for each program (\`bpf_prog_info.verified_insns\`),"
    echo "by kernel, as printed by \`sockeye --check\`. Regenerate with"
    echo "\`SOCKEYE_UPDATE_VERIFIER_STATS=1 bash tests/vm/run-matrix.sh build\`."
    echo
    echo "| kernel | program | instructions |"
    echo "|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }' "$build/verifier-stats.tsv"
  } >"$here/VERIFIER-STATS.md"
fi

exit $fail
