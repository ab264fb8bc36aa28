// Job lifecycle across cancels, provider loss and broker restarts, with real
// processes and sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "computenet/ledger/ledger.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

v1::RegisterProvider SmallSite(const std::string& name) {
  return MakeRegistration(name, {MakeNode("n1", "ib-1", "A800", 2)},
                          {{"A800", 1500}});
}

bool ProcessAlive(const std::string& pid_file) {
  std::ifstream in(pid_file);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return false;
  return ::kill(pid, 0) == 0;
}

TEST(LifecycleTest, CancelStopsTheRunningProcessAndBillsWhatRan) {
  Federation federation;
  federation.AddProvider("site-a", SmallSite("site-a"));
  auto alice = federation.AddConsumer("alice");
  const std::string pid_file = federation.dir() + "/pid";
  auto submitted =
      alice->Submit(ShellJob("echo $$ > " + pid_file + "; exec sleep 300"));
  ASSERT_TRUE(submitted.ok());
  ASSERT_TRUE(WaitUntil([&] { return ProcessAlive(pid_file); }));

  auto cancelled = alice->Cancel(submitted->job_id());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  auto finished = alice->Wait(submitted->job_id(), 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(ProcessAlive(pid_file));
  EXPECT_GE(finished->card_seconds(), 1u);  // it ran, and is billed for it
  EXPECT_TRUE(ledger::VerifyLedger(federation.OpenStore().database()).ok());
  // A second cancel is refused: the job already ended.
  EXPECT_EQ(alice->Cancel(submitted->job_id()).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(LifecycleTest, CancelQueuedJobNeverRuns) {
  Federation federation;
  auto alice = federation.AddConsumer("alice");
  auto submitted = alice->Submit(ShellJob("true"));
  ASSERT_TRUE(submitted.ok());
  auto cancelled = alice->Cancel(submitted->job_id());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  federation.AddProvider("site-a", SmallSite("site-a"));
  auto job = alice->GetJob(submitted->job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(job->provider().empty());
}

TEST(LifecycleTest, SubmitWithSameIdempotencyKeyReturnsTheSameJob) {
  Federation federation;
  auto alice = federation.AddConsumer("alice");
  auto first = alice->Submit(ShellJob("true"), "key-1");
  auto again = alice->Submit(ShellJob("true"), "key-1");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->job_id(), again->job_id());
  EXPECT_FALSE(first->duplicate());
  EXPECT_TRUE(again->duplicate());
  auto jobs = alice->ListJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 1u);
}

TEST(LifecycleTest, SilentProviderIsMarkedLost) {
  Federation federation;
  federation.AddProvider("site-a", SmallSite("site-a"));
  auto online = [&] {
    auto row = storage::RawConnectionForTesting(federation.OpenStore().database()).execAndGet(
        "SELECT online FROM providers WHERE name='site-a'");
    return row.getInt() == 1;
  };
  EXPECT_TRUE(online());
  federation.StopProvider("site-a");
  EXPECT_TRUE(WaitUntil([&] { return !online(); }, std::chrono::seconds(5)));

  // Its capacity is gone: a new job waits.
  auto alice = federation.AddConsumer("alice");
  auto submitted = alice->Submit(ShellJob("true"));
  ASSERT_TRUE(submitted.ok());
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(submitted->job_id());
    return job.ok() && job->state() == v1::JOB_STATE_QUEUED &&
           !job->reason().empty() && job->reason() != "waiting to be matched";
  }));
}

TEST(LifecycleTest, AcknowledgedJobsSurviveBrokerRestartAndProviderReRegisters) {
  Federation federation;
  auto& agent = federation.AddProvider("site-a", SmallSite("site-a"));
  auto alice = federation.AddConsumer("alice");
  const std::string flag = federation.dir() + "/flag";
  auto running = alice->Submit(
      ShellJob("while [ ! -f " + flag + " ]; do sleep 0.02; done"));
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(running->job_id());
    return job.ok() && job->state() == v1::JOB_STATE_RUNNING;
  }));

  federation.RestartBroker();
  // The agent notices (heartbeat reply "register first", or silence) and
  // registers again, reporting the job it still runs.
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(running->job_id());
    return job.ok() && agent.registered();
  }));
  { std::ofstream(flag) << "go"; }
  auto finished = alice->Wait(running->job_id(), 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_GE(finished->card_seconds(), 1u);

  // New work still flows after the restart.
  auto second = alice->Submit(ShellJob("true"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->job_id(), "test-2");
  auto done = alice->Wait(second->job_id(), 20'000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  auto audit = ledger::VerifyLedger(federation.OpenStore().database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  // Two jobs charged once each: the top-up, and per job a hold, its
  // closing usage record and the release of the rest.
  EXPECT_EQ(audit->usage_records, 2u);
  EXPECT_EQ(audit->entries, 7u);
  EXPECT_EQ(audit->open_holds, 0u);
}

TEST(LifecycleTest, JobLostByAProviderRestartFails) {
  // A registration that omits a running job no longer fails it at once (it
  // may have finished while its agent was away, docs/protocol.md §13): it
  // fails once the lost-provider timeout passes without a report.
  broker::BrokerOptions options;
  options.lost_job_timeout_ms = 1000;
  Federation federation(options);
  federation.AddProvider("site-a", SmallSite("site-a"));
  auto alice = federation.AddConsumer("alice");
  auto submitted = alice->Submit(ShellJob("sleep 300"));
  ASSERT_TRUE(submitted.ok());
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice->GetJob(submitted->job_id());
    return job.ok() && job->state() == v1::JOB_STATE_RUNNING;
  }));
  // The agent stops (its executor kills the job) and a fresh agent with the
  // same key registers without it.
  federation.StopProvider("site-a");
  // The operator re-enrolls the site under a new key (the fixture makes
  // fresh keys for every AddProvider).
  storage::RawConnectionForTesting(federation.OpenStore().database()).exec(
      "DELETE FROM enrollments WHERE name='site-a'");
  federation.AddProvider("site-a", SmallSite("site-a"));
  auto finished = alice->Wait(submitted->job_id(), 20'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(finished->reason(), HasSubstr("re-registered without the job"));
}

TEST(LifecycleTest, JobsRunConcurrentlyOnTwoProviders) {
  Federation federation;
  federation.AddProvider("site-a", SmallSite("site-a"));
  federation.AddProvider("site-b", SmallSite("site-b"));
  auto alice = federation.AddConsumer("alice");
  const std::string flag = federation.dir() + "/flag";
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto submitted = alice->Submit(
        ShellJob("while [ ! -f " + flag + " ]; do sleep 0.02; done"));
    ASSERT_TRUE(submitted.ok());
    ids.push_back(submitted->job_id());
  }
  // Four one-card jobs fill both sites' two cards each.
  ASSERT_TRUE(WaitUntil([&] {
    auto jobs = alice->ListJobs(10, {v1::JOB_STATE_RUNNING});
    return jobs.ok() && jobs->size() == 4;
  }));
  std::set<std::string> providers;
  for (const auto& id : ids) providers.insert(alice->GetJob(id)->provider());
  EXPECT_EQ(providers, (std::set<std::string>{"site-a", "site-b"}));
  { std::ofstream(flag) << "go"; }
  for (const auto& id : ids) {
    auto done = alice->Wait(id, 20'000);
    ASSERT_TRUE(done.ok());
    EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  }
}

}  // namespace
}  // namespace computenet::testing
