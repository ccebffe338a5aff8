#!/usr/bin/env bash
# Install what tests/vm/run-in-vm.sh needs and fetch the Debian 12 6.1 cloud kernel.
# Idempotent; needs root only when something has to be installed or downloaded.
# Prints the path of the unpacked vmlinuz on stdout (diagnostics go to stderr).
# The package is unpacked (dpkg -x, ~110 MB with modules) into
# $SOCKEYE_VM_CACHE/<package>/, so the modules are at <package>/lib/modules/<ver>/.
#
# Env:
#   SOCKEYE_VM_CACHE       cache dir (default /var/cache/sockeye-vm); cache it in CI
#   SOCKEYE_VM_KERNEL_PKG  exact package name to use instead of the newest match
#   SOCKEYE_VM_REFRESH=1   look for a newer package even if one is already cached
#                          (default: reuse the cached kernel without asking apt)
#
#   install-vm-deps.sh --cached   print the cached kernel's path, or exit 3 without
#                                 installing or downloading anything (the test run uses
#                                 this: downloads belong to packaging/install-deps.sh --test)
set -euo pipefail

CACHE=${SOCKEYE_VM_CACHE:-/var/cache/sockeye-vm}
PKG_RE='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$'

log() { echo "install-vm-deps: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root to $*"; }
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

find_vmlinuz() {
    # newest unpacked kernel in the cache
    find "$CACHE" -mindepth 3 -maxdepth 3 -path '*/boot/vmlinuz-6.1.0-*-cloud-amd64' 2>/dev/null | sort -V | tail -n1
}
if [ "${1:-}" = --cached ]; then
    existing=$(find_vmlinuz || true)
    [ -n "$existing" ] || { log "Debian 12's 6.1 kernel is not in $CACHE (packaging/install-deps.sh --test fetches it)"; exit 3; }
    echo "$existing"
    exit 0
fi

# 1. host packages (only the missing ones)
missing=()
for p in qemu-system-x86 busybox-static cpio; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    need_root "install ${missing[*]}"
    log "installing: ${missing[*]}"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
        apt_update_once
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
fi

# 2. kernel package

pick_pkg() {
    apt-cache search --names-only "$PKG_RE" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1
}

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

need_root "download $pkg into $CACHE"
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
size=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Size:/ { printf "%.0f MB", $2 / 1e6; exit }')
log "downloading $pkg (${size:-size unknown})"
# apt-get download runs unprivileged as _apt; make the dir writable for it.
chmod 0777 "$tmp"
if ! (cd "$tmp" && apt-get download -qq "$pkg" >&2); then
    apt_update_once
    (cd "$tmp" && apt-get download -qq "$pkg" >&2)
fi
deb=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n1)
[ -n "$deb" ] || die "apt-get download produced no .deb"
log "unpacking $(basename "$deb")"
mkdir -p "$tmp/root"
dpkg -x "$deb" "$tmp/root"
[ -f "$tmp/root/boot/vmlinuz-$ver" ] || die "vmlinuz-$ver not found in $deb"
rm -rf "$dest"
mv "$tmp/root" "$dest"
echo "$vmlinuz"
