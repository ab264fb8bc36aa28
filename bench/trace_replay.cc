// trace_replay: replays the Alibaba GPU cluster trace (cluster-trace-gpu-v2023,
// "openb") through the broker's REAL CapacityIndex, PlacementMatcher and
// JobQueue on a simulated clock, and prints placement decisions per second,
// the fraction of GPU-requesting tasks placed, the GPU allocation ratio at
// the moment the first task cannot be placed, and peak memory.
//
//   trace_replay [--trace-dir DIR] [--providers K] [--mode timeline|fill|both]
//                [--limit N] [--stretch F] [--repeat R] [--short]
//
// DIR defaults to $COMPUTENET_TRACE_DIR, else bench/data/alibaba-gpu-2023 in
// the repository (a copy of the trace; see its README). --short replays the
// first 1,000 GPU pods (the test command's form). Exits non-zero when the
// replay measured nothing (no GPU pod read, or none placed). Nodes (openb_node_list_gpu_node.csv) are dealt
// round-robin to K providers (default 4), each node its own fabric (the trace
// has no fabric data). Pods (openb_pod_list_default.csv) become jobs:
// gpu_milli < 1000 with num_gpu = 1 is a fractional job, otherwise num_gpu
// whole cards; cpu_milli and memory_mib are split per card; gpu_spec
// ("V100M16|V100M32") limits the models; qos maps to priority (Guaranteed
// HIGH, LS/Burstable NORMAL, BE LOW and preemptible); a job runs for
// deletion_time - creation_time seconds. CPU-only pods are counted and
// skipped: the network places accelerator work.
//
// Modes: "timeline" submits pods at creation_time and ends them after their
// duration (times F with --stretch F; --repeat R submits every pod R times,
// copy r for organization "org-r", to load the cluster beyond the trace:
// the trace as recorded never fills it); "fill" (the paper's fragmentation
// experiment) submits pods in order with no departures and drops each one
// that does not fit on arrival.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <queue>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "alibaba_trace.h"
#include "arrival_protocol.h"
#include "openb_jobs.h"
#include "computenet/matching/capacity_index.h"
#include "computenet/matching/job_queue.h"
#include "jobs/job_rules.h"
#include "computenet/matching/matcher.h"

namespace {

using computenet::FakeClock;
using computenet::Status;
namespace broker = computenet::broker;
namespace matching = computenet::matching;
namespace v1 = computenet::v1;

using computenet::bench::OpenbPod;
using PodRow = OpenbPod;

v1::JobSpec SpecOf(const PodRow& pod, int64_t stretch) {
  return computenet::bench::OpenbSpec(pod, stretch, broker::kMaxDurationSeconds);
}

struct Result {
  uint64_t gpu_jobs = 0;
  uint64_t placed = 0;
  uint64_t placed_on_arrival = 0;
  uint64_t passes = 0;
  uint64_t decisions = 0;  // jobs considered in passes
  uint64_t match_calls = 0;
  double pass_seconds = 0;
  bool failed = false;
  int64_t first_failure_s = 0;
  double allocation_at_first_failure = 0;
  std::string first_failure_pod;
  double final_allocation = 0;
  uint64_t still_queued = 0;  // never placed by the end of the replay
};

double AllocationRatio(const matching::CapacityIndex& index) {
  auto totals = index.Totals();
  if (totals.cards == 0) return 0;
  return static_cast<double>(totals.allocated_milli) /
         static_cast<double>(totals.cards * 1000);
}

Result Replay(const std::vector<v1::RegisterProvider>& providers,
              const std::vector<PodRow>& pods, bool departures,
              int64_t stretch) {
  auto clock = std::make_shared<FakeClock>(0);
  matching::CapacityIndex index;
  {
    matching::CapacityIndex::BulkUpdate bulk(index);
    for (size_t p = 0; p < providers.size(); ++p) {
      const std::string name = "provider-" + std::to_string(p);
      Status added = index.UpsertProvider(name, providers[p]);
      if (!added.ok()) {
        std::fprintf(stderr, "trace_replay: %s\n", added.ToString().c_str());
        std::exit(1);
      }
      index.SetOnline(name, true);
    }
  }
  matching::PlacementMatcher matcher;
  matching::JobQueueOptions options;
  matching::JobQueue queue(options, clock);

  Result result;
  using End = std::pair<int64_t, std::string>;
  std::priority_queue<End, std::vector<End>, std::greater<>> ends;
  std::map<std::string, int64_t> duration_ms;
  size_t next = 0;
  uint64_t sequence = 0;
  while (next < pods.size() || (departures && !ends.empty())) {
    int64_t now = INT64_MAX;
    if (next < pods.size()) now = pods[next].creation_s * 1000;
    if (departures && !ends.empty()) now = std::min(now, ends.top().first);
    clock->SetMs(now);
    if (departures) {
      while (!ends.empty() && ends.top().first <= now) {
        index.Release(ends.top().second);
        queue.MarkStopped(ends.top().second);
        ends.pop();
      }
    }
    std::vector<std::string> arrived;
    for (; next < pods.size() && pods[next].creation_s * 1000 == now; ++next) {
      const PodRow& pod = pods[next];
      matching::QueuedJob job;
      job.job_id = pod.name;
      job.organization = pod.organization;
      v1::JobSpec spec = SpecOf(pod, stretch);
      Status valid = broker::ValidateJobSpec(spec);
      if (!valid.ok()) {
        std::fprintf(stderr, "trace_replay: %s: %s\n", pod.name.c_str(),
                     valid.ToString().c_str());
        continue;
      }
      job.priority = spec.priority();
      job.submitted_ms = now;
      job.sequence = ++sequence;
      job.request = matching::PlacementRequest::FromSpec(spec);
      job.max_duration_s = spec.max_duration_s();
      duration_ms[pod.name] = int64_t{spec.max_duration_s()} * 1000;
      (void)queue.Add(std::move(job));
      arrived.push_back(pod.name);
      ++result.gpu_jobs;
    }
    if (queue.size() == 0) continue;
    const auto start = std::chrono::steady_clock::now();
    auto pass = queue.Schedule(index, matcher);
    result.pass_seconds += std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - start)
                               .count();
    ++result.passes;
    result.decisions +=
        pass.placed.size() + pass.waiting.size() + pass.never_fit.size();
    result.match_calls += pass.match_calls;
    std::set<std::string> placed_now;
    for (const auto& outcome : pass.placed) {
      ++result.placed;
      placed_now.insert(outcome.job_id);
      if (departures) ends.push({now + duration_ms[outcome.job_id], outcome.job_id});
    }
    for (const auto& id : arrived) {
      if (placed_now.count(id) != 0) {
        ++result.placed_on_arrival;
      } else if (!result.failed) {
        result.failed = true;
        result.first_failure_s = now / 1000;
        result.first_failure_pod = id;
        result.allocation_at_first_failure = AllocationRatio(index);
      }
    }
    // Without departures nothing frees up: a task that did not fit on
    // arrival never will (the paper counts it as a failure).
    if (!departures) {
      for (const auto& outcome : pass.waiting) queue.Remove(outcome.job_id);
    }
  }
  result.final_allocation = AllocationRatio(index);
  result.still_queued = queue.size();
  return result;
}

void Print(const char* mode, const Result& r) {
  std::printf("[%s] passes %llu, decisions %llu (match calls %llu) in %.3f s: "
              "%.0f decisions/s, %.0f placements/s\n",
              mode, static_cast<unsigned long long>(r.passes),
              static_cast<unsigned long long>(r.decisions),
              static_cast<unsigned long long>(r.match_calls), r.pass_seconds,
              r.pass_seconds > 0 ? static_cast<double>(r.decisions) / r.pass_seconds : 0,
              r.pass_seconds > 0 ? static_cast<double>(r.placed) / r.pass_seconds : 0);
  std::printf("[%s] GPU tasks placed: %llu / %llu = %.1f%% (%llu on arrival)\n",
              mode, static_cast<unsigned long long>(r.placed),
              static_cast<unsigned long long>(r.gpu_jobs),
              r.gpu_jobs ? 100.0 * static_cast<double>(r.placed) /
                               static_cast<double>(r.gpu_jobs)
                         : 0.0,
              static_cast<unsigned long long>(r.placed_on_arrival));
  if (r.failed) {
    std::printf("[%s] first task that could not be placed on arrival: %s at "
                "t=%lld s; GPU allocation ratio then: %.1f%%\n",
                mode, r.first_failure_pod.c_str(),
                static_cast<long long>(r.first_failure_s),
                100.0 * r.allocation_at_first_failure);
  } else {
    std::printf("[%s] every task was placed on arrival\n", mode);
  }
  std::printf("[%s] GPU allocation ratio at the end: %.1f%%; never placed: "
              "%llu\n",
              mode, 100.0 * r.final_allocation,
              static_cast<unsigned long long>(r.still_queued));
}

}  // namespace

template <typename T>
T OrExit(computenet::StatusOr<T> value) {
  if (!value.ok()) {
    std::fprintf(stderr, "trace_replay: %s\n", value.status().ToString().c_str());
    std::exit(2);
  }
  return std::move(*value);
}

// The arrival protocol, every seed, for each packing; the paper's figures
// beside ours. Returns false if a run failed.
bool RunProtocol(const std::vector<v1::RegisterProvider>& registrations,
                 const std::vector<PodRow>& pods, const std::vector<uint32_t>& shares,
                 int seeds, const std::vector<computenet::bench::Packing>& packings) {
  namespace cb = computenet::bench;
  // "Beware of Fragmentation" (Weng et al., ATC '23), default openb trace,
  // GPU allocation ratio at 100% arrival, mean over 10 seeds.
  const std::map<uint32_t, std::pair<double, double>> paper = {{100, {92.86, 95.23}}};
  std::printf("arrival protocol: pods drawn with replacement until the GPU demand "
              "reaches each share of capacity, no departures; %d seed(s)\n",
              seeds);
  std::printf("%-26s", "share of capacity arrived");
  for (uint32_t share : shares) std::printf(" %13u%%", share);
  std::printf("\n");
  bool ok = true;
  for (cb::Packing packing : packings) {
    std::vector<std::vector<double>> ratios(shares.size());
    const auto start = std::chrono::steady_clock::now();
    uint64_t decisions = 0;
    for (int seed = 1; seed <= seeds; ++seed) {
      cb::ArrivalOptions options;
      options.shares_percent = shares;
      options.seed = static_cast<uint64_t>(seed);
      options.packing = packing;
      auto points = cb::RunArrivalProtocol(registrations, pods, options);
      if (!points.ok()) {
        std::fprintf(stderr, "trace_replay: %s\n", points.status().ToString().c_str());
        ok = false;
        break;
      }
      for (size_t i = 0; i < points->size(); ++i) {
        ratios[i].push_back(100.0 * (*points)[i].allocation());
      }
      decisions += points->back().pods;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-26s", cb::PackingName(packing));
    for (const auto& values : ratios) {
      double mean = 0;
      for (double v : values) mean += v;
      mean /= static_cast<double>(std::max<size_t>(1, values.size()));
      double spread = 0;
      for (double v : values) spread = std::max(spread, std::abs(v - mean));
      std::printf("   %6.2f ±%4.2f", mean, spread);
    }
    std::printf("   (%llu decisions, %.1f s)\n", static_cast<unsigned long long>(decisions),
                seconds);
  }
  for (int column = 0; column < 2; ++column) {
    std::printf("%-26s", column == 0 ? "paper: BestFit" : "paper: FGD");
    for (uint32_t share : shares) {
      auto it = paper.find(share);
      if (it == paper.end()) {
        std::printf(" %14s", "-");
      } else {
        std::printf(" %14.2f", column == 0 ? it->second.first : it->second.second);
      }
    }
    std::printf("\n");
  }
  std::printf("(mean ± largest deviation from it over the seeds, %% of GPU capacity "
              "allocated; the paper quotes 100%% arrival only)\n");
  return ok;
}

int main(int argc, char** argv) {
  std::string dir;
  if (const char* env = std::getenv("COMPUTENET_TRACE_DIR")) dir = env;
  if (dir.empty()) {
    dir = std::string(COMPUTENET_SOURCE_DIR) + "/bench/data/alibaba-gpu-2023";
  }
  int providers = 0;  // 4 for replays, 1 (one cluster) for the protocol
  std::string mode = "both";
  size_t limit = SIZE_MAX;
  int64_t stretch = 1;
  int repeat = 1;
  std::string protocol;
  std::string arrival = "90,100,110,120,130";
  int seeds = 10;
  std::string packing_name = "all";
  std::string pricing_name;
  std::string pod_list = "openb_pod_list_default.csv";
  std::string node_list = "openb_node_list_gpu_node.csv";
  bool short_form = false;
  const char* usage_text =
      "usage: trace_replay [--trace-dir DIR] [--pods FILE] [--nodes FILE]\n"
      "                    [--providers K] [--pricing list|uniform]\n"
      "                    [--mode timeline|fill|both] [--limit N] [--stretch F]\n"
      "                    [--repeat R] [--short]\n"
      "       trace_replay --protocol fgd [--arrival 90,100,...] [--seeds N]\n"
      "                    [--packing all|bestfit|given|learned] [...]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "trace_replay: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--trace-dir") {
      dir = value();
    } else if (arg == "--pods") {
      pod_list = value();
    } else if (arg == "--nodes") {
      node_list = value();
    } else if (arg == "--providers") {
      providers = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--pricing") {
      pricing_name = value();
    } else if (arg == "--mode") {
      mode = value();
    } else if (arg == "--repeat") {
      repeat = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--stretch") {
      stretch = std::max<int64_t>(1, std::atoll(value().c_str()));
    } else if (arg == "--limit") {
      limit = static_cast<size_t>(std::atoll(value().c_str()));
    } else if (arg == "--protocol") {
      protocol = value();
    } else if (arg == "--arrival") {
      arrival = value();
    } else if (arg == "--seeds") {
      seeds = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--packing") {
      packing_name = value();
    } else if (arg == "--short") {
      short_form = true;
    } else {
      std::fprintf(stderr, "%s", usage_text);
      return 2;
    }
  }
  if (!protocol.empty() && protocol != "fgd") {
    std::fprintf(stderr, "trace_replay: --protocol is fgd (the paper's arrival protocol)\n");
    return 2;
  }
  if (providers == 0) providers = protocol.empty() ? 4 : 1;
  if (pricing_name.empty()) pricing_name = protocol.empty() ? "list" : "uniform";
  if (pricing_name != "list" && pricing_name != "uniform") {
    std::fprintf(stderr, "trace_replay: --pricing is list or uniform\n");
    return 2;
  }
  const auto pricing = pricing_name == "uniform" ? computenet::bench::OpenbPricing::kUniform
                                                 : computenet::bench::OpenbPricing::kTraceList;
  std::vector<computenet::bench::Packing> packings;
  using computenet::bench::Packing;
  if (packing_name == "all") {
    packings = {Packing::kBestFit, Packing::kGivenWorkload, Packing::kLearnedWorkload};
  } else if (packing_name == "bestfit") {
    packings = {Packing::kBestFit};
  } else if (packing_name == "given") {
    packings = {Packing::kGivenWorkload};
  } else if (packing_name == "learned") {
    packings = {Packing::kLearnedWorkload};
  } else {
    std::fprintf(stderr, "trace_replay: --packing is all, bestfit, given or learned\n");
    return 2;
  }
  auto in_dir = [&](const std::string& file) {
    return file.find('/') == std::string::npos ? dir + "/" + file : file;
  };
  std::vector<computenet::bench::OpenbNode> nodes;
  uint64_t gpus = 0;
  for (auto& node : OrExit(computenet::bench::ReadOpenbNodes(in_dir(node_list)))) {
    if (node.gpus == 0) continue;
    gpus += node.gpus;
    nodes.push_back(std::move(node));
  }
  std::vector<PodRow> pods;
  uint64_t cpu_only = 0;
  uint64_t fractional = 0;
  bool timed = true;
  if (short_form && protocol.empty()) limit = std::min<size_t>(limit, 1000);
  for (auto& pod : OrExit(computenet::bench::ReadOpenbPods(in_dir(pod_list)))) {
    if (pod.num_gpu == 0) {
      ++cpu_only;
      continue;
    }
    timed = timed && pod.timed;
    pods.push_back(std::move(pod));
    if (pods.size() >= limit) break;
  }
  if (repeat > 1) {
    const size_t original = pods.size();
    for (int r = 1; r < repeat; ++r) {
      for (size_t i = 0; i < original; ++i) {
        PodRow copy = pods[i];
        copy.name += "#" + std::to_string(r);
        copy.organization = "org-" + std::to_string(r);
        pods.push_back(std::move(copy));
      }
    }
    std::printf("every pod submitted %d times (copy r by organization org-r)\n",
                repeat);
  }
  for (const auto& pod : pods) {
    if (pod.num_gpu == 1 && pod.gpu_milli < 1000) ++fractional;
  }
  std::stable_sort(pods.begin(), pods.end(), [](const PodRow& a, const PodRow& b) {
    return a.creation_s < b.creation_s;
  });
  std::printf("trace %s (%s, %s)\n", dir.c_str(), node_list.c_str(), pod_list.c_str());
  std::printf("nodes %zu with %llu GPUs, dealt to %d provider(s), %s prices; pods: %zu GPU "
              "tasks (%llu fractional), %llu CPU-only skipped\n",
              nodes.size(), static_cast<unsigned long long>(gpus), providers,
              pricing_name.c_str(), pods.size(), static_cast<unsigned long long>(fractional),
              static_cast<unsigned long long>(cpu_only));
  if (mode != "timeline" && mode != "fill" && mode != "both") {
    std::fprintf(stderr, "trace_replay: --mode is timeline, fill or both\n");
    return 2;
  }
  if (nodes.empty() || pods.empty()) {
    std::fprintf(stderr, "trace_replay: no GPU nodes or GPU pods in %s: "
                         "nothing to measure\n", dir.c_str());
    return 1;
  }
  auto registrations = computenet::bench::OpenbProviders(nodes, providers, pricing);
  if (!protocol.empty()) {
    const auto shares = OrExit(computenet::bench::ParseShares(arrival));
    if (short_form) seeds = 1;
    return RunProtocol(registrations, pods, shares, seeds, packings) ? 0 : 1;
  }
  if (!timed && mode != "fill") {
    std::fprintf(stderr,
                 "trace_replay: %s has no creation_time/deletion_time columns: only "
                 "--mode fill and --protocol fgd can replay it\n",
                 pod_list.c_str());
    return 2;
  }
  bool measured = true;  // every mode run placed something
  if (mode == "timeline" || mode == "both") {
    if (stretch > 1) std::printf("[timeline] durations stretched %lldx\n",
                                 static_cast<long long>(stretch));
    Result result = Replay(registrations, pods, /*departures=*/true, stretch);
    Print("timeline", result);
    measured = measured && result.placed > 0 && result.decisions > 0;
  }
  if (mode == "fill" || mode == "both") {
    Result result = Replay(registrations, pods, /*departures=*/false, 1);
    Print("fill", result);
    measured = measured && result.placed > 0 && result.decisions > 0;
  }
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS %.1f MiB (getrusage ru_maxrss)\n",
              static_cast<double>(usage.ru_maxrss) / 1024.0);
  if (!measured) {
    std::fprintf(stderr, "trace_replay: a replay placed nothing\n");
    return 1;
  }
  return 0;
}
