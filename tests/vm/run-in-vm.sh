#!/usr/bin/env bash
# Boot a kernel under qemu (TCG) with a throw-away busybox initramfs, run one
# command inside and hand its output and exit status back to the host.
#
# usage: run-in-vm.sh --kernel VMLINUZ [options] -- COMMAND...
#
#   --kernel PATH      kernel image (default: $SOCKEYE_VM_KERNEL); see install-vm-deps.sh
#   --append STR       extra kernel command line (repeatable), e.g. "lockdown=integrity"
#   --timeout SECS     kill qemu after SECS (default 180)          -> exit 124
#   --mem MB           guest memory (default 1024)
#   --smp N            guest CPUs (default 2; multi-threaded TCG)
#   --bin PATH         static executable copied to /bin/ in the guest (repeatable)
#   --file SRC:DEST    file or directory copied to DEST in the guest (repeatable)
#   --module NAME      load kernel module NAME (and its dependencies) at boot
#                      (repeatable); taken from --modules-dir
#   --modules-dir DIR  lib/modules/<version> tree (default: next to the kernel,
#                      <kernel>/../lib/modules/<version>, as unpacked by install-vm-deps.sh)
#   --log FILE         also save the console output (CR stripped) to FILE
#   --base FILE        an initramfs archive made by --build-base (busybox, --bin and --file
#                      copies); only /init, the command and the modules are packed per boot,
#                      in a small archive the kernel unpacks over it (concatenated cpio)
#   --build-base FILE  pack busybox and the --bin/--file copies into FILE and exit without
#                      booting (COMMAND is then not needed)
#   --keep             keep the temporary work dir (initramfs tree) and print its path
#   -q, --quiet        do not stream the console; print it only if the run failed
#
# COMMAND is run by busybox sh inside the guest, with its arguments joined by
# spaces (like ssh), so `-- 'a && b'` and `-- probe -v` both work. stdin is
# /dev/null, cwd is /tmp (tmpfs), PATH=/bin:/sbin:/usr/bin:/usr/sbin.
#
# Exit status: the guest command's status; 124 on timeout; 125 when the guest
# never reported a status (kernel panic, init failure, bad arguments, ...).
#
# Guest environment: proc, sysfs, securityfs, devtmpfs, devpts, tmpfs (/tmp, /run, /dev/shm),
# bpffs (/sys/fs/bpf), debugfs (/sys/kernel/debug), tracefs (/sys/kernel/tracing),
# cgroup2 (/sys/fs/cgroup); lo is up with 127.0.0.1/8 and ::1; no other NIC
# (qemu runs with -nic none). The marker lines SOCKEYE_VM_READY and
# SOCKEYE_VM_EXIT=<n> are printed on the console around the command.
set -euo pipefail

prog=run-in-vm
log()  { echo "$prog: $*" >&2; }
die()  { log "error: $*"; exit 125; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 125; }

KERNEL=${SOCKEYE_VM_KERNEL:-}
APPEND=""
TIMEOUT=180
MEM=1024
SMP=2
MODDIR=""
LOGFILE=""
KEEP=0
QUIET=0
BASE=""
BUILD_BASE=""
BINS=()
FILES=()
MODULES=()
QEMU=${QEMU:-qemu-system-x86_64}
BUSYBOX=${BUSYBOX:-}

need_arg() { [ $# -ge 2 ] || die "option $1 needs an argument"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --kernel)      need_arg "$@"; KERNEL=$2; shift 2 ;;
        --append)      need_arg "$@"; APPEND="$APPEND $2"; shift 2 ;;
        --timeout)     need_arg "$@"; TIMEOUT=$2; shift 2 ;;
        --mem)         need_arg "$@"; MEM=$2; shift 2 ;;
        --smp)         need_arg "$@"; SMP=$2; shift 2 ;;
        --bin)         need_arg "$@"; BINS+=("$2"); shift 2 ;;
        --file)        need_arg "$@"; FILES+=("$2"); shift 2 ;;
        --module)      need_arg "$@"; MODULES+=("$2"); shift 2 ;;
        --modules-dir) need_arg "$@"; MODDIR=$2; shift 2 ;;
        --log)         need_arg "$@"; LOGFILE=$2; shift 2 ;;
        --base)        need_arg "$@"; BASE=$2; shift 2 ;;
        --build-base)  need_arg "$@"; BUILD_BASE=$2; shift 2 ;;
        --keep)        KEEP=1; shift ;;
        -q|--quiet)    QUIET=1; shift ;;
        -h|--help)     usage ;;
        --)            shift; break ;;
        *)             log "unknown argument: $1"; usage ;;
    esac
done
[ -n "$BASE" ] && [ -n "$BUILD_BASE" ] && die "--base and --build-base exclude each other"
[ -z "$BASE" ] || [ -r "$BASE" ] || die "--base $BASE: not readable"
[ $# -gt 0 ] || [ -n "$BUILD_BASE" ] || { log "missing -- COMMAND"; usage; }
CMD="$*"

[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -gt 0 ] || die "--timeout must be a positive integer"
[[ "$MEM" =~ ^[0-9]+$ ]] || die "--mem must be an integer (MB)"
[[ "$SMP" =~ ^[0-9]+$ ]] && [ "$SMP" -gt 0 ] || die "--smp must be a positive integer"
[ -n "$BUILD_BASE" ] || [ -n "$KERNEL" ] || die "--kernel is required (or set SOCKEYE_VM_KERNEL); run tests/vm/install-vm-deps.sh to fetch one"
[ -n "$BUILD_BASE" ] || [ -r "$KERNEL" ] || die "kernel image not readable: $KERNEL"
[ -n "$BUILD_BASE" ] || command -v "$QEMU" >/dev/null || die "$QEMU not found (run tests/vm/install-vm-deps.sh)"
command -v cpio >/dev/null || die "cpio not found (run tests/vm/install-vm-deps.sh)"
command -v gzip >/dev/null || die "gzip not found"

if [ -z "$BUSYBOX" ]; then
    for b in /bin/busybox /usr/bin/busybox; do
        [ -x "$b" ] && { BUSYBOX=$b; break; }
    done
fi
[ -n "$BUSYBOX" ] && [ -x "$BUSYBOX" ] || die "busybox not found (apt-get install busybox-static, or set BUSYBOX)"

# is_dynamic FILE: true if FILE is an ELF executable with a program interpreter
is_dynamic() {
    command -v readelf >/dev/null || return 1
    readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'
}
is_dynamic "$BUSYBOX" && die "$BUSYBOX is dynamically linked; install busybox-static (or set BUSYBOX)"

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sockeye-vm.XXXXXX")
QPID=""
TPID=""
cleanup() {
    local rc=$?
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null || true
    [ -n "$TPID" ] && kill "$TPID" 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,lib/modules}

# busybox; the applet symlinks are created by /init with `busybox --install -s`
# (one process in the guest instead of ~270 ln calls on the host). Existing
# files (e.g. a --bin called "ip") are not replaced.
if [ -z "$BASE" ]; then
    cp "$BUSYBOX" "$ROOT/bin/busybox"
    ln -s busybox "$ROOT/bin/sh"
fi

# user binaries
for b in ${BINS[@]+"${BINS[@]}"}; do
    [ -f "$b" ] || die "--bin $b: no such file"
    [ -x "$b" ] || die "--bin $b: not executable"
    is_dynamic "$b" && die "--bin $b is dynamically linked; the guest has no libc, link it with -static"
    cp "$b" "$ROOT/bin/$(basename "$b")"
done

# extra files
for spec in ${FILES[@]+"${FILES[@]}"}; do
    [[ "$spec" == *:* ]] || die "--file expects SRC:DEST, got '$spec'"
    src=${spec%:*}
    dest=${spec##*:}
    [ -e "$src" ] || die "--file $spec: $src does not exist"
    [[ "$dest" == /* ]] || die "--file $spec: DEST must be an absolute path"
    mkdir -p "$ROOT$(dirname "$dest")"
    if [ -d "$src" ]; then
        mkdir -p "$ROOT$dest"
        cp -a "$src/." "$ROOT$dest/"
    else
        cp -a "$src" "$ROOT$dest"
    fi
done

pack() {  # pack DIR > archive.cpio.gz
    (cd "$1" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | gzip -1
}
if [ -n "$BUILD_BASE" ]; then
    pack "$ROOT" > "$BUILD_BASE"
    log "base initramfs: $BUILD_BASE ($(du -h "$BUILD_BASE" | cut -f1))"
    exit 0
fi

# kernel modules (with dependencies, in load order)
: > "$ROOT/etc/sockeye-modules"
if [ "${#MODULES[@]}" -gt 0 ]; then
    kver=$(basename "$KERNEL"); kver=${kver#vmlinuz-}
    if [ -z "$MODDIR" ]; then
        # Debian 13's packages put them under usr/ (merged /usr).
        for d in "$(dirname "$KERNEL")/../lib/modules/$kver" "$(dirname "$KERNEL")/../usr/lib/modules/$kver" \
                 "/lib/modules/$kver"; do
            [ -d "$d" ] && { MODDIR=$d; break; }
        done
    fi
    [ -n "$MODDIR" ] && [ -d "$MODDIR" ] || die "no modules dir for $kver (use --modules-dir)"
    declare -A SEEN=()
    ORDER=()
    find_mod() {   # NAME -> path of NAME.ko[.xz|.zst|.gz], '-' and '_' are equivalent
        local n1=${1//-/_} n2=${1//_/-}
        find "$MODDIR" \( -name "$n1.ko*" -o -name "$n2.ko*" \) -print -quit
    }
    mod_plain() {  # PATH -> uncompressed .ko on stdout
        case "$1" in
            *.ko)     cat "$1" ;;
            *.ko.xz)  xz -dc "$1" ;;
            *.ko.zst) zstd -qdc "$1" ;;
            *.ko.gz)  gzip -dc "$1" ;;
            *)        die "unknown module format: $1" ;;
        esac
    }
    add_mod() {
        local name=${1//-/_} path deps d
        [ -n "${SEEN[$name]:-}" ] && return 0
        SEEN[$name]=1
        path=$(find_mod "$1")
        [ -n "$path" ] || die "module $1 not found under $MODDIR (built in? check $MODDIR/modules.builtin)"
        mod_plain "$path" > "$ROOT/lib/modules/$name.ko"
        deps=$(tr '\0' '\n' < "$ROOT/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1)
        for d in ${deps//,/ }; do add_mod "$d"; done
        ORDER+=("$name")
    }
    for m in "${MODULES[@]}"; do add_mod "$m"; done
    printf '%s\n' "${ORDER[@]}" > "$ROOT/etc/sockeye-modules"
fi

# guest config files
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOT/etc/group"
printf '127.0.0.1\tlocalhost sockeye-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
printf '%s\n' "$CMD" > "$ROOT/etc/sockeye-cmd.sh"

cat > "$ROOT/init" <<'INIT'
#!/bin/sh
# sockeye test VM init (generated by tests/vm/run-in-vm.sh)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
/bin/busybox --install -s
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

fail() { echo "init: error: $*"; echo; echo "SOCKEYE_VM_EXIT=125"; poweroff -f; sleep 10; exit 1; }
mnt() {  # TYPE DIR [OPTS]
    mkdir -p "$2" 2>/dev/null
    mount -t "$1" ${3:+-o "$3"} "$1" "$2" || echo "init: warning: mounting $1 on $2 failed"
}
mnt proc /proc
mnt sysfs /sys
mnt securityfs /sys/kernel/security
mnt tmpfs /tmp mode=1777
mnt tmpfs /run mode=0755
mnt devpts /dev/pts
mnt tmpfs /dev/shm mode=1777
# The HTTP status program attaches to the cgroup v2 root; some kernels mount it themselves.
grep -q ' /sys/fs/cgroup ' /proc/mounts || mnt cgroup2 /sys/fs/cgroup
mnt bpf /sys/fs/bpf
mnt debugfs /sys/kernel/debug
mnt tracefs /sys/kernel/tracing
mnt cgroup2 /sys/fs/cgroup

while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
done < /etc/sockeye-modules

hostname sockeye-vm
ip link set lo up || fail "cannot bring up lo"
ulimit -l unlimited 2>/dev/null

cd /tmp
echo
echo "SOCKEYE_VM_READY uptime=$(cut -d' ' -f1 /proc/uptime)s kernel=$(uname -r) cmdline=$(cat /proc/cmdline)"
sh /etc/sockeye-cmd.sh </dev/null
rc=$?
echo
echo "SOCKEYE_VM_EXIT=$rc"
sync
poweroff -f
sleep 10
INIT
chmod 0755 "$ROOT/init"

# With --base, the kernel unpacks the shared archive, then this boot's small
# one over it (the initramfs format allows concatenated, separately
# compressed cpio archives: Documentation/driver-api/early-userspace).
INITRD=$WORK/initrd.cpio.gz
{ [ -z "$BASE" ] || cat "$BASE"; pack "$ROOT"; } > "$INITRD"

# ---------------------------------------------------------------- boot
CONSOLE=$WORK/console.raw
: > "$CONSOLE"
qemu_cmd=("$QEMU" -accel tcg -cpu max -m "$MEM" -smp "$SMP"
    -nographic -nodefaults -no-user-config -no-reboot -nic none
    -serial stdio -monitor none
    -kernel "$KERNEL" -initrd "$INITRD"
    -append "console=ttyS0 panic=-1 quiet edd=off$APPEND")

# strip CRs and the terminal escapes SeaBIOS writes to the serial port
CLEAN='s/\r//g; s/\x1bc//g; s/\x1b\[[0-9;?]*[A-Za-z]//g'
t0=$(date +%s.%N)
"${qemu_cmd[@]}" </dev/null >"$CONSOLE" 2>&1 &
QPID=$!
if [ "$QUIET" = 0 ]; then
    tail -n +1 -s 0.1 -f --pid="$QPID" "$CONSOLE" | sed -u "$CLEAN" &
    TPID=$!
fi

deadline=$(( $(date +%s) + TIMEOUT ))
timed_out=0
while kill -0 "$QPID" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        timed_out=1
        kill "$QPID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$QPID" 2>/dev/null || true
        break
    fi
    sleep 0.1
done
qrc=0
wait "$QPID" || qrc=$?
QPID=""
if [ -n "$TPID" ]; then
    wait "$TPID" 2>/dev/null || true
    TPID=""
fi
t1=$(date +%s.%N)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

sed "$CLEAN" "$CONSOLE" > "$WORK/console.log"
[ -n "$LOGFILE" ] && cp "$WORK/console.log" "$LOGFILE"

marker=$(grep -a -o 'SOCKEYE_VM_EXIT=[0-9]\+' "$WORK/console.log" | tail -n1 || true)
ready=$(grep -a -o 'SOCKEYE_VM_READY uptime=[0-9.]*s' "$WORK/console.log" | tail -n1 | sed 's/.*uptime=//' || true)

if [ -n "$marker" ]; then
    rc=${marker#SOCKEYE_VM_EXIT=}
    msg="guest exit=$rc wall=${wall}s guest-boot=${ready:-?}"
elif [ "$timed_out" = 1 ]; then
    rc=124
    msg="timeout after ${TIMEOUT}s (wall=${wall}s, guest-boot=${ready:-not reached})"
else
    rc=125
    msg="no exit marker from guest (qemu status $qrc, wall=${wall}s, guest-boot=${ready:-not reached})"
fi
if [ "$QUIET" = 1 ] && [ "$rc" != 0 ]; then
    cat "$WORK/console.log"
fi
log "$msg"
exit "$rc"
