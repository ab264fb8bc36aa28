// computenet-sim: the national-scale simulator (docs/simulation.md). Reads a
// topology, generates a seeded workload, runs each policy over it with the
// real matching, routing, advert and ledger-rule code, prints the policy
// table and writes the CSV files sim/plot.sh draws.
//
//   computenet-sim --topology sim/scenarios/national.toml --jobs 1000000
//                  [--policy all|local-only,...] [--seed N] [--load F]
//                  [--trace FILE] [--out DIR] [--check]
//
// --check verifies the invariants after each run (every job placed or
// refused with a reason, books summing to zero, clearing consistent, no job
// outside its allowed regions) and exits 1 on the first violation.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "computenet/matching/accelerator_catalog.h"
#include "computenet/sim/report.h"
#include "computenet/sim/simulator.h"
#include "computenet/sim/topology.h"
#include "computenet/sim/workload.h"

int main(int argc, char** argv) {
  namespace sim = computenet::sim;
  CLI::App app{
      "computenet-sim: simulate a federation of brokers with the real "
      "placement code"};
  std::string topology_path, policies = "all", out_dir;
  sim::WorkloadOptions workload_options;
  workload_options.trace_pods =
      std::string(COMPUTENET_SOURCE_DIR) +
      "/bench/data/alibaba-gpu-2023/openb_pod_list_default.csv";
  sim::SimOptions options;
  bool check = false;
  app.add_option("--topology", topology_path, "topology TOML file")->required();
  app.add_option("--jobs", workload_options.jobs, "jobs to generate");
  app.add_option("--seed", workload_options.seed, "workload seed");
  app.add_option("--load", workload_options.target_load,
                 "offered card-seconds / (cards x horizon)");
  app.add_option("--gang-fraction", workload_options.gang_fraction,
                 "share of gang jobs");
  app.add_option("--gang-nodes-min", workload_options.gang_nodes_min,
                 "smallest gang, nodes of 8");
  app.add_option("--gang-nodes-max", workload_options.gang_nodes_max,
                 "largest gang, nodes of 8");
  app.add_option("--stretch", workload_options.stretch,
                 "multiply trace run times");
  app.add_option("--trace", workload_options.trace_pods,
                 "openb pod list (CSV)");
  app.add_option("--policy", policies,
                 "all, or a comma-separated list of policies");
  app.add_option("--out", out_dir, "directory for the CSV files");
  app.add_option("--pass-interval-ms", options.pass_interval_ms,
                 "scheduling pass interval");
  app.add_option("--advert-interval-ms", options.advert_interval_ms,
                 "advert refresh interval");
  app.add_option(
      "--max-queued", options.max_queued_per_broker,
      "a broker refuses jobs while this many wait in its queue (0: no limit)");
  app.add_option("--reservation-steps", options.max_reservation_steps,
                 "JobQueueOptions::max_reservation_steps");
  app.add_flag("--check", check, "verify the invariants after each run");
  CLI11_PARSE(app, argc, argv);

  std::vector<sim::Policy> chosen;
  if (policies == "all") {
    chosen.assign(std::begin(sim::kAllPolicies), std::end(sim::kAllPolicies));
  } else {
    std::stringstream list(policies);
    std::string name;
    while (std::getline(list, name, ',')) {
      auto policy = sim::ParsePolicy(name);
      if (!policy) {
        std::fprintf(
            stderr,
            "computenet-sim: unknown policy '%s' (local-only, local-first, "
            "global-cheapest, wait-aware)\n",
            name.c_str());
        return 2;
      }
      chosen.push_back(*policy);
    }
  }
  auto catalog = computenet::matching::AcceleratorCatalog::BuiltIn();
  auto topology = sim::LoadTopology(topology_path, *catalog);
  if (!topology.ok()) {
    std::fprintf(stderr, "computenet-sim: %s\n",
                 topology.status().ToString().c_str());
    return 2;
  }
  auto workload = sim::GenerateWorkload(*topology, workload_options);
  if (!workload.ok()) {
    std::fprintf(stderr, "computenet-sim: %s\n",
                 workload.status().ToString().c_str());
    return 2;
  }
  std::printf("topology %s: %zu regions, %zu links, %zu sites, %llu cards\n",
              topology_path.c_str(), topology->regions.size(),
              topology->links.size(), topology->sites.size(),
              static_cast<unsigned long long>(topology->TotalCards()));
  uint64_t gangs = 0, inference = 0;
  for (const auto& job : workload->jobs) {
    gangs += job.kind == sim::JobKind::kGang;
    inference += job.kind == sim::JobKind::kInference;
  }
  std::printf(
      "workload: %zu jobs (%llu gangs, %llu region-restricted inference), "
      "arrivals over %.1f h, offered load %.2f\n",
      workload->jobs.size(), static_cast<unsigned long long>(gangs),
      static_cast<unsigned long long>(inference),
      static_cast<double>(workload->horizon_ms) / 3.6e6,
      workload_options.target_load);
  std::fflush(stdout);
  std::vector<sim::SimResult> results;
  int status = 0;
  for (sim::Policy policy : chosen) {
    auto result = sim::Simulate(*topology, *workload, policy, options);
    if (!result.ok()) {
      std::fprintf(stderr, "computenet-sim: %s: %s\n",
                   std::string(sim::PolicyName(policy)).c_str(),
                   result.status().ToString().c_str());
      return 1;
    }
    std::printf(
        "%s: %.1f s, %llu events, %llu passes, %llu decisions, %llu match "
        "calls\n",
        std::string(sim::PolicyName(policy)).c_str(), result->wall_seconds,
        static_cast<unsigned long long>(result->events),
        static_cast<unsigned long long>(result->passes),
        static_cast<unsigned long long>(result->decisions),
        static_cast<unsigned long long>(result->match_calls));
    {
      // The refusals by reason, most common first (the table counts them).
      std::vector<uint64_t> counts(result->reasons.size(), 0);
      for (const auto& outcome : result->outcomes) {
        if (outcome.refusal >= 0)
          ++counts[static_cast<size_t>(outcome.refusal)];
      }
      std::vector<size_t> order(counts.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return counts[a] > counts[b]; });
      for (size_t i = 0; i < order.size() && i < 5; ++i) {
        std::printf("  refused %llu: %s\n",
                    static_cast<unsigned long long>(counts[order[i]]),
                    result->reasons[order[i]].substr(0, 160).c_str());
      }
    }
    if (check) {
      auto invariants = sim::CheckInvariants(*topology, *workload, *result);
      if (!invariants.ok()) {
        std::fprintf(stderr, "computenet-sim: %s: invariant broken: %s\n",
                     std::string(sim::PolicyName(policy)).c_str(),
                     invariants.ToString().c_str());
        status = 1;
      } else {
        std::printf("%s: invariants hold\n",
                    std::string(sim::PolicyName(policy)).c_str());
      }
    }
    std::fflush(stdout);
    results.push_back(std::move(*result));
  }
  std::printf("\n%s", sim::PolicyTable(*topology, *workload, results).c_str());
  if (!out_dir.empty()) {
    std::error_code ignored;
    std::filesystem::create_directories(out_dir, ignored);
    auto written = sim::WriteCsv(out_dir, *topology, *workload, results);
    if (!written.ok()) {
      std::fprintf(stderr, "computenet-sim: %s\n", written.ToString().c_str());
      return 1;
    }
  }
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("\npeak RSS %.1f MiB\n",
              static_cast<double>(usage.ru_maxrss) / 1024.0);
  return status;
}
