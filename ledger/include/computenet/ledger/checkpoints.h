// Signed checkpoints of a broker's own ledger, and the proofs served from
// them: an entry's inclusion proof (`computenet ledger prove`), a party's
// statement with a proof per line (GetStatement), and cosignatures other
// brokers return for a checkpoint. The format and the checks are in
// computenet/common/checkpoint.h; docs/ledger.md explains them.
//
// A checkpoint is signed every `every_entries` entries, or every
// `every_ms` when there is any new entry, whichever comes first, and when a
// statement needs its newest lines covered.
//
// Thread safety: a Checkpointer and these functions use their Database's
// connection, from that Database's thread; a Checkpointer is not thread-safe.
#ifndef COMPUTENET_LEDGER_CHECKPOINTS_H_
#define COMPUTENET_LEDGER_CHECKPOINTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "computenet/storage/database.h"
#include "computenet/common/ed25519.h"
#include "computenet/common/merkle.h"
#include "computenet/common/status.h"
#include "computenet/v1/ledger.pb.h"

namespace computenet::ledger {

struct CheckpointPolicy {
  // Sign once this many entries are not covered yet (0: never by count).
  uint64_t every_entries = 1000;
  // Sign when the last checkpoint is this old and any entry is not covered
  // (0: never by time).
  int64_t every_ms = 60'000;
};

class Checkpointer {
 public:
  // key is the broker's Ed25519 identity key; broker_id goes into every
  // checkpoint.
  Checkpointer(storage::Database& db, std::string broker_id, SigningKey key,
               CheckpointPolicy policy);

  // Signs and stores a checkpoint if the policy says one is due. Returns it,
  // or nullopt if none was due.
  StatusOr<std::optional<v1::SignedCheckpoint>> MaybeCheckpoint(int64_t now_ms);
  // Signs and stores one now unless the latest already covers every entry
  // (then nullopt).
  StatusOr<std::optional<v1::SignedCheckpoint>> CheckpointNow(int64_t now_ms);

 private:
  // Reads the entries appended since the last call into the compact range.
  Status CatchUp();

  storage::Database& db_;
  std::string broker_id_;
  SigningKey key_;
  CheckpointPolicy policy_;
  bool loaded_ = false;
  merkle::CompactRange range_;
  std::string head_hash_;
  uint64_t checkpointed_size_ = 0;
  int64_t checkpointed_ms_ = 0;
};

// Every stored checkpoint, by tree size, each with the cosignatures stored
// for it.
StatusOr<std::vector<v1::SignedCheckpoint>> ListCheckpoints(storage::Database& db);
// The checkpoint with the largest tree size, or nullopt if none.
StatusOr<std::optional<v1::SignedCheckpoint>> LatestCheckpoint(storage::Database& db);

// Merkle leaf hashes of entries 1..count, in order. OUT_OF_RANGE if the
// ledger has fewer entries.
StatusOr<std::vector<std::string>> LedgerLeafHashes(storage::Database& db,
                                                    uint64_t count);

// The entry, its audit path and the latest checkpoint (which covers it).
// NOT_FOUND if there is no such entry; FAILED_PRECONDITION if no checkpoint
// covers it yet.
StatusOr<v1::EntryProof> ProveEntry(storage::Database& db, uint64_t sequence);

// Stores another broker's cosignature of one of our checkpoints after
// checking it under cosigner_key. NOT_FOUND if there is no checkpoint of
// that size; UNAUTHENTICATED if the cosignature does not verify.
Status AddCosignature(storage::Database& db, uint64_t tree_size,
                      const v1::Cosignature& cosignature,
                      const VerifyingKey& cosigner_key);

struct StatementQuery {
  std::string account;
  int64_t from_ms = 0;  // created_ms >= from_ms
  int64_t to_ms = 0;    // created_ms < to_ms; 0 = no upper bound
  uint64_t after_sequence = 0;
  uint32_t limit = 1000;
  size_t max_bytes = 512 * 1024;  // keeps a reply under the frame limit
};

// The account's entries in the period, each with its audit path to the
// latest checkpoint; entries after that checkpoint are left out (sign one
// first to include them). Sets truncated when limit or max_bytes cut it
// short. An empty ledger gives an empty statement.
StatusOr<v1::GetStatementReply> BuildStatement(storage::Database& db,
                                               const StatementQuery& query);

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_CHECKPOINTS_H_
