// GPU discovery through NVML, against a fake libnvidia-ml built in the test
// tree (tests/fake_nvml) and loaded with dlopen exactly as the real one
// would be: enumeration, catalog names, NVLink peers, a failing nvmlInit,
// and a missing or wrong library.
#include "computenet/provider/nvml_inventory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "computenet/provider/accelerator_models.h"
#include "test_support.h"

namespace computenet::provider {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class NvmlInventoryTest : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("FAKE_NVML_CONFIG"); }

  // Points the fake library at a config file with these lines.
  void Configure(const std::string& text) {
    const std::string path = dir_.File("fake-nvml.txt");
    std::ofstream(path) << text;
    ::setenv("FAKE_NVML_CONFIG", path.c_str(), 1);
  }

  NvmlOptions Fake() const {
    NvmlOptions options;
    options.library_path = COMPUTENET_FAKE_NVML;
    return options;
  }

  testing::TempDir dir_;
};

TEST_F(NvmlInventoryTest, EnumeratesGpusWithNamesUuidsAndMemory) {
  Configure(
      "driver 535.104.05\n"
      "gpu 00000000:07:00.0 81920 GPU-aaaa NVIDIA A800-SXM4-80GB\n"
      "gpu 00000000:0F:00.0 81920 GPU-bbbb NVIDIA A800-SXM4-80GB\n"
      "gpu 00000000:47:00.0 46068 GPU-cccc NVIDIA L40S\n");
  auto inventory = DiscoverNvmlGpus(Fake());
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  EXPECT_EQ(inventory->driver_version, "535.104.05");
  ASSERT_EQ(inventory->gpus.size(), 3u);
  const GpuDevice& first = inventory->gpus[0];
  EXPECT_EQ(first.index, 0u);
  EXPECT_EQ(first.name, "NVIDIA A800-SXM4-80GB");
  EXPECT_EQ(first.model, "A800");
  EXPECT_TRUE(first.model_verified);
  EXPECT_EQ(first.uuid, "GPU-aaaa");
  EXPECT_EQ(first.memory_mib, 81920u);
  EXPECT_EQ(first.pci_bus_id, "00000000:07:00.0");
  EXPECT_THAT(first.nvlink_peers, IsEmpty());  // no NVLink listed
  EXPECT_EQ(inventory->gpus[2].model, "L40S");
  EXPECT_EQ(inventory->gpus[2].memory_mib, 46068u);

  // As a registration node: one accelerator entry per run of a model.
  v1::Node node = NodeFromGpus("gpu-01", "ib-1", *inventory);
  EXPECT_EQ(node.name(), "gpu-01");
  EXPECT_EQ(node.fabric_id(), "ib-1");
  ASSERT_EQ(node.accelerators_size(), 2);
  EXPECT_EQ(node.accelerators(0).model(), "A800");
  EXPECT_EQ(node.accelerators(0).count(), 2u);
  EXPECT_EQ(node.accelerators(0).memory_mib(), 81920u);
  EXPECT_EQ(node.accelerators(1).model(), "L40S");
  EXPECT_EQ(node.accelerators(1).count(), 1u);
}

TEST_F(NvmlInventoryTest, NvLinkPeersAndSwitchLinks) {
  // GPUs 0 and 1 share two direct links; GPU 2 has one link to GPU 0 and
  // one to an NVSwitch (a PCI device that is no GPU); GPU 3 has none.
  Configure(
      "gpu 00000000:07:00.0 81920 GPU-0 NVIDIA H100 80GB HBM3\n"
      "gpu 00000000:0F:00.0 81920 GPU-1 NVIDIA H100 80GB HBM3\n"
      "gpu 00000000:47:00.0 81920 GPU-2 NVIDIA H100 80GB HBM3\n"
      "gpu 00000000:4E:00.0 81920 GPU-3 NVIDIA H100 80GB HBM3\n"
      "nvlink 0 0 00000000:0F:00.0\n"
      "nvlink 0 1 00000000:0f:00.0\n"
      "nvlink 0 2 00000000:47:00.0\n"
      "nvlink 1 0 00000000:07:00.0\n"
      "nvlink 1 1 00000000:07:00.0\n"
      "nvlink 2 0 00000000:07:00.0\n"
      "nvlink 2 5 00000000:C1:00.0\n");
  auto inventory = DiscoverNvmlGpus(Fake());
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  ASSERT_EQ(inventory->gpus.size(), 4u);
  EXPECT_THAT(inventory->gpus[0].nvlink_peers, ElementsAre(1u, 2u));
  EXPECT_EQ(inventory->gpus[0].active_nvlinks, 3u);
  EXPECT_EQ(inventory->gpus[0].nvswitch_links, 0u);
  EXPECT_THAT(inventory->gpus[1].nvlink_peers, ElementsAre(0u));
  EXPECT_THAT(inventory->gpus[2].nvlink_peers, ElementsAre(0u));
  EXPECT_EQ(inventory->gpus[2].nvswitch_links, 1u);
  EXPECT_THAT(inventory->gpus[3].nvlink_peers, IsEmpty());
  EXPECT_EQ(inventory->gpus[3].active_nvlinks, 0u);
  EXPECT_EQ(inventory->gpus[3].model, "H100");
}

TEST_F(NvmlInventoryTest, UnknownNameIsKeptRawAndUnverified) {
  Configure("gpu 00000000:07:00.0 24564 GPU-x NVIDIA GeForce RTX 4090\n");
  auto inventory = DiscoverNvmlGpus(Fake());
  ASSERT_TRUE(inventory.ok());
  ASSERT_EQ(inventory->gpus.size(), 1u);
  EXPECT_EQ(inventory->gpus[0].model, "NVIDIA GeForce RTX 4090");
  EXPECT_FALSE(inventory->gpus[0].model_verified);
}

TEST_F(NvmlInventoryTest, NoGpusIsAnEmptyInventory) {
  Configure("driver 550.54.15\n");
  auto inventory = DiscoverNvmlGpus(Fake());
  ASSERT_TRUE(inventory.ok());
  EXPECT_THAT(inventory->gpus, IsEmpty());
}

TEST_F(NvmlInventoryTest, FailingInitIsUnavailableWithNvmlsReason) {
  Configure("init_error 9\ngpu 00000000:07:00.0 81920 GPU-0 NVIDIA A800\n");
  auto inventory = DiscoverNvmlGpus(Fake());
  EXPECT_EQ(inventory.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(inventory.status().message(), HasSubstr("nvmlInit failed"));
  EXPECT_THAT(inventory.status().message(), HasSubstr("Driver Not Loaded"));

  // No config at all: the fake behaves as a machine without a driver.
  ::unsetenv("FAKE_NVML_CONFIG");
  EXPECT_EQ(DiscoverNvmlGpus(Fake()).status().code(), StatusCode::kUnavailable);
}

TEST_F(NvmlInventoryTest, MissingLibraryIsUnavailable) {
  NvmlOptions options;
  options.library_path = dir_.File("libnvidia-ml.so.1");  // does not exist
  auto inventory = DiscoverNvmlGpus(options);
  EXPECT_EQ(inventory.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(inventory.status().message(), HasSubstr("cannot load"));
}

TEST_F(NvmlInventoryTest, LibraryWithoutNvmlIsUnavailable) {
  NvmlOptions options;
  options.library_path = "libm.so.6";  // loads, but is not NVML
  auto inventory = DiscoverNvmlGpus(options);
  EXPECT_EQ(inventory.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(inventory.status().message(), HasSubstr("entry points"));
}

TEST(AcceleratorModelsTest, VendorNamesMapToCatalogModels) {
  struct Case {
    const char* raw;
    const char* model;
  };
  for (const Case& c : {Case{"NVIDIA A800-SXM4-80GB", "A800"},
                        Case{"NVIDIA A800 80GB PCIe", "A800"},
                        Case{"NVIDIA H100 80GB HBM3", "H100"},
                        Case{"NVIDIA H100 PCIe", "H100"},
                        Case{"NVIDIA H800", "H800"},
                        Case{"NVIDIA H20", "H20"},
                        Case{"Tesla V100-SXM2-32GB", "V100"},
                        Case{"Tesla T4", "T4"},
                        Case{"NVIDIA A100-SXM4-40GB", "A100"},
                        Case{"NVIDIA A10", "A10"},
                        Case{"NVIDIA L40S", "L40S"},
                        Case{"NVIDIA L20", "L20"},
                        Case{"a800", "A800"},  // a Slurm GRES type
                        Case{"h100_80gb", "H100"}}) {
    CatalogModel model = CatalogModelFromDeviceName(c.raw);
    EXPECT_EQ(model.model, c.model) << c.raw;
    EXPECT_TRUE(model.verified) << c.raw;
  }
  // Near misses are not guessed.
  for (const char* raw : {"NVIDIA H200", "NVIDIA A10G", "NVIDIA L40",
                          "NVIDIA GeForce RTX 4090", ""}) {
    CatalogModel model = CatalogModelFromDeviceName(raw);
    EXPECT_FALSE(model.verified) << raw;
    EXPECT_EQ(model.model, raw);
  }
  EXPECT_EQ(CatalogModelFromDeviceName("  Huawei Ascend 910B ").model,
            "Huawei Ascend 910B");
}

}  // namespace
}  // namespace computenet::provider
