// The offline audit (VerifyLedger) against real tampering of a real ledger
// file: edited, deleted and reordered entries, edited tables, forged
// signatures, entries a forger rewrote consistently (so that only the
// audit's semantic checks or the signed checkpoints can notice), and a
// history the broker itself rewrote and signed again (a fork).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "computenet/ledger/ledger.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/common/checkpoint.h"
#include "computenet/common/sha256.h"
#include "ledger_fixture.h"

namespace computenet::ledger {
namespace {

using ::testing::HasSubstr;
using testing::LedgerFixture;

// Nine entries, built as the broker builds them, with a 2.5% fee:
//   1 topup alice 100000          2 topup bob 50000
//   3 hold b-1 (alice, site-a, 2 cards x 3600 s at 1500) = 3000
//   4 hold b-2 (bob, site-b, 1 card x 600 s at 1800)     = 300
//   5 usage b-1:1 3600 card-s: 1500 = 1463 site-a + 37 fee
//   6 usage b-2:final 1 card-s: 1 (fee 0)   7 void b-2: 299
//   8 usage b-1:final 2 card-s: 1 (cumulative 3602 -> 1501)
//   9 void b-1: 1499
// and a signed checkpoint of all nine.
class LedgerAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    f_.MustTopUp("alice", 100'000, "t-alice");
    f_.MustTopUp("bob", 50'000, "t-bob");
    v1::JobInfo b1 = f_.Job("b-1", "alice", "site-a", 2, 3600, 1500);
    v1::JobInfo b2 = f_.Job("b-2", "bob", "site-b", 1, 600, 1800);
    f_.MustHold(b1);
    f_.MustHold(b2);
    f_.MustPost(b1, "b-1:1", 0, 1'800'000, false);
    f_.MustPost(b2, "b-2:final", 0, 1, true);
    f_.MustPost(b1, "b-1:final", 1'800'000, 1'800'500, true);
    checkpoint_ = f_.MustCheckpoint();
  }

  Status Verify(const LedgerAuditOptions& options = {}) {
    return VerifyLedger(f_.database(), options).status();
  }

  void ExpectDataLoss(const std::string& what_1, const std::string& what_2) {
    Status status = Verify();
    EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status.ToString();
    EXPECT_THAT(status.message(), HasSubstr(what_1));
    EXPECT_THAT(status.message(), HasSubstr(what_2));
  }

  void Exec(const std::string& sql) { storage::RawConnectionForTesting(f_.store().database()).exec(sql); }

  std::string Blob(const std::string& sql, int64_t key) {
    SQLite::Statement query(storage::RawConnectionForTesting(f_.store().database()), sql);
    query.bind(1, key);
    if (!query.executeStep()) return "";
    const auto column = query.getColumn(0);
    return std::string(static_cast<const char*>(column.getBlob()),
                       static_cast<size_t>(column.getBytes()));
  }
  std::string EntryBytes(int64_t sequence) {
    return Blob("SELECT entry FROM ledger_entries WHERE sequence=?", sequence);
  }
  std::string EntryHash(int64_t sequence) {
    return Blob("SELECT hash FROM ledger_entries WHERE sequence=?", sequence);
  }
  void SetBlob(const std::string& sql, const std::string& bytes, int64_t key) {
    SQLite::Statement update(storage::RawConnectionForTesting(f_.store().database()), sql);
    update.bind(1, bytes.data(), static_cast<int>(bytes.size()));
    update.bind(2, key);
    ASSERT_EQ(update.exec(), 1);
  }
  void SetEntryBytes(int64_t sequence, const std::string& bytes) {
    SetBlob("UPDATE ledger_entries SET entry=? WHERE sequence=?", bytes,
            sequence);
  }

  // Rewrites the whole ledger as a forger with write access to the file
  // (but no provider's key) would: applies edit to the entries, then
  // re-derives every sequence, prev_hash, hash, posting row, statement row
  // and stored balance. The signed checkpoint stays as it was.
  void Forge(const std::function<void(std::vector<v1::LedgerEntry>&)>& edit) {
    auto entries = f_.ledger().Entries();
    ASSERT_TRUE(entries.ok());
    edit(*entries);
    auto& db = storage::RawConnectionForTesting(f_.store().database());
    SQLite::Transaction transaction(db);
    db.exec("DELETE FROM ledger_entries");
    db.exec("DELETE FROM ledger_postings");
    db.exec("DELETE FROM ledger_entry_accounts");
    db.exec("UPDATE ledger_accounts SET balance=0");
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
      std::set<std::string> touched;
      if (!entry.account().empty()) touched.insert(entry.account());
      for (const auto& posting : entry.postings()) {
        touched.insert(posting.account());
        SQLite::Statement add(db, "INSERT INTO ledger_postings VALUES(?, ?, ?)");
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
      for (const auto& account : touched) {
        SQLite::Statement add(db,
                              "INSERT INTO ledger_entry_accounts VALUES(?, ?)");
        add.bind(1, account);
        add.bind(2, static_cast<int64_t>(sequence));
        add.exec();
      }
      prev = hash;
    }
    transaction.commit();
  }

  LedgerFixture f_{250};
  v1::SignedCheckpoint checkpoint_;
};

TEST_F(LedgerAuditTest, GoodLedgerVerifies) {
  auto report = VerifyLedger(f_.database());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->entries, 9u);
  EXPECT_EQ(report->usage_records, 3u);
  EXPECT_EQ(report->total_charged, 1500 + 1 + 1);
  EXPECT_EQ(report->holds, 2u);
  EXPECT_EQ(report->open_holds, 0u);
  EXPECT_EQ(report->checkpoints, 1u);
  EXPECT_EQ(report->checkpointed_entries, 9u);
  EXPECT_EQ(report->broker_id, "hub");
  EXPECT_EQ(report->v1_entries, 0u);
  EXPECT_EQ(report->head_hash_hex, HexEncode(EntryHash(9)));
  auto& ledger = f_.ledger();
  EXPECT_EQ(*ledger.Balance("consumer:alice"), 98'499);
  EXPECT_EQ(*ledger.Balance("consumer:bob"), 49'999);
  EXPECT_EQ(*ledger.Balance("provider:site-a"), 1464);
  EXPECT_EQ(*ledger.Balance("provider:site-b"), 1);
  EXPECT_EQ(*ledger.Balance("fee:hub"), 37);
  EXPECT_EQ(*ledger.Balance(kTopUpAccount), -150'000);
  // Pinned to the broker's own key: still fine.
  LedgerAuditOptions pinned;
  pinned.expected_broker_key = f_.broker_identity().signing_key().verifying_key().hex();
  EXPECT_TRUE(Verify(pinned).ok());
}

TEST_F(LedgerAuditTest, EmptyLedgerVerifies) {
  LedgerFixture empty;
  auto report = VerifyLedger(empty.database());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->entries, 0u);
  EXPECT_EQ(report->total_charged, 0);
  EXPECT_EQ(report->head_hash_hex, std::string(64, '0'));
}

TEST_F(LedgerAuditTest, VerifiesThroughReadOnlyStore) {
  auto reader = broker::Store::OpenReadOnly(f_.path());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto report = VerifyLedger((*reader)->database());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->entries, 9u);
}

TEST_F(LedgerAuditTest, OpenHoldAndLaterEntriesVerify) {
  v1::JobInfo b3 = f_.Job("b-3", "alice", "site-b", 4, 60, 600);
  f_.MustHold(b3);
  f_.MustPost(b3, "b-3:1", 0, 30'000, false);
  auto report = VerifyLedger(f_.database());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->open_holds, 1u);
  EXPECT_EQ(report->checkpointed_entries, 9u);
  EXPECT_EQ(report->entries, 11u);
}

// --- one byte, one row ---------------------------------------------------------

TEST_F(LedgerAuditTest, EditedEntryByteIsDataLoss) {
  std::string bytes = EntryBytes(5);
  const size_t at = bytes.find("consumer:alice");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 9] = 'b';  // consumer:blice: still parses
  SetEntryBytes(5, bytes);
  ExpectDataLoss("ledger entry 5", "hash");
}

TEST_F(LedgerAuditTest, EditedEntryWithRecomputedHashBreaksTheChain) {
  // A change no rule looks at (the time), with the hash recomputed: only
  // the next entry's prev_hash notices.
  v1::LedgerEntry entry;
  ASSERT_TRUE(entry.ParseFromString(EntryBytes(5)));
  entry.set_created_ms(entry.created_ms() - 60'000);
  const std::string bytes = entry.SerializeAsString();
  SetEntryBytes(5, bytes);
  SetBlob("UPDATE ledger_entries SET hash=? WHERE sequence=?", Sha256(bytes), 5);
  ExpectDataLoss("ledger entry 6", "prev_hash");
}

TEST_F(LedgerAuditTest, UnparseableEntryIsDataLoss) {
  SetEntryBytes(1, std::string("\xff\xff\xff", 3));
  ExpectDataLoss("ledger entry 1", "parse");
}

TEST_F(LedgerAuditTest, DeletedMiddleEntryIsDataLoss) {
  Exec("DELETE FROM ledger_entries WHERE sequence=4");
  ExpectDataLoss("ledger entry 5", "sequence");
}

TEST_F(LedgerAuditTest, DeletedFirstEntryIsDataLoss) {
  Exec("DELETE FROM ledger_entries WHERE sequence=1");
  ExpectDataLoss("ledger entry 2", "expected 1");
}

TEST_F(LedgerAuditTest, DeletedLastEntryIsCaughtByTheCheckpoint) {
  // The chain alone cannot tell a removed tail; the signed head can.
  Exec("DELETE FROM ledger_entries WHERE sequence=9");
  Exec("DELETE FROM ledger_postings WHERE sequence=9");
  Exec("DELETE FROM ledger_entry_accounts WHERE sequence=9");
  ExpectDataLoss("checkpoint at 9", "only 8");
}

TEST_F(LedgerAuditTest, SwappedSequencesAreDataLoss) {
  Exec("UPDATE ledger_entries SET sequence=-1 WHERE sequence=1");
  Exec("UPDATE ledger_entries SET sequence=1 WHERE sequence=2");
  Exec("UPDATE ledger_entries SET sequence=2 WHERE sequence=-1");
  ExpectDataLoss("ledger entry 1", "disagrees");
}

TEST_F(LedgerAuditTest, ReorderedEntriesWithRenumberedBytesAreDataLoss) {
  // Swap entries 5 and 6, rewriting their own sequence numbers and hashes
  // but keeping prev_hash: the chain breaks.
  auto entries = f_.ledger().Entries();
  ASSERT_TRUE(entries.ok());
  v1::LedgerEntry fifth = (*entries)[4];
  v1::LedgerEntry sixth = (*entries)[5];
  fifth.set_sequence(6);
  sixth.set_sequence(5);
  for (const auto* entry : {&sixth, &fifth}) {
    const std::string bytes = entry->SerializeAsString();
    Exec("DELETE FROM ledger_entries WHERE sequence=" +
         std::to_string(entry->sequence()));
    SQLite::Statement insert(storage::RawConnectionForTesting(f_.store().database()),
                             "INSERT INTO ledger_entries(sequence, "
                             "idempotency_key, entry, hash) VALUES(?,?,?,?)");
    insert.bind(1, static_cast<int64_t>(entry->sequence()));
    insert.bind(2, entry->idempotency_key() + "'");  // keys stay unique
    insert.bind(3, bytes.data(), static_cast<int>(bytes.size()));
    const std::string hash = Sha256(bytes);
    insert.bind(4, hash.data(), static_cast<int>(hash.size()));
    insert.exec();
  }
  Exec("UPDATE ledger_entries SET idempotency_key=substr(idempotency_key, 1, "
       "length(idempotency_key) - 1) WHERE idempotency_key LIKE '%'''");
  ExpectDataLoss("ledger entry 5", "prev_hash");
}

TEST_F(LedgerAuditTest, ChangedPostingRowIsDataLoss) {
  Exec("UPDATE ledger_postings SET amount=amount+1 WHERE sequence=5 AND "
       "amount<0");
  ExpectDataLoss("ledger entry 5", "posting rows");
}

TEST_F(LedgerAuditTest, MissingPostingRowIsDataLoss) {
  Exec("DELETE FROM ledger_postings WHERE sequence=5 AND account='fee:hub'");
  ExpectDataLoss("ledger entry 5", "posting rows");
}

TEST_F(LedgerAuditTest, ExtraPostingRowIsDataLoss) {
  Exec("INSERT INTO ledger_postings VALUES(1, 'provider:mallory', 0)");
  ExpectDataLoss("ledger entry 1", "posting rows");
}

TEST_F(LedgerAuditTest, HiddenStatementLineIsDataLoss) {
  // Dropping a line from a party's statement index is noticed too.
  Exec("DELETE FROM ledger_entry_accounts WHERE sequence=3");
  ExpectDataLoss("ledger entry 3", "statement index");
}

TEST_F(LedgerAuditTest, ChangedAccountBalanceIsDataLoss) {
  Exec("UPDATE ledger_accounts SET balance=balance+1 WHERE "
       "name='provider:site-a'");
  ExpectDataLoss("provider:site-a", "balance");
}

TEST_F(LedgerAuditTest, ChangedHeldAmountIsDataLoss) {
  Exec("UPDATE ledger_accounts SET held=held+100 WHERE name='consumer:alice'");
  ExpectDataLoss("consumer:alice", "held");
}

TEST_F(LedgerAuditTest, RaisedCreditLimitIsDataLoss) {
  // Limits are ledger entries; a limit written only into the table is not.
  Exec("UPDATE ledger_accounts SET credit_limit=1000000 WHERE "
       "name='consumer:bob'");
  ExpectDataLoss("consumer:bob", "credit limit");
}

TEST_F(LedgerAuditTest, ChangedHoldRowIsDataLoss) {
  Exec("UPDATE ledger_holds SET open=1, remaining=1499 WHERE "
       "hold_id='hold:b-1:1'");
  ExpectDataLoss("hold hold:b-1:1", "differs");
}

TEST_F(LedgerAuditTest, DeletedAccountRowIsDataLoss) {
  Exec("DELETE FROM ledger_accounts WHERE name='provider:site-a'");
  ExpectDataLoss("provider:site-a", "no account row");
}

TEST_F(LedgerAuditTest, SignatureByAnotherKeyIsDataLoss) {
  // Re-sign site-a's record b-1:1 with site-b's key: a valid Ed25519
  // signature, but not by the enrolled provider.
  auto stored = ledger::UsageRecords(f_.database()).Find("site-a", "b-1:1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  auto forged = f_.site_b().signing_key().Sign(
      DomainSeparated(kUsageRecordDomain, (*stored)->record));
  ASSERT_TRUE(forged.ok());
  SQLite::Statement update(storage::RawConnectionForTesting(f_.store().database()),
                           "UPDATE usage_records SET signature=? "
                           "WHERE provider='site-a' AND record_id='b-1:1'");
  update.bind(1, forged->data(), static_cast<int>(forged->size()));
  ASSERT_EQ(update.exec(), 1);
  ExpectDataLoss("ledger entry 5", "signature");
}

TEST_F(LedgerAuditTest, EditedUsageRecordIsDataLoss) {
  auto stored = ledger::UsageRecords(f_.database()).Find("site-b", "b-2:final");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  v1::UsageRecord record;
  ASSERT_TRUE(record.ParseFromString((*stored)->record));
  record.set_end_ms(record.end_ms() + 3'600'000);
  record.set_card_seconds(
      CardSecondsFor(record.cards(), record.start_ms(), record.end_ms()));
  const std::string bytes = record.SerializeAsString();
  SQLite::Statement update(storage::RawConnectionForTesting(f_.store().database()),
                           "UPDATE usage_records SET record=? "
                           "WHERE provider='site-b' AND record_id='b-2:final'");
  update.bind(1, bytes.data(), static_cast<int>(bytes.size()));
  ASSERT_EQ(update.exec(), 1);
  ExpectDataLoss("ledger entry 6", "signature");
}

TEST_F(LedgerAuditTest, DeletedUsageRecordIsDataLoss) {
  Exec("DELETE FROM usage_records WHERE provider='site-b'");
  ExpectDataLoss("ledger entry 6", "missing");
}

TEST_F(LedgerAuditTest, UnenrolledProviderIsDataLoss) {
  Exec("DELETE FROM enrollments WHERE name='site-b'");
  ExpectDataLoss("ledger entry 6", "enrolled key");
}

TEST_F(LedgerAuditTest, UsageRecordWithoutEntryIsDataLoss) {
  v1::JobInfo b2 = f_.Job("b-2", "bob", "site-b", 1, 600, 1800);
  v1::UsageReport report = f_.Sign(b2, "b-2:9", 1, 60'000, false);
  ASSERT_TRUE(ledger::UsageRecords(f_.store().database()).Insert(StoredUsageRecord{"site-b", "b-2:9", "b-2",
                                                       report.record(),
                                                       report.signature()},
                                     1)
                  .ok());
  ExpectDataLoss("site-b/b-2:9", "0 times");
}

// --- signed checkpoints --------------------------------------------------------

TEST_F(LedgerAuditTest, ForgedCheckpointSignatureIsDataLoss) {
  std::string signature =
      Blob("SELECT signature FROM ledger_checkpoints WHERE tree_size=?", 9);
  signature[7] = static_cast<char>(signature[7] ^ 0x01);
  SetBlob("UPDATE ledger_checkpoints SET signature=? WHERE tree_size=?",
          signature, 9);
  ExpectDataLoss("checkpoint at 9", "signature");
}

TEST_F(LedgerAuditTest, CheckpointSignedByAnotherKeyIsDataLoss) {
  // A forger replaces the broker key in meta with their own and re-signs:
  // the file is consistent, but not under the key the auditor pinned.
  Identity mallory = testing::MustGenerateIdentity("mallory");
  ASSERT_TRUE(f_.database()
                  .SetMeta(kMetaBrokerKey,
                           mallory.signing_key().verifying_key().hex())
                  .ok());
  ExpectDataLoss("checkpoint at 9", "signature");
  Exec("DELETE FROM ledger_checkpoints");
  Checkpointer resigned(f_.database(), "hub", mallory.signing_key(), {0, 0});
  ASSERT_TRUE(resigned.CheckpointNow(f_.Now()).ok());
  EXPECT_TRUE(Verify().ok());
  LedgerAuditOptions pinned;
  pinned.expected_broker_key =
      f_.broker_identity().signing_key().verifying_key().hex();
  Status status = Verify(pinned);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not the pinned key"));
}

TEST_F(LedgerAuditTest, RewrittenHistoryUnderAnOldCheckpointIsDataLoss) {
  // A consistent rewrite (every hash recomputed, every rule kept) that the
  // checkpoint signed before it no longer matches.
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[0].set_memo("rewritten");
  });
  ExpectDataLoss("checkpoint at 9", "Merkle head does not match");
}

TEST_F(LedgerAuditTest, ForkedHistoryResignedByTheBrokerIsCaughtByAnOldHead) {
  // The broker itself rewrites its history and signs it again, removing
  // the old checkpoint: the file alone now verifies. Anyone who kept the
  // old signed head (a peer, a party with a statement) proves the fork.
  const v1::SignedCheckpoint old_head = checkpoint_;
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[0].set_memo("rewritten");
  });
  Exec("DELETE FROM ledger_checkpoints");
  Checkpointer resigned(f_.database(), "hub", f_.broker_identity().signing_key(),
                        {0, 0});
  auto new_head = resigned.CheckpointNow(f_.Now());
  ASSERT_TRUE(new_head.ok() && new_head->has_value());
  EXPECT_TRUE(Verify().ok());

  const VerifyingKey& key = f_.broker_identity().signing_key().verifying_key();
  auto fork = DetectFork(key, "hub", old_head, **new_head, {});
  ASSERT_TRUE(fork.ok()) << fork.status().ToString();
  ASSERT_TRUE(fork->has_value());
  EXPECT_THAT((*fork)->explanation(), HasSubstr("same 9 entries"));
  EXPECT_TRUE(VerifyForkEvidence(key, **fork).ok());
}

TEST_F(LedgerAuditTest, CosignaturesAreCheckedToo) {
  Identity peer = testing::MustGenerateIdentity("hub-south");
  auto cosignature = CosignCheckpoint(peer.signing_key(), "hub-south",
                                      checkpoint_);
  ASSERT_TRUE(cosignature.ok());
  ASSERT_TRUE(AddCosignature(f_.database(), 9, *cosignature,
                             peer.signing_key().verifying_key())
                  .ok());
  // One that does not verify is not stored.
  auto stranger = testing::MustGenerateIdentity("stranger");
  EXPECT_EQ(AddCosignature(f_.database(), 9, *cosignature,
                           stranger.signing_key().verifying_key())
                .code(),
            StatusCode::kUnauthenticated);
  auto report = VerifyLedger(f_.database());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->cosignatures, 1u);
  auto listed = LatestCheckpoint(f_.database());
  ASSERT_TRUE(listed.ok() && listed->has_value());
  ASSERT_EQ((*listed)->cosignatures_size(), 1);
  EXPECT_EQ((*listed)->cosignatures(0).broker_id(), "hub-south");

  v1::Cosignature forged = *cosignature;
  std::string signature = forged.signature();
  signature[0] = static_cast<char>(signature[0] ^ 1);
  forged.set_signature(signature);
  const std::string bytes = forged.SerializeAsString();
  SQLite::Statement update(storage::RawConnectionForTesting(f_.store().database()),
                           "UPDATE ledger_cosignatures SET cosignature=?");
  update.bind(1, bytes.data(), static_cast<int>(bytes.size()));
  update.exec();
  ExpectDataLoss("cosignature by hub-south", "does not verify");
}

// --- consistent forgeries: only the rules can tell -----------------------------
// The checkpoint is removed first, so that the entry rules speak.

class LedgerForgeryTest : public LedgerAuditTest {
 protected:
  void SetUp() override {
    LedgerAuditTest::SetUp();
    Exec("DELETE FROM ledger_checkpoints");
  }
};

TEST_F(LedgerForgeryTest, ForgeHelperAloneKeepsLedgerValid) {
  Forge([](std::vector<v1::LedgerEntry>&) {});
  Status status = Verify();
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST_F(LedgerForgeryTest, AmountBreakingTheRoundingRuleIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    auto& usage = entries[4];  // 1500 -> 1501, to the provider
    usage.mutable_postings(0)->set_amount(-1501);
    usage.mutable_postings(1)->set_amount(1464);
  });
  ExpectDataLoss("ledger entry 5", "rounding rule");
}

TEST_F(LedgerForgeryTest, FeeSplitBreakingTheRuleIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[4].mutable_postings(1)->set_amount(1464);  // fee 37 -> 36
    entries[4].mutable_postings(2)->set_amount(36);
  });
  ExpectDataLoss("ledger entry 5", "fee split");
}

TEST_F(LedgerForgeryTest, UnbalancedEntryIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[4].mutable_postings(1)->set_amount(1464);
  });
  ExpectDataLoss("ledger entry 5", "sum to 1");
}

TEST_F(LedgerForgeryTest, CardSecondsAboveTheRecordAreDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[4].set_billed_card_seconds(7200);
    entries[4].set_cumulative_card_seconds(7200);
  });
  ExpectDataLoss("ledger entry 5", "does not match its usage record");
}

TEST_F(LedgerForgeryTest, ChargeMovedToAnotherJobIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[4].set_job_id("b-2");
  });
  ExpectDataLoss("ledger entry 5", "does not match");
}

TEST_F(LedgerForgeryTest, SecondChargeForOneRecordIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    v1::LedgerEntry copy = entries[4];
    copy.set_idempotency_key("usage:site-a:b-1:1:again");
    entries.push_back(copy);
  });
  ExpectDataLoss("ledger entry 10", "already released");
}

TEST_F(LedgerForgeryTest, CreditToAnotherAccountIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[4].mutable_postings(1)->set_account("provider:mallory");
  });
  ExpectDataLoss("ledger entry 5", "postings are not");
}

TEST_F(LedgerForgeryTest, EntryOfUnknownKindIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    v1::LedgerEntry gift;
    gift.set_idempotency_key("gift:1");
    gift.set_kind("adjustment");
    auto* debit = gift.add_postings();
    debit->set_account("consumer:bob");
    debit->set_amount(-1'000);
    auto* credit = gift.add_postings();
    credit->set_account("provider:mallory");
    credit->set_amount(1'000);
    entries.push_back(gift);
  });
  ExpectDataLoss("ledger entry 10", "unknown entry kind");
}

TEST_F(LedgerForgeryTest, UsageWithoutAHoldIsDataLoss) {
  // A schema-1 style charge (no hold) after schema 2 began.
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[4].clear_hold_id();
  });
  ExpectDataLoss("ledger entry 5", "without a hold");
}

TEST_F(LedgerForgeryTest, HoldBreakingTheRoundingRuleIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[2].set_hold_amount(2999);
  });
  ExpectDataLoss("ledger entry 3", "hold amount");
}

TEST_F(LedgerForgeryTest, VoidReleasingTooMuchIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries[8].set_hold_amount(3000);
  });
  ExpectDataLoss("ledger entry 9", "void releases 3000");
}

TEST_F(LedgerForgeryTest, OverdraftPastTheLimitIsDataLoss) {
  // Without alice's top-up, her hold of 3000 was never covered.
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    entries.erase(entries.begin());
  });
  ExpectDataLoss("ledger entry 2", "goes past its credit limit");
}

// Found with fuzz/fuzz_ledger_audit (seed
// fuzz/corpus/ledger_audit/topup_int64_max_twice): top-ups of INT64_MAX
// overflowed the replayed balance, undefined behaviour in the auditor
// (UBSan aborts; a plain build wraps the sum) instead of a failed audit.
TEST_F(LedgerForgeryTest, BalanceOverflowIsDataLossNotWrapped) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    for (const char* key : {"topup:huge-1", "topup:huge-2"}) {
      v1::LedgerEntry topup;
      topup.set_idempotency_key(key);
      topup.set_kind("topup");
      topup.set_currency("CNY");
      auto* debit = topup.add_postings();
      debit->set_account("operator:topup");
      debit->set_amount(-std::numeric_limits<int64_t>::max());
      auto* credit = topup.add_postings();
      credit->set_account("consumer:alice");
      credit->set_amount(std::numeric_limits<int64_t>::max());
      entries.push_back(topup);
    }
  });
  ExpectDataLoss("ledger entry 10", "consumer:alice overflows");
}

// A usage charge whose debit is INT64_MIN (balanced by INT64_MAX + 1 to the
// provider and the fee): negating it was undefined behaviour.
TEST_F(LedgerForgeryTest, UsageDebitOfInt64MinIsDataLoss) {
  Forge([](std::vector<v1::LedgerEntry>& entries) {
    auto& usage = entries[4];
    usage.mutable_postings(0)->set_amount(std::numeric_limits<int64_t>::min());
    usage.mutable_postings(1)->set_amount(std::numeric_limits<int64_t>::max());
    usage.mutable_postings(2)->set_amount(1);
  });
  ExpectDataLoss("ledger entry 5", "rounding rule");
}

}  // namespace
}  // namespace computenet::ledger
