#!/usr/bin/env bash
# Installs what is missing, builds, and runs the agent with default settings
# (all outbound TCP of this host; metrics on :19480/metrics). Extra
# arguments go to sockeye, e.g. scripts/run.sh --process nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target sockeye
exec ./build/sockeye "$@"
