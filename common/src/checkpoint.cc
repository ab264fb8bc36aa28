#include "computenet/common/checkpoint.h"

#include "computenet/common/merkle.h"
#include "computenet/common/sha256.h"

namespace computenet {
namespace {

constexpr size_t kHashBytes = 32;

std::vector<std::string> Hashes(
    const google::protobuf::RepeatedPtrField<std::string>& field) {
  return std::vector<std::string>(field.begin(), field.end());
}

}  // namespace

std::string EntryLeafHash(std::string_view entry_bytes) {
  return merkle::LeafHash(Sha256(entry_bytes));
}

StatusOr<v1::SignedCheckpoint> SignCheckpoint(
    const SigningKey& key, const v1::Checkpoint& checkpoint) {
  v1::SignedCheckpoint out;
  checkpoint.SerializeToString(out.mutable_checkpoint());
  CN_ASSIGN_OR_RETURN(*out.mutable_signature(),
                      key.Sign(DomainSeparated(kCheckpointDomain,
                                               out.checkpoint())));
  return out;
}

StatusOr<v1::Checkpoint> VerifyCheckpoint(
    const VerifyingKey& origin, const v1::SignedCheckpoint& signed_cp) {
  Status signature = origin.Verify(
      DomainSeparated(kCheckpointDomain, signed_cp.checkpoint()),
      signed_cp.signature());
  if (!signature.ok()) {
    return UnauthenticatedError("checkpoint signature does not verify under "
                                "the broker's key");
  }
  v1::Checkpoint checkpoint;
  if (!checkpoint.ParseFromString(signed_cp.checkpoint())) {
    return InvalidArgumentError("checkpoint bytes do not parse");
  }
  if (checkpoint.root_hash().size() != kHashBytes ||
      checkpoint.head_hash().size() != kHashBytes) {
    return InvalidArgumentError("checkpoint hashes must be 32 bytes");
  }
  return checkpoint;
}

StatusOr<v1::Cosignature> CosignCheckpoint(
    const SigningKey& key, const std::string& cosigner_id,
    const v1::SignedCheckpoint& signed_cp) {
  v1::Cosignature out;
  out.set_broker_id(cosigner_id);
  out.set_ed25519_public(key.verifying_key().hex());
  CN_ASSIGN_OR_RETURN(*out.mutable_signature(),
                      key.Sign(DomainSeparated(kCheckpointDomain,
                                               signed_cp.checkpoint())));
  return out;
}

Status VerifyCosignature(const VerifyingKey& cosigner,
                         const v1::SignedCheckpoint& signed_cp,
                         const v1::Cosignature& cosignature) {
  if (cosignature.ed25519_public() != cosigner.hex()) {
    return UnauthenticatedError("cosignature names another key");
  }
  Status verified = cosigner.Verify(
      DomainSeparated(kCheckpointDomain, signed_cp.checkpoint()),
      cosignature.signature());
  if (!verified.ok()) {
    return UnauthenticatedError("cosignature by " + cosignature.broker_id() +
                                " does not verify");
  }
  return OkStatus();
}

StatusOr<v1::LedgerEntry> VerifyStatementLine(const v1::Checkpoint& checkpoint,
                                              const v1::StatementLine& line) {
  v1::LedgerEntry entry;
  if (!entry.ParseFromString(line.entry())) {
    return InvalidArgumentError("entry bytes do not parse");
  }
  const v1::InclusionProof& inclusion = line.inclusion();
  if (entry.sequence() == 0 || inclusion.leaf_index() != entry.sequence() - 1) {
    return UnauthenticatedError("entry " + std::to_string(entry.sequence()) +
                                " is proven at leaf " +
                                std::to_string(inclusion.leaf_index()) +
                                ", not at its own sequence");
  }
  if (inclusion.tree_size() != checkpoint.tree_size()) {
    return UnauthenticatedError("inclusion proof is for a tree of " +
                                std::to_string(inclusion.tree_size()) +
                                ", the checkpoint covers " +
                                std::to_string(checkpoint.tree_size()));
  }
  Status included = merkle::VerifyInclusion(
      EntryLeafHash(line.entry()), inclusion.leaf_index(),
      inclusion.tree_size(), Hashes(inclusion.hashes()),
      checkpoint.root_hash());
  if (!included.ok()) {
    return UnauthenticatedError("entry " + std::to_string(entry.sequence()) +
                                ": " + included.message());
  }
  return entry;
}

StatusOr<v1::LedgerEntry> VerifyEntryProof(const VerifyingKey& origin,
                                           const v1::EntryProof& proof) {
  CN_ASSIGN_OR_RETURN(v1::Checkpoint checkpoint,
                      VerifyCheckpoint(origin, proof.checkpoint()));
  v1::StatementLine line;
  line.set_entry(proof.entry());
  *line.mutable_inclusion() = proof.inclusion();
  return VerifyStatementLine(checkpoint, line);
}

StatusOr<std::optional<v1::ForkEvidence>> DetectFork(
    const VerifyingKey& origin, const std::string& origin_id,
    const v1::SignedCheckpoint& first, const v1::SignedCheckpoint& second,
    const std::vector<std::string>& leaf_hashes) {
  CN_ASSIGN_OR_RETURN(v1::Checkpoint a, VerifyCheckpoint(origin, first));
  CN_ASSIGN_OR_RETURN(v1::Checkpoint b, VerifyCheckpoint(origin, second));
  v1::ForkEvidence evidence;
  evidence.set_origin(origin_id);
  *evidence.mutable_first() = first;
  *evidence.mutable_second() = second;
  if (a.tree_size() == b.tree_size()) {
    if (a.root_hash() == b.root_hash() && a.head_hash() == b.head_hash()) {
      return std::optional<v1::ForkEvidence>();
    }
    evidence.set_explanation("two signed heads for the same " +
                             std::to_string(a.tree_size()) + " entries");
    return std::optional<v1::ForkEvidence>(std::move(evidence));
  }
  const v1::Checkpoint& small = a.tree_size() < b.tree_size() ? a : b;
  const v1::Checkpoint& large = a.tree_size() < b.tree_size() ? b : a;
  auto large_root = merkle::RootOf(leaf_hashes, large.tree_size());
  if (!large_root.ok() || *large_root != large.root_hash()) {
    return FailedPreconditionError(
        "the leaves given do not hash to the larger checkpoint's head (" +
        std::to_string(large.tree_size()) + " entries); cannot decide");
  }
  CN_ASSIGN_OR_RETURN(std::string small_root,
                      merkle::RootOf(leaf_hashes, small.tree_size()));
  if (small_root == small.root_hash()) return std::optional<v1::ForkEvidence>();
  for (uint64_t i = 0; i < large.tree_size(); ++i) {
    evidence.add_leaf_hashes(leaf_hashes[i]);
  }
  evidence.set_explanation(
      "the signed history of " + std::to_string(large.tree_size()) +
      " entries does not extend the signed history of " +
      std::to_string(small.tree_size()));
  return std::optional<v1::ForkEvidence>(std::move(evidence));
}

Status VerifyForkEvidence(const VerifyingKey& origin,
                          const v1::ForkEvidence& evidence) {
  std::vector<std::string> leaves(evidence.leaf_hashes().begin(),
                                  evidence.leaf_hashes().end());
  auto fork = DetectFork(origin, evidence.origin(), evidence.first(),
                         evidence.second(), leaves);
  if (!fork.ok()) {
    return InvalidArgumentError("not evidence of a fork: " +
                                fork.status().message());
  }
  if (!fork->has_value()) {
    return InvalidArgumentError(
        "not evidence of a fork: the two checkpoints are consistent");
  }
  return OkStatus();
}

}  // namespace computenet
