// What the ledger harnesses and fuzz/make_corpus share: the parties a
// fuzzed ledger knows (a Directory, as the broker file's enrolments and job
// rows would say), and the layout of a fuzzed ledger file.
//
// A ledger input is segments separated by kSegment; each segment's first
// byte says what the rest is:
//   'E' a LedgerEntry's bytes; stored as the next entry with its sequence
//       and prev_hash set as the broker sets them (so the audit's checks
//       past the hash chain see it)
//   'R' the bytes of an entry stored as they are, as the next sequence
//   'C' a Checkpoint's bytes, stored signed by the broker's key
//   'U' a UsageRecord's bytes, stored signed by site-a's key
//   'V' the meta value ledger_v1_entries (decimal text)
// The broker "hub" (kBrokerPem) owns the file; site-a (kProviderPem) is the
// enrolled provider and hub-east (the same key) the pinned peer.
//
// Thread safety: one thread.
#ifndef COMPUTENET_FUZZ_LEDGER_INPUTS_H_
#define COMPUTENET_FUZZ_LEDGER_INPUTS_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "computenet/common/checkpoint.h"
#include "computenet/common/sha256.h"
#include "computenet/common/usage_record.h"
#include "computenet/ledger/directory.h"
#include "computenet/ledger/ledger.h"
#include "computenet/ledger/schema.h"
#include "computenet/ledger/usage_records.h"
#include "computenet/storage/database.h"
#include "fuzz_support.h"

namespace computenet::fuzz {

inline constexpr char kSegment[] = "\n@@@\n";

class FuzzDirectory final : public ledger::Directory {
 public:
  StatusOr<bool> IsConsumerEnrolled(const std::string& consumer) override {
    return consumer == "alice" || consumer == "bob";
  }
  // Every key a party holds or held (rotation), as the broker file's.
  StatusOr<std::map<std::string, std::vector<std::string>>> ProviderKeys()
      override {
    return std::map<std::string, std::vector<std::string>>{
        {"site-a", {ProviderKey().verifying_key().hex()}}};
  }
  StatusOr<std::map<std::string, std::vector<std::string>>> PeerKeys()
      override {
    return std::map<std::string, std::vector<std::string>>{
        {"hub-east", {ProviderKey().verifying_key().hex()}}};
  }
  // Jobs "hub-east-..." were forwarded here by hub-east for its user; every
  // other job is alice's ("...-bob-..." bob's).
  StatusOr<ledger::JobPayer> PayerOf(const std::string& job_id) override {
    if (job_id.empty()) return NotFoundError("no job");
    if (job_id.rfind("hub-east-", 0) == 0) {
      return ledger::JobPayer{"carol", "hub-east"};
    }
    if (job_id.find("-bob-") != std::string::npos) {
      return ledger::JobPayer{"bob", ""};
    }
    return ledger::JobPayer{"alice", ""};
  }
};

// A fresh in-memory ledger file of broker "hub".
inline std::unique_ptr<storage::Database> NewLedgerFile() {
  storage::DatabaseOptions options;
  options.durability = storage::Durability::kOff;
  auto db = storage::Database::Open(":memory:", options);
  if (!db.ok()) __builtin_trap();
  if (!ledger::MigrateSchema(**db).ok() ||
      !ledger::BindLedgerToBroker(**db, "hub",
                                  BrokerKey().verifying_key().hex())
           .ok()) {
    __builtin_trap();
  }
  return std::move(*db);
}

}  // namespace computenet::fuzz

#endif  // COMPUTENET_FUZZ_LEDGER_INPUTS_H_
