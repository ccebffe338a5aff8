#!/usr/bin/env bash
# Build tests/vm/bpf_feature_probe (static binary) into OUTDIR.
# usage: build-probe.sh OUTDIR
# Env: VMLINUX_BTF (default /sys/kernel/btf/vmlinux), CLANG, BPFTOOL, CC
set -euo pipefail

die() { echo "build-probe: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 OUTDIR"
src=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

CLANG=${CLANG:-clang}
BPFTOOL=${BPFTOOL:-bpftool}
CC=${CC:-gcc}
BTF=${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}
for t in "$CLANG" "$BPFTOOL" "$CC"; do
    command -v "$t" >/dev/null || die "$t not found"
done
[ -r "$BTF" ] || die "cannot read BTF $BTF (set VMLINUX_BTF)"
for a in libbpf.a libelf.a libz.a; do
    "$CC" -print-file-name="$a" | grep -q / || die "static $a not found (apt-get install libbpf-dev libelf-dev zlib1g-dev)"
done

"$BPFTOOL" btf dump file "$BTF" format c > "$out/vmlinux.h.tmp"
mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"

"$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$out" \
    -c "$src/bpf_feature_probe.bpf.c" -o "$out/bpf_feature_probe.bpf.o"
"$BPFTOOL" gen skeleton "$out/bpf_feature_probe.bpf.o" > "$out/bpf_feature_probe.skel.h.tmp"
mv "$out/bpf_feature_probe.skel.h.tmp" "$out/bpf_feature_probe.skel.h"

# Debian 12: libbpf.a needs libelf.a and libz.a (libelf 0.188 is built without zstd).
"$CC" -O2 -g -Wall -I"$out" "$src/bpf_feature_probe.c" \
    -static -o "$out/bpf_feature_probe" -lbpf -lelf -lz
echo "$out/bpf_feature_probe"
