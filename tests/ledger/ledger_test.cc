// Ledger: the rounding rules (charge, cumulative charge, fee split),
// accounts and limits, top-ups, two-phase holds, usage posted against them,
// idempotency, and the hash chain, on a real SQLite file. The audit of such
// files against tampering is in ledger_audit_test.cc.
#include "computenet/ledger/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "jobs/store.h"
#include "computenet/common/sha256.h"
#include "ledger_fixture.h"
#include "test_support.h"

namespace computenet::ledger {
namespace {

using ::testing::HasSubstr;
using testing::LedgerFixture;

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


TEST(ChargeForIntervalTest, CumulativeChargesAddUpToTheWholeJob) {
  // However a job's card-seconds are split into records, the charges sum to
  // the charge of the total: the rounding happens once.
  for (int64_t price : {1, 7, 1234, 1800, 3599, 3601, 1'000'000}) {
    for (uint64_t total = 0; total <= 40; ++total) {
      for (uint64_t step = 1; step <= 7; ++step) {
        int64_t sum = 0;
        for (uint64_t billed = 0; billed < total; billed += step) {
          auto charge = ChargeForInterval(billed, std::min(step, total - billed),
                                          price);
          ASSERT_TRUE(charge.ok());
          ASSERT_GE(*charge, 0);
          sum += *charge;
        }
        ASSERT_EQ(sum, MustCharge(total, price))
            << total << " card-s in steps of " << step << " at " << price;
      }
    }
  }
}

TEST(ChargeForIntervalTest, ExactAmountsOfASplitJob) {
  // 1 card-second at 1800/card-hour is exactly 0.5: charged alone it rounds
  // up to 1 each time; charged cumulatively 3 of them cost 2 (= 1.5 half up).
  EXPECT_EQ(*ChargeForInterval(0, 1, 1800), 1);  // 0.5 -> 1
  EXPECT_EQ(*ChargeForInterval(1, 1, 1800), 0);  // 1.0 -> 1, minus 1
  EXPECT_EQ(*ChargeForInterval(2, 1, 1800), 1);  // 1.5 -> 2, minus 1
  EXPECT_EQ(*ChargeForInterval(3, 1, 1800), 0);  // 2.0 -> 2, minus 2
  EXPECT_EQ(*ChargeForInterval(0, 600, 1500), 250);
  EXPECT_EQ(*ChargeForInterval(600, 600, 1500), 250);
  EXPECT_EQ(ChargeForInterval(std::numeric_limits<uint64_t>::max(), 1, 1)
                .status()
                .code(),
            StatusCode::kOutOfRange);
}

TEST(FeeForTest, FeeIsRoundedDownAndTheProviderGetsTheRest) {
  EXPECT_EQ(*FeeFor(1501, 250), 37);  // 37.525
  EXPECT_EQ(*FeeFor(1500, 250), 37);  // 37.5
  EXPECT_EQ(*FeeFor(39, 250), 0);     // 0.975
  EXPECT_EQ(*FeeFor(40, 250), 1);     // 1.0
  EXPECT_EQ(*FeeFor(1, 9999), 0);     // 0.9999
  EXPECT_EQ(*FeeFor(10'000, 1), 1);
  EXPECT_EQ(*FeeFor(123'456, 0), 0);
  EXPECT_EQ(*FeeFor(123'456, 10'000), 123'456);
  EXPECT_EQ(*FeeFor(std::numeric_limits<int64_t>::max(), 10'000),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(FeeFor(5, 10'001).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FeeFor(-5, 100).status().code(), StatusCode::kInvalidArgument);
}

TEST(LedgerAccountsTest, AccountNamesAndKinds) {
  EXPECT_EQ(ConsumerAccount("alice"), "consumer:alice");
  EXPECT_EQ(ProviderAccount("site-a"), "provider:site-a");
  EXPECT_EQ(FeeAccount("hub"), "fee:hub");
  EXPECT_EQ(ClearingAccount("hub-south"), "clearing:hub-south");
  EXPECT_EQ(Ledger::UsageIdempotencyKey("site-a", "r-1"), "usage:site-a:r-1");
  EXPECT_EQ(HoldIdFor("hub-7", 2), "hold:hub-7:2");
  EXPECT_EQ(*AccountKindOf("consumer:alice"), "consumer");
  EXPECT_EQ(*AccountKindOf("clearing:hub-south"), "clearing");
  EXPECT_EQ(*AccountKindOf(kTopUpAccount), "operator");
  for (const char* bad : {"alice", "consumer:", "wallet:alice",
                          "operator:mint", "consumer:a b", "provider:-x"}) {
    EXPECT_EQ(AccountKindOf(bad).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
}

// --- accounts, holds, usage ------------------------------------------------------

class LedgerTest : public ::testing::Test {
 protected:
  LedgerFixture f_;
  Ledger& ledger() { return f_.ledger(); }
};

TEST_F(LedgerTest, EmptyLedger) {
  auto entries = ledger().Entries();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
  EXPECT_EQ(*ledger().Balance("consumer:nobody"), 0);
  AccountBalance alice = f_.MustAccount("consumer:alice");
  EXPECT_EQ(alice.balance, 0);
  EXPECT_EQ(alice.credit_limit.value_or(-1), 0);
  EXPECT_EQ(alice.available(), 0);
  EXPECT_FALSE(f_.MustAccount(kTopUpAccount).credit_limit.has_value());
  EXPECT_EQ(*ledger().Size(), 0u);
}

TEST_F(LedgerTest, TopUpMovesMoneyFromTheOperatorAccount) {
  PostedEntry posted = f_.MustTopUp("alice", 5000, "wire-0001");
  EXPECT_FALSE(posted.duplicate);
  EXPECT_EQ(posted.amount, 5000);
  EXPECT_EQ(posted.entry.sequence(), 1u);
  EXPECT_EQ(posted.entry.kind(), "topup");
  EXPECT_EQ(posted.entry.idempotency_key(), "topup:wire-0001");
  ASSERT_EQ(posted.entry.postings_size(), 2);
  EXPECT_EQ(posted.entry.postings(0).account(), kTopUpAccount);
  EXPECT_EQ(posted.entry.postings(0).amount(), -5000);
  EXPECT_EQ(posted.entry.postings(1).account(), "consumer:alice");
  EXPECT_EQ(posted.entry.postings(1).amount(), 5000);
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 5000);
  EXPECT_EQ(*ledger().Balance(kTopUpAccount), -5000);
  EXPECT_EQ(f_.MustAccount("consumer:alice").available(), 5000);
}

TEST_F(LedgerTest, TopUpIsIdempotentOnItsKey) {
  f_.MustTopUp("alice", 5000, "wire-0001");
  PostedEntry again = f_.MustTopUp("alice", 5000, "wire-0001");
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.entry.sequence(), 1u);
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 5000);
  EXPECT_EQ(ledger().TopUp("alice", 6000, "wire-0001", "", 0).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(ledger().TopUp("bob", 5000, "wire-0001", "", 0).status().code(),
            StatusCode::kAlreadyExists);
  f_.MustTopUp("alice", 5000, "wire-0002");
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 10'000);
  EXPECT_EQ(f_.CountRows("ledger_entries"), 2);
}

TEST_F(LedgerTest, TopUpRefusesBadInputAndWritesNothing) {
  EXPECT_EQ(ledger().TopUp("alice", 0, "k", "", 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger().TopUp("alice", -5, "k", "", 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger().TopUp("alice", 5, "", "", 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger().TopUp("mallory", 5, "k", "", 0).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(f_.CountRows("ledger_entries"), 0);
  EXPECT_EQ(f_.CountRows("ledger_accounts"), 0);
}

TEST_F(LedgerTest, HoldReservesTheWorstCaseAtThePlacementPrice) {
  f_.MustTopUp("alice", 1000, "t1");
  // 2 cards x 600 s at 1234 per card-hour: 1,480,800 / 3600 = 411.33 -> 411.
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 2, 600, 1234);
  PostedEntry hold = f_.MustHold(job);
  EXPECT_EQ(hold.amount, 411);
  EXPECT_EQ(hold.entry.kind(), "hold");
  EXPECT_EQ(hold.entry.hold_id(), "hold:hub-1:1");
  EXPECT_EQ(hold.entry.account(), "consumer:alice");
  EXPECT_EQ(hold.entry.hold_amount(), 411);
  EXPECT_EQ(hold.entry.max_card_seconds(), 1200u);
  EXPECT_EQ(hold.entry.price_per_card_hour(), 1234);
  EXPECT_EQ(hold.entry.postings_size(), 0);  // no money moves yet
  AccountBalance alice = f_.MustAccount("consumer:alice");
  EXPECT_EQ(alice.balance, 1000);
  EXPECT_EQ(alice.held, 411);
  EXPECT_EQ(alice.available(), 589);
  auto open = ledger().OpenHold("hub-1");
  ASSERT_TRUE(open.ok() && open->has_value());
  EXPECT_EQ((*open)->remaining, 411);
  EXPECT_EQ((*open)->provider, "site-a");

  // Idempotent per placement; one open hold per job.
  PostedEntry again = f_.MustHold(job);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.amount, 411);
  v1::JobInfo second = f_.Job("hub-1", "alice", "site-a", 2, 600, 1234, 2);
  EXPECT_EQ(f_.Hold(second).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(f_.MustAccount("consumer:alice").held, 411);
}

TEST_F(LedgerTest, InsufficientFundsRefuseTheHoldAndWriteNothing) {
  f_.MustTopUp("alice", 400, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 2, 600, 1234);
  auto hold = f_.Hold(job);
  EXPECT_EQ(hold.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(hold.status().message(), HasSubstr("insufficient funds"));
  EXPECT_THAT(hold.status().message(), HasSubstr("up to 411"));
  EXPECT_THAT(hold.status().message(), HasSubstr("may spend 400"));
  EXPECT_THAT(hold.status().message(), HasSubstr("top up"));
  EXPECT_EQ(f_.CountRows("ledger_entries"), 1);
  EXPECT_EQ(f_.CountRows("ledger_holds"), 0);
  EXPECT_EQ(f_.MustAccount("consumer:alice").held, 0);
  // A top-up makes it fit.
  f_.MustTopUp("alice", 11, "t2");
  EXPECT_EQ(f_.MustHold(job).amount, 411);
  EXPECT_EQ(f_.MustAccount("consumer:alice").available(), 0);
}

TEST_F(LedgerTest, CreditLimitLetsTheBalanceGoNegativeButNoFurther) {
  auto limit = ledger().SetCreditLimit("consumer:alice", 500, f_.Now());
  ASSERT_TRUE(limit.ok()) << limit.status().ToString();
  ASSERT_TRUE(limit->has_value());
  EXPECT_EQ((*limit)->entry.kind(), "credit_limit");
  EXPECT_EQ((*limit)->entry.credit_limit(), 500);
  v1::JobInfo first = f_.Job("hub-1", "alice", "site-a", 2, 600, 1234);
  EXPECT_EQ(f_.MustHold(first).amount, 411);
  EXPECT_EQ(f_.MustAccount("consumer:alice").available(), 89);
  v1::JobInfo second = f_.Job("hub-2", "alice", "site-a", 2, 600, 1234);
  EXPECT_EQ(f_.Hold(second).status().code(), StatusCode::kFailedPrecondition);

  // 2 cards x 300 s = 600 card-s at 1234: 740,400 / 3600 = 205.67 -> 206.
  PostedUsage used = f_.MustPost(first, "hub-1:final", 0, 300'000, true);
  EXPECT_EQ(used.posted.amount, 206);
  ASSERT_TRUE(used.released.has_value());
  EXPECT_EQ(used.released->amount, 205);
  AccountBalance alice = f_.MustAccount("consumer:alice");
  EXPECT_EQ(alice.balance, -206);
  EXPECT_EQ(alice.held, 0);
  EXPECT_EQ(alice.available(), 294);

  // The limit cannot drop below what is used; unchanged is a no-op.
  auto lower = ledger().SetCreditLimit("consumer:alice", 100, f_.Now());
  EXPECT_EQ(lower.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(lower.status().message(), HasSubstr("uses 206"));
  auto exact = ledger().SetCreditLimit("consumer:alice", 206, f_.Now());
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(exact->has_value());
  auto same = ledger().SetCreditLimit("consumer:alice", 206, f_.Now());
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->has_value());
  EXPECT_EQ(ledger().SetCreditLimit("consumer:alice", -1, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger().SetCreditLimit(kTopUpAccount, 5, 0).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, UsageIsPostedAgainstTheHoldByTheCumulativeRule) {
  f_.MustTopUp("alice", 100, "t1");
  // 1 card, at most 10 s, at 1800 per card-hour: hold (18000+1800)/3600 = 5.
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 1, 10, 1800);
  EXPECT_EQ(f_.MustHold(job).amount, 5);
  struct Step {
    int64_t start_ms, end_ms;
    int64_t charge, cumulative_charge, held;
    uint64_t card_seconds;
  };
  // Three 1 s interim records: 0.5 -> 1, 1.0 -> 1, 1.5 -> 2 in total.
  const std::vector<Step> steps = {{0, 1000, 1, 1, 4, 1},
                                   {1000, 2000, 0, 1, 4, 2},
                                   {2000, 3000, 1, 2, 3, 3}};
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    PostedUsage used = f_.MustPost(job, "hub-1:" + std::to_string(i + 1),
                                   step.start_ms, step.end_ms, false);
    EXPECT_EQ(used.posted.amount, step.charge) << i;
    EXPECT_EQ(used.job_charged, step.cumulative_charge) << i;
    EXPECT_EQ(used.cumulative_card_seconds, step.card_seconds) << i;
    EXPECT_FALSE(used.released.has_value());
    EXPECT_FALSE(used.hold_exhausted);
    EXPECT_EQ(used.posted.entry.hold_id(), "hold:hub-1:1");
    EXPECT_EQ(used.posted.entry.billed_card_seconds(), 1u);
    EXPECT_EQ(f_.MustAccount("consumer:alice").held, step.held) << i;
    EXPECT_EQ(*ledger().Balance("consumer:alice"), 100 - step.cumulative_charge);
    EXPECT_EQ(*ledger().Balance("provider:site-a"), step.cumulative_charge);
  }
  // The closing record: 0.5 s more is one started second (cumulative 4:
  // 2.0 -> 2, nothing more), and the 3 still held are released.
  PostedUsage last = f_.MustPost(job, "hub-1:final", 3000, 3500, true);
  EXPECT_EQ(last.posted.amount, 0);
  EXPECT_EQ(last.job_charged, 2);
  ASSERT_TRUE(last.released.has_value());
  EXPECT_EQ(last.released->amount, 3);
  EXPECT_EQ(last.released->entry.kind(), "void");
  EXPECT_EQ(last.released->entry.hold_amount(), 3);
  AccountBalance alice = f_.MustAccount("consumer:alice");
  EXPECT_EQ(alice.balance, 98);
  EXPECT_EQ(alice.held, 0);
  EXPECT_EQ(*ledger().Balance("provider:site-a"), 2);
  auto open = ledger().OpenHold("hub-1");
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(open->has_value());
}

TEST_F(LedgerTest, FeeSplitRoundsTheFeeDownAndPaysTheProviderTheRest) {
  LedgerFixture f(250);  // the broker keeps 2.5%
  f.MustTopUp("alice", 10'000, "t1");
  v1::JobInfo job = f.Job("hub-1", "alice", "site-a", 2, 3600, 1500);
  EXPECT_EQ(f.MustHold(job).amount, 3000);
  // 2 cards x 1800.5 s = 3602 card-s at 1500: 1501.33 -> 1501; fee
  // 1501 x 250 / 10000 = 37.525 -> 37; the provider gets 1464.
  PostedUsage used = f.MustPost(job, "hub-1:final", 0, 1'800'500, true);
  EXPECT_EQ(used.posted.amount, 1501);
  const v1::LedgerEntry& entry = used.posted.entry;
  EXPECT_EQ(entry.fee_bps(), 250u);
  ASSERT_EQ(entry.postings_size(), 3);
  EXPECT_EQ(entry.postings(0).account(), "consumer:alice");
  EXPECT_EQ(entry.postings(0).amount(), -1501);
  EXPECT_EQ(entry.postings(1).account(), "provider:site-a");
  EXPECT_EQ(entry.postings(1).amount(), 1464);
  EXPECT_EQ(entry.postings(2).account(), "fee:hub");
  EXPECT_EQ(entry.postings(2).amount(), 37);
  EXPECT_EQ(*f.ledger().Balance("fee:hub"), 37);
  EXPECT_EQ(*f.ledger().Balance("provider:site-a"), 1464);
  EXPECT_EQ(*f.ledger().Balance("consumer:alice"), 10'000 - 1501);
  ASSERT_TRUE(used.released.has_value());
  EXPECT_EQ(used.released->amount, 3000 - 1501);
  int64_t sum = 0;
  auto balances = f.ledger().Balances();
  ASSERT_TRUE(balances.ok());
  for (const auto& balance : *balances) sum += balance.balance;
  EXPECT_EQ(sum, 0);
}

TEST_F(LedgerTest, ReplayedRecordPostsOnce) {
  f_.MustTopUp("alice", 10'000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 2, 3600, 1500);
  f_.MustHold(job);
  v1::UsageReport report = f_.Sign(job, "hub-1:1", 0, 600'000, false);
  auto first = f_.Post(job, report);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->posted.amount, 500);
  const int64_t entries = f_.CountRows("ledger_entries");
  auto again = f_.Post(job, report);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->posted.duplicate);
  EXPECT_EQ(again->posted.amount, 500);
  EXPECT_EQ(again->posted.entry.sequence(), first->posted.entry.sequence());
  EXPECT_EQ(again->job_charged, 500);
  EXPECT_EQ(f_.CountRows("ledger_entries"), entries);
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 9500);
  // The same record id with other bytes is refused.
  auto other = f_.Post(job, f_.Sign(job, "hub-1:1", 0, 700'000, false));
  EXPECT_EQ(other.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(f_.CountRows("ledger_entries"), entries);
}

TEST_F(LedgerTest, RecordsMustCoverContiguousIntervals) {
  f_.MustTopUp("alice", 10'000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 1, 3600, 3600);
  f_.MustHold(job);
  f_.MustPost(job, "hub-1:1", 10'000, 20'000, false);
  auto overlap = f_.Post(job, f_.Sign(job, "hub-1:2", 15'000, 25'000, false));
  EXPECT_EQ(overlap.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(overlap.status().message(), HasSubstr("already billed"));
  auto gap = f_.Post(job, f_.Sign(job, "hub-1:2", 21'000, 25'000, false));
  EXPECT_EQ(gap.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(gap.status().message(), HasSubstr("contiguous"));
  EXPECT_EQ(f_.CountRows("usage_records"), 1);
  PostedUsage next = f_.MustPost(job, "hub-1:2", 20'000, 25'000, false);
  EXPECT_EQ(next.posted.amount, 5);
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 10'000 - 15);
}

TEST_F(LedgerTest, NothingIsBilledAfterTheJobsUsageIsClosed) {
  f_.MustTopUp("alice", 10'000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 1, 3600, 3600);
  f_.MustHold(job);
  f_.MustPost(job, "hub-1:final", 0, 5000, true);
  auto late = f_.Post(job, f_.Sign(job, "hub-1:late", 5000, 9000, false));
  // NOT_FOUND: an agent drops the record (FAILED_PRECONDITION would make it
  // register again and resend forever).
  EXPECT_EQ(late.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(late.status().message(), HasSubstr("no open hold"));
  auto release = ledger().ReleaseHold("hub-1", "job ended", f_.Now());
  ASSERT_TRUE(release.ok());
  EXPECT_FALSE(release->has_value());
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 10'000 - 5);
}

TEST_F(LedgerTest, BillingStopsAtTheHoldAndSaysSo) {
  f_.MustTopUp("alice", 10'000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 2, 10, 3600);
  EXPECT_EQ(f_.MustHold(job).amount, 20);
  // 15 s on 2 cards is 30 card-s; the hold covers 20.
  PostedUsage over = f_.MustPost(job, "hub-1:1", 0, 15'000, false);
  EXPECT_EQ(over.posted.entry.billed_card_seconds(), 20u);
  EXPECT_EQ(over.posted.amount, 20);
  EXPECT_TRUE(over.hold_exhausted);
  EXPECT_EQ(f_.MustAccount("consumer:alice").held, 0);
  PostedUsage after = f_.MustPost(job, "hub-1:final", 15'000, 17'000, true);
  EXPECT_EQ(after.posted.entry.billed_card_seconds(), 0u);
  EXPECT_EQ(after.posted.amount, 0);
  EXPECT_FALSE(after.hold_exhausted);  // it was used up before
  ASSERT_TRUE(after.released.has_value());
  EXPECT_EQ(after.released->amount, 0);
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 10'000 - 20);
}

TEST_F(LedgerTest, ReleaseVoidsWhatIsLeftOfTheHold) {
  f_.MustTopUp("alice", 1000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 1, 600, 3600);
  f_.MustHold(job);
  EXPECT_EQ(f_.MustAccount("consumer:alice").available(), 400);
  auto released = ledger().ReleaseHold("hub-1", "cancelled before it started",
                                       f_.Now());
  ASSERT_TRUE(released.ok() && released->has_value());
  EXPECT_EQ((*released)->amount, 600);
  EXPECT_EQ((*released)->entry.kind(), "void");
  EXPECT_EQ((*released)->entry.memo(), "cancelled before it started");
  EXPECT_EQ(f_.MustAccount("consumer:alice").available(), 1000);
  EXPECT_EQ(*ledger().Balance("consumer:alice"), 1000);
  auto holds = ledger().OpenHolds();
  ASSERT_TRUE(holds.ok());
  EXPECT_TRUE(holds->empty());
  // A new placement may hold again.
  v1::JobInfo again = f_.Job("hub-1", "alice", "site-a", 1, 600, 3600, 2);
  EXPECT_EQ(f_.MustHold(again).entry.hold_id(), "hold:hub-1:2");
}

TEST_F(LedgerTest, TransfersRespectLimitsAndClearingAccountsOpenOnRequest) {
  ASSERT_TRUE(ledger().OpenClearingAccount("hub-south", f_.Now()).ok());
  ASSERT_TRUE(ledger().OpenClearingAccount("hub-south", f_.Now()).ok());
  EXPECT_EQ(ledger().OpenClearingAccount("bad name", 0).code(),
            StatusCode::kInvalidArgument);
  auto balances = ledger().Balances();
  ASSERT_TRUE(balances.ok());
  ASSERT_EQ(balances->size(), 1u);
  EXPECT_EQ((*balances)[0].account, "clearing:hub-south");
  EXPECT_EQ((*balances)[0].kind, "clearing");
  EXPECT_EQ(f_.CountRows("ledger_entries"), 0);  // an empty account is no entry

  TransferRequest owed;
  owed.from = "clearing:hub-south";
  owed.to = "provider:site-a";
  owed.amount = 700;
  owed.idempotency_key = "settle-1";
  // A clearing account has no limit (the home broker's hold bounds what a
  // peer runs on it), and none can be set.
  EXPECT_EQ(ledger().SetCreditLimit("clearing:hub-south", 1000, f_.Now())
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  auto moved = ledger().Transfer(owed, f_.Now());
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->entry.kind(), "transfer");
  EXPECT_EQ(*ledger().Balance("clearing:hub-south"), -700);
  auto again = ledger().Transfer(owed, f_.Now());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  owed.amount = 701;
  EXPECT_EQ(ledger().Transfer(owed, f_.Now()).status().code(),
            StatusCode::kAlreadyExists);
  // A consumer's limit still holds for a transfer out of it.
  TransferRequest from_consumer;
  from_consumer.from = "consumer:alice";
  from_consumer.to = "clearing:hub-south";
  from_consumer.amount = 1;
  from_consumer.idempotency_key = "settle-2";
  EXPECT_EQ(ledger().Transfer(from_consumer, f_.Now()).status().code(),
            StatusCode::kFailedPrecondition);
  owed.idempotency_key = "settle-3";
  owed.to = owed.from;
  EXPECT_EQ(ledger().Transfer(owed, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(*ledger().Balance("provider:site-a"), 700);
}

TEST_F(LedgerTest, RolledBackTransactionLeavesNoTrace) {
  f_.MustTopUp("alice", 1000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 1, 600, 3600);
  Status status = f_.store().database().RunInTransaction([&]() -> Status {
    auto hold = f_.Hold(job);
    if (!hold.ok()) return hold.status();
    return AbortedError("the job row failed to store");
  });
  EXPECT_EQ(status.code(), StatusCode::kAborted);
  EXPECT_EQ(f_.CountRows("ledger_entries"), 1);
  EXPECT_EQ(f_.CountRows("ledger_holds"), 0);
  EXPECT_EQ(f_.MustAccount("consumer:alice").held, 0);
  // The next entry continues the chain at 2.
  EXPECT_EQ(f_.MustHold(job).entry.sequence(), 2u);
}

TEST_F(LedgerTest, EntriesFormAHashChain) {
  f_.MustTopUp("alice", 10'000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 1, 600, 3600);
  f_.MustHold(job);
  f_.MustPost(job, "hub-1:final", 0, 5000, true);
  auto entries = ledger().Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  std::string prev(32, '\0');
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto& entry = (*entries)[i];
    EXPECT_EQ(entry.sequence(), i + 1);
    EXPECT_EQ(entry.prev_hash(), prev) << "entry " << i + 1;
    SQLite::Statement query(storage::RawConnectionForTesting(f_.store().database()),
                            "SELECT entry, hash FROM ledger_entries "
                            "WHERE sequence=?");
    query.bind(1, static_cast<int64_t>(i + 1));
    ASSERT_TRUE(query.executeStep());
    const auto bytes = query.getColumn(0);
    const auto hash = query.getColumn(1);
    const std::string stored_hash(static_cast<const char*>(hash.getBlob()),
                                  static_cast<size_t>(hash.getBytes()));
    EXPECT_EQ(stored_hash,
              Sha256(std::string(static_cast<const char*>(bytes.getBlob()),
                                 static_cast<size_t>(bytes.getBytes()))));
    prev = stored_hash;
  }
  EXPECT_EQ((*entries)[0].kind(), "topup");
  EXPECT_EQ((*entries)[1].kind(), "hold");
  EXPECT_EQ((*entries)[2].kind(), "usage");
  EXPECT_EQ((*entries)[3].kind(), "void");
}

TEST_F(LedgerTest, EverythingSurvivesReopen) {
  f_.MustTopUp("alice", 10'000, "t1");
  v1::JobInfo job = f_.Job("hub-1", "alice", "site-a", 1, 600, 3600);
  f_.MustHold(job);
  f_.MustPost(job, "hub-1:1", 0, 5000, false);
  auto store = broker::Store::Open(f_.path());
  ASSERT_TRUE(store.ok());
  Ledger reopened((*store)->database(), LedgerOptions{"hub", 0});
  EXPECT_EQ(*reopened.Balance("provider:site-a"), 5);
  auto hold = reopened.OpenHold("hub-1");
  ASSERT_TRUE(hold.ok() && hold->has_value());
  EXPECT_EQ((*hold)->remaining, 595);
  EXPECT_EQ((*hold)->last_end_ms.value_or(-1), 5000);
  auto again = reopened.TopUp("alice", 10'000, "t1", "", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
}

}  // namespace
}  // namespace computenet::ledger
