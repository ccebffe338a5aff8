#!/usr/bin/env bash
# Downloads every guest kernel the kernel matrix (run-matrix.sh) boots into
# $SOCKEYE_VM_CACHE (default /var/cache/sockeye-vm), saying what it fetches and
# how big it is; kernels already there are left alone. Called by
# packaging/install-deps.sh --test, so that no timed test downloads anything.
#
# A kernel that cannot be fetched is named, and the others are still fetched;
# the matrix then fails that kernel's checks by name and runs every other one.
# Exit status: 0 if every kernel is cached, 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

failed=()
if ! bash "$here/install-vm-deps.sh" >/dev/null; then
  failed+=("Debian 12's 6.1 cloud kernel (linux-image-6.1.0-*-cloud-amd64-unsigned)")
fi
for name in ubuntu-22.04 ubuntu-24.04 debian-13 debian-11; do
  bash "$here/install-pinned-kernel.sh" "$name" >/dev/null || failed+=("$name (install-pinned-kernel.sh $name)")
done
if [ ${#failed[@]} -gt 0 ]; then
  for f in "${failed[@]}"; do
    echo "fetch-kernels: could not fetch $f; the kernel matrix will fail its checks and run the rest" >&2
  done
  exit 1
fi
du -sh "${SOCKEYE_VM_CACHE:-/var/cache/sockeye-vm}" | awk '{ print "fetch-kernels: every guest kernel is cached (" $1 " in " $2 ")" }' >&2
