#!/usr/bin/env bash
# Fetch one of the kernels the matrix runs besides Debian 12's 6.1
# (install-vm-deps.sh) for tests/vm/run-in-vm.sh, and print the path of its
# unpacked vmlinuz on stdout.
#
#   install-pinned-kernel.sh NAME
#   install-pinned-kernel.sh --cached NAME   print the cached path or exit 3; never downloads
#
#   ubuntu-22.04  5.15.0-204-generic  the kernel of the largest LTS fleet
#   ubuntu-24.04  6.8.0-151-generic   the current Ubuntu LTS
#   debian-13     6.12.117 cloud      the current Debian stable
#   debian-11     5.10.223 cloud      older than sockeye supports (5.11+): the
#                                     matrix checks the refusal names why
#
# Each package is pinned by URL and SHA-256, which also keeps the matrix's
# results comparable between runs. (Debian 12 has no Ubuntu archive keyring
# to check a newer Ubuntu index against.) The suite needs no modules:
# loopback, IPv6 and BPF are built into each. Cached in
# $SOCKEYE_VM_CACHE/<package>/ like install-vm-deps.sh's kernel.
#
# To move to a newer build: take Filename and SHA256 of the newest matching
# package from the suite's Packages.xz (its hash is in the suite's signed
# InRelease), e.g. http://archive.ubuntu.com/ubuntu/dists/jammy-updates/main/binary-amd64/Packages.xz.
set -euo pipefail

CACHE=${SOCKEYE_VM_CACHE:-/var/cache/sockeye-vm}
UBUNTU=${SOCKEYE_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
DEBIAN=${SOCKEYE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "install-pinned-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }

cached_only=0
if [ "${1:-}" = --cached ]; then cached_only=1; shift; fi

case "${1:-}" in
  ubuntu-22.04)
    url=$UBUNTU/pool/main/l/linux/linux-image-unsigned-5.15.0-204-generic_5.15.0-204.214_amd64.deb
    sha256=2fa65ba92f39485b97c53d68b4245931a2fb6abadadf250769b48f86f7eaa815
    image=boot/vmlinuz-5.15.0-204-generic ;;
  ubuntu-24.04)
    url=$UBUNTU/pool/main/l/linux/linux-image-unsigned-6.8.0-151-generic_6.8.0-151.151_amd64.deb
    sha256=f7383b6e775f29b1601f88b5acc10863fd8786c9534bf435628b61ce41ccba48
    image=boot/vmlinuz-6.8.0-151-generic ;;
  debian-13)
    url=$DEBIAN/pool/main/l/linux/linux-image-6.12.117+deb13-cloud-amd64-unsigned_6.12.117-1_amd64.deb
    sha256=4113a615a1f1535ed4356ca03d428c74536b00f6ccb58e049a2ffd6a1cb3f1ad
    image=boot/vmlinuz-6.12.117+deb13-cloud-amd64 ;;
  debian-11)
    url=$DEBIAN/pool/main/l/linux/linux-image-5.10.0-32-cloud-amd64-unsigned_5.10.223-1_amd64.deb
    sha256=b1fb8d34c26105a2ba1271a3df868a9eea460657df98c77fd08822ef4908c9db
    image=boot/vmlinuz-5.10.0-32-cloud-amd64 ;;
  *) die "usage: install-pinned-kernel.sh ubuntu-22.04|ubuntu-24.04|debian-13|debian-11" ;;
esac

package=$(basename "$url" .deb)
package=${package%%_*}
dest=$CACHE/$package
if [ -f "$dest/$image" ]; then
  log "using cached $package"
  echo "$dest/$image"
  exit 0
fi

if [ "$cached_only" = 1 ]; then
  log "$package is not in $CACHE (packaging/install-deps.sh --test fetches it)"
  exit 3
fi
[ "$(id -u)" -eq 0 ] || die "must run as root to download $package into $CACHE"
if ! command -v curl >/dev/null; then
  log "installing curl"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >&2; }
fi
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
size=$(curl -fsSI -m 30 "$url" 2>/dev/null | tr -d '\r' |
  awk 'tolower($1) == "content-length:" { printf "%.0f MB", $2 / 1e6 }' || true)
log "downloading $url (${size:-size unknown})"
curl -fsS --retry 3 -m 600 -o "$tmp/kernel.deb" "$url" ||
  die "download of $package failed (set SOCKEYE_UBUNTU_MIRROR / SOCKEYE_DEBIAN_MIRROR for another mirror)"
echo "$sha256  $tmp/kernel.deb" | sha256sum -c --quiet - >&2 ||
  die "SHA-256 mismatch for $url: not the pinned build"
dpkg -x "$tmp/kernel.deb" "$tmp/root"
[ -f "$tmp/root/$image" ] || die "$image not found in $package"
rm -rf "$dest"
mv "$tmp/root" "$dest"
echo "$dest/$image"
