#!/usr/bin/env bash
# Fetch Ubuntu 22.04's 5.15 kernel (the kernel of the most common LTS fleet)
# for tests/vm/run-in-vm.sh. Prints the path of the unpacked vmlinuz on stdout.
#
# The package is pinned by name and SHA-256: Debian 12 has no Ubuntu archive
# keyring to check a newer index against, and a pinned build also keeps the
# matrix's results comparable between runs. Only the kernel image is fetched
# (12 MB); the suite needs no modules (loopback, IPv6 and BPF are built in).
# Cached in $SOCKEYE_VM_CACHE/<package>/ like install-vm-deps.sh's kernel.
#
# To move to a newer build: take Filename and SHA256 of the newest
# linux-image-unsigned-5.15.0-*-generic from
# http://archive.ubuntu.com/ubuntu/dists/jammy-updates/main/binary-amd64/Packages.xz
# (its hash is in that suite's InRelease, signed by the Ubuntu archive key).
set -euo pipefail

CACHE=${SOCKEYE_VM_CACHE:-/var/cache/sockeye-vm}
VERSION=5.15.0-204-generic
PKG=linux-image-unsigned-$VERSION
POOL_PATH=pool/main/l/linux/${PKG}_5.15.0-204.214_amd64.deb
SHA256=2fa65ba92f39485b97c53d68b4245931a2fb6abadadf250769b48f86f7eaa815
MIRROR=${SOCKEYE_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}

log() { echo "install-ubuntu-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }

dest=$CACHE/$PKG
vmlinuz=$dest/boot/vmlinuz-$VERSION
if [ -f "$vmlinuz" ]; then
  log "using cached $PKG"
  echo "$vmlinuz"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root to download $PKG into $CACHE"
if ! command -v curl >/dev/null; then
  log "installing curl"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >&2; }
fi
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "downloading $MIRROR/$POOL_PATH"
curl -fsS --retry 3 -m 600 -o "$tmp/kernel.deb" "$MIRROR/$POOL_PATH" ||
  die "download failed (is $MIRROR reachable? set SOCKEYE_UBUNTU_MIRROR for another mirror)"
echo "$SHA256  $tmp/kernel.deb" | sha256sum -c --quiet - >&2 ||
  die "SHA-256 mismatch for $POOL_PATH: not the pinned build"
dpkg -x "$tmp/kernel.deb" "$tmp/root"
[ -f "$tmp/root/boot/vmlinuz-$VERSION" ] || die "vmlinuz-$VERSION not found in the package"
rm -rf "$dest"
mv "$tmp/root" "$dest"
echo "$vmlinuz"
