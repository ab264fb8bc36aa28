// JobManager: every transition on a real store and ledger (a SQLite file),
// with a FakeClock and a recording JobEvents in place of the broker's
// sockets: what each one stores, holds, frees and tells, and that a refused
// or failed one stores and tells nothing.
#include "jobs/job_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/imports.h"
#include "ledger_fixture.h"
#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeAssignment;
using testing::MakeNode;
using testing::MakeRegistration;

// What the manager sent, in order, decoded.
struct Sent {
  std::string what;  // "changed", "offer" or "cancel"
  std::string job_id;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;  // "changed"
  std::string provider;                            // "offer", "cancel"
  uint32_t grace_ms = 0;                           // "cancel"
};

class RecordingEvents final : public JobEvents {
 public:
  void JobChanged(const v1::JobInfo& job) override {
    sent.push_back({"changed", job.job_id(), job.state(), "", 0});
  }
  bool ToProvider(const std::string& provider, v1::MessageType type,
                  const google::protobuf::MessageLite& body) override {
    const std::string bytes = body.SerializeAsString();
    if (type == v1::MESSAGE_TYPE_PLACEMENT_OFFER) {
      v1::PlacementOffer offer;
      EXPECT_TRUE(offer.ParseFromString(bytes));
      sent.push_back(
          {"offer", offer.job_id(), v1::JOB_STATE_UNSPECIFIED, provider, 0});
    } else if (type == v1::MESSAGE_TYPE_PLACEMENT_CANCEL) {
      v1::PlacementCancel cancel;
      EXPECT_TRUE(cancel.ParseFromString(bytes));
      sent.push_back({"cancel", cancel.job_id(), v1::JOB_STATE_UNSPECIFIED,
                      provider, cancel.grace_ms()});
    } else {
      ADD_FAILURE() << "unexpected message type " << type;
    }
    return connected;
  }
  std::vector<std::string> Kinds() const {
    std::vector<std::string> kinds;
    for (const auto& s : sent) kinds.push_back(s.what);
    return kinds;
  }

  std::vector<Sent> sent;
  bool connected = true;
};

class JobManagerTest : public ::testing::Test {
 protected:
  JobManagerTest() { Restart(); }

  // A fresh manager (and registry) over the same file, as after a restart.
  void Restart() {
    JobManagerOptions options;
    options.region = "north";
    options.max_attempts = 2;
    options.cancel_grace_ms = 1500;
    options.offer_resend_ms = 6000;
    Restart(options);
  }
  void Restart(const JobManagerOptions& options) {
    jobs_.reset();
    registry_ = std::make_unique<ProviderRegistry>();
    registry_->Register(
        "site-a",
        MakeRegistration("zb-1", {MakeNode("n1", "ib-1", "A800", 4)},
                         {{"A800", 3600}}),
        "", clock_->NowMs());
    jobs_ = std::make_unique<JobManager>(options, fixture_.store(),
                                         fixture_.ledger(), *registry_, clock_,
                                         JobQueueOptions{}, events_);
  }

  v1::JobInfo MustSubmit(const std::string& consumer = "alice",
                         const std::string& key = "") {
    v1::JobInfo job;
    job.set_consumer(consumer);
    job.set_organization(consumer);
    *job.mutable_spec() = testing::ShellJob("true", 2);
    job.mutable_spec()->set_max_duration_s(60);
    bool duplicate = true;
    auto submitted = jobs_->Submit("hub", job, key, &duplicate);
    EXPECT_TRUE(submitted.ok()) << submitted.status().ToString();
    EXPECT_FALSE(duplicate);
    return submitted.ok() ? *submitted : v1::JobInfo();
  }

  static Placement OnSiteA(std::vector<uint32_t> devices = {0, 1}) {
    Placement placement;
    placement.provider = "site-a";
    placement.model = "A800";
    placement.assignments = {MakeAssignment("n1", devices)};
    placement.price_per_card_hour = 3600;  // 1 minor unit per card-second
    placement.currency = "CNY";
    placement.cards = static_cast<uint32_t>(devices.size());
    return placement;
  }

  v1::JobInfo MustPlace(v1::JobInfo job,
                        std::vector<uint32_t> devices = {0, 1}) {
    Status placed = jobs_->Place(job, OnSiteA(std::move(devices)));
    EXPECT_TRUE(placed.ok()) << placed.ToString();
    return job;
  }

  v1::JobInfo Stored(const std::string& job_id) {
    auto job = fixture_.store().GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : v1::JobInfo();
  }

  bool HoldOpen(const std::string& job_id) {
    auto hold = fixture_.ledger().OpenHold(job_id);
    EXPECT_TRUE(hold.ok()) << hold.status().ToString();
    return hold.ok() && hold->has_value();
  }

  uint32_t FreeCards() {
    uint32_t free = 0;
    for (const auto& provider : registry_->OnlineCapacity()) {
      for (const auto& node : provider.nodes) {
        for (const auto& group : node.groups) {
          free += static_cast<uint32_t>(group.free_devices.size());
        }
      }
    }
    return free;
  }

  std::vector<std::string> ActiveOnSiteA() {
    auto active = jobs_->ActiveOn("site-a");
    EXPECT_TRUE(active.ok()) << active.status().ToString();
    std::vector<std::string> ids;
    if (active.ok()) {
      for (const auto& job : *active) ids.push_back(job.job_id());
    }
    return ids;
  }

  testing::LedgerFixture fixture_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  RecordingEvents events_;
  std::unique_ptr<ProviderRegistry> registry_;
  std::unique_ptr<JobManager> jobs_;
};

TEST_F(JobManagerTest, SubmitStoresQueuesAndTellsOnce) {
  v1::JobInfo job = MustSubmit("alice", "key-1");
  EXPECT_EQ(job.job_id(), "hub-1");
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(Stored(job.job_id()).created_ms(), clock_->NowMs());
  EXPECT_TRUE(jobs_->queue().Contains(job.job_id()));
  ASSERT_THAT(events_.Kinds(), ElementsAre("changed"));
  EXPECT_EQ(events_.sent[0].state, v1::JOB_STATE_QUEUED);

  // The same idempotency key: the first job back, nothing new stored or told.
  v1::JobInfo again;
  again.set_consumer("alice");
  *again.mutable_spec() = job.spec();
  bool duplicate = false;
  auto repeated = jobs_->Submit("hub", again, "key-1", &duplicate);
  ASSERT_TRUE(repeated.ok()) << repeated.status().ToString();
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(repeated->job_id(), job.job_id());
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed"));
}

TEST_F(JobManagerTest, PlaceHoldsTakesCardsAndOffersAfterStoring) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  v1::JobInfo stored = Stored(job.job_id());
  EXPECT_EQ(stored.state(), v1::JOB_STATE_PLACED);
  EXPECT_EQ(stored.provider(), "site-a");
  EXPECT_EQ(stored.region(), "north");
  EXPECT_EQ(stored.attempts(), 1u);
  EXPECT_TRUE(HoldOpen(job.job_id()));
  EXPECT_EQ(FreeCards(), 2u);
  EXPECT_THAT(ActiveOnSiteA(), ElementsAre(job.job_id()));
  // The row changed (watchers) before the offer went out.
  ASSERT_THAT(events_.Kinds(), ElementsAre("changed", "changed", "offer"));
  EXPECT_EQ(events_.sent[1].state, v1::JOB_STATE_PLACED);
  EXPECT_EQ(events_.sent[2].provider, "site-a");
}

TEST_F(JobManagerTest, PlaceWithoutFundsLeavesItQueuedSayingWhy) {
  v1::JobInfo job = MustSubmit();  // alice has nothing
  events_.sent.clear();
  Status placed = jobs_->Place(job, OnSiteA());
  EXPECT_EQ(placed.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_THAT(job.reason(), HasSubstr("waiting for funds"));
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_QUEUED);
  EXPECT_FALSE(HoldOpen(job.job_id()));
  EXPECT_TRUE(jobs_->funds_waiting());
  EXPECT_THAT(ActiveOnSiteA(), IsEmpty());
  // Only the new reason is told; no offer.
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed"));
}

TEST_F(JobManagerTest, PlacingAJobThatIsNotQueuedIsRefused) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  events_.sent.clear();
  EXPECT_EQ(jobs_->Place(job, OnSiteA()).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_THAT(events_.Kinds(), IsEmpty());
}

TEST_F(JobManagerTest, UnansweredOfferIsResentOnlyAfterTheTimeout) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  events_.sent.clear();
  clock_->AdvanceMs(5999);
  jobs_->ResendUnansweredOffers(clock_->NowMs());
  EXPECT_THAT(events_.Kinds(), IsEmpty());
  clock_->AdvanceMs(1);
  jobs_->ResendUnansweredOffers(clock_->NowMs());
  EXPECT_THAT(events_.Kinds(), ElementsAre("offer"));
  // Answered: never again.
  jobs_->OfferAnswered(job.job_id());
  clock_->AdvanceMs(60'000);
  jobs_->ResendUnansweredOffers(clock_->NowMs());
  EXPECT_THAT(events_.Kinds(), ElementsAre("offer"));
}

TEST_F(JobManagerTest, StartStoresRunningWithTheProvidersTime) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  events_.sent.clear();
  ASSERT_TRUE(jobs_->Start(job, clock_->NowMs() - 250).ok());
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Stored(job.job_id()).started_ms(), clock_->NowMs() - 250);
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed"));
  // A repeated report changes nothing; the offer is not resent once running.
  ASSERT_TRUE(jobs_->Start(job, 0).ok());
  clock_->AdvanceMs(60'000);
  jobs_->ResendUnansweredOffers(clock_->NowMs());
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed"));
  EXPECT_THAT(ActiveOnSiteA(), ElementsAre(job.job_id()));
}

TEST_F(JobManagerTest, RequeueReleasesHoldAndCardsAndQueuesAgain) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  ASSERT_TRUE(jobs_->Start(job, 0).ok());
  events_.sent.clear();
  ASSERT_TRUE(jobs_->Requeue(job, "provider went away").ok());
  v1::JobInfo stored = Stored(job.job_id());
  EXPECT_EQ(stored.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(stored.provider(), "");
  EXPECT_EQ(stored.reason(), "provider went away");
  EXPECT_EQ(stored.attempts(), 1u);  // the attempt is spent
  EXPECT_FALSE(HoldOpen(job.job_id()));
  EXPECT_EQ(FreeCards(), 4u);
  EXPECT_TRUE(jobs_->queue().Contains(job.job_id()));
  EXPECT_THAT(ActiveOnSiteA(), IsEmpty());
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed"));
  EXPECT_TRUE(jobs_->TakeScheduleRequest());
}

TEST_F(JobManagerTest, RequeueOfACancelledJobCancelsIt) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  ASSERT_TRUE(jobs_->RequestCancel(job, "alice", /*at_peer=*/false).ok());
  ASSERT_TRUE(jobs_->Requeue(job, "offer lost").ok());
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(Stored(job.job_id()).reason(),
              HasSubstr("cancelled before it started"));
  EXPECT_FALSE(jobs_->queue().Contains(job.job_id()));
  EXPECT_FALSE(HoldOpen(job.job_id()));
}

TEST_F(JobManagerTest, FinishEndsTheJobAndNothingMovesItAfterwards) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  ASSERT_TRUE(jobs_->Start(job, 0).ok());
  clock_->AdvanceMs(3000);
  events_.sent.clear();
  ASSERT_TRUE(jobs_->Finish(job, v1::JOB_STATE_SUCCEEDED, 0, "exited 0").ok());
  v1::JobInfo stored = Stored(job.job_id());
  EXPECT_EQ(stored.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(stored.finished_ms(), clock_->NowMs());
  EXPECT_FALSE(HoldOpen(job.job_id()));
  EXPECT_EQ(FreeCards(), 4u);
  EXPECT_THAT(ActiveOnSiteA(), IsEmpty());
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed"));

  // The table refuses every way out of a terminal state; nothing is told.
  events_.sent.clear();
  v1::JobInfo copy = job;
  EXPECT_EQ(jobs_->Finish(copy, v1::JOB_STATE_FAILED, 1, "late").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(jobs_->Requeue(copy, "late").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(jobs_->Start(copy, 0).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(copy.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(jobs_->queue().Contains(job.job_id()));
  EXPECT_THAT(events_.Kinds(), IsEmpty());
  EXPECT_EQ(jobs_->Finish(copy, v1::JOB_STATE_RUNNING, 0, "").code(),
            StatusCode::kInvalidArgument);
}

// Hostile-input finding: one consumer stored 60,352 queued jobs in a 10 s
// flood. Past the limit a submit is RESOURCE_EXHAUSTED and stores nothing;
// other consumers are not affected; a retried submit of a stored job still
// answers with it; a job ending makes room again, also after a restart.
TEST_F(JobManagerTest, AConsumerMayHaveOnlySoManyUnfinishedJobs) {
  JobManagerOptions options;
  options.max_unfinished_jobs_per_consumer = 3;
  Restart(options);
  v1::JobInfo first = MustSubmit("alice", "k1");
  MustSubmit("alice", "k2");
  MustSubmit("alice", "k3");
  v1::JobInfo job;
  job.set_consumer("alice");
  job.set_organization("alice");
  *job.mutable_spec() = testing::ShellJob("true", 2);
  bool duplicate = false;
  auto refused = jobs_->Submit("hub", job, "k4", &duplicate);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("3 unfinished jobs"));
  auto listed = fixture_.store().ListJobs("alice", {}, 100);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 3u);
  // The retry of an acknowledged submit is not a new job.
  auto again = jobs_->Submit("hub", job, "k1", &duplicate);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(again->job_id(), first.job_id());
  MustSubmit("bob", "k1");

  ASSERT_TRUE(jobs_->RequestCancel(first, "alice", false).ok());
  MustSubmit("alice", "k5");
  EXPECT_EQ(jobs_->Submit("hub", job, "k6", &duplicate).status().code(),
            StatusCode::kResourceExhausted);
  // A restart counts from the store.
  Restart(options);
  ASSERT_TRUE(jobs_->Load().ok());
  EXPECT_EQ(jobs_->Submit("hub", job, "k6", &duplicate).status().code(),
            StatusCode::kResourceExhausted);
}

TEST_F(JobManagerTest, CancelEndsAQueuedJobAndAsksTheProviderForARunningOne) {
  v1::JobInfo queued = MustSubmit();
  ASSERT_TRUE(jobs_->RequestCancel(queued, "alice", false).ok());
  EXPECT_EQ(Stored(queued.job_id()).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(jobs_->queue().Contains(queued.job_id()));

  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo running = MustPlace(MustSubmit());
  ASSERT_TRUE(jobs_->Start(running, 0).ok());
  events_.sent.clear();
  ASSERT_TRUE(jobs_->RequestCancel(running, "alice", false).ok());
  EXPECT_TRUE(Stored(running.job_id()).cancel_requested());
  EXPECT_EQ(Stored(running.job_id()).state(), v1::JOB_STATE_RUNNING);
  ASSERT_THAT(events_.Kinds(), ElementsAre("changed", "cancel"));
  EXPECT_EQ(events_.sent[1].grace_ms, 1500u);
  // Asked again: nothing more.
  ASSERT_TRUE(jobs_->RequestCancel(running, "alice", false).ok());
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed", "cancel"));
}

TEST_F(JobManagerTest, CancelOfAJobAtAPeerDoesNotTalkToAProvider) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  events_.sent.clear();
  ASSERT_TRUE(jobs_->RequestCancel(job, "alice", /*at_peer=*/true).ok());
  EXPECT_THAT(events_.Kinds(), ElementsAre("changed"));
}

TEST_F(JobManagerTest, PreemptedRunIsRequeuedUntilAttemptsRunOut) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustPlace(MustSubmit());
  ASSERT_TRUE(jobs_->Start(job, 0).ok());
  events_.sent.clear();
  ASSERT_TRUE(jobs_->Preempt(job, 700).ok());
  EXPECT_TRUE(Stored(job.job_id()).preemption_requested());
  ASSERT_THAT(events_.Kinds(), ElementsAre("changed", "cancel"));
  EXPECT_EQ(events_.sent[1].grace_ms, 700u);

  ASSERT_TRUE(jobs_->EndPreemptedRun(job).ok());
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(Stored(job.job_id()).preemptions(), 1u);
  EXPECT_FALSE(Stored(job.job_id()).preemption_requested());

  // Second attempt (max_attempts 2): preempted again, it fails.
  job = MustPlace(Stored(job.job_id()));
  ASSERT_EQ(job.attempts(), 2u);
  ASSERT_TRUE(jobs_->Preempt(job, 700).ok());
  ASSERT_TRUE(jobs_->EndPreemptedRun(job).ok());
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(Stored(job.job_id()).reason(), HasSubstr("no attempts left"));
}

TEST_F(JobManagerTest, NothingOfAFailedBatchIsVisible) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo job = MustSubmit();
  storage::Database& db = fixture_.database();
  ASSERT_TRUE(db.BeginBatch().ok());
  ASSERT_TRUE(jobs_->Place(job, OnSiteA()).ok());
  db.FailNextCommitForTesting();
  EXPECT_EQ(db.CommitBatch().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Stored(job.job_id()).state(), v1::JOB_STATE_QUEUED);
  EXPECT_FALSE(HoldOpen(job.job_id()));
}

TEST_F(JobManagerTest, RestartRebuildsQueueCardsAndProviderIndex) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo waiting = MustSubmit();
  v1::JobInfo running = MustPlace(MustSubmit());
  ASSERT_TRUE(jobs_->Start(running, 0).ok());
  v1::JobInfo done = MustPlace(MustSubmit(), {2, 3});
  ASSERT_TRUE(jobs_->Finish(done, v1::JOB_STATE_SUCCEEDED, 0, "").ok());

  Restart();
  ASSERT_TRUE(jobs_->Load().ok());
  EXPECT_TRUE(jobs_->queue().Contains(waiting.job_id()));
  EXPECT_FALSE(jobs_->queue().Contains(running.job_id()));
  EXPECT_FALSE(jobs_->queue().Contains(done.job_id()));
  EXPECT_THAT(ActiveOnSiteA(), ElementsAre(running.job_id()));
  EXPECT_EQ(jobs_->active_count(), 1u);
  EXPECT_EQ(FreeCards(), 2u);  // the running job's two cards stay taken
}

TEST_F(JobManagerTest, CheckHomeBudgetNamesBothAmounts) {
  EXPECT_TRUE(CheckHomeBudget(2, 60, 3600, 120, "east").ok());
  Status over = CheckHomeBudget(2, 60, 3600, 119, "east");
  EXPECT_EQ(over.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(over.message(), HasSubstr("120"));
  EXPECT_THAT(over.message(), HasSubstr("119"));
  EXPECT_THAT(over.message(), HasSubstr("east"));
}

TEST_F(JobManagerTest, FairShareUsageSurvivesARestart) {
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo ran = MustPlace(MustSubmit("alice"));
  // As a queue pass does for the jobs it places.
  jobs_->queue().MarkRunning(ran.job_id(), "alice", 2000, clock_->NowMs() + 60'000);
  ASSERT_TRUE(jobs_->Start(ran, 0).ok());
  clock_->AdvanceMs(3600 * 1000);  // 2 cards for an hour
  ASSERT_TRUE(jobs_->Finish(ran, v1::JOB_STATE_SUCCEEDED, 0, "").ok());
  const double used = jobs_->queue().UsageOf("alice");
  EXPECT_NEAR(used, 2000.0 * 3600, 2000.0 * 3600 * 0.02);
  ASSERT_TRUE(jobs_->SaveFairShare().ok());

  Restart();
  ASSERT_TRUE(jobs_->Load().ok());
  EXPECT_NEAR(jobs_->queue().UsageOf("alice"), used, 1.0);
  // Down for a day (the half-life): half of it is left.
  clock_->AdvanceMs(24LL * 3600 * 1000);
  EXPECT_NEAR(jobs_->queue().UsageOf("alice"), used / 2, used * 0.001);
  // And it still decides the turns: bob, who used nothing, goes first
  // although alice submitted first.
  v1::JobInfo alices = MustSubmit("alice");
  v1::JobInfo bobs = MustSubmit("bob");
  EXPECT_THAT(jobs_->queue().Order(), ElementsAre(bobs.job_id(), alices.job_id()));
}

TEST_F(JobManagerTest, WithoutTheStoredUsageARestartForgetsIt) {
  // The control for the test above: the usage comes from the table.
  fixture_.MustTopUp("alice", 1'000'000, "t1");
  v1::JobInfo ran = MustPlace(MustSubmit("alice"));
  jobs_->queue().MarkRunning(ran.job_id(), "alice", 2000, clock_->NowMs() + 60'000);
  ASSERT_TRUE(jobs_->Start(ran, 0).ok());
  clock_->AdvanceMs(3600 * 1000);
  ASSERT_TRUE(jobs_->Finish(ran, v1::JOB_STATE_SUCCEEDED, 0, "").ok());
  EXPECT_GT(jobs_->queue().UsageOf("alice"), 0.0);
  ASSERT_TRUE(fixture_.store().SaveFairShare({}).ok());
  Restart();
  ASSERT_TRUE(jobs_->Load().ok());
  EXPECT_EQ(jobs_->queue().UsageOf("alice"), 0.0);
}

// --- priority preemption ------------------------------------------------------

v1::JobSpec PrioritySpec(uint32_t cards, v1::PriorityClass priority,
                         bool preemptible) {
  v1::JobSpec spec = testing::ShellJob("true", cards);
  spec.set_max_duration_s(60);
  spec.set_priority(priority);
  spec.set_preemptible(preemptible);
  return spec;
}

class PreemptionManagerTest : public JobManagerTest {
 protected:
  PreemptionManagerTest() {
    fixture_.MustTopUp("alice", 1'000'000, "t1");
    fixture_.MustTopUp("bob", 1'000'000, "t2");
  }

  v1::JobInfo Submit(const v1::JobSpec& spec, const std::string& consumer) {
    v1::JobInfo job;
    job.set_consumer(consumer);
    job.set_organization(consumer);
    *job.mutable_spec() = spec;
    bool duplicate = true;
    auto submitted = jobs_->Submit("hub", job, "", &duplicate);
    EXPECT_TRUE(submitted.ok()) << submitted.status().ToString();
    return submitted.ok() ? *submitted : v1::JobInfo();
  }
  // Places what the queue can and returns the ids it placed.
  std::vector<std::string> SchedulePass() {
    JobQueue::PassResult pass =
        jobs_->queue().Schedule(registry_->capacity(), matcher_);
    std::vector<std::string> placed;
    for (const auto& outcome : pass.placed) {
      v1::JobInfo job = Stored(outcome.job_id);
      EXPECT_TRUE(jobs_->Place(job, *outcome.placement).ok());
      placed.push_back(outcome.job_id);
    }
    return placed;
  }
  std::vector<std::string> PreemptFor(const std::string& job_id) {
    const QueuedJob* queued = jobs_->queue().Find(job_id);
    EXPECT_NE(queued, nullptr);
    if (queued == nullptr) return {};
    auto victims = jobs_->PreemptFor(*queued, matcher_);
    EXPECT_TRUE(victims.ok()) << victims.status().ToString();
    return victims.ok() ? *victims : std::vector<std::string>();
  }

  PlacementMatcher matcher_;
};

TEST_F(PreemptionManagerTest, HighJobStopsTheLowerPriorityWorkThatLosesLeast) {
  v1::JobInfo old_run = Submit(PrioritySpec(2, v1::PRIORITY_CLASS_LOW, true), "alice");
  v1::JobInfo young = Submit(PrioritySpec(2, v1::PRIORITY_CLASS_NORMAL, true), "alice");
  ASSERT_EQ(SchedulePass().size(), 2u);
  old_run = Stored(old_run.job_id());
  ASSERT_TRUE(jobs_->Start(old_run, clock_->NowMs()).ok());
  clock_->AdvanceMs(500'000);
  young = Stored(young.job_id());
  ASSERT_TRUE(jobs_->Start(young, clock_->NowMs()).ok());
  clock_->AdvanceMs(10'000);

  v1::JobInfo urgent = Submit(PrioritySpec(2, v1::PRIORITY_CLASS_HIGH, false), "bob");
  EXPECT_TRUE(SchedulePass().empty()) << "the site is full";
  events_.sent.clear();
  EXPECT_THAT(PreemptFor(urgent.job_id()), ElementsAre(young.job_id()));
  // The victim is flagged and told (with the grace); the HIGH job says why
  // it waits.
  v1::JobInfo victim = Stored(young.job_id());
  EXPECT_TRUE(victim.preemption_requested());
  EXPECT_EQ(victim.preempted_for(), urgent.job_id());
  EXPECT_THAT(victim.reason(), HasSubstr("higher-priority job " + urgent.job_id()));
  ASSERT_THAT(events_.Kinds(), ElementsAre("changed", "cancel", "changed"));
  EXPECT_EQ(events_.sent[1].job_id, young.job_id());
  EXPECT_EQ(events_.sent[1].grace_ms, 30'000u);
  EXPECT_THAT(Stored(urgent.job_id()).reason(), HasSubstr("preempting 1"));
  EXPECT_TRUE(jobs_->PreemptingFor(urgent.job_id()));
  EXPECT_FALSE(Stored(old_run.job_id()).preemption_requested());
  // While its victim stops, it stops nothing more.
  EXPECT_TRUE(PreemptFor(urgent.job_id()).empty());

  // The victim's run ends: requeued, an attempt not spent, and the HIGH job
  // takes its cards on the next pass.
  victim = Stored(young.job_id());
  ASSERT_TRUE(jobs_->EndPreemptedRun(victim).ok());
  victim = Stored(young.job_id());
  EXPECT_EQ(victim.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(victim.preemptions(), 1u);
  EXPECT_EQ(victim.last_preempted_ms(), clock_->NowMs());
  EXPECT_TRUE(victim.preempted_for().empty());
  EXPECT_THAT(victim.reason(), HasSubstr("billed for the run so far"));
  EXPECT_FALSE(jobs_->PreemptingFor(urgent.job_id()));
  EXPECT_THAT(SchedulePass(), ElementsAre(urgent.job_id()));
  EXPECT_EQ(Stored(urgent.job_id()).state(), v1::JOB_STATE_PLACED);
}

TEST_F(PreemptionManagerTest, PreemptionForPrioritySpendsNoAttemptAndThenProtects) {
  // max_attempts is 2 in this fixture; the victim is preempted twice and
  // still runs a third time, then is protected (protect_after 2).
  v1::JobInfo victim = Submit(PrioritySpec(4, v1::PRIORITY_CLASS_LOW, true), "alice");
  for (int round = 0; round < 3; ++round) {
    ASSERT_THAT(SchedulePass(), ElementsAre(victim.job_id())) << round;
    victim = Stored(victim.job_id());
    ASSERT_TRUE(jobs_->Start(victim, clock_->NowMs()).ok());
    clock_->AdvanceMs(1000);
    v1::JobInfo urgent = Submit(PrioritySpec(4, v1::PRIORITY_CLASS_HIGH, false), "bob");
    EXPECT_TRUE(SchedulePass().empty());
    const std::vector<std::string> stopped = PreemptFor(urgent.job_id());
    if (round == 2) {
      EXPECT_TRUE(stopped.empty()) << "protected after two preemptions";
      EXPECT_FALSE(Stored(victim.job_id()).preemption_requested());
      // An hour after its last preemption it may be stopped again.
      clock_->AdvanceMs(3600'000);
      EXPECT_THAT(PreemptFor(urgent.job_id()), ElementsAre(victim.job_id()));
      break;
    }
    ASSERT_THAT(stopped, ElementsAre(victim.job_id())) << round;
    victim = Stored(victim.job_id());
    ASSERT_TRUE(jobs_->EndPreemptedRun(victim).ok());
    ASSERT_EQ(Stored(victim.job_id()).state(), v1::JOB_STATE_QUEUED) << round;
    // The HIGH job runs and ends; the victim gets the cards back.
    ASSERT_THAT(SchedulePass(), ElementsAre(urgent.job_id()));
    urgent = Stored(urgent.job_id());
    ASSERT_TRUE(jobs_->Finish(urgent, v1::JOB_STATE_SUCCEEDED, 0, "").ok());
  }
  EXPECT_EQ(Stored(victim.job_id()).preemptions(), 2u);
  EXPECT_EQ(Stored(victim.job_id()).attempts(), 3u);
}

TEST_F(PreemptionManagerTest, NeverForNormalJobsNonPreemptibleWorkOrWhenOff) {
  v1::JobInfo firm = Submit(PrioritySpec(2, v1::PRIORITY_CLASS_LOW, false), "alice");
  v1::JobInfo soft = Submit(PrioritySpec(2, v1::PRIORITY_CLASS_LOW, true), "alice");
  ASSERT_EQ(SchedulePass().size(), 2u);
  v1::JobInfo normal = Submit(PrioritySpec(2, v1::PRIORITY_CLASS_NORMAL, false), "bob");
  v1::JobInfo wide = Submit(PrioritySpec(4, v1::PRIORITY_CLASS_HIGH, false), "bob");
  EXPECT_TRUE(SchedulePass().empty());
  EXPECT_TRUE(PreemptFor(normal.job_id()).empty()) << "only HIGH preempts";
  // Four cards would need the non-preemptible job stopped too.
  EXPECT_TRUE(PreemptFor(wide.job_id()).empty());
  EXPECT_FALSE(Stored(soft.job_id()).preemption_requested());
  EXPECT_FALSE(Stored(firm.job_id()).preemption_requested());

  // Switched off: not even a fitting plan is applied.
  JobManagerOptions off;
  off.max_attempts = 2;
  off.priority_preemption = false;
  Restart(off);
  ASSERT_TRUE(jobs_->Load().ok());
  v1::JobInfo narrow = Submit(PrioritySpec(2, v1::PRIORITY_CLASS_HIGH, false), "bob");
  EXPECT_TRUE(PreemptFor(narrow.job_id()).empty());
  EXPECT_FALSE(Stored(soft.job_id()).preemption_requested());
}

}  // namespace
}  // namespace computenet::broker
