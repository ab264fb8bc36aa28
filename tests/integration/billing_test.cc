// Prepaid billing over real CURVE sockets: a job whose worst case the
// consumer cannot cover waits with a clear reason until a top-up; then it
// runs, interim usage records are posted against its hold as it goes, the
// rest of the hold is released when it ends, the balances are exact and the
// audit passes. Statements come over the network with proofs, and only the
// caller's own. A job that uses all its hold is stopped by the broker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "computenet/ledger/ledger.h"
#include "computenet/common/checkpoint.h"
#include "computenet/common/transport.h"
#include "computenet/common/usage_record.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kPrice = 36'000;  // 10 minor units per card-second

// The lines of a statement, each checked against the broker's key.
std::vector<v1::LedgerEntry> VerifiedLines(const Federation& federation,
                                           const v1::GetStatementReply& reply) {
  std::vector<v1::LedgerEntry> out;
  auto checkpoint = VerifyCheckpoint(
      federation.broker_identity().signing_key().verifying_key(),
      reply.checkpoint());
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
  if (!checkpoint.ok()) return out;
  for (const auto& line : reply.lines()) {
    auto entry = VerifyStatementLine(*checkpoint, line);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    if (entry.ok()) out.push_back(*entry);
  }
  return out;
}

TEST(BillingTest, PrepaidJobWaitsForFundsThenRunsWithInterimRecords) {
  broker::BrokerOptions options;
  options.fee_bps = 250;  // the broker keeps 2.5%, rounded down
  Federation federation(options);
  auto executor_clock = std::make_shared<FakeClock>();
  provider::ProviderOptions provider_options;
  provider_options.usage_interval_s = 2;
  federation.AddProvider(
      "site-a",
      MakeRegistration("site-a", {MakeNode("n1", "ib-1", "A800", 4)},
                       {{"A800", kPrice}}),
      executor_clock, provider_options);
  auto alice = federation.AddConsumer("alice", 1000);

  // 2 cards for at most 60 s at 10 per card-second: a hold of 1200.
  const std::string flag = federation.dir() + "/flag";
  v1::JobSpec spec = ShellJob(
      "while [ ! -f " + flag + " ]; do sleep 0.02; done", 2, {"A800"});
  spec.set_max_duration_s(60);
  auto submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  const std::string job_id = submitted->job_id();
  v1::JobInfo waiting;
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(job_id);
    if (job.ok()) waiting = *job;
    return job.ok() && job->reason().find("waiting for funds") !=
                           std::string::npos;
  }));
  EXPECT_EQ(waiting.state(), v1::JOB_STATE_QUEUED);
  EXPECT_THAT(waiting.reason(), HasSubstr("may cost up to 1200"));
  EXPECT_THAT(waiting.reason(), HasSubstr("consumer:alice may spend 1000"));
  EXPECT_THAT(waiting.reason(), HasSubstr("top up"));

  // The operator tops up (on another connection, as the CLI does): the
  // broker notices and places the job.
  federation.TopUp("alice", 500, "wire-2");
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(job_id);
    return job.ok() && job->state() == v1::JOB_STATE_RUNNING;
  }));
  ledger::Ledger ledger(federation.OpenStore().database());
  auto account = ledger.Account("consumer:alice");
  ASSERT_TRUE(account.ok());
  EXPECT_EQ(account->balance, 1500);
  EXPECT_EQ(account->held, 1200);

  // 5 s pass on the site: two interim records of 2 s (4 card-s, 40 each;
  // fee 40 x 2.5% = 1) are posted while it still runs.
  executor_clock->AdvanceMs(5000);
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(job_id);
    return job.ok() && job->charged() == 80;
  }));
  auto running = alice->GetJob(job_id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(running->card_seconds(), 8u);
  account = ledger.Account("consumer:alice");
  EXPECT_EQ(account->balance, 1420);
  EXPECT_EQ(account->held, 1120);

  { std::ofstream(flag) << "done"; }
  auto finished = alice->Wait(job_id, 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  // The closing record covers the last 1 s: 2 card-s, 20 (fee 0.5 -> 0).
  EXPECT_EQ(finished->card_seconds(), 10u);
  EXPECT_EQ(finished->charged(), 100);

  auto records = ledger::UsageRecords(federation.OpenStore().database()).ListForJob(job_id);
  ASSERT_TRUE(records.ok());
  std::vector<std::string> ids;
  int64_t previous_end = -1;
  for (const auto& stored : *records) {
    ids.push_back(stored.record_id);
    v1::UsageRecord record;
    ASSERT_TRUE(record.ParseFromString(stored.record));
    if (previous_end >= 0) {
      EXPECT_EQ(record.start_ms(), previous_end);
    }
    previous_end = record.end_ms();
  }
  EXPECT_THAT(ids, ElementsAre(job_id + ":1", job_id + ":2", job_id + ":final"));

  // Exact balances, hold released, books sum to zero.
  account = ledger.Account("consumer:alice");
  EXPECT_EQ(account->balance, 1400);
  EXPECT_EQ(account->held, 0);
  EXPECT_EQ(*ledger.Balance("provider:site-a"), 39 + 39 + 20);
  EXPECT_EQ(*ledger.Balance("fee:test"), 2);
  EXPECT_EQ(*ledger.Balance(ledger::kTopUpAccount), -1500);
  auto audit = ledger::VerifyLedger(federation.OpenStore().database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->usage_records, 3u);
  EXPECT_EQ(audit->open_holds, 0u);
  EXPECT_EQ(audit->total_charged, 100);
  // topup, topup, hold, three usage records, void
  EXPECT_EQ(audit->entries, 7u);

  // Alice's statement, from the broker, every line proven.
  v1::GetStatement mine;
  auto statement = alice->GetStatement(mine);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_EQ(statement->account(), "consumer:alice");
  std::vector<std::string> kinds;
  int64_t net = 0;
  for (const auto& entry : VerifiedLines(federation, *statement)) {
    kinds.push_back(entry.kind());
    for (const auto& posting : entry.postings()) {
      if (posting.account() == "consumer:alice") net += posting.amount();
    }
  }
  EXPECT_THAT(kinds, ElementsAre("topup", "topup", "hold", "usage", "usage",
                                 "usage", "void"));
  EXPECT_EQ(net, 1400);
  // A period with nothing in it.
  mine.set_from_ms(1);
  mine.set_to_ms(2);
  auto empty = alice->GetStatement(mine);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->lines_size(), 0);

  // Only one's own account: alice may not read the provider's ...
  v1::GetStatement theirs;
  theirs.set_account("provider:site-a");
  EXPECT_EQ(alice->GetStatement(theirs).status().code(),
            StatusCode::kPermissionDenied);
  // ... the provider reads its own with its key ...
  auto site = federation.ConnectClient(federation.IdentityOf("site-a"));
  auto provider_statement = site->GetStatement(v1::GetStatement());
  ASSERT_TRUE(provider_statement.ok()) << provider_statement.status().ToString();
  EXPECT_EQ(provider_statement->account(), "provider:site-a");
  EXPECT_EQ(VerifiedLines(federation, *provider_statement).size(), 3u);
  v1::GetStatement alices;
  alices.set_account("consumer:alice");
  EXPECT_EQ(site->GetStatement(alices).status().code(),
            StatusCode::kPermissionDenied);
  // ... and an admin any account, named.
  auto admin = federation.ConnectClient(
      federation.Enroll(broker::Role::kAdmin, "ops"));
  auto audited = admin->GetStatement(alices);
  ASSERT_TRUE(audited.ok()) << audited.status().ToString();
  EXPECT_EQ(VerifiedLines(federation, *audited).size(), 7u);
  EXPECT_EQ(admin->GetStatement(v1::GetStatement()).status().code(),
            StatusCode::kInvalidArgument);
}

// A raw provider connection, so the test controls its usage records.
class HoldExhaustionTest : public ::testing::Test {
 protected:
  HoldExhaustionTest() : context_(1) {}

  static broker::BrokerOptions Options() {
    broker::BrokerOptions options;
    // The raw provider answers only when the test reads: give it 5 s of
    // silence before it counts as lost.
    options.heartbeat_liveness = 50;
    return options;
  }

  // The next envelope of `type`, skipping heartbeats (and anything else).
  std::optional<v1::Envelope> Next(v1::MessageType type, int timeout_ms = 3000) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      auto received = channel_->Receive(50);
      if (!received.ok() || !received->has_value()) continue;
      if ((*received)->type() == type) return **received;
    }
    return std::nullopt;
  }

  v1::Envelope Report(const v1::UsageRecord& record) {
    auto report = SignUsageRecord(provider_.signing_key(), record);
    EXPECT_TRUE(report.ok());
    EXPECT_TRUE(channel_
                    ->Send(v1::MESSAGE_TYPE_USAGE_REPORT,
                           channel_->NextRequestId(), *report)
                    .ok());
    auto reply = Next(v1::MESSAGE_TYPE_USAGE_REPORT_REPLY);
    EXPECT_TRUE(reply.has_value());
    return reply.value_or(v1::Envelope());
  }

  v1::UsageRecord Record(const std::string& id, int64_t start_ms,
                         int64_t end_ms) {
    v1::UsageRecord record;
    record.set_record_id(id);
    record.set_job_id(job_id_);
    record.set_provider("raw-site");
    record.set_model("A800");
    record.set_cards(1);
    record.set_start_ms(start_ms);
    record.set_end_ms(end_ms);
    record.set_card_seconds(CardSecondsFor(1, start_ms, end_ms));
    return record;
  }

  // Connects as raw-site and registers one node of 2 A800s at 3600 per
  // card-hour (1 per card-second).
  void ConnectRawSite() {
    DealerOptions dealer;
    dealer.endpoint = federation_.broker().endpoint();
    dealer.server_public_key = federation_.broker_identity().curve().public_z85;
    dealer.client_keys = provider_.curve();
    dealer.send_timeout_ms = 1000;
    auto channel = DealerChannel::Connect(context_, dealer);
    ASSERT_TRUE(channel.ok());
    channel_ = std::move(*channel);
    ASSERT_TRUE(channel_
                    ->Send(v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                           channel_->NextRequestId(),
                           MakeRegistration("raw-site",
                                            {MakeNode("n1", "f", "A800", 2)},
                                            {{"A800", 3600}}))
                    .ok());
    auto registered = Next(v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY);
    ASSERT_TRUE(registered.has_value());
    ASSERT_EQ(registered->status().code(), v1::Status::OK);
  }

  void Respond(bool accepted, const Status& why) {
    v1::PlacementResponse response;
    response.set_job_id(job_id_);
    response.set_accepted(accepted);
    if (!accepted) {
      response.set_reason(std::string(why.message()));  // no "CODE:" prefix
      *response.mutable_status() = StatusToProto(why);
    }
    ASSERT_TRUE(channel_
                    ->Send(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE,
                           channel_->NextRequestId(), response)
                    .ok());
  }

  Federation federation_{Options()};
  zmq::context_t context_;
  Identity provider_ = federation_.Enroll(broker::Role::kProvider, "raw-site");
  std::unique_ptr<DealerChannel> channel_;
  std::string job_id_;
};

TEST_F(HoldExhaustionTest, JobThatUsesItsWholeHoldIsStoppedAndBilledForIt) {
  ConnectRawSite();
  if (HasFatalFailure()) return;

  auto alice = federation_.AddConsumer("alice", 1000);
  v1::JobSpec spec = ShellJob("true", 1);
  spec.set_max_duration_s(100);  // a hold of 100 at 1 per card-second
  auto submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok());
  job_id_ = submitted->job_id();
  auto offer = Next(v1::MESSAGE_TYPE_PLACEMENT_OFFER);
  ASSERT_TRUE(offer.has_value());
  v1::PlacementResponse accept;
  accept.set_job_id(job_id_);
  accept.set_accepted(true);
  ASSERT_TRUE(channel_
                  ->Send(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE,
                         channel_->NextRequestId(), accept)
                  .ok());
  ASSERT_TRUE(Next(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY).has_value());

  // 60 s, then 70 s more: the second record reaches the 100 card-s cap.
  v1::Envelope first = Report(Record(job_id_ + ":1", 0, 60'000));
  ASSERT_EQ(first.status().code(), v1::Status::OK) << first.status().message();
  EXPECT_EQ(DecodeBody<v1::UsageReportReply>(first)->amount(), 60);
  v1::Envelope second = Report(Record(job_id_ + ":2", 60'000, 130'000));
  ASSERT_EQ(second.status().code(), v1::Status::OK);
  EXPECT_EQ(DecodeBody<v1::UsageReportReply>(second)->amount(), 40);
  // Then the broker stops it.
  auto cancel = Next(v1::MESSAGE_TYPE_PLACEMENT_CANCEL);
  ASSERT_TRUE(cancel.has_value());
  auto body = DecodeBody<v1::PlacementCancel>(*cancel);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->job_id(), job_id_);
  EXPECT_THAT(body->reason(), HasSubstr("used all it may be billed for"));

  // Its closing record bills nothing more and releases the (empty) hold.
  v1::UsageRecord last = Record(job_id_ + ":final", 130'000, 131'000);
  last.set_closes_job(true);
  v1::Envelope closing = Report(last);
  ASSERT_EQ(closing.status().code(), v1::Status::OK);
  EXPECT_EQ(DecodeBody<v1::UsageReportReply>(closing)->amount(), 0);
  auto job = alice->GetJob(job_id_);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->charged(), 100);
  EXPECT_EQ(job->card_seconds(), 100u);
  ledger::Ledger ledger(federation_.OpenStore().database());
  EXPECT_EQ(*ledger.Balance("consumer:alice"), 900);
  EXPECT_EQ(*ledger.Balance("provider:raw-site"), 100);
  auto audit = ledger::VerifyLedger(federation_.OpenStore().database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->open_holds, 0u);
}

// The rejection's code, not its text, tells the broker whether to try the
// same provider again: FAILED_PRECONDITION (cards still held for a
// withdrawn offer) is a passing condition and costs no attempt; another
// code excludes the provider for the job.
TEST_F(HoldExhaustionTest, RejectionCodeDecidesWhetherTheProviderIsTriedAgain) {
  ConnectRawSite();
  if (HasFatalFailure()) return;
  auto alice = federation_.AddConsumer("alice", 1000);
  auto submitted = alice->Submit(ShellJob("true", 1));
  ASSERT_TRUE(submitted.ok());
  job_id_ = submitted->job_id();

  auto first = Next(v1::MESSAGE_TYPE_PLACEMENT_OFFER);
  ASSERT_TRUE(first.has_value());
  Respond(false, FailedPreconditionError("card 0 is still busy"));
  auto second = Next(v1::MESSAGE_TYPE_PLACEMENT_OFFER);
  ASSERT_TRUE(second.has_value()) << "offered again to the same provider";
  EXPECT_EQ(DecodeBody<v1::PlacementOffer>(*second)->attempt(),
            DecodeBody<v1::PlacementOffer>(*first)->attempt())
      << "a passing refusal spends no attempt";

  Respond(false, InvalidArgumentError("no such device"));
  EXPECT_FALSE(Next(v1::MESSAGE_TYPE_PLACEMENT_OFFER, 1000).has_value())
      << "a provider that refused for good is not offered the job again";
  // It waits, saying why, rather than going back to raw-site.
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(job_id_);
    return job.ok() && job->state() == v1::JOB_STATE_QUEUED &&
           job->reason().find("excluded provider") != std::string::npos;
  }));
  // Its hold went back each time.
  ledger::Ledger ledger(federation_.OpenStore().database());
  auto account = ledger.Account("consumer:alice");
  ASSERT_TRUE(account.ok());
  EXPECT_EQ(account->held, 0);
}

}  // namespace
}  // namespace computenet::testing
