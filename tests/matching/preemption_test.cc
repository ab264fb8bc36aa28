// Priority preemption planning on small hand-made clusters where the right
// victims are known: least lost work, pruning of victims the fit does not
// need, never non-preemptible or equal-class work, anti-thrash protection,
// gangs, excluded and offline providers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "computenet/matching/preemption.h"
#include "test_support.h"

namespace computenet::matching {
namespace {

using ::testing::ElementsAre;
using testing::MakeNode;
using testing::MakeRegistration;

constexpr int64_t kNow = 10'000'000;

PlacementRequest Whole(uint32_t cards, uint32_t nodes = 1) {
  PlacementRequest request;
  request.cards_per_node = cards;
  request.nodes = nodes;
  return request;
}

class PreemptionTest : public ::testing::Test {
 protected:
  void AddProvider(const std::string& name, std::vector<v1::Node> nodes,
                   int64_t price = 1000) {
    ASSERT_TRUE(
        index_.UpsertProvider(name, MakeRegistration(name, nodes, {{"A800", price}}))
            .ok());
    index_.SetOnline(name, true);
  }
  // A job holding `devices` of a node, started `ran_s` seconds ago.
  void Hold(const std::string& job_id, const std::string& provider,
            const std::string& node, std::vector<uint32_t> devices,
            int64_t ran_s, bool preemptible = true,
            v1::PriorityClass priority = v1::PRIORITY_CLASS_NORMAL) {
    JobAllocation allocation;
    allocation.provider = provider;
    v1::NodeAssignment& assignment = allocation.assignments.emplace_back();
    assignment.set_node(node);
    for (uint32_t device : devices) assignment.add_device_indices(device);
    ASSERT_TRUE(index_.Allocate(job_id, allocation).ok());
    PreemptionCandidate candidate;
    candidate.job_id = job_id;
    candidate.priority = priority;
    candidate.preemptible = preemptible;
    candidate.started_ms = ran_s < 0 ? 0 : kNow - ran_s * 1000;
    candidate.milli = devices.size() * 1000;
    candidates_.push_back(candidate);
  }
  std::optional<PreemptionPlan> Plan(const PlacementRequest& request,
                                     const PreemptionOptions& options = {},
                                     const std::set<std::string>* excluded = nullptr) {
    MatchContext context;
    context.excluded = excluded;
    return PlanPreemption(request, v1::PRIORITY_CLASS_HIGH, index_, matcher_,
                          context, candidates_, kNow, options);
  }

  CapacityIndex index_;
  PlacementMatcher matcher_;
  std::vector<PreemptionCandidate> candidates_;
};

TEST_F(PreemptionTest, StopsTheJobThatLosesTheLeastWork) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4), MakeNode("n2", "f2", "A800", 4)});
  Hold("old", "a", "n1", {0, 1, 2, 3}, /*ran_s=*/1000);
  Hold("young", "a", "n2", {0, 1, 2, 3}, /*ran_s=*/10);
  auto plan = Plan(Whole(4));
  ASSERT_TRUE(plan);
  EXPECT_THAT(plan->victims, ElementsAre("young"));
  EXPECT_EQ(plan->lost_work_milli_s, 4000u * 10);
  EXPECT_EQ(plan->placement.provider, "a");
  ASSERT_EQ(plan->placement.assignments.size(), 1u);
  EXPECT_EQ(plan->placement.assignments[0].node(), "n2");
  // The real index is untouched: both still hold their cards.
  EXPECT_NE(index_.FindAllocation("old"), nullptr);
  EXPECT_NE(index_.FindAllocation("young"), nullptr);
  EXPECT_FALSE(matcher_.Match(Whole(4), index_, {}));
}

TEST_F(PreemptionTest, AJobPlacedButNotStartedLosesNothingAndGoesFirst) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4), MakeNode("n2", "f2", "A800", 4)});
  Hold("running", "a", "n1", {0, 1, 2, 3}, /*ran_s=*/1);
  Hold("placed", "a", "n2", {0, 1, 2, 3}, /*ran_s=*/-1);
  auto plan = Plan(Whole(4));
  ASSERT_TRUE(plan);
  EXPECT_THAT(plan->victims, ElementsAre("placed"));
  EXPECT_EQ(plan->lost_work_milli_s, 0u);
}

TEST_F(PreemptionTest, VictimsTheFitDoesNotNeedKeepRunning) {
  // Greedy by lost work stops "cheap" (n1 then has 2 free: not enough),
  // then "whole" (n2 free: fits). "cheap" was not needed after all.
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4), MakeNode("n2", "f2", "A800", 4)});
  Hold("cheap", "a", "n1", {0, 1}, /*ran_s=*/5);
  Hold("dear", "a", "n1", {2, 3}, /*ran_s=*/500);
  Hold("whole", "a", "n2", {0, 1, 2, 3}, /*ran_s=*/10);
  auto plan = Plan(Whole(4));
  ASSERT_TRUE(plan);
  EXPECT_THAT(plan->victims, ElementsAre("whole"));
  EXPECT_EQ(plan->lost_work_milli_s, 4000u * 10);
}

TEST_F(PreemptionTest, SeveralSmallVictimsWhenThatLosesLessThanOneBig) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4), MakeNode("n2", "f2", "A800", 4)});
  Hold("s1", "a", "n1", {0, 1}, /*ran_s=*/5);
  Hold("s2", "a", "n1", {2, 3}, /*ran_s=*/6);
  Hold("big", "a", "n2", {0, 1, 2, 3}, /*ran_s=*/100);
  auto plan = Plan(Whole(4));
  ASSERT_TRUE(plan);
  EXPECT_THAT(plan->victims, ElementsAre("s1", "s2"));
  EXPECT_EQ(plan->lost_work_milli_s, 2000u * 5 + 2000u * 6);
}

TEST_F(PreemptionTest, NeverStopsNonPreemptibleOrEqualPriorityWork) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4), MakeNode("n2", "f2", "A800", 4)});
  Hold("firm", "a", "n1", {0, 1, 2, 3}, 1, /*preemptible=*/false);
  Hold("peer", "a", "n2", {0, 1, 2, 3}, 1, true, v1::PRIORITY_CLASS_HIGH);
  EXPECT_FALSE(Plan(Whole(4)));
  std::string why;
  EXPECT_FALSE(MayPreempt(candidates_[0], v1::PRIORITY_CLASS_HIGH, kNow, {}, &why));
  EXPECT_EQ(why, "not preemptible");
  EXPECT_FALSE(MayPreempt(candidates_[1], v1::PRIORITY_CLASS_HIGH, kNow, {}, &why));
  EXPECT_EQ(why, "not of a lower priority class");
  // A NORMAL job may not stop NORMAL work; LOW work it may.
  PreemptionCandidate low = candidates_[1];
  low.priority = v1::PRIORITY_CLASS_LOW;
  EXPECT_TRUE(MayPreempt(low, v1::PRIORITY_CLASS_NORMAL, kNow, {}));
  low.priority = v1::PRIORITY_CLASS_UNSPECIFIED;  // counts as NORMAL
  EXPECT_FALSE(MayPreempt(low, v1::PRIORITY_CLASS_NORMAL, kNow, {}));
}

TEST_F(PreemptionTest, NoPlanWhenStoppingEveryVictimStillLeavesNoRoom) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4)});
  Hold("firm", "a", "n1", {0, 1}, 1, /*preemptible=*/false);
  Hold("soft", "a", "n1", {2, 3}, 1);
  EXPECT_FALSE(Plan(Whole(4)));
  EXPECT_TRUE(Plan(Whole(2)));
}

TEST_F(PreemptionTest, AJobPreemptedTooOftenIsProtectedForAWhile) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4)});
  Hold("victim", "a", "n1", {0, 1, 2, 3}, 10);
  PreemptionOptions options;
  options.protect_after = 2;
  options.protection_ms = 600'000;
  candidates_[0].preemptions = 1;
  candidates_[0].last_preempted_ms = kNow - 1000;
  EXPECT_TRUE(Plan(Whole(4), options)) << "once is not yet too often";
  candidates_[0].preemptions = 2;
  EXPECT_FALSE(Plan(Whole(4), options));
  std::string why;
  EXPECT_FALSE(MayPreempt(candidates_[0], v1::PRIORITY_CLASS_HIGH, kNow, options, &why));
  EXPECT_EQ(why, "protected: preempted too often lately");
  candidates_[0].last_preempted_ms = kNow - 600'000;
  EXPECT_TRUE(Plan(Whole(4), options)) << "protection over";
  options.protect_after = 0;  // off
  candidates_[0].last_preempted_ms = kNow;
  EXPECT_TRUE(Plan(Whole(4), options));
}

TEST_F(PreemptionTest, AJobAlreadyStoppingIsNeitherAVictimNorRoom) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4)});
  Hold("leaving", "a", "n1", {0, 1, 2, 3}, 10);
  candidates_[0].stopping = true;
  EXPECT_FALSE(Plan(Whole(4)));
}

TEST_F(PreemptionTest, TakesTheProviderWhereLessWorkIsLost) {
  AddProvider("a", {MakeNode("n1", "f1", "A800", 4)}, /*price=*/500);
  AddProvider("b", {MakeNode("n1", "f1", "A800", 4)}, /*price=*/2000);
  Hold("on-a", "a", "n1", {0, 1, 2, 3}, 100);
  Hold("on-b", "b", "n1", {0, 1, 2, 3}, 50);
  auto plan = Plan(Whole(4));
  ASSERT_TRUE(plan);
  EXPECT_THAT(plan->victims, ElementsAre("on-b"));
  EXPECT_EQ(plan->placement.provider, "b");
  // Excluded (say it rejected the job) or offline: the other one.
  const std::set<std::string> excluded = {"b"};
  plan = Plan(Whole(4), {}, &excluded);
  ASSERT_TRUE(plan);
  EXPECT_THAT(plan->victims, ElementsAre("on-a"));
  index_.SetOnline("a", false);
  EXPECT_FALSE(Plan(Whole(4), {}, &excluded));
}

TEST_F(PreemptionTest, AGangFreesWholeNodesInOneFabric) {
  AddProvider("a", {MakeNode("n1", "ib", "A800", 4), MakeNode("n2", "ib", "A800", 4),
                    MakeNode("n3", "other", "A800", 4)});
  Hold("x", "a", "n1", {0, 1, 2, 3}, 10);
  Hold("y", "a", "n2", {0, 1, 2, 3}, 20);
  Hold("z", "a", "n3", {0, 1, 2, 3}, 1);  // cheapest, but the wrong fabric
  auto plan = Plan(Whole(4, /*nodes=*/2));
  ASSERT_TRUE(plan);
  EXPECT_THAT(plan->victims, ElementsAre("x", "y"));
  EXPECT_EQ(plan->placement.assignments.size(), 2u);
}

TEST(LostWorkTest, SaturatesInsteadOfOverflowing) {
  PreemptionCandidate candidate;
  candidate.milli = UINT64_MAX / 2;
  candidate.started_ms = 1;
  EXPECT_EQ(LostWork(candidate, 1'000'000'000), UINT64_MAX);
  candidate.started_ms = 5000;
  EXPECT_EQ(LostWork(candidate, 4000), 0u) << "clock behind the start";
}

}  // namespace
}  // namespace computenet::matching
