// ProviderRegistry: online providers, allocations and the capacity the
// matcher sees.
#include "core/imports.h"
#include "jobs/provider_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::MakeNode;
using testing::MakeRegistration;

constexpr int64_t kNowMs = 1'700'000'000'000;

v1::NodeAssignment Assignment(const std::string& node,
                              std::vector<uint32_t> devices) {
  v1::NodeAssignment assignment;
  assignment.set_node(node);
  for (uint32_t device : devices) assignment.add_device_indices(device);
  return assignment;
}

const NodeCapacity* FindNode(const std::vector<ProviderCapacity>& capacity,
                             const std::string& provider,
                             const std::string& node) {
  for (const auto& entry : capacity) {
    if (entry.provider != provider) continue;
    for (const auto& candidate : entry.nodes) {
      if (candidate.name == node) return &candidate;
    }
  }
  return nullptr;
}

std::vector<uint32_t> FreeOf(const std::vector<ProviderCapacity>& capacity,
                             const std::string& provider,
                             const std::string& node, size_t group = 0) {
  const NodeCapacity* found = FindNode(capacity, provider, node);
  if (found == nullptr || group >= found->groups.size()) return {99999};
  return found->groups[group].free_devices;
}

class ProviderRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.Register(
        "site-a",
        MakeRegistration("zb-1",
                         {MakeNode("n1", "ib-1", "A800", 4),
                          MakeNode("n2", "ib-1", "A800", 4)},
                         {{"A800", 1500}}),
        "route-a", kNowMs);
  }
  ProviderRegistry registry_;
};

TEST_F(ProviderRegistryTest, RegisterRecordsEntry) {
  ProviderEntry* entry = registry_.Find("site-a");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->name, "site-a");
  EXPECT_TRUE(entry->online);
  EXPECT_EQ(entry->routing_id, "route-a");
  EXPECT_EQ(entry->last_heard_ms, kNowMs);
  EXPECT_EQ(entry->registration.site(), "zb-1");
  EXPECT_EQ(registry_.Find("site-z"), nullptr);
}

TEST_F(ProviderRegistryTest, CapacityMirrorsRegistration) {
  auto capacity = registry_.OnlineCapacity();
  ASSERT_EQ(capacity.size(), 1u);
  const ProviderCapacity& provider = capacity[0];
  EXPECT_EQ(provider.provider, "site-a");
  EXPECT_EQ(provider.region, "north");
  EXPECT_EQ(provider.currency, "CNY");
  EXPECT_EQ(provider.price_per_card_hour.at("A800"), 1500);
  ASSERT_EQ(provider.nodes.size(), 2u);
  EXPECT_EQ(provider.nodes[0].name, "n1");
  EXPECT_EQ(provider.nodes[0].fabric_id, "ib-1");
  ASSERT_EQ(provider.nodes[0].groups.size(), 1u);
  const DeviceGroup& group = provider.nodes[0].groups[0];
  EXPECT_EQ(group.model, "A800");
  EXPECT_EQ(group.memory_mib, 81920u);
  EXPECT_EQ(group.total, 4u);
  EXPECT_THAT(group.free_devices, ElementsAre(0, 1, 2, 3));
}

// What capacity adverts rank by comes from the capacity index, as the
// matcher sees it: the card's compute and class, and the provider's score.
TEST_F(ProviderRegistryTest, CapacityCarriesComputeAndReliabilityForAdverts) {
  registry_.capacity().SetReliability("site-a", 800);
  auto capacity = registry_.OnlineCapacity();
  ASSERT_EQ(capacity.size(), 1u);
  EXPECT_EQ(capacity[0].reliability_permille, 800u);
  EXPECT_EQ(capacity[0].dense_gflops.at("A800"),
            AcceleratorCatalog::BuiltIn()->Find("A800")->dense_gflops);
  EXPECT_EQ(capacity[0].vendor_class.at("A800"), "nvidia");
}

TEST_F(ProviderRegistryTest, AllocationTakesDevices) {
  registry_.Allocate("job-1", "site-a", {Assignment("n1", {1, 2})});
  auto capacity = registry_.OnlineCapacity();
  EXPECT_THAT(FreeOf(capacity, "site-a", "n1"), ElementsAre(0, 3));
  EXPECT_THAT(FreeOf(capacity, "site-a", "n2"), ElementsAre(0, 1, 2, 3));
  // total stays the node's card count.
  EXPECT_EQ(FindNode(capacity, "site-a", "n1")->groups[0].total, 4u);
}

TEST_F(ProviderRegistryTest, GangAllocationTakesDevicesOnEveryNode) {
  registry_.Allocate("job-1", "site-a",
                     {Assignment("n1", {0, 1, 2, 3}), Assignment("n2", {3})});
  auto capacity = registry_.OnlineCapacity();
  EXPECT_THAT(FreeOf(capacity, "site-a", "n1"), IsEmpty());
  EXPECT_THAT(FreeOf(capacity, "site-a", "n2"), ElementsAre(0, 1, 2));
}

TEST_F(ProviderRegistryTest, SeveralJobsShareANode) {
  registry_.Allocate("job-1", "site-a", {Assignment("n1", {0})});
  registry_.Allocate("job-2", "site-a", {Assignment("n1", {2})});
  EXPECT_THAT(FreeOf(registry_.OnlineCapacity(), "site-a", "n1"),
              ElementsAre(1, 3));
  registry_.Release("job-1");
  EXPECT_THAT(FreeOf(registry_.OnlineCapacity(), "site-a", "n1"),
              ElementsAre(0, 1, 3));
}

TEST_F(ProviderRegistryTest, ReleaseFreesDevices) {
  registry_.Allocate("job-1", "site-a", {Assignment("n1", {1, 2})});
  registry_.Release("job-1");
  EXPECT_THAT(FreeOf(registry_.OnlineCapacity(), "site-a", "n1"),
              ElementsAre(0, 1, 2, 3));
  // Releasing twice, or an unknown job, changes nothing.
  registry_.Release("job-1");
  registry_.Release("never-allocated");
  EXPECT_THAT(FreeOf(registry_.OnlineCapacity(), "site-a", "n1"),
              ElementsAre(0, 1, 2, 3));
}

TEST_F(ProviderRegistryTest, ReallocatingAJobReplacesItsAllocation) {
  // A job holds one allocation at a time.
  registry_.Allocate("job-1", "site-a", {Assignment("n1", {0, 1})});
  registry_.Allocate("job-1", "site-a", {Assignment("n2", {3})});
  auto capacity = registry_.OnlineCapacity();
  EXPECT_THAT(FreeOf(capacity, "site-a", "n1"), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(FreeOf(capacity, "site-a", "n2"), ElementsAre(0, 1, 2));
}

TEST_F(ProviderRegistryTest, AllocationsAreScopedToTheirProvider) {
  registry_.Register("site-b",
                     MakeRegistration("zb-2", {MakeNode("n1", "ib", "A800", 2)},
                                      {{"A800", 1200}}),
                     "route-b", kNowMs);
  registry_.Allocate("job-1", "site-b", {Assignment("n1", {0})});
  auto capacity = registry_.OnlineCapacity();
  EXPECT_THAT(FreeOf(capacity, "site-a", "n1"), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(FreeOf(capacity, "site-b", "n1"), ElementsAre(1));
}

TEST_F(ProviderRegistryTest, OfflineProvidersAreExcluded) {
  registry_.Register("site-b",
                     MakeRegistration("zb-2", {MakeNode("n1", "ib", "A800", 2)},
                                      {{"A800", 1200}}),
                     "route-b", kNowMs);
  ASSERT_EQ(registry_.OnlineCapacity().size(), 2u);
  registry_.Find("site-a")->online = false;
  auto capacity = registry_.OnlineCapacity();
  ASSERT_EQ(capacity.size(), 1u);
  EXPECT_EQ(capacity[0].provider, "site-b");
  // Re-registering brings it back.
  const v1::RegisterProvider registration =
      registry_.Find("site-a")->registration;
  registry_.Register("site-a", registration, "route-a2", kNowMs + 5);
  EXPECT_EQ(registry_.OnlineCapacity().size(), 2u);
  EXPECT_EQ(registry_.Find("site-a")->routing_id, "route-a2");
}

TEST_F(ProviderRegistryTest, AllocationsSurviveGoingOffline) {
  registry_.Allocate("job-1", "site-a", {Assignment("n1", {0})});
  registry_.Find("site-a")->online = false;
  EXPECT_TRUE(registry_.OnlineCapacity().empty());
  registry_.Find("site-a")->online = true;
  EXPECT_THAT(FreeOf(registry_.OnlineCapacity(), "site-a", "n1"),
              ElementsAre(1, 2, 3));
}

TEST_F(ProviderRegistryTest, CapacityIsInNameOrder) {
  registry_.Register("aaa",
                     MakeRegistration("s", {MakeNode("n1", "f", "A800", 1)},
                                      {{"A800", 1}}),
                     "r", kNowMs);
  registry_.Register("zzz",
                     MakeRegistration("s", {MakeNode("n1", "f", "A800", 1)},
                                      {{"A800", 1}}),
                     "r", kNowMs);
  auto capacity = registry_.OnlineCapacity();
  ASSERT_EQ(capacity.size(), 3u);
  EXPECT_EQ(capacity[0].provider, "aaa");
  EXPECT_EQ(capacity[1].provider, "site-a");
  EXPECT_EQ(capacity[2].provider, "zzz");
  EXPECT_EQ(registry_.All().size(), 3u);
}

TEST(ProviderRegistryMixedNodeTest, DeviceIndicesRunAcrossGroups) {
  // One node: 2 x A800 (devices 0, 1) then 3 x H100 (devices 2, 3, 4).
  v1::Node node = MakeNode("mixed", "ib-1", "A800", 2);
  auto* h100 = node.add_accelerators();
  h100->set_model("H100");
  h100->set_memory_mib(81920);
  h100->set_count(3);
  ProviderRegistry registry;
  registry.Register("site-a",
                    MakeRegistration("zb", {node},
                                     {{"A800", 1500}, {"H100", 3000}}),
                    "r", kNowMs);
  auto capacity = registry.OnlineCapacity();
  ASSERT_EQ(capacity.size(), 1u);
  const auto& groups = capacity[0].nodes[0].groups;
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].model, "A800");
  EXPECT_THAT(groups[0].free_devices, ElementsAre(0, 1));
  EXPECT_EQ(groups[1].model, "H100");
  EXPECT_THAT(groups[1].free_devices, ElementsAre(2, 3, 4));
  EXPECT_EQ(groups[1].total, 3u);

  // Taking device 3 removes it from the H100 group only.
  registry.Allocate("job-1", "site-a", {Assignment("mixed", {1, 3})});
  capacity = registry.OnlineCapacity();
  EXPECT_THAT(FreeOf(capacity, "site-a", "mixed", 0), ElementsAre(0));
  EXPECT_THAT(FreeOf(capacity, "site-a", "mixed", 1), ElementsAre(2, 4));
}

}  // namespace
}  // namespace computenet::broker
