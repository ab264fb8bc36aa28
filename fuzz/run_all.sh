#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) in a build tree of their own with
# clang, then runs each one for SECONDS on its seed corpus (fuzz/corpus/),
# so that none of them rots. A crash, a sanitizer report, a leak or an input
# that runs over 10 s fails the run (exit 1) and leaves the input in
# BUILD_DIR/fuzz-artifacts/. New inputs a run finds go to
# BUILD_DIR/fuzz-corpus/<target>/, never into the tree.
#
# Usage: fuzz/run_all.sh [SECONDS] [BUILD_DIR] [TARGET...]
#   SECONDS    per harness (default 5)
#   BUILD_DIR  default build-fuzz (configured here with clang-14: CC/CXX
#              override it)
#   TARGET     e.g. envelope job_spec: only these (default every harness)
# Running one for hours by hand: fuzz/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-5}
build=${2:-$root/build-fuzz}
shift $(( $# > 2 ? 2 : $# ))
jobs=${COMPUTENET_JOBS:-$(( $(nproc) + 1 ))}

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
# -O1 with line tables: fast to build, fast enough to fuzz; no NDEBUG, so
# the code's own assertions stay armed.
CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S "$root" -B "$build" -G Ninja \
  -DCOMPUTENET_FUZZ=ON -DCOMPUTENET_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" \
  -DCMAKE_C_FLAGS_RELEASE="-O1 -gline-tables-only" "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$jobs" --target computenet_fuzzers

if (( $# > 0 )); then
  targets=("$@")
else
  targets=()
  for source in "$root"/fuzz/fuzz_*.cc; do
    name=$(basename "$source" .cc)
    targets+=("${name#fuzz_}")
  done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
failed=()
for name in "${targets[@]}"; do
  work="$build/fuzz-corpus/$name"
  log="$build/fuzz-logs/$name.log"
  mkdir -p "$work"
  seeds=()
  [[ -d "$root/fuzz/corpus/$name" ]] && seeds=("$root/fuzz/corpus/$name")
  dict=()
  [[ -f "$root/fuzz/dict/$name.dict" ]] && dict=(-dict="$root/fuzz/dict/$name.dict")
  if "$build/fuzz/fuzz_$name" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -error_exitcode=77 -timeout_exitcode=77 \
      -artifact_prefix="$build/fuzz-artifacts/$name-" \
      "$work" "${seeds[@]}" </dev/null >"$log" 2>&1; then
    summary=$(grep -E '^#[0-9]+.*(DONE|INITED)' "$log" | tail -1 || true)
    echo "fuzz $name: ok ${seconds}s ${summary:+(${summary})}"
  else
    echo "fuzz $name: FAILED (log $log)"
    tail -40 "$log"
    failed+=("$name")
  fi
done
echo "fuzz: $(( ${#targets[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
(( ${#failed[@]} == 0 ))
