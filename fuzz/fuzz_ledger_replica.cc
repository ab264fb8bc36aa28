// Fuzzes a ledger export as a peer receives it (ledger/replica.h,
// ReplicaStore::Apply on the LedgerStream of PEER_LEDGER_PULL_REPLY, the
// stream ExportLedger writes): the input is the stream's bytes. Its
// checkpoints are signed by the origin's key first (a hostile origin holds
// it), so that the chain, Merkle head and fork checks behind the signature
// see every stream; it is applied as sent, then signed, twice (the second
// is the replay a lost reply causes), then the replica's own answers are
// asked of it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "computenet/ledger/replica.h"
#include "ledger_inputs.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

namespace {

using namespace computenet;

void Apply(storage::Database& db, v1::LedgerStream stream) {
  ledger::ReplicaStore replica(db);
  const std::string origin = "hub-east";
  if (!replica.Follow(origin, fuzz::ProviderKey().verifying_key().hex(), 0)
           .ok()) {
    __builtin_trap();
  }
  stream.set_origin(origin);
  const v1::LedgerStream as_sent = stream;
  for (auto& signed_cp : *stream.mutable_checkpoints()) {
    auto signature = fuzz::ProviderKey().Sign(
        DomainSeparated(kCheckpointDomain, signed_cp.checkpoint()));
    if (!signature.ok()) __builtin_trap();
    signed_cp.set_signature(*signature);
  }
  v1::ForkEvidence fork;
  (void)replica.Apply(as_sent, &fork);
  auto applied = replica.Apply(stream, &fork);
  (void)replica.Apply(stream, &fork);
  if (!applied.ok()) return;
  auto held = replica.Size(origin);
  if (!held.ok() || *held != applied->size) __builtin_trap();
  (void)replica.LeafHashes(origin, 0);
  auto checkpoints = replica.Checkpoints(origin);
  if (checkpoints.ok() && !checkpoints->empty()) {
    (void)replica.Check(origin, checkpoints->back());
    (void)replica.Cosign(origin, checkpoints->back(), fuzz::BrokerKey(), "hub");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::LedgerStream stream;
  if (!stream.ParseFromArray(data, static_cast<int>(size))) return 0;
  // One file, its schema made once; each stream is applied inside a
  // transaction that is always rolled back.
  static storage::Database* db = fuzz::NewLedgerFile().release();
  Status undone = db->RunInTransaction([&]() -> Status {
    Apply(*db, stream);
    return AbortedError("rolled back");
  });
  if (undone.code() != StatusCode::kAborted) __builtin_trap();
  return 0;
}
