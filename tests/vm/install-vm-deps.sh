#!/usr/bin/env bash
# Install what tests/vm/run-in-vm.sh needs and fetch the Debian 12 6.1 cloud kernel.
# Idempotent; must run as root. Prints the path of the unpacked vmlinuz on stdout
# (all diagnostics go to stderr).
#
# Env:
#   SOCKEYE_VM_CACHE   cache dir for the kernel package (default /var/cache/sockeye-vm)
#   SOCKEYE_VM_KERNEL_PKG  exact package name to use instead of the newest match
set -euo pipefail

CACHE=${SOCKEYE_VM_CACHE:-/var/cache/sockeye-vm}
PKG_RE='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$'

log() { echo "install-vm-deps: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v apt-get >/dev/null || die "apt-get not found (Debian/Ubuntu host required)"

export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update_once() {
    if [ "$updated" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        updated=1
    fi
}

# 1. host packages (only the missing ones)
missing=()
for p in qemu-system-x86 busybox-static cpio; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
        apt_update_once
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
fi

# 2. kernel package
find_vmlinuz() {
    # newest unpacked kernel in the cache
    ls -1 "$CACHE"/*/boot/vmlinuz-6.1.0-*-cloud-amd64 2>/dev/null | sort -V | tail -n1
}

pick_pkg() {
    apt-cache search --names-only "$PKG_RE" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1
}

mkdir -p "$CACHE"
pkg=${SOCKEYE_VM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
    # Offline fast path: if anything is already cached, use it without asking apt.
    existing=$(find_vmlinuz || true)
    if [ -n "$existing" ] && [ -z "${SOCKEYE_VM_REFRESH:-}" ]; then
        log "using cached kernel"
        echo "$existing"
        exit 0
    fi
    pkg=$(pick_pkg)
    if [ -z "$pkg" ]; then
        apt_update_once
        pkg=$(pick_pkg)
    fi
    [ -n "$pkg" ] || die "no package matching $PKG_RE in apt-cache (is bookworm in sources.list?)"
fi

dest="$CACHE/$pkg"
ver=${pkg#linux-image-}; ver=${ver%-unsigned}
vmlinuz="$dest/boot/vmlinuz-$ver"
if [ -f "$vmlinuz" ]; then
    log "already unpacked: $pkg"
    echo "$vmlinuz"
    exit 0
fi

tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "downloading $pkg"
# apt-get download runs unprivileged as _apt; make the dir writable for it.
chmod 0777 "$tmp"
if ! (cd "$tmp" && apt-get download -qq "$pkg" >&2); then
    apt_update_once
    (cd "$tmp" && apt-get download -qq "$pkg" >&2)
fi
deb=$(ls -1 "$tmp"/*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || die "apt-get download produced no .deb"
log "unpacking $(basename "$deb")"
mkdir -p "$tmp/root"
dpkg -x "$deb" "$tmp/root"
[ -f "$tmp/root/boot/vmlinuz-$ver" ] || die "vmlinuz-$ver not found in $deb"
rm -rf "$dest"
mv "$tmp/root" "$dest"
# keep the .deb next to it for reference (small: ~30 MB) - not needed, drop it
echo "$vmlinuz"
