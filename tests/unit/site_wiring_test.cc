// Site config keys for the executor and inventory sources, and the wiring
// that turns them into an inventory and an executor (NVML through the fake
// libnvidia-ml; Slurm is exercised against a real one in the integration
// tests).
#include "computenet/provider/site_wiring.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "computenet/common/files.h"
#include "computenet/provider/process_executor.h"
#include "test_support.h"

namespace computenet::provider {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SiteWiringTest : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("FAKE_NVML_CONFIG"); }

  std::string Header() const {
    return "broker_endpoint = \"tcp://broker.example:7700\"\n"
           "broker_public_key = \"" +
           broker_.curve().public_z85 +
           "\"\n"
           "identity_dir = \"keys/site-a\"\n"
           "work_dir = \"work\"\n"
           "site = \"zhangbei-1\"\n"
           "region = \"north\"\n"
           "currency = \"CNY\"\n";
  }

  // The text, then the [prices] table (so that top-level keys in the text
  // stay top-level).
  StatusOr<SiteConfig> Parse(const std::string& text) {
    return ParseSiteConfig(text + "\n[prices]\nA800 = 1500\n", dir_.path());
  }

  testing::TempDir dir_;
  Identity broker_ = testing::MustGenerateIdentity("broker");
};

TEST_F(SiteWiringTest, DefaultsAreProcessExecutorAndConfigInventory) {
  auto config = Parse(Header() +
                      "[[nodes]]\nname = \"n1\"\n"
                      "accelerators = [ { model = \"A800\", count = 2 } ]\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->executor, "process");
  EXPECT_EQ(config->inventory, "config");
  EXPECT_EQ(config->slurm.gres_name, "gpu");
  EXPECT_EQ(config->slurm.poll_interval_ms, 500);
  EXPECT_EQ(config->nvml_library, "libnvidia-ml.so.1");
  auto described = ResolveSiteInventory(&*config);
  ASSERT_TRUE(described.ok());
  EXPECT_EQ(*described, "1 node(s), 2 card(s) from config");
  auto executor = MakeSiteExecutor(*config);
  ASSERT_TRUE(executor.ok());
  EXPECT_NE(dynamic_cast<ProcessExecutor*>(executor->get()), nullptr);
}

// Hostile-input finding: an agent whose work_dir could not be used took
// jobs that then all failed at start. It now refuses to start, naming it.
TEST_F(SiteWiringTest, AWorkDirTheAgentCannotUseStopsItAtStart) {
  auto config = Parse(Header() +
                      "[[nodes]]\nname = \"n1\"\n"
                      "accelerators = [ { model = \"A800\", count = 2 } ]\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  // A file where the directory should be.
  const std::string blocker = dir_.path() + "/not-a-dir";
  ASSERT_TRUE(WriteFileAtomically(blocker, "x", 0600).ok());
  config->work_dir = blocker + "/work";
  auto executor = MakeSiteExecutor(*config);
  EXPECT_EQ(executor.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(executor.status().message(), HasSubstr(blocker));
  // A missing one is created.
  config->work_dir = dir_.path() + "/fresh/work";
  ASSERT_TRUE(MakeSiteExecutor(*config).ok());
  EXPECT_TRUE(std::filesystem::is_directory(config->work_dir));
}

TEST_F(SiteWiringTest, SlurmTableIsParsedWithPathsResolved) {
  auto config = Parse(Header() +
                      "executor = \"slurm\"\n"
                      "inventory = \"slurm\"\n"
                      "[slurm]\n"
                      "partition = \"gpu\"\n"
                      "account = \"computenet\"\n"
                      "gres_name = \"gpu:a800\"\n"
                      "extra_sbatch_args = [\"--qos=spare\", \"--exclusive\"]\n"
                      "poll_interval_ms = 250\n"
                      "command_timeout_ms = 4000\n"
                      "shareable_partitions = [\"share\", \"gpu\"]\n"
                      "bin_dir = \"/opt/slurm/bin\"\n"
                      "conf = \"etc/slurm.conf\"\n"
                      "jobcomp_file = \"/var/log/slurm/jobcomp.log\"\n"
                      "model = \"A800\"\n"
                      "card_memory_mib = 81920\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->executor, "slurm");
  EXPECT_EQ(config->inventory, "slurm");
  const SlurmSiteConfig& slurm = config->slurm;
  EXPECT_EQ(slurm.partition, "gpu");
  EXPECT_EQ(slurm.account, "computenet");
  EXPECT_EQ(slurm.gres_name, "gpu:a800");
  EXPECT_THAT(slurm.extra_sbatch_args, ElementsAre("--qos=spare", "--exclusive"));
  EXPECT_EQ(slurm.poll_interval_ms, 250);
  EXPECT_EQ(slurm.command_timeout_ms, 4000);
  EXPECT_THAT(slurm.shareable_partitions, ElementsAre("share", "gpu"));
  EXPECT_EQ(slurm.bin_dir, "/opt/slurm/bin");
  EXPECT_EQ(slurm.conf, dir_.path() + "/etc/slurm.conf");
  EXPECT_EQ(slurm.jobcomp_file, "/var/log/slurm/jobcomp.log");
  EXPECT_EQ(slurm.model, "A800");
  EXPECT_EQ(slurm.card_memory_mib, 81920u);
  EXPECT_EQ(config->registration.nodes_size(), 0);
}

TEST_F(SiteWiringTest, BadChoicesUnknownKeysAndMisplacedNodesAreErrors) {
  const std::string node =
      "[[nodes]]\nname = \"n1\"\naccelerators = [ { model = \"A800\", count = 2 } ]\n";
  struct Case {
    std::string text;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"executor = \"kubernetes\"\n" + node, "'executor' must be one of"},
           {"inventory = \"magic\"\n" + node, "'inventory' must be one of"},
           {node + "[slurm]\npartiton = \"gpu\"\n", "unknown key 'partiton'"},
           {node + "[nvml]\nlib = \"x\"\n", "unknown key 'lib'"},
           {node + "[slurm]\npoll_interval_ms = 1\n", "poll_interval_ms"},
           {node + "[slurm]\nextra_sbatch_args = \"--qos=x\"\n", "array of strings"},
           {node + "[slurm]\ngres_name = \"\"\n", "gres_name"},
           {"inventory = \"slurm\"\n" + node +
                "[slurm]\nshareable_partitions = [\"share\"]\n",
            "remove [[nodes]]"},
           {"inventory = \"slurm\"\n", "shareable_partitions"},
           {"inventory = \"nvml\"\n" + node + node, "at most one"},
           {"[[nodes]]\nname = \"n1\"\n", "'accelerators' must be an array"},
           {"", "at least one [[nodes]]"},
       }) {
    auto config = Parse(Header() + c.text);
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(config.status().message(), HasSubstr(c.error)) << c.text;
  }
}

TEST_F(SiteWiringTest, NvmlInventoryDescribesThisMachine) {
  const std::string fake = dir_.File("fake-nvml.txt");
  std::ofstream(fake) << "driver 535.104.05\n"
                         "gpu 00000000:07:00.0 81920 GPU-a NVIDIA A800-SXM4-80GB\n"
                         "gpu 00000000:0F:00.0 81920 GPU-b NVIDIA A800-SXM4-80GB\n";
  ::setenv("FAKE_NVML_CONFIG", fake.c_str(), 1);
  auto config = Parse(Header() +
                      "inventory = \"nvml\"\n"
                      "[nvml]\nlibrary = \"" COMPUTENET_FAKE_NVML "\"\n"
                      "[[nodes]]\nname = \"gpu-01\"\nfabric = \"nvl-1\"\n"
                      "cpu_cores = 96\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->nvml_library, COMPUTENET_FAKE_NVML);
  auto described = ResolveSiteInventory(&*config);
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  EXPECT_EQ(*described, "1 node(s), 2 card(s) from nvml");
  ASSERT_EQ(config->registration.nodes_size(), 1);
  const v1::Node& node = config->registration.nodes(0);
  EXPECT_EQ(node.name(), "gpu-01");
  EXPECT_EQ(node.fabric_id(), "nvl-1");
  EXPECT_EQ(node.cpu_cores(), 96u);
  EXPECT_GT(node.memory_mib(), 0u);  // from the OS
  ASSERT_EQ(node.accelerators_size(), 1);
  EXPECT_EQ(node.accelerators(0).model(), "A800");
  EXPECT_EQ(node.accelerators(0).count(), 2u);
}

TEST_F(SiteWiringTest, NvmlUnavailableFallsBackToListedAcceleratorsOrFails) {
  ::unsetenv("FAKE_NVML_CONFIG");  // the fake then acts as "no driver"
  const std::string nvml = "inventory = \"nvml\"\n[nvml]\nlibrary = \"" COMPUTENET_FAKE_NVML
                           "\"\n";
  auto listed = Parse(Header() + nvml +
                      "[[nodes]]\nname = \"n1\"\n"
                      "accelerators = [ { model = \"A800\", count = 4 } ]\n");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  auto described = ResolveSiteInventory(&*listed);
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  EXPECT_EQ(listed->registration.nodes(0).accelerators(0).count(), 4u);

  auto bare = Parse(Header() + nvml);
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  auto failed = ResolveSiteInventory(&*bare);
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(failed.status().message(), HasSubstr("nvmlInit failed"));
}

}  // namespace
}  // namespace computenet::provider
