#!/usr/bin/env bash
# The kernel matrix: the agent and its privileged test suite on Debian 12's
# 6.1 cloud kernel, Ubuntu 22.04's 5.15, Ubuntu 24.04's 6.8 and Debian 13's
# 6.12 under qemu, the refusal on Debian 11's 5.10, and the host-kernel checks.
#
#   run-matrix.sh BUILD_DIR
#
# In the 6.1 guest (no sock_send_length, fentry and kprobes available):
#   - `sockeye --check` passes (auto: no send hook, responses at fentry
#     sock_def_readable), and with --probe-mode fentry it attaches fentry;
#   - the exact-count loopback suite passes in auto mode and again with
#     --probe-mode segment and kprobe (each run asserts the send and receive
#     hooks it got);
#   - the receive hook and the sweep fall back when their programs will not
#     attach (SOCKEYE_TEST_REFUSE_ATTACH);
#   - the network-namespace tests (veth; iproute2 and dash brought in);
#   - lockdown=integrity: the suite passes with --probe-mode fentry;
#   - lockdown=confidentiality: kprobe attach is refused; --check still
#     passes, forcing kprobe fails naming why, the suite passes in auto mode.
# In the 5.15 guest (Ubuntu 22.04; install-pinned-kernel.sh): --check and the
# suite in auto mode (fentry sock_def_readable), segment mode, and fentry mode
# under lockdown=integrity. In the 6.8 and 6.12 guests: the suite in auto
# mode (sk_data_ready) and with --probe-mode fentry. In the 5.10 guest:
# --check fails at once, naming the refused program and the minimum kernel.
# On the host (6.18: tp_btf, no fentry, no kprobes): auto attaches no send
# hook, --probe-mode tracepoint picks tp_btf, forcing fentry or kprobe fails
# with a message saying what is missing.
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
echo "$out" | grep -qE '^  send +off ' && [ $rc -eq 0 ]
check "host: --check passes and auto attaches no send hook" $?
out=$("$agent" --check --probe-mode tracepoint 2>&1) && rc=0 || rc=$?
echo "$out" | grep -qE '^  send +tp_btf +sock_send_length' && [ $rc -eq 0 ]
check "host: --check --probe-mode tracepoint picks tp_btf for send" $?
for mode in fentry kprobe; do
  out=$("$agent" --check --probe-mode $mode 2>&1) && rc=0 || rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q "FAILED:.*$mode"
  check "host: forcing $mode fails with a reason ($(echo "$out" | grep FAILED | cut -c1-140))" $?
done

# External BTF (kernels without /sys/kernel/btf/vmlinux) and a bad path.
btf_copy=$(mktemp)
cp /sys/kernel/btf/vmlinux "$btf_copy"
out=$("$agent" --check --btf-path "$btf_copy" 2>&1) && rc=0 || rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^btf: *$btf_copy"
check "host: --check with an external BTF file from --btf-path" $?
rm -f "$btf_copy"
out=$("$agent" --check --btf-path /nonexistent.btf 2>&1) && rc=0 || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q -- "--btf-path.*nonexistent.btf"
check "host: a missing --btf-path file is named ($out)" $?

# Without CAP_BPF (and CAP_SYS_ADMIN, which also grants it) the error names
# the capability.
if command -v setpriv >/dev/null; then
  out=$(setpriv --bounding-set=-bpf,-perfmon,-sys_admin "$agent" --check 2>&1) && rc=0 || rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q "CAP_BPF"
  check "host: without CAP_BPF, the failure names it ($(echo "$out" | grep -m1 -E 'FAILED|CAP_BPF' | cut -c1-120))" $?
fi

# --- 6.1 guest ---------------------------------------------------------------
kernel=$(bash "$here/install-vm-deps.sh" | tail -n1)
files=()
add_with_libs() {  # add_with_libs BINARY DEST
  files+=(--file "$1:$2")
  while read -r lib; do
    files+=(--file "$(readlink -f "$lib"):$lib")  # the real file under the soname
  done < <(ldd "$1" | awk '/=> \// { print $3 } /^\s*\/lib/ { print $1 }' | sort -u)
}
add_with_libs "$agent" /usr/bin/sockeye
add_with_libs "$suite" /usr/bin/sockeye_bpf_tests
files+=(--file "$(readlink -f /lib64/ld-linux-x86-64.so.2):/lib64/ld-linux-x86-64.so.2")

# The network-namespace tests run separately (namespace_cmd): they need
# iproute2's `ip netns` and the veth module. NestedStateChangesAreAllCounted
# (a namespace too) runs on the host only: under TCG its 20,000 connects per
# round are slow, and whether the guests' two CPUs nest at all is untried. Without sock:sk_data_ready, auto mode times responses at fentry on
# sock_def_readable where fentry is allowed (every 6.1 run here); segment
# mode (also the fallback where fentry is refused) and every mode with a send
# hook at tcp_probe.
suite_cmd() {  # suite_cmd MODE EXPECTED_SEND_MODE EXPECTED_RECEIVE
  echo "SOCKEYE_REQUIRE_BPF=1 SOCKEYE_TEST_PROBE_MODE=$1 SOCKEYE_TEST_EXPECT_SEND_MODE=$2" \
       "SOCKEYE_TEST_EXPECT_RECEIVE='$3' SOCKEYE_TEST_EXPECT_SWEEP=bpf_sk_storage_map" \
       "sockeye_bpf_tests --gtest_filter=-*UnansweredSyn*:*StopsAnswering*:*InOtherNamespaces*:*NestedStateChanges* --gtest_brief=1"
}
# The namespace tests (a veth pair into a namespace of their own): iproute2's
# `ip`, and dash as /bin/sh, because Debian's busybox-static shell runs its own
# `ip` applet (no `ip netns`) before anything on PATH.
namespace_files=()
for tool in /usr/bin/ip /usr/bin/dash; do
  namespace_files+=(--file "$tool:$tool")
  while read -r lib; do
    namespace_files+=(--file "$(readlink -f "$lib"):$lib")
  done < <(ldd "$tool" | awk '/=> \// { print $3 }' | sort -u)
done
namespace_cmd() {
  echo "ln -sf /usr/bin/dash /bin/sh && PATH=/usr/bin:\$PATH SOCKEYE_REQUIRE_BPF=1" \
       "sockeye_bpf_tests --gtest_filter='*UnansweredSyn*:*StopsAnswering*:*InOtherNamespaces*' --gtest_brief=1"
}
vm_on() {  # vm_on LABEL VMLINUZ NAME APPEND COMMAND [run-in-vm.sh options...]
  local label=$1 image=$2 name=$3 append=$4 command=$5 log
  shift 5
  log=$(mktemp)
  if bash "$here/run-in-vm.sh" --kernel "$image" ${append:+--append "$append"} --timeout 900 \
       --mem 2048 -q --log "$log" "${files[@]}" "$@" -- "$command" >/dev/null 2>&1; then
    check "$label $name" 0
  else
    check "$label $name" 1
    grep -vE '^\s*$' "$log" | tail -n 40
  fi
  rm -f "$log"
}
vm() { vm_on 6.1 "$kernel" "$@"; }

vm "default: --check passes with no send hook and responses at fentry sock_def_readable, and with --probe-mode fentry" "" \
  "sockeye --check | grep -qE '^  send +off ' && sockeye --check | grep -qE '^  receive +fentry +sock_def_readable' && sockeye --check --probe-mode fentry | grep -qE '^  send +fentry +tcp_sendmsg'"
vm "default: exact counts in auto mode (no send hook)" "" "$(suite_cmd auto off "fentry sock_def_readable")"
vm "default: exact counts with --probe-mode segment (no send hook, tcp_probe)" "" "$(suite_cmd segment off "tp_btf tcp_probe")"
vm "default: exact counts with --probe-mode kprobe" "" "$(suite_cmd kprobe kprobe "tp_btf tcp_probe")"
vm "default: a receive hook and sweep that load but will not attach fall back to tcp_probe and iter/tcp, and --check says why" "" \
  "SOCKEYE_TEST_REFUSE_ATTACH=on_sock_def_readable_fentry,sweep_connections sockeye --check > /tmp/c 2>&1; cat /tmp/c; grep -qE '^  receive +tp_btf +tcp_probe' /tmp/c && grep -qE '^  sweep +iter +tcp$' /tmp/c && grep -q 'receive at fentry sock_def_readable: starting with it failed' /tmp/c && grep -q 'sweep over socket storage: starting with it failed' /tmp/c"
vm "default: the network-namespace tests (unanswered SYN, a backend that stops answering, other namespaces)" "" \
  "$(namespace_cmd)" "${namespace_files[@]}" --module veth
vm "lockdown=integrity: exact counts with --probe-mode fentry" "lockdown=integrity" "$(suite_cmd fentry fentry "tp_btf tcp_probe")"
vm "lockdown=confidentiality: --check passes with fentry, forcing kprobe fails with the reason" \
  "lockdown=confidentiality" \
  "sockeye --check --probe-mode fentry | grep -qE '^  send +fentry' && ! sockeye --check --probe-mode kprobe > /tmp/k 2>&1; cat /tmp/k; grep -q 'FAILED' /tmp/k"
vm "lockdown=confidentiality: exact counts in auto mode" "lockdown=confidentiality" "$(suite_cmd auto off "fentry sock_def_readable")"

# --- other kernels (tests/vm/install-pinned-kernel.sh) ------------------------
# Ubuntu 22.04's 5.15, the kernel of the largest LTS fleet: the same hooks as
# 6.1 (no sock_send_length or sk_data_ready; fentry, kprobes and the
# socket-storage iterator allowed); its verifier reports no instruction
# counts (5.16+).
kernel515=$(bash "$here/install-pinned-kernel.sh" ubuntu-22.04 | tail -n1)
vm_on 5.15 "$kernel515" "default: --check passes with no send hook and responses at fentry sock_def_readable" "" \
  "sockeye --check | grep -qE '^  send +off ' && sockeye --check | grep -qE '^  receive +fentry +sock_def_readable'"
vm_on 5.15 "$kernel515" "default: exact counts in auto mode (no send hook)" "" "$(suite_cmd auto off "fentry sock_def_readable")"
vm_on 5.15 "$kernel515" "default: exact counts with --probe-mode segment (no send hook, tcp_probe)" "" "$(suite_cmd segment off "tp_btf tcp_probe")"
vm_on 5.15 "$kernel515" "lockdown=integrity: exact counts with --probe-mode fentry" "lockdown=integrity" "$(suite_cmd fentry fentry "tp_btf tcp_probe")"

# Ubuntu 24.04's 6.8 and Debian 13's 6.12: the tracepoints of the host
# (sk_data_ready, sock_send_length) and fentry and kprobes besides, so auto
# mode times responses at sk_data_ready and a forced fentry send hook loads.
for kernel_name in ubuntu-24.04:6.8 debian-13:6.12; do
  image=$(bash "$here/install-pinned-kernel.sh" "${kernel_name%%:*}" | tail -n1)
  label=${kernel_name#*:}
  vm_on "$label" "$image" "default: exact counts in auto mode (no send hook, sk_data_ready)" "" \
    "$(suite_cmd auto off "tp_btf sk_data_ready")"
  vm_on "$label" "$image" "default: exact counts with --probe-mode fentry" "" \
    "$(suite_cmd fentry fentry "tp_btf tcp_probe")"
done

# Debian 11's 5.10 is older than sockeye supports (no socket storage from
# tracing programs before 5.11): the refusal must say so, name the program the
# verifier refused, and come at once (that program has no fallback, so no
# other plan is loaded).
kernel510=$(bash "$here/install-pinned-kernel.sh" debian-11 | tail -n1)
vm_on 5.10 "$kernel510" "default: --check fails at once, naming the refused program and Linux 5.11 as the minimum" "" \
  "! sockeye --check > /tmp/c 2>&1; cat /tmp/c; grep -q 'FAILED: .*(program on_.*sockeye needs Linux 5.11 or later' /tmp/c && ! grep -q 'trying again' /tmp/c"

# Verifier statistics per program and kernel, kept in tests/vm/VERIFIER-STATS.md
# so growth shows up in review (regenerate with SOCKEYE_UPDATE_VERIFIER_STATS=1).
stats() {  # stats LABEL < check-output
  awk -v k="$1" '/^programs/ { on=1; next } on && NF==2 { print k "\t" $1 "\t" $2 } on && NF!=2 { on=0 }'
}
{
  "$agent" --check | stats "host $(uname -r)"
  for mode in auto fentry kprobe; do
    log=$(mktemp)
    bash "$here/run-in-vm.sh" --kernel "$kernel" --timeout 300 -q --log "$log" "${files[@]}" \
      -- "sockeye --check --probe-mode $mode" >/dev/null 2>&1 || true
    tr -d '\r' <"$log" | stats "6.1 ($mode)"
    rm -f "$log"
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
