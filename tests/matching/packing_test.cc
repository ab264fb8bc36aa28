// Packing by expected fragmentation: the WorkloadSummary the queue learns
// from arrivals, and the matcher's choices on small hand-made clusters
// where the right answer is known (and best fit gets it wrong).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "computenet/matching/job_queue.h"
#include "computenet/matching/matcher.h"
#include "computenet/matching/workload_summary.h"
#include "test_support.h"

namespace computenet::matching {
namespace {

using ::testing::ElementsAre;
using testing::MakeNode;
using testing::MakeRegistration;

PlacementRequest Whole(uint32_t cards, uint32_t cpu_milli_per_card = 0,
                       uint32_t nodes = 1) {
  PlacementRequest request;
  request.cards_per_node = cards;
  request.nodes = nodes;
  request.cpu_milli_per_card = cpu_milli_per_card;
  return request;
}

PlacementRequest Share(uint32_t milli) {
  PlacementRequest request;
  request.shape = RequestShape::kFractional;
  request.gpu_milli = milli;
  return request;
}

v1::Node Node(const std::string& name, uint32_t cards, uint32_t cpu_cores = 0) {
  v1::Node node = MakeNode(name, "fabric-" + name, "A800", cards);
  node.set_cpu_cores(cpu_cores);
  return node;
}

TEST(WorkloadSummaryTest, WeighsShapesByTheirGpuDemand) {
  WorkloadSummary summary;
  EXPECT_TRUE(summary.Top().empty());
  summary.Observe(Whole(8));
  summary.Observe(Whole(1));
  summary.Observe(Whole(1));
  summary.Observe(Share(250));
  PlacementRequest compute;
  compute.shape = RequestShape::kComputeEquivalent;
  compute.a100_milli = 4000;
  summary.Observe(compute);  // its shape depends on where it lands
  ASSERT_EQ(summary.Top().size(), 3u);
  EXPECT_EQ(summary.Top()[0].shape.cards, 8u);
  EXPECT_EQ(summary.Top()[0].weight, 8000u);
  EXPECT_EQ(summary.Top()[1].shape.cards, 1u);
  EXPECT_EQ(summary.Top()[1].weight, 2000u);
  EXPECT_EQ(summary.Top()[2].shape.gpu_milli, 250u);
  EXPECT_EQ(summary.Top()[2].weight, 250u);
  EXPECT_EQ(summary.arrivals(), 4u);
}

TEST(WorkloadSummaryTest, AGangCountsEachNodeAndHostNeedsScaleWithCards) {
  WorkloadSummary summary;
  summary.Observe(Whole(4, /*cpu_milli_per_card=*/2000, /*nodes=*/3));
  ASSERT_EQ(summary.Top().size(), 1u);
  EXPECT_EQ(summary.Top()[0].shape.cards, 4u);
  EXPECT_EQ(summary.Top()[0].shape.cpu_milli, 8000u);
  EXPECT_EQ(summary.Top()[0].weight, 3u * 4000u);
}

TEST(WorkloadSummaryTest, WeightsHalveEveryHalfLifeAndOnlyTheHeaviestAreKept) {
  WorkloadSummaryOptions options;
  options.half_life_arrivals = 4;
  options.max_shapes = 2;
  options.max_tracked = 4;
  WorkloadSummary summary(options);
  for (int i = 0; i < 3; ++i) summary.Observe(Whole(1));
  EXPECT_EQ(summary.Top()[0].weight, 3000u);
  summary.Observe(Whole(1));  // the fourth arrival halves everything
  EXPECT_EQ(summary.Top()[0].weight, 2000u);
  // Six more shapes: at most max_tracked are remembered, the lighter
  // half forgotten, and Top() names the two heaviest.
  for (uint32_t milli = 100; milli <= 600; milli += 100) summary.Observe(Share(milli));
  EXPECT_LE(summary.tracked(), 4u);
  ASSERT_EQ(summary.Top().size(), 2u);
  EXPECT_EQ(summary.Top()[0].shape.cards, 1u);
  EXPECT_EQ(summary.Top()[0].shape.gpu_milli, 1000u);
  EXPECT_GE(summary.Top()[0].weight, summary.Top()[1].weight);
}

class PackingTest : public ::testing::Test {
 protected:
  void Add(const std::vector<v1::Node>& nodes) {
    ASSERT_TRUE(
        index_.UpsertProvider("site", MakeRegistration("site", nodes, {{"A800", 1000}}))
            .ok());
    index_.SetOnline("site", true);
  }
  void Hold(const std::string& job, const std::string& node,
            std::vector<uint32_t> devices, uint32_t milli = 0) {
    ASSERT_TRUE(index_
                    .Allocate(job, JobAllocation{"site",
                                                 {testing::MakeAssignment(
                                                     node, devices, milli)}})
                    .ok());
  }
  std::optional<Placement> Match(const PlacementRequest& request, bool packed) {
    MatchContext context;
    if (packed) context.workload = &workload_;
    return matcher_.Match(request, index_, context);
  }
  std::string NodeOf(const std::optional<Placement>& placement) {
    return placement ? placement->assignments.at(0).node() : "none";
  }

  CapacityIndex index_;
  PlacementMatcher matcher_;
  WorkloadSummary workload_;
};

TEST_F(PackingTest, KeepsASmallNodeWholeForTheTasksThatNeedIt) {
  // n1 has 2 free cards, n2 has 5 of 8. Best fit takes n1 (fewest left
  // over) and no 2-card task fits anywhere but n2 afterwards; with 2-card
  // tasks common, the 1-card task belongs on n2.
  Add({Node("n1", 2), Node("n2", 8)});
  Hold("held", "n2", {0, 1, 2});
  for (int i = 0; i < 10; ++i) workload_.Observe(Whole(2));
  workload_.Observe(Whole(1));
  EXPECT_EQ(NodeOf(Match(Whole(1), /*packed=*/false)), "n1");
  auto packed = Match(Whole(1), /*packed=*/true);
  EXPECT_EQ(NodeOf(packed), "n2");
  EXPECT_EQ(packed->fragmentation, 0) << "no common shape loses a place";
}

TEST_F(PackingTest, DoesNotStrandCardsByTakingTheLastCpus) {
  // Two 4-card nodes, one with 32 cores and one with 128. A 1-card task
  // asking 30 cores on the small one leaves 2 cores: its other 3 cards can
  // no longer run the common 8-core task.
  Add({Node("small", 4, 32), Node("big", 4, 128)});
  for (int i = 0; i < 10; ++i) workload_.Observe(Whole(1, 8000));
  EXPECT_EQ(NodeOf(Match(Whole(1, 30000), /*packed=*/false)), "small");
  EXPECT_EQ(NodeOf(Match(Whole(1, 30000), /*packed=*/true)), "big");
}

TEST_F(PackingTest, LeavesNoSliverThatNoCommonShareCanUse) {
  // A half-card task: best fit puts it on the card with 600 free, leaving
  // 100 that no common share (all 500) can use; packing takes a fresh card
  // and keeps both halves usable.
  Add({Node("n1", 1), Node("n2", 1)});
  Hold("held", "n1", {0}, 400);
  for (int i = 0; i < 10; ++i) workload_.Observe(Share(500));
  auto best_fit = Match(Share(500), /*packed=*/false);
  EXPECT_EQ(NodeOf(best_fit), "n1");
  auto packed = Match(Share(500), /*packed=*/true);
  EXPECT_EQ(NodeOf(packed), "n2");
  // And a share that fills the 600 exactly is what packing puts there.
  for (int i = 0; i < 30; ++i) workload_.Observe(Share(600));
  EXPECT_EQ(NodeOf(Match(Share(600), /*packed=*/true)), "n1");
}

TEST_F(PackingTest, GangsKeepTheirFabricRuleUnderPacking) {
  // Each of a1, a2 is its own fabric; b1 and b2 share one. A 2-node gang
  // goes to b1+b2, packed or not, and no gang spans fabrics.
  v1::Node b1 = MakeNode("b1", "ib-b", "A800", 8);
  v1::Node b2 = MakeNode("b2", "ib-b", "A800", 8);
  Add({Node("a1", 8), Node("a2", 8), b1, b2});
  for (int i = 0; i < 10; ++i) workload_.Observe(Whole(1));
  auto gang = Match(Whole(8, 0, 2), /*packed=*/true);
  ASSERT_TRUE(gang.has_value());
  ASSERT_EQ(gang->assignments.size(), 2u);
  EXPECT_EQ(gang->assignments[0].node(), "b1");
  EXPECT_EQ(gang->assignments[1].node(), "b2");
  Hold("gang", "b1", {0, 1, 2, 3, 4, 5, 6, 7});
  EXPECT_FALSE(Match(Whole(8, 0, 2), /*packed=*/true).has_value());
}

TEST_F(PackingTest, TheQueueLearnsFromWhatItIsGiven) {
  JobQueue queue(JobQueueOptions{}, std::make_shared<FakeClock>(0));
  QueuedJob job;
  job.job_id = "j1";
  job.request = Whole(2);
  ASSERT_TRUE(queue.Add(job).ok());
  ASSERT_EQ(queue.workload().Top().size(), 1u);
  EXPECT_EQ(queue.workload().Top()[0].shape.cards, 2u);
  JobQueueOptions off;
  off.learn_workload = false;
  JobQueue fixed(off, std::make_shared<FakeClock>(0));
  ASSERT_TRUE(fixed.Add(job).ok());
  EXPECT_TRUE(fixed.workload().Top().empty());
}

}  // namespace
}  // namespace computenet::matching
