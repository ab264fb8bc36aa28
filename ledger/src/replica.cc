#include "computenet/ledger/replica.h"

#include <algorithm>

#include "computenet/ledger/checkpoints.h"
#include "computenet/common/checkpoint.h"
#include "computenet/common/identity.h"
#include "computenet/common/merkle.h"
#include "computenet/common/sha256.h"

namespace computenet::ledger {

using storage::BindBlob;
using storage::BlobOf;
using storage::StatusFromSqlite;
namespace {

std::vector<std::string> LeavesOf(const std::vector<std::string>& hashes) {
  std::vector<std::string> leaves;
  leaves.reserve(hashes.size());
  for (const auto& hash : hashes) leaves.push_back(merkle::LeafHash(hash));
  return leaves;
}

// The entry hashes held for origin, in order.
StatusOr<std::vector<std::string>> HeldHashes(storage::Database& db,
                                              const std::string& origin) {
  auto rows = db.Prepare("SELECT sequence, hash FROM ledger_replicas "
                         "WHERE origin=? ORDER BY sequence");
  rows->bind(1, origin);
  std::vector<std::string> out;
  while (rows->executeStep()) {
    if (static_cast<uint64_t>(rows->getColumn(0).getInt64()) != out.size() + 1) {
      return DataLossError("replica of " + origin + " has a gap");
    }
    out.push_back(BlobOf(rows->getColumn(1)));
  }
  return out;
}

// Does the checkpoint's head match these entry hashes? (Its signature is
// checked by the caller.)
bool Matches(const v1::Checkpoint& checkpoint,
             const std::vector<std::string>& hashes,
             const std::vector<std::string>& leaves) {
  if (checkpoint.tree_size() > hashes.size()) return false;
  auto root = merkle::RootOf(leaves, checkpoint.tree_size());
  const std::string head = checkpoint.tree_size() == 0
                               ? std::string(32, '\0')
                               : hashes[checkpoint.tree_size() - 1];
  return root.ok() && *root == checkpoint.root_hash() &&
         head == checkpoint.head_hash();
}

}  // namespace

StatusOr<v1::LedgerStream> ExportLedger(storage::Database& db, const std::string& origin,
                                        uint64_t from_sequence,
                                        uint32_t limit) {
  if (from_sequence == 0) {
    return OutOfRangeError("ledger sequences start at 1");
  }
  v1::LedgerStream stream;
  stream.set_origin(origin);
  stream.set_from_sequence(from_sequence);
  try {
    auto rows = db.Prepare("SELECT entry FROM ledger_entries WHERE sequence >= ? "
                           "ORDER BY sequence LIMIT ?");
    rows->bind(1, static_cast<int64_t>(from_sequence));
    rows->bind(2, limit == 0 ? int64_t{-1} : static_cast<int64_t>(limit));
    while (rows->executeStep()) stream.add_entries(BlobOf(rows->getColumn(0)));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "export ledger");
  }
  const uint64_t last = from_sequence + stream.entries_size() - 1;
  CN_ASSIGN_OR_RETURN(auto checkpoints, ListCheckpoints(db));
  for (auto& checkpoint : checkpoints) {
    v1::Checkpoint parsed;
    if (!parsed.ParseFromString(checkpoint.checkpoint())) {
      return DataLossError("stored checkpoint does not parse");
    }
    if (parsed.tree_size() >= from_sequence && parsed.tree_size() <= last) {
      *stream.add_checkpoints() = std::move(checkpoint);
    }
  }
  return stream;
}

Status ReplicaStore::Follow(const std::string& origin,
                            const std::string& ed25519_public,
                            int64_t now_ms) {
  CN_RETURN_IF_ERROR(ValidatePartyName(origin));
  CN_RETURN_IF_ERROR(VerifyingKey::FromHex(ed25519_public).status());
  try {
    auto query = db_.Prepare("SELECT ed25519_public FROM ledger_replica_origins "
                            "WHERE origin=?");
    query->bind(1, origin);
    if (query->executeStep()) {
      if (query->getColumn(0).getString() != ed25519_public) {
        return AlreadyExistsError("already following " + origin +
                                  " with another key");
      }
      return OkStatus();
    }
    auto insert = db_.Prepare("INSERT INTO ledger_replica_origins(origin, "
                             "ed25519_public, followed_ms) VALUES(?, ?, ?)");
    insert->bind(1, origin);
    insert->bind(2, ed25519_public);
    insert->bind(3, static_cast<int64_t>(now_ms));
    insert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "follow");
  }
}

StatusOr<VerifyingKey> ReplicaStore::OriginKey(const std::string& origin) {
  try {
    auto query = db_.Prepare("SELECT ed25519_public FROM ledger_replica_origins "
                            "WHERE origin=?");
    query->bind(1, origin);
    if (!query->executeStep()) {
      return FailedPreconditionError("not following " + origin);
    }
    return VerifyingKey::FromHex(query->getColumn(0).getString());
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "origin key");
  }
}

StatusOr<uint64_t> ReplicaStore::Size(const std::string& origin) {
  try {
    auto query = db_.Prepare("SELECT COALESCE(MAX(sequence), 0) FROM "
                            "ledger_replicas WHERE origin=?");
    query->bind(1, origin);
    query->executeStep();
    return static_cast<uint64_t>(query->getColumn(0).getInt64());
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "replica size");
  }
}

StatusOr<std::vector<std::string>> ReplicaStore::LeafHashes(
    const std::string& origin, uint64_t count) {
  try {
    CN_ASSIGN_OR_RETURN(auto hashes, HeldHashes(db_, origin));
    if (hashes.size() < count) {
      return OutOfRangeError("replica of " + origin + " holds " +
                             std::to_string(hashes.size()) + " entries, not " +
                             std::to_string(count));
    }
    hashes.resize(count);
    return LeavesOf(hashes);
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "replica leaves");
  }
}

StatusOr<std::vector<v1::SignedCheckpoint>> ReplicaStore::Checkpoints(
    const std::string& origin) {
  try {
    auto rows = db_.Prepare("SELECT checkpoint, signature FROM "
                           "ledger_replica_checkpoints WHERE origin=? "
                           "ORDER BY tree_size");
    rows->bind(1, origin);
    std::vector<v1::SignedCheckpoint> out;
    while (rows->executeStep()) {
      v1::SignedCheckpoint signed_cp;
      signed_cp.set_checkpoint(BlobOf(rows->getColumn(0)));
      signed_cp.set_signature(BlobOf(rows->getColumn(1)));
      out.push_back(std::move(signed_cp));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "replica checkpoints");
  }
}

namespace {

// The stored heads nearest to tree_size: the one of the same size if any,
// else the largest below and the smallest above it.
std::vector<const v1::SignedCheckpoint*> NearestHeads(
    const std::vector<v1::SignedCheckpoint>& seen, uint64_t tree_size) {
  const v1::SignedCheckpoint* below = nullptr;
  const v1::SignedCheckpoint* above = nullptr;
  uint64_t below_size = 0;
  uint64_t above_size = 0;
  for (const auto& signed_cp : seen) {
    v1::Checkpoint parsed;
    if (!parsed.ParseFromString(signed_cp.checkpoint())) continue;
    const uint64_t size = parsed.tree_size();
    if (size == tree_size) return {&signed_cp};
    if (size < tree_size && (below == nullptr || size > below_size)) {
      below = &signed_cp;
      below_size = size;
    }
    if (size > tree_size && (above == nullptr || size < above_size)) {
      above = &signed_cp;
      above_size = size;
    }
  }
  std::vector<const v1::SignedCheckpoint*> out;
  if (below != nullptr) out.push_back(below);
  if (above != nullptr) out.push_back(above);
  return out;
}

}  // namespace

StatusOr<uint64_t> ReplicaStore::VerifiedSize(const std::string& origin) {
  uint64_t size = 0;
  CN_RETURN_IF_ERROR(db_.Run([&]() -> Status {
    auto query = db_.Prepare(
        "SELECT COALESCE(MAX(tree_size), 0) FROM ledger_replica_checkpoints "
        "WHERE origin=?");
    query->bind(1, origin);
    if (query->executeStep()) {
      size = static_cast<uint64_t>(query->getColumn(0).getInt64());
    }
    return OkStatus();
  }));
  return size;
}

StatusOr<ReplicaUpdate> ReplicaStore::Apply(const v1::LedgerStream& stream,
                                            v1::ForkEvidence* fork) {
  const std::string& origin = stream.origin();
  CN_ASSIGN_OR_RETURN(VerifyingKey key, OriginKey(origin));
  if (stream.from_sequence() == 0) {
    return InvalidArgumentError("ledger sequences start at 1");
  }
  try {
    CN_ASSIGN_OR_RETURN(std::vector<std::string> held,
                        HeldHashes(db_, origin));
    const uint64_t from = stream.from_sequence();
    if (from > held.size() + 1) {
      return FailedPreconditionError(
          "stream starts at " + std::to_string(from) + " but the replica of " +
          origin + " holds " + std::to_string(held.size()) + " entries");
    }
    // The history the stream shows: what is held before it, then its own.
    std::vector<std::string> shown(held.begin(),
                                   held.begin() + static_cast<long>(from - 1));
    std::string prev = from == 1 ? std::string(32, '\0') : held[from - 2];
    std::optional<uint64_t> rewritten;
    for (int i = 0; i < stream.entries_size(); ++i) {
      const uint64_t sequence = from + static_cast<uint64_t>(i);
      const std::string& bytes = stream.entries(i);
      v1::LedgerEntry entry;
      if (!entry.ParseFromString(bytes)) {
        return DataLossError(origin + " entry " + std::to_string(sequence) +
                             ": does not parse");
      }
      if (entry.sequence() != sequence) {
        return DataLossError(origin + " entry " + std::to_string(sequence) +
                             ": carries sequence " +
                             std::to_string(entry.sequence()));
      }
      if (entry.prev_hash() != prev) {
        return DataLossError(origin + " entry " + std::to_string(sequence) +
                             ": prev_hash does not match the entry before "
                             "(the chain is broken)");
      }
      prev = Sha256(bytes);
      if (sequence <= held.size() && held[sequence - 1] != prev &&
          !rewritten.has_value()) {
        rewritten = sequence;
      }
      shown.push_back(prev);
    }
    // Entries held past the end of an identical stream stay part of it.
    if (!rewritten.has_value() && shown.size() < held.size()) {
      shown.assign(held.begin(), held.end());
    }
    const std::vector<std::string> shown_leaves = LeavesOf(shown);
    const std::vector<std::string> held_leaves = LeavesOf(held);

    CN_ASSIGN_OR_RETURN(std::vector<v1::SignedCheckpoint> seen,
                        Checkpoints(origin));
    std::vector<v1::SignedCheckpoint> fresh;
    uint64_t verified_size = 0;
    for (const auto& signed_cp : seen) {
      v1::Checkpoint parsed;
      parsed.ParseFromString(signed_cp.checkpoint());
      verified_size = std::max<uint64_t>(verified_size, parsed.tree_size());
    }
    for (const auto& signed_cp : stream.checkpoints()) {
      auto parsed = VerifyCheckpoint(key, signed_cp);
      if (!parsed.ok()) {
        return DataLossError(origin + " checkpoint: " +
                             parsed.status().message());
      }
      if (parsed->broker_id() != origin) {
        return DataLossError(origin + " checkpoint names broker " +
                             parsed->broker_id());
      }
      if (parsed->tree_size() > shown.size()) {
        return InvalidArgumentError(
            "checkpoint at " + std::to_string(parsed->tree_size()) +
            " covers entries the stream does not carry");
      }
      // Against the heads this origin signed before that are nearest in
      // size (the same size, else the nearest below and above): two that
      // cannot both be true are a fork, whichever leaves prove it. Nearest
      // suffices: the held entries are consistent with every stored head
      // (each was checked when it arrived), so a new head consistent with
      // its neighbours is consistent with all. Comparing with every stored
      // head made a stream O(streamed x stored x entries) on the loop.
      for (const auto* old : NearestHeads(seen, parsed->tree_size())) {
        for (const auto* leaves : {&shown_leaves, &held_leaves}) {
          auto evidence = DetectFork(key, origin, *old, signed_cp, *leaves);
          if (evidence.ok() && evidence->has_value()) {
            if (fork != nullptr) *fork = **evidence;
            return DataLossError(origin + " signed a fork: " +
                                 (*evidence)->explanation());
          }
        }
      }
      if (!Matches(*parsed, shown, shown_leaves)) {
        return DataLossError(origin + " checkpoint at " +
                             std::to_string(parsed->tree_size()) +
                             " does not match the entries sent");
      }
      seen.push_back(signed_cp);
      fresh.push_back(signed_cp);
      verified_size = std::max<uint64_t>(verified_size, parsed->tree_size());
    }
    if (rewritten.has_value()) {
      return DataLossError(origin + " entry " + std::to_string(*rewritten) +
                           " differs from the copy held (no signed "
                           "checkpoint proves a fork yet)");
    }

    ReplicaUpdate update;
    Status stored = db_.RunInTransaction([&]() -> Status {
      auto insert = db_.Prepare("INSERT INTO ledger_replicas(origin, sequence, "
                               "entry, hash) VALUES(?, ?, ?, ?)");
      for (int i = 0; i < stream.entries_size(); ++i) {
        const uint64_t sequence = from + static_cast<uint64_t>(i);
        if (sequence <= held.size()) continue;
        insert->reset();
        insert->bind(1, origin);
        insert->bind(2, static_cast<int64_t>(sequence));
        BindBlob(*insert, 3, stream.entries(i));
        BindBlob(*insert, 4, shown[sequence - 1]);
        insert->exec();
        ++update.appended;
      }
      auto add = db_.Prepare("INSERT OR IGNORE INTO ledger_replica_checkpoints("
                            "origin, tree_size, checkpoint, signature) "
                            "VALUES(?, ?, ?, ?)");
      for (const auto& signed_cp : fresh) {
        v1::Checkpoint parsed;
        parsed.ParseFromString(signed_cp.checkpoint());
        add->reset();
        add->bind(1, origin);
        add->bind(2, static_cast<int64_t>(parsed.tree_size()));
        BindBlob(*add, 3, signed_cp.checkpoint());
        BindBlob(*add, 4, signed_cp.signature());
        update.checkpoints += static_cast<uint64_t>(add->exec());
      }
      return OkStatus();
    });
    if (!stored.ok()) return stored;
    update.size = std::max<uint64_t>(held.size(), shown.size());
    update.verified_size = verified_size;
    return update;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "apply replica stream");
  }
}

StatusOr<std::optional<v1::ForkEvidence>> ReplicaStore::Check(
    const std::string& origin, const v1::SignedCheckpoint& checkpoint) {
  CN_ASSIGN_OR_RETURN(VerifyingKey key, OriginKey(origin));
  CN_RETURN_IF_ERROR(VerifyCheckpoint(key, checkpoint).status());
  CN_ASSIGN_OR_RETURN(auto held, HeldHashes(db_, origin));
  const std::vector<std::string> leaves = LeavesOf(held);
  CN_ASSIGN_OR_RETURN(auto seen, Checkpoints(origin));
  bool decided = false;
  for (const auto& old : seen) {
    auto evidence = DetectFork(key, origin, old, checkpoint, leaves);
    if (!evidence.ok()) continue;  // these leaves cannot decide this pair
    if (evidence->has_value()) return evidence;
    decided = true;
  }
  if (!decided) {
    return FailedPreconditionError(
        "the replica of " + origin + " cannot decide yet: no checkpoint it "
        "verified covers the same entries");
  }
  return std::optional<v1::ForkEvidence>();
}

Status ReplicaStore::StoreForkEvidence(const std::string& origin,
                                      const v1::ForkEvidence& evidence,
                                      int64_t now_ms) {
  return db_.Run([&]() -> Status {
    auto insert = db_.Prepare(
        "INSERT INTO ledger_forks(origin, detected_ms, evidence) "
        "VALUES(?, ?, ?)");
    insert->bind(1, origin);
    insert->bind(2, static_cast<int64_t>(now_ms));
    BindBlob(*insert, 3, evidence.SerializeAsString());
    insert->exec();
    return OkStatus();
  });
}

StatusOr<v1::Cosignature> ReplicaStore::Cosign(
    const std::string& origin, const v1::SignedCheckpoint& checkpoint,
    const SigningKey& key, const std::string& cosigner_id) {
  CN_ASSIGN_OR_RETURN(VerifyingKey origin_key, OriginKey(origin));
  CN_ASSIGN_OR_RETURN(v1::Checkpoint parsed,
                      VerifyCheckpoint(origin_key, checkpoint));
  CN_ASSIGN_OR_RETURN(auto held, HeldHashes(db_, origin));
  if (parsed.tree_size() > held.size()) {
    return FailedPreconditionError(
        "the replica of " + origin + " holds " + std::to_string(held.size()) +
        " entries; the checkpoint covers " +
        std::to_string(parsed.tree_size()));
  }
  if (!Matches(parsed, held, LeavesOf(held))) {
    return DataLossError("checkpoint of " + origin + " at " +
                         std::to_string(parsed.tree_size()) +
                         " contradicts the entries replicated");
  }
  return CosignCheckpoint(key, cosigner_id, checkpoint);
}

}  // namespace computenet::ledger
