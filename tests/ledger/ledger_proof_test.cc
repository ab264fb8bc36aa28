// Checkpoints as the broker signs them, entry proofs (`computenet ledger
// prove`), statements with a proof per line, and the migration of a
// schema-1 file whose ledger predates holds and checkpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "computenet/ledger/ledger.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/common/checkpoint.h"
#include "computenet/common/merkle.h"
#include "computenet/common/sha256.h"
#include "ledger_fixture.h"

namespace computenet::ledger {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kLedgerNowMs;
using testing::LedgerFixture;

class LedgerProofTest : public ::testing::Test {
 protected:
  void SetUp() override {
    f_.MustTopUp("alice", 10'000, "t-alice");  // 1
    f_.MustTopUp("bob", 10'000, "t-bob");      // 2
    job_ = f_.Job("b-1", "alice", "site-a", 1, 600, 3600);
    f_.MustHold(job_);                                   // 3
    f_.MustPost(job_, "b-1:1", 0, 60'000, false);        // 4
    f_.MustPost(job_, "b-1:final", 60'000, 90'000, true);  // 5, 6 (void)
  }

  const VerifyingKey& Key() {
    return f_.broker_identity().signing_key().verifying_key();
  }

  LedgerFixture f_;
  v1::JobInfo job_;
};

TEST_F(LedgerProofTest, CheckpointerSignsByCountAndByTime) {
  Checkpointer checkpointer(f_.database(), "hub", f_.broker_identity().signing_key(),
                            CheckpointPolicy{4, 60'000});
  // Six entries and no checkpoint yet: due by count.
  auto first = checkpointer.MaybeCheckpoint(kLedgerNowMs);
  ASSERT_TRUE(first.ok() && first->has_value());
  auto parsed = VerifyCheckpoint(Key(), **first);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->tree_size(), 6u);
  EXPECT_EQ(parsed->broker_id(), "hub");
  auto leaves = LedgerLeafHashes(f_.database(), 6);
  ASSERT_TRUE(leaves.ok());
  EXPECT_EQ(parsed->root_hash(), *merkle::RootOf(*leaves, 6));
  // Nothing new: nothing due, even much later.
  auto none = checkpointer.MaybeCheckpoint(kLedgerNowMs + 3'600'000);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // One new entry: not due by count (1 < 4) until the interval passes.
  f_.MustTopUp("alice", 1, "t-more");
  auto early = checkpointer.MaybeCheckpoint(kLedgerNowMs + 1000);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value());
  auto due = checkpointer.MaybeCheckpoint(kLedgerNowMs + 60'000);
  ASSERT_TRUE(due.ok() && due->has_value());
  EXPECT_EQ(VerifyCheckpoint(Key(), **due)->tree_size(), 7u);
  // A clock that went back does not make checkpoint times go back.
  f_.MustTopUp("alice", 1, "t-again");
  auto back = checkpointer.CheckpointNow(kLedgerNowMs - 5'000'000);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(VerifyCheckpoint(Key(), **back)->timestamp_ms(),
            kLedgerNowMs + 60'000);
  auto all = ListCheckpoints(f_.database());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  EXPECT_TRUE(VerifyLedger(f_.database()).ok());
  // A second checkpointer on the same file continues where it left off.
  Checkpointer again(f_.database(), "hub", f_.broker_identity().signing_key(),
                     CheckpointPolicy{1, 0});
  auto nothing = again.MaybeCheckpoint(kLedgerNowMs + 70'000);
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
}

TEST_F(LedgerProofTest, EveryEntryHasAProofThatVerifiesOffline) {
  EXPECT_EQ(ProveEntry(f_.database(), 1).status().code(),
            StatusCode::kFailedPrecondition);  // nothing signed yet
  f_.MustCheckpoint();
  for (uint64_t sequence = 1; sequence <= 6; ++sequence) {
    auto proof = ProveEntry(f_.database(), sequence);
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    auto entry = VerifyEntryProof(Key(), *proof);
    ASSERT_TRUE(entry.ok()) << sequence << ": " << entry.status().ToString();
    EXPECT_EQ(entry->sequence(), sequence);
  }
  EXPECT_EQ(ProveEntry(f_.database(), 7).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ProveEntry(f_.database(), 0).status().code(), StatusCode::kNotFound);
  f_.MustTopUp("bob", 5, "t-late");
  auto late = ProveEntry(f_.database(), 7);
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("covers 6"));
  // Under another broker's key the same proof is worthless.
  auto proof = ProveEntry(f_.database(), 4);
  ASSERT_TRUE(proof.ok());
  EXPECT_EQ(VerifyEntryProof(f_.site_a().signing_key().verifying_key(), *proof)
                .status()
                .code(),
            StatusCode::kUnauthenticated);
}

TEST_F(LedgerProofTest, StatementHasTheAccountsLinesEachProven) {
  f_.MustCheckpoint();
  StatementQuery query;
  query.account = "consumer:alice";
  auto statement = BuildStatement(f_.database(), query);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_EQ(statement->broker_id(), "hub");
  EXPECT_FALSE(statement->truncated());
  auto checkpoint = VerifyCheckpoint(Key(), statement->checkpoint());
  ASSERT_TRUE(checkpoint.ok());
  std::vector<uint64_t> sequences;
  std::vector<std::string> kinds;
  for (const auto& line : statement->lines()) {
    auto entry = VerifyStatementLine(*checkpoint, line);
    ASSERT_TRUE(entry.ok()) << entry.status().ToString();
    sequences.push_back(entry->sequence());
    kinds.push_back(entry->kind());
  }
  // Alice's top-up, hold, two charges and the release; not bob's top-up.
  EXPECT_THAT(sequences, ElementsAre(1u, 3u, 4u, 5u, 6u));
  EXPECT_THAT(kinds, ElementsAre("topup", "hold", "usage", "usage", "void"));
  EXPECT_EQ(statement->last_sequence(), 6u);

  // The provider sees its two charges.
  query.account = "provider:site-a";
  auto provider = BuildStatement(f_.database(), query);
  ASSERT_TRUE(provider.ok());
  ASSERT_EQ(provider->lines_size(), 2);

  // A line altered in transit fails its proof.
  v1::StatementLine altered = statement->lines(2);
  std::string bytes = altered.entry();
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
  altered.set_entry(bytes);
  EXPECT_FALSE(VerifyStatementLine(*checkpoint, altered).ok());
}

TEST_F(LedgerProofTest, StatementPeriodsAndPages) {
  f_.MustCheckpoint();
  // Entries are one second apart from kLedgerNowMs + 1 s: alice's are at
  // +1 s (top-up), +3 s (hold), +4 s, +5 s (charges), +5 s (release).
  StatementQuery query;
  query.account = "consumer:alice";
  query.from_ms = kLedgerNowMs + 3000;
  query.to_ms = kLedgerNowMs + 5000;
  auto period = BuildStatement(f_.database(), query);
  ASSERT_TRUE(period.ok());
  ASSERT_EQ(period->lines_size(), 2);  // the hold and the first charge
  query.from_ms = 0;
  query.to_ms = 0;
  query.limit = 2;
  std::vector<uint64_t> seen;
  for (int page = 0; page < 5; ++page) {
    auto part = BuildStatement(f_.database(), query);
    ASSERT_TRUE(part.ok());
    for (const auto& line : part->lines()) {
      seen.push_back(line.inclusion().leaf_index() + 1);
    }
    if (!part->truncated()) break;
    EXPECT_EQ(part->lines_size(), 2);
    query.after_sequence = part->last_sequence();
  }
  EXPECT_THAT(seen, ElementsAre(1u, 3u, 4u, 5u, 6u));
  // Lines past the latest checkpoint are left out until one is signed.
  f_.MustTopUp("alice", 5, "t-late");
  query.after_sequence = 0;
  query.limit = 0;
  auto unsigned_tail = BuildStatement(f_.database(), query);
  ASSERT_TRUE(unsigned_tail.ok());
  EXPECT_EQ(unsigned_tail->lines_size(), 5);
  f_.MustCheckpoint();
  auto signed_tail = BuildStatement(f_.database(), query);
  ASSERT_TRUE(signed_tail.ok());
  EXPECT_EQ(signed_tail->lines_size(), 6);
}

TEST(LedgerEmptyStatementTest, EmptyLedgerGivesAnEmptyStatement) {
  LedgerFixture f;
  StatementQuery query;
  query.account = "consumer:alice";
  auto statement = BuildStatement(f.database(), query);
  ASSERT_TRUE(statement.ok());
  EXPECT_EQ(statement->lines_size(), 0);
  EXPECT_FALSE(statement->has_checkpoint());
}

// --- a schema-1 file ----------------------------------------------------------

// The schema of version 1, as files written by the first release have it.
constexpr const char* kSchemaV1[] = {
    R"sql(CREATE TABLE enrollments(curve_public TEXT PRIMARY KEY, role TEXT NOT
      NULL, name TEXT NOT NULL, ed25519_public TEXT NOT NULL, enrolled_ms
      INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, UNIQUE(role, name)))sql",
    R"sql(CREATE TABLE providers(name TEXT PRIMARY KEY, registration BLOB NOT
      NULL, online INTEGER NOT NULL, updated_ms INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE jobs(seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT
      NOT NULL UNIQUE, consumer TEXT NOT NULL, idempotency_key TEXT, state
      INTEGER NOT NULL, provider TEXT, info BLOB NOT NULL, updated_ms INTEGER
      NOT NULL, UNIQUE(consumer, idempotency_key)))sql",
    "CREATE INDEX jobs_by_state ON jobs(state, seq)",
    "CREATE INDEX jobs_by_consumer ON jobs(consumer, seq)",
    R"sql(CREATE TABLE usage_records(provider TEXT NOT NULL, record_id TEXT
      NOT NULL, job_id TEXT NOT NULL UNIQUE, record BLOB NOT NULL, signature
      BLOB NOT NULL, received_ms INTEGER NOT NULL, PRIMARY KEY(provider,
      record_id)))sql",
    R"sql(CREATE TABLE ledger_accounts(name TEXT PRIMARY KEY, kind TEXT NOT
      NULL, balance INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL))sql",
    R"sql(CREATE TABLE ledger_entries(sequence INTEGER PRIMARY KEY,
      idempotency_key TEXT NOT NULL UNIQUE, entry BLOB NOT NULL, hash BLOB NOT
      NULL))sql",
    R"sql(CREATE TABLE ledger_postings(sequence INTEGER NOT NULL, account TEXT
      NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY(sequence, account)))sql",
    "PRAGMA user_version=1",
};

TEST(LedgerMigrationTest, SchemaOneLedgerMigratesAndKeepsVerifying) {
  testing::TempDir dir;
  const std::string path = dir.File("v1.db");
  Identity site_a = testing::MustGenerateIdentity("site-a");
  Identity alice = testing::MustGenerateIdentity("alice");
  {
    // A broker of the first release charged alice 1501 for one job, with no
    // hold: her balance went negative.
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    for (const char* statement : kSchemaV1) db.exec(statement);
    for (const auto* party : {&site_a, &alice}) {
      SQLite::Statement enroll(db, "INSERT INTO enrollments VALUES(?, ?, ?, ?, 0, 0)");
      enroll.bind(1, party->curve().public_z85);
      enroll.bind(2, party == &site_a ? "provider" : "consumer");
      enroll.bind(3, party->name());
      enroll.bind(4, party->signing_key().verifying_key().hex());
      enroll.exec();
    }
    v1::JobInfo job;
    job.set_job_id("hub-1");
    job.set_consumer("alice");
    const std::string job_blob = job.SerializeAsString();
    SQLite::Statement insert_job(
        db, "INSERT INTO jobs(job_id, consumer, state, info, updated_ms) "
            "VALUES('hub-1', 'alice', 4, ?, 0)");
    insert_job.bind(1, job_blob.data(), static_cast<int>(job_blob.size()));
    insert_job.exec();
    v1::UsageRecord record;
    record.set_record_id("hub-1:final");
    record.set_job_id("hub-1");
    record.set_provider("site-a");
    record.set_model("A800");
    record.set_cards(2);
    record.set_start_ms(0);
    record.set_end_ms(1'800'500);
    record.set_card_seconds(3602);
    auto report = SignUsageRecord(site_a.signing_key(), record);
    ASSERT_TRUE(report.ok());
    SQLite::Statement insert_record(
        db, "INSERT INTO usage_records VALUES('site-a', 'hub-1:final', "
            "'hub-1', ?, ?, 0)");
    insert_record.bind(1, report->record().data(),
                       static_cast<int>(report->record().size()));
    insert_record.bind(2, report->signature().data(),
                       static_cast<int>(report->signature().size()));
    insert_record.exec();
    v1::LedgerEntry entry;
    entry.set_sequence(1);
    entry.set_prev_hash(std::string(32, '\0'));
    entry.set_idempotency_key("usage:site-a:hub-1:final");
    entry.set_kind("usage");
    entry.set_currency("CNY");
    entry.set_job_id("hub-1");
    entry.set_usage_provider("site-a");
    entry.set_usage_record_id("hub-1:final");
    entry.set_billed_card_seconds(3602);
    entry.set_price_per_card_hour(1500);
    auto* debit = entry.add_postings();
    debit->set_account("consumer:alice");
    debit->set_amount(-1501);
    auto* credit = entry.add_postings();
    credit->set_account("provider:site-a");
    credit->set_amount(1501);
    const std::string bytes = entry.SerializeAsString();
    const std::string hash = Sha256(bytes);
    SQLite::Statement insert_entry(
        db, "INSERT INTO ledger_entries VALUES(1, ?, ?, ?)");
    insert_entry.bind(1, entry.idempotency_key());
    insert_entry.bind(2, bytes.data(), static_cast<int>(bytes.size()));
    insert_entry.bind(3, hash.data(), static_cast<int>(hash.size()));
    insert_entry.exec();
    db.exec("INSERT INTO ledger_postings VALUES(1, 'consumer:alice', -1501), "
            "(1, 'provider:site-a', 1501)");
    db.exec("INSERT INTO ledger_accounts VALUES('consumer:alice', 'consumer', "
            "-1501, 0), ('provider:site-a', 'provider', 1501, 0)");
  }
  // Read-only opening (the audit) asks for the migration first.
  auto read_only = broker::Store::OpenReadOnly(path);
  EXPECT_EQ(read_only.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(read_only.status().message(), HasSubstr("schema version 1"));

  auto store = broker::Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->database().SchemaVersion("ledger").value(), 3);
  auto report = VerifyLedger((*store)->database());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->v1_entries, 1u);
  EXPECT_EQ(report->entries, 1u);
  EXPECT_EQ(report->total_charged, 1501);

  // Schema 2 continues the same chain: alice owes 1501 and must top up
  // before a hold fits.
  ASSERT_TRUE(BindLedgerToBroker((*store)->database(), "hub", site_a.signing_key()
                                                     .verifying_key()
                                                     .hex())
                  .ok());
  Ledger ledger((*store)->database(), LedgerOptions{"hub", 0});
  HoldRequest hold{"hub-2", "alice", "site-a", "CNY", 1, 1, 60, 3600, "", "", 0};
  v1::JobInfo job2;
  job2.set_job_id("hub-2");
  job2.set_consumer("alice");
  const std::string job2_blob = job2.SerializeAsString();
  SQLite::Statement insert_job2(
      storage::RawConnectionForTesting((*store)->database()), "INSERT INTO jobs(job_id, consumer, state, info, "
                      "updated_ms) VALUES('hub-2', 'alice', 3, ?, 0)");
  insert_job2.bind(1, job2_blob.data(), static_cast<int>(job2_blob.size()));
  insert_job2.exec();
  EXPECT_EQ(ledger.PlaceHold(hold, 1).status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ledger.TopUp("alice", 1561, "settle-v1", "", 2).ok());
  auto placed = ledger.PlaceHold(hold, 3);
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  EXPECT_EQ(placed->entry.sequence(), 3u);
  EXPECT_EQ(placed->entry.prev_hash().size(), 32u);
  auto again = VerifyLedger((*store)->database());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->entries, 3u);
  EXPECT_EQ(again->v1_entries, 1u);
  // And the job-level uniqueness of usage records is gone.
  ASSERT_TRUE(UsageRecords((*store)->database())
                  .Insert(
                      StoredUsageRecord{"site-a", "hub-1:extra", "hub-1", "r",
                                        "s"},
                      5)
                  .ok());
}

}  // namespace
}  // namespace computenet::ledger
