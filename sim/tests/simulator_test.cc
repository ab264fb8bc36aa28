// The simulator over the short scenario, through the library: every policy
// keeps the invariants, and the policies differ the way their rules say.
#include "computenet/sim/simulator.h"

#include <gtest/gtest.h>

#include "computenet/sim/report.h"

namespace computenet::sim {
namespace {

class SimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto topology = LoadTopology(
        std::string(COMPUTENET_SOURCE_DIR) + "/sim/scenarios/short.toml",
        *matching::AcceleratorCatalog::BuiltIn());
    ASSERT_TRUE(topology.ok()) << topology.status().ToString();
    topology_ = *topology;
    WorkloadOptions options;
    options.jobs = 1500;
    options.seed = 11;
    options.gang_fraction = 0.01;
    options.gang_nodes_max = 96;  // some fit the 64-node fabric, some never
    options.trace_pods =
        std::string(COMPUTENET_SOURCE_DIR) +
        "/bench/data/alibaba-gpu-2023/openb_pod_list_default.csv";
    auto workload = GenerateWorkload(topology_, options);
    ASSERT_TRUE(workload.ok()) << workload.status().ToString();
    workload_ = std::move(*workload);
  }

  SimResult Run(Policy policy) {
    auto result = Simulate(topology_, workload_, policy, SimOptions{});
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? std::move(*result) : SimResult{};
  }

  Topology topology_;
  Workload workload_;
};

TEST_F(SimulatorTest, WorkloadIsSeededAndOrdered) {
  ASSERT_EQ(workload_.jobs.size(), 1500u);
  for (size_t i = 1; i < workload_.jobs.size(); ++i) {
    EXPECT_LE(workload_.jobs[i - 1].arrival_ms, workload_.jobs[i].arrival_ms);
  }
  uint64_t gangs = 0, restricted = 0;
  for (const auto& job : workload_.jobs) {
    EXPECT_GE(static_cast<int64_t>(job.max_duration_s) * 1000, job.runtime_ms);
    gangs += job.kind == JobKind::kGang;
    restricted += job.allowed_mask != 0;
  }
  EXPECT_GT(gangs, 0u);
  EXPECT_GT(restricted, 0u);
}

TEST_F(SimulatorTest, EveryPolicyKeepsTheInvariants) {
  for (Policy policy : kAllPolicies) {
    SimResult result = Run(policy);
    Status invariants = CheckInvariants(topology_, workload_, result);
    EXPECT_TRUE(invariants.ok())
        << PolicyName(policy) << ": " << invariants.ToString();
    uint64_t ran = 0;
    for (const auto& outcome : result.outcomes) ran += outcome.start_ms >= 0;
    EXPECT_GT(ran, workload_.jobs.size() / 2) << PolicyName(policy);
  }
}

TEST_F(SimulatorTest, LocalOnlyNeverLeavesHomeAndOthersForward) {
  SimResult local = Run(Policy::kLocalOnly);
  for (size_t i = 0; i < workload_.jobs.size(); ++i) {
    if (local.outcomes[i].start_ms >= 0) {
      EXPECT_EQ(local.outcomes[i].region, workload_.jobs[i].home);
    }
  }
  EXPECT_EQ(local.forwards, 0u);
  for (const auto& row : local.clearing) {
    for (int64_t owed : row) EXPECT_EQ(owed, 0);
  }
  SimResult cheapest = Run(Policy::kGlobalCheapest);
  EXPECT_GT(cheapest.forwards, 0u);
  int64_t owed = 0;
  for (const auto& row : cheapest.clearing) {
    for (int64_t value : row) owed += value;
  }
  EXPECT_GT(owed, 0);
}

TEST_F(SimulatorTest, BrokenBooksAreCaught) {
  SimResult result = Run(Policy::kLocalFirst);
  ASSERT_TRUE(CheckInvariants(topology_, workload_, result).ok());
  SimResult unbalanced = result;
  unbalanced.books[0]["consumer:x"] += 1;
  EXPECT_EQ(CheckInvariants(topology_, workload_, unbalanced).code(),
            StatusCode::kFailedPrecondition);
  SimResult misplaced = result;
  for (size_t i = 0; i < workload_.jobs.size(); ++i) {
    const SimJob& job = workload_.jobs[i];
    if (job.allowed_mask != 0 && misplaced.outcomes[i].start_ms >= 0) {
      for (size_t r = 0; r < topology_.regions.size(); ++r) {
        if (!job.Allows(r))
          misplaced.outcomes[i].region = static_cast<int16_t>(r);
      }
      break;
    }
  }
  EXPECT_EQ(CheckInvariants(topology_, workload_, misplaced).code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(SimulatorTest, SameSeedSameFigures) {
  SimResult a = Run(Policy::kWaitAware);
  SimResult b = Run(Policy::kWaitAware);
  ASSERT_EQ(a.outcomes.size(), b.outcomes.size());
  for (size_t i = 0; i < a.outcomes.size(); ++i) {
    EXPECT_EQ(a.outcomes[i].start_ms, b.outcomes[i].start_ms);
    EXPECT_EQ(a.outcomes[i].region, b.outcomes[i].region);
    EXPECT_EQ(a.outcomes[i].charge, b.outcomes[i].charge);
  }
  EXPECT_EQ(a.clearing, b.clearing);
}

}  // namespace
}  // namespace computenet::sim
