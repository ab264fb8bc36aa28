// JobQueue policy without sockets: priority classes, FIFO, fair share
// between organizations with decay, aging, backfill that never delays the
// head job, and the never-fits rejection. Real CapacityIndex and
// PlacementMatcher; time from a FakeClock.
#include "computenet/matching/job_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "test_support.h"

namespace computenet::matching {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeNode;
using testing::MakeRegistration;

constexpr int64_t kHour = 3600LL * 1000;

class JobQueueTest : public ::testing::Test {
 protected:
  JobQueueTest() : clock_(std::make_shared<FakeClock>()) {
    JobQueueOptions options;
    options.fair_share_half_life_ms = kHour;
    options.aging_interval_ms = kHour;
    queue_ = std::make_unique<JobQueue>(options, clock_);
  }

  void AddProvider(const std::string& name, std::vector<v1::Node> nodes) {
    ASSERT_TRUE(index_
                    .UpsertProvider(
                        name, MakeRegistration(name, nodes, {{"A800", 1500}}))
                    .ok());
    index_.SetOnline(name, true);
  }

  // A job of `cards` whole cards, submitted now.
  void Submit(const std::string& id, const std::string& org, uint32_t cards,
              v1::PriorityClass priority = v1::PRIORITY_CLASS_NORMAL,
              uint32_t max_duration_s = 600, uint32_t nodes = 1) {
    QueuedJob job;
    job.job_id = id;
    job.organization = org;
    job.priority = priority;
    job.submitted_ms = clock_->NowMs();
    job.sequence = ++sequence_;
    v1::JobSpec spec = testing::ShellJob("true", cards);
    spec.set_nodes(nodes);
    job.request = PlacementRequest::FromSpec(spec);
    job.max_duration_s = max_duration_s;
    ASSERT_TRUE(queue_->Add(std::move(job)).ok());
  }

  std::vector<std::string> Placed(const JobQueue::PassResult& pass) {
    std::vector<std::string> out;
    for (const auto& outcome : pass.placed) out.push_back(outcome.job_id);
    return out;
  }

  std::string WaitReason(const JobQueue::PassResult& pass,
                         const std::string& job_id) {
    for (const auto& outcome : pass.waiting) {
      if (outcome.job_id == job_id) return outcome.reason;
    }
    return "(not waiting)";
  }

  // The job ends: its cards come back.
  void End(const std::string& job_id) {
    index_.Release(job_id);
    queue_->MarkStopped(job_id);
  }

  std::shared_ptr<FakeClock> clock_;
  std::unique_ptr<JobQueue> queue_;
  CapacityIndex index_;
  PlacementMatcher matcher_;
  uint64_t sequence_ = 0;
};

TEST_F(JobQueueTest, AddRemoveAndDuplicates) {
  Submit("j1", "org-a", 1);
  EXPECT_TRUE(queue_->Contains("j1"));
  QueuedJob again;
  again.job_id = "j1";
  EXPECT_EQ(queue_->Add(again).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(queue_->Add(QueuedJob{}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(queue_->Remove("j1"));
  EXPECT_FALSE(queue_->Remove("j1"));
  EXPECT_EQ(queue_->size(), 0u);
}

TEST_F(JobQueueTest, PriorityClassesAreStrictAndFifoWithinAClass) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 2)});
  Submit("low", "org", 1, v1::PRIORITY_CLASS_LOW);
  Submit("normal-1", "org", 1, v1::PRIORITY_CLASS_NORMAL);
  Submit("high", "org", 1, v1::PRIORITY_CLASS_HIGH);
  Submit("normal-2", "org", 1, v1::PRIORITY_CLASS_UNSPECIFIED);
  EXPECT_THAT(queue_->Order(),
              ElementsAre("high", "normal-1", "normal-2", "low"));
  auto pass = queue_->Schedule(index_, matcher_);
  EXPECT_THAT(Placed(pass), ElementsAre("high", "normal-1"));
  EXPECT_THAT(WaitReason(pass, "normal-2"), HasSubstr("waiting for capacity"));
  EXPECT_THAT(WaitReason(pass, "normal-2"), HasSubstr("first in line"));
  EXPECT_EQ(queue_->size(), 2u);
  EXPECT_EQ(queue_->running(), 2u);
  EXPECT_NE(index_.FindAllocation("high"), nullptr) << "placed jobs hold cards";
}

TEST_F(JobQueueTest, FairShareBetweenTwoOrganizationsUnderContention) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 4)});
  // org-a floods the queue first; org-b comes later with as many jobs.
  for (int i = 0; i < 6; ++i) Submit("a" + std::to_string(i), "org-a", 1);
  for (int i = 0; i < 6; ++i) Submit("b" + std::to_string(i), "org-b", 1);
  auto pass = queue_->Schedule(index_, matcher_);
  // Four cards: the organizations take turns instead of FIFO giving org-a
  // all of them; FIFO holds inside each organization.
  EXPECT_THAT(Placed(pass), ElementsAre("a0", "b0", "a1", "b1"));

  // org-a's jobs end after an hour; org-b's keep running. Usage so far is
  // equal, but org-b now holds cards, so org-a's next jobs go first.
  clock_->AdvanceMs(kHour);
  End("a0");
  End("a1");
  pass = queue_->Schedule(index_, matcher_);
  EXPECT_THAT(Placed(pass), ElementsAre("a2", "a3"));
}

TEST_F(JobQueueTest, PastUsageDecaysWithTheHalfLife) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 4)});
  // org-heavy used 4 cards for an hour.
  queue_->MarkRunning("old", "org-heavy", 4000, clock_->NowMs() + kHour);
  clock_->AdvanceMs(kHour);
  queue_->MarkStopped("old");
  const double used = queue_->UsageOf("org-heavy");
  // 4 cards x 3600 s with decay during the hour: 4000 * H/ln2 * (1 - 1/2).
  EXPECT_NEAR(used, 4000.0 * 3600 / std::log(2.0) * 0.5, 1.0);
  clock_->AdvanceMs(kHour);
  EXPECT_NEAR(queue_->UsageOf("org-heavy"), used / 2, 1.0);

  // With that history, the light organization goes first even though the
  // heavy one submitted earlier.
  Submit("heavy-1", "org-heavy", 2);
  Submit("light-1", "org-light", 2);
  Submit("light-2", "org-light", 2);
  EXPECT_THAT(queue_->Order(), ElementsAre("light-1", "light-2", "heavy-1"));
}

TEST_F(JobQueueTest, AgingLetsALowPriorityJobOvertakeNewerHighOnes) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 1)});
  Submit("low-old", "org", 1, v1::PRIORITY_CLASS_LOW);
  clock_->AdvanceMs(2 * kHour + 1);  // two aging intervals: LOW -> above HIGH
  Submit("high-new", "org", 1, v1::PRIORITY_CLASS_HIGH);
  EXPECT_THAT(queue_->Order(), ElementsAre("low-old", "high-new"));
  auto pass = queue_->Schedule(index_, matcher_);
  EXPECT_THAT(Placed(pass), ElementsAre("low-old"));
  // An hour less and it would still be behind the new HIGH job.
  Submit("low-young", "org", 1, v1::PRIORITY_CLASS_LOW);
  clock_->AdvanceMs(kHour);
  Submit("high-newer", "org", 1, v1::PRIORITY_CLASS_HIGH);
  EXPECT_THAT(queue_->Order(),
              ElementsAre("high-new", "high-newer", "low-young"));
}

TEST_F(JobQueueTest, BackfillNeverDelaysTheHeadJob) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 8)});
  // A running job holds 6 cards until t + 100 s at the latest.
  Submit("running", "org", 6, v1::PRIORITY_CLASS_NORMAL, 100);
  ASSERT_THAT(Placed(queue_->Schedule(index_, matcher_)),
              ElementsAre("running"));
  const int64_t t0 = clock_->NowMs();
  clock_->AdvanceMs(10'000);

  Submit("head", "org", 8);  // needs the whole node: at t0 + 100 s
  Submit("long", "org", 2, v1::PRIORITY_CLASS_NORMAL, 3600);
  Submit("short", "org", 2, v1::PRIORITY_CLASS_NORMAL, 60);  // ends by t0+70s
  auto pass = queue_->Schedule(index_, matcher_);
  ASSERT_TRUE(pass.reservation.has_value());
  EXPECT_EQ(pass.reservation->job_id, "head");
  EXPECT_EQ(pass.reservation->start_by_ms, t0 + 100'000);
  EXPECT_THAT(pass.reservation->nodes, ElementsAre("site/n1"));
  // "short" ends before the head can start: it backfills. "long" would
  // still hold two cards then: it waits, and says why.
  EXPECT_THAT(Placed(pass), ElementsAre("short"));
  EXPECT_THAT(WaitReason(pass, "long"), HasSubstr("waiting behind job head"));
  EXPECT_THAT(WaitReason(pass, "head"), HasSubstr("first in line"));
}

TEST_F(JobQueueTest, BackfillUsesNodesTheHeadDoesNotNeed) {
  AddProvider("site", {MakeNode("n1", "ib-1", "A800", 8),
                       MakeNode("n2", "ib-2", "A800", 8)});
  Submit("r1", "org", 6, v1::PRIORITY_CLASS_NORMAL, 100);
  Submit("r2", "org", 4, v1::PRIORITY_CLASS_NORMAL, 1000);
  ASSERT_THAT(Placed(queue_->Schedule(index_, matcher_)),
              ElementsAre("r1", "r2"));
  // r1 took n1's 6 cards... r2 went to n2 (best fit: n2 had 8, n1 had 2).
  Submit("head", "org", 8);  // needs a whole node: n1 once r1 ends
  Submit("long", "org", 4, v1::PRIORITY_CLASS_NORMAL, 3600);
  auto pass = queue_->Schedule(index_, matcher_);
  ASSERT_TRUE(pass.reservation.has_value());
  EXPECT_THAT(pass.reservation->nodes, ElementsAre("site/n1"));
  // "long" outlives the reservation, but n2 is not reserved: it starts.
  EXPECT_THAT(Placed(pass), ElementsAre("long"));
  EXPECT_EQ(index_.FindAllocation("long")->assignments[0].node(), "n2");
}

TEST_F(JobQueueTest, HeadStartsWhenItsReservationComes) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 8)});
  Submit("running", "org", 6, v1::PRIORITY_CLASS_NORMAL, 100);
  queue_->Schedule(index_, matcher_);
  Submit("head", "org", 8);
  Submit("long", "org", 2, v1::PRIORITY_CLASS_NORMAL, 3600);
  queue_->Schedule(index_, matcher_);
  clock_->AdvanceMs(100'000);
  End("running");
  auto pass = queue_->Schedule(index_, matcher_);
  EXPECT_THAT(Placed(pass), ElementsAre("head"));
  EXPECT_THAT(WaitReason(pass, "long"), HasSubstr("waiting for capacity"));
}

TEST_F(JobQueueTest, JobThatCanNeverFitLeavesTheQueueWithTheReason) {
  AddProvider("site", {MakeNode("n1", "ib-1", "A800", 8),
                       MakeNode("n2", "ib-2", "A800", 8)});
  Submit("too-big", "org", 8, v1::PRIORITY_CLASS_NORMAL, 600, /*nodes=*/2);
  Submit("fine", "org", 8);
  auto pass = queue_->Schedule(index_, matcher_);
  ASSERT_EQ(pass.never_fit.size(), 1u);
  EXPECT_EQ(pass.never_fit[0].job_id, "too-big");
  EXPECT_THAT(pass.never_fit[0].reason, HasSubstr("can never fit"));
  EXPECT_THAT(pass.never_fit[0].reason,
              HasSubstr("largest fabric has 1 node(s)"));
  EXPECT_THAT(Placed(pass), ElementsAre("fine"));
  EXPECT_FALSE(queue_->Contains("too-big"));
}

TEST_F(JobQueueTest, JobsBlockedByTheirOwnConstraintsDoNotHoldOthersBack) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 8)});
  QueuedJob capped;
  capped.job_id = "capped";
  capped.sequence = ++sequence_;
  v1::JobSpec spec = testing::ShellJob("true", 1);
  spec.set_max_price_per_card_hour(100);  // every offer is dearer
  capped.request = PlacementRequest::FromSpec(spec);
  capped.max_duration_s = 60;
  ASSERT_TRUE(queue_->Add(std::move(capped)).ok());
  Submit("next", "org", 1, v1::PRIORITY_CLASS_NORMAL, 3600);
  auto pass = queue_->Schedule(index_, matcher_);
  EXPECT_THAT(Placed(pass), ElementsAre("next"));
  EXPECT_THAT(WaitReason(pass, "capped"), HasSubstr("price ceiling"));
  EXPECT_FALSE(pass.reservation.has_value());
}

TEST_F(JobQueueTest, ExcludedProvidersAreHonoured) {
  AddProvider("site-a", {MakeNode("n1", "ib", "A800", 8)});
  QueuedJob job;
  job.job_id = "rejected-once";
  job.sequence = 1;
  job.request = PlacementRequest::FromSpec(testing::ShellJob("true", 1));
  job.max_duration_s = 60;
  job.excluded_providers = {"site-a"};
  ASSERT_TRUE(queue_->Add(std::move(job)).ok());
  auto pass = queue_->Schedule(index_, matcher_);
  EXPECT_TRUE(pass.placed.empty());
  EXPECT_THAT(WaitReason(pass, "rejected-once"), HasSubstr("excluded"));
}

TEST_F(JobQueueTest, OneSearchPerRequestShapeThatFindsNoPlaceInAPass) {
  AddProvider("site", {MakeNode("n1", "ib", "A800", 8)});
  Submit("big", "org", 8, v1::PRIORITY_CLASS_NORMAL, 3600);
  // 50 jobs of 4 cards that cannot start while "big" runs, and one of a
  // different shape that still fits nowhere either.
  for (int i = 0; i < 50; ++i) {
    Submit("four-" + std::to_string(i), "org", 4, v1::PRIORITY_CLASS_NORMAL,
           60);
  }
  Submit("two", "org", 2, v1::PRIORITY_CLASS_NORMAL, 60);
  auto pass = queue_->Schedule(index_, matcher_);
  EXPECT_THAT(Placed(pass), ElementsAre("big"));
  ASSERT_EQ(pass.waiting.size(), 51u);
  // "big", the first four-card job (and its reservation search), "two":
  // the other 49 four-card jobs reuse the first one's answer.
  EXPECT_LT(pass.match_calls, 10u);
  EXPECT_THAT(WaitReason(pass, "four-0"), HasSubstr("first in line"));
  EXPECT_EQ(WaitReason(pass, "four-49"), WaitReason(pass, "four-1"));
  EXPECT_THAT(WaitReason(pass, "four-49"), HasSubstr("capacity"));
  // Once the cards come back, every one of them is searched for again.
  End("big");
  pass = queue_->Schedule(index_, matcher_);
  EXPECT_THAT(Placed(pass), ElementsAre("four-0", "four-1"));
}

TEST(JobQueueUsageTest, StoredUsageComesBackDecayedOverTheTimeItWasStored) {
  auto clock = std::make_shared<FakeClock>(10'000'000);
  JobQueueOptions options;
  options.fair_share_half_life_ms = 1000 * 1000;
  JobQueue queue(options, clock);
  queue.RestoreUsage({"org-a", 8000, clock->NowMs() - 1000 * 1000});  // one half-life ago
  EXPECT_NEAR(queue.UsageOf("org-a"), 4000.0, 1.0);
  queue.RestoreUsage({"org-a", 1000, clock->NowMs() + 5'000'000});  // future = now
  EXPECT_NEAR(queue.UsageOf("org-a"), 5000.0, 1.0);
  queue.RestoreUsage({"org-b", 0, clock->NowMs()});
  auto snapshot = queue.UsageSnapshot();
  ASSERT_EQ(snapshot.size(), 1u) << "nothing stored for an organization without usage";
  EXPECT_EQ(snapshot[0].organization, "org-a");
  EXPECT_NEAR(static_cast<double>(snapshot[0].usage_milli_s), 5000.0, 1.0);
  EXPECT_EQ(snapshot[0].as_of_ms, clock->NowMs());
  // What running jobs accrued so far is in the snapshot.
  queue.MarkRunning("j1", "org-c", 1000, clock->NowMs() + 60'000);
  clock->AdvanceMs(10'000);
  snapshot = queue.UsageSnapshot();
  ASSERT_EQ(snapshot.size(), 2u);
  EXPECT_EQ(snapshot[1].organization, "org-c");
  EXPECT_NEAR(static_cast<double>(snapshot[1].usage_milli_s), 10'000.0, 100.0);
}

}  // namespace
}  // namespace computenet::matching
