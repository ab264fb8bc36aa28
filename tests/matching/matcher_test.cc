// PlacementMatcher on a real CapacityIndex: every request form, the
// objective (cost per effective compute-hour, reliability, fragmentation),
// gang placement inside one fabric, fractional packing, residency, price
// ceilings, spare capacity, and the never-fits check.
#include "computenet/matching/matcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "jobs/job_rules.h"
#include "test_support.h"

namespace computenet::matching {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeNode;
using testing::MakeRegistration;

v1::JobSpec Cards(uint32_t cards, uint32_t nodes = 1,
                  std::vector<std::string> models = {}) {
  v1::JobSpec spec = testing::ShellJob("true", cards, models);
  spec.set_nodes(nodes);
  return spec;
}

v1::JobSpec Share(uint32_t milli) {
  v1::JobSpec spec = testing::ShellJob("true", 1);
  spec.set_gpu_milli(milli);
  return spec;
}

v1::JobSpec Compute(uint32_t a100_milli) {
  v1::JobSpec spec = testing::ShellJob("true", 0);
  spec.set_a100_equivalents_milli(a100_milli);
  return spec;
}

v1::NodeAssignment On(const std::string& node, std::vector<uint32_t> devices,
                      uint32_t milli = 0) {
  return testing::MakeAssignment(node, devices, milli);
}

std::vector<uint32_t> Devices(const v1::NodeAssignment& assignment) {
  return {assignment.device_indices().begin(),
          assignment.device_indices().end()};
}

std::vector<std::string> NodesOf(const Placement& placement) {
  std::vector<std::string> out;
  for (const auto& a : placement.assignments) out.push_back(a.node());
  return out;
}

v1::RegisterProvider Site(const std::vector<v1::Node>& nodes,
                          const std::map<std::string, int64_t>& prices,
                          const std::string& region = "north") {
  v1::RegisterProvider registration = MakeRegistration("site", nodes, prices);
  registration.set_region(region);
  return registration;
}

class MatcherTest : public ::testing::Test {
 protected:
  void Add(const std::string& name, const v1::RegisterProvider& registration,
           bool online = true) {
    Status added = index_.UpsertProvider(name, registration);
    ASSERT_TRUE(added.ok()) << added.ToString();
    index_.SetOnline(name, online);
  }
  void Hold(const std::string& job, const std::string& provider,
            std::vector<v1::NodeAssignment> assignments) {
    Status held = index_.Allocate(job, JobAllocation{provider, assignments});
    ASSERT_TRUE(held.ok()) << held.ToString();
  }
  std::optional<Placement> Match(const v1::JobSpec& spec,
                                 const std::set<std::string>& excluded = {}) {
    EXPECT_TRUE(broker::ValidateJobSpec(spec).ok())
        << broker::ValidateJobSpec(spec).ToString();
    MatchContext context;
    context.excluded = &excluded;
    return matcher_.Match(PlacementRequest::FromSpec(spec), index_, context);
  }
  std::string Explain(const v1::JobSpec& spec) {
    return matcher_.ExplainNoFit(PlacementRequest::FromSpec(spec), index_,
                                 MatchContext{});
  }

  CapacityIndex index_;
  PlacementMatcher matcher_;
};

TEST_F(MatcherTest, SingleNodeTakesLowestFreeDevices) {
  Add("site-a", Site({MakeNode("n1", "ib-1", "A800", 8)}, {{"A800", 1500}}));
  Hold("other", "site-a", {On("n1", {0, 2, 3, 6})});
  auto placement = Match(Cards(2));
  ASSERT_TRUE(placement.has_value()) << Explain(Cards(2));
  EXPECT_EQ(placement->provider, "site-a");
  EXPECT_EQ(placement->model, "A800");
  EXPECT_EQ(placement->price_per_card_hour, 1500);
  EXPECT_EQ(placement->currency, "CNY");
  EXPECT_EQ(placement->cards, 2u);
  ASSERT_EQ(placement->assignments.size(), 1u);
  EXPECT_THAT(Devices(placement->assignments[0]), ElementsAre(1, 4));
  EXPECT_EQ(placement->assignments[0].milli(), 0u);
  // 2 A800 = 2 A100-equivalents on nominal figures.
  EXPECT_EQ(placement->a100_milli, 2000u);
  EXPECT_THAT(placement->compute_basis, HasSubstr("nominal"));
}

TEST_F(MatcherTest, BestFitKeepsWholeNodesFree) {
  Add("site-a", Site({MakeNode("n1", "ib-1", "A800", 8),
                      MakeNode("n2", "ib-1", "A800", 8)},
                     {{"A800", 1500}}));
  Hold("other", "site-a", {On("n2", {0, 1, 2, 3, 4, 5})});
  auto placement = Match(Cards(2));
  ASSERT_TRUE(placement.has_value());
  EXPECT_THAT(NodesOf(*placement), ElementsAre("n2"))
      << "the partly used node, not the whole one";
  EXPECT_EQ(placement->fragmentation, 0);
  // Three cards do not fit on n2 any more: the whole node is broken then.
  auto three = Match(Cards(3));
  ASSERT_TRUE(three.has_value());
  EXPECT_THAT(NodesOf(*three), ElementsAre("n1"));
}

TEST_F(MatcherTest, CheapestPerEffectiveComputeHourWins) {
  // H800 costs twice as much per card but does 3.17x the work of an A800.
  Add("a800-site", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  Add("h800-site", Site({MakeNode("n1", "ib", "H800", 8)}, {{"H800", 3000}}));
  auto any = Match(Cards(1, 1, {"A800", "H800"}));
  ASSERT_TRUE(any.has_value());
  EXPECT_EQ(any->provider, "h800-site");
  // 3000 * 312 / 989.4 = 946.03 per A100-hour, in thousandths.
  EXPECT_EQ(any->cost_key, 946027);
  auto a800_only = Match(Cards(1, 1, {"A800"}));
  ASSERT_TRUE(a800_only.has_value());
  EXPECT_EQ(a800_only->provider, "a800-site");
  EXPECT_EQ(a800_only->cost_key, 1500000);
}

TEST_F(MatcherTest, MeasuredFigureOverridesNominalForThatProvider) {
  // site-m measured its A800s at half the datasheet figure: per A100-hour
  // they cost twice their price, so a dearer nominal A800 wins.
  v1::RegisterProvider measured =
      Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1200}});
  measured.mutable_nodes(0)->mutable_accelerators(0)->set_measured_dense_gflops(
      156000);
  measured.mutable_nodes(0)->mutable_accelerators(0)->set_measurement(
      "site burn-in, 2023-11");
  Add("site-m", measured);
  Add("site-n", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 2000}}));
  auto placement = Match(Cards(1));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->provider, "site-n");

  auto measured_only = Match(Cards(1), {"site-n"});
  ASSERT_TRUE(measured_only.has_value());
  EXPECT_EQ(measured_only->provider, "site-m");
  EXPECT_EQ(measured_only->a100_milli, 500u);
  EXPECT_THAT(measured_only->compute_basis,
              HasSubstr("measured: 156000 GFLOPS (site burn-in, 2023-11)"));
}

TEST_F(MatcherTest, UnknownModelsNeedProviderFiguresAndAreUnverified) {
  v1::RegisterProvider unknown =
      Site({MakeNode("n1", "ib", "G9", 4)}, {{"G9", 800}});
  Status refused = index_.UpsertProvider("site-g", unknown);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("not in the broker's catalog"));

  auto* card = unknown.mutable_nodes(0)->mutable_accelerators(0);
  card->set_measured_dense_gflops(187200);  // 0.6 of an A100
  card->set_vendor_class("domestic");
  Add("site-g", unknown);
  auto placement = Match(Cards(1, 1, {"G9"}));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->a100_milli, 600u);
  EXPECT_THAT(placement->compute_basis, HasSubstr("unverified"));
}

TEST_F(MatcherTest, ReliabilityBreaksCostTies) {
  Add("alpha", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  Add("beta", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  index_.SetReliability("alpha", 400);
  index_.SetReliability("beta", 900);
  auto placement = Match(Cards(1));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->provider, "beta");
  EXPECT_EQ(placement->reliability_permille, 900u);
  // Cost still comes first: a cheaper, less reliable provider wins.
  Add("gamma", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1400}}));
  index_.SetReliability("gamma", 100);
  EXPECT_EQ(Match(Cards(1))->provider, "gamma");
}

TEST_F(MatcherTest, FragmentationBreaksCostAndReliabilityTies) {
  // Same price, same reliability; "beta" has a node with exactly 2 free
  // cards, "alpha" (first by name) would break a whole node.
  Add("alpha", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  Add("beta", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  Hold("busy", "beta", {On("n1", {0, 1, 2, 3, 4, 5})});
  auto placement = Match(Cards(2));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->provider, "beta");
  EXPECT_EQ(placement->fragmentation, 0);
}

TEST_F(MatcherTest, ModelListIsAnyOfAndNeverFallsBackToOthers) {
  v1::Node mixed = MakeNode("n1", "ib", "A800", 2);
  auto* h100 = mixed.add_accelerators();
  h100->set_model("H100");
  h100->set_memory_mib(81920);
  h100->set_count(2);
  Add("site-a", Site({mixed}, {{"A800", 1500}, {"H100", 3000}}));
  auto placement = Match(Cards(1, 1, {"H100"}));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->model, "H100");
  EXPECT_THAT(Devices(placement->assignments[0]), ElementsAre(2));

  Hold("busy", "site-a", {On("n1", {2, 3})});
  EXPECT_FALSE(Match(Cards(1, 1, {"H100"})).has_value());
  EXPECT_THAT(Explain(Cards(1, 1, {"H100"})), HasSubstr("waiting for capacity"));
  EXPECT_FALSE(Match(Cards(1, 1, {"MI300X"})).has_value());
  EXPECT_THAT(Explain(Cards(1, 1, {"MI300X"})),
              HasSubstr("no online provider offers MI300X"));
}

TEST_F(MatcherTest, MinimumMemoryPerCard) {
  v1::Node small = MakeNode("n1", "ib", "A800", 8);
  small.mutable_accelerators(0)->set_memory_mib(40960);
  Add("a800-40g", Site({small}, {{"A800", 1000}}));
  Add("a800-80g", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  v1::JobSpec spec = Cards(1);
  EXPECT_EQ(Match(spec)->provider, "a800-40g");
  spec.set_min_memory_mib(65536);
  EXPECT_EQ(Match(spec)->provider, "a800-80g");
  spec.set_min_memory_mib(100000);
  EXPECT_FALSE(Match(spec).has_value());
  EXPECT_THAT(Explain(spec), HasSubstr(">= 100000 MiB per card"));
}

TEST_F(MatcherTest, VendorClassDomesticOnly) {
  Add("nvidia", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 500}}));
  Add("ascend", Site({MakeNode("n1", "roce", "910B", 8)}, {{"910B", 900}}));
  v1::JobSpec spec = Cards(2);
  EXPECT_EQ(Match(spec)->provider, "nvidia");
  spec.add_vendor_classes("domestic");
  auto placement = Match(spec);
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->provider, "ascend");
  EXPECT_EQ(placement->model, "910B");
  // A known model keeps its catalog class whatever the provider claims.
  v1::RegisterProvider claim =
      Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 100}});
  claim.mutable_nodes(0)->mutable_accelerators(0)->set_vendor_class("domestic");
  Add("claims-domestic", claim);
  EXPECT_EQ(Match(spec)->provider, "ascend");
}

TEST_F(MatcherTest, ComputeEquivalenceAddsUpCardsOfOneModelAtOneProvider) {
  // Cards measured at 0.6 A100: 8 A100-equivalents need 14 of them.
  v1::RegisterProvider domestic =
      Site({MakeNode("n1", "ib", "910B", 8), MakeNode("n2", "ib", "910B", 8)},
           {{"910B", 600}});
  for (auto& node : *domestic.mutable_nodes()) {
    node.mutable_accelerators(0)->set_measured_dense_gflops(187200);
  }
  Add("ascend", domestic);
  auto placement = Match(Compute(8000));
  ASSERT_TRUE(placement.has_value()) << Explain(Compute(8000));
  EXPECT_EQ(placement->cards, 14u);
  EXPECT_EQ(placement->a100_milli, 8400u);
  ASSERT_EQ(placement->assignments.size(), 2u);
  EXPECT_EQ(placement->assignments[0].device_indices_size() +
                placement->assignments[1].device_indices_size(),
            14);
  // One node's worth fits on one node.
  auto small = Match(Compute(4000));
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(small->cards, 7u);  // 7 x 0.6 = 4.2 >= 4
  EXPECT_EQ(small->assignments.size(), 1u);
}

TEST_F(MatcherTest, ComputeEquivalenceStaysWithinOneProvider) {
  Add("a", Site({MakeNode("n1", "ib", "A800", 4)}, {{"A800", 1500}}));
  Add("b", Site({MakeNode("n1", "ib", "A800", 4)}, {{"A800", 1500}}));
  EXPECT_TRUE(Match(Compute(4000)).has_value());
  EXPECT_FALSE(Match(Compute(6000)).has_value()) << "8 cards exist, 4 per provider";
  EXPECT_THAT(Explain(Compute(6000)), HasSubstr("adding up to 6.000"));
  EXPECT_FALSE(matcher_.CheckEverFits(PlacementRequest::FromSpec(Compute(6000)),
                                      index_).ok());
}

TEST_F(MatcherTest, ComputeEquivalencePicksTheCheapestWayToTheComputeAsked) {
  // 4 A100-eq: 4 A800 at 1500 = 6000/h, or 2 H800 at 2800 = 5600/h.
  Add("site", Site({MakeNode("n1", "ib", "A800", 8), MakeNode("n2", "ib", "H800", 8)},
                   {{"A800", 1500}, {"H800", 2800}}));
  auto placement = Match(Compute(4000));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->model, "H800");
  EXPECT_EQ(placement->cards, 2u);  // 2 x 3.171 >= 4
  EXPECT_EQ(placement->cost_key, 1400000) << "5600 per hour / 4 A100s asked";
}

TEST_F(MatcherTest, ComputeEquivalenceCountsTheCardsRoundedUp) {
  // Per A100-hour of card the H800 is cheaper (3200 * 312/989.4 = 1009)
  // than the measured 910B (700 / 0.6 = 1167), but 4 A100-eq take 2 H800
  // (6400/h) or 7 910B (4900/h): the 910B is the cheaper way to the
  // compute asked, and the docs/matching.md worked example.
  Add("wh", Site({MakeNode("n1", "ib", "H800", 8)}, {{"H800", 3200}}));
  v1::RegisterProvider ga = Site({MakeNode("n1", "roce", "910B", 8)}, {{"910B", 700}});
  ga.mutable_nodes(0)->mutable_accelerators(0)->set_measured_dense_gflops(187200);
  Add("ga", ga);
  auto placement = Match(Compute(4000));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(placement->provider, "ga");
  EXPECT_EQ(placement->cards, 7u);
  EXPECT_EQ(placement->cost_key, 1225000);
  // One whole card, any model: the cost per A100-hour of the card decides.
  EXPECT_EQ(Match(Cards(1))->provider, "wh");
}

TEST_F(MatcherTest, GangStaysInOneFabric) {
  // n1 (ib-1) and n2 (ib-2) have room but sit in different fabrics.
  Add("site-a", Site({MakeNode("n1", "ib-1", "A800", 4),
                      MakeNode("n2", "ib-2", "A800", 4),
                      MakeNode("n3", "ib-1", "A800", 4)},
                     {{"A800", 1500}}));
  auto placement = Match(Cards(2, 2));
  ASSERT_TRUE(placement.has_value());
  EXPECT_THAT(NodesOf(*placement), ElementsAre("n1", "n3"));
  EXPECT_THAT(Devices(placement->assignments[0]), ElementsAre(0, 1));
}

TEST_F(MatcherTest, GangWithFreeCardsInTotalButInNoSingleFabricWaits) {
  // 16 free cards in total, 4 per node, but each fabric has one node with
  // room: a 2 x 4 gang cannot be placed now.
  Add("site-a", Site({MakeNode("n1", "ib-1", "A800", 8),
                      MakeNode("n2", "ib-1", "A800", 8),
                      MakeNode("n3", "ib-2", "A800", 8),
                      MakeNode("n4", "ib-2", "A800", 8)},
                     {{"A800", 1500}}));
  Hold("x", "site-a", {On("n1", {0, 1, 2, 3, 4, 5, 6, 7})});
  Hold("y", "site-a", {On("n2", {0, 1, 2, 3})});
  Hold("z", "site-a", {On("n3", {0, 1, 2, 3, 4, 5, 6, 7})});
  Hold("w", "site-a", {On("n4", {0, 1, 2, 3})});
  EXPECT_FALSE(Match(Cards(4, 2)).has_value());
  EXPECT_THAT(Explain(Cards(4, 2)), HasSubstr("waiting for capacity"));
  // ... and never across providers either.
  Add("site-b", Site({MakeNode("m1", "ib-1", "A800", 4)}, {{"A800", 1500}}));
  EXPECT_FALSE(Match(Cards(4, 2)).has_value());
  // It could fit once jobs end: not a never-fits case.
  EXPECT_TRUE(matcher_.CheckEverFits(PlacementRequest::FromSpec(Cards(4, 2)),
                                     index_).ok());
}

TEST_F(MatcherTest, GangPrefersTheSmallestFabricThatHoldsIt) {
  Add("site-a", Site({MakeNode("big1", "ib-big", "A800", 8),
                      MakeNode("big2", "ib-big", "A800", 8),
                      MakeNode("big3", "ib-big", "A800", 8),
                      MakeNode("small1", "ib-small", "A800", 8),
                      MakeNode("small2", "ib-small", "A800", 8)},
                     {{"A800", 1500}}));
  auto placement = Match(Cards(8, 2));
  ASSERT_TRUE(placement.has_value());
  EXPECT_THAT(NodesOf(*placement), ElementsAre("small1", "small2"));
  EXPECT_EQ(Match(Cards(8, 3))->assignments.size(), 3u);
}

TEST_F(MatcherTest, NeverFitsWhenNoFabricIsLargeEnough) {
  // A 1,024-card fabric (128 nodes x 8) and a 2,000-card gang (250 x 8).
  std::vector<v1::Node> nodes;
  for (int i = 0; i < 128; ++i) {
    nodes.push_back(MakeNode("n" + std::to_string(i), "ib-1", "H800", 8));
  }
  Add("big-site", Site(nodes, {{"H800", 3000}}));
  Status never =
      matcher_.CheckEverFits(PlacementRequest::FromSpec(Cards(8, 250)), index_);
  EXPECT_EQ(never.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(never.message(), HasSubstr("can never fit"));
  EXPECT_THAT(never.message(), HasSubstr("largest fabric has 128 node(s)"));
  EXPECT_TRUE(matcher_.CheckEverFits(PlacementRequest::FromSpec(Cards(8, 128)),
                                     index_).ok());
  // Offline providers count (they may come back); no providers: unknown.
  index_.SetOnline("big-site", false);
  EXPECT_TRUE(matcher_.CheckEverFits(PlacementRequest::FromSpec(Cards(8, 128)),
                                     index_).ok());
  CapacityIndex empty;
  EXPECT_TRUE(matcher_.CheckEverFits(PlacementRequest::FromSpec(Cards(8, 250)),
                                     empty).ok());
}

TEST_F(MatcherTest, FractionalJobsArePackedOntoSharedCards) {
  Add("site-a", Site({MakeNode("n1", "ib", "T4", 4)}, {{"T4", 400}}));
  Hold("a", "site-a", {On("n1", {0}, 600)});
  Hold("b", "site-a", {On("n1", {1}, 200)});
  // 300 fits on card 0 (400 free) and card 1 (800 free): best fit is 0.
  auto placement = Match(Share(300));
  ASSERT_TRUE(placement.has_value());
  EXPECT_THAT(Devices(placement->assignments[0]), ElementsAre(0));
  EXPECT_EQ(placement->assignments[0].milli(), 300u);
  EXPECT_EQ(placement->price_per_card_hour, 120);  // 400 * 0.3
  EXPECT_EQ(placement->fragmentation, 100);
  // 500 only fits on card 1; 900 needs a whole free card.
  EXPECT_THAT(Devices(Match(Share(500))->assignments[0]), ElementsAre(1));
  EXPECT_THAT(Devices(Match(Share(900))->assignments[0]), ElementsAre(2));
  // The index tracks thousandths per card: a card cannot be overfilled.
  Hold("c", "site-a", {On("n1", {0}, 400)});
  Status over = index_.Allocate("d", JobAllocation{"site-a", {On("n1", {0}, 1)}});
  EXPECT_EQ(over.code(), StatusCode::kFailedPrecondition);
  // Whole-card jobs do not take partly used cards.
  auto whole = Match(Cards(2));
  ASSERT_TRUE(whole.has_value());
  EXPECT_THAT(Devices(whole->assignments[0]), ElementsAre(2, 3));
}

TEST_F(MatcherTest, HostCpuAndMemoryPerCard) {
  v1::Node thin = MakeNode("thin", "ib", "A800", 8);
  thin.set_cpu_cores(16);
  thin.set_memory_mib(65536);
  v1::Node fat = MakeNode("fat", "ib", "A800", 8);
  fat.set_cpu_cores(128);
  fat.set_memory_mib(1048576);
  Add("site-a", Site({thin, fat}, {{"A800", 1500}}));
  Hold("busy", "site-a", {On("thin", {0})});  // thin is the best fit now
  v1::JobSpec spec = Cards(2);
  spec.set_cpu_milli_per_card(4000);
  EXPECT_THAT(NodesOf(*Match(spec)), ElementsAre("thin"));
  spec.set_cpu_milli_per_card(10000);  // 20 cores: only fat has them
  EXPECT_THAT(NodesOf(*Match(spec)), ElementsAre("fat"));
  spec.set_cpu_milli_per_card(4000);
  spec.set_host_memory_mib_per_card(40000);  // 80,000 MiB: again only fat
  EXPECT_THAT(NodesOf(*Match(spec)), ElementsAre("fat"));
  spec.set_host_memory_mib_per_card(0);
  // Host resources are held: with 10 of thin's 16 cores taken, 2 cards at
  // 4 cores each no longer fit there.
  ASSERT_TRUE(index_.Allocate("cpu", JobAllocation{"site-a", {On("thin", {1})},
                                                    10000, 0}).ok());
  EXPECT_THAT(NodesOf(*Match(spec)), ElementsAre("fat"));
  index_.Release("cpu");
  EXPECT_THAT(NodesOf(*Match(spec)), ElementsAre("thin"));
  spec.set_cpu_milli_per_card(200'000);  // 400 cores for 2 cards: nowhere
  EXPECT_FALSE(Match(spec).has_value());
  EXPECT_THAT(Explain(spec), HasSubstr("CPU/memory"));
}

TEST_F(MatcherTest, AllowedRegionsAreStrictAndPreferredRegionsComeFirst) {
  Add("north-site", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1000}},
                         "north"));
  Add("east-site", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}},
                        "east"));
  v1::JobSpec spec = Cards(4);
  EXPECT_EQ(Match(spec)->provider, "north-site");
  spec.add_preferred_regions("east");
  EXPECT_EQ(Match(spec)->provider, "east-site") << "preferred beats cheaper";
  Hold("busy", "east-site", {On("n1", {0, 1, 2, 3, 4, 5})});
  EXPECT_EQ(Match(spec)->provider, "north-site") << "preference is not strict";
  spec.add_allowed_regions("east");
  EXPECT_FALSE(Match(spec).has_value()) << "residency is strict";
  EXPECT_THAT(Explain(spec), HasSubstr("waiting for capacity"));
  spec.clear_preferred_regions();
  spec.clear_allowed_regions();
  spec.add_allowed_regions("west");
  EXPECT_THAT(Explain(spec), HasSubstr("allowed region(s) west"));
}

TEST_F(MatcherTest, ExcludedProvidersAreSkipped) {
  Add("site-a", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1000}}));
  Add("site-b", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  v1::JobSpec spec = Cards(1);
  spec.add_excluded_providers("site-a");
  EXPECT_EQ(Match(spec)->provider, "site-b");
  EXPECT_FALSE(Match(spec, {"site-b"}).has_value());
  MatchContext context;
  std::set<std::string> rejected = {"site-b"};
  context.excluded = &rejected;
  EXPECT_THAT(matcher_.ExplainNoFit(PlacementRequest::FromSpec(spec), index_,
                                    context),
              HasSubstr("excluded provider"));
}

TEST_F(MatcherTest, PriceCeilings) {
  Add("dear", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 2000}}));
  Add("cheap", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}));
  v1::JobSpec spec = Cards(1);
  spec.set_max_price_per_card_hour(1500);
  EXPECT_EQ(Match(spec)->provider, "cheap") << "equal to the ceiling is fine";
  spec.set_max_price_per_card_hour(1499);
  EXPECT_FALSE(Match(spec).has_value());
  EXPECT_THAT(Explain(spec), HasSubstr("above the price ceiling"));

  // Per A100-equivalent-hour: an H800 at 3000/card-hour is 946 per
  // A100-hour, so it passes a 1000 ceiling that no A800 here passes.
  Add("h800", Site({MakeNode("n1", "ib", "H800", 8)}, {{"H800", 3000}}));
  v1::JobSpec per_a100 = Cards(1);
  per_a100.set_max_price_per_a100_hour(1000);
  EXPECT_EQ(Match(per_a100)->provider, "h800");
  per_a100.set_max_price_per_a100_hour(900);
  EXPECT_FALSE(Match(per_a100).has_value());
  EXPECT_THAT(Explain(per_a100), HasSubstr("above the price ceiling"));
}

TEST_F(MatcherTest, SpareCapacityOnlyForPreemptibleJobsAtTheSparePrice) {
  v1::RegisterProvider site =
      Site({MakeNode("dedicated", "ib", "A800", 8), MakeNode("spare", "ib", "A800", 8)},
           {{"A800", 1500}});
  site.mutable_nodes(1)->set_offer(v1::CAPACITY_OFFER_SPARE);
  site.mutable_prices(0)->set_spare_per_card_hour(600);
  Add("site-a", site);
  v1::JobSpec spec = Cards(8);
  auto regular = Match(spec);
  ASSERT_TRUE(regular.has_value());
  EXPECT_THAT(NodesOf(*regular), ElementsAre("dedicated"));
  EXPECT_FALSE(regular->spare);
  Hold("busy", "site-a", {On("dedicated", {0})});
  EXPECT_FALSE(Match(spec).has_value()) << "never on spare if not preemptible";
  EXPECT_THAT(Explain(spec), HasSubstr("waiting for capacity"));

  spec.set_preemptible(true);
  auto preemptible = Match(spec);
  ASSERT_TRUE(preemptible.has_value());
  EXPECT_THAT(NodesOf(*preemptible), ElementsAre("spare"));
  EXPECT_TRUE(preemptible->spare);
  EXPECT_EQ(preemptible->price_per_card_hour, 600);

  // Withdrawn (reclaimed) nodes are offered to nobody.
  site.mutable_nodes(1)->set_offer(v1::CAPACITY_OFFER_WITHDRAWN);
  Add("site-a", site);
  EXPECT_FALSE(Match(spec).has_value());
}

TEST_F(MatcherTest, OfflineProvidersOfferNothing) {
  Add("site-a", Site({MakeNode("n1", "ib", "A800", 8)}, {{"A800", 1500}}),
      /*online=*/false);
  EXPECT_FALSE(Match(Cards(1)).has_value());
  EXPECT_THAT(Explain(Cards(1)), HasSubstr("no online provider"));
  index_.SetOnline("site-a", true);
  EXPECT_TRUE(Match(Cards(1)).has_value());
}

TEST_F(MatcherTest, MatchIsPure) {
  Add("site-a", Site({MakeNode("n1", "ib", "A800", 2)}, {{"A800", 1500}}));
  auto first = Match(Cards(2));
  auto second = Match(Cards(2));
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_THAT(Devices(second->assignments[0]), ElementsAre(0, 1))
      << "matching does not consume the capacity it was shown";
  EXPECT_EQ(index_.Totals().allocated_milli, 0u);
}

TEST(PlacementRequestTest, ParsesShapesAndDemand) {
  v1::JobSpec gang = testing::ShellJob("true", 8);
  gang.set_nodes(4);
  auto request = PlacementRequest::FromSpec(gang);
  EXPECT_EQ(request.shape, RequestShape::kWholeCards);
  EXPECT_EQ(request.DemandMilli(), 32000u);
  EXPECT_EQ(request.Describe(), "4 node(s) x 8 card(s)");

  v1::JobSpec share = testing::ShellJob("true", 1);
  share.set_gpu_milli(250);
  EXPECT_EQ(PlacementRequest::FromSpec(share).shape, RequestShape::kFractional);
  EXPECT_EQ(PlacementRequest::FromSpec(share).DemandMilli(), 250u);
  EXPECT_EQ(PlacementRequest::FromSpec(share).Describe(), "0.250 of a card");

  v1::JobSpec compute = testing::ShellJob("true", 0, {"A800", "H800"});
  compute.set_a100_equivalents_milli(2500);
  EXPECT_EQ(PlacementRequest::FromSpec(compute).Describe(),
            "2.500 A100-equivalents of A800|H800");
}

}  // namespace
}  // namespace computenet::matching
