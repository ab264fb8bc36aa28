#include "computenet/ledger/ledger.h"

#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>

#include "computenet/common/identity.h"
#include "computenet/common/sha256.h"

namespace computenet::ledger {

using storage::BindBlob;
using storage::BlobOf;
using storage::StatusFromSqlite;
namespace {

__extension__ using Wide = __int128;
__extension__ using UWide = unsigned __int128;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

const std::string& ZeroHash() {
  static const std::string kZero(32, '\0');
  return kZero;
}

std::string Minor(int64_t amount) { return std::to_string(amount); }

constexpr char kHoldColumns[] =
    "SELECT hold_id, job_id, account, provider, currency, amount, remaining, "
    "max_card_seconds, billed_card_seconds, last_end_ms, price_per_card_hour, "
    "fee_bps, open, remote_broker FROM ledger_holds ";

Hold HoldFromRow(SQLite::Statement& query) {
  Hold hold;
  hold.hold_id = query.getColumn(0).getString();
  hold.job_id = query.getColumn(1).getString();
  hold.account = query.getColumn(2).getString();
  hold.provider = query.getColumn(3).getString();
  hold.currency = query.getColumn(4).getString();
  hold.amount = query.getColumn(5).getInt64();
  hold.remaining = query.getColumn(6).getInt64();
  hold.max_card_seconds = static_cast<uint64_t>(query.getColumn(7).getInt64());
  hold.billed_card_seconds =
      static_cast<uint64_t>(query.getColumn(8).getInt64());
  if (!query.getColumn(9).isNull()) {
    hold.last_end_ms = query.getColumn(9).getInt64();
  }
  hold.price_per_card_hour = query.getColumn(10).getInt64();
  hold.fee_bps = static_cast<uint32_t>(query.getColumn(11).getInt64());
  hold.open = query.getColumn(12).getInt() != 0;
  hold.remote_broker = query.getColumn(13).getString();
  return hold;
}

StatusOr<std::optional<Hold>> QueryHold(storage::Database& db, const std::string& sql,
                                        const std::string& key) {
  try {
    auto query = db.Prepare(std::string(kHoldColumns) + sql);
    query->bind(1, key);
    if (!query->executeStep()) return std::optional<Hold>();
    return std::optional<Hold>(HoldFromRow(*query));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find hold");
  }
}

std::string DescribeFunds(const AccountBalance& account) {
  return account.account + " may spend " + Minor(account.available()) +
         " (balance " + Minor(account.balance) + ", held " +
         Minor(account.held) + ", credit limit " +
         Minor(account.credit_limit.value_or(0)) + ")";
}

}  // namespace

// --- rules ------------------------------------------------------------------

StatusOr<int64_t> ChargeForCardSeconds(uint64_t card_seconds,
                                       int64_t price_per_card_hour) {
  if (price_per_card_hour < 0) {
    return OutOfRangeError("negative price");
  }
  // 128-bit intermediate: the product may exceed 64 bits where the charge
  // itself does not.
  const UWide charge =
      (static_cast<UWide>(card_seconds) * static_cast<UWide>(price_per_card_hour) +
       1800) /
      3600;
  if (charge > static_cast<UWide>(kInt64Max)) {
    return OutOfRangeError("charge overflows: " + std::to_string(card_seconds) +
                           " card-seconds at " +
                           std::to_string(price_per_card_hour));
  }
  return static_cast<int64_t>(charge);
}

StatusOr<int64_t> ChargeForInterval(uint64_t billed_before, uint64_t billed,
                                    int64_t price_per_card_hour) {
  if (billed > std::numeric_limits<uint64_t>::max() - billed_before) {
    return OutOfRangeError("billed card-seconds overflow");
  }
  CN_ASSIGN_OR_RETURN(int64_t through,
                      ChargeForCardSeconds(billed_before + billed,
                                           price_per_card_hour));
  CN_ASSIGN_OR_RETURN(int64_t before, ChargeForCardSeconds(
                                          billed_before, price_per_card_hour));
  // charge() never decreases as card-seconds grow, so this is >= 0.
  return through - before;
}

StatusOr<int64_t> FeeFor(int64_t charge, uint32_t fee_bps) {
  if (fee_bps > 10'000) {
    return InvalidArgumentError("fee share " + std::to_string(fee_bps) +
                                " basis points is over 10000 (100%)");
  }
  if (charge < 0) return InvalidArgumentError("negative charge");
  return static_cast<int64_t>(static_cast<Wide>(charge) * fee_bps / 10'000);
}

// --- names ----------------------------------------------------------------------

std::string ConsumerAccount(const std::string& consumer) {
  return "consumer:" + consumer;
}
std::string ProviderAccount(const std::string& provider) {
  return "provider:" + provider;
}
std::string FeeAccount(const std::string& broker_id) {
  return "fee:" + broker_id;
}
std::string ClearingAccount(const std::string& peer) {
  return "clearing:" + peer;
}

StatusOr<std::string> AccountKindOf(std::string_view account) {
  const size_t colon = account.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("account '" + std::string(account) +
                                "' has no kind prefix");
  }
  const std::string kind(account.substr(0, colon));
  const std::string_view owner = account.substr(colon + 1);
  if (kind == "operator") {
    if (account != kTopUpAccount) {
      return InvalidArgumentError("unknown operator account '" +
                                  std::string(account) + "'");
    }
    return kind;
  }
  if (kind != "consumer" && kind != "provider" && kind != "fee" &&
      kind != "clearing") {
    return InvalidArgumentError("unknown account kind in '" +
                                std::string(account) + "'");
  }
  Status valid = ValidatePartyName(owner);
  if (!valid.ok()) {
    return InvalidArgumentError("account '" + std::string(account) +
                                "': " + valid.message());
  }
  return kind;
}

std::string HoldIdFor(const std::string& job_id, uint32_t attempt) {
  return "hold:" + job_id + ":" + std::to_string(attempt);
}

std::string Ledger::UsageIdempotencyKey(const std::string& provider,
                                        const std::string& record_id) {
  return "usage:" + provider + ":" + record_id;
}

int64_t AccountBalance::available() const {
  if (!credit_limit.has_value()) return kInt64Max;
  const Wide available =
      static_cast<Wide>(balance) - held + static_cast<Wide>(*credit_limit);
  if (available > kInt64Max) return kInt64Max;
  if (available < std::numeric_limits<int64_t>::min()) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(available);
}

Status BindLedgerToBroker(storage::Database& db, const std::string& broker_id,
                          const std::string& ed25519_public_hex) {
  return db.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto id, db.GetMeta(kMetaBrokerId));
    CN_ASSIGN_OR_RETURN(auto key, db.GetMeta(kMetaBrokerKey));
    if (id.has_value() && *id != broker_id) {
      return FailedPreconditionError(
          "this database belongs to broker '" + *id + "', not '" + broker_id +
          "': its ledger and checkpoints name that broker");
    }
    if (key.has_value() && *key != ed25519_public_hex) {
      return FailedPreconditionError(
          "this database's ledger is signed by another key (" + *key +
          "); start the broker with the keys it was created with");
    }
    if (!id.has_value()) CN_RETURN_IF_ERROR(db.SetMeta(kMetaBrokerId, broker_id));
    if (!key.has_value()) {
      CN_RETURN_IF_ERROR(db.SetMeta(kMetaBrokerKey, ed25519_public_hex));
    }
    return OkStatus();
  });
}

// --- the ledger -----------------------------------------------------------------

struct Ledger::Change {
  std::string account;
  int64_t held_delta = 0;
};

Ledger::Ledger(storage::Database& db, LedgerOptions options)
    : db_(db),
      owned_directory_(BrokerFileDirectory(db)),
      directory_(*owned_directory_),
      usage_records_(db),
      options_(std::move(options)) {}

Ledger::Ledger(storage::Database& db, Directory& directory,
               LedgerOptions options)
    : db_(db),
      directory_(directory),
      usage_records_(db),
      options_(std::move(options)) {}

Status Ledger::EnsureAccount(const std::string& account, int64_t now_ms) {
  CN_ASSIGN_OR_RETURN(std::string kind, AccountKindOf(account));
  auto insert = db_.Prepare("INSERT OR IGNORE INTO ledger_accounts(name, kind, "
                           "balance, created_ms, held, credit_limit) "
                           "VALUES(?, ?, 0, ?, 0, ?)");
  insert->bind(1, account);
  insert->bind(2, kind);
  insert->bind(3, static_cast<int64_t>(now_ms));
  if (kind == "operator" || kind == "clearing") {
    // NULL: the top-up source has no limit, and neither has a peer broker's
    // clearing account: what a peer may run on it is bounded by the hold
    // its home broker took from its consumer (the forward's budget).
    insert->bind(4);
  } else {
    insert->bind(4, int64_t{0});
  }
  insert->exec();
  return OkStatus();
}

StatusOr<AccountBalance> Ledger::Account(const std::string& account) {
  CN_ASSIGN_OR_RETURN(std::string kind, AccountKindOf(account));
  AccountBalance out;
  out.account = account;
  out.kind = kind;
  if (kind != "operator" && kind != "clearing") out.credit_limit = 0;
  try {
    auto query = db_.Prepare("SELECT balance, held, credit_limit FROM "
                            "ledger_accounts WHERE name=?");
    query->bind(1, account);
    if (query->executeStep()) {
      out.balance = query->getColumn(0).getInt64();
      out.held = query->getColumn(1).getInt64();
      if (query->getColumn(2).isNull()) {
        out.credit_limit.reset();
      } else {
        out.credit_limit = query->getColumn(2).getInt64();
      }
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "account");
  }
}

StatusOr<std::optional<PostedEntry>> Ledger::FindEntry(const std::string& key) {
  try {
    return FindByKey(key);
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find ledger entry");
  }
}

StatusOr<std::optional<PostedEntry>> Ledger::FindByKey(const std::string& key) {
  auto existing = db_.Prepare("SELECT entry FROM ledger_entries WHERE idempotency_key=?");
  existing->bind(1, key);
  if (!existing->executeStep()) return std::optional<PostedEntry>();
  PostedEntry posted;
  if (!posted.entry.ParseFromString(BlobOf(existing->getColumn(0)))) {
    return DataLossError("ledger entry for " + key + " does not parse");
  }
  posted.duplicate = true;
  return std::optional<PostedEntry>(std::move(posted));
}

StatusOr<PostedEntry> Ledger::Append(v1::LedgerEntry entry,
                                     const std::vector<Change>& held_changes,
                                     int64_t now_ms) {
  // What the entry does to each account: (balance delta, held delta).
  std::map<std::string, std::pair<int64_t, int64_t>> effects;
  for (const auto& posting : entry.postings()) {
    if (effects.count(posting.account()) != 0) {
      return InvalidArgumentError("account " + posting.account() +
                                  " posted twice in one entry");
    }
    effects[posting.account()].first = posting.amount();
  }
  for (const auto& change : held_changes) {
    effects[change.account].second += change.held_delta;
  }
  // Refuse before writing anything: no account may be taken below its
  // limit by a change that lowers what it may spend.
  for (const auto& [account, delta] : effects) {
    CN_ASSIGN_OR_RETURN(AccountBalance current, Account(account));
    int64_t balance = 0;
    int64_t held = 0;
    if (__builtin_add_overflow(current.balance, delta.first, &balance) ||
        __builtin_add_overflow(current.held, delta.second, &held)) {
      return OutOfRangeError("account " + account + " would overflow");
    }
    if (!current.credit_limit.has_value()) continue;
    const Wide available_change = static_cast<Wide>(delta.first) - delta.second;
    const Wide available =
        static_cast<Wide>(balance) - held + *current.credit_limit;
    if (available_change < 0 && available < 0) {
      return FailedPreconditionError(
          DescribeFunds(current) + "; this needs " +
          Minor(static_cast<int64_t>(-available_change)));
    }
  }

  uint64_t sequence = 1;
  std::string prev_hash = ZeroHash();
  auto head = db_.Prepare("SELECT sequence, hash FROM ledger_entries "
                         "ORDER BY sequence DESC LIMIT 1");
  if (head->executeStep()) {
    sequence = static_cast<uint64_t>(head->getColumn(0).getInt64()) + 1;
    prev_hash = BlobOf(head->getColumn(1));
  }
  entry.set_sequence(sequence);
  entry.set_prev_hash(prev_hash);
  entry.set_created_ms(now_ms);
  const std::string bytes = entry.SerializeAsString();
  const std::string hash = Sha256(bytes);
  auto insert = db_.Prepare("INSERT INTO ledger_entries(sequence, "
                           "idempotency_key, entry, hash) VALUES(?, ?, ?, ?)");
  insert->bind(1, static_cast<int64_t>(sequence));
  insert->bind(2, entry.idempotency_key());
  BindBlob(*insert, 3, bytes);
  BindBlob(*insert, 4, hash);
  insert->exec();

  std::map<std::string, bool> touched;
  for (const auto& [account, delta] : effects) {
    CN_RETURN_IF_ERROR(EnsureAccount(account, now_ms));
    auto update = db_.Prepare("UPDATE ledger_accounts SET balance=balance+?, "
                             "held=held+? WHERE name=?");
    update->bind(1, static_cast<int64_t>(delta.first));
    update->bind(2, static_cast<int64_t>(delta.second));
    update->bind(3, account);
    update->exec();
    touched[account] = true;
  }
  if (!entry.account().empty()) touched[entry.account()] = true;
  for (const auto& posting : entry.postings()) {
    auto add = db_.Prepare("INSERT INTO ledger_postings(sequence, account, "
                          "amount) VALUES(?, ?, ?)");
    add->bind(1, static_cast<int64_t>(sequence));
    add->bind(2, posting.account());
    add->bind(3, static_cast<int64_t>(posting.amount()));
    add->exec();
  }
  for (const auto& [account, unused] : touched) {
    auto add = db_.Prepare("INSERT INTO ledger_entry_accounts(account, "
                          "sequence) VALUES(?, ?)");
    add->bind(1, account);
    add->bind(2, static_cast<int64_t>(sequence));
    add->exec();
  }
  PostedEntry posted;
  posted.entry = std::move(entry);
  return posted;
}

StatusOr<PostedEntry> Ledger::TopUp(const std::string& consumer, int64_t amount,
                                    const std::string& idempotency_key,
                                    const std::string& memo, int64_t now_ms) {
  if (amount <= 0) {
    return InvalidArgumentError("a top-up must be a positive amount, got " +
                                Minor(amount));
  }
  if (idempotency_key.empty() || idempotency_key.size() > 128) {
    return InvalidArgumentError("a top-up needs an idempotency key of 1..128 "
                                "bytes");
  }
  CN_RETURN_IF_ERROR(ValidatePartyName(consumer));
  const std::string account = ConsumerAccount(consumer);
  const std::string key = "topup:" + idempotency_key;
  PostedEntry result;
  Status status = db_.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(bool enrolled,
                        directory_.IsConsumerEnrolled(consumer));
    if (!enrolled) {
      return NotFoundError("no consumer '" + consumer + "' is enrolled");
    }
    CN_ASSIGN_OR_RETURN(auto existing, FindByKey(key));
    if (existing.has_value()) {
      const auto& entry = existing->entry;
      if (entry.kind() != "topup" || entry.postings_size() != 2 ||
          entry.postings(1).account() != account ||
          entry.postings(1).amount() != amount) {
        return AlreadyExistsError("idempotency key '" + idempotency_key +
                                  "' was used for another top-up");
      }
      result = std::move(*existing);
      result.amount = amount;
      return OkStatus();
    }
    v1::LedgerEntry entry;
    entry.set_idempotency_key(key);
    entry.set_kind("topup");
    entry.set_memo(memo);
    auto* debit = entry.add_postings();
    debit->set_account(kTopUpAccount);
    debit->set_amount(-amount);
    auto* credit = entry.add_postings();
    credit->set_account(account);
    credit->set_amount(amount);
    CN_ASSIGN_OR_RETURN(result, Append(std::move(entry), {}, now_ms));
    result.amount = amount;
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

StatusOr<PostedEntry> Ledger::Transfer(const TransferRequest& request,
                                       int64_t now_ms) {
  CN_ASSIGN_OR_RETURN(std::string from_kind, AccountKindOf(request.from));
  CN_ASSIGN_OR_RETURN(std::string to_kind, AccountKindOf(request.to));
  if (request.from == request.to) {
    return InvalidArgumentError("a transfer needs two different accounts");
  }
  if (request.amount <= 0) {
    return InvalidArgumentError("a transfer must be a positive amount");
  }
  if (request.idempotency_key.empty() || request.idempotency_key.size() > 128) {
    return InvalidArgumentError("a transfer needs an idempotency key of "
                                "1..128 bytes");
  }
  const std::string key = "transfer:" + request.idempotency_key;
  PostedEntry result;
  Status status = db_.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto existing, FindByKey(key));
    if (existing.has_value()) {
      const auto& entry = existing->entry;
      if (entry.postings_size() != 2 ||
          entry.postings(0).account() != request.from ||
          entry.postings(1).account() != request.to ||
          entry.postings(1).amount() != request.amount) {
        return AlreadyExistsError("idempotency key '" +
                                  request.idempotency_key +
                                  "' was used for another transfer");
      }
      result = std::move(*existing);
      result.amount = request.amount;
      return OkStatus();
    }
    v1::LedgerEntry entry;
    entry.set_idempotency_key(key);
    entry.set_kind("transfer");
    entry.set_currency(request.currency);
    entry.set_memo(request.memo);
    auto* debit = entry.add_postings();
    debit->set_account(request.from);
    debit->set_amount(-request.amount);
    auto* credit = entry.add_postings();
    credit->set_account(request.to);
    credit->set_amount(request.amount);
    CN_ASSIGN_OR_RETURN(result, Append(std::move(entry), {}, now_ms));
    result.amount = request.amount;
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

StatusOr<std::optional<PostedEntry>> Ledger::SetCreditLimit(
    const std::string& account, int64_t credit_limit, int64_t now_ms) {
  CN_ASSIGN_OR_RETURN(std::string kind, AccountKindOf(account));
  if (kind == "operator" || kind == "clearing") {
    return FailedPreconditionError(account + " has no limit to set");
  }
  if (credit_limit < 0) {
    return InvalidArgumentError("a credit limit is >= 0 (how far below zero "
                                "the account may go), got " +
                                Minor(credit_limit));
  }
  std::optional<PostedEntry> result;
  Status status = db_.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(AccountBalance current, Account(account));
    if (current.credit_limit == credit_limit) return OkStatus();
    const Wide used = -(static_cast<Wide>(current.balance) - current.held);
    if (used > credit_limit) {
      return FailedPreconditionError(
          account + " already uses " + Minor(static_cast<int64_t>(used)) +
          " of credit (balance " + Minor(current.balance) + ", held " +
          Minor(current.held) + "); its limit cannot go below that");
    }
    CN_ASSIGN_OR_RETURN(uint64_t size, Size());
    v1::LedgerEntry entry;
    entry.set_idempotency_key("credit_limit:" + account + ":" +
                              std::to_string(size + 1));
    entry.set_kind("credit_limit");
    entry.set_account(account);
    entry.set_credit_limit(credit_limit);
    CN_RETURN_IF_ERROR(EnsureAccount(account, now_ms));
    CN_ASSIGN_OR_RETURN(PostedEntry posted, Append(std::move(entry), {}, now_ms));
    auto update = db_.Prepare("UPDATE ledger_accounts SET credit_limit=? WHERE name=?");
    update->bind(1, static_cast<int64_t>(credit_limit));
    update->bind(2, account);
    update->exec();
    posted.amount = credit_limit;
    result = std::move(posted);
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

Status Ledger::OpenClearingAccount(const std::string& peer, int64_t now_ms) {
  CN_RETURN_IF_ERROR(ValidatePartyName(peer));
  return db_.RunInTransaction([&]() -> Status {
    return EnsureAccount(ClearingAccount(peer), now_ms);
  });
}

StatusOr<PostedEntry> Ledger::PlaceHold(const HoldRequest& request,
                                        int64_t now_ms) {
  if (request.cards == 0 || request.max_duration_s == 0) {
    return InvalidArgumentError("a hold needs cards and a max duration");
  }
  CN_RETURN_IF_ERROR(ValidatePartyName(request.consumer));
  CN_RETURN_IF_ERROR(ValidatePartyName(request.provider));
  const std::string hold_id = HoldIdFor(request.job_id, request.attempt);
  const std::string account = request.payer.empty()
                                  ? ConsumerAccount(request.consumer)
                                  : request.payer;
  CN_RETURN_IF_ERROR(AccountKindOf(account).status());
  const uint64_t max_card_seconds =
      static_cast<uint64_t>(request.cards) * request.max_duration_s;
  CN_ASSIGN_OR_RETURN(int64_t amount,
                      ChargeForCardSeconds(max_card_seconds,
                                           request.price_per_card_hour));
  if (!request.remote_broker.empty()) {
    if (request.amount <= 0) {
      return InvalidArgumentError("a forwarded job's hold needs an amount");
    }
    amount = request.amount;
  }
  PostedEntry result;
  Status status = db_.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto existing, FindByKey(hold_id));
    if (existing.has_value()) {
      result = std::move(*existing);
      result.amount = result.entry.hold_amount();
      return OkStatus();
    }
    CN_ASSIGN_OR_RETURN(auto open, OpenHold(request.job_id));
    if (open.has_value()) {
      return AlreadyExistsError("job " + request.job_id +
                                " already holds funds under " + open->hold_id);
    }
    CN_ASSIGN_OR_RETURN(AccountBalance funds, Account(account));
    v1::LedgerEntry entry;
    entry.set_idempotency_key(hold_id);
    entry.set_kind("hold");
    entry.set_hold_id(hold_id);
    entry.set_account(account);
    entry.set_job_id(request.job_id);
    entry.set_usage_provider(request.provider);
    entry.set_currency(request.currency);
    entry.set_hold_amount(amount);
    entry.set_max_card_seconds(max_card_seconds);
    entry.set_price_per_card_hour(request.price_per_card_hour);
    // A home broker's hold for a job forwarded to a peer pays that peer's
    // clearing account; the peer takes its own fee.
    const uint32_t fee_bps =
        request.remote_broker.empty() ? options_.fee_bps : 0;
    entry.set_fee_bps(fee_bps);
    entry.set_remote_broker(request.remote_broker);
    auto posted = Append(std::move(entry), {{account, amount}}, now_ms);
    if (!posted.ok()) {
      if (posted.status().code() != StatusCode::kFailedPrecondition) {
        return posted.status();
      }
      if (!request.remote_broker.empty()) {
        return FailedPreconditionError(
            "insufficient funds: job " + request.job_id + " needs " +
            Minor(amount) + " minor units held for its run at " +
            request.remote_broker + ", but " + DescribeFunds(funds) +
            "; top up to run it");
      }
      return FailedPreconditionError(
          "insufficient funds: job " + request.job_id + " may cost up to " +
          Minor(amount) + " minor units (" + std::to_string(request.cards) +
          " cards x " + std::to_string(request.max_duration_s) + " s at " +
          Minor(request.price_per_card_hour) + " per card-hour), but " +
          DescribeFunds(funds) + "; top up to run it");
    }
    result = std::move(*posted);
    result.amount = amount;
    auto insert = db_.Prepare("INSERT INTO ledger_holds(hold_id, job_id, account, provider, "
        "currency, amount, remaining, max_card_seconds, billed_card_seconds, "
        "last_end_ms, price_per_card_hour, fee_bps, open, opened_sequence, "
        "remote_broker) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, 1, ?, ?)");
    insert->bind(1, hold_id);
    insert->bind(2, request.job_id);
    insert->bind(3, account);
    insert->bind(4, request.provider);
    insert->bind(5, request.currency);
    insert->bind(6, static_cast<int64_t>(amount));
    insert->bind(7, static_cast<int64_t>(amount));
    insert->bind(8, static_cast<int64_t>(max_card_seconds));
    insert->bind(9, static_cast<int64_t>(request.price_per_card_hour));
    insert->bind(10, static_cast<int64_t>(fee_bps));
    insert->bind(11, static_cast<int64_t>(result.entry.sequence()));
    insert->bind(12, request.remote_broker);
    insert->exec();
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

StatusOr<PostedUsage> Ledger::PostUsage(const v1::JobInfo& job,
                                        const StoredUsageRecord& stored,
                                        const v1::UsageRecord& record,
                                        int64_t now_ms) {
  const std::string key =
      UsageIdempotencyKey(stored.provider, stored.record_id);
  PostedUsage result;
  Status status = db_.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto existing, usage_records_.Find(
                                           stored.provider, stored.record_id));
    if (existing.has_value()) {
      if (existing->record != stored.record) {
        return AlreadyExistsError("record id " + stored.record_id +
                                  " was used for a different record");
      }
      CN_ASSIGN_OR_RETURN(auto posted, FindByKey(key));
      if (!posted.has_value()) {
        return DataLossError("usage record " + stored.record_id +
                             " is stored without its charge");
      }
      result.posted = std::move(*posted);
      result.posted.amount = -result.posted.entry.postings(0).amount();
      result.cumulative_card_seconds =
          result.posted.entry.cumulative_card_seconds();
      CN_ASSIGN_OR_RETURN(auto hold, GetHold(result.posted.entry.hold_id()));
      if (hold.has_value()) result.job_charged = hold->amount - hold->remaining;
      return OkStatus();
    }
    if (record.job_id() != job.job_id() || stored.job_id != job.job_id()) {
      return InvalidArgumentError("usage record is for job " + record.job_id() +
                                  ", not " + job.job_id());
    }
    CN_ASSIGN_OR_RETURN(auto open, OpenHold(job.job_id()));
    if (!open.has_value()) {
      // NOT_FOUND, not FAILED_PRECONDITION: agents take the latter as
      // "register again" and would resend the record forever.
      return NotFoundError(
          "job " + job.job_id() +
          " has no open hold to bill against: its usage was closed when the "
          "job ended or its closing record was posted");
    }
    const Hold& hold = *open;
    if (!hold.remote_broker.empty()) {
      return FailedPreconditionError("job " + job.job_id() + " runs at " +
                                     hold.remote_broker +
                                     ": its usage comes countersigned from there");
    }
    if (hold.provider != stored.provider) {
      return PermissionDeniedError("the hold for job " + job.job_id() +
                                   " pays " + hold.provider + ", not " +
                                   stored.provider);
    }
    // Records of one placement cover contiguous, non-overlapping intervals.
    if (hold.last_end_ms.has_value()) {
      if (record.start_ms() < *hold.last_end_ms) {
        return AlreadyExistsError(
            "record " + stored.record_id + " starts at " +
            std::to_string(record.start_ms()) +
            ", inside the interval already billed for job " + job.job_id() +
            " (up to " + std::to_string(*hold.last_end_ms) + ")");
      }
      if (record.start_ms() > *hold.last_end_ms) {
        return InvalidArgumentError(
            "record " + stored.record_id + " starts at " +
            std::to_string(record.start_ms()) + " but job " + job.job_id() +
            "'s previous record ended at " +
            std::to_string(*hold.last_end_ms) +
            ": records must cover contiguous intervals");
      }
    }
    // Never more than the hold covers: cards x max duration.
    const uint64_t billed =
        std::min(record.card_seconds(),
                 hold.max_card_seconds - hold.billed_card_seconds);
    const uint64_t cumulative = hold.billed_card_seconds + billed;
    CN_ASSIGN_OR_RETURN(int64_t charge,
                        ChargeForInterval(hold.billed_card_seconds, billed,
                                          hold.price_per_card_hour));
    CN_ASSIGN_OR_RETURN(int64_t fee, FeeFor(charge, hold.fee_bps));
    if (charge > hold.remaining) {
      return InternalError("charge " + Minor(charge) + " exceeds what " +
                           hold.hold_id + " still holds (" +
                           Minor(hold.remaining) + ")");
    }
    CN_RETURN_IF_ERROR(usage_records_.Insert(stored, now_ms));
    v1::LedgerEntry entry;
    entry.set_idempotency_key(key);
    entry.set_kind("usage");
    entry.set_currency(hold.currency);
    entry.set_job_id(job.job_id());
    entry.set_usage_provider(stored.provider);
    entry.set_usage_record_id(stored.record_id);
    entry.set_billed_card_seconds(billed);
    entry.set_price_per_card_hour(hold.price_per_card_hour);
    entry.set_hold_id(hold.hold_id);
    entry.set_fee_bps(hold.fee_bps);
    entry.set_cumulative_card_seconds(cumulative);
    auto* debit = entry.add_postings();
    debit->set_account(hold.account);
    debit->set_amount(-charge);
    auto* credit = entry.add_postings();
    credit->set_account(ProviderAccount(stored.provider));
    credit->set_amount(charge - fee);
    if (hold.fee_bps > 0) {
      auto* fee_credit = entry.add_postings();
      fee_credit->set_account(FeeAccount(options_.broker_id));
      fee_credit->set_amount(fee);
    }
    CN_ASSIGN_OR_RETURN(result.posted, Append(std::move(entry),
                                              {{hold.account, -charge}}, now_ms));
    result.posted.amount = charge;
    auto update = db_.Prepare("UPDATE ledger_holds SET remaining=remaining-?, "
                             "billed_card_seconds=?, last_end_ms=? "
                             "WHERE hold_id=?");
    update->bind(1, static_cast<int64_t>(charge));
    update->bind(2, static_cast<int64_t>(cumulative));
    update->bind(3, static_cast<int64_t>(record.end_ms()));
    update->bind(4, hold.hold_id);
    update->exec();
    result.cumulative_card_seconds = cumulative;
    result.job_charged = hold.amount - (hold.remaining - charge);
    result.hold_exhausted = cumulative >= hold.max_card_seconds &&
                            hold.billed_card_seconds < hold.max_card_seconds;
    if (record.closes_job()) {
      Hold rest = hold;
      rest.remaining -= charge;
      CN_ASSIGN_OR_RETURN(result.released,
                          ReleaseHoldLocked(rest,
                                            "closed by usage record " +
                                                stored.record_id,
                                            now_ms));
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

StatusOr<std::optional<PostedEntry>> Ledger::ReleaseHoldLocked(
    const Hold& hold, const std::string& memo, int64_t now_ms) {
  v1::LedgerEntry entry;
  entry.set_idempotency_key("void:" + hold.hold_id);
  entry.set_kind("void");
  entry.set_hold_id(hold.hold_id);
  entry.set_account(hold.account);
  entry.set_job_id(hold.job_id);
  entry.set_currency(hold.currency);
  entry.set_hold_amount(hold.remaining);
  entry.set_memo(memo);
  CN_ASSIGN_OR_RETURN(PostedEntry posted,
                      Append(std::move(entry), {{hold.account, -hold.remaining}},
                             now_ms));
  posted.amount = hold.remaining;
  auto update = db_.Prepare("UPDATE ledger_holds SET open=0, remaining=0, "
                           "closed_sequence=? WHERE hold_id=?");
  update->bind(1, static_cast<int64_t>(posted.entry.sequence()));
  update->bind(2, hold.hold_id);
  update->exec();
  return std::optional<PostedEntry>(std::move(posted));
}

StatusOr<PostedEntry> Ledger::PostRemoteUsage(const v1::JobInfo& job,
                                              const RemoteCharge& charge,
                                              int64_t now_ms) {
  const std::string key =
      "remote-usage:" + charge.remote_broker + ":" + charge.record_id;
  PostedEntry result;
  Status status = db_.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto existing, FindByKey(key));
    if (existing.has_value()) {
      if (existing->entry.evidence() != charge.evidence) {
        return AlreadyExistsError("remote record " + charge.record_id +
                                  " was posted with other evidence");
      }
      result = std::move(*existing);
      result.amount = -result.entry.postings(0).amount();
      return OkStatus();
    }
    CN_ASSIGN_OR_RETURN(auto open, OpenHold(job.job_id()));
    if (!open.has_value()) {
      return NotFoundError("job " + job.job_id() +
                           " has no open hold to bill remote usage against");
    }
    const Hold& hold = *open;
    if (hold.remote_broker != charge.remote_broker) {
      return FailedPreconditionError(
          "the hold for job " + job.job_id() + " does not pay " +
          charge.remote_broker);
    }
    if (charge.billed_card_seconds > charge.cumulative_card_seconds) {
      return InvalidArgumentError("remote usage bills more than its total");
    }
    CN_ASSIGN_OR_RETURN(
        int64_t expected,
        ChargeForInterval(
            charge.cumulative_card_seconds - charge.billed_card_seconds,
            charge.billed_card_seconds, charge.price_per_card_hour));
    if (expected != charge.amount) {
      return InvalidArgumentError(
          "remote usage amount " + Minor(charge.amount) +
          " breaks the rounding rule (expected " + Minor(expected) + ")");
    }
    if (charge.amount > hold.remaining) {
      return InvalidArgumentError("remote usage of " + Minor(charge.amount) +
                                  " exceeds what " + hold.hold_id +
                                  " still holds (" + Minor(hold.remaining) +
                                  ")");
    }
    v1::LedgerEntry entry;
    entry.set_idempotency_key(key);
    entry.set_kind("remote_usage");
    entry.set_currency(charge.currency);
    entry.set_job_id(job.job_id());
    entry.set_usage_record_id(charge.record_id);
    entry.set_billed_card_seconds(charge.billed_card_seconds);
    entry.set_cumulative_card_seconds(charge.cumulative_card_seconds);
    entry.set_price_per_card_hour(charge.price_per_card_hour);
    entry.set_hold_id(hold.hold_id);
    entry.set_remote_broker(charge.remote_broker);
    entry.set_evidence(charge.evidence);
    auto* debit = entry.add_postings();
    debit->set_account(hold.account);
    debit->set_amount(-charge.amount);
    auto* credit = entry.add_postings();
    credit->set_account(ClearingAccount(charge.remote_broker));
    credit->set_amount(charge.amount);
    CN_ASSIGN_OR_RETURN(result, Append(std::move(entry),
                                       {{hold.account, -charge.amount}},
                                       now_ms));
    result.amount = charge.amount;
    auto update = db_.Prepare(
        "UPDATE ledger_holds SET remaining=remaining-?, "
        "billed_card_seconds=billed_card_seconds+? WHERE hold_id=?");
    update->bind(1, static_cast<int64_t>(charge.amount));
    update->bind(2, static_cast<int64_t>(charge.billed_card_seconds));
    update->bind(3, hold.hold_id);
    update->exec();
    if (charge.closes_job) {
      Hold rest = hold;
      rest.remaining -= charge.amount;
      CN_RETURN_IF_ERROR(
          ReleaseHoldLocked(rest, "closed by " + charge.remote_broker +
                                      "'s record " + charge.record_id,
                            now_ms)
              .status());
    }
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

StatusOr<std::optional<PostedEntry>> Ledger::ReleaseHold(
    const std::string& job_id, const std::string& memo, int64_t now_ms) {
  std::optional<PostedEntry> result;
  Status status = db_.RunInTransaction([&]() -> Status {
    CN_ASSIGN_OR_RETURN(auto hold, OpenHold(job_id));
    if (!hold.has_value()) return OkStatus();
    CN_ASSIGN_OR_RETURN(result, ReleaseHoldLocked(*hold, memo, now_ms));
    return OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

StatusOr<std::optional<Hold>> Ledger::OpenHold(const std::string& job_id) {
  return QueryHold(db_, "WHERE job_id=? AND open=1 LIMIT 1", job_id);
}

StatusOr<std::optional<Hold>> Ledger::GetHold(const std::string& hold_id) {
  return QueryHold(db_, "WHERE hold_id=?", hold_id);
}

StatusOr<std::vector<Hold>> Ledger::OpenHolds() {
  try {
    auto query = db_.Prepare(std::string(kHoldColumns) +
                                             "WHERE open=1 ORDER BY "
                                             "opened_sequence");
    std::vector<Hold> out;
    while (query->executeStep()) out.push_back(HoldFromRow(*query));
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "open holds");
  }
}

StatusOr<int64_t> Ledger::Balance(const std::string& account) {
  try {
    auto query = db_.Prepare("SELECT balance FROM ledger_accounts WHERE name=?");
    query->bind(1, account);
    if (!query->executeStep()) return int64_t{0};
    return query->getColumn(0).getInt64();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "balance");
  }
}

StatusOr<std::vector<AccountBalance>> Ledger::Balances() {
  try {
    auto query = db_.Prepare("SELECT name, kind, balance, held, credit_limit "
                            "FROM ledger_accounts ORDER BY kind, name");
    std::vector<AccountBalance> out;
    while (query->executeStep()) {
      AccountBalance balance;
      balance.account = query->getColumn(0).getString();
      balance.kind = query->getColumn(1).getString();
      balance.balance = query->getColumn(2).getInt64();
      balance.held = query->getColumn(3).getInt64();
      if (!query->getColumn(4).isNull()) {
        balance.credit_limit = query->getColumn(4).getInt64();
      }
      out.push_back(std::move(balance));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "balances");
  }
}

StatusOr<std::vector<v1::LedgerEntry>> Ledger::Entries() {
  try {
    auto query = db_.Prepare("SELECT entry FROM ledger_entries ORDER BY sequence");
    std::vector<v1::LedgerEntry> out;
    while (query->executeStep()) {
      v1::LedgerEntry entry;
      if (!entry.ParseFromString(BlobOf(query->getColumn(0)))) {
        return DataLossError("ledger entry does not parse");
      }
      out.push_back(std::move(entry));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "ledger entries");
  }
}

StatusOr<uint64_t> Ledger::Size() {
  CN_ASSIGN_OR_RETURN(int64_t size,
                      db_.QueryInt("SELECT COALESCE(MAX(sequence), 0) FROM "
                                   "ledger_entries"));
  return static_cast<uint64_t>(size);
}

}  // namespace computenet::ledger
