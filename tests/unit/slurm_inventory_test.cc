// Capacity derived from `scontrol -o show node` output: shareable
// partitions only, unusable states left out, typed and untyped GRES.
#include "computenet/provider/slurm_inventory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace computenet::provider {
namespace {

using ::testing::HasSubstr;

constexpr const char* kNodes =
    "NodeName=a1 Arch=x86_64 CPUTot=128 RealMemory=1031000 "
    "Gres=gpu:a800:8(S:0-1) State=MIXED Partitions=train,share OS=Linux 6.1 #1 SMP\n"
    "NodeName=a2 CPUTot=128 RealMemory=1031000 Gres=gpu:a800:4(S:0),gpu:t4:2(S:1) "
    "State=IDLE Partitions=share\n"
    "NodeName=a3 CPUTot=128 Gres=gpu:a800:8 State=IDLE+DRAIN Partitions=share\n"
    "NodeName=a4 CPUTot=128 Gres=gpu:a800:8 State=DOWN* Partitions=share\n"
    "NodeName=a5 CPUTot=64 Gres=(null) State=IDLE Partitions=share\n"
    "NodeName=b1 CPUTot=64 Gres=gpu:h100:8 State=IDLE Partitions=private\n"
    "NodeName=c1 CPUTot=64 RealMemory=512000 Gres=gpu:8 State=ALLOCATED Partitions=plain\n"
    "NodeName=c2 CPUTot=64 Gres=gpu:newchip:8 State=IDLE Partitions=plain\n";

TEST(SlurmInventoryTest, ShareablePartitionsUsableNodesTypedGres) {
  SlurmInventoryOptions options;
  options.partitions = {"share"};
  options.card_memory_mib = 81920;
  auto nodes = NodesFromScontrol(kNodes, options);
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 2u);  // a3 drained, a4 down, a5 no GPU, b1 private
  const v1::Node& a1 = (*nodes)[0];
  EXPECT_EQ(a1.name(), "a1");
  EXPECT_EQ(a1.fabric_id(), "slurm:share");
  EXPECT_EQ(a1.cpu_cores(), 128u);
  EXPECT_EQ(a1.memory_mib(), 1031000u);
  ASSERT_EQ(a1.accelerators_size(), 1);
  EXPECT_EQ(a1.accelerators(0).model(), "A800");
  EXPECT_EQ(a1.accelerators(0).count(), 8u);
  EXPECT_EQ(a1.accelerators(0).memory_mib(), 81920u);
  const v1::Node& a2 = (*nodes)[1];
  ASSERT_EQ(a2.accelerators_size(), 2);
  EXPECT_EQ(a2.accelerators(0).model(), "A800");
  EXPECT_EQ(a2.accelerators(0).count(), 4u);
  EXPECT_EQ(a2.accelerators(1).model(), "T4");
  EXPECT_EQ(a2.accelerators(1).count(), 2u);
}

TEST(SlurmInventoryTest, UntypedGresNeedsADefaultModel) {
  SlurmInventoryOptions options;
  options.partitions = {"plain"};
  auto missing = NodesFromScontrol(kNodes, options);
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("[slurm] model"));

  options.default_model = "L20";
  auto nodes = NodesFromScontrol(kNodes, options);
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].accelerators(0).model(), "L20");
  EXPECT_EQ((*nodes)[0].fabric_id(), "slurm:plain");
  // An unknown GRES type is kept as written, not guessed.
  EXPECT_EQ((*nodes)[1].accelerators(0).model(), "newchip");
}

TEST(SlurmInventoryTest, NothingShareableIsAnError) {
  SlurmInventoryOptions options;
  options.partitions = {"nowhere"};
  EXPECT_EQ(NodesFromScontrol(kNodes, options).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(NodesFromScontrol("", options).status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace computenet::provider
