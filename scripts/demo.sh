#!/usr/bin/env bash
# The ComputeNet demo: one regional broker, two provider sites and a
# consumer, each a real process talking over CURVE-authenticated ZeroMQ on
# loopback. Jobs run as real child processes on the sites; usage is signed,
# verified and settled in the broker's double-entry ledger; the demo ends
# with the settlement summary and an offline audit of the ledger file.
#
# Usage: scripts/demo.sh            (does set-up and build first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
scripts/build.sh build >/dev/null
bin=$root/build

run=$root/demo-run
rm -rf "$run"
mkdir -p "$run/keys" "$run/logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Keys: a broker, two provider sites, one consumer (secrets are 0600)"
"$bin/broker/computenet-broker" keygen --name hub-north --out "$run/keys/broker"
"$bin/cli/computenet" keygen --name zhangbei-a800 --out "$run/keys/zhangbei" >/dev/null
"$bin/cli/computenet" keygen --name ulanqab-910b --out "$run/keys/ulanqab" >/dev/null
"$bin/cli/computenet" keygen --name alice-lab --out "$run/keys/alice" >/dev/null
ls -l "$run/keys/alice"

say "Enrollment: the operator admits each public key with its role"
db=$run/broker.db
"$bin/broker/computenet-broker" enroll --db "$db" --role provider --identity "$run/keys/zhangbei/identity.pub"
"$bin/broker/computenet-broker" enroll --db "$db" --role provider --identity "$run/keys/ulanqab/identity.pub"
"$bin/broker/computenet-broker" enroll --db "$db" --role consumer --identity "$run/keys/alice/identity.pub"

say "Prepaid: the operator tops up alice-lab (a job is placed only if its worst case fits)"
"$bin/broker/computenet-broker" topup --db "$db" --consumer alice-lab --amount 100000 --key demo-wire-1

say "Broker hub-north starts (ephemeral port)"
"$bin/broker/computenet-broker" run --db "$db" --keys "$run/keys/broker" \
  --broker-id hub-north --endpoint tcp://127.0.0.1:0 --fee-bps 250 \
  --endpoint-file "$run/broker.endpoint" 2>"$run/logs/broker.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s $run/broker.endpoint ]] && break; sleep 0.05; done
endpoint=$(cat "$run/broker.endpoint")
echo "broker listening on $endpoint"

cat >"$run/zhangbei.toml" <<TOML
broker_endpoint = "$endpoint"
broker_identity = "keys/broker/identity.pub"
identity_dir = "keys/zhangbei"
work_dir = "work/zhangbei"
site = "zhangbei-dc1"
region = "north"
currency = "CNY"
[prices]
A800 = 1500   # 15.00 CNY per card-hour
[[nodes]]
name = "a800-node-1"
fabric = "zb-ib-1"
cpu_cores = 128
memory_mib = 1048576
accelerators = [ { model = "A800", memory_mib = 81920, count = 8 } ]
TOML
cat >"$run/ulanqab.toml" <<TOML
broker_endpoint = "$endpoint"
broker_identity = "keys/broker/identity.pub"
identity_dir = "keys/ulanqab"
work_dir = "work/ulanqab"
site = "ulanqab-dc2"
region = "north"
currency = "CNY"
[prices]
910B = 900    # 9.00 CNY per card-hour
[[nodes]]
name = "ascend-1"
fabric = "uq-roce-1"
accelerators = [ { model = "910B", memory_mib = 65536, count = 8 } ]
[[nodes]]
name = "ascend-2"
fabric = "uq-roce-1"
accelerators = [ { model = "910B", memory_mib = 65536, count = 8 } ]
TOML

say "Two provider sites register their inventory"
"$bin/provider-sdk/computenet-provider" --config "$run/zhangbei.toml" 2>"$run/logs/zhangbei.log" &
pids+=($!)
"$bin/provider-sdk/computenet-provider" --config "$run/ulanqab.toml" 2>"$run/logs/ulanqab.log" &
pids+=($!)
sleep 0.5
grep -h "registered:" "$run/logs/broker.log" | sed 's/^.*\] //'

export COMPUTENET_BROKER=$endpoint
export COMPUTENET_BROKER_IDENTITY=$run/keys/broker/identity.pub
export COMPUTENET_IDENTITY=$run/keys/alice
cn="$bin/cli/computenet"

say "Consumer alice-lab submits four jobs"
ft=$($cn submit --name finetune --model A800 --cards 2 --max-duration 60 --max-price 2000 -- \
  sh -c 'echo "fine-tuning on $COMPUTENET_MODEL cards $CUDA_VISIBLE_DEVICES"; sleep 3')
gang=$($cn submit --name pretrain-gang --model 910B --nodes 2 --cards 8 --max-duration 60 -- \
  sh -c 'echo "rank $COMPUTENET_NODE_RANK of $COMPUTENET_NUM_NODES on $COMPUTENET_NODE"; sleep 2')
bad=$($cn submit --name broken-eval --model A800 --cards 1 --max-duration 60 -- \
  sh -c 'echo "evaluation crashed" >&2; exit 3')
long=$($cn submit --name runaway --cards 1 --max-duration 600 -- sleep 300)
echo "submitted: $ft (A800 x2), $gang (2 nodes x 8 x 910B in one fabric), $bad (will fail), $long (will be cancelled)"

sleep 1.5
say "alice-lab cancels $long while it runs"
$cn cancel "$long"

say "Waiting for every job to end"
for job in "$ft" "$gang" "$bad" "$long"; do
  $cn wait "$job" --timeout 60 2>/dev/null | head -2 | paste -sd' ' || true
done

say "alice-lab's jobs"
$cn jobs

say "Job output on the sites (real processes, assigned devices in the environment)"
cat "$run"/work/zhangbei/"$ft"/*.log "$run"/work/ulanqab/"$gang"/*.log

say "alice-lab's statement from the broker, every line checked against its signed checkpoint"
$cn statement

cleanup
pids=()

say "Settlement summary (broker hub-north)"
"$bin/broker/computenet-broker" settlement --db "$db"

say "Offline audit of the ledger file (the broker's key pinned from its identity.pub)"
"$cn" ledger verify "$db" --broker-identity "$run/keys/broker/identity.pub"
