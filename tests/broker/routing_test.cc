#include "core/imports.h"
#include "federation/routing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "federation/capacity_advert.h"

namespace computenet::broker {
namespace {

using Kind = RoutingDecision::Kind;
using ::testing::HasSubstr;

// An entry as a broker before routing v2 sent it: prices per card-hour only.
v1::CapacityEntry LegacyEntry(const std::string& model, uint32_t free,
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

// An entry as SummarizeCapacity makes it from one provider with `free`
// cards of a catalog model: compute figures from the built-in catalog.
v1::CapacityEntry Entry(const std::string& model, uint32_t free,
                        uint32_t largest_node, int64_t price,
                        uint32_t reliability_permille = 900) {
  ProviderCapacity provider;
  provider.provider = "site-" + model;
  provider.currency = "CNY";
  provider.price_per_card_hour[model] = price;
  provider.reliability_permille = reliability_permille;
  for (uint32_t left = free, n = 0; left > 0; ++n) {
    NodeCapacity node;
    node.name = "n" + std::to_string(n);
    node.fabric_id = "ib";
    DeviceGroup group;
    group.model = model;
    const uint32_t here = std::min(left, largest_node);
    group.total = here;
    for (uint32_t d = 0; d < here; ++d) group.free_devices.push_back(d);
    node.groups.push_back(group);
    provider.nodes.push_back(node);
    left -= here;
  }
  auto entries = SummarizeCapacity({provider});
  EXPECT_EQ(entries.size(), 1u);
  return entries.empty() ? v1::CapacityEntry() : entries[0];
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
  for (const auto& region : regions)
    job.mutable_spec()->add_allowed_regions(region);
  return job;
}

// A local placement on whole cards of a catalog model, its cost key as the
// matcher computes it.
Placement Local(int64_t price, const std::string& model = "A800",
                uint32_t reliability_permille = 900) {
  const auto catalog = AcceleratorCatalog::BuiltIn();
  Placement placement;
  placement.provider = "site";
  placement.model = model;
  placement.price_per_card_hour = price;
  placement.cost_key =
      price * static_cast<int64_t>(catalog->reference_gflops()) * 1000 /
      static_cast<int64_t>(catalog->Find(model)->dense_gflops);
  placement.reliability_permille = reliability_permille;
  return placement;
}

v1::JobInfo ComputeJob(uint32_t a100_milli) {
  v1::JobInfo job;
  job.set_job_id("home-2");
  job.mutable_spec()->set_a100_equivalents_milli(a100_milli);
  return job;
}

RoutingOptions Options() {
  RoutingOptions options;
  options.broker_id = "home";
  options.home_region = "north";
  options.forward_margin_bp = 2000;
  return options;
}

TEST(RoutingTest, RunsLocallyWhenItFitsAndNoPeerIsMuchCheaper) {
  auto decision =
      Route(Job(2), Local(1000),
            {Peer("east", "east", {Entry("A800", 8, 8, 900)})}, {}, Options());
  EXPECT_EQ(decision.kind, Kind::kLocal);  // 900 * 1.2 >= 1000
}

TEST(RoutingTest, ForwardsWhenAPeerIsCheaperByMoreThanTheMargin) {
  auto decision =
      Route(Job(2), Local(1000),
            {Peer("east", "east", {Entry("A800", 8, 8, 800)})}, {}, Options());
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
  auto decision =
      Route(Job(1, {"south"}), std::nullopt,
            {Peer("east", "east", {Entry("A800", 8, 8, 10)})}, {}, Options());
  EXPECT_EQ(decision.kind, Kind::kReject);
  EXPECT_THAT(decision.reason, HasSubstr("allowed regions"));
}

TEST(RoutingTest, TooLargeForHomeGoesToTheCheapestPerA100HourThatFits) {
  // Per card-hour west's 910B (900) is cheaper than east's H800 (2000); per
  // A100-equivalent-hour east is (2000 / 3.171 = ~631 vs 900 / 1.025 =
  // ~878): the job buys compute, so it goes to east.
  auto decision = Route(Job(8), std::nullopt,
                        {Peer("east", "east", {Entry("H800", 16, 8, 2000)}),
                         Peer("west", "west", {Entry("910B", 8, 8, 900)}),
                         Peer("small", "south", {Entry("T4", 4, 4, 100)})},
                        {}, Options());
  EXPECT_EQ(decision.kind, Kind::kForward);
  EXPECT_EQ(decision.peer, "east");
  EXPECT_THAT(decision.reason, HasSubstr("630.685 per A100-hour"));
}

TEST(RoutingTest, AdvertsWithoutComputeFiguresAreResolvedByTheCatalog) {
  std::vector<PeerView> peers = {
      Peer("east", "east", {LegacyEntry("H800", 16, 8, 2000)}),
      Peer("west", "west", {LegacyEntry("910B", 8, 8, 900)})};
  RoutingOptions options = Options();
  options.catalog = AcceleratorCatalog::BuiltIn();
  EXPECT_EQ(Route(Job(8), std::nullopt, peers, {}, options).peer, "east");
  // Without a catalog nothing says what a card is worth: per card-hour.
  EXPECT_EQ(Route(Job(8), std::nullopt, peers, {}, Options()).peer, "west");
  // A model the catalog does not know is compared per card-hour too.
  peers.push_back(Peer("odd", "south", {LegacyEntry("X-9", 8, 8, 500)}));
  EXPECT_EQ(Route(Job(8), std::nullopt, peers, {}, options).peer, "odd");
}

TEST(RoutingTest, LocalAndPeersCompareByComputeNotByCard) {
  // Locally an A800 at 1500 (1500 per A100-hour); east's H800 at 2000 is
  // dearer per card but ~631 per A100-hour: far more than the margin.
  auto decision =
      Route(Job(1), Local(1500),
            {Peer("east", "east", {Entry("H800", 8, 8, 2000)})}, {}, Options());
  EXPECT_EQ(decision.kind, Kind::kForward);
  EXPECT_THAT(decision.reason, HasSubstr("per A100-hour"));
  // A local H800 at 2000 against a remote A800 at 1000: the A800 is
  // cheaper per card, dearer per A100-hour: it stays here.
  EXPECT_EQ(
      Route(Job(1), Local(2000, "H800"),
            {Peer("east", "east", {Entry("A800", 8, 8, 1000)})}, {}, Options())
          .kind,
      Kind::kLocal);
}

TEST(RoutingTest, ComputeEquivalenceIsForwardedWhereItCostsLeast) {
  // 8 A100-equivalents: 3 H800s at east (3 x 2000 / 8 = 750 per A100-hour
  // asked, the rounding up paid for), 8 910Bs at west (900).
  std::vector<PeerView> peers = {
      Peer("east", "east", {Entry("H800", 16, 8, 2000)}),
      Peer("west", "west", {Entry("910B", 8, 8, 900)})};
  auto decision = Route(ComputeJob(8000), std::nullopt, peers, {}, Options());
  EXPECT_EQ(decision.kind, Kind::kForward);
  EXPECT_EQ(decision.peer, "east");
  // ~750: the advert's figures are rounded to thousandths of an A100.
  EXPECT_THAT(decision.reason, HasSubstr("at 749.9"));
  // On domestic cards only: west, whose advert names its class.
  v1::JobInfo domestic = ComputeJob(8000);
  domestic.mutable_spec()->add_vendor_classes("domestic");
  EXPECT_EQ(Route(domestic, std::nullopt, peers, {}, Options()).peer, "west");
  // More than any one provider there has free: west's 8 910Bs are 8.2
  // A100-equivalents; east's 16 H800s 50.7.
  v1::JobInfo big = ComputeJob(9000);
  big.mutable_spec()->add_vendor_classes("domestic");
  EXPECT_EQ(Route(big, std::nullopt, peers, {}, Options()).kind, Kind::kWait);
  EXPECT_EQ(Route(ComputeJob(50000), std::nullopt, peers, {}, Options()).peer,
            "east");
  EXPECT_EQ(Route(ComputeJob(51000), std::nullopt, peers, {}, Options()).kind,
            Kind::kWait);
  // A peer that does not say how much compute it has is never counted on.
  EXPECT_EQ(Route(ComputeJob(1000), std::nullopt,
                  {Peer("old", "east", {LegacyEntry("H800", 16, 8, 2000)})}, {},
                  Options())
                .kind,
            Kind::kWait);
}

TEST(RoutingTest, PreferredRegionsRankBeforePriceBetweenBrokers) {
  std::vector<PeerView> peers = {
      Peer("east", "east", {Entry("H800", 8, 8, 2000)}),
      Peer("west", "west", {Entry("910B", 8, 8, 900)})};
  v1::JobInfo job = Job(1);
  // Unpreferred: east, the cheapest per A100-hour.
  EXPECT_EQ(Route(job, Local(1500), peers, {}, Options()).peer, "east");
  // Preferring west: west, though east is cheaper and home fits.
  job.mutable_spec()->add_preferred_regions("west");
  auto decision = Route(job, Local(1500), peers, {}, Options());
  EXPECT_EQ(decision.kind, Kind::kForward);
  EXPECT_EQ(decision.peer, "west");
  EXPECT_THAT(decision.reason, HasSubstr("preferred region west"));
  // West declined it: the others compete again, by price.
  EXPECT_EQ(Route(job, Local(1500), peers, {"west"}, Options()).peer, "east");
  // A preference never lifts a job over its price ceiling.
  v1::JobInfo capped = job;
  capped.mutable_spec()->set_max_price_per_card_hour(800);
  EXPECT_EQ(Route(capped, Local(700), peers, {}, Options()).kind, Kind::kLocal);
  // A preference for a region the job may not run in is ignored.
  v1::JobInfo resident = job;
  resident.mutable_spec()->add_allowed_regions("north");
  resident.mutable_spec()->add_allowed_regions("east");
  EXPECT_EQ(Route(resident, Local(1500), peers, {}, Options()).peer, "east");
}

TEST(RoutingTest, APreferredHomeKeepsTheJobUnlessAPreferredPeerBeatsTheMargin) {
  std::vector<PeerView> peers = {
      Peer("east", "east", {Entry("H800", 8, 8, 2000)}),
      Peer("west", "west", {Entry("A800", 8, 8, 1300)})};
  v1::JobInfo job = Job(1);
  job.mutable_spec()->add_preferred_regions("north");
  // East is far cheaper, but not preferred.
  EXPECT_EQ(Route(job, Local(1500), peers, {}, Options()).kind, Kind::kLocal);
  // West is preferred too, but 1300 * 1.2 >= 1500: within the margin.
  job.mutable_spec()->add_preferred_regions("west");
  EXPECT_EQ(Route(job, Local(1500), peers, {}, Options()).kind, Kind::kLocal);
  // Preferred and cheaper by more than the margin.
  job.mutable_spec()->add_preferred_regions("east");
  EXPECT_EQ(Route(job, Local(1500), peers, {}, Options()).peer, "east");
}

TEST(RoutingTest, ReliabilityBreaksEqualCostsAsInTheMatcher) {
  std::vector<PeerView> peers = {
      Peer("east", "east", {Entry("H800", 8, 8, 2000, /*reliability=*/600)}),
      Peer("west", "west", {Entry("H800", 8, 8, 2000, /*reliability=*/950)})};
  EXPECT_EQ(Route(Job(8), std::nullopt, peers, {}, Options()).peer, "west");
  // Cost still comes first: a cheaper, less reliable peer wins.
  peers[0].entries = {Entry("H800", 8, 8, 1999, 600)};
  EXPECT_EQ(Route(Job(8), std::nullopt, peers, {}, Options()).peer, "east");
  // Against the local placement, at margin 0 and equal cost, the more
  // reliable side takes it.
  RoutingOptions options = Options();
  options.forward_margin_bp = 0;
  std::vector<PeerView> twin = {
      Peer("east", "east", {Entry("A800", 8, 8, 1500, 950)})};
  EXPECT_EQ(Route(Job(1), Local(1500, "A800", 600), twin, {}, options).peer,
            "east");
  EXPECT_EQ(Route(Job(1), Local(1500, "A800", 950), twin, {}, options).kind,
            Kind::kLocal);
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
  auto decision =
      Route(job, std::nullopt, {Peer("west", "west", {Entry("910B", 8, 8, 1)})},
            {}, Options());
  EXPECT_EQ(decision.kind, Kind::kWait);
  EXPECT_TRUE(decision.peer.empty());
}

TEST(RoutingTest, PeersOnThePathAreNeverChosen) {
  // A -> B -> C -> A is impossible: the path names every broker visited.
  v1::JobInfo job = Job(8);
  job.add_path("east");
  auto decision =
      Route(job, std::nullopt,
            {Peer("east", "east", {Entry("H800", 16, 8, 1)})}, {}, Options());
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
    for (uint32_t d = 0; d < (n == 1 ? 4u : 8u); ++d)
      group.free_devices.push_back(d);
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
  EXPECT_FALSE(
      AdvertFits(h800, gang));  // 8-card nodes are in different fabrics
  gang.set_cards_per_node(4);
  EXPECT_TRUE(AdvertFits(h800, gang));
  gang.set_max_price_per_card_hour(1500);
  EXPECT_FALSE(AdvertFits(h800, gang));
}

ProviderCapacity OneNode(const std::string& name, const std::string& model,
                         int64_t price, uint32_t free, uint32_t reliability) {
  ProviderCapacity provider;
  provider.provider = name;
  provider.currency = "CNY";
  provider.price_per_card_hour = {{model, price}};
  provider.reliability_permille = reliability;
  NodeCapacity node;
  node.name = name + "-n0";
  DeviceGroup group;
  group.model = model;
  group.total = 8;
  for (uint32_t d = 0; d < free; ++d) group.free_devices.push_back(d);
  node.groups.push_back(group);
  provider.nodes.push_back(node);
  return provider;
}

TEST(CapacityAdvertTest, CarriesComputeVendorClassAndTheProvidersReliability) {
  // Two H800 sites at one price (the more reliable one is what a peer's
  // matcher tries first), and a cheaper one with nothing free.
  ProviderCapacity a = OneNode("site-a", "H800", 2000, 8, 700);
  ProviderCapacity b = OneNode("site-b", "H800", 2000, 4, 900);
  b.dense_gflops["H800"] = 989'400;  // as the index resolved it
  ProviderCapacity c = OneNode("site-c", "H800", 1800, 0, 999);
  // A model the catalog does not know, with the provider's measured figure;
  // another without one.
  ProviderCapacity d = OneNode("site-d", "X-9", 1000, 2, 800);
  d.dense_gflops["X-9"] = 624'000;
  d.vendor_class["X-9"] = "domestic";
  ProviderCapacity e = OneNode("site-e", "Y-1", 100, 2, 0);
  auto entries = SummarizeCapacity({a, b, c, d, e});
  ASSERT_EQ(entries.size(), 3u);
  const auto& h800 = entries[0];
  EXPECT_EQ(h800.model(), "H800");
  EXPECT_EQ(h800.vendor_class(), "nvidia");
  EXPECT_EQ(h800.lowest_price(), 1800);
  // 2000 * 312 TFLOPS * 1000 / 989.4 TFLOPS, as the matcher's cost key.
  EXPECT_EQ(h800.lowest_price_per_a100_hour_milli(), 630'685);
  EXPECT_EQ(h800.a100_milli_per_card(), 3171u);
  EXPECT_EQ(h800.reliability_bp(), 9000u);
  // Compute equivalence stays at one provider: site-a's 8, not all 12.
  EXPECT_EQ(h800.largest_provider_a100_milli(), 8u * 3171u);
  const auto& x9 = entries[1];
  EXPECT_EQ(x9.vendor_class(), "domestic");
  EXPECT_EQ(x9.a100_milli_per_card(), 2000u);
  EXPECT_EQ(x9.lowest_price_per_a100_hour_milli(), 500'000);
  EXPECT_EQ(x9.reliability_bp(), 8000u);
  const auto& y1 = entries[2];
  EXPECT_EQ(y1.lowest_price_per_a100_hour_milli(), 0);
  EXPECT_EQ(y1.largest_provider_a100_milli(), 0u);
  // Unknown reliability reads as the matcher's default for a new provider.
  EXPECT_EQ(y1.reliability_bp(), 10u * kDefaultReliabilityPermille);

  v1::JobSpec compute;
  compute.set_a100_equivalents_milli(25'000);
  EXPECT_TRUE(AdvertFits(h800, compute));
  compute.set_a100_equivalents_milli(25'369);
  EXPECT_FALSE(AdvertFits(h800, compute));
  compute.set_a100_equivalents_milli(1000);
  compute.add_vendor_classes("domestic");
  EXPECT_FALSE(AdvertFits(h800, compute));
  EXPECT_TRUE(AdvertFits(x9, compute));
  EXPECT_FALSE(AdvertFits(y1, compute));  // says nothing of its compute
  v1::JobSpec whole;
  whole.set_cards_per_node(1);
  whole.set_max_price_per_a100_hour(630);
  EXPECT_FALSE(AdvertFits(h800, whole));
  whole.set_max_price_per_a100_hour(631);
  EXPECT_TRUE(AdvertFits(h800, whole));
  v1::JobSpec fractional;
  fractional.set_gpu_milli(500);
  EXPECT_FALSE(AdvertFits(h800, fractional));  // shared cards: never forwarded
}

TEST(CapacityAdvertTest, DeltaCarriesChangesAndRemovals) {
  std::map<std::string, v1::CapacityEntry> before = {
      {"A800", Entry("A800", 8, 8, 1500)}, {"T4", Entry("T4", 4, 4, 300)}};
  auto delta = AdvertDelta(
      before, {Entry("A800", 8, 8, 1500), Entry("H800", 8, 8, 2000)});
  ASSERT_EQ(delta.size(), 2u);
  EXPECT_EQ(delta[0].model(), "H800");
  EXPECT_EQ(delta[1].model(), "T4");
  EXPECT_EQ(delta[1].free_cards(), 0u);
  EXPECT_TRUE(
      AdvertDelta(before, {Entry("A800", 8, 8, 1500), Entry("T4", 4, 4, 300)})
          .empty());
}

}  // namespace
}  // namespace computenet::broker
