#!/usr/bin/env bash
# Installs the Debian packages needed to build, check and test sockeye's .deb
# (packaging/build-deb.sh, tests/packaging/test_deb.sh), on top of what
# packaging/install-deps.sh installs for building the agent itself.
# Idempotent: packages already present are left alone.
set -euo pipefail

want=(
  dpkg-dev     # dpkg-shlibdeps, dpkg-buildflags, dpkg-architecture
  binutils     # strip, objcopy
  help2man     # sockeye.8 from --help/--version
  lintian      # policy checks on the .deb
  systemd      # systemd-analyze verify / security --offline
  adduser      # adduser/deluser, used by the maintainer scripts
  util-linux   # setpriv, used by the test to run as the unit's user
  libcap2-bin  # capsh/getpcaps, used by the test for diagnostics
  curl         # scrapes in the test
  strace       # the test checks the agent's system calls against the unit's filter
  python3      # the test's TCP client and server
  gzip
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-packaging-deps.sh: must run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-packaging-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
