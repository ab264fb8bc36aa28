// End to end through a real Slurm: a consumer submits to a broker, a
// provider agent whose executor is a SlurmExecutor runs the job as a Slurm
// batch job, and the signed usage record carries Slurm's own StartTime and
// EndTime. A job also survives its agent's restart: the new agent re-adopts
// it from Slurm, lists it at registration, and reports its end.
// Skipped only if tests/slurm/slurm-local.sh exits 77.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "computenet/ledger/ledger.h"
#include "computenet/common/usage_record.h"
#include "computenet/provider/slurm_executor.h"
#include "local_slurm.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

class SlurmEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    slurm_ = StartLocalSlurm();
    if (slurm_.outcome == LocalSlurm::Outcome::kSkip) {
      GTEST_SKIP() << slurm_.message;
    }
    ASSERT_EQ(slurm_.outcome, LocalSlurm::Outcome::kRunning) << slurm_.message;
    owner_ = UniqueSlurmOwner("e2e");
  }

  void TearDown() override {
    if (slurm_.outcome == LocalSlurm::Outcome::kRunning) {
      CancelOwnedSlurmJobs(slurm_, owner_);
    }
  }

  std::unique_ptr<provider::Executor> MakeExecutor(const std::string& work_dir) {
    provider::SlurmExecutorOptions options;
    options.owner = owner_;
    options.work_dir = work_dir;
    options.commands = slurm_.Commands();
    options.jobcomp_file = slurm_.jobcomp_file;
    options.poll_interval_ms = 100;
    auto executor = provider::SlurmExecutor::Create(std::move(options));
    if (!executor.ok()) {
      ADD_FAILURE() << executor.status().ToString();
      return nullptr;
    }
    return std::move(*executor);
  }

  static v1::RegisterProvider SlurmSite(const std::string& name) {
    return MakeRegistration(name, {MakeNode("localhost", "slurm:debug", "A800", 8)},
                            {{"A800", 1234}});
  }

  // Slurm's record of the ComputeNet job (found by its comment).
  provider::SlurmRecord SlurmJobFor(const std::string& job_id) {
    for (const auto& row : OwnedSlurmJobs(slurm_, owner_)) {
      auto tag = provider::DecodeJobTag(row.comment);
      if (tag && tag->job_id == job_id) return ShowSlurmJob(slurm_, row.job_id);
    }
    return {};
  }

  LocalSlurm slurm_;
  std::string owner_;
};

TEST_F(SlurmEndToEndTest, JobRunsInSlurmAndUsageCarriesSlurmsTimes) {
  Federation federation;
  auto executor = MakeExecutor(federation.dir() + "/work");
  ASSERT_NE(executor, nullptr);
  federation.AddProvider("site-slurm", SlurmSite("site-slurm"), std::move(executor));
  auto alice = federation.AddConsumer("alice");

  const std::string seen = federation.dir() + "/seen";
  v1::JobSpec spec = ShellJob(
      "echo \"$COMPUTENET_JOB_ID|$SLURM_JOB_ID\" > " + seen + "; sleep 1.5", 2,
      {"A800"});
  auto submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  const std::string job_id = submitted->job_id();

  auto finished = alice->Wait(job_id, 30'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED) << finished->reason();
  EXPECT_EQ(finished->exit_code(), 0);
  EXPECT_EQ(finished->provider(), "site-slurm");

  // It really was a Slurm job: Slurm has it, under our comment.
  provider::SlurmRecord slurm_job = SlurmJobFor(job_id);
  ASSERT_EQ(slurm_job.Get("JobState"), "COMPLETED");
  std::string line;
  std::getline(std::ifstream(seen) >> std::ws, line);
  EXPECT_EQ(line, job_id + "|" + slurm_job.Get("JobId"));
  const auto start_s = provider::ParseSlurmTime(slurm_job.Get("StartTime"));
  const auto end_s = provider::ParseSlurmTime(slurm_job.Get("EndTime"));
  ASSERT_TRUE(start_s && end_s);

  // The signed usage record's times are Slurm's, to the second.
  broker::Store& store = federation.OpenStore();
  auto record = ledger::UsageRecords(store.database()).LatestForJob(job_id);
  ASSERT_TRUE(record.ok() && record->has_value());
  auto enrollment = store.FindEnrollment(broker::Role::kProvider, "site-slurm");
  ASSERT_TRUE(enrollment.ok() && enrollment->has_value());
  auto verified = VerifyUsageRecord((*enrollment)->ed25519_public,
                                    (*record)->record, (*record)->signature);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->start_ms(), *start_s * 1000);
  EXPECT_EQ(verified->end_ms(), *end_s * 1000);
  EXPECT_EQ(verified->cards(), 2u);
  EXPECT_EQ(verified->model(), "A800");
  const uint64_t card_seconds = 2 * static_cast<uint64_t>(*end_s - *start_s);
  EXPECT_EQ(verified->card_seconds(), card_seconds);
  EXPECT_GE(card_seconds, 2u);
  EXPECT_EQ(finished->card_seconds(), card_seconds);
  EXPECT_EQ(finished->charged(),
            (static_cast<int64_t>(card_seconds) * 1234 + 1800) / 3600);
  auto audit = ledger::VerifyLedger(store.database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
}

TEST_F(SlurmEndToEndTest, JobSurvivesItsAgentsRestart) {
  Federation federation;
  federation.AddProvider("site-slurm", SlurmSite("site-slurm"),
                         MakeExecutor(federation.dir() + "/work"));
  auto alice = federation.AddConsumer("alice");
  const std::string flag = federation.dir() + "/flag";
  auto submitted = alice->Submit(ShellJob(
      "while [ ! -f " + flag + " ]; do sleep 0.05; done", 1, {"A800"}));
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto job = alice->GetJob(submitted->job_id());
        return job.ok() && job->state() == v1::JOB_STATE_RUNNING;
      },
      std::chrono::seconds(30)));

  // The agent goes away; the job keeps running in Slurm. A new agent (new
  // key, same site) re-adopts it and lists it when it registers, so the
  // broker keeps it instead of failing it.
  federation.StopProvider("site-slurm");
  storage::RawConnectionForTesting(federation.OpenStore().database()).exec(
      "DELETE FROM enrollments WHERE name='site-slurm'");
  federation.AddProvider("site-slurm", SlurmSite("site-slurm"),
                         MakeExecutor(federation.dir() + "/work"));
  { std::ofstream(flag) << "go"; }

  auto finished = alice->Wait(submitted->job_id(), 30'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED) << finished->reason();
  provider::SlurmRecord slurm_job = SlurmJobFor(submitted->job_id());
  ASSERT_EQ(slurm_job.Get("JobState"), "COMPLETED");
  const auto start_s = provider::ParseSlurmTime(slurm_job.Get("StartTime"));
  const auto end_s = provider::ParseSlurmTime(slurm_job.Get("EndTime"));
  ASSERT_TRUE(start_s && end_s);
  EXPECT_EQ(finished->card_seconds(), static_cast<uint64_t>(*end_s - *start_s));
}

}  // namespace
}  // namespace computenet::testing
