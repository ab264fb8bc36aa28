// Ledger: the rounding rule, double-entry posting, idempotency, the hash
// chain, and the offline audit (VerifyLedger) against real tampering of a
// real SQLite file.
#include "computenet/broker/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "computenet/broker/store.h"
#include "computenet/common/identity.h"
#include "computenet/common/sha256.h"
#include "computenet/common/usage_record.h"
#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::HasSubstr;
using testing::MustGenerateIdentity;
using testing::TempDir;

constexpr int64_t kNowMs = 1'700'000'000'000;

// --- the rounding rule -----------------------------------------------------

int64_t MustCharge(uint64_t card_seconds, int64_t price) {
  auto charge = ChargeForCardSeconds(card_seconds, price);
  EXPECT_TRUE(charge.ok()) << charge.status().ToString();
  return charge.ok() ? *charge : -1;
}

TEST(ChargeForCardSecondsTest, OneCardHourCostsThePrice) {
  EXPECT_EQ(MustCharge(3600, 1500), 1500);
  EXPECT_EQ(MustCharge(8 * 3600, 1500), 8 * 1500);
}

TEST(ChargeForCardSecondsTest, RoundsHalfUpToMinorUnit) {
  EXPECT_EQ(MustCharge(1, 1500), 0);     // 0.4166 rounds down
  EXPECT_EQ(MustCharge(2, 1500), 1);     // 0.8333 rounds up
  EXPECT_EQ(MustCharge(3, 600), 1);      // 0.5 rounds half up
  EXPECT_EQ(MustCharge(1, 1799), 0);     // 0.49972 rounds down
  EXPECT_EQ(MustCharge(1, 1800), 1);     // exactly 0.5
  EXPECT_EQ(MustCharge(5, 1080), 2);     // 1.5 -> 2
  EXPECT_EQ(MustCharge(3601, 3600), 3601);
  EXPECT_EQ(MustCharge(5400, 1500), 2250);
  EXPECT_EQ(MustCharge(3599, 1), 1);     // 0.99972
  EXPECT_EQ(MustCharge(1799, 1), 0);     // 0.49972
}

TEST(ChargeForCardSecondsTest, ZeroInputsChargeNothing) {
  EXPECT_EQ(MustCharge(0, 1500), 0);
  EXPECT_EQ(MustCharge(3600, 0), 0);
  EXPECT_EQ(MustCharge(std::numeric_limits<uint64_t>::max(), 0), 0);
}

TEST(ChargeForCardSecondsTest, NegativePriceIsOutOfRange) {
  EXPECT_EQ(ChargeForCardSeconds(3600, -1).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(ChargeForCardSeconds(0, -1500).status().code(),
            StatusCode::kOutOfRange);
}

TEST(ChargeForCardSecondsTest, OverflowOfTheChargeIsOutOfRange) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  // Charges above int64 cannot be posted.
  EXPECT_EQ(ChargeForCardSeconds(uint64_t{1} << 40, kMax).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(ChargeForCardSeconds(std::numeric_limits<uint64_t>::max(),
                                 1'000'000'000)
                .status()
                .code(),
            StatusCode::kOutOfRange);
}

TEST(ChargeForCardSecondsTest, WideIntermediateKeepsChargesThatFit) {
  // The product overflows 64 bits; the charge does not.
  auto charge = ChargeForCardSeconds(std::numeric_limits<uint64_t>::max(), 1);
  ASSERT_TRUE(charge.ok()) << charge.status().ToString();
  // (2^64 - 1 + 1800) / 3600: the remainder 15 + 1800 rounds down.
  EXPECT_EQ(*charge, 5124095576030431);
  // The largest job the broker accepts, at the highest price it accepts.
  const uint64_t card_seconds = uint64_t{64} * 4096 * 366 * 24 * 3600;
  auto largest = ChargeForCardSeconds(card_seconds, 1'000'000'000);
  ASSERT_TRUE(largest.ok()) << largest.status().ToString();
  EXPECT_EQ(*largest, static_cast<int64_t>(card_seconds / 3600 * 1'000'000'000));
}

TEST(ChargeForCardSecondsTest, LargestRepresentableChargesAreExact) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  // The biggest card-seconds whose product plus the rounding term fits.
  const uint64_t card_seconds = static_cast<uint64_t>(kMax - 1800) / 1500;
  auto charge = ChargeForCardSeconds(card_seconds, 1500);
  ASSERT_TRUE(charge.ok()) << charge.status().ToString();
  EXPECT_EQ(*charge,
            static_cast<int64_t>((card_seconds * 1500 + 1800) / 3600));
  EXPECT_GT(*charge, 0);
  // A year of 10,000 cards at 1,000,000 minor units per card-hour.
  auto year = ChargeForCardSeconds(uint64_t{10'000} * 366 * 24 * 3600,
                                   1'000'000);
  ASSERT_TRUE(year.ok()) << year.status().ToString();
  EXPECT_EQ(*year, int64_t{10'000} * 366 * 24 * 1'000'000);
}

TEST(LedgerAccountsTest, AccountNames) {
  EXPECT_EQ(ConsumerAccount("alice"), "consumer:alice");
  EXPECT_EQ(ProviderAccount("site-a"), "provider:site-a");
  EXPECT_EQ(Ledger::UsageIdempotencyKey("site-a", "r-1"), "usage:site-a:r-1");
}

// --- posting ---------------------------------------------------------------

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.File("broker.db"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ledger_ = std::make_unique<Ledger>(*store_);
  }

  static UsageCharge Charge(const std::string& record_id,
                            uint64_t card_seconds, int64_t price,
                            const std::string& consumer = "alice",
                            const std::string& provider = "site-a") {
    UsageCharge charge;
    charge.job_id = "b-" + record_id;
    charge.consumer = consumer;
    charge.provider = provider;
    charge.record_id = record_id;
    charge.currency = "CNY";
    charge.billed_card_seconds = card_seconds;
    charge.price_per_card_hour = price;
    return charge;
  }

  PostedEntry MustPost(const UsageCharge& charge) {
    auto posted = ledger_->PostUsage(charge, kNowMs);
    EXPECT_TRUE(posted.ok()) << posted.status().ToString();
    return posted.ok() ? *posted : PostedEntry();
  }

  int64_t MustBalance(const std::string& account) {
    auto balance = ledger_->Balance(account);
    EXPECT_TRUE(balance.ok()) << balance.status().ToString();
    return balance.ok() ? *balance : 0;
  }

  int64_t CountRows(const std::string& table) {
    return store_->db()
        .execAndGet("SELECT COUNT(*) FROM " + table)
        .getInt64();
  }

  std::string StoredHash(int64_t sequence) {
    SQLite::Statement query(store_->db(),
                            "SELECT hash FROM ledger_entries WHERE sequence=?");
    query.bind(1, sequence);
    if (!query.executeStep()) return "";
    const auto column = query.getColumn(0);
    return std::string(static_cast<const char*>(column.getBlob()),
                       static_cast<size_t>(column.getBytes()));
  }

  std::string StoredEntryBytes(int64_t sequence) {
    SQLite::Statement query(
        store_->db(), "SELECT entry FROM ledger_entries WHERE sequence=?");
    query.bind(1, sequence);
    if (!query.executeStep()) return "";
    const auto column = query.getColumn(0);
    return std::string(static_cast<const char*>(column.getBlob()),
                       static_cast<size_t>(column.getBytes()));
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(LedgerTest, EmptyLedger) {
  EXPECT_EQ(MustBalance("consumer:nobody"), 0);
  auto entries = ledger_->Entries();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
  auto balances = ledger_->Balances();
  ASSERT_TRUE(balances.ok());
  EXPECT_TRUE(balances->empty());
}

TEST_F(LedgerTest, PostUsageWritesBalancedEntry) {
  PostedEntry posted = MustPost(Charge("r-1", 3600, 1500));
  EXPECT_FALSE(posted.duplicate);
  EXPECT_EQ(posted.amount, 1500);
  const v1::LedgerEntry& entry = posted.entry;
  EXPECT_EQ(entry.sequence(), 1u);
  EXPECT_EQ(entry.prev_hash(), std::string(32, '\0'));
  EXPECT_EQ(entry.idempotency_key(), "usage:site-a:r-1");
  EXPECT_EQ(entry.kind(), "usage");
  EXPECT_EQ(entry.currency(), "CNY");
  EXPECT_EQ(entry.created_ms(), kNowMs);
  EXPECT_EQ(entry.job_id(), "b-r-1");
  EXPECT_EQ(entry.usage_provider(), "site-a");
  EXPECT_EQ(entry.usage_record_id(), "r-1");
  EXPECT_EQ(entry.billed_card_seconds(), 3600u);
  EXPECT_EQ(entry.price_per_card_hour(), 1500);
  ASSERT_EQ(entry.postings_size(), 2);
  EXPECT_EQ(entry.postings(0).account(), "consumer:alice");
  EXPECT_EQ(entry.postings(0).amount(), -1500);
  EXPECT_EQ(entry.postings(1).account(), "provider:site-a");
  EXPECT_EQ(entry.postings(1).amount(), 1500);

  EXPECT_EQ(MustBalance("consumer:alice"), -1500);
  EXPECT_EQ(MustBalance("provider:site-a"), 1500);
  EXPECT_EQ(CountRows("ledger_postings"), 2);
  EXPECT_EQ(CountRows("ledger_entries"), 1);
}

TEST_F(LedgerTest, BalancesAccumulateAcrossEntries) {
  MustPost(Charge("r-1", 3600, 1500));                       // 1500
  MustPost(Charge("r-2", 2, 1500));                          // 1
  MustPost(Charge("r-3", 7200, 600, "bob", "site-b"));       // 1200
  MustPost(Charge("r-4", 1800, 1000, "bob", "site-a"));      // 500
  EXPECT_EQ(MustBalance("consumer:alice"), -1501);
  EXPECT_EQ(MustBalance("consumer:bob"), -1700);
  EXPECT_EQ(MustBalance("provider:site-a"), 2001);
  EXPECT_EQ(MustBalance("provider:site-b"), 1200);

  auto balances = ledger_->Balances();
  ASSERT_TRUE(balances.ok());
  std::map<std::string, std::pair<std::string, int64_t>> by_name;
  int64_t sum = 0;
  for (const auto& balance : *balances) {
    by_name[balance.account] = {balance.kind, balance.balance};
    sum += balance.balance;
  }
  EXPECT_EQ(sum, 0) << "double entry: the books always sum to zero";
  ASSERT_EQ(by_name.size(), 4u);
  EXPECT_EQ(by_name["consumer:alice"].first, "consumer");
  EXPECT_EQ(by_name["provider:site-b"].first, "provider");
  EXPECT_EQ(by_name["provider:site-b"].second, 1200);
}

TEST_F(LedgerTest, ZeroAmountChargeIsStillRecorded) {
  PostedEntry posted = MustPost(Charge("r-1", 1, 1500));  // rounds to 0
  EXPECT_EQ(posted.amount, 0);
  EXPECT_EQ(posted.entry.sequence(), 1u);
  EXPECT_EQ(MustBalance("consumer:alice"), 0);
  EXPECT_EQ(CountRows("ledger_entries"), 1);
}

TEST_F(LedgerTest, ReplayIsIdempotent) {
  PostedEntry first = MustPost(Charge("r-1", 3600, 1500));
  ASSERT_FALSE(first.duplicate);
  // The same (provider, record id), even with different numbers, posts
  // nothing new and reports the first charge.
  PostedEntry again = MustPost(Charge("r-1", 7200, 3000));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.amount, 1500);
  EXPECT_EQ(again.entry.sequence(), 1u);
  EXPECT_EQ(again.entry.SerializeAsString(), first.entry.SerializeAsString());
  EXPECT_EQ(CountRows("ledger_entries"), 1);
  EXPECT_EQ(CountRows("ledger_postings"), 2);
  EXPECT_EQ(MustBalance("consumer:alice"), -1500);
  EXPECT_EQ(MustBalance("provider:site-a"), 1500);
}

TEST_F(LedgerTest, SameRecordIdFromAnotherProviderIsNotADuplicate) {
  MustPost(Charge("r-1", 3600, 1500, "alice", "site-a"));
  PostedEntry other = MustPost(Charge("r-1", 3600, 1500, "alice", "site-b"));
  EXPECT_FALSE(other.duplicate);
  EXPECT_EQ(other.entry.sequence(), 2u);
  EXPECT_EQ(MustBalance("consumer:alice"), -3000);
}

TEST_F(LedgerTest, EntriesFormAHashChain) {
  MustPost(Charge("r-1", 3600, 1500));
  MustPost(Charge("r-2", 100, 1500));
  MustPost(Charge("r-3", 5, 600));
  auto entries = ledger_->Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 3u);
  std::string prev(32, '\0');
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto& entry = (*entries)[i];
    const int64_t sequence = static_cast<int64_t>(i) + 1;
    EXPECT_EQ(entry.sequence(), static_cast<uint64_t>(sequence));
    EXPECT_EQ(entry.prev_hash(), prev) << "entry " << sequence;
    const std::string bytes = StoredEntryBytes(sequence);
    const std::string hash = StoredHash(sequence);
    EXPECT_EQ(hash.size(), 32u);
    EXPECT_EQ(hash, Sha256(bytes)) << "entry " << sequence;
    prev = hash;
  }
  EXPECT_NE((*entries)[1].prev_hash(), (*entries)[2].prev_hash());
}

TEST_F(LedgerTest, NegativePricePostsNothing) {
  auto posted = ledger_->PostUsage(Charge("r-1", 3600, -5), kNowMs);
  EXPECT_EQ(posted.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(CountRows("ledger_entries"), 0);
  EXPECT_EQ(CountRows("ledger_accounts"), 0);
}

TEST_F(LedgerTest, OverflowingChargePostsNothing) {
  auto posted = ledger_->PostUsage(
      Charge("r-1", std::numeric_limits<uint64_t>::max(), 1'000'000'000),
      kNowMs);
  EXPECT_EQ(posted.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(CountRows("ledger_entries"), 0);
  EXPECT_EQ(CountRows("ledger_postings"), 0);
}

TEST_F(LedgerTest, RolledBackTransactionLeavesNoTrace) {
  Status status = RunInTransaction(store_->db(), [&]() -> Status {
    auto posted = ledger_->PostUsage(Charge("r-1", 3600, 1500), kNowMs);
    if (!posted.ok()) return posted.status();
    return AbortedError("the usage record failed to store");
  });
  EXPECT_EQ(status.code(), StatusCode::kAborted);
  EXPECT_EQ(CountRows("ledger_entries"), 0);
  EXPECT_EQ(CountRows("ledger_postings"), 0);
  EXPECT_EQ(MustBalance("consumer:alice"), 0);
  // And the next post starts the chain at 1.
  EXPECT_EQ(MustPost(Charge("r-1", 3600, 1500)).entry.sequence(), 1u);
}

TEST_F(LedgerTest, PostingsSurviveReopen) {
  MustPost(Charge("r-1", 3600, 1500));
  ledger_.reset();
  store_.reset();
  auto store = Store::Open(dir_.File("broker.db"));
  ASSERT_TRUE(store.ok());
  Ledger ledger(**store);
  auto balance = ledger.Balance("provider:site-a");
  ASSERT_TRUE(balance.ok());
  EXPECT_EQ(*balance, 1500);
  auto again = ledger.PostUsage(Charge("r-1", 3600, 1500), kNowMs);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
}

// --- the audit ---------------------------------------------------------------

// A ledger built the way the broker builds it: enrolled providers, records
// signed with their keys, record and charge committed in one transaction.
class LedgerAuditTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    ASSERT_TRUE(
        store_->Enroll(Role::kProvider, site_a_.Public(), kNowMs).ok());
    ASSERT_TRUE(
        store_->Enroll(Role::kProvider, site_b_.Public(), kNowMs).ok());
    ASSERT_TRUE(store_->Enroll(Role::kConsumer, alice_.Public(), kNowMs).ok());
    ASSERT_TRUE(store_->Enroll(Role::kConsumer, bob_.Public(), kNowMs).ok());
    // 1: 2 cards x 1800.5 s = 3602 card-s of site-a at 1500 -> 1501
    PostSigned(site_a_, "r-1", "b-1", "alice", 2, 1'800'500, 1500);
    // 2: 1 card x 1 ms = 1 card-s of site-b at 1800 -> 1 (half up)
    PostSigned(site_b_, "r-1", "b-2", "bob", 1, 1, 1800);
    // 3: 8 cards x 1 h of site-a at 1000 -> 8000
    PostSigned(site_a_, "r-2", "b-3", "bob", 8, 3'600'000, 1000);
  }

  v1::UsageReport SignRecord(const Identity& provider,
                             const std::string& record_id,
                             const std::string& job_id, uint32_t cards,
                             int64_t duration_ms) {
    v1::UsageRecord record;
    record.set_record_id(record_id);
    record.set_job_id(job_id);
    record.set_provider(provider.name());
    record.set_model("A800");
    record.set_cards(cards);
    record.set_start_ms(kNowMs);
    record.set_end_ms(kNowMs + duration_ms);
    record.set_card_seconds(CardSecondsFor(cards, kNowMs, kNowMs + duration_ms));
    auto report = SignUsageRecord(provider.signing_key(), record);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : v1::UsageReport();
  }

  void PostSigned(const Identity& provider, const std::string& record_id,
                  const std::string& job_id, const std::string& consumer,
                  uint32_t cards, int64_t duration_ms, int64_t price) {
    v1::UsageReport report =
        SignRecord(provider, record_id, job_id, cards, duration_ms);
    // The job row names the consumer the audit expects to pay.
    v1::JobInfo job;
    job.set_job_id(job_id);
    job.set_consumer(consumer);
    const std::string blob = job.SerializeAsString();
    SQLite::Statement insert(store_->db(),
                             "INSERT OR IGNORE INTO jobs(job_id, consumer, "
                             "state, info, updated_ms) VALUES(?, ?, 4, ?, 0)");
    insert.bind(1, job_id);
    insert.bind(2, consumer);
    insert.bind(3, blob.data(), static_cast<int>(blob.size()));
    insert.exec();
    Status status = RunInTransaction(store_->db(), [&]() -> Status {
      CN_RETURN_IF_ERROR(store_->InsertUsageRecord(
          StoredUsageRecord{provider.name(), record_id, job_id,
                            report.record(), report.signature()},
          kNowMs));
      UsageCharge charge;
      charge.job_id = job_id;
      charge.consumer = consumer;
      charge.provider = provider.name();
      charge.record_id = record_id;
      charge.currency = "CNY";
      charge.billed_card_seconds =
          CardSecondsFor(cards, kNowMs, kNowMs + duration_ms);
      charge.price_per_card_hour = price;
      CN_ASSIGN_OR_RETURN(PostedEntry posted,
                          ledger_->PostUsage(charge, kNowMs));
      EXPECT_FALSE(posted.duplicate);
      return OkStatus();
    });
    ASSERT_TRUE(status.ok()) << status.ToString();
  }

  Status Verify() {
    auto report = VerifyLedger(*store_);
    return report.status();
  }

  void ExpectDataLoss(const std::string& what_1, const std::string& what_2) {
    Status status = Verify();
    EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status.ToString();
    EXPECT_THAT(status.message(), HasSubstr(what_1));
    EXPECT_THAT(status.message(), HasSubstr(what_2));
  }

  void SetEntryBytes(int64_t sequence, const std::string& bytes) {
    SQLite::Statement update(
        store_->db(), "UPDATE ledger_entries SET entry=? WHERE sequence=?");
    update.bind(1, bytes.data(), static_cast<int>(bytes.size()));
    update.bind(2, sequence);
    ASSERT_EQ(update.exec(), 1);
  }

  void SetEntryHash(int64_t sequence, const std::string& hash) {
    SQLite::Statement update(
        store_->db(), "UPDATE ledger_entries SET hash=? WHERE sequence=?");
    update.bind(1, hash.data(), static_cast<int>(hash.size()));
    update.bind(2, sequence);
    ASSERT_EQ(update.exec(), 1);
  }

  void Exec(const std::string& sql) { store_->db().exec(sql); }

  // Rewrites the whole ledger as a forger with write access to the file (but
  // no provider key) would: applies edit to the entries, then re-derives
  // every sequence, prev_hash, hash, posting row and stored balance, so only
  // the audit's semantic checks can notice.
  void Forge(const std::function<void(std::vector<v1::LedgerEntry>&)>& edit) {
    auto entries = ledger_->Entries();
    ASSERT_TRUE(entries.ok());
    edit(*entries);
    auto& db = store_->db();
    db.exec("DELETE FROM ledger_entries");
    db.exec("DELETE FROM ledger_postings");
    db.exec("DELETE FROM ledger_accounts");
    std::string prev(32, '\0');
    uint64_t sequence = 0;
    for (auto& entry : *entries) {
      entry.set_sequence(++sequence);
      entry.set_prev_hash(prev);
      const std::string bytes = entry.SerializeAsString();
      const std::string hash = Sha256(bytes);
      SQLite::Statement insert(db,
                               "INSERT INTO ledger_entries(sequence, "
                               "idempotency_key, entry, hash) "
                               "VALUES(?, ?, ?, ?)");
      insert.bind(1, static_cast<int64_t>(sequence));
      insert.bind(2, entry.idempotency_key());
      insert.bind(3, bytes.data(), static_cast<int>(bytes.size()));
      insert.bind(4, hash.data(), static_cast<int>(hash.size()));
      insert.exec();
      for (const auto& posting : entry.postings()) {
        SQLite::Statement add(db,
                              "INSERT INTO ledger_postings(sequence, account, "
                              "amount) VALUES(?, ?, ?)");
        add.bind(1, static_cast<int64_t>(sequence));
        add.bind(2, posting.account());
        add.bind(3, static_cast<int64_t>(posting.amount()));
        add.exec();
        const std::string kind =
            posting.account().substr(0, posting.account().find(':'));
        SQLite::Statement account(
            db,
            "INSERT INTO ledger_accounts(name, kind, balance, created_ms) "
            "VALUES(?, ?, ?, 0) ON CONFLICT(name) DO UPDATE SET "
            "balance=balance+excluded.balance");
        account.bind(1, posting.account());
        account.bind(2, kind);
        account.bind(3, static_cast<int64_t>(posting.amount()));
        account.exec();
      }
      prev = hash;
    }
  }

  Identity site_a_ = MustGenerateIdentity("site-a");
  Identity site_b_ = MustGenerateIdentity("site-b");
  Identity alice_ = MustGenerateIdentity("alice");
  Identity bob_ = MustGenerateIdentity("bob");
};

TEST_F(LedgerAuditTest, GoodLedgerVerifies) {
  auto report = VerifyLedger(*store_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->entries, 3u);
  EXPECT_EQ(report->usage_records, 3u);
  EXPECT_EQ(report->accounts, 4u);
  EXPECT_EQ(report->total_charged, 1501 + 1 + 8000);
  EXPECT_EQ(report->head_hash_hex, HexEncode(StoredHash(3)));
  EXPECT_EQ(MustBalance("consumer:alice"), -1501);
  EXPECT_EQ(MustBalance("consumer:bob"), -8001);
  EXPECT_EQ(MustBalance("provider:site-a"), 9501);
  EXPECT_EQ(MustBalance("provider:site-b"), 1);
}

TEST_F(LedgerAuditTest, EmptyLedgerVerifies) {
  TempDir dir;
  auto store = Store::Open(dir.File("empty.db"));
  ASSERT_TRUE(store.ok());
  auto report = VerifyLedger(**store);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->entries, 0u);
  EXPECT_EQ(report->total_charged, 0);
  EXPECT_EQ(report->head_hash_hex, std::string(64, '0'));
}

TEST_F(LedgerAuditTest, VerifiesThroughReadOnlyStore) {
  auto reader = Store::OpenReadOnly(dir_.File("broker.db"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto report = VerifyLedger(**reader);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->entries, 3u);
}

TEST_F(LedgerAuditTest, ReplayedReportKeepsLedgerValid) {
  UsageCharge charge;
  charge.job_id = "b-1";
  charge.consumer = "alice";
  charge.provider = "site-a";
  charge.record_id = "r-1";
  charge.currency = "CNY";
  charge.billed_card_seconds = 3602;
  charge.price_per_card_hour = 1500;
  PostedEntry replay = MustPost(charge);
  EXPECT_TRUE(replay.duplicate);
  EXPECT_EQ(replay.amount, 1501);
  auto report = VerifyLedger(*store_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->entries, 3u);
}

TEST_F(LedgerAuditTest, EditedEntryByteIsDataLoss) {
  std::string bytes = StoredEntryBytes(2);
  const size_t at = bytes.find("consumer:bob");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 9] = 'c';  // consumer:cob: still parses
  SetEntryBytes(2, bytes);
  ExpectDataLoss("ledger entry 2", "hash");
}

TEST_F(LedgerAuditTest, EditedEntryWithRecomputedHashBreaksTheChain) {
  std::string bytes = StoredEntryBytes(2);
  const size_t at = bytes.find("CNY");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 2] = 'Z';
  SetEntryBytes(2, bytes);
  SetEntryHash(2, Sha256(bytes));
  ExpectDataLoss("ledger entry 3", "prev_hash");
}

TEST_F(LedgerAuditTest, UnparseableEntryIsDataLoss) {
  SetEntryBytes(1, std::string("\xff\xff\xff", 3));
  ExpectDataLoss("ledger entry 1", "parse");
}

TEST_F(LedgerAuditTest, DeletedMiddleEntryIsDataLoss) {
  Exec("DELETE FROM ledger_entries WHERE sequence=2");
  ExpectDataLoss("ledger entry 3", "sequence");
}

TEST_F(LedgerAuditTest, DeletedFirstEntryIsDataLoss) {
  Exec("DELETE FROM ledger_entries WHERE sequence=1");
  ExpectDataLoss("ledger entry 2", "expected 1");
}

TEST_F(LedgerAuditTest, DeletedLastEntryLeavesItsRecordUnposted) {
  Exec("DELETE FROM ledger_entries WHERE sequence=3");
  ExpectDataLoss("site-a/r-2", "0 times");
}

TEST_F(LedgerAuditTest, SwappedSequencesAreDataLoss) {
  Exec("UPDATE ledger_entries SET sequence=-1 WHERE sequence=1");
  Exec("UPDATE ledger_entries SET sequence=1 WHERE sequence=2");
  Exec("UPDATE ledger_entries SET sequence=2 WHERE sequence=-1");
  ExpectDataLoss("ledger entry 1", "disagrees");
}

TEST_F(LedgerAuditTest, ReorderedEntriesWithRenumberedBytesAreDataLoss) {
  // Swap the order of entries 2 and 3 and rewrite their own sequence
  // numbers and hashes, keeping prev_hash as it was: the chain breaks.
  auto entries = ledger_->Entries();
  ASSERT_TRUE(entries.ok());
  v1::LedgerEntry second = (*entries)[1];
  v1::LedgerEntry third = (*entries)[2];
  second.set_sequence(3);
  third.set_sequence(2);
  Exec("DELETE FROM ledger_entries WHERE sequence IN (2, 3)");
  Exec("DELETE FROM ledger_postings WHERE sequence IN (2, 3)");
  for (const auto* entry : {&third, &second}) {
    const std::string bytes = entry->SerializeAsString();
    const std::string hash = Sha256(bytes);
    SQLite::Statement insert(store_->db(),
                             "INSERT INTO ledger_entries(sequence, "
                             "idempotency_key, entry, hash) VALUES(?,?,?,?)");
    insert.bind(1, static_cast<int64_t>(entry->sequence()));
    insert.bind(2, entry->idempotency_key());
    insert.bind(3, bytes.data(), static_cast<int>(bytes.size()));
    insert.bind(4, hash.data(), static_cast<int>(hash.size()));
    insert.exec();
    for (const auto& posting : entry->postings()) {
      SQLite::Statement add(store_->db(),
                            "INSERT INTO ledger_postings VALUES(?, ?, ?)");
      add.bind(1, static_cast<int64_t>(entry->sequence()));
      add.bind(2, posting.account());
      add.bind(3, static_cast<int64_t>(posting.amount()));
      add.exec();
    }
  }
  ExpectDataLoss("ledger entry 2", "prev_hash");
}

TEST_F(LedgerAuditTest, ChangedPostingRowIsDataLoss) {
  Exec("UPDATE ledger_postings SET amount=amount+1 "
       "WHERE sequence=2 AND amount<0");
  ExpectDataLoss("ledger entry 2", "posting rows");
}

TEST_F(LedgerAuditTest, MissingPostingRowIsDataLoss) {
  Exec("DELETE FROM ledger_postings WHERE sequence=3 AND amount>0");
  ExpectDataLoss("ledger entry 3", "posting rows");
}

TEST_F(LedgerAuditTest, ExtraPostingRowIsDataLoss) {
  Exec("INSERT INTO ledger_postings VALUES(1, 'provider:mallory', 0)");
  ExpectDataLoss("ledger entry 1", "posting rows");
}

TEST_F(LedgerAuditTest, ChangedAccountBalanceIsDataLoss) {
  Exec("UPDATE ledger_accounts SET balance=balance+1 "
       "WHERE name='provider:site-a'");
  ExpectDataLoss("provider:site-a", "balance");
}

TEST_F(LedgerAuditTest, DeletedAccountRowIsDataLoss) {
  // Ledger::Balance now reports 0 for site-a, while its postings sum to
  // 9501: the stored balances no longer equal the postings.
  Exec("DELETE FROM ledger_accounts WHERE name='provider:site-a'");
  ASSERT_EQ(MustBalance("provider:site-a"), 0);
  ExpectDataLoss("provider:site-a", "no account row");
}

TEST_F(LedgerAuditTest, SignatureByAnotherKeyIsDataLoss) {
  // Re-sign site-a's record r-2 with site-b's key: a valid Ed25519
  // signature, but not by the enrolled provider.
  auto stored = store_->FindUsageRecord("site-a", "r-2");
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->has_value());
  auto forged = site_b_.signing_key().Sign(
      DomainSeparated(kUsageRecordDomain, (*stored)->record));
  ASSERT_TRUE(forged.ok());
  SQLite::Statement update(store_->db(),
                           "UPDATE usage_records SET signature=? "
                           "WHERE provider='site-a' AND record_id='r-2'");
  update.bind(1, forged->data(), static_cast<int>(forged->size()));
  ASSERT_EQ(update.exec(), 1);
  ExpectDataLoss("ledger entry 3", "signature");
}

TEST_F(LedgerAuditTest, EditedUsageRecordIsDataLoss) {
  // Inflate the signed record itself (and its card-seconds to match).
  auto stored = store_->FindUsageRecord("site-b", "r-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  v1::UsageRecord record;
  ASSERT_TRUE(record.ParseFromString((*stored)->record));
  record.set_end_ms(record.end_ms() + 3'600'000);
  record.set_card_seconds(
      CardSecondsFor(record.cards(), record.start_ms(), record.end_ms()));
  const std::string bytes = record.SerializeAsString();
  SQLite::Statement update(store_->db(),
                           "UPDATE usage_records SET record=? "
                           "WHERE provider='site-b' AND record_id='r-1'");
  update.bind(1, bytes.data(), static_cast<int>(bytes.size()));
  ASSERT_EQ(update.exec(), 1);
  ExpectDataLoss("ledger entry 2", "signature");
}

TEST_F(LedgerAuditTest, DeletedUsageRecordIsDataLoss) {
  Exec("DELETE FROM usage_records WHERE provider='site-b'");
  ExpectDataLoss("ledger entry 2", "missing");
}

TEST_F(LedgerAuditTest, UnenrolledProviderIsDataLoss) {
  Exec("DELETE FROM enrollments WHERE name='site-b'");
  ExpectDataLoss("ledger entry 2", "enrolled key");
}

TEST_F(LedgerAuditTest, UsageRecordWithoutEntryIsDataLoss) {
  v1::UsageReport report = SignRecord(site_b_, "r-9", "b-9", 1, 60'000);
  ASSERT_TRUE(store_
                  ->InsertUsageRecord(
                      StoredUsageRecord{"site-b", "r-9", "b-9",
                                        report.record(), report.signature()},
                      kNowMs + 1)
                  .ok());
  ExpectDataLoss("site-b/r-9", "0 times");
}

// The forger's rewrites below keep the chain, posting rows and balances
// consistent; only the audit's checks against the signed records remain.

TEST_F(LedgerAuditTest, ForgeHelperAloneKeepsLedgerValid) {
  Forge([](std::vector<v1::LedgerEntry>&) {});
  Status status = Verify();
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST_F(LedgerAuditTest, ForgedAmountBreakingRoundingRuleIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    auto& entry = entries[2];  // 8000 -> 8001
    entry.mutable_postings(0)->set_amount(-8001);
    entry.mutable_postings(1)->set_amount(8001);
  });
  ExpectDataLoss("ledger entry 3", "rounding rule");
}

TEST_F(LedgerAuditTest, ForgedUnbalancedEntryIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[0].mutable_postings(1)->set_amount(1502);
  });
  ExpectDataLoss("ledger entry 1", "sum to 1");
}

TEST_F(LedgerAuditTest, ForgedCardSecondsAboveRecordIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    auto& entry = entries[2];
    entry.set_billed_card_seconds(2 * 8 * 3600);  // doubles the record
    entry.mutable_postings(0)->set_amount(-16000);
    entry.mutable_postings(1)->set_amount(16000);
  });
  ExpectDataLoss("ledger entry 3", "does not match its usage record");
}

TEST_F(LedgerAuditTest, ForgedJobIdIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[0].set_job_id("b-3");
  });
  ExpectDataLoss("ledger entry 1", "does not match its usage record");
}

TEST_F(LedgerAuditTest, ForgedSecondChargeForOneRecordIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    v1::LedgerEntry copy = entries[0];
    copy.set_idempotency_key("usage:site-a:r-1:again");
    entries.push_back(copy);
  });
  ExpectDataLoss("site-a/r-1", "2 times");
}

TEST_F(LedgerAuditTest, ForgedCreditToAnotherAccountIsDataLoss) {
  // The record is signed by site-a, but the money goes to mallory. Every
  // number still adds up; only the account names differ from the record.
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[2].mutable_postings(1)->set_account("provider:mallory");
  });
  Status status = Verify();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss)
      << "a usage charge credited to an account other than the provider "
         "that signed the record passed the audit";
}

TEST_F(LedgerAuditTest, ForgedEntryOfUnknownKindIsDataLoss) {
  // A balanced entry moving money from bob to mallory that no signed usage
  // record backs.
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    v1::LedgerEntry gift;
    gift.set_idempotency_key("gift:1");
    gift.set_kind("adjustment");
    gift.set_currency("CNY");
    gift.set_created_ms(kNowMs);
    auto* debit = gift.add_postings();
    debit->set_account("consumer:bob");
    debit->set_amount(-1'000'000);
    auto* credit = gift.add_postings();
    credit->set_account("provider:mallory");
    credit->set_amount(1'000'000);
    entries.push_back(gift);
  });
  Status status = Verify();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss)
      << "an entry of unknown kind, backed by no usage record, passed the "
         "audit";
}

}  // namespace
}  // namespace computenet::broker
