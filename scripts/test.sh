#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { echo "test.sh: $1 after $((SECONDS - start)) s"; }
bash packaging/install-deps.sh --test --packaging
step "packages and guest kernels in place"
# The test suites again with ASan and UBSan, in a build of their own.
cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSOCKEYE_SANITIZE=ON \
  -DSOCKEYE_BUILD_BENCH=OFF >/dev/null
cmake --build build-sanitize --target sockeye_unit_tests sockeye_bpf_tests
# The libFuzzer targets (tests/fuzz), which need clang.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOCKEYE_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSOCKEYE_BUILD_TESTS=OFF \
  -DSOCKEYE_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --target fuzz_targets
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSOCKEYE_SANITIZER_BUILD="$PWD/build-sanitize" -DSOCKEYE_FUZZ_BUILD="$PWD/build-fuzz" >/dev/null
cmake --build build
step "three builds done"
# Two at a time: the kernel matrix's guests beside the host tiers, which hold
# a resource lock among themselves (tests/CMakeLists.txt).
rc=0
(cd build && ctest --output-on-failure -j2 --timeout 300 "$@") || rc=$?
step "tests done (ctest exit $rc)"
exit $rc
