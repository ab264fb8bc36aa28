// The job state machine's table (jobs/job_transitions.h), and that the store
// refuses a transition outside it.
#include "jobs/job_transitions.h"

#include <gtest/gtest.h>

#include "computenet/common/job_state.h"
#include "core/imports.h"
#include "jobs/store.h"
#include "test_support.h"

namespace computenet::broker {
namespace {

using v1::JobState;

TEST(JobTransitionsTest, TheLifeOfAJob) {
  EXPECT_TRUE(CheckJobTransition(v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED).ok());
  EXPECT_TRUE(CheckJobTransition(v1::JOB_STATE_PLACED, v1::JOB_STATE_RUNNING).ok());
  EXPECT_TRUE(CheckJobTransition(v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED).ok());
  // Requeues: an offer rejected, spare capacity reclaimed.
  EXPECT_TRUE(CheckJobTransition(v1::JOB_STATE_PLACED, v1::JOB_STATE_QUEUED).ok());
  EXPECT_TRUE(CheckJobTransition(v1::JOB_STATE_RUNNING, v1::JOB_STATE_QUEUED).ok());
  // A forwarded job mirrors its peer, which may skip states.
  EXPECT_TRUE(CheckJobTransition(v1::JOB_STATE_QUEUED, v1::JOB_STATE_SUCCEEDED).ok());
  // Updates that keep the state (reason, usage, charge).
  for (int s = 1; s <= 6; ++s) {
    auto state = static_cast<JobState>(s);
    EXPECT_TRUE(CheckJobTransition(state, state).ok()) << s;
  }
}

TEST(JobTransitionsTest, TerminalStatesAreFinal) {
  for (JobState end : {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED,
                       v1::JOB_STATE_CANCELLED}) {
    for (int s = 1; s <= 6; ++s) {
      auto to = static_cast<JobState>(s);
      if (to == end) continue;
      Status status = CheckJobTransition(end, to);
      EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition)
          << JobStateName(end) << " -> " << JobStateName(to);
    }
  }
}

TEST(JobTransitionsTest, RunningIsNeverOfferedAgainAndJunkIsRefused) {
  EXPECT_EQ(CheckJobTransition(v1::JOB_STATE_RUNNING, v1::JOB_STATE_PLACED).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_FALSE(CheckJobTransition(v1::JOB_STATE_UNSPECIFIED,
                                  v1::JOB_STATE_QUEUED).ok());
  EXPECT_FALSE(
      CheckJobTransition(v1::JOB_STATE_QUEUED, static_cast<JobState>(99)).ok());
}

TEST(JobTransitionsTest, StoreRefusesAnIllegalTransitionAndKeepsTheRow) {
  computenet::testing::TempDir dir;
  auto store = Store::Open(dir.File("broker.db"));
  ASSERT_TRUE(store.ok());
  v1::JobInfo job;
  job.set_consumer("alice");
  job.set_state(v1::JOB_STATE_QUEUED);
  bool duplicate = false;
  auto inserted = (*store)->InsertJob("hub", job, "k1", &duplicate);
  ASSERT_TRUE(inserted.ok());
  v1::JobInfo done = *inserted;
  done.set_state(v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE((*store)->UpdateJob(done, 1).ok());
  v1::JobInfo again = done;
  again.set_state(v1::JOB_STATE_QUEUED);
  Status refused = (*store)->UpdateJob(again, 2);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("succeeded to queued"), std::string::npos);
  EXPECT_EQ((*store)->GetJob(done.job_id())->state(), v1::JOB_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace computenet::broker
