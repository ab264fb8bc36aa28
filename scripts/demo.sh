#!/usr/bin/env bash
# The ComputeNet demo: a federation of three regional brokers (north, east,
# west) that pin each other's keys, each with its own provider site, and a
# consumer at north. Every party is a real process talking CURVE-
# authenticated ZeroMQ on loopback. Jobs run as real child processes; one
# must run outside its home region (data residency) and does; usage is
# signed by the provider, countersigned by the remote broker and settled
# in each broker's double-entry ledger. The demo ends with the settlement
# between regions and an offline audit of every broker's ledger file.
#
# Usage: scripts/demo.sh            (does set-up and build first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
scripts/build.sh build >/dev/null
bin=$root/build
cnb=$bin/broker/computenet-broker
cn=$bin/cli/computenet

run=$root/demo-run
rm -rf "$run"
mkdir -p "$run/logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# region  site            model  nodes cards price(fen/card-hour)
regions=(
  "north  zhangbei-a800   A800   1     8     1500"
  "east   wuhu-h800       H800   2     8     2000"
  "west   guian-910b      910B   2     8     900"
)

say "Keys: three brokers, three provider sites, a consumer and an operator (secrets 0600)"
for line in "${regions[@]}"; do
  read -r region site _ <<<"$line"
  "$cnb" keygen --name "$region" --out "$run/keys/$region" >/dev/null
  "$cn" keygen --name "$site" --out "$run/keys/$site" >/dev/null
  "$cnb" enroll --db "$run/$region.db" --role provider --identity "$run/keys/$site/identity.pub"
done
"$cn" keygen --name alice-lab --out "$run/keys/alice" >/dev/null
"$cn" keygen --name north-ops --out "$run/keys/ops" >/dev/null
"$cnb" enroll --db "$run/north.db" --role consumer --identity "$run/keys/alice/identity.pub"
"$cnb" enroll --db "$run/north.db" --role admin --identity "$run/keys/ops/identity.pub"

say "Prepaid: north's operator tops up alice-lab (a job is placed only if its worst case fits)"
"$cnb" topup --db "$run/north.db" --consumer alice-lab --amount 100000 --key demo-wire-1

say "Three regional brokers start, each pinning the other two as peers"
for line in "${regions[@]}"; do
  read -r region _ <<<"$line"
  {
    echo "broker_id = \"$region\""
    echo "region = \"$region\""
    echo "endpoint = \"tcp://127.0.0.1:0\""
    echo "endpoint_file = \"$region.endpoint\""
    echo "database = \"$region.db\""
    echo "keys = \"keys/$region\""
    echo "heartbeat_ms = 250"
    echo "settlement_interval_ms = 500"
    echo "replication_interval_ms = 500"
    echo "checkpoint_interval_ms = 500"
    for peer_line in "${regions[@]}"; do
      read -r peer _ <<<"$peer_line"
      [[ $peer == "$region" ]] && continue
      printf '[[peers]]\nbroker_id = "%s"\nregion = "%s"\nendpoint_file = "%s.endpoint"\nidentity = "keys/%s/identity.pub"\n' \
        "$peer" "$peer" "$peer" "$peer"
    done
  } >"$run/$region.toml"
  "$cnb" run --config "$run/$region.toml" 2>"$run/logs/$region.log" &
  pids+=($!)
done
for line in "${regions[@]}"; do
  read -r region _ <<<"$line"
  for _ in $(seq 100); do [[ -s $run/$region.endpoint ]] && break; sleep 0.05; done
  echo "broker $region listening on $(cat "$run/$region.endpoint")"
done

say "Each region's provider site registers its inventory with its home broker"
for line in "${regions[@]}"; do
  read -r region site model nodes cards price <<<"$line"
  {
    echo "broker_endpoint = \"$(cat "$run/$region.endpoint")\""
    echo "broker_identity = \"keys/$region/identity.pub\""
    echo "identity_dir = \"keys/$site\""
    echo "work_dir = \"work/$site\""
    echo "site = \"$site\""
    echo "region = \"$region\""
    echo "currency = \"CNY\""
    printf '[prices]\n%s = %s\n' "$model" "$price"
    for n in $(seq "$nodes"); do
      printf '[[nodes]]\nname = "%s-n%s"\nfabric = "%s-ib"\naccelerators = [ { model = "%s", memory_mib = 65536, count = %s } ]\n' \
        "$site" "$n" "$site" "$model" "$cards"
    done
  } >"$run/$site.toml"
  "$bin/provider-sdk/computenet-provider" --config "$run/$site.toml" 2>"$run/logs/$site.log" &
  pids+=($!)
done

export COMPUTENET_BROKER COMPUTENET_BROKER_IDENTITY=$run/keys/north/identity.pub
COMPUTENET_BROKER=$(cat "$run/north.endpoint")
as_ops() { COMPUTENET_IDENTITY=$run/keys/ops "$cn" "$@"; }
export COMPUTENET_IDENTITY=$run/keys/alice

for _ in $(seq 100); do
  view=$(as_ops admin federation 2>/dev/null || true)
  grep -q "H800" <<<"$view" && grep -q "910B" <<<"$view" && break
  sleep 0.1
done
say "North's operator view: peers, links and the capacity they advertise"
as_ops admin federation

say "Consumer alice-lab (home: north) submits five jobs"
ft=$($cn submit --name finetune --model A800 --cards 2 --max-duration 60 -- \
  sh -c 'echo "fine-tuning on $COMPUTENET_MODEL cards $CUDA_VISIBLE_DEVICES"; sleep 3')
res=$($cn submit --name west-residency --region west --cards 4 --max-duration 60 -- \
  sh -c 'echo "data stays in west: $COMPUTENET_MODEL x4 on $COMPUTENET_NODE"; sleep 3')
gang=$($cn submit --name pretrain-gang --model H800 --nodes 2 --cards 8 --max-duration 60 -- \
  sh -c 'echo "rank $COMPUTENET_NODE_RANK of $COMPUTENET_NUM_NODES on $COMPUTENET_NODE"; sleep 2')
bad=$($cn submit --name broken-eval --model A800 --cards 1 --max-duration 60 -- \
  sh -c 'echo "evaluation crashed" >&2; exit 3')
long=$($cn submit --name runaway --region west --cards 1 --max-duration 600 -- sleep 300)
echo "$ft: A800 x2 (fits at home)"
echo "$res: must run in region west (data residency)"
echo "$gang: 2 nodes x 8 H800 in one fabric (only east has it)"
echo "$bad: will fail"
echo "$long: runs in west, will be cancelled from north"

sleep 2
say "alice-lab cancels $long; the cancel travels north -> west -> its provider"
$cn cancel "$long"

say "Waiting for every job to end (the status stream comes home from the remote regions)"
for job in "$ft" "$res" "$gang" "$bad" "$long"; do
  $cn wait "$job" --timeout 60 2>/dev/null | head -3 | paste -sd' ' || true
done

say "alice-lab's jobs as north sees them"
$cn jobs

say "Job output on the sites (real processes, assigned devices in the environment)"
cat "$run"/work/zhangbei-a800/"$ft"/*.log "$run"/work/guian-910b/"$res"/*.log \
  "$run"/work/wuhu-h800/"$gang"/*.log

say "alice-lab's statement from the broker, every line checked against its signed checkpoint"
$cn statement

say "Net settlement: north states what it owes each peer; each peer checks it against its own books and countersigns"
for _ in $(seq 100); do
  agreed=$(sqlite3 "$run/north.db" "SELECT COUNT(DISTINCT creditor) FROM settlement_statements WHERE agreed=1" 2>/dev/null || echo 0)
  [[ $agreed -ge 2 ]] && break
  sleep 0.1
done
grep -h "settlement with" "$run/logs/north.log" "$run/logs/east.log" "$run/logs/west.log" | sed 's/^.*\] //' | sort -u

cleanup
pids=()

for line in "${regions[@]}"; do
  read -r region _ <<<"$line"
  say "Settlement at broker $region"
  "$cnb" settlement --db "$run/$region.db" | sed -n '/^Settlement/,$p'
done

say "Between regions (clearing accounts; who owes whom, net)"
for peer in east west; do
  owed=$(sqlite3 "$run/north.db" "SELECT COALESCE(SUM(balance),0) FROM ledger_accounts WHERE name='clearing:$peer'")
  owes=$(sqlite3 "$run/$peer.db" "SELECT COALESCE(-SUM(balance),0) FROM ledger_accounts WHERE name='clearing:north'")
  echo "north owes $peer: $owed minor units by north's ledger, $owes by $peer's ledger"
done

say "Offline audit of every broker's ledger file (each broker's key pinned from its identity.pub)"
for line in "${regions[@]}"; do
  read -r region _ <<<"$line"
  printf '%-6s ' "$region"
  "$cn" ledger verify "$run/$region.db" --broker-identity "$run/keys/$region/identity.pub"
done
