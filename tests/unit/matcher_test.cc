// FirstFitMatcher on hand-built capacity: models, prices, devices, fabrics.
#include "computenet/broker/matcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace computenet::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

DeviceGroup Group(const std::string& model, std::vector<uint32_t> free,
                  uint32_t total = 8) {
  DeviceGroup group;
  group.model = model;
  group.memory_mib = 81920;
  group.free_devices = std::move(free);
  group.total = total;
  return group;
}

NodeCapacity Node(const std::string& name, const std::string& fabric,
                  std::vector<DeviceGroup> groups) {
  NodeCapacity node;
  node.name = name;
  node.fabric_id = fabric;
  node.groups = std::move(groups);
  return node;
}

ProviderCapacity Provider(const std::string& name,
                          std::map<std::string, int64_t> prices,
                          std::vector<NodeCapacity> nodes) {
  ProviderCapacity provider;
  provider.provider = name;
  provider.region = "north";
  provider.currency = "CNY";
  provider.price_per_card_hour = std::move(prices);
  provider.nodes = std::move(nodes);
  return provider;
}

v1::JobSpec Spec(uint32_t cards, uint32_t nodes = 1,
                 std::vector<std::string> models = {},
                 int64_t max_price = 0) {
  v1::JobSpec spec;
  spec.add_command("/bin/true");
  spec.set_cards_per_node(cards);
  spec.set_nodes(nodes);
  spec.set_max_duration_s(60);
  spec.set_max_price_per_card_hour(max_price);
  for (const auto& model : models) spec.add_accelerator_models(model);
  return spec;
}

std::vector<uint32_t> Devices(const v1::NodeAssignment& assignment) {
  return {assignment.device_indices().begin(),
          assignment.device_indices().end()};
}

std::vector<std::string> Nodes(const Placement& placement) {
  std::vector<std::string> out;
  for (const auto& assignment : placement.assignments) {
    out.push_back(assignment.node());
  }
  return out;
}

class FirstFitMatcherTest : public ::testing::Test {
 protected:
  MatchOutcome Match(const v1::JobSpec& spec,
                     const std::vector<ProviderCapacity>& providers,
                     const std::set<std::string>& excluded = {}) const {
    return matcher_.Match(spec, providers, excluded);
  }
  FirstFitMatcher matcher_;
};

TEST_F(FirstFitMatcherTest, SingleNodeTakesLowestFreeDevices) {
  auto outcome = Match(
      Spec(2), {Provider("site-a", {{"A800", 1500}},
                         {Node("n1", "ib-1", {Group("A800", {1, 4, 5, 7})})})});
  ASSERT_TRUE(outcome.placement.has_value()) << outcome.reason;
  const Placement& placement = *outcome.placement;
  EXPECT_EQ(placement.provider, "site-a");
  EXPECT_EQ(placement.model, "A800");
  EXPECT_EQ(placement.price_per_card_hour, 1500);
  EXPECT_EQ(placement.currency, "CNY");
  ASSERT_EQ(placement.assignments.size(), 1u);
  EXPECT_EQ(placement.assignments[0].node(), "n1");
  EXPECT_THAT(Devices(placement.assignments[0]), ElementsAre(1, 4));
  EXPECT_TRUE(outcome.reason.empty());
}

TEST_F(FirstFitMatcherTest, SkipsNodesWithoutEnoughFreeCards) {
  auto outcome = Match(
      Spec(4), {Provider("site-a", {{"A800", 1500}},
                         {Node("n1", "ib-1", {Group("A800", {0, 1, 2})}),
                          Node("n2", "ib-1", {Group("A800", {2, 3, 5, 6})})})});
  ASSERT_TRUE(outcome.placement.has_value()) << outcome.reason;
  EXPECT_THAT(Nodes(*outcome.placement), ElementsAre("n2"));
  EXPECT_THAT(Devices(outcome.placement->assignments[0]),
              ElementsAre(2, 3, 5, 6));
}

TEST_F(FirstFitMatcherTest, NodesZeroMeansOneNode) {
  auto outcome = Match(
      Spec(1, /*nodes=*/0),
      {Provider("site-a", {{"A800", 1500}},
                {Node("n1", "ib-1", {Group("A800", {0})}),
                 Node("n2", "ib-1", {Group("A800", {0})})})});
  ASSERT_TRUE(outcome.placement.has_value()) << outcome.reason;
  EXPECT_EQ(outcome.placement->assignments.size(), 1u);
}

TEST_F(FirstFitMatcherTest, ModelFilter) {
  std::vector<ProviderCapacity> providers = {Provider(
      "site-a", {{"A800", 1500}, {"H100", 3000}},
      {Node("n1", "ib-1", {Group("A800", {0, 1}), Group("H100", {2, 3})})})};
  auto h100 = Match(Spec(1, 1, {"H100"}), providers);
  ASSERT_TRUE(h100.placement.has_value()) << h100.reason;
  EXPECT_EQ(h100.placement->model, "H100");
  EXPECT_EQ(h100.placement->price_per_card_hour, 3000);
  EXPECT_THAT(Devices(h100.placement->assignments[0]), ElementsAre(2));

  auto either = Match(Spec(1, 1, {"H100", "A800"}), providers);
  ASSERT_TRUE(either.placement.has_value());

  auto none = Match(Spec(1, 1, {"MI300X"}), providers);
  EXPECT_FALSE(none.placement.has_value());
  EXPECT_THAT(none.reason, HasSubstr("requested models"));
}

TEST_F(FirstFitMatcherTest, ModelFilterDoesNotFallBackToOtherModels) {
  // The wanted model has no free card; another model does.
  auto outcome = Match(
      Spec(1, 1, {"H100"}),
      {Provider("site-a", {{"A800", 1500}, {"H100", 3000}},
                {Node("n1", "ib-1",
                      {Group("A800", {0, 1}), Group("H100", {})})})});
  EXPECT_FALSE(outcome.placement.has_value());
  EXPECT_THAT(outcome.reason, HasSubstr("waiting for capacity"));
}

TEST_F(FirstFitMatcherTest, PriceCeiling) {
  std::vector<ProviderCapacity> providers = {
      Provider("dear", {{"A800", 2000}},
               {Node("n1", "ib-1", {Group("A800", {0})})}),
      Provider("cheap", {{"A800", 1500}},
               {Node("n1", "ib-1", {Group("A800", {0})})})};
  auto capped = Match(Spec(1, 1, {}, /*max_price=*/1500), providers);
  ASSERT_TRUE(capped.placement.has_value()) << capped.reason;
  EXPECT_EQ(capped.placement->provider, "cheap")
      << "a price equal to the ceiling is allowed";
  EXPECT_EQ(capped.placement->price_per_card_hour, 1500);

  auto too_low = Match(Spec(1, 1, {}, /*max_price=*/1499), providers);
  EXPECT_FALSE(too_low.placement.has_value());
  EXPECT_THAT(too_low.reason, HasSubstr("price ceiling"));

  auto no_ceiling = Match(Spec(1, 1, {}, /*max_price=*/0), providers);
  ASSERT_TRUE(no_ceiling.placement.has_value());
  EXPECT_EQ(no_ceiling.placement->provider, "dear") << "first fit, in order";
}

TEST_F(FirstFitMatcherTest, FallsThroughToNextProviderWithCapacity) {
  auto outcome = Match(
      Spec(2), {Provider("site-a", {{"A800", 1500}},
                         {Node("n1", "ib-1", {Group("A800", {7})})}),
                Provider("site-b", {{"A800", 1800}},
                         {Node("m1", "roce", {Group("A800", {0, 1})})})});
  ASSERT_TRUE(outcome.placement.has_value()) << outcome.reason;
  EXPECT_EQ(outcome.placement->provider, "site-b");
  EXPECT_EQ(outcome.placement->price_per_card_hour, 1800);
}

TEST_F(FirstFitMatcherTest, GangLandsInOneFabric) {
  // n1 (ib-1) and n2 (ib-2) come first but sit in different fabrics; the
  // gang must use n1 and n3, both in ib-1.
  auto outcome = Match(
      Spec(2, /*nodes=*/2),
      {Provider("site-a", {{"A800", 1500}},
                {Node("n1", "ib-1", {Group("A800", {0, 1, 2})}),
                 Node("n2", "ib-2", {Group("A800", {0, 1})}),
                 Node("n3", "ib-1", {Group("A800", {4, 5})})})});
  ASSERT_TRUE(outcome.placement.has_value()) << outcome.reason;
  EXPECT_THAT(Nodes(*outcome.placement), ElementsAre("n1", "n3"));
  EXPECT_THAT(Devices(outcome.placement->assignments[0]), ElementsAre(0, 1));
  EXPECT_THAT(Devices(outcome.placement->assignments[1]), ElementsAre(4, 5));
}

TEST_F(FirstFitMatcherTest, GangNeedsDistinctNodes) {
  // One node with plenty of cards is still one node.
  auto outcome = Match(
      Spec(1, /*nodes=*/2),
      {Provider("site-a", {{"A800", 1500}},
                {Node("n1", "ib-1", {Group("A800", {0, 1, 2, 3, 4, 5, 6, 7})})})});
  EXPECT_FALSE(outcome.placement.has_value());
  EXPECT_THAT(outcome.reason, HasSubstr("2 node(s)"));
}

TEST_F(FirstFitMatcherTest, FreeCardsSplitAcrossFabricsIsNoPlacement) {
  // Four free cards in total, two per node, but the nodes are in different
  // fabrics: a 2x2 gang cannot be placed.
  auto outcome = Match(
      Spec(2, /*nodes=*/2),
      {Provider("site-a", {{"A800", 1500}},
                {Node("n1", "ib-1", {Group("A800", {0, 1})}),
                 Node("n2", "ib-2", {Group("A800", {0, 1})})})});
  EXPECT_FALSE(outcome.placement.has_value());
  EXPECT_THAT(outcome.reason, HasSubstr("waiting for capacity"));
  EXPECT_THAT(outcome.reason, HasSubstr("one fabric"));
}

TEST_F(FirstFitMatcherTest, GangDoesNotSpanProviders) {
  auto outcome = Match(
      Spec(1, /*nodes=*/2),
      {Provider("site-a", {{"A800", 1500}},
                {Node("n1", "ib-1", {Group("A800", {0})})}),
       Provider("site-b", {{"A800", 1500}},
                {Node("n1", "ib-1", {Group("A800", {0})})})});
  EXPECT_FALSE(outcome.placement.has_value());
}

TEST_F(FirstFitMatcherTest, ExcludedProvidersAreSkipped) {
  std::vector<ProviderCapacity> providers = {
      Provider("site-a", {{"A800", 1500}},
               {Node("n1", "ib-1", {Group("A800", {0})})}),
      Provider("site-b", {{"A800", 1500}},
               {Node("n1", "ib-1", {Group("A800", {0})})})};
  auto outcome = Match(Spec(1), providers, {"site-a"});
  ASSERT_TRUE(outcome.placement.has_value()) << outcome.reason;
  EXPECT_EQ(outcome.placement->provider, "site-b");

  auto all_excluded = Match(Spec(1), providers, {"site-a", "site-b"});
  EXPECT_FALSE(all_excluded.placement.has_value());
  EXPECT_THAT(all_excluded.reason, HasSubstr("requested models"));
}

TEST_F(FirstFitMatcherTest, NoProvidersGivesReason) {
  auto outcome = Match(Spec(1), {});
  EXPECT_FALSE(outcome.placement.has_value());
  EXPECT_FALSE(outcome.reason.empty());
  EXPECT_THAT(outcome.reason, HasSubstr("no online provider"));
}

TEST_F(FirstFitMatcherTest, ProviderWithoutPricesOffersNothing) {
  auto outcome = Match(
      Spec(1), {Provider("site-a", {}, {Node("n1", "ib-1",
                                             {Group("A800", {0, 1})})})});
  EXPECT_FALSE(outcome.placement.has_value());
  EXPECT_THAT(outcome.reason, HasSubstr("requested models"));
}

TEST_F(FirstFitMatcherTest, NoFreeDevicesGivesCapacityReason) {
  auto outcome = Match(
      Spec(1), {Provider("site-a", {{"A800", 1500}},
                         {Node("n1", "ib-1", {Group("A800", {})})})});
  EXPECT_FALSE(outcome.placement.has_value());
  EXPECT_THAT(outcome.reason, HasSubstr("1 free card(s)"));
}

TEST_F(FirstFitMatcherTest, MatchIsPure) {
  std::vector<ProviderCapacity> providers = {
      Provider("site-a", {{"A800", 1500}},
               {Node("n1", "ib-1", {Group("A800", {0, 1})})})};
  auto first = Match(Spec(2), providers);
  auto second = Match(Spec(2), providers);
  ASSERT_TRUE(first.placement.has_value());
  ASSERT_TRUE(second.placement.has_value());
  EXPECT_THAT(Devices(second.placement->assignments[0]), ElementsAre(0, 1))
      << "matching does not consume the capacity it was shown";
  EXPECT_THAT(providers[0].nodes[0].groups[0].free_devices, ElementsAre(0, 1));
}

}  // namespace
}  // namespace computenet::broker
