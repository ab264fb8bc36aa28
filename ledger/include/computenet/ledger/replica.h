// Replication primitives for brokers that watch each other's ledgers (the
// federation issue wires them to peer links): an origin exports its entries
// and signed checkpoints; a replica checks the stream (hash chain, the
// origin's signatures, Merkle heads against the entries, consistency with
// every checkpoint it saw before), stores it by origin, cosigns checkpoints
// it has verified, and detects a fork: two checkpoints signed by the same
// origin that cannot both be true. The fork evidence is self-contained;
// anyone can check it with VerifyForkEvidence and the origin's public key.
//
// Thread safety: a ReplicaStore and ExportLedger use their Database's
// connection, from that Database's thread; a ReplicaStore is not thread-safe.
#ifndef COMPUTENET_LEDGER_REPLICA_H_
#define COMPUTENET_LEDGER_REPLICA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "computenet/storage/database.h"
#include "computenet/common/ed25519.h"
#include "computenet/common/status.h"
#include "computenet/v1/ledger.pb.h"

namespace computenet::ledger {

// This broker's entries from_sequence.. (at most limit; 0 = all) and the
// signed checkpoints (with their cosignatures) whose tree size falls within
// the exported range. OUT_OF_RANGE if from_sequence is 0.
StatusOr<v1::LedgerStream> ExportLedger(storage::Database& db, const std::string& origin,
                                        uint64_t from_sequence, uint32_t limit);

struct ReplicaUpdate {
  uint64_t appended = 0;       // entries added
  uint64_t size = 0;           // entries held now
  uint64_t verified_size = 0;  // the largest signed checkpoint verified
  uint64_t checkpoints = 0;    // new checkpoints stored
};

class ReplicaStore {
 public:
  explicit ReplicaStore(storage::Database& db) : db_(db) {}

  // Starts following origin with its Ed25519 key (hex), pinned from then
  // on. OK if already followed with the same key; ALREADY_EXISTS if with
  // another one.
  Status Follow(const std::string& origin, const std::string& ed25519_public,
                int64_t now_ms);

  // Checks a stream from a followed origin and appends its new entries and
  // checkpoints, all or nothing. The stream must start at or before the
  // next entry held; entries already held must be the same bytes.
  // DATA_LOSS naming the violation (a broken chain, a bad signature, a head
  // that does not match the entries); if the violation proves a fork,
  // *fork (if given) receives the evidence and nothing is stored.
  // FAILED_PRECONDITION if the origin is not followed or the stream starts
  // past the next entry.
  StatusOr<ReplicaUpdate> Apply(const v1::LedgerStream& stream,
                                v1::ForkEvidence* fork = nullptr);

  // Entries held for origin (0 if none).
  StatusOr<uint64_t> Size(const std::string& origin);
  // Merkle leaf hashes of the first `count` entries held for origin.
  StatusOr<std::vector<std::string>> LeafHashes(const std::string& origin,
                                                uint64_t count);
  // Checkpoints of origin stored so far, by tree size.
  StatusOr<std::vector<v1::SignedCheckpoint>> Checkpoints(
      const std::string& origin);

  // Compares a checkpoint of origin seen elsewhere (from a peer, in a
  // statement) with the replica. Returns fork evidence if it contradicts
  // what the origin signed before, nullopt if it agrees. FAILED_PRECONDITION
  // if the replica cannot decide yet (it covers entries not held);
  // UNAUTHENTICATED if the origin did not sign it.
  StatusOr<std::optional<v1::ForkEvidence>> Check(
      const std::string& origin, const v1::SignedCheckpoint& checkpoint);

  // The largest checkpoint of origin verified and stored (0 if none): where
  // replication resumes after a restart instead of pulling from entry 1.
  StatusOr<uint64_t> VerifiedSize(const std::string& origin);

  // Keeps proof that origin signed two histories (ledger_forks), for the
  // operators and auditors.
  Status StoreForkEvidence(const std::string& origin,
                           const v1::ForkEvidence& evidence, int64_t now_ms);

  // Cosigns a checkpoint of origin with this broker's key, after checking
  // it against the replica (signature, Merkle head and chain head of the
  // entries held). FAILED_PRECONDITION if the replica does not hold its
  // entries yet; DATA_LOSS if it contradicts them (call Check for
  // evidence).
  StatusOr<v1::Cosignature> Cosign(const std::string& origin,
                                   const v1::SignedCheckpoint& checkpoint,
                                   const SigningKey& key,
                                   const std::string& cosigner_id);

 private:
  StatusOr<VerifyingKey> OriginKey(const std::string& origin);

  storage::Database& db_;
};

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_REPLICA_H_
