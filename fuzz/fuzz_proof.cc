// Fuzzes the offline proof check (`computenet ledger verify-proof`,
// cli/ledger_commands.cc): the input is the proof file, JSON as `ledger
// prove` writes it (or, if it is not JSON, an EntryProof's bytes); it is
// parsed as the CLI parses it and checked with VerifyEntryProof
// (common/checkpoint.h) under the broker's key. The checkpoint is then
// signed by that key and checked again, so that the Merkle inclusion check
// behind the signature sees every proof; an accepted proof is printed as
// the CLI prints it. The same input as a ForkEvidence goes through
// VerifyForkEvidence, its two checkpoints signed likewise.
#include <google/protobuf/util/json_util.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "computenet/common/checkpoint.h"
#include "computenet/common/sha256.h"
#include "computenet/common/utc_time.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

namespace {

using namespace computenet;

// Signs the checkpoint bytes as they came (unknown fields and all).
void Resign(v1::SignedCheckpoint* signed_cp) {
  auto signature = fuzz::BrokerKey().Sign(
      DomainSeparated(kCheckpointDomain, signed_cp->checkpoint()));
  if (!signature.ok()) __builtin_trap();
  signed_cp->set_signature(*signature);
}

void Report(const v1::EntryProof& proof, const v1::LedgerEntry& entry) {
  v1::Checkpoint checkpoint;
  checkpoint.ParseFromString(proof.checkpoint().checkpoint());
  std::string line =
      std::to_string(entry.sequence()) + entry.kind() + entry.job_id() +
      checkpoint.broker_id() + std::to_string(checkpoint.tree_size()) +
      FormatUtc(checkpoint.timestamp_ms()) + HexEncode(checkpoint.root_hash());
  (void)line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const VerifyingKey& key = fuzz::BrokerKey().verifying_key();
  v1::EntryProof proof;
  if (!google::protobuf::util::JsonStringToMessage(text, &proof).ok() &&
      !proof.ParseFromString(text)) {
    proof.Clear();
  }
  auto entry = VerifyEntryProof(key, proof);
  if (entry.ok()) Report(proof, *entry);
  Resign(proof.mutable_checkpoint());
  entry = VerifyEntryProof(key, proof);
  if (entry.ok()) Report(proof, *entry);

  v1::ForkEvidence evidence;
  if (evidence.ParseFromString(text)) {
    (void)VerifyForkEvidence(key, evidence);
    Resign(evidence.mutable_first());
    Resign(evidence.mutable_second());
    (void)VerifyForkEvidence(key, evidence);
    std::vector<std::string> leaves(evidence.leaf_hashes().begin(),
                                    evidence.leaf_hashes().end());
    (void)DetectFork(key, "hub", evidence.first(), evidence.second(), leaves);
  }
  return 0;
}
