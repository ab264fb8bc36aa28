// Ledger checkpoints and the proofs built on them, as anyone can check them
// offline with nothing but a broker's public key: a regulator auditing a
// broker, a consumer or provider checking its statement, a peer broker
// replicating and cosigning another's ledger.
//
// A checkpoint (v1::Checkpoint) names a broker, a tree size n, the RFC 6962
// tree head over the first n entries' hashes and the hash chain's head at n.
// The broker signs its serialized bytes:
//   signature = Ed25519(key, "computenet.v1.Checkpoint" || 0x00 || bytes)
// and a cosigning broker signs the same bytes with its own key. Leaf i of the
// tree is LeafHash(SHA-256(entry i bytes)) (merkle.h), so a proof for one
// entry needs the entry's bytes, its audit path and the signed checkpoint.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_COMMON_CHECKPOINT_H_
#define COMPUTENET_COMMON_CHECKPOINT_H_

#include <optional>
#include <string>
#include <vector>

#include "computenet/common/ed25519.h"
#include "computenet/common/status.h"
#include "computenet/v1/ledger.pb.h"

namespace computenet {

inline constexpr char kCheckpointDomain[] = "computenet.v1.Checkpoint";

// The Merkle leaf hash of one ledger entry, from its stored bytes.
std::string EntryLeafHash(std::string_view entry_bytes);

// Serializes and signs checkpoint. INTERNAL if signing fails.
StatusOr<v1::SignedCheckpoint> SignCheckpoint(const SigningKey& key,
                                              const v1::Checkpoint& checkpoint);

// Checks the origin broker's signature and parses the checkpoint.
// UNAUTHENTICATED for a bad signature; INVALID_ARGUMENT if the bytes do not
// parse or the hashes are not 32 bytes.
StatusOr<v1::Checkpoint> VerifyCheckpoint(const VerifyingKey& origin,
                                          const v1::SignedCheckpoint& signed_cp);

// Another broker's signature over the same checkpoint bytes. The caller
// must have checked the checkpoint against its replica first
// (ReplicaStore::Cosign does). INTERNAL if signing fails.
StatusOr<v1::Cosignature> CosignCheckpoint(const SigningKey& key,
                                           const std::string& cosigner_id,
                                           const v1::SignedCheckpoint& signed_cp);
// UNAUTHENTICATED unless cosignature is cosigner's signature over the
// checkpoint's bytes and names cosigner's key.
Status VerifyCosignature(const VerifyingKey& cosigner,
                         const v1::SignedCheckpoint& signed_cp,
                         const v1::Cosignature& cosignature);

// Checks an entry proof: the checkpoint's signature under `origin`, that the
// audit path leads from the entry to the checkpoint's tree head, and that
// the leaf index is the entry's own sequence - 1. Returns the parsed entry.
// UNAUTHENTICATED naming the failing part, INVALID_ARGUMENT if malformed.
StatusOr<v1::LedgerEntry> VerifyEntryProof(const VerifyingKey& origin,
                                           const v1::EntryProof& proof);

// The same for one line of a statement, against a checkpoint already
// verified (its parsed form).
StatusOr<v1::LedgerEntry> VerifyStatementLine(const v1::Checkpoint& checkpoint,
                                              const v1::StatementLine& line);

// Looks for a fork between two checkpoints signed by `origin` (both
// signatures are checked first: UNAUTHENTICATED if one fails).
// leaf_hashes are the leaf hashes of the larger tree, when the caller has
// them (a replica does); with equal sizes none are needed. Returns the
// evidence if the two cannot both be true, nullopt if they agree, and
// FAILED_PRECONDITION if the sizes differ and leaf_hashes do not reach the
// larger tree's head (then nothing can be decided from them).
StatusOr<std::optional<v1::ForkEvidence>> DetectFork(
    const VerifyingKey& origin, const std::string& origin_id,
    const v1::SignedCheckpoint& first, const v1::SignedCheckpoint& second,
    const std::vector<std::string>& leaf_hashes);

// OK if evidence proves that `origin` signed two inconsistent histories;
// INVALID_ARGUMENT (with why) if it does not.
Status VerifyForkEvidence(const VerifyingKey& origin,
                          const v1::ForkEvidence& evidence);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_CHECKPOINT_H_
