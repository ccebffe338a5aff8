#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-deps.sh --test --packaging
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
cd build && ctest --output-on-failure --timeout 300 "$@"
