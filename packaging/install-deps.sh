#!/usr/bin/env bash
# Installs what sockeye needs from Debian's packages; packages already
# present are left alone.
#
#   install-deps.sh              build the agent
#   install-deps.sh --test       ... and run the test suite's tools (promtool, proxies, load)
#   install-deps.sh --packaging  ... and build, lint and test the .deb
# (the options combine)
set -euo pipefail

build_deps=(
  build-essential cmake ninja-build pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  liburing-dev  # bench/hook_cost only (its batched phases)
  libcli11-dev libcpp-httplib-dev libcap-dev libgtest-dev libgmock-dev
)
test_deps=(
  prometheus curl iproute2 python3 nginx haproxy wrk tcpdump strace
  libcap2-bin  # capsh: tests/e2e/container_restart.sh starts the agent without CAP_SYS_ADMIN
)
packaging_deps=(
  dpkg-dev     # dpkg-shlibdeps, dpkg-buildflags, dpkg-architecture
  binutils     # strip, objcopy
  help2man     # sockeye.8 from --help/--version
  lintian      # policy checks on the .deb
  systemd      # systemd-analyze verify / security --offline
  adduser      # adduser/deluser, used by the maintainer scripts
  util-linux   # setpriv, used by the test to run as the unit's user
  libcap2-bin  # capsh/getpcaps, used by the test for diagnostics
  curl strace python3 gzip
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (it calls apt-get)" >&2
  exit 1
fi

want=("${build_deps[@]}")
for option in "$@"; do
  case "$option" in
    --test) want+=("${test_deps[@]}") ;;
    --packaging) want+=("${packaging_deps[@]}") ;;
    *) echo "install-deps.sh: unknown option $option (--test, --packaging)" >&2; exit 2 ;;
  esac
done

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
