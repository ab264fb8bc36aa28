#!/usr/bin/env bash
# Installs ComputeNet's build and test dependencies on Debian 12, idempotently.
# Run as root. Packages already present are not reinstalled and apt is not touched.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libzmq3-dev cppzmq-dev
  libprotobuf-dev protobuf-compiler
  libssl-dev libsodium-dev
  # bundles: job inputs and results as tar archives
  libarchive-dev
  libsqlitecpp-dev libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev libbenchmark-dev
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  # the broker's /metrics (Prometheus text format) and its HTTP endpoint
  prometheus-cpp-dev libcpp-httplib-dev
  procps
  # the process executor's job sandbox (provider-sdk/src/sandbox.cc)
  bubblewrap
  # The Python SDK (python/): pybind11 module, pytest suite, pip install ./python
  pybind11-dev python3-dev python3-pytest python3-setuptools python3-pip
  # bench/plot_loadgen.gp (PNG of the load generator's steps), sim/plot.sh
  gnuplot-nox
  # A real Slurm for the SlurmExecutor's tests (tests/slurm/slurm-local.sh
  # runs it privately; the packages alone start nothing without systemd).
  slurmctld slurmd slurm-client munge
  # systemd-analyze verifies the units in examples/systemd (the install test)
  systemd
  # The libFuzzer harnesses (fuzz/, fuzz/run_all.sh): clang with its
  # sanitizer and fuzzer runtimes.
  clang-14 libfuzzer-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
