#!/usr/bin/env bash
# Backs up a live broker's WAL database two ways while it serves, then checks
# each copy: the offline ledger audit, the broker's own audit (settlement),
# SQLite's integrity check, and a broker started on a restored copy. It also
# runs both audits on the live file (where they are not a snapshot), sends
# SIGHUP and revokes a key on the live broker. The figures docs/operations.md
# quotes ("Backups") come from this script.
# Usage: scripts/live_backup_check.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/build}" && pwd)
cnb=$bin/broker/computenet-broker
cn=$bin/cli/computenet
cnp=$bin/provider-sdk/computenet-provider
for tool in "$cnb" "$cn" "$cnp" sqlite3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
run=$(mktemp -d "${TMPDIR:-/tmp}/computenet-backup-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${KEEP:-} ]] && echo "kept $run" || rm -rf "$run"
}
trap cleanup EXIT
cd "$run"
say() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

say "A broker with one provider site and one consumer"
"$cnb" keygen --name hub --out keys/broker >/dev/null
"$cn" keygen --name site-a --out keys/site-a >/dev/null
"$cn" keygen --name alice --out keys/alice >/dev/null
"$cnb" enroll --db broker.db --role provider --identity keys/site-a/identity.pub
"$cnb" enroll --db broker.db --role consumer --identity keys/alice/identity.pub
"$cnb" topup --db broker.db --consumer alice --amount 100000000 --key wire-1 >/dev/null
cat >broker.toml <<'EOF'
broker_id = "hub"
region = "north"
endpoint = "tcp://127.0.0.1:0"
endpoint_file = "broker.endpoint"
database = "broker.db"
keys = "keys/broker"
EOF
"$cnb" run --config broker.toml 2>broker.log &
broker_pid=$!
pids+=("$broker_pid")
for _ in $(seq 200); do [[ -s broker.endpoint ]] && break; sleep 0.05; done
endpoint=$(cat broker.endpoint)
cat >site.toml <<EOF
broker_endpoint = "$endpoint"
broker_identity = "keys/broker/identity.pub"
identity_dir = "keys/site-a"
work_dir = "work/site-a"
site = "site-a"
region = "north"
currency = "CNY"
[prices]
A800 = 360000   # 100 minor units per card-second: short jobs cost something
[[nodes]]
name = "n1"
fabric = "f1"
accelerators = [ { model = "A800", memory_mib = 81920, count = 8 } ]
EOF
"$cnp" --config site.toml 2>site.log &
pids+=($!)
export COMPUTENET_BROKER=$endpoint COMPUTENET_BROKER_IDENTITY=keys/broker/identity.pub \
       COMPUTENET_IDENTITY=keys/alice

say "Load: three loops of \`computenet submit\` (short jobs) for the whole run"
load() {
  while [[ ! -e stop ]]; do
    "$cn" submit --model A800 --cards 1 --max-duration 60 -- /bin/true >/dev/null 2>>load.err || true
  done
}
load & pids+=($!)
load & pids+=($!)
load & pids+=($!)
# Wait until jobs have run and been billed, so that the ledger has usage.
for _ in $(seq 600); do
  n=$(sqlite3 -readonly broker.db "SELECT count(*) FROM usage_records" 2>/dev/null || echo 0)
  [[ $n -ge 150 ]] && break
  sleep 0.1
done
sqlite3 -readonly broker.db "PRAGMA journal_mode"   # the broker's file is in WAL mode

say "A plain cp of the live file alone (the wrong way): compare with the live file"
cp broker.db plain-cp.db
echo "live (file + WAL): $(sqlite3 -readonly broker.db "SELECT count(*) FROM ledger_entries") ledger entries;" \
     "cp of broker.db alone: $(sqlite3 -readonly plain-cp.db "SELECT count(*) FROM ledger_entries" 2>&1);" \
     "WAL now $(stat -c %s broker.db-wal) bytes"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
for round in 1 2 3; do
  say "Round $round while the broker writes"
  start=$(date +%s%N)
  show sqlite3 broker.db ".timeout 5000" ".backup backup-api-$round.db"
  echo "  .backup took $(ms "$start") ms"
  start=$(date +%s%N)
  show sqlite3 broker.db ".timeout 5000" "VACUUM INTO 'backup-vacuum-$round.db'"
  echo "  VACUUM INTO took $(ms "$start") ms"
  sleep 1
done
echo "live file now: $(sqlite3 -readonly broker.db "SELECT count(*) FROM jobs") jobs," \
     "$(sqlite3 -readonly broker.db "SELECT count(*) FROM ledger_entries") ledger entries," \
     "WAL $(stat -c %s broker.db-wal) bytes"
say "The audits run on the live file itself, beside the writing broker (read-only), 5 times each"
for i in 1 2 3 4 5; do
  "$cn" ledger verify broker.db --broker-identity keys/broker/identity.pub --allow-unsigned-tail \
    >verify-live.out 2>&1 && echo "ledger verify #$i: ok" || echo "ledger verify #$i: exit $?: $(grep FAILED verify-live.out)"
  "$cnb" settlement --db broker.db >settle-live.out 2>&1 && echo "settlement #$i: ok, $(grep -o "sum of all accounts.*" settle-live.out)" \
    || echo "settlement #$i: exit $?: $(tail -n 1 settle-live.out)"
done
touch stop
sleep 0.5

say "Checking every copy"
printf '%-20s %-9s %-6s %5s %7s %9s %-28s %-10s %s\n' COPY INTEGRITY JOURNAL JOBS ENTRIES SIGNED "VERIFY (strict / tail ok)" "SUM=0" BYTES
for copy in backup-api-{1,2,3}.db backup-vacuum-{1,2,3}.db; do
  integrity=$(sqlite3 -readonly "$copy" "PRAGMA integrity_check")
  journal=$(sqlite3 -readonly "$copy" "PRAGMA journal_mode")
  jobs=$(sqlite3 -readonly "$copy" "SELECT count(*) FROM jobs")
  entries=$(sqlite3 -readonly "$copy" "SELECT count(*) FROM ledger_entries")
  signed=$(sqlite3 -readonly "$copy" "SELECT coalesce(max(tree_size), 0) FROM ledger_checkpoints")
  strict=ok; "$cn" ledger verify "$copy" --broker-identity keys/broker/identity.pub >/dev/null 2>&1 || strict="exit $?"
  tail_ok=ok; "$cn" ledger verify "$copy" --broker-identity keys/broker/identity.pub --allow-unsigned-tail >/dev/null 2>&1 || tail_ok="exit $?"
  sum=$("$cnb" settlement --db "$copy" | grep "sum of all accounts" | awk '{print $5}')
  printf '%-20s %-9s %-6s %5s %7s %9s %-28s %-10s %s\n' "$copy" "$integrity" "$journal" "$jobs" "$entries" "$signed" "$strict / $tail_ok" "$sum" "$(stat -c %s "$copy")"
done
say "One copy in full: the audits' own words"
show "$cn" ledger verify backup-vacuum-3.db --broker-identity keys/broker/identity.pub || echo "exit $?"
show "$cn" ledger verify backup-vacuum-3.db --broker-identity keys/broker/identity.pub --allow-unsigned-tail
show "$cnb" settlement --db backup-vacuum-3.db | tail -n 6

say "Restore: a broker started on a copy of backup-vacuum-3.db (isolated: own endpoint, no peers)"
mkdir restore
cp backup-vacuum-3.db restore/broker.db
sed -e 's|^database = .*|database = "restore/broker.db"|' \
    -e 's|^endpoint_file = .*|endpoint_file = "restore/broker.endpoint"|' broker.toml >restore.toml
"$cnb" run --config restore.toml 2>restore.log &
restored_pid=$!
pids+=("$restored_pid")
for _ in $(seq 200); do [[ -s restore/broker.endpoint ]] && break; sleep 0.05; done
echo "restored broker listening on $(cat restore/broker.endpoint)"
COMPUTENET_BROKER=$(cat restore/broker.endpoint) show "$cn" jobs --limit 5
echo "-- a second broker on the same restored file is refused (instance lock):"
"$cnb" run --config restore.toml --endpoint tcp://127.0.0.1:0 2>&1 | tail -n 1 || true
kill -TERM "$restored_pid"
wait "$restored_pid" && echo "restored broker exit 0 after SIGTERM"
grep -E "listening|checkpoint|stopped" restore.log | sed 's/^[^ ]* //' | tail -n 4
echo "-- after its clean stop every entry is signed: the strict audit passes"
show "$cn" ledger verify restore/broker.db --broker-identity keys/broker/identity.pub

say "SIGHUP, then a revocation, on the live broker"
kill -HUP "$broker_pid"
sleep 0.5
kill -0 "$broker_pid" && echo "still running after SIGHUP"
grep -o "reload: .*" broker.log | tail -n 1
show "$cnb" revoke --db broker.db --role consumer --name alice
sleep 0.5
grep -o "consumer/alice revoked.*" broker.log | tail -n 1
timeout 5 "$cn" jobs >/dev/null 2>&1 || echo "computenet jobs with the revoked key: exit $?"
grep -o "ZAP: refused revoked key.*" broker.log | tail -n 1

say "Stopping the live broker (SIGTERM) and auditing the original"
kill -TERM "$broker_pid"
wait "$broker_pid" && echo "live broker exit 0 after SIGTERM"
show "$cn" ledger verify broker.db --broker-identity keys/broker/identity.pub
echo "load errors (failed submits while the backups ran): $(wc -l <load.err)"
