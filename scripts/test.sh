#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-deps.sh --test --packaging
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
# Two at a time: the kernel matrix's guests beside the host tiers, which hold
# a resource lock among themselves (tests/CMakeLists.txt).
cd build && ctest --output-on-failure -j2 --timeout 300 "$@"
