#!/usr/bin/env bash
# Does all set-up, builds, and runs every test twice: once in the normal
# build and once under AddressSanitizer + UndefinedBehaviorSanitizer; then
# builds the libFuzzer harnesses (fuzz/) with clang and runs each for a few
# seconds on its seed corpus, so that they never rot.
# Warnings are errors in both builds (-Wall -Wextra -Wpedantic -Wshadow).
# Tests that need Slurm start a private one; it is stopped on exit.
#
# Usage: scripts/test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
# The Slurm tests start a private Slurm on demand (tests/slurm/slurm-local.sh);
# stop it at the end, whatever happens, so no daemons outlive the run.
trap 'tests/slurm/slurm-local.sh stop || true' EXIT
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

echo "== fuzz harnesses (clang, libFuzzer + ASan + UBSan), ${COMPUTENET_FUZZ_SECONDS:-5} s each"
fuzz/run_all.sh "${COMPUTENET_FUZZ_SECONDS:-5}" build-fuzz
