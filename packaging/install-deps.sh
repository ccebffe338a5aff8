#!/usr/bin/env bash
# Installs everything sockeye needs to build, run and test, from Debian's packages.
# Idempotent: packages already present are left alone.
set -euo pipefail

build_deps=(
  build-essential cmake ninja-build pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  libcli11-dev libcpp-httplib-dev libcap-dev libgtest-dev libgmock-dev
)
test_deps=(
  prometheus curl iproute2 python3 nginx haproxy wrk tcpdump strace
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (it calls apt-get)" >&2
  exit 1
fi

want=("${build_deps[@]}")
if [ "${1:-}" = "--test" ]; then
  want+=("${test_deps[@]}")
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
