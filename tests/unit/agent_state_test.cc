// AgentState: the agent's durable outbox and jobs in a real SQLite file, the
// lock that keeps a second agent off the same directory, and the instance
// id that survives a restart.
#include "computenet/provider/agent_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "computenet/common/files.h"
#include "test_support.h"

namespace computenet::provider {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

v1::PlacementOffer Offer(const std::string& job_id) {
  v1::PlacementOffer offer;
  offer.set_job_id(job_id);
  offer.set_model("A800");
  offer.set_attempt(2);
  auto* assignment = offer.add_assignments();
  assignment->set_node("n1");
  assignment->add_device_indices(3);
  return offer;
}

// Secret env values stay in the agent's memory: the stored offer keeps the
// names only, and neither agent.db nor its WAL holds the value.
TEST(AgentStateTest, StoredOffersKeepSecretNamesOnly) {
  TempDir dir;
  const std::string state_dir = dir.File("state");
  const std::string value = "s3cr3t-agent-VALUE-42";
  {
    auto state = AgentState::Open(state_dir);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    StoredJob job;
    job.job_id = "job-1";
    job.offer = Offer("job-1");
    (*job.offer.mutable_spec()->mutable_secret_env())["TOKEN"] = value;
    ASSERT_TRUE((*state)->PutJob(job).ok());
    // The caller's copy is untouched (the agent starts the job from it).
    EXPECT_EQ(job.offer.spec().secret_env().at("TOKEN"), value);
    auto jobs = (*state)->Jobs();
    ASSERT_TRUE(jobs.ok());
    ASSERT_EQ(jobs->size(), 1u);
    EXPECT_EQ((*jobs)[0].offer.spec().secret_env().at("TOKEN"), "***");
    for (const char* suffix : {"", "-wal"}) {
      auto bytes = ReadFileToString(state_dir + "/agent.db" + suffix, 1 << 30);
      if (bytes.ok()) {
        EXPECT_EQ(bytes->find(value), std::string::npos) << suffix;
      }
    }
  }
}

TEST(AgentStateTest, ReportsAndJobsSurviveAReopenUntilRemoved) {
  TempDir dir;
  const std::string state_dir = dir.File("state");
  std::string instance;
  int64_t acked = 0;
  {
    auto state = AgentState::Open(state_dir);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_TRUE((*state)->durable());
    instance = (*state)->instance_id();
    EXPECT_EQ(instance.size(), 32u);
    auto first = (*state)->AddReport(v1::MESSAGE_TYPE_USAGE_REPORT, "job-1",
                                     std::string("\0bytes", 6));
    ASSERT_TRUE(first.ok());
    acked = *first;
    ASSERT_TRUE(
        (*state)
            ->AddReport(v1::MESSAGE_TYPE_JOB_STATUS_UPDATE, "job-1", "status")
            .ok());
    StoredJob job;
    job.job_id = "job-1";
    job.offer = Offer("job-1");
    job.phase = JobPhase::kRunning;
    job.started = true;
    job.last_end_ms = 123456;
    job.next_index = 4;
    ASSERT_TRUE((*state)->PutJob(job).ok());
    job.job_id = "job-2";
    job.offer = Offer("job-2");
    ASSERT_TRUE((*state)->PutJob(job).ok());
    ASSERT_TRUE((*state)->RemoveJob("job-2").ok());
  }
  auto state = AgentState::Open(state_dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ((*state)->instance_id(), instance) << "kept across restarts";
  auto reports = (*state)->Reports();
  ASSERT_TRUE(reports.ok());
  ASSERT_EQ(reports->size(), 2u);
  EXPECT_EQ((*reports)[0].type, v1::MESSAGE_TYPE_USAGE_REPORT);
  EXPECT_EQ((*reports)[0].body, std::string("\0bytes", 6)) << "byte for byte";
  EXPECT_EQ((*reports)[1].type, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE);
  auto jobs = (*state)->Jobs();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].job_id, "job-1");
  EXPECT_EQ((*jobs)[0].phase, JobPhase::kRunning);
  EXPECT_TRUE((*jobs)[0].started);
  EXPECT_EQ((*jobs)[0].last_end_ms, 123456);
  EXPECT_EQ((*jobs)[0].next_index, 4u);
  EXPECT_EQ((*jobs)[0].offer.attempt(), 2u);
  ASSERT_TRUE((*state)->RemoveReport(acked).ok());
  EXPECT_EQ((*state)->Reports()->size(), 1u);
}

TEST(AgentStateTest, AFailedTransactionStoresNothing) {
  TempDir dir;
  auto state = AgentState::Open(dir.File("state"));
  ASSERT_TRUE(state.ok());
  Status status = (*state)->Transaction([&]() -> Status {
    CN_RETURN_IF_ERROR(
        (*state)
            ->AddReport(v1::MESSAGE_TYPE_USAGE_REPORT, "job-1", "x")
            .status());
    return InternalError("the disk said no");
  });
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_TRUE((*state)->Reports()->empty());
}

TEST(AgentStateTest, ASecondAgentOnTheSameDirectoryIsRefusedNamingTheFirst) {
  TempDir dir;
  auto first = AgentState::Open(dir.File("state"));
  ASSERT_TRUE(first.ok());
  auto second = AgentState::Open(dir.File("state"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr("in use by another agent (pid " +
                        std::to_string(::getpid()) + ")"));
  first->reset();  // released with it (as when the process dies)
  EXPECT_TRUE(AgentState::Open(dir.File("state")).ok());
}

TEST(AgentStateTest, InMemoryStateHasNoLockAndNoInstance) {
  auto state = AgentState::Open("");
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE((*state)->durable());
  EXPECT_TRUE((*state)->instance_id().empty());
  EXPECT_TRUE(
      (*state)->AddReport(v1::MESSAGE_TYPE_USAGE_REPORT, "job-1", "x").ok());
  EXPECT_EQ((*state)->Reports()->size(), 1u);
}

}  // namespace
}  // namespace computenet::provider
