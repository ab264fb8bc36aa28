#include "computenet/sim/report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace computenet::sim {
namespace {

double Percentile(std::vector<int64_t>& values, double p) {
  if (values.empty()) return 0;
  const size_t k =
      std::min(values.size() - 1,
               static_cast<size_t>(p * static_cast<double>(values.size())));
  std::nth_element(values.begin(),
                   values.begin() + static_cast<std::ptrdiff_t>(k),
                   values.end());
  return static_cast<double>(values[k]) / 1000.0;
}

std::string Fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string Duration(double seconds) {
  if (seconds < 120) return Fixed(seconds, 0) + " s";
  if (seconds < 7200) return Fixed(seconds / 60, 1) + " min";
  return Fixed(seconds / 3600, 1) + " h";
}

}  // namespace

std::vector<RegionFigures> Figures(const Topology& topology,
                                   const Workload& workload,
                                   const SimResult& result) {
  const size_t regions = topology.regions.size();
  std::vector<RegionFigures> rows(regions + 1);
  std::vector<std::vector<int64_t>> waits(regions + 1);
  std::vector<long double> paid(regions + 1, 0), a100_hours(regions + 1, 0);
  std::vector<uint64_t> elsewhere(regions + 1, 0);
  for (size_t i = 0; i < workload.jobs.size(); ++i) {
    const SimJob& job = workload.jobs[i];
    const JobOutcome& outcome = result.outcomes[i];
    for (size_t row : {static_cast<size_t>(job.home), regions}) {
      RegionFigures& f = rows[row];
      ++f.jobs;
      if (outcome.start_ms < 0) {
        ++f.refused;
        if (job.kind == JobKind::kGang) ++f.gangs_refused;
        continue;
      }
      ++f.ran;
      if (job.kind == JobKind::kGang) ++f.gangs_placed;
      if (outcome.region != job.home) ++elsewhere[row];
      waits[row].push_back(outcome.start_ms - job.arrival_ms);
      paid[row] += static_cast<long double>(outcome.charge);
      a100_hours[row] +=
          static_cast<long double>(outcome.a100_milli) / 1000.0L *
          static_cast<long double>(outcome.end_ms - outcome.start_ms) /
          3'600'000.0L;
    }
  }
  const long double span = static_cast<long double>(result.window_ms);
  long double busy_all = 0, cards_all = 0;
  for (size_t r = 0; r <= regions; ++r) {
    RegionFigures& f = rows[r];
    f.region = r < regions ? topology.regions[r].name : "all";
    if (r < regions) {
      busy_all += result.busy_milli_ms[r];
      cards_all += static_cast<long double>(result.cards[r]);
      f.utilization =
          result.cards[r] == 0 || span <= 0
              ? 0
              : static_cast<double>(result.busy_milli_ms[r] /
                                    (static_cast<long double>(result.cards[r]) *
                                     1000.0L * span));
    } else {
      f.utilization =
          cards_all == 0 || span <= 0
              ? 0
              : static_cast<double>(busy_all / (cards_all * 1000.0L * span));
    }
    f.wait_p50_s = Percentile(waits[r], 0.50);
    f.wait_p99_s = Percentile(waits[r], 0.99);
    f.run_elsewhere = f.ran == 0 ? 0
                                 : static_cast<double>(elsewhere[r]) /
                                       static_cast<double>(f.ran);
    f.cost_per_a100_hour =
        a100_hours[r] <= 0 ? 0 : static_cast<double>(paid[r] / a100_hours[r]);
  }
  return rows;
}

std::string PolicyTable(const Topology& topology, const Workload& workload,
                        const std::vector<SimResult>& results) {
  std::ostringstream out;
  out << "| policy | region | utilization | wait p50 | wait p99 | run in "
         "another region "
         "| gangs placed / refused | jobs refused | cost per A100-hour |\n"
      << "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& result : results) {
    for (const auto& f : Figures(topology, workload, result)) {
      const bool all = f.region == "all";
      auto bold = [&](const std::string& text) {
        return all ? "**" + text + "**" : text;
      };
      out << "| " << PolicyName(result.policy) << " | " << bold(f.region)
          << " | " << bold(Fixed(100 * f.utilization, 1) + "%") << " | "
          << bold(Duration(f.wait_p50_s)) << " | "
          << bold(Duration(f.wait_p99_s)) << " | "
          << bold(Fixed(100 * f.run_elsewhere, 1) + "%") << " | "
          << bold(std::to_string(f.gangs_placed) + " / " +
                  std::to_string(f.gangs_refused))
          << " | " << bold(std::to_string(f.refused)) << " | "
          << bold(Fixed(f.cost_per_a100_hour, 1)) << " |\n";
    }
  }
  out << "\n| policy | simulated span | last arrival | forwards | declined "
         "forwards | "
         "scheduling passes | events | run time "
         "|\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& result : results) {
    out << "| " << PolicyName(result.policy) << " | "
        << Duration(static_cast<double>(result.end_ms) / 1000) << " | "
        << Duration(static_cast<double>(workload.jobs.empty()
                                            ? 0
                                            : workload.jobs.back().arrival_ms) /
                    1000)
        << " | " << result.forwards << " | " << result.declines << " | "
        << result.passes << " | " << result.events << " | "
        << Fixed(result.wall_seconds, 1) << " s |\n";
  }
  for (const auto& result : results) {
    if (result.policy == Policy::kLocalOnly) continue;
    out << "\nClearing matrix, " << PolicyName(result.policy)
        << " (row owes column, thousands of minor units):\n\n| owes \\ to |";
    for (const auto& region : topology.regions)
      out << " " << region.name << " |";
    out << "\n|---|";
    for (size_t r = 0; r < topology.regions.size(); ++r) out << "---:|";
    out << "\n";
    for (size_t h = 0; h < topology.regions.size(); ++h) {
      out << "| " << topology.regions[h].name << " |";
      for (size_t r = 0; r < topology.regions.size(); ++r) {
        out << " "
            << (h == r ? "-" : std::to_string(result.clearing[h][r] / 1000))
            << " |";
      }
      out << "\n";
    }
  }
  return out.str();
}

Status WriteCsv(const std::string& dir, const Topology& topology,
                const Workload& workload,
                const std::vector<SimResult>& results) {
  auto open = [&](const std::string& name, std::ofstream& file) -> Status {
    file.open(dir + "/" + name);
    if (!file) return InternalError("cannot write " + dir + "/" + name);
    return OkStatus();
  };
  std::ofstream summary;
  CN_RETURN_IF_ERROR(open("summary.csv", summary));
  summary << "policy,region,utilization,wait_p50_s,wait_p99_s,run_elsewhere,"
             "gangs_placed,"
             "gangs_refused,refused,cost_per_a100_hour\n";
  for (const auto& result : results) {
    const std::string name(PolicyName(result.policy));
    for (const auto& f : Figures(topology, workload, result)) {
      summary << name << "," << f.region << "," << f.utilization << ","
              << f.wait_p50_s << "," << f.wait_p99_s << "," << f.run_elsewhere
              << "," << f.gangs_placed << "," << f.gangs_refused << ","
              << f.refused << "," << f.cost_per_a100_hour << "\n";
    }
    std::ofstream util;
    CN_RETURN_IF_ERROR(open("util_" + name + ".csv", util));
    util << "hours";
    for (const auto& region : topology.regions) util << "," << region.name;
    util << "\n";
    for (const auto& [t, values] : result.samples) {
      util << static_cast<double>(t) / 3'600'000.0;
      for (double v : values) util << "," << v;
      util << "\n";
    }
    std::ofstream waits;
    CN_RETURN_IF_ERROR(open("waits_" + name + ".csv", waits));
    std::vector<int64_t> all;
    for (size_t i = 0; i < workload.jobs.size(); ++i) {
      if (result.outcomes[i].start_ms >= 0) {
        all.push_back(result.outcomes[i].start_ms -
                      workload.jobs[i].arrival_ms);
      }
    }
    std::sort(all.begin(), all.end());
    waits << "wait_s,share\n";
    const size_t points = std::min<size_t>(all.size(), 400);
    for (size_t k = 0; k < points; ++k) {
      const size_t i = (all.size() - 1) * k / std::max<size_t>(1, points - 1);
      waits << static_cast<double>(all[i]) / 1000.0 << ","
            << static_cast<double>(i + 1) / static_cast<double>(all.size())
            << "\n";
    }
    std::ofstream clearing;
    CN_RETURN_IF_ERROR(open("clearing_" + name + ".csv", clearing));
    // Matrix form for gnuplot's "matrix with image": row = owes, column = to.
    for (size_t h = 0; h < topology.regions.size(); ++h) {
      for (size_t r = 0; r < topology.regions.size(); ++r) {
        clearing << (r ? " " : "") << result.clearing[h][r];
      }
      clearing << "\n";
    }
  }
  std::ofstream regions;
  CN_RETURN_IF_ERROR(open("regions.txt", regions));
  for (const auto& region : topology.regions) regions << region.name << "\n";
  return OkStatus();
}

}  // namespace computenet::sim
