#include "computenet/ledger/checkpoints.h"

#include <algorithm>

#include "computenet/common/checkpoint.h"

namespace computenet::ledger {

using storage::BindBlob;
using storage::BlobOf;
using storage::StatusFromSqlite;
Checkpointer::Checkpointer(storage::Database& db, std::string broker_id,
                           SigningKey key, CheckpointPolicy policy)
    : db_(db),
      broker_id_(std::move(broker_id)),
      key_(std::move(key)),
      policy_(policy),
      head_hash_(32, '\0') {}

Status Checkpointer::CatchUp() {
  try {
    if (!loaded_) {
      auto latest = db_.Prepare("SELECT tree_size, created_ms FROM "
                               "ledger_checkpoints ORDER BY tree_size DESC "
                               "LIMIT 1");
      if (latest->executeStep()) {
        checkpointed_size_ =
            static_cast<uint64_t>(latest->getColumn(0).getInt64());
        checkpointed_ms_ = latest->getColumn(1).getInt64();
      }
      loaded_ = true;
    }
    // Runs on every broker tick: a cached statement, usually no rows.
    auto entries = db_.Prepare(
        "SELECT sequence, hash FROM ledger_entries WHERE sequence > ? "
        "ORDER BY sequence");
    entries->bind(1, static_cast<int64_t>(range_.size()));
    while (entries->executeStep()) {
      const uint64_t sequence =
          static_cast<uint64_t>(entries->getColumn(0).getInt64());
      if (sequence != range_.size() + 1) {
        return DataLossError("ledger entry " + std::to_string(sequence) +
                             " follows " + std::to_string(range_.size()) +
                             ": the sequence has a gap");
      }
      head_hash_ = BlobOf(entries->getColumn(1));
      range_.Append(merkle::LeafHash(head_hash_));
    }
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "checkpoint");
  }
}

StatusOr<std::optional<v1::SignedCheckpoint>> Checkpointer::MaybeCheckpoint(
    int64_t now_ms) {
  CN_RETURN_IF_ERROR(CatchUp());
  const uint64_t uncovered = range_.size() - checkpointed_size_;
  if (uncovered == 0) return std::optional<v1::SignedCheckpoint>();
  const bool by_count =
      policy_.every_entries > 0 && uncovered >= policy_.every_entries;
  const bool by_time =
      policy_.every_ms > 0 && now_ms - checkpointed_ms_ >= policy_.every_ms;
  if (!by_count && !by_time) return std::optional<v1::SignedCheckpoint>();
  return CheckpointNow(now_ms);
}

StatusOr<std::optional<v1::SignedCheckpoint>> Checkpointer::CheckpointNow(
    int64_t now_ms) {
  CN_RETURN_IF_ERROR(CatchUp());
  if (range_.size() == checkpointed_size_) {
    return std::optional<v1::SignedCheckpoint>();
  }
  v1::Checkpoint checkpoint;
  checkpoint.set_broker_id(broker_id_);
  checkpoint.set_tree_size(range_.size());
  checkpoint.set_root_hash(range_.Root());
  checkpoint.set_head_hash(head_hash_);
  // Checkpoint times never go backwards, even if the clock does.
  const int64_t timestamp = std::max(now_ms, checkpointed_ms_);
  checkpoint.set_timestamp_ms(timestamp);
  CN_ASSIGN_OR_RETURN(v1::SignedCheckpoint signed_cp,
                      SignCheckpoint(key_, checkpoint));
  try {
    auto insert = db_.Prepare("INSERT INTO ledger_checkpoints(tree_size, "
                             "checkpoint, signature, created_ms) "
                             "VALUES(?, ?, ?, ?)");
    insert->bind(1, static_cast<int64_t>(range_.size()));
    BindBlob(*insert, 2, signed_cp.checkpoint());
    BindBlob(*insert, 3, signed_cp.signature());
    insert->bind(4, static_cast<int64_t>(timestamp));
    insert->exec();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "store checkpoint");
  }
  checkpointed_size_ = range_.size();
  checkpointed_ms_ = timestamp;
  return std::optional<v1::SignedCheckpoint>(std::move(signed_cp));
}

StatusOr<std::vector<v1::SignedCheckpoint>> ListCheckpoints(storage::Database& db) {
  try {
    std::vector<v1::SignedCheckpoint> out;
    std::vector<uint64_t> sizes;
    auto rows = db.Prepare("SELECT tree_size, checkpoint, signature FROM "
                           "ledger_checkpoints ORDER BY tree_size");
    while (rows->executeStep()) {
      sizes.push_back(static_cast<uint64_t>(rows->getColumn(0).getInt64()));
      v1::SignedCheckpoint signed_cp;
      signed_cp.set_checkpoint(BlobOf(rows->getColumn(1)));
      signed_cp.set_signature(BlobOf(rows->getColumn(2)));
      out.push_back(std::move(signed_cp));
    }
    auto cosignatures = db.Prepare("SELECT cosignature FROM ledger_cosignatures WHERE tree_size=? "
        "ORDER BY cosigner");
    for (size_t i = 0; i < out.size(); ++i) {
      cosignatures->reset();
      cosignatures->bind(1, static_cast<int64_t>(sizes[i]));
      while (cosignatures->executeStep()) {
        if (!out[i].add_cosignatures()->ParseFromString(
                BlobOf(cosignatures->getColumn(0)))) {
          return DataLossError("a stored cosignature does not parse");
        }
      }
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "list checkpoints");
  }
}

StatusOr<std::optional<v1::SignedCheckpoint>> LatestCheckpoint(storage::Database& db) {
  CN_ASSIGN_OR_RETURN(auto all, ListCheckpoints(db));
  if (all.empty()) return std::optional<v1::SignedCheckpoint>();
  return std::optional<v1::SignedCheckpoint>(std::move(all.back()));
}

StatusOr<std::vector<std::string>> LedgerLeafHashes(storage::Database& db,
                                                    uint64_t count) {
  try {
    std::vector<std::string> out;
    out.reserve(count);
    auto rows = db.Prepare("SELECT sequence, hash FROM ledger_entries "
                           "WHERE sequence <= ? ORDER BY sequence");
    rows->bind(1, static_cast<int64_t>(count));
    while (rows->executeStep()) {
      if (static_cast<uint64_t>(rows->getColumn(0).getInt64()) !=
          out.size() + 1) {
        return DataLossError("ledger sequence has a gap before " +
                             std::to_string(rows->getColumn(0).getInt64()));
      }
      out.push_back(merkle::LeafHash(BlobOf(rows->getColumn(1))));
    }
    if (out.size() != count) {
      return OutOfRangeError("the ledger has " + std::to_string(out.size()) +
                             " entries, not " + std::to_string(count));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "leaf hashes");
  }
}

namespace {

StatusOr<v1::Checkpoint> ParseCheckpoint(const v1::SignedCheckpoint& signed_cp) {
  v1::Checkpoint checkpoint;
  if (!checkpoint.ParseFromString(signed_cp.checkpoint())) {
    return DataLossError("stored checkpoint does not parse");
  }
  return checkpoint;
}

StatusOr<std::optional<std::string>> EntryBytes(storage::Database& db,
                                                uint64_t sequence) {
  auto query = db.Prepare("SELECT entry FROM ledger_entries WHERE sequence=?");
  query->bind(1, static_cast<int64_t>(sequence));
  if (!query->executeStep()) return std::optional<std::string>();
  return std::optional<std::string>(BlobOf(query->getColumn(0)));
}

void FillInclusion(uint64_t sequence, uint64_t tree_size,
                   const std::vector<std::string>& path,
                   v1::InclusionProof* inclusion) {
  inclusion->set_leaf_index(sequence - 1);
  inclusion->set_tree_size(tree_size);
  for (const auto& hash : path) inclusion->add_hashes(hash);
}

}  // namespace

StatusOr<v1::EntryProof> ProveEntry(storage::Database& db, uint64_t sequence) {
  try {
    CN_ASSIGN_OR_RETURN(auto entry, EntryBytes(db, sequence));
    if (!entry.has_value() || sequence == 0) {
      return NotFoundError("no ledger entry " + std::to_string(sequence));
    }
    CN_ASSIGN_OR_RETURN(auto latest, LatestCheckpoint(db));
    if (!latest.has_value()) {
      return FailedPreconditionError("no signed checkpoint yet");
    }
    CN_ASSIGN_OR_RETURN(v1::Checkpoint checkpoint, ParseCheckpoint(*latest));
    if (checkpoint.tree_size() < sequence) {
      return FailedPreconditionError(
          "no signed checkpoint covers entry " + std::to_string(sequence) +
          " yet (the latest covers " +
          std::to_string(checkpoint.tree_size()) +
          "); the broker signs one every few entries or seconds");
    }
    CN_ASSIGN_OR_RETURN(auto leaves,
                        LedgerLeafHashes(db, checkpoint.tree_size()));
    merkle::MerkleTree tree(std::move(leaves));
    CN_ASSIGN_OR_RETURN(auto path,
                        tree.InclusionProof(sequence - 1, checkpoint.tree_size()));
    v1::EntryProof proof;
    proof.set_entry(*entry);
    FillInclusion(sequence, checkpoint.tree_size(), path,
                  proof.mutable_inclusion());
    *proof.mutable_checkpoint() = std::move(*latest);
    return proof;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "prove entry");
  }
}

Status AddCosignature(storage::Database& db, uint64_t tree_size,
                      const v1::Cosignature& cosignature,
                      const VerifyingKey& cosigner_key) {
  try {
    auto query = db.Prepare("SELECT checkpoint, signature FROM "
                            "ledger_checkpoints WHERE tree_size=?");
    query->bind(1, static_cast<int64_t>(tree_size));
    if (!query->executeStep()) {
      return NotFoundError("no checkpoint at " + std::to_string(tree_size));
    }
    v1::SignedCheckpoint signed_cp;
    signed_cp.set_checkpoint(BlobOf(query->getColumn(0)));
    signed_cp.set_signature(BlobOf(query->getColumn(1)));
    CN_RETURN_IF_ERROR(VerifyCosignature(cosigner_key, signed_cp, cosignature));
    auto insert = db.Prepare("INSERT OR REPLACE INTO ledger_cosignatures("
                             "tree_size, cosigner, cosignature) VALUES(?, ?, ?)");
    insert->bind(1, static_cast<int64_t>(tree_size));
    insert->bind(2, cosignature.broker_id());
    BindBlob(*insert, 3, cosignature.SerializeAsString());
    insert->exec();
    return OkStatus();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "add cosignature");
  }
}

StatusOr<v1::GetStatementReply> BuildStatement(storage::Database& db,
                                               const StatementQuery& query) {
  v1::GetStatementReply reply;
  reply.set_account(query.account);
  try {
    CN_ASSIGN_OR_RETURN(auto latest, LatestCheckpoint(db));
    if (!latest.has_value()) return reply;  // nothing signed, nothing to show
    CN_ASSIGN_OR_RETURN(v1::Checkpoint checkpoint, ParseCheckpoint(*latest));
    reply.set_broker_id(checkpoint.broker_id());
    *reply.mutable_checkpoint() = *latest;
    reply.set_last_sequence(query.after_sequence);
    auto rows = db.Prepare("SELECT a.sequence, e.entry FROM "
                           "ledger_entry_accounts a JOIN ledger_entries e "
                           "ON e.sequence = a.sequence WHERE a.account=? AND "
                           "a.sequence > ? AND a.sequence <= ? "
                           "ORDER BY a.sequence");
    rows->bind(1, query.account);
    rows->bind(2, static_cast<int64_t>(query.after_sequence));
    rows->bind(3, static_cast<int64_t>(checkpoint.tree_size()));
    std::optional<merkle::MerkleTree> tree;  // built on the first line
    size_t bytes = 0;
    const uint32_t limit = query.limit == 0 ? 1000 : query.limit;
    while (rows->executeStep()) {
      const uint64_t sequence =
          static_cast<uint64_t>(rows->getColumn(0).getInt64());
      std::string entry_bytes = BlobOf(rows->getColumn(1));
      v1::LedgerEntry entry;
      if (!entry.ParseFromString(entry_bytes)) {
        return DataLossError("ledger entry " + std::to_string(sequence) +
                             " does not parse");
      }
      if (entry.created_ms() < query.from_ms ||
          (query.to_ms != 0 && entry.created_ms() >= query.to_ms)) {
        continue;
      }
      if (static_cast<uint32_t>(reply.lines_size()) >= limit ||
          bytes + entry_bytes.size() > query.max_bytes) {
        reply.set_truncated(true);
        break;
      }
      if (!tree.has_value()) {
        CN_ASSIGN_OR_RETURN(auto leaves,
                            LedgerLeafHashes(db, checkpoint.tree_size()));
        tree.emplace(std::move(leaves));
      }
      CN_ASSIGN_OR_RETURN(auto path, tree->InclusionProof(
                                         sequence - 1, checkpoint.tree_size()));
      auto* line = reply.add_lines();
      bytes += entry_bytes.size() + path.size() * 34 + 16;
      line->set_entry(std::move(entry_bytes));
      FillInclusion(sequence, checkpoint.tree_size(), path,
                    line->mutable_inclusion());
      reply.set_last_sequence(sequence);
    }
    return reply;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "statement");
  }
}

}  // namespace computenet::ledger
