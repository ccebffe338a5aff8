#!/usr/bin/env bash
# Smoke test of the VM harness (suitable for CI, ~20 s after the one-off setup):
# builds bpf_feature_probe, boots the Debian 6.1 cloud kernel three times
# (default, lockdown=integrity, lockdown=confidentiality) running the probe and
# the loopback check, and asserts the known results for 6.1.
#
# usage: selftest.sh [--kernel VMLINUZ] [--out DIR]
#   --kernel  default: $SOCKEYE_VM_KERNEL, else the path install-vm-deps.sh prints
#   --out     keep the probe build and per-boot console logs in DIR (default: temp dir)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
KERNEL=${SOCKEYE_VM_KERNEL:-}
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --kernel) KERNEL=$2; shift 2 ;;
        --out)    OUT=$2; shift 2 ;;
        *) echo "usage: $0 [--kernel VMLINUZ] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "$KERNEL" ]; then
    KERNEL=$("$here/install-vm-deps.sh")
fi
if [ -z "$OUT" ]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/sockeye-vm-selftest.XXXXXX")
    trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"

"$here/build-probe.sh" "$OUT/build" >/dev/null
PROBE=$OUT/build/bpf_feature_probe

fails=0
expect() {  # LOG FEATURE_LINE_REGEX DESCRIPTION
    if grep -Eq "$2" "$1"; then
        echo "  ok   $3"
    else
        echo "  FAIL $3 (no line matching /$2/ in $1)"
        fails=$((fails + 1))
    fi
}

for variant in default integrity confidentiality; do
    append=()
    [ "$variant" = default ] || append=(--append "lockdown=$variant")
    log=$OUT/console-$variant.log
    echo "== boot: $(basename "$KERNEL") lockdown=$variant"
    rc=0
    "$here/run-in-vm.sh" --kernel "$KERNEL" ${append[@]+"${append[@]}"} --timeout 120 -q \
        --log "$log" --bin "$PROBE" \
        --file "$here/guest-loopback-check.sh:/bin/loopback-check" \
        -- 'bpf_feature_probe; loopback-check' || rc=$?
    [ "$rc" = 0 ] || { echo "  FAIL guest exit status $rc"; fails=$((fails + 1)); }
    grep -E '^(feature|loopback)=' "$log" | sed 's/^/    /'
    expect "$log" '^feature=fentry_tcp_sendmsg .*result=ok$' "fentry loads"
    expect "$log" '^feature=tp_btf_inet_sock_set_state .*result=ok$' "tp_btf inet_sock_set_state loads"
    expect "$log" '^feature=tp_btf_sock_send_length .*result=No such process' "tp_btf sock_send_length absent on 6.1"
    expect "$log" '^feature=btf_direct_read .*result=ok$' "direct BTF reads allowed"
    expect "$log" '^loopback_failures=0' "loopback TCP (127.0.0.1, 127.0.0.2, ::1)"
    if [ "$variant" = confidentiality ]; then
        expect "$log" '^feature=kprobe_tcp_sendmsg .*result=Operation not permitted' "kprobe refused (EPERM)"
        expect "$log" '^feature=probe_read_kernel .*result=Invalid argument' "bpf_probe_read_kernel refused"
    else
        expect "$log" '^feature=kprobe_tcp_sendmsg .*result=ok$' "kprobe attaches"
        expect "$log" '^feature=probe_read_kernel .*result=ok$' "bpf_probe_read_kernel allowed"
    fi
done

if [ "$fails" -gt 0 ]; then
    echo "selftest: $fails check(s) failed"
    exit 1
fi
echo "selftest: all checks passed"
