#!/usr/bin/env bash
# Configures and builds one ComputeNet build tree.
# Usage: scripts/build.sh BUILD_DIR [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$1
shift
jobs=${COMPUTENET_JOBS:-$(( $(nproc) + 1 ))}
cmake -S "$root" -B "$build_dir" -G Ninja "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
