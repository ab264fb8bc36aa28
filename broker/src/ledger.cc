#include "computenet/broker/ledger.h"

#include <limits>
#include <map>
#include <set>

#include "computenet/broker/remote_usage.h"
#include "computenet/common/usage_record.h"
#include "computenet/common/sha256.h"

namespace computenet::broker {
namespace {

const std::string& ZeroHash() {
  static const std::string kZero(32, '\0');
  return kZero;
}

std::string BlobOf(const SQLite::Column& column) {
  return std::string(static_cast<const char*>(column.getBlob()),
                     static_cast<size_t>(column.getBytes()));
}

Status Violation(uint64_t sequence, const std::string& what) {
  return DataLossError("ledger entry " + std::to_string(sequence) + ": " +
                       what);
}

}  // namespace

StatusOr<int64_t> ChargeForCardSeconds(uint64_t card_seconds,
                                       int64_t price_per_card_hour) {
  if (price_per_card_hour < 0) {
    return OutOfRangeError("negative price");
  }
  // 128-bit intermediate: the product may exceed 64 bits where the charge
  // itself does not.
  __extension__ using Wide = unsigned __int128;
  const Wide charge =
      (static_cast<Wide>(card_seconds) * static_cast<Wide>(price_per_card_hour) +
       1800) /
      3600;
  if (charge > static_cast<Wide>(std::numeric_limits<int64_t>::max())) {
    return OutOfRangeError("charge overflows: " + std::to_string(card_seconds) +
                           " card-seconds at " +
                           std::to_string(price_per_card_hour));
  }
  return static_cast<int64_t>(charge);
}

std::string ConsumerAccount(const std::string& consumer) {
  return "consumer:" + consumer;
}
std::string ProviderAccount(const std::string& provider) {
  return "provider:" + provider;
}
std::string ClearingAccount(const std::string& peer_broker) {
  return "clearing:" + peer_broker;
}

std::string Ledger::UsageIdempotencyKey(const std::string& provider,
                                        const std::string& record_id) {
  return "usage:" + provider + ":" + record_id;
}

Status Ledger::EnsureAccount(const std::string& account,
                             const std::string& kind, int64_t now_ms) {
  SQLite::Statement insert(store_.db(),
                           "INSERT OR IGNORE INTO ledger_accounts(name, kind, "
                           "balance, created_ms) VALUES(?, ?, 0, ?)");
  insert.bind(1, account);
  insert.bind(2, kind);
  insert.bind(3, static_cast<int64_t>(now_ms));
  insert.exec();
  return OkStatus();
}

StatusOr<std::optional<PostedEntry>> Ledger::Existing(const std::string& key) {
  try {
    SQLite::Statement existing(
        store_.db(), "SELECT entry FROM ledger_entries WHERE idempotency_key=?");
    existing.bind(1, key);
    if (!existing.executeStep()) return std::optional<PostedEntry>();
    PostedEntry posted;
    if (!posted.entry.ParseFromString(BlobOf(existing.getColumn(0)))) {
      return DataLossError("ledger entry for " + key + " does not parse");
    }
    posted.duplicate = true;
    for (const auto& posting : posted.entry.postings()) {
      if (posting.amount() < 0) posted.amount = -posting.amount();
    }
    return std::optional<PostedEntry>(std::move(posted));
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "find ledger entry");
  }
}

StatusOr<PostedEntry> Ledger::Append(v1::LedgerEntry entry, int64_t amount,
                                     const std::string& payer_kind,
                                     const std::string& payee_kind,
                                     int64_t now_ms) {
  try {
    auto& db = store_.db();
    uint64_t sequence = 1;
    std::string prev_hash = ZeroHash();
    SQLite::Statement head(db,
                           "SELECT sequence, hash FROM ledger_entries "
                           "ORDER BY sequence DESC LIMIT 1");
    if (head.executeStep()) {
      sequence = static_cast<uint64_t>(head.getColumn(0).getInt64()) + 1;
      prev_hash = BlobOf(head.getColumn(1));
    }
    entry.set_sequence(sequence);
    entry.set_prev_hash(prev_hash);
    entry.set_created_ms(now_ms);

    std::string bytes = entry.SerializeAsString();
    std::string hash = Sha256(bytes);
    SQLite::Statement insert(db,
                             "INSERT INTO ledger_entries(sequence, "
                             "idempotency_key, entry, hash) VALUES(?, ?, ?, ?)");
    insert.bind(1, static_cast<int64_t>(sequence));
    insert.bind(2, entry.idempotency_key());
    insert.bind(3, bytes.data(), static_cast<int>(bytes.size()));
    insert.bind(4, hash.data(), static_cast<int>(hash.size()));
    insert.exec();

    CN_RETURN_IF_ERROR(
        EnsureAccount(entry.postings(0).account(), payer_kind, now_ms));
    CN_RETURN_IF_ERROR(
        EnsureAccount(entry.postings(1).account(), payee_kind, now_ms));
    for (const auto& posting : entry.postings()) {
      SQLite::Statement add(db,
                            "INSERT INTO ledger_postings(sequence, account, "
                            "amount) VALUES(?, ?, ?)");
      add.bind(1, static_cast<int64_t>(sequence));
      add.bind(2, posting.account());
      add.bind(3, static_cast<int64_t>(posting.amount()));
      add.exec();
      SQLite::Statement balance(
          db, "UPDATE ledger_accounts SET balance=balance+? WHERE name=?");
      balance.bind(1, static_cast<int64_t>(posting.amount()));
      balance.bind(2, posting.account());
      balance.exec();
    }
    PostedEntry posted;
    posted.entry = std::move(entry);
    posted.amount = amount;
    return posted;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "append ledger entry");
  }
}

namespace {

// A two-posting transfer: payer debited, payee credited.
void AddTransfer(v1::LedgerEntry& entry, const std::string& payer,
                 const std::string& payee, int64_t amount) {
  auto* debit = entry.add_postings();
  debit->set_account(payer);
  debit->set_amount(-amount);
  auto* credit = entry.add_postings();
  credit->set_account(payee);
  credit->set_amount(amount);
}

}  // namespace

StatusOr<PostedEntry> Ledger::PostUsage(const UsageCharge& charge,
                                        int64_t now_ms) {
  const std::string key = UsageIdempotencyKey(charge.provider, charge.record_id);
  CN_ASSIGN_OR_RETURN(auto existing, Existing(key));
  if (existing) return std::move(*existing);
  CN_ASSIGN_OR_RETURN(int64_t amount,
                      ChargeForCardSeconds(charge.billed_card_seconds,
                                           charge.price_per_card_hour));
  v1::LedgerEntry entry;
  entry.set_idempotency_key(key);
  entry.set_kind("usage");
  entry.set_currency(charge.currency);
  entry.set_job_id(charge.job_id);
  entry.set_usage_provider(charge.provider);
  entry.set_usage_record_id(charge.record_id);
  entry.set_billed_card_seconds(charge.billed_card_seconds);
  entry.set_price_per_card_hour(charge.price_per_card_hour);
  const bool forwarded = !charge.home_broker.empty();
  AddTransfer(entry,
              forwarded ? ClearingAccount(charge.home_broker)
                        : ConsumerAccount(charge.consumer),
              ProviderAccount(charge.provider), amount);
  return Append(std::move(entry), amount, forwarded ? "clearing" : "consumer",
                "provider", now_ms);
}

StatusOr<PostedEntry> Ledger::PostRemoteUsage(const RemoteCharge& charge,
                                              int64_t now_ms) {
  const std::string key =
      "remote-usage:" + charge.remote_broker + ":" + charge.record_id;
  CN_ASSIGN_OR_RETURN(auto existing, Existing(key));
  if (existing) return std::move(*existing);
  CN_ASSIGN_OR_RETURN(int64_t amount,
                      ChargeForCardSeconds(charge.billed_card_seconds,
                                           charge.price_per_card_hour));
  v1::LedgerEntry entry;
  entry.set_idempotency_key(key);
  entry.set_kind("remote_usage");
  entry.set_currency(charge.currency);
  entry.set_job_id(charge.job_id);
  entry.set_usage_record_id(charge.record_id);
  entry.set_billed_card_seconds(charge.billed_card_seconds);
  entry.set_price_per_card_hour(charge.price_per_card_hour);
  entry.set_remote_broker(charge.remote_broker);
  entry.set_evidence(charge.evidence);
  AddTransfer(entry, ConsumerAccount(charge.consumer),
              ClearingAccount(charge.remote_broker), amount);
  return Append(std::move(entry), amount, "consumer", "clearing", now_ms);
}

StatusOr<int64_t> Ledger::Balance(const std::string& account) {
  try {
    SQLite::Statement query(store_.db(),
                            "SELECT balance FROM ledger_accounts WHERE name=?");
    query.bind(1, account);
    if (!query.executeStep()) return int64_t{0};
    return query.getColumn(0).getInt64();
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "balance");
  }
}

StatusOr<std::vector<AccountBalance>> Ledger::Balances() {
  try {
    SQLite::Statement query(
        store_.db(),
        "SELECT name, kind, balance FROM ledger_accounts ORDER BY kind, name");
    std::vector<AccountBalance> out;
    while (query.executeStep()) {
      out.push_back(AccountBalance{query.getColumn(0).getString(),
                                   query.getColumn(1).getString(),
                                   query.getColumn(2).getInt64()});
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "balances");
  }
}

StatusOr<std::vector<v1::LedgerEntry>> Ledger::Entries() {
  try {
    SQLite::Statement query(store_.db(),
                            "SELECT entry FROM ledger_entries ORDER BY sequence");
    std::vector<v1::LedgerEntry> out;
    while (query.executeStep()) {
      v1::LedgerEntry entry;
      if (!entry.ParseFromString(BlobOf(query.getColumn(0)))) {
        return DataLossError("ledger entry does not parse");
      }
      out.push_back(std::move(entry));
    }
    return out;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "ledger entries");
  }
}

StatusOr<LedgerAuditReport> VerifyLedger(Store& store) {
  LedgerAuditReport report;
  try {
    auto& db = store.db();
    // Provider and peer keys, by enrolled name, to check signatures.
    std::map<std::string, std::string> provider_keys;
    std::map<std::string, std::string> peer_keys;
    {
      SQLite::Statement keys(db,
                             "SELECT role, name, ed25519_public FROM "
                             "enrollments WHERE role IN ('provider', 'peer')");
      while (keys.executeStep()) {
        auto& map = keys.getColumn(0).getString() == "peer" ? peer_keys
                                                            : provider_keys;
        map[keys.getColumn(1).getString()] = keys.getColumn(2).getString();
      }
    }

    std::map<std::string, int64_t> balances;  // from postings
    std::map<std::pair<std::string, std::string>, uint64_t> usage_postings;
    std::string prev_hash = ZeroHash();
    uint64_t expected_sequence = 1;
    SQLite::Statement entries(db,
                              "SELECT sequence, idempotency_key, entry, hash "
                              "FROM ledger_entries ORDER BY sequence");
    while (entries.executeStep()) {
      const uint64_t sequence =
          static_cast<uint64_t>(entries.getColumn(0).getInt64());
      const std::string key = entries.getColumn(1).getString();
      const std::string bytes = BlobOf(entries.getColumn(2));
      const std::string hash = BlobOf(entries.getColumn(3));
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
      int64_t debits = 0;
      std::map<std::string, int64_t> entry_postings;
      for (const auto& posting : entry.postings()) {
        sum += posting.amount();
        if (posting.amount() < 0) debits -= posting.amount();
        entry_postings[posting.account()] += posting.amount();
        balances[posting.account()] += posting.amount();
      }
      if (sum != 0) {
        return Violation(sequence,
                         "postings sum to " + std::to_string(sum) + ", not 0");
      }
      SQLite::Statement stored(
          db, "SELECT account, amount FROM ledger_postings WHERE sequence=?");
      stored.bind(1, static_cast<int64_t>(sequence));
      std::map<std::string, int64_t> stored_postings;
      while (stored.executeStep()) {
        stored_postings[stored.getColumn(0).getString()] +=
            stored.getColumn(1).getInt64();
      }
      if (stored_postings != entry_postings) {
        return Violation(sequence, "posting rows differ from the entry");
      }
      if (entry.kind() == "remote_usage") {
        // Charged for a job run at a peer: the peer's countersignature over
        // its provider's record is the evidence.
        auto key_it = peer_keys.find(entry.remote_broker());
        if (key_it == peer_keys.end()) {
          return Violation(sequence, "peer " + entry.remote_broker() +
                                         " has no pinned key");
        }
        v1::RemoteUsage evidence;
        if (!evidence.ParseFromString(entry.evidence())) {
          return Violation(sequence, "remote usage evidence does not parse");
        }
        auto record = VerifyRemoteUsage(key_it->second, evidence);
        if (!record.ok()) {
          return Violation(sequence, "remote usage evidence: " +
                                         record.status().message());
        }
        auto job = store.GetJob(entry.job_id());
        if (!job.ok() || evidence.job_id() != entry.job_id() ||
            record->record_id() != entry.usage_record_id() ||
            evidence.amount() != debits ||
            evidence.billed_card_seconds() != entry.billed_card_seconds()) {
          return Violation(sequence, "charge does not match its evidence");
        }
        const std::string payer = ConsumerAccount(job->consumer());
        const std::string payee = ClearingAccount(entry.remote_broker());
        if (entry.postings_size() != 2 ||
            entry.postings(0).account() != payer ||
            entry.postings(1).account() != payee) {
          return Violation(sequence, "postings are not " + payer + " -> " +
                                         payee);
        }
        report.total_charged += debits;
        prev_hash = hash;
        ++expected_sequence;
        ++report.entries;
        continue;
      }
      if (entry.kind() != "usage") {
        return Violation(sequence, "unknown entry kind '" + entry.kind() + "'");
      }
      {
        auto record = store.FindUsageRecord(entry.usage_provider(),
                                            entry.usage_record_id());
        if (!record.ok()) return record.status();
        if (!record->has_value()) {
          return Violation(sequence, "usage record " +
                                         entry.usage_record_id() +
                                         " it charges for is missing");
        }
        auto key_it = provider_keys.find(entry.usage_provider());
        if (key_it == provider_keys.end()) {
          return Violation(sequence, "provider " + entry.usage_provider() +
                                         " has no enrolled key");
        }
        auto verified = VerifyUsageRecord(key_it->second, (*record)->record,
                                          (*record)->signature);
        if (!verified.ok()) {
          return Violation(sequence, "usage record signature: " +
                                         verified.status().message());
        }
        if (verified->job_id() != entry.job_id() ||
            entry.billed_card_seconds() > verified->card_seconds()) {
          return Violation(sequence,
                           "charge does not match its usage record");
        }
        // Exactly: the job's consumer pays, the signing provider is paid.
        auto job = store.GetJob(entry.job_id());
        if (!job.ok()) {
          return Violation(sequence, "job " + entry.job_id() + " is missing");
        }
        // A forwarded job is paid by its home broker's clearing account.
        const std::string payer = job->home_broker().empty()
                                      ? ConsumerAccount(job->consumer())
                                      : ClearingAccount(job->home_broker());
        const std::string payee = ProviderAccount(entry.usage_provider());
        if (entry.postings_size() != 2 ||
            entry.postings(0).account() != payer ||
            entry.postings(1).account() != payee ||
            entry.postings(0).amount() > 0) {
          return Violation(sequence, "postings are not " + payer + " -> " +
                                         payee);
        }
        auto expected = ChargeForCardSeconds(entry.billed_card_seconds(),
                                             entry.price_per_card_hour());
        if (!expected.ok() || *expected != debits) {
          return Violation(sequence, "amount " + std::to_string(debits) +
                                         " breaks the rounding rule");
        }
        ++usage_postings[{entry.usage_provider(), entry.usage_record_id()}];
        report.total_charged += debits;
      }
      prev_hash = hash;
      ++expected_sequence;
      ++report.entries;
    }
    report.head_hash_hex = HexEncode(prev_hash);

    CN_ASSIGN_OR_RETURN(auto records, store.ListUsageRecords());
    for (const auto& record : records) {
      uint64_t count = usage_postings[{record.provider, record.record_id}];
      if (count != 1) {
        return DataLossError("usage record " + record.provider + "/" +
                             record.record_id + " is posted " +
                             std::to_string(count) + " times, not once");
      }
    }
    report.usage_records = records.size();

    SQLite::Statement accounts(db,
                               "SELECT name, balance FROM ledger_accounts");
    std::set<std::string> seen;
    while (accounts.executeStep()) {
      const std::string name = accounts.getColumn(0).getString();
      if (accounts.getColumn(1).getInt64() != balances[name]) {
        return DataLossError("account " + name +
                             ": stored balance differs from its postings");
      }
      seen.insert(name);
      ++report.accounts;
    }
    for (const auto& [name, balance] : balances) {
      if (seen.count(name) == 0) {
        return DataLossError("account " + name +
                             " has postings but no account row");
      }
    }
    return report;
  } catch (const SQLite::Exception& error) {
    return StatusFromSqlite(error, "verify ledger");
  }
}

}  // namespace computenet::broker
