// VerifyLedger: the offline audit. It trusts nothing in the file but the
// signatures: it replays every entry from the first and recomputes what the
// broker should have written, then compares the stored tables with that.
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "computenet/ledger/directory.h"
#include "computenet/ledger/ledger.h"
#include "computenet/ledger/usage_records.h"
#include "computenet/ledger/remote_usage.h"
#include "computenet/common/checkpoint.h"
#include "computenet/common/merkle.h"
#include "computenet/common/sha256.h"
#include "computenet/common/usage_record.h"

namespace computenet::ledger {
namespace {

using storage::BlobOf;
using storage::StatusFromSqlite;

__extension__ using Wide = __int128;

Status Violation(uint64_t sequence, const std::string& what) {
  return DataLossError("ledger entry " + std::to_string(sequence) + ": " +
                       what);
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// *into += delta unless that overflows (then false and *into is unchanged).
// Every sum the audit forms comes from the file, and a forger can write
// amounts near 2^63: two top-ups of INT64_MAX once overflowed the replayed
// balance (undefined behaviour) instead of failing the audit.
[[nodiscard]] bool AddChecked(int64_t* into, int64_t delta) {
  int64_t sum = 0;
  if (__builtin_add_overflow(*into, delta, &sum)) return false;
  *into = sum;
  return true;
}

struct AuditAccount {
  int64_t balance = 0;
  int64_t held = 0;
  std::optional<int64_t> limit;
  Wide available() const {
    return static_cast<Wide>(balance) - held + limit.value_or(0);
  }
};

struct AuditHold {
  std::string job_id;
  std::string account;
  std::string provider;
  std::string currency;
  int64_t amount = 0;
  int64_t remaining = 0;
  uint64_t max_card_seconds = 0;
  uint64_t billed = 0;
  std::optional<int64_t> last_end_ms;
  int64_t price = 0;
  uint32_t fee_bps = 0;
  bool open = true;
  bool closed_by_record = false;
  std::string remote_broker;  // a forwarded job's hold at its home broker
};

// One pass over the entries, keeping what the broker's tables should hold.
class Auditor {
 public:
  Auditor(storage::Database& db, Directory& directory,
          LedgerAuditReport* report)
      : db_(db), directory_(directory), usage_records_(db), report_(report) {}

  Status Run(const LedgerAuditOptions& options);

 private:
  Status LoadMeta(const LedgerAuditOptions& options);
  Status CheckEntry(uint64_t sequence, const v1::LedgerEntry& entry);
  Status CheckLegacyUsage(uint64_t sequence, const v1::LedgerEntry& entry);
  Status CheckUsage(uint64_t sequence, const v1::LedgerEntry& entry);
  Status CheckRemoteUsage(uint64_t sequence, const v1::LedgerEntry& entry);
  Status CheckHold(uint64_t sequence, const v1::LedgerEntry& entry);
  Status CheckVoid(uint64_t sequence, const v1::LedgerEntry& entry);
  Status CheckMove(uint64_t sequence, const v1::LedgerEntry& entry,
                   const std::string& key_prefix);
  Status CheckCreditLimit(uint64_t sequence, const v1::LedgerEntry& entry);
  // Applies the entry's postings and held changes, and refuses a change
  // that lowers an account's spendable funds below its limit.
  Status Apply(uint64_t sequence, const v1::LedgerEntry& entry,
               const std::map<std::string, int64_t>& held_changes);
  StatusOr<v1::UsageRecord> SignedRecord(uint64_t sequence,
                                         const v1::LedgerEntry& entry);
  Status CheckCheckpoints();
  Status CheckUsageRecords();
  Status CheckAccounts();
  Status CheckHolds();
  AuditAccount& AccountFor(const std::string& name);

  storage::Database& db_;
  Directory& directory_;
  UsageRecords usage_records_;
  LedgerAuditReport* report_;
  std::string broker_key_;
  uint64_t v1_entries_ = 0;
  // Every key each party holds or held (rotation keeps the old ones).
  std::map<std::string, std::vector<std::string>> provider_keys_;
  std::map<std::string, std::vector<std::string>> peer_keys_;  // pinned peers
  std::map<std::string, AuditAccount> accounts_;
  std::map<std::string, AuditHold> holds_;
  std::set<std::string> keys_;
  std::map<std::pair<std::string, std::string>, uint64_t> usage_postings_;
  std::vector<std::string> entry_hashes_;
  std::vector<std::string> leaf_hashes_;
};

AuditAccount& Auditor::AccountFor(const std::string& name) {
  auto it = accounts_.find(name);
  if (it != accounts_.end()) return it->second;
  AuditAccount account;
  if (!StartsWith(name, "operator:") && !StartsWith(name, "clearing:")) {
    account.limit = 0;
  }
  return accounts_.emplace(name, account).first->second;
}

Status Auditor::LoadMeta(const LedgerAuditOptions& options) {
  CN_ASSIGN_OR_RETURN(auto id, db_.GetMeta(kMetaBrokerId));
  CN_ASSIGN_OR_RETURN(auto key, db_.GetMeta(kMetaBrokerKey));
  CN_ASSIGN_OR_RETURN(auto v1, db_.GetMeta(kMetaV1Entries));
  report_->broker_id = id.value_or("");
  broker_key_ = key.value_or("");
  if (v1.has_value()) v1_entries_ = std::stoull(*v1);
  report_->v1_entries = v1_entries_;
  if (!options.expected_broker_key.empty() &&
      broker_key_ != options.expected_broker_key) {
    return FailedPreconditionError(
        "the file names broker key '" + broker_key_ +
        "', not the pinned key " + options.expected_broker_key);
  }
  CN_ASSIGN_OR_RETURN(provider_keys_, directory_.ProviderKeys());
  CN_ASSIGN_OR_RETURN(peer_keys_, directory_.PeerKeys());
  return OkStatus();
}

Status Auditor::Apply(uint64_t sequence, const v1::LedgerEntry& entry,
                      const std::map<std::string, int64_t>& held_changes) {
  std::map<std::string, std::pair<int64_t, int64_t>> effects;
  for (const auto& posting : entry.postings()) {
    if (!AddChecked(&effects[posting.account()].first, posting.amount())) {
      return Violation(sequence,
                       "postings to " + posting.account() + " overflow");
    }
  }
  for (const auto& [account, delta] : held_changes) {
    if (!AddChecked(&effects[account].second, delta)) {
      return Violation(sequence, "held change of " + account + " overflows");
    }
  }
  const bool legacy = sequence <= v1_entries_;
  for (const auto& [name, delta] : effects) {
    AuditAccount& account = AccountFor(name);
    if (!AddChecked(&account.balance, delta.first) ||
        !AddChecked(&account.held, delta.second)) {
      return Violation(
          sequence, "balance or held amount of account " + name + " overflows");
    }
    // Schema-1 entries predate limits: they are replayed, not judged.
    if (legacy || !account.limit.has_value()) continue;
    if (static_cast<Wide>(delta.first) - delta.second < 0 &&
        account.available() < 0) {
      return Violation(sequence,
                       "account " + name + " goes past its credit limit (" +
                           "balance " + std::to_string(account.balance) +
                           ", held " + std::to_string(account.held) +
                           ", limit " + std::to_string(*account.limit) + ")");
    }
  }
  return OkStatus();
}

StatusOr<v1::UsageRecord> Auditor::SignedRecord(uint64_t sequence,
                                                const v1::LedgerEntry& entry) {
  auto record = usage_records_.Find(entry.usage_provider(),
                                       entry.usage_record_id());
  if (!record.ok()) return record.status();
  if (!record->has_value()) {
    return Violation(sequence, "usage record " + entry.usage_record_id() +
                                   " it charges for is missing");
  }
  auto key_it = provider_keys_.find(entry.usage_provider());
  if (key_it == provider_keys_.end()) {
    return Violation(sequence, "provider " + entry.usage_provider() +
                                   " has no enrolled key");
  }
  StatusOr<v1::UsageRecord> verified =
      UnauthenticatedError("no signing key of the provider");
  for (const std::string& key : key_it->second) {
    verified = VerifyUsageRecord(key, (*record)->record, (*record)->signature);
    if (verified.ok()) break;
  }
  if (!verified.ok()) {
    return Violation(sequence,
                     "usage record signature: " + verified.status().message());
  }
  if (verified->job_id() != entry.job_id() ||
      verified->provider() != entry.usage_provider() ||
      entry.billed_card_seconds() > verified->card_seconds()) {
    return Violation(sequence, "charge does not match its usage record");
  }
  ++usage_postings_[{entry.usage_provider(), entry.usage_record_id()}];
  ++report_->usage_records;
  return *verified;
}

Status Auditor::CheckLegacyUsage(uint64_t sequence,
                                 const v1::LedgerEntry& entry) {
  if (entry.kind() != "usage") {
    return Violation(sequence, "unknown entry kind '" + entry.kind() + "'");
  }
  auto record = SignedRecord(sequence, entry);
  if (!record.ok()) return record.status();
  // Exactly: the job's consumer pays, the signing provider is paid.
  auto job = directory_.PayerOf(entry.job_id());
  if (!job.ok()) {
    return Violation(sequence, "job " + entry.job_id() + " is missing");
  }
  const std::string payer = ConsumerAccount(job->consumer);
  const std::string payee = ProviderAccount(entry.usage_provider());
  if (entry.postings_size() != 2 || entry.postings(0).account() != payer ||
      entry.postings(1).account() != payee ||
      entry.postings(0).amount() > 0 ||
      entry.postings(0).amount() == std::numeric_limits<int64_t>::min()) {
    return Violation(sequence, "postings are not " + payer + " -> " + payee);
  }
  const int64_t debit = -entry.postings(0).amount();
  auto expected = ChargeForCardSeconds(entry.billed_card_seconds(),
                                       entry.price_per_card_hour());
  if (!expected.ok() || *expected != debit) {
    return Violation(sequence, "amount " + std::to_string(debit) +
                                   " breaks the rounding rule");
  }
  if (!AddChecked(&report_->total_charged, debit)) {
    return Violation(sequence, "total charged overflows");
  }
  return Apply(sequence, entry, {});
}

Status Auditor::CheckUsage(uint64_t sequence, const v1::LedgerEntry& entry) {
  if (entry.hold_id().empty()) {
    return Violation(sequence, "usage charge without a hold");
  }
  auto hold_it = holds_.find(entry.hold_id());
  if (hold_it == holds_.end()) {
    return Violation(sequence, "usage charge against unknown hold " +
                                   entry.hold_id());
  }
  AuditHold& hold = hold_it->second;
  if (!hold.open) {
    return Violation(sequence, "usage charge against " + entry.hold_id() +
                                   ", already released");
  }
  if (hold.closed_by_record) {
    return Violation(sequence, "usage charge after the job's closing record");
  }
  if (!hold.remote_broker.empty()) {
    return Violation(sequence, "local usage charged against a hold for " +
                                   hold.remote_broker);
  }
  if (entry.idempotency_key() !=
      Ledger::UsageIdempotencyKey(entry.usage_provider(),
                                  entry.usage_record_id())) {
    return Violation(sequence, "idempotency key does not name its record");
  }
  if (entry.job_id() != hold.job_id ||
      entry.usage_provider() != hold.provider) {
    return Violation(sequence, "charge does not match its hold");
  }
  auto record = SignedRecord(sequence, entry);
  if (!record.ok()) return record.status();
  if (hold.last_end_ms.has_value() &&
      record->start_ms() != *hold.last_end_ms) {
    return Violation(sequence,
                     "usage record " + entry.usage_record_id() +
                         " is not contiguous with the job's previous record");
  }
  const uint64_t billed = std::min(record->card_seconds(),
                                   hold.max_card_seconds - hold.billed);
  if (entry.billed_card_seconds() != billed ||
      entry.cumulative_card_seconds() != hold.billed + billed) {
    return Violation(sequence, "billed card-seconds " +
                                   std::to_string(entry.billed_card_seconds()) +
                                   " should be " + std::to_string(billed));
  }
  if (entry.price_per_card_hour() != hold.price ||
      entry.fee_bps() != hold.fee_bps || entry.currency() != hold.currency) {
    return Violation(sequence, "price, fee share or currency differ from "
                               "its hold's");
  }
  auto charge = ChargeForInterval(hold.billed, billed, hold.price);
  if (!charge.ok()) return Violation(sequence, charge.status().message());
  auto fee = FeeFor(*charge, hold.fee_bps);
  if (!fee.ok()) return Violation(sequence, fee.status().message());
  const int expected_postings = hold.fee_bps > 0 ? 3 : 2;
  const std::string payee = ProviderAccount(hold.provider);
  const std::string fee_account = FeeAccount(report_->broker_id);
  if (entry.postings_size() != expected_postings ||
      entry.postings(0).account() != hold.account ||
      entry.postings(1).account() != payee ||
      (expected_postings == 3 &&
       (report_->broker_id.empty() ||
        entry.postings(2).account() != fee_account))) {
    return Violation(sequence, "postings are not " + hold.account + " -> " +
                                   payee +
                                   (expected_postings == 3
                                        ? " and " + fee_account
                                        : std::string()));
  }
  // Compared as a debit (charge >= 0, so -charge cannot overflow; the
  // posting's own negation could, for INT64_MIN).
  if (entry.postings(0).amount() != -*charge) {
    return Violation(sequence, "posting " +
                                   std::to_string(entry.postings(0).amount()) +
                                   " breaks the rounding rule (expected -" +
                                   std::to_string(*charge) + ")");
  }
  if (entry.postings(1).amount() != *charge - *fee ||
      (expected_postings == 3 && entry.postings(2).amount() != *fee)) {
    return Violation(sequence, "fee split breaks the rounding rule (fee " +
                                   std::to_string(*fee) + " of " +
                                   std::to_string(*charge) + ")");
  }
  if (*charge > hold.remaining) {
    return Violation(sequence, "charge exceeds what the hold still holds");
  }
  hold.remaining -= *charge;
  hold.billed += billed;
  hold.last_end_ms = record->end_ms();
  if (record->closes_job()) hold.closed_by_record = true;
  if (!AddChecked(&report_->total_charged, *charge)) {
    return Violation(sequence, "total charged overflows");
  }
  return Apply(sequence, entry, {{hold.account, -*charge}});
}

// The home side of a forwarded job: the peer's countersigned record is the
// evidence, checked with the peer's pinned key; the amount follows the
// cumulative rule and is drawn from the job's remote hold.
Status Auditor::CheckRemoteUsage(uint64_t sequence,
                                 const v1::LedgerEntry& entry) {
  auto hold_it = holds_.find(entry.hold_id());
  if (hold_it == holds_.end() || !hold_it->second.open ||
      hold_it->second.closed_by_record) {
    return Violation(sequence, "remote usage against hold '" +
                                   entry.hold_id() + "' that is not open");
  }
  AuditHold& hold = hold_it->second;
  if (hold.remote_broker.empty() ||
      hold.remote_broker != entry.remote_broker() ||
      entry.job_id() != hold.job_id) {
    return Violation(sequence, "remote usage does not match its hold");
  }
  if (entry.idempotency_key() != "remote-usage:" + entry.remote_broker() +
                                     ":" + entry.usage_record_id()) {
    return Violation(sequence, "idempotency key does not name its record");
  }
  auto key_it = peer_keys_.find(entry.remote_broker());
  if (key_it == peer_keys_.end()) {
    return Violation(sequence, "peer " + entry.remote_broker() +
                                   " has no pinned key");
  }
  v1::RemoteUsage evidence;
  if (!evidence.ParseFromString(entry.evidence())) {
    return Violation(sequence, "remote usage evidence does not parse");
  }
  StatusOr<v1::UsageRecord> record =
      UnauthenticatedError("no signing key of the peer");
  for (const std::string& key : key_it->second) {
    record = VerifyRemoteUsage(key, evidence);
    if (record.ok()) break;
  }
  if (!record.ok()) {
    return Violation(sequence,
                     "remote usage evidence: " + record.status().message());
  }
  const std::string payee = ClearingAccount(entry.remote_broker());
  if (entry.postings_size() != 2 ||
      entry.postings(0).account() != hold.account ||
      entry.postings(1).account() != payee) {
    return Violation(sequence, "postings are not " + hold.account + " -> " +
                                   payee);
  }
  const int64_t amount = entry.postings(1).amount();
  if (evidence.job_id() != entry.job_id() ||
      evidence.remote_broker() != entry.remote_broker() ||
      record->record_id() != entry.usage_record_id() ||
      evidence.amount() != amount ||
      evidence.billed_card_seconds() != entry.billed_card_seconds() ||
      evidence.cumulative_card_seconds() != entry.cumulative_card_seconds()) {
    return Violation(sequence, "charge does not match its evidence");
  }
  if (amount > hold.remaining) {
    return Violation(sequence, "charge exceeds what the hold still holds");
  }
  hold.remaining -= amount;
  hold.billed += entry.billed_card_seconds();
  if (record->closes_job()) hold.closed_by_record = true;
  if (!AddChecked(&report_->total_charged, amount)) {
    return Violation(sequence, "total charged overflows");
  }
  return Apply(sequence, entry, {{hold.account, -amount}});
}

Status Auditor::CheckHold(uint64_t sequence, const v1::LedgerEntry& entry) {
  if (entry.postings_size() != 0) {
    return Violation(sequence, "a hold moves no money yet");
  }
  if (entry.hold_id().empty() || entry.idempotency_key() != entry.hold_id() ||
      !StartsWith(entry.hold_id(), "hold:" + entry.job_id() + ":")) {
    return Violation(sequence, "hold id does not name its job");
  }
  if (holds_.count(entry.hold_id()) != 0) {
    return Violation(sequence, "hold " + entry.hold_id() + " opened twice");
  }
  for (const auto& [id, other] : holds_) {
    if (other.open && other.job_id == entry.job_id()) {
      return Violation(sequence, "second open hold for job " + entry.job_id());
    }
  }
  auto job = directory_.PayerOf(entry.job_id());
  if (!job.ok()) {
    return Violation(sequence, "job " + entry.job_id() + " is missing");
  }
  // A job a peer forwarded here is paid by that peer's clearing account;
  // the peer's own hold on its consumer bounds it.
  const std::string payer = job->home_broker.empty()
                                ? ConsumerAccount(job->consumer)
                                : ClearingAccount(job->home_broker);
  if (entry.account() != payer) {
    return Violation(sequence, "hold is not on " + payer);
  }
  if (!entry.remote_broker().empty() &&
      (entry.remote_broker() != entry.usage_provider() ||
       entry.fee_bps() != 0 || !job->home_broker.empty())) {
    return Violation(sequence, "malformed hold for a forwarded job");
  }
  auto expected =
      ChargeForCardSeconds(entry.max_card_seconds(), entry.price_per_card_hour());
  // A forwarded job's hold at home is the budget given to the peer.
  const bool amount_ok = entry.remote_broker().empty()
                             ? expected.ok() && *expected == entry.hold_amount()
                             : entry.hold_amount() > 0;
  if (!amount_ok ||
      entry.fee_bps() > 10'000 || !AccountKindOf(ProviderAccount(
                                        entry.usage_provider()))
                                        .ok()) {
    return Violation(sequence, "hold amount " +
                                   std::to_string(entry.hold_amount()) +
                                   " breaks the rounding rule");
  }
  AuditHold hold;
  hold.job_id = entry.job_id();
  hold.account = entry.account();
  hold.provider = entry.usage_provider();
  hold.currency = entry.currency();
  hold.amount = entry.hold_amount();
  hold.remaining = entry.hold_amount();
  hold.max_card_seconds = entry.max_card_seconds();
  hold.price = entry.price_per_card_hour();
  hold.fee_bps = entry.fee_bps();
  hold.remote_broker = entry.remote_broker();
  holds_[entry.hold_id()] = hold;
  return Apply(sequence, entry, {{entry.account(), entry.hold_amount()}});
}

Status Auditor::CheckVoid(uint64_t sequence, const v1::LedgerEntry& entry) {
  auto it = holds_.find(entry.hold_id());
  if (entry.postings_size() != 0 || it == holds_.end() || !it->second.open ||
      entry.idempotency_key() != "void:" + entry.hold_id()) {
    return Violation(sequence, "void of hold '" + entry.hold_id() +
                                   "' that is not open");
  }
  AuditHold& hold = it->second;
  if (entry.account() != hold.account || entry.job_id() != hold.job_id ||
      entry.hold_amount() != hold.remaining) {
    return Violation(sequence, "void releases " +
                                   std::to_string(entry.hold_amount()) +
                                   ", the hold has " +
                                   std::to_string(hold.remaining) + " left");
  }
  hold.open = false;
  const int64_t released = hold.remaining;
  hold.remaining = 0;
  return Apply(sequence, entry, {{hold.account, -released}});
}

Status Auditor::CheckMove(uint64_t sequence, const v1::LedgerEntry& entry,
                          const std::string& key_prefix) {
  if (!StartsWith(entry.idempotency_key(), key_prefix) ||
      entry.postings_size() != 2 || entry.postings(1).amount() <= 0 ||
      entry.postings(0).account() == entry.postings(1).account()) {
    return Violation(sequence, "malformed " + entry.kind());
  }
  if (entry.kind() == "topup" &&
      (entry.postings(0).account() != kTopUpAccount ||
       !StartsWith(entry.postings(1).account(), "consumer:"))) {
    return Violation(sequence, "a top-up goes from " +
                                   std::string(kTopUpAccount) +
                                   " to a consumer");
  }
  return Apply(sequence, entry, {});
}

Status Auditor::CheckCreditLimit(uint64_t sequence,
                                 const v1::LedgerEntry& entry) {
  auto kind = AccountKindOf(entry.account());
  if (entry.postings_size() != 0 || !kind.ok() || *kind == "operator" ||
      entry.credit_limit() < 0 ||
      !StartsWith(entry.idempotency_key(), "credit_limit:")) {
    return Violation(sequence, "malformed credit_limit");
  }
  AuditAccount& account = AccountFor(entry.account());
  const int64_t old_limit = account.limit.value_or(0);
  account.limit = entry.credit_limit();
  if (entry.credit_limit() < old_limit && account.available() < 0) {
    return Violation(sequence, "credit limit of " + entry.account() +
                                   " lowered below what it already uses");
  }
  return OkStatus();
}

Status Auditor::CheckEntry(uint64_t sequence, const v1::LedgerEntry& entry) {
  if (!keys_.insert(entry.idempotency_key()).second) {
    return Violation(sequence, "idempotency key '" + entry.idempotency_key() +
                                   "' posted twice");
  }
  if (sequence <= v1_entries_) return CheckLegacyUsage(sequence, entry);
  for (const auto& posting : entry.postings()) {
    if (!AccountKindOf(posting.account()).ok()) {
      return Violation(sequence, "posting to unknown account '" +
                                     posting.account() + "'");
    }
  }
  if (entry.kind() == "usage") return CheckUsage(sequence, entry);
  if (entry.kind() == "hold") return CheckHold(sequence, entry);
  if (entry.kind() == "remote_usage") return CheckRemoteUsage(sequence, entry);
  if (entry.kind() == "void") return CheckVoid(sequence, entry);
  if (entry.kind() == "topup") return CheckMove(sequence, entry, "topup:");
  if (entry.kind() == "transfer") {
    return CheckMove(sequence, entry, "transfer:");
  }
  if (entry.kind() == "credit_limit") return CheckCreditLimit(sequence, entry);
  return Violation(sequence, "unknown entry kind '" + entry.kind() + "'");
}

Status Auditor::CheckCheckpoints() {
  auto rows = db_.Prepare(
                         "SELECT tree_size, checkpoint, signature FROM "
                         "ledger_checkpoints ORDER BY tree_size");
  std::optional<VerifyingKey> key;
  std::optional<merkle::MerkleTree> tree;
  int64_t last_time = std::numeric_limits<int64_t>::min();
  std::map<uint64_t, v1::SignedCheckpoint> signed_checkpoints;
  while (rows->executeStep()) {
    const uint64_t size = static_cast<uint64_t>(rows->getColumn(0).getInt64());
    const std::string where = "checkpoint at " + std::to_string(size) + ": ";
    if (!key.has_value()) {
      auto parsed = VerifyingKey::FromHex(broker_key_);
      if (!parsed.ok()) {
        return DataLossError(where + "the file names no broker key to check "
                                     "checkpoint signatures with");
      }
      key = *parsed;
      tree.emplace(leaf_hashes_);
    }
    v1::SignedCheckpoint signed_cp;
    signed_cp.set_checkpoint(BlobOf(rows->getColumn(1)));
    signed_cp.set_signature(BlobOf(rows->getColumn(2)));
    auto checkpoint = VerifyCheckpoint(*key, signed_cp);
    if (!checkpoint.ok()) {
      return DataLossError(where + checkpoint.status().message());
    }
    if (checkpoint->tree_size() != size ||
        checkpoint->broker_id() != report_->broker_id) {
      return DataLossError(where + "checkpoint disagrees with its row");
    }
    if (size > leaf_hashes_.size()) {
      return DataLossError(where + "it covers " + std::to_string(size) +
                           " entries but the ledger has only " +
                           std::to_string(leaf_hashes_.size()) +
                           " (entries were removed)");
    }
    auto root = tree->RootAt(size);
    if (!root.ok() || *root != checkpoint->root_hash()) {
      return DataLossError(where +
                           "signed Merkle head does not match entries 1.." +
                           std::to_string(size) +
                           " (history was rewritten after it was signed)");
    }
    const std::string head =
        size == 0 ? std::string(32, '\0') : entry_hashes_[size - 1];
    if (checkpoint->head_hash() != head) {
      return DataLossError(where + "signed chain head does not match entry " +
                           std::to_string(size));
    }
    if (checkpoint->timestamp_ms() < last_time) {
      return DataLossError(where + "signed earlier than the checkpoint before");
    }
    last_time = checkpoint->timestamp_ms();
    signed_checkpoints[size] = signed_cp;
    ++report_->checkpoints;
    report_->checkpointed_entries = size;
  }
  auto cosignatures = db_.Prepare("SELECT tree_size, cosigner, cosignature FROM ledger_cosignatures");
  while (cosignatures->executeStep()) {
    const uint64_t size =
        static_cast<uint64_t>(cosignatures->getColumn(0).getInt64());
    const std::string where = "cosignature by " +
                              cosignatures->getColumn(1).getString() +
                              " of checkpoint at " + std::to_string(size) +
                              ": ";
    v1::Cosignature cosignature;
    auto it = signed_checkpoints.find(size);
    if (it == signed_checkpoints.end() ||
        !cosignature.ParseFromString(BlobOf(cosignatures->getColumn(2)))) {
      return DataLossError(where + "no such checkpoint, or unreadable");
    }
    auto cosigner = VerifyingKey::FromHex(cosignature.ed25519_public());
    if (!cosigner.ok()) return DataLossError(where + "bad key");
    Status verified = VerifyCosignature(*cosigner, it->second, cosignature);
    if (!verified.ok()) return DataLossError(where + verified.message());
    ++report_->cosignatures;
  }
  return OkStatus();
}

Status Auditor::CheckUsageRecords() {
  CN_ASSIGN_OR_RETURN(auto records, usage_records_.List());
  for (const auto& record : records) {
    uint64_t count = usage_postings_[{record.provider, record.record_id}];
    if (count != 1) {
      return DataLossError("usage record " + record.provider + "/" +
                           record.record_id + " is posted " +
                           std::to_string(count) + " times, not once");
    }
  }
  return OkStatus();
}

Status Auditor::CheckAccounts() {
  auto accounts = db_.Prepare("SELECT name, balance, held, credit_limit "
                             "FROM ledger_accounts");
  std::set<std::string> seen;
  while (accounts->executeStep()) {
    const std::string name = accounts->getColumn(0).getString();
    const AuditAccount& replayed = AccountFor(name);
    if (accounts->getColumn(1).getInt64() != replayed.balance) {
      return DataLossError("account " + name +
                           ": stored balance differs from its postings");
    }
    if (accounts->getColumn(2).getInt64() != replayed.held) {
      return DataLossError("account " + name +
                           ": stored held amount differs from its holds");
    }
    std::optional<int64_t> limit;
    if (!accounts->getColumn(3).isNull()) limit = accounts->getColumn(3).getInt64();
    if (limit != replayed.limit) {
      return DataLossError("account " + name +
                           ": stored credit limit differs from the ledger's");
    }
    seen.insert(name);
    ++report_->accounts;
  }
  for (const auto& [name, account] : accounts_) {
    if (seen.count(name) == 0 && (account.balance != 0 || account.held != 0)) {
      return DataLossError("account " + name +
                           " has postings but no account row");
    }
  }
  return OkStatus();
}

Status Auditor::CheckHolds() {
  auto rows = db_.Prepare("SELECT hold_id, job_id, account, remaining, "
                         "billed_card_seconds, open FROM ledger_holds");
  size_t count = 0;
  while (rows->executeStep()) {
    const std::string id = rows->getColumn(0).getString();
    auto it = holds_.find(id);
    if (it == holds_.end()) {
      return DataLossError("hold " + id + " has no ledger entry");
    }
    const AuditHold& hold = it->second;
    if (rows->getColumn(1).getString() != hold.job_id ||
        rows->getColumn(2).getString() != hold.account ||
        rows->getColumn(3).getInt64() != hold.remaining ||
        static_cast<uint64_t>(rows->getColumn(4).getInt64()) != hold.billed ||
        (rows->getColumn(5).getInt() != 0) != hold.open) {
      return DataLossError("hold " + id + ": stored state differs from the "
                                          "ledger's");
    }
    ++count;
    if (hold.open) ++report_->open_holds;
  }
  if (count != holds_.size()) {
    return DataLossError("holds table is missing holds the ledger opened");
  }
  report_->holds = count;
  return OkStatus();
}

Status Auditor::Run(const LedgerAuditOptions& options) {
  CN_RETURN_IF_ERROR(LoadMeta(options));
  std::string prev_hash(32, '\0');
  uint64_t expected_sequence = 1;
  auto entries = db_.Prepare(
                            "SELECT sequence, idempotency_key, entry, hash "
                            "FROM ledger_entries ORDER BY sequence");
  auto postings = db_.Prepare("SELECT account, amount FROM ledger_postings WHERE sequence=?");
  auto touches = db_.Prepare("SELECT account FROM ledger_entry_accounts WHERE sequence=?");
  while (entries->executeStep()) {
    const uint64_t sequence =
        static_cast<uint64_t>(entries->getColumn(0).getInt64());
    const std::string key = entries->getColumn(1).getString();
    const std::string bytes = BlobOf(entries->getColumn(2));
    const std::string hash = BlobOf(entries->getColumn(3));
    if (sequence != expected_sequence) {
      return Violation(sequence, "sequence gap: expected " +
                                     std::to_string(expected_sequence));
    }
    v1::LedgerEntry entry;
    if (!entry.ParseFromString(bytes)) {
      return Violation(sequence, "entry bytes do not parse");
    }
    if (Sha256(bytes) != hash) {
      return Violation(sequence, "stored hash is not SHA-256 of the entry");
    }
    if (entry.sequence() != sequence || entry.idempotency_key() != key) {
      return Violation(sequence, "entry disagrees with its row");
    }
    if (entry.prev_hash() != prev_hash) {
      return Violation(sequence,
                       "prev_hash does not match the previous entry's hash "
                       "(an entry was edited, removed or reordered)");
    }
    int64_t sum = 0;
    std::map<std::string, int64_t> entry_postings;
    std::set<std::string> entry_accounts;
    for (const auto& posting : entry.postings()) {
      if (__builtin_add_overflow(sum, posting.amount(), &sum)) {
        return Violation(sequence, "postings overflow");
      }
      if (!AddChecked(&entry_postings[posting.account()], posting.amount())) {
        return Violation(sequence, "postings to " + posting.account() +
                                       " overflow");
      }
      entry_accounts.insert(posting.account());
    }
    if (!entry.account().empty()) entry_accounts.insert(entry.account());
    if (sum != 0) {
      return Violation(sequence,
                       "postings sum to " + std::to_string(sum) + ", not 0");
    }
    postings->reset();
    postings->bind(1, static_cast<int64_t>(sequence));
    std::map<std::string, int64_t> stored_postings;
    while (postings->executeStep()) {
      stored_postings[postings->getColumn(0).getString()] +=
          postings->getColumn(1).getInt64();
    }
    if (stored_postings != entry_postings) {
      return Violation(sequence, "posting rows differ from the entry");
    }
    touches->reset();
    touches->bind(1, static_cast<int64_t>(sequence));
    std::set<std::string> stored_accounts;
    while (touches->executeStep()) {
      stored_accounts.insert(touches->getColumn(0).getString());
    }
    if (stored_accounts != entry_accounts) {
      return Violation(sequence, "statement index differs from the entry");
    }
    CN_RETURN_IF_ERROR(CheckEntry(sequence, entry));
    entry_hashes_.push_back(hash);
    leaf_hashes_.push_back(merkle::LeafHash(hash));
    prev_hash = hash;
    ++expected_sequence;
    ++report_->entries;
  }
  report_->head_hash_hex = HexEncode(prev_hash);
  CN_RETURN_IF_ERROR(CheckCheckpoints());
  CN_RETURN_IF_ERROR(CheckUsageRecords());
  CN_RETURN_IF_ERROR(CheckAccounts());
  return CheckHolds();
}

}  // namespace

StatusOr<LedgerAuditReport> VerifyLedger(storage::Database& db,
                                         Directory& directory,
                                         const LedgerAuditOptions& options) {
  LedgerAuditReport report;
  // One read transaction around the whole audit, so that on a file a broker
  // is writing (WAL) every table is read at the same snapshot. Without it a
  // live file audited with false DATA_LOSS 9 times in 10 ("usage record ...
  // is posted 0 times"): entries read before a commit, their records after.
  // The audit only reads, so a deferred BEGIN takes no write lock; inside a
  // caller's transaction that one is the snapshot.
  struct Snapshot {
    storage::Database& db;
    bool open = false;
    ~Snapshot() {
      if (open) (void)db.Exec("ROLLBACK");
    }
  } snapshot{db};
  if (!db.in_transaction()) {
    CN_RETURN_IF_ERROR(db.Exec("BEGIN DEFERRED"));
    snapshot.open = true;
  }
  try {
    Auditor auditor(db, directory, &report);
    CN_RETURN_IF_ERROR(auditor.Run(options));
    return report;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "verify ledger");
  } catch (const std::exception& error) {
    return DataLossError(std::string("verify ledger: ") + error.what());
  }
}

StatusOr<LedgerAuditReport> VerifyLedger(storage::Database& db,
                                         const LedgerAuditOptions& options) {
  auto directory = BrokerFileDirectory(db);
  return VerifyLedger(db, *directory, options);
}

}  // namespace computenet::ledger
