// Fuzzes the offline audit (`computenet ledger verify`, ledger/audit.cc
// VerifyLedger) on what it decodes from a ledger file: the entries, the
// usage records and checkpoints they are checked against, and the meta
// values. A forger who can write the file writes any rows; the harness
// writes them as fuzz/ledger_inputs.h describes (chaining entries and
// signing records and checkpoints as the broker would, so that the audit's
// rules past the hash chain and the signatures see every input), into an
// in-memory file, and audits it. SQLite itself is not the target.
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "ledger_inputs.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

namespace {

using namespace computenet;

void Bind(SQLite::Statement& statement, int index, const std::string& blob) {
  statement.bind(index, blob.data(), static_cast<int>(blob.size()));
}

int64_t Wrapped(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) +
                              static_cast<uint64_t>(b));
}

// Writes the rows; SQLite errors (a duplicate key, ...) drop the input.
Status WriteFile(storage::Database& db, std::string_view input) {
  return db.RunInTransaction([&]() -> Status {
    std::string prev_hash(32, '\0');
    uint64_t sequence = 0;
    std::map<std::string, int64_t> balances;
    for (const std::string& segment : fuzz::Split(input, fuzz::kSegment)) {
      if (segment.empty()) continue;
      const char tag = segment[0];
      const std::string bytes = segment.substr(1);
      if (tag == 'E' || tag == 'R') {
        std::string stored = bytes;
        v1::LedgerEntry entry;
        const bool parsed = entry.ParseFromString(bytes);
        ++sequence;
        if (tag == 'E' && parsed) {
          entry.set_sequence(sequence);
          entry.set_prev_hash(prev_hash);
          stored = entry.SerializeAsString();
        }
        const std::string hash = Sha256(stored);
        auto insert = db.PrepareOnce(
            "INSERT INTO ledger_entries(sequence, idempotency_key, entry, "
            "hash) "
            "VALUES(?, ?, ?, ?)");
        insert->bind(1, static_cast<int64_t>(sequence));
        insert->bind(2, parsed ? entry.idempotency_key()
                               : "raw:" + std::to_string(sequence));
        Bind(*insert, 3, stored);
        Bind(*insert, 4, hash);
        insert->exec();
        prev_hash = hash;
        if (!parsed) continue;
        // Sums wrap, as a forger's rows may: the audit must cope.
        std::map<std::string, int64_t> postings;
        for (const auto& posting : entry.postings()) {
          int64_t& sum = postings[posting.account()];
          sum = Wrapped(sum, posting.amount());
        }
        std::set<std::string> touched;
        for (const auto& [account, amount] : postings) {
          auto row = db.PrepareOnce(
              "INSERT INTO ledger_postings(sequence, account, amount) "
              "VALUES(?, ?, ?)");
          row->bind(1, static_cast<int64_t>(sequence));
          row->bind(2, account);
          row->bind(3, amount);
          row->exec();
          touched.insert(account);
          int64_t& balance = balances[account];
          balance = Wrapped(balance, amount);
        }
        if (!entry.account().empty()) touched.insert(entry.account());
        for (const auto& account : touched) {
          auto row = db.PrepareOnce(
              "INSERT INTO ledger_entry_accounts(account, sequence) "
              "VALUES(?, ?)");
          row->bind(1, account);
          row->bind(2, static_cast<int64_t>(sequence));
          row->exec();
        }
      } else if (tag == 'C') {
        v1::Checkpoint checkpoint;
        if (!checkpoint.ParseFromString(bytes)) continue;
        auto signature =
            fuzz::BrokerKey().Sign(DomainSeparated(kCheckpointDomain, bytes));
        if (!signature.ok()) __builtin_trap();
        auto row = db.PrepareOnce(
            "INSERT INTO ledger_checkpoints(tree_size, checkpoint, signature, "
            "created_ms) VALUES(?, ?, ?, 0)");
        row->bind(1, static_cast<int64_t>(checkpoint.tree_size()));
        Bind(*row, 2, bytes);
        Bind(*row, 3, *signature);
        row->exec();
      } else if (tag == 'U') {
        v1::UsageRecord record;
        if (!record.ParseFromString(bytes)) continue;
        auto signature = fuzz::ProviderKey().Sign(
            DomainSeparated(kUsageRecordDomain, bytes));
        if (!signature.ok()) __builtin_trap();
        ledger::UsageRecords records(db);
        CN_RETURN_IF_ERROR(records.Insert(
            ledger::StoredUsageRecord{record.provider(), record.record_id(),
                                      record.job_id(), bytes, *signature, 1},
            0));
      } else if (tag == 'V') {
        CN_RETURN_IF_ERROR(db.SetMeta(ledger::kMetaV1Entries, bytes));
      }
    }
    // Account rows as the postings leave them (holds and limits are the
    // audit's to find wrong).
    for (const auto& [account, balance] : balances) {
      auto row = db.PrepareOnce(
          "INSERT INTO ledger_accounts(name, kind, balance, created_ms) "
          "VALUES(?, 'fuzz', ?, 0)");
      row->bind(1, account);
      row->bind(2, balance);
      row->exec();
    }
    return OkStatus();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // One file, its schema made once; each input's rows are written and
  // audited inside a transaction that is always rolled back.
  static storage::Database* db = fuzz::NewLedgerFile().release();
  fuzz::FuzzDirectory directory;
  ledger::LedgerAuditOptions options;
  options.expected_broker_key = fuzz::BrokerKey().verifying_key().hex();
  Status undone = db->RunInTransaction([&]() -> Status {
    Status written;
    try {
      written = WriteFile(*db, input);
    } catch (const std::exception&) {
      written = InvalidArgumentError("rows SQLite refused");
    }
    // Rows SQLite refused (duplicate keys) are no audit input.
    if (written.ok()) (void)ledger::VerifyLedger(*db, directory, options);
    return AbortedError("rolled back");
  });
  if (undone.code() != StatusCode::kAborted) __builtin_trap();
  return 0;
}
