// Ledger: double-entry, hash-chained accounting of what consumers owe
// providers, and its offline audit.
//
// Each transaction is a v1::LedgerEntry whose postings sum to zero, stored as
// its serialized bytes; entry N names SHA-256(entry N-1) in prev_hash. Money
// is integer minor units; metering is integer card-seconds.
//
// Rounding rule (also in docs/protocol.md): a usage record's charge is
//   (billed_card_seconds * price_per_card_hour + 1800) / 3600
// in integer arithmetic: exact card-seconds times the per-card-hour price,
// rounded half up to the minor unit.
//
// Thread safety: a Ledger works on its Store's connection, from that Store's
// thread. VerifyLedger opens nothing and only reads.
#ifndef COMPUTENET_BROKER_LEDGER_H_
#define COMPUTENET_BROKER_LEDGER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "computenet/broker/store.h"
#include "computenet/common/status.h"
#include "computenet/v1/ledger.pb.h"

namespace computenet::broker {

// The rounding rule above. OUT_OF_RANGE if the product would overflow, or a
// negative price is given.
StatusOr<int64_t> ChargeForCardSeconds(uint64_t card_seconds,
                                       int64_t price_per_card_hour);

std::string ConsumerAccount(const std::string& consumer);
std::string ProviderAccount(const std::string& provider);
// What a peer broker is owed (or owes): one account per peer.
std::string ClearingAccount(const std::string& peer_broker);

struct UsageCharge {
  std::string job_id;
  std::string consumer;
  std::string provider;
  std::string record_id;
  std::string currency;
  uint64_t billed_card_seconds = 0;
  int64_t price_per_card_hour = 0;
  // For a job forwarded here by a peer: that peer's id. Its clearing
  // account pays instead of a local consumer.
  std::string home_broker;
};

// What a home broker posts when a peer reports countersigned usage for a
// job it forwarded there: its consumer pays the peer's clearing account.
struct RemoteCharge {
  std::string job_id;
  std::string consumer;
  std::string remote_broker;
  std::string record_id;
  std::string currency;
  uint64_t billed_card_seconds = 0;
  int64_t price_per_card_hour = 0;
  std::string evidence;  // serialized v1::RemoteUsage with its signature
};

struct PostedEntry {
  v1::LedgerEntry entry;
  int64_t amount = 0;      // what the consumer paid
  bool duplicate = false;  // the idempotency key was already posted
};

struct AccountBalance {
  std::string account;
  std::string kind;
  int64_t balance = 0;
};

class Ledger {
 public:
  explicit Ledger(Store& store) : store_(store) {}

  // Posts consumer -> provider for one usage record, idempotent on
  // (provider, record id). Call inside the caller's transaction so the
  // record and its charge commit together. OUT_OF_RANGE on overflow.
  StatusOr<PostedEntry> PostUsage(const UsageCharge& charge, int64_t now_ms);
  // Posts consumer -> clearing:<remote broker>, idempotent on (remote
  // broker, record id). Call inside the caller's transaction.
  StatusOr<PostedEntry> PostRemoteUsage(const RemoteCharge& charge,
                                        int64_t now_ms);

  // 0 for an account that never had a posting.
  StatusOr<int64_t> Balance(const std::string& account);
  StatusOr<std::vector<AccountBalance>> Balances();
  StatusOr<std::vector<v1::LedgerEntry>> Entries();

  static std::string UsageIdempotencyKey(const std::string& provider,
                                         const std::string& record_id);

 private:
  Status EnsureAccount(const std::string& account, const std::string& kind,
                       int64_t now_ms);
  // Appends entry (sequence and prev_hash filled in here) with its postings
  // and balance updates; returns the entry as stored.
  StatusOr<PostedEntry> Append(v1::LedgerEntry entry, int64_t amount,
                               const std::string& payer_kind,
                               const std::string& payee_kind, int64_t now_ms);
  // The entry already posted under key, if any.
  StatusOr<std::optional<PostedEntry>> Existing(const std::string& key);
  Store& store_;
};

struct LedgerAuditReport {
  uint64_t entries = 0;
  uint64_t usage_records = 0;
  uint64_t accounts = 0;
  int64_t total_charged = 0;  // sum of consumer debits, minor units
  std::string head_hash_hex;  // hash of the last entry
};

// Checks, in order, and returns DATA_LOSS naming the first violation:
// chain (sequence, prev_hash, hash), each entry balances, stored postings
// match the entry, each usage entry's record exists and its signature
// verifies under the provider's enrolled key and its amount follows the
// rounding rule, every usage record posted exactly once, stored balances
// equal the sum of postings.
StatusOr<LedgerAuditReport> VerifyLedger(Store& store);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_LEDGER_H_
