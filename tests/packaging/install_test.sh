#!/usr/bin/env bash
# The install test (ctest: packaging.install): installs the build tree into a
# scratch prefix with `cmake --install`, checks what a user needs is there,
# builds examples/ on its own against the installed package
# (find_package(computenet)) and runs both examples, and verifies the
# systemd units in examples/systemd against the installed binaries.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix

fail() { echo "install_test: $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$prefix" > "$scratch/install.log" ||
  { cat "$scratch/install.log"; fail "cmake --install failed"; }
libdir=$(cd "$prefix" && ls -d lib*/cmake/computenet | head -1)
[[ -n $libdir ]] || fail "no lib*/cmake/computenet under the prefix"
for path in bin/computenet bin/computenet-broker bin/computenet-provider \
    bin/accelerators.toml \
    include/computenet/consumer/client.h include/computenet/provider/agent.h \
    include/computenet/common/status.h include/computenet/v1/job.pb.h \
    include/computenet/v1/job.proto \
    "$libdir/computenetConfig.cmake" "$libdir/computenetConfigVersion.cmake"; do
  [[ -e $prefix/$path ]] || fail "not installed: $path"
done
# Nothing private travels: no source-tree (src/) headers, no test support.
if find "$prefix/include" -path '*/src/*' | grep -q .; then
  fail "private headers installed: $(find "$prefix/include" -path '*/src/*')"
fi

for binary in computenet computenet-broker computenet-provider; do
  version=$("$prefix/bin/$binary" --version)
  [[ $version == *0.* ]] || fail "$binary --version printed '$version'"
done

# An application's build: only the installed package, nothing from the tree.
cmake -S "$source_dir/examples" -B "$scratch/examples" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  > "$scratch/configure.log" 2>&1 ||
  { cat "$scratch/configure.log"; fail "examples do not configure against the package"; }
cmake --build "$scratch/examples" -j "${COMPUTENET_JOBS:-2}" \
  > "$scratch/build.log" 2>&1 ||
  { cat "$scratch/build.log"; fail "examples do not build against the package"; }

# Run them. submit_and_wait without arguments prints its usage (exit 2);
# check_site resolves a real site config's inventory.
set +e
"$scratch/examples/submit_and_wait" > /dev/null 2>&1
usage_exit=$?
set -e
[[ $usage_exit -eq 2 ]] || fail "submit_and_wait without arguments exited $usage_exit, not 2"
"$prefix/bin/computenet" keygen --name site-x --out "$scratch/keys/site-x" > /dev/null
"$prefix/bin/computenet" keygen --name broker-x --out "$scratch/keys/broker" > /dev/null
cat > "$scratch/site.toml" <<'TOML'
broker_endpoint = "tcp://127.0.0.1:7700"
broker_identity = "keys/broker/identity.pub"
identity_dir = "keys/site-x"
work_dir = "work"
site = "site-x"
region = "north"
currency = "CNY"
[prices]
A800 = 1500
[[nodes]]
name = "node-1"
fabric = "ib-1"
cpu_cores = 64
memory_mib = 524288
accelerators = [ { model = "A800", memory_mib = 81920, count = 8 } ]
TOML
report=$("$scratch/examples/check_site" "$scratch/site.toml")
[[ $report == *"site site-x in north"* && $report == *"node node-1: 8 card(s), 64 CPU cores"* ]] ||
  fail "check_site printed: $report"

# The systemd units, pointed at the installed binaries, must pass
# systemd-analyze verify (unknown keys, bad paths, bad values).
command -v systemd-analyze > /dev/null || fail "systemd-analyze missing (scripts/setup.sh installs systemd)"
mkdir -p "$scratch/units"
for unit in "$source_dir"/examples/systemd/*.service; do
  sed "s|/usr/local/bin/|$prefix/bin/|g" "$unit" > "$scratch/units/$(basename "$unit")"
done
ls "$scratch"/units/*.service > /dev/null || fail "no units in examples/systemd"
if ! SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$scratch"/units/*.service \
    > "$scratch/verify.log" 2>&1; then
  cat "$scratch/verify.log"
  fail "systemd-analyze verify refused the units"
fi
if grep -v "^$" "$scratch/verify.log" | grep -q .; then
  cat "$scratch/verify.log"
  fail "systemd-analyze verify warned about the units"
fi
echo "install_test: installed, examples built against the package and ran, units verified"
