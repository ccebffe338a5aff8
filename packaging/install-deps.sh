#!/usr/bin/env bash
# Installs what sockeye needs from Debian's packages; packages already
# present are left alone.
#
#   install-deps.sh              build the agent
#   install-deps.sh --test       ... and run the test suite: its tools (promtool, proxies,
#                                load, qemu) and the guest kernels of the kernel matrix
#                                (tests/vm/fetch-kernels.sh, ~250 MB unpacked)
#   install-deps.sh --packaging  ... and build, lint and test the .deb
#   install-deps.sh --list ...   print the packages the other options want, one a line,
#                                and install nothing
# (the options combine)
set -euo pipefail

build_deps=(
  build-essential cmake ninja-build pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  liburing-dev  # bench/hook_cost only (its batched phases)
  libcli11-dev libcpp-httplib-dev libcap-dev libgtest-dev libgmock-dev
  libyaml-cpp-dev libcrypt-dev libssl-dev  # --web.config.file: YAML, bcrypt, TLS
)
test_deps=(
  prometheus curl iproute2 python3 nginx haproxy wrk tcpdump strace
  libcap2-bin  # capsh: tests/e2e/container_restart.sh starts the agent without CAP_SYS_ADMIN
  openssl      # tests/e2e/web_config.sh: its CA and certificates
  procps       # sysctl: tests/e2e/storage_failure.sh sets net.core.optmem_max in its namespace
  qemu-system-x86 busybox-static cpio  # the kernel matrix's guests (tests/vm)
  libclang-rt-dev  # libFuzzer and the sanitizers' runtimes for clang (tests/fuzz)
  linux-perf       # profiles in the benchmarks (bench/proxy_cost.sh PROXY_COST_PERF, bench/cgroup_scope_cost.sh)
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

want=("${build_deps[@]}")
list=0
for option in "$@"; do
  case "$option" in
    --test) want+=("${test_deps[@]}") ;;
    --packaging) want+=("${packaging_deps[@]}") ;;
    --list) list=1 ;;
    *) echo "install-deps.sh: unknown option $option (--test, --packaging, --list)" >&2; exit 2 ;;
  esac
done
if [ "$list" = 1 ]; then
  printf '%s\n' "${want[@]}" | sort -u
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # apt's own summary says how much it downloads and how much space it takes.
  apt-get install -y -q --no-install-recommends "${missing[@]}" |
    { grep -E '^(Need to get|After this operation|[0-9]+ upgraded)' || true; } | sed 's/^/install-deps.sh: /'
else
  echo "install-deps.sh: every package is installed (${#want[@]} checked)"
fi

# The kernel matrix's guest kernels: downloaded here, before any timed test.
# One that fails is named; the rest of the suite still runs, and the matrix
# fails that kernel's checks by name.
for option in "$@"; do
  if [ "$option" = --test ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    bash "$here/../tests/vm/fetch-kernels.sh" ||
      echo "install-deps.sh: WARNING: a guest kernel could not be fetched (named above); continuing" >&2
  fi
done
