// One job end to end over real CURVE sockets: a broker, a provider running a
// real command as a child process, and a consumer. Metering uses a FakeClock
// in the provider's executor so the charge is known exactly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "computenet/ledger/ledger.h"
#include "computenet/common/usage_record.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

TEST(EndToEndTest, JobRunsIsMeteredSignedAndChargedExactly) {
  Federation federation;
  auto executor_clock = std::make_shared<FakeClock>();
  constexpr int64_t kPrice = 1234;  // minor units per card-hour
  federation.AddProvider(
      "site-a",
      MakeRegistration("site-a", {MakeNode("n1", "ib-1", "A800", 4)},
                       {{"A800", kPrice}}),
      executor_clock);
  auto alice = federation.AddConsumer("alice");

  // The job waits for a flag file, so the test controls when it ends and
  // can move the executor's clock by an exact amount while it runs.
  const std::string flag = federation.dir() + "/flag";
  const std::string env_dump = federation.dir() + "/env";
  v1::JobSpec spec = ShellJob("echo \"$CUDA_VISIBLE_DEVICES|$COMPUTENET_JOB_ID\" > " +
                                  env_dump + "; while [ ! -f " + flag +
                                  " ]; do sleep 0.02; done",
                              2, {"A800"});
  spec.set_max_price_per_card_hour(2000);
  auto submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  const std::string job_id = submitted->job_id();
  EXPECT_EQ(job_id, "test-1");

  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(job_id);
    return job.ok() && job->state() == v1::JOB_STATE_RUNNING;
  }));
  executor_clock->AdvanceMs(100'500);  // 100.5 s: 101 started seconds
  { std::ofstream(flag) << "done"; }

  auto finished = alice->Wait(job_id, 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(finished->exit_code(), 0);
  EXPECT_EQ(finished->provider(), "site-a");
  EXPECT_EQ(finished->model(), "A800");

  // The command saw its devices and job id.
  std::ifstream env_file(env_dump);
  std::string env_line;
  std::getline(env_file, env_line);
  EXPECT_EQ(env_line, "0,1|" + job_id);

  // The usage record is stored with a signature that verifies under the
  // provider's enrolled key.
  broker::Store& store = federation.OpenStore();
  auto record = ledger::UsageRecords(store.database()).LatestForJob(job_id);
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(record->has_value());
  auto enrollment = store.FindEnrollment(broker::Role::kProvider, "site-a");
  ASSERT_TRUE(enrollment.ok() && enrollment->has_value());
  auto verified = VerifyUsageRecord((*enrollment)->ed25519_public,
                                    (*record)->record, (*record)->signature);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->cards(), 2u);
  EXPECT_EQ(verified->end_ms() - verified->start_ms(), 100'500);
  const uint64_t card_seconds = 2 * 101;
  EXPECT_EQ(verified->card_seconds(), card_seconds);

  // Charged exactly cards x seconds x price / 3600, rounded half up.
  const int64_t expected = (static_cast<int64_t>(card_seconds) * kPrice + 1800) / 3600;
  ASSERT_EQ(expected, 69);  // 202 * 1234 / 3600 = 69.24
  EXPECT_EQ(finished->charged(), expected);
  EXPECT_EQ(finished->card_seconds(), card_seconds);
  ledger::Ledger ledger(store.database());
  auto consumer_balance = ledger.Balance(ledger::ConsumerAccount("alice"));
  auto provider_balance = ledger.Balance(ledger::ProviderAccount("site-a"));
  ASSERT_TRUE(consumer_balance.ok() && provider_balance.ok());
  EXPECT_EQ(*consumer_balance, kTestConsumerFunds - expected);
  EXPECT_EQ(*provider_balance, expected);

  // The ledger balances and its audit passes: the top-up, the hold, the
  // closing usage record, and the release of the rest of the hold.
  auto audit = ledger::VerifyLedger(store.database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->entries, 4u);
  EXPECT_EQ(audit->open_holds, 0u);
  EXPECT_EQ(audit->usage_records, 1u);
  EXPECT_EQ(audit->total_charged, expected);
}

TEST(EndToEndTest, FailedCommandIsReportedWithItsExitCodeAndStillBilled) {
  Federation federation;
  federation.AddProvider(
      "site-a", MakeRegistration("site-a", {MakeNode("n1", "ib-1", "A800", 2)},
                                 {{"A800", 3600}}));
  auto alice = federation.AddConsumer("alice");
  auto submitted = alice->Submit(ShellJob("exit 7"));
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  auto finished = alice->Wait(submitted->job_id(), 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished->exit_code(), 7);
  EXPECT_THAT(finished->reason(), HasSubstr("exited with 7"));
  // It ran, however briefly: one started second on one card at 3600/h.
  EXPECT_EQ(finished->card_seconds(), 1u);
  EXPECT_EQ(finished->charged(), 1);
}

TEST(EndToEndTest, GangJobRunsOneProcessPerNodeInsideOneFabric) {
  Federation federation;
  // Free cards exist on three nodes, but only fabric ib-2 has two nodes.
  federation.AddProvider(
      "site-a",
      MakeRegistration("site-a",
                       {MakeNode("n1", "ib-1", "H800", 8),
                        MakeNode("n2", "ib-2", "H800", 8),
                        MakeNode("n3", "ib-2", "H800", 8)},
                       {{"H800", 2000}}));
  auto alice = federation.AddConsumer("alice");
  const std::string out = federation.dir() + "/ranks";
  v1::JobSpec spec = ShellJob(
      "echo \"$COMPUTENET_NODE_RANK/$COMPUTENET_NUM_NODES $COMPUTENET_NODE\" >> " +
          out,
      8, {"H800"});
  spec.set_nodes(2);
  auto submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok());
  auto finished = alice->Wait(submitted->job_id(), 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(finished->assignments_size(), 2);
  EXPECT_EQ(finished->assignments(0).node(), "n2");
  EXPECT_EQ(finished->assignments(1).node(), "n3");
  std::ifstream ranks(out);
  std::string content((std::istreambuf_iterator<char>(ranks)),
                      std::istreambuf_iterator<char>());
  EXPECT_THAT(content, HasSubstr("0/2 n2"));
  EXPECT_THAT(content, HasSubstr("1/2 n3"));
}

TEST(EndToEndTest, JobWaitsForCapacityThenRuns) {
  Federation federation;
  auto alice = federation.AddConsumer("alice");
  auto submitted = alice->Submit(ShellJob("true", 1, {"910B"}));
  ASSERT_TRUE(submitted.ok());
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(submitted->job_id());
    return job.ok() && job->state() == v1::JOB_STATE_QUEUED &&
           job->reason().find("no online provider") != std::string::npos;
  }));
  federation.AddProvider(
      "ascend", MakeRegistration("ascend", {MakeNode("n1", "roce-1", "910B", 8)},
                                 {{"910B", 900}}));
  auto finished = alice->Wait(submitted->job_id(), 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace computenet::testing
