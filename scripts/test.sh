#!/usr/bin/env bash
# Does all set-up, builds, and runs every test twice: once in the normal
# build and once under AddressSanitizer + UndefinedBehaviorSanitizer.
# Warnings are errors in both builds (-Wall -Wextra -Wpedantic -Wshadow).
#
# Usage: scripts/test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
jobs=$(( $(nproc) > 1 ? $(nproc) : 2 ))

echo "== build (RelWithDebInfo)"
scripts/build.sh build
echo "== tests"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 300)

echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
scripts/build.sh build-asan -DCOMPUTENET_SANITIZE=ON -DCOMPUTENET_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1
echo "== tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j "$jobs" --timeout 600)
