// The arrival protocol and the openb readers: deterministic draws for a
// seed, points at every share, packing compared on a small cluster, and a
// clear error for every malformed file.
#include "arrival_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "openb_jobs.h"

namespace computenet::bench {
namespace {

using ::testing::HasSubstr;

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/arrival_" +
                           std::to_string(getpid()) + "_" + name;
  std::ofstream(path) << text;
  return path;
}

std::vector<OpenbNode> Nodes(int count, uint32_t gpus, uint64_t cpu_milli) {
  std::vector<OpenbNode> nodes;
  for (int i = 0; i < count; ++i) {
    nodes.push_back({"node-" + std::to_string(i), cpu_milli, 262144, gpus, "V100M16"});
  }
  return nodes;
}

OpenbPod Pod(const std::string& name, uint32_t num_gpu, uint32_t gpu_milli,
             uint64_t cpu_milli) {
  OpenbPod pod;
  pod.name = name;
  pod.num_gpu = num_gpu;
  pod.gpu_milli = gpu_milli;
  pod.cpu_milli = cpu_milli;
  pod.memory_mib = 1024;
  return pod;
}

TEST(PodDrawTest, TheSameSeedDrawsTheSameSequenceAndEveryIndexComesUp) {
  PodDraw a(7, 42);
  PodDraw b(7, 42);
  PodDraw c(7, 43);
  std::vector<size_t> first;
  std::vector<size_t> other;
  std::set<size_t> seen;
  for (int i = 0; i < 200; ++i) {
    first.push_back(a.Next());
    EXPECT_EQ(first.back(), b.Next());
    other.push_back(c.Next());
    EXPECT_LT(first.back(), 7u);
    seen.insert(first.back());
  }
  EXPECT_NE(first, other);
  EXPECT_EQ(seen.size(), 7u);
  // Pinned (splitmix64 from the seed): the sequence may not change between
  // builds or platforms, or published figures could not be reproduced.
  PodDraw pinned(1000, 1);
  std::vector<size_t> head = {pinned.Next(), pinned.Next(), pinned.Next()};
  EXPECT_EQ(head, (std::vector<size_t>{465, 519, 590}));
}

class ArrivalProtocolTest : public ::testing::Test {
 protected:
  std::vector<OpenbPod> Mix() {
    return {Pod("whole", 1, 1000, 4000), Pod("big", 4, 1000, 8000),
            Pod("half", 1, 500, 2000), Pod("third", 1, 300, 2000),
            Pod("cpu-only", 0, 0, 1000)};
  }
};

TEST_F(ArrivalProtocolTest, RecordsEveryShareDeterministicallyForASeed) {
  const auto providers = OpenbProviders(Nodes(20, 4, 32000), 1, OpenbPricing::kUniform);
  ArrivalOptions options;
  options.shares_percent = {50, 100, 130};
  options.seed = 5;
  auto run = RunArrivalProtocol(providers, Mix(), options);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_EQ(run->size(), 3u);
  for (size_t i = 0; i < run->size(); ++i) {
    const SharePoint& point = (*run)[i];
    EXPECT_EQ(point.share_percent, options.shares_percent[i]);
    EXPECT_EQ(point.capacity_milli, 80'000u);
    EXPECT_GE(point.arrived_milli * 100, uint64_t{point.share_percent} * 80'000);
    EXPECT_LE(point.allocated_milli, point.arrived_milli);
    EXPECT_LE(point.allocated_milli, point.capacity_milli);
    if (i > 0) {
      EXPECT_GE(point.allocated_milli, (*run)[i - 1].allocated_milli);
    }
  }
  EXPECT_GT(run->back().failed, 0u) << "130% of capacity cannot all fit";
  auto again = RunArrivalProtocol(providers, Mix(), options);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < run->size(); ++i) {
    EXPECT_EQ((*again)[i].allocated_milli, (*run)[i].allocated_milli);
    EXPECT_EQ((*again)[i].pods, (*run)[i].pods);
  }
}

TEST_F(ArrivalProtocolTest, PackingForTheLearnedWorkloadBeatsBestFitOnTheShippedTrace) {
  // The openb trace shipped in bench/data, 100% of capacity arrived, two
  // seeds: packing by the learned workload allocates more than best fit in
  // each (about a point more; docs/performance.md has the full table).
  const std::string dir = std::string(COMPUTENET_SOURCE_DIR) + "/bench/data/alibaba-gpu-2023";
  auto nodes = ReadOpenbNodes(dir + "/openb_node_list_gpu_node.csv");
  auto pods = ReadOpenbPods(dir + "/openb_pod_list_default.csv");
  ASSERT_TRUE(nodes.ok() && pods.ok());
  const auto providers = OpenbProviders(*nodes, 1, OpenbPricing::kUniform);
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    ArrivalOptions options;
    options.shares_percent = {100};
    options.seed = seed;
    options.packing = Packing::kBestFit;
    auto best_fit = RunArrivalProtocol(providers, *pods, options);
    options.packing = Packing::kLearnedWorkload;
    auto learned = RunArrivalProtocol(providers, *pods, options);
    ASSERT_TRUE(best_fit.ok() && learned.ok());
    EXPECT_EQ(learned->back().pods, best_fit->back().pods) << "the same draws";
    EXPECT_GT(learned->back().allocated_milli, best_fit->back().allocated_milli)
        << "seed " << seed;
  }
}

TEST_F(ArrivalProtocolTest, RefusesWhatItCannotMeasure) {
  const auto providers = OpenbProviders(Nodes(2, 4, 32000), 1, OpenbPricing::kUniform);
  ArrivalOptions options;
  auto no_gpu = RunArrivalProtocol(providers, {Pod("cpu", 0, 0, 1000)}, options);
  EXPECT_EQ(no_gpu.status().code(), StatusCode::kInvalidArgument);
  options.shares_percent = {110, 100};
  EXPECT_EQ(RunArrivalProtocol(providers, Mix(), options).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseShares("100,90").status().message(), HasSubstr("ascending"));
  EXPECT_FALSE(ParseShares("100,x").ok());
  EXPECT_FALSE(ParseShares("").ok());
  auto shares = ParseShares("90,100,130");
  ASSERT_TRUE(shares.ok());
  EXPECT_EQ(*shares, (std::vector<uint32_t>{90, 100, 130}));
}

TEST(OpenbReaderTest, ReadsAListWithoutTimesAndGpuSpecConstraints) {
  const auto path = WriteFile("untimed.csv",
                              "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
                              "p0,8000,1024,1,500,V100M16|V100M32\n"
                              "p1,8000,1024,2,,\n");
  auto pods = ReadOpenbPods(path);
  ASSERT_TRUE(pods.ok()) << pods.status().ToString();
  ASSERT_EQ(pods->size(), 2u);
  EXPECT_FALSE((*pods)[0].timed);
  EXPECT_EQ((*pods)[1].gpu_milli, 1000u) << "gpu_milli empty = whole cards";
  const v1::JobSpec spec = OpenbSpec((*pods)[0], 1, 3600);
  ASSERT_EQ(spec.accelerator_models_size(), 2);
  EXPECT_EQ(spec.accelerator_models(1), "V100M32");
  EXPECT_EQ(spec.gpu_milli(), 500u);
}

TEST(OpenbReaderTest, NamesTheLineAndColumnOfAMalformedField) {
  auto bad_number = ReadOpenbPods(
      WriteFile("bad.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
                           "p0,8000,1024,1,500\n"
                           "p1,lots,1024,1,500\n"));
  EXPECT_EQ(bad_number.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_number.status().message(), HasSubstr(":3: column 'cpu_milli'"));
  auto missing = ReadOpenbPods(WriteFile("missing.csv", "name,cpu_milli\np0,1\n"));
  EXPECT_THAT(missing.status().message(), HasSubstr("no column 'memory_mib'"));
  auto share_on_many = ReadOpenbPods(
      WriteFile("share.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
                             "p0,1,1,2,500\n"));
  EXPECT_THAT(share_on_many.status().message(), HasSubstr("share of a card"));
  auto too_many_fields = ReadOpenbNodes(
      WriteFile("nodes.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2,T4,extra\n"));
  EXPECT_THAT(too_many_fields.status().message(), HasSubstr("6 fields"));
  auto backwards = ReadOpenbPods(WriteFile(
      "backwards.csv",
      "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time\n"
      "p0,1,1,1,1000,50,10\n"));
  EXPECT_THAT(backwards.status().message(), HasSubstr("before creation_time"));
  EXPECT_EQ(ReadOpenbPods("/nonexistent/pods.csv").status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace computenet::bench
