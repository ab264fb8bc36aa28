#include "core/imports.h"
#include "federation/routing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "federation/capacity_advert.h"

namespace computenet::broker {
namespace {

using Kind = RoutingDecision::Kind;
using ::testing::HasSubstr;

v1::CapacityEntry Entry(const std::string& model, uint32_t free,
                        uint32_t largest_node, int64_t price) {
  v1::CapacityEntry entry;
  entry.set_model(model);
  entry.set_free_cards(free);
  entry.set_largest_node_cards(largest_node);
  entry.set_lowest_price(price);
  entry.set_reliability_bp(10000);
  for (uint32_t cards = 1; cards <= largest_node; cards *= 2) {
    auto* gang = entry.add_gangs();
    gang->set_cards_per_node(cards);
    gang->set_nodes(free / largest_node);
  }
  return entry;
}

PeerView Peer(const std::string& id, const std::string& region,
              std::vector<v1::CapacityEntry> entries, bool up = true) {
  return PeerView{id, region, up, std::move(entries)};
}

v1::JobInfo Job(uint32_t cards, std::vector<std::string> regions = {}) {
  v1::JobInfo job;
  job.set_job_id("home-1");
  job.mutable_spec()->set_cards_per_node(cards);
  job.mutable_spec()->set_nodes(1);
  for (const auto& region : regions) job.mutable_spec()->add_allowed_regions(region);
  return job;
}

Placement Local(int64_t price) {
  Placement placement;
  placement.provider = "site";
  placement.price_per_card_hour = price;
  return placement;
}

RoutingOptions Options() {
  RoutingOptions options;
  options.broker_id = "home";
  options.home_region = "north";
  options.forward_margin_bp = 2000;
  return options;
}

TEST(RoutingTest, RunsLocallyWhenItFitsAndNoPeerIsMuchCheaper) {
  auto decision = Route(Job(2), Local(1000),
                        {Peer("east", "east", {Entry("A800", 8, 8, 900)})}, {},
                        Options());
  EXPECT_EQ(decision.kind, Kind::kLocal);  // 900 * 1.2 >= 1000
}

TEST(RoutingTest, ForwardsWhenAPeerIsCheaperByMoreThanTheMargin) {
  auto decision = Route(Job(2), Local(1000),
                        {Peer("east", "east", {Entry("A800", 8, 8, 800)})}, {},
                        Options());
  EXPECT_EQ(decision.kind, Kind::kForward);  // 800 * 1.2 < 1000
  EXPECT_EQ(decision.peer, "east");
  EXPECT_THAT(decision.reason, HasSubstr("cheaper"));
}

TEST(RoutingTest, ResidencyForcesTheAllowedRegion) {
  auto decision = Route(Job(1, {"west"}), Local(100),
                        {Peer("east", "east", {Entry("A800", 8, 8, 10)}),
                         Peer("west", "west", {Entry("910B", 8, 8, 900)})},
                        {}, Options());
  EXPECT_EQ(decision.kind, Kind::kForward);
  EXPECT_EQ(decision.peer, "west");
}

TEST(RoutingTest, NoBrokerServingAllowedRegionsIsRejected) {
  auto decision = Route(Job(1, {"south"}), std::nullopt,
                        {Peer("east", "east", {Entry("A800", 8, 8, 10)})}, {},
                        Options());
  EXPECT_EQ(decision.kind, Kind::kReject);
  EXPECT_THAT(decision.reason, HasSubstr("allowed regions"));
}

TEST(RoutingTest, TooLargeForHomeGoesToTheCheapestPeerThatFits) {
  auto decision = Route(Job(8), std::nullopt,
                        {Peer("east", "east", {Entry("H800", 16, 8, 2000)}),
                         Peer("west", "west", {Entry("910B", 8, 8, 900)}),
                         Peer("small", "south", {Entry("T4", 4, 4, 100)})},
                        {}, Options());
  EXPECT_EQ(decision.kind, Kind::kForward);
  EXPECT_EQ(decision.peer, "west");
}

TEST(RoutingTest, DeclinedAndDownPeersAreSkippedThenItWaits) {
  std::vector<PeerView> peers = {
      Peer("east", "east", {Entry("H800", 16, 8, 2000)}),
      Peer("west", "west", {Entry("910B", 8, 8, 900)}, /*up=*/false)};
  auto first = Route(Job(8), std::nullopt, peers, {}, Options());
  EXPECT_EQ(first.peer, "east");
  auto after_decline = Route(Job(8), std::nullopt, peers, {"east"}, Options());
  EXPECT_EQ(after_decline.kind, Kind::kWait);
  EXPECT_THAT(after_decline.reason, HasSubstr("declined by east"));
}

TEST(RoutingTest, AForwardedJobIsNeverForwardedAgain) {
  v1::JobInfo job = Job(8);
  job.set_home_broker("north");  // it came here from north
  job.add_path("north");
  job.add_path("east");
  auto decision = Route(job, std::nullopt,
                        {Peer("west", "west", {Entry("910B", 8, 8, 1)})}, {},
                        Options());
  EXPECT_EQ(decision.kind, Kind::kWait);
  EXPECT_TRUE(decision.peer.empty());
}

TEST(RoutingTest, PeersOnThePathAreNeverChosen) {
  // A -> B -> C -> A is impossible: the path names every broker visited.
  v1::JobInfo job = Job(8);
  job.add_path("east");
  auto decision = Route(job, std::nullopt,
                        {Peer("east", "east", {Entry("H800", 16, 8, 1)})}, {},
                        Options());
  EXPECT_EQ(decision.kind, Kind::kWait);
}

TEST(CapacityAdvertTest, SummarizesWithoutProvidersAndComputesGangs) {
  ProviderCapacity a;
  a.provider = "site-a";
  a.currency = "CNY";
  a.price_per_card_hour = {{"H800", 2000}};
  for (int n = 0; n < 3; ++n) {
    NodeCapacity node;
    node.name = "n" + std::to_string(n);
    node.fabric_id = n < 2 ? "ib-1" : "ib-2";
    DeviceGroup group;
    group.model = "H800";
    group.total = 8;
    for (uint32_t d = 0; d < (n == 1 ? 4u : 8u); ++d) group.free_devices.push_back(d);
    node.groups.push_back(group);
    a.nodes.push_back(node);
  }
  ProviderCapacity b = a;
  b.provider = "site-b";
  b.price_per_card_hour = {{"H800", 1800}};
  b.nodes.resize(1);
  auto entries = SummarizeCapacity({a, b});
  ASSERT_EQ(entries.size(), 1u);
  const auto& h800 = entries[0];
  EXPECT_EQ(h800.free_cards(), 8u + 4u + 8u + 8u);
  EXPECT_EQ(h800.largest_node_cards(), 8u);
  EXPECT_EQ(h800.lowest_price(), 1800);
  // A forward's budget must cover the dearest offer it may land on.
  EXPECT_EQ(h800.highest_price(), 2000);
  // 4 cards per node: two nodes in site-a's ib-1; 8 per node: only one.
  ASSERT_EQ(h800.gangs_size(), 4);
  EXPECT_EQ(h800.gangs(2).cards_per_node(), 4u);
  EXPECT_EQ(h800.gangs(2).nodes(), 2u);
  EXPECT_EQ(h800.gangs(3).cards_per_node(), 8u);
  EXPECT_EQ(h800.gangs(3).nodes(), 1u);
  EXPECT_EQ(h800.SerializeAsString().find("site-a"), std::string::npos);

  v1::JobSpec gang;
  gang.set_cards_per_node(8);
  gang.set_nodes(2);
  EXPECT_FALSE(AdvertFits(h800, gang));  // 8-card nodes are in different fabrics
  gang.set_cards_per_node(4);
  EXPECT_TRUE(AdvertFits(h800, gang));
  gang.set_max_price_per_card_hour(1500);
  EXPECT_FALSE(AdvertFits(h800, gang));
}

TEST(CapacityAdvertTest, DeltaCarriesChangesAndRemovals) {
  std::map<std::string, v1::CapacityEntry> before = {
      {"A800", Entry("A800", 8, 8, 1500)}, {"T4", Entry("T4", 4, 4, 300)}};
  auto delta = AdvertDelta(before, {Entry("A800", 8, 8, 1500),
                                    Entry("H800", 8, 8, 2000)});
  ASSERT_EQ(delta.size(), 2u);
  EXPECT_EQ(delta[0].model(), "H800");
  EXPECT_EQ(delta[1].model(), "T4");
  EXPECT_EQ(delta[1].free_cards(), 0u);
  EXPECT_TRUE(AdvertDelta(before, {Entry("A800", 8, 8, 1500),
                                   Entry("T4", 4, 4, 300)})
                  .empty());
}

}  // namespace
}  // namespace computenet::broker
