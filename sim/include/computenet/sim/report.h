// The figures of a simulation run, per region and overall, as the policy
// table in docs/simulation.md shows them, and the CSV files the plot script
// (sim/plot.sh) draws.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_SIM_REPORT_H_
#define COMPUTENET_SIM_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/sim/simulator.h"

namespace computenet::sim {

struct RegionFigures {
  std::string region;      // "all" for the overall row
  double utilization = 0;  // of the cards there, over the arrival window
  double wait_p50_s = 0;   // of the jobs whose home it is
  double wait_p99_s = 0;
  double run_elsewhere = 0;  // share of its jobs that ran in another region
  uint64_t jobs = 0, ran = 0, refused = 0;
  uint64_t gangs_placed = 0, gangs_refused = 0;
  // What its consumers paid per A100-hour of compute, minor units.
  double cost_per_a100_hour = 0;
};

// One row per region, then "all".
std::vector<RegionFigures> Figures(const Topology& topology,
                                   const Workload& workload,
                                   const SimResult& result);

// A Markdown table of every policy's rows, then each policy's clearing
// matrix and its simulated span and run time.
std::string PolicyTable(const Topology& topology, const Workload& workload,
                        const std::vector<SimResult>& results);

// util_<policy>.csv (hours, then one column per region), waits_<policy>.csv
// (wait seconds, cumulative share of placed jobs), clearing_<policy>.csv
// (row owes column), summary.csv. INTERNAL if a file cannot be written.
Status WriteCsv(const std::string& dir, const Topology& topology,
                const Workload& workload,
                const std::vector<SimResult>& results);

}  // namespace computenet::sim

#endif  // COMPUTENET_SIM_REPORT_H_
