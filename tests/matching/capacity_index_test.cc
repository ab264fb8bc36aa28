// CapacityIndex: shelves, rank order, the free-capacity search, per-card
// thousandths, host resources, and allocations surviving re-registration.
#include "computenet/matching/capacity_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.h"

namespace computenet::matching {
namespace {

using ::testing::ElementsAre;
using testing::MakeNode;
using testing::MakeRegistration;

v1::NodeAssignment On(const std::string& node, std::vector<uint32_t> devices,
                      uint32_t milli = 0) {
  return testing::MakeAssignment(node, devices, milli);
}

class CapacityIndexTest : public ::testing::Test {
 protected:
  void Add(const std::string& name, int64_t price, uint32_t nodes = 2,
           uint32_t cards = 8) {
    std::vector<v1::Node> list;
    for (uint32_t i = 0; i < nodes; ++i) {
      list.push_back(MakeNode("n" + std::to_string(i), "ib", "A800", cards));
    }
    ASSERT_TRUE(
        index_.UpsertProvider(name, MakeRegistration(name, list, {{"A800", price}}))
            .ok());
    index_.SetOnline(name, true);
  }
  std::vector<std::string> RankedProviders() {
    std::vector<std::string> out;
    for (const auto& ref : index_.Order(*index_.ModelId("A800"))) {
      out.push_back(index_.providers()[ref.provider].name);
    }
    return out;
  }
  CapacityIndex index_;
};

TEST_F(CapacityIndexTest, ShelvesAreRankedByCostThenName) {
  Add("c", 1500);
  Add("a", 2000);
  Add("b", 1500);
  EXPECT_THAT(RankedProviders(), ElementsAre("b", "c", "a"));
  // Reliability is compared by the matcher among equal-cost shelves; the
  // order does not move when a job ends and a track record changes.
  index_.SetReliability("c", 900);
  EXPECT_THAT(RankedProviders(), ElementsAre("b", "c", "a"));
  EXPECT_EQ(index_.providers()[*index_.ProviderId("c")].reliability_permille,
            900u);
  index_.SetOnline("c", false);
  EXPECT_THAT(RankedProviders(), ElementsAre("b", "a")) << "offline: not ranked";
  // A price change re-ranks; the generation tells caches to refresh.
  const uint64_t generation = index_.offer_generation();
  Add("a", 1000);
  EXPECT_THAT(RankedProviders(), ElementsAre("a", "b"));
  EXPECT_GT(index_.offer_generation(), generation);
  // The all-models order holds the same shelves.
  EXPECT_EQ(index_.Order(CapacityIndex::kAllModels).size(), 2u);
}

TEST_F(CapacityIndexTest, GangRoomPerFabricIsTracked) {
  // Two fabrics: f1 with 3 nodes, f2 with 2, 8 cards each.
  std::vector<v1::Node> nodes = {
      MakeNode("a1", "f1", "A800", 8), MakeNode("a2", "f1", "A800", 8),
      MakeNode("a3", "f1", "A800", 8), MakeNode("b1", "f2", "A800", 8),
      MakeNode("b2", "f2", "A800", 8)};
  ASSERT_TRUE(index_.UpsertProvider(
      "site", MakeRegistration("site", nodes, {{"A800", 1000}})).ok());
  index_.SetOnline("site", true);
  const auto& shelf = index_.providers()[0].shelves[0];
  EXPECT_EQ(shelf.gang_max[3], 3u) << "3 nodes with >= 8 free in f1";
  ASSERT_TRUE(index_.Allocate("j", JobAllocation{"site", {On("a1", {0})}}).ok());
  EXPECT_EQ(index_.providers()[0].shelves[0].gang_max[3], 2u);
  EXPECT_EQ(index_.providers()[0].shelves[0].gang_max[2], 3u) << ">= 4 free";
  ASSERT_TRUE(index_.Allocate("k", JobAllocation{"site", {On("a2", {0})}}).ok());
  EXPECT_EQ(index_.providers()[0].shelves[0].gang_max[3], 2u) << "f2 still has 2";
  index_.Release("j");
  index_.Release("k");
  EXPECT_EQ(index_.providers()[0].shelves[0].gang_max[3], 3u);
}

TEST_F(CapacityIndexTest, FindShelfSkipsShelvesWithoutRoom) {
  Add("cheap", 1000, /*nodes=*/1);
  Add("dear", 2000, /*nodes=*/1);
  const uint32_t model = *index_.ModelId("A800");
  CapacityIndex::Need need;
  need.max_free_whole = 4;
  need.region_mask = ~uint64_t{0};
  need.kinds = CapacityIndex::kDedicated;
  need.class_mask = ~uint64_t{0};
  EXPECT_EQ(index_.FindShelf(model, 0, need), 0);
  ASSERT_TRUE(index_.Allocate("j", JobAllocation{"cheap", {On("n0", {0, 1, 2, 3, 4})}}).ok());
  EXPECT_EQ(index_.FindShelf(model, 0, need), 1) << "cheap has 3 cards left";
  CapacityIndex::Need three = need;
  three.max_free_whole = 3;
  EXPECT_EQ(index_.FindShelf(model, 0, three), 0);
  EXPECT_EQ(index_.FindShelf(model, 2, need), -1);
  CapacityIndex::Need nine = need;
  nine.max_free_whole = 9;
  EXPECT_EQ(index_.FindShelf(model, 0, nine), -1);
  // Static bounds prune too: a price ceiling below both, an unknown region,
  // spare-only.
  CapacityIndex::Need cheap = need;
  cheap.min_price = 999;
  EXPECT_EQ(index_.FindShelf(model, 0, cheap), -1);
  cheap.min_price = 2000;
  EXPECT_EQ(index_.FindShelf(model, 0, cheap), 1);
  CapacityIndex::Need elsewhere = need;
  elsewhere.region_mask = index_.RegionBit("south");
  EXPECT_EQ(index_.FindShelf(model, 0, elsewhere), -1);
  elsewhere.region_mask = index_.RegionBit("north");
  EXPECT_EQ(index_.FindShelf(model, 0, elsewhere), 1);
  CapacityIndex::Need spare_only = need;
  spare_only.kinds = CapacityIndex::kSpare;
  EXPECT_EQ(index_.FindShelf(model, 0, spare_only), -1);
  index_.Release("j");
  EXPECT_EQ(index_.FindShelf(model, 0, need), 0);
}

TEST_F(CapacityIndexTest, SharesAreTrackedPerCardInThousandths) {
  Add("site", 1000, 1, 2);
  ASSERT_TRUE(index_.Allocate("a", JobAllocation{"site", {On("n0", {0}, 300)}}).ok());
  ASSERT_TRUE(index_.Allocate("b", JobAllocation{"site", {On("n0", {0}, 700)}}).ok());
  EXPECT_EQ(index_.Allocate("c", JobAllocation{"site", {On("n0", {0}, 1)}}).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(index_.Allocate("a", JobAllocation{"site", {On("n0", {1}, 1)}}).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(index_.Allocate("x", JobAllocation{"nobody", {}}).code(),
            StatusCode::kNotFound);
  const auto& group = index_.providers()[0].nodes[0].groups[0];
  EXPECT_THAT(group.used_milli, ElementsAre(1000, 0));
  EXPECT_EQ(group.free_whole, 1u);
  EXPECT_EQ(index_.Totals().cards, 2u);
  EXPECT_EQ(index_.Totals().allocated_milli, 1000u);
  index_.Release("b");
  EXPECT_THAT(index_.providers()[0].nodes[0].groups[0].used_milli,
              ElementsAre(300, 0));
  const auto& shelf = index_.providers()[0].shelves[0];
  ASSERT_EQ(shelf.partial.size(), 1u);
  EXPECT_EQ(std::get<0>(*shelf.partial.begin()), 700u) << "free thousandths";
}

TEST_F(CapacityIndexTest, HostResourcesAreHeldPerCard) {
  v1::Node node = MakeNode("n0", "ib", "A800", 8);
  node.set_cpu_cores(64);
  node.set_memory_mib(512 * 1024);
  ASSERT_TRUE(index_.UpsertProvider(
      "site", MakeRegistration("site", {node}, {{"A800", 1000}})).ok());
  ASSERT_TRUE(index_.Allocate("j", JobAllocation{"site", {On("n0", {0, 1})},
                                                  8000, 65536}).ok());
  const auto& held = index_.providers()[0].nodes[0];
  EXPECT_EQ(held.cpu_milli_total, 64000u);
  EXPECT_EQ(held.cpu_milli_used, 16000u);
  EXPECT_EQ(held.memory_mib_used, 131072u);
  index_.Release("j");
  EXPECT_EQ(index_.providers()[0].nodes[0].cpu_milli_used, 0u);
}

TEST_F(CapacityIndexTest, AllocationsSurviveReRegistrationAndOfferChanges) {
  Add("site", 1000, 2, 4);
  ASSERT_TRUE(index_.Allocate("j", JobAllocation{"site", {On("n1", {1, 2})}}).ok());
  // New prices, and n0 becomes spare: the job still holds its cards.
  v1::RegisterProvider changed = MakeRegistration(
      "site", {MakeNode("n0", "ib", "A800", 4), MakeNode("n1", "ib", "A800", 4)},
      {{"A800", 1200}});
  changed.mutable_nodes(0)->set_offer(v1::CAPACITY_OFFER_SPARE);
  ASSERT_TRUE(index_.UpsertProvider("site", changed).ok());
  const auto& provider = index_.providers()[0];
  EXPECT_TRUE(provider.online) << "kept across the upsert";
  EXPECT_THAT(provider.nodes[1].groups[0].used_milli, ElementsAre(0, 1000, 1000, 0));
  ASSERT_EQ(provider.shelves.size(), 2u) << "dedicated and spare";
  EXPECT_NE(provider.shelves[0].spare, provider.shelves[1].spare);
  // A node that disappears drops the part of the allocation on it.
  ASSERT_TRUE(index_.UpsertProvider(
      "site", MakeRegistration("site", {MakeNode("n0", "ib", "A800", 4)},
                               {{"A800", 1200}})).ok());
  EXPECT_EQ(index_.Totals().allocated_milli, 0u);
  EXPECT_NE(index_.FindAllocation("j"), nullptr) << "still recorded";
  EXPECT_TRUE(index_.Release("j").has_value());
}

TEST_F(CapacityIndexTest, WithdrawnNodesOfferNothing) {
  v1::RegisterProvider registration = MakeRegistration(
      "site", {MakeNode("n0", "ib", "A800", 4), MakeNode("n1", "ib", "A800", 4)},
      {{"A800", 1000}});
  registration.mutable_nodes(1)->set_offer(v1::CAPACITY_OFFER_WITHDRAWN);
  ASSERT_TRUE(index_.UpsertProvider("site", registration).ok());
  index_.SetOnline("site", true);
  EXPECT_EQ(index_.Totals().cards, 4u);
  EXPECT_EQ(index_.providers()[0].shelves[0].members.size(), 1u);
}

TEST_F(CapacityIndexTest, BulkUpdateRanksOnceAtTheEnd) {
  {
    CapacityIndex::BulkUpdate bulk(index_);
    for (int i = 0; i < 50; ++i) {
      Add("p" + std::to_string(i), 1000 + (i * 37) % 500, 1, 8);
    }
  }
  auto ranked = RankedProviders();
  ASSERT_EQ(ranked.size(), 50u);
  int64_t last = 0;
  for (const auto& ref : index_.Order(*index_.ModelId("A800"))) {
    EXPECT_GE(index_.shelf(ref).cost_key, last);
    last = index_.shelf(ref).cost_key;
  }
}

TEST_F(CapacityIndexTest, IndexCopiesAreIndependent) {
  Add("site", 1000, 1, 8);
  CapacityIndex copy = index_;
  ASSERT_TRUE(copy.Allocate("j", JobAllocation{"site", {On("n0", {0})}}).ok());
  EXPECT_EQ(copy.Totals().allocated_milli, 1000u);
  EXPECT_EQ(index_.Totals().allocated_milli, 0u);
}

}  // namespace
}  // namespace computenet::matching
