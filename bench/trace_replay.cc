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

struct NodeRow {
  std::string name;
  uint64_t cpu_milli = 0;
  uint64_t memory_mib = 0;
  uint32_t gpus = 0;
  std::string model;
};

struct PodRow {
  std::string name;
  uint64_t cpu_milli = 0;
  uint64_t memory_mib = 0;
  uint32_t num_gpu = 0;
  uint32_t gpu_milli = 0;
  std::string gpu_spec;
  std::string qos;
  int64_t creation_s = 0;
  int64_t deletion_s = 0;
  std::string organization = "openb";
};

using computenet::bench::TraceModels;
using computenet::bench::TraceNumber;

std::vector<computenet::bench::TraceRow> ReadCsv(const std::string& path) {
  auto rows = computenet::bench::ReadTraceCsv(path);
  if (!rows.ok()) {
    std::fprintf(stderr, "trace_replay: %s\n", rows.status().ToString().c_str());
    std::exit(2);
  }
  return std::move(*rows);
}

std::vector<v1::RegisterProvider> BuildProviders(const std::vector<NodeRow>& nodes,
                                                 int providers) {
  std::vector<v1::RegisterProvider> out(static_cast<size_t>(providers));
  for (int p = 0; p < providers; ++p) {
    auto& registration = out[static_cast<size_t>(p)];
    registration.set_site("openb-" + std::to_string(p));
    registration.set_region("trace");
    registration.set_currency("CNY");
    for (const auto& [model, info] : TraceModels()) {
      auto* price = registration.add_prices();
      price->set_model(model);
      // A little spread between providers so that ranking matters.
      price->set_per_card_hour(info.price + 10 * p);
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto& registration = out[i % out.size()];
    v1::Node* node = registration.add_nodes();
    node->set_name(nodes[i].name);
    node->set_cpu_cores(static_cast<uint32_t>(nodes[i].cpu_milli / 1000));
    node->set_memory_mib(nodes[i].memory_mib);
    auto* card = node->add_accelerators();
    card->set_model(nodes[i].model);
    card->set_count(nodes[i].gpus);
    auto info = TraceModels().find(nodes[i].model);
    if (info != TraceModels().end()) {
      card->set_memory_mib(info->second.memory_mib);
      if (info->second.supplied_gflops > 0) {
        card->set_measured_dense_gflops(info->second.supplied_gflops);
        card->set_vendor_class("nvidia");
        card->set_vendor("anonymized in the trace");
      }
    }
  }
  return out;
}

v1::JobSpec SpecOf(const PodRow& pod, int64_t stretch) {
  v1::JobSpec spec;
  spec.add_command("replay");
  const uint32_t cards = std::max<uint32_t>(1, pod.num_gpu);
  if (pod.num_gpu == 1 && pod.gpu_milli > 0 && pod.gpu_milli < 1000) {
    spec.set_gpu_milli(pod.gpu_milli);
    spec.set_cards_per_node(1);
  } else {
    spec.set_cards_per_node(cards);
  }
  spec.set_nodes(1);
  spec.set_cpu_milli_per_card(static_cast<uint32_t>(pod.cpu_milli / cards));
  spec.set_host_memory_mib_per_card(pod.memory_mib / cards);
  std::stringstream models(pod.gpu_spec);
  std::string model;
  while (std::getline(models, model, '|')) {
    if (!model.empty()) spec.add_accelerator_models(model);
  }
  if (pod.qos == "Guaranteed") {
    spec.set_priority(v1::PRIORITY_CLASS_HIGH);
  } else if (pod.qos == "BE") {
    spec.set_priority(v1::PRIORITY_CLASS_LOW);
    spec.set_preemptible(true);
  } else {
    spec.set_priority(v1::PRIORITY_CLASS_NORMAL);
  }
  const int64_t duration =
      std::max<int64_t>(1, (pod.deletion_s - pod.creation_s) * stretch);
  spec.set_max_duration_s(static_cast<uint32_t>(
      std::min<int64_t>(duration, broker::kMaxDurationSeconds)));
  return spec;
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

int main(int argc, char** argv) {
  std::string dir;
  if (const char* env = std::getenv("COMPUTENET_TRACE_DIR")) dir = env;
  if (dir.empty()) {
    dir = std::string(COMPUTENET_SOURCE_DIR) + "/bench/data/alibaba-gpu-2023";
  }
  int providers = 4;
  std::string mode = "both";
  size_t limit = SIZE_MAX;
  int64_t stretch = 1;
  int repeat = 1;
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
    } else if (arg == "--providers") {
      providers = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--mode") {
      mode = value();
    } else if (arg == "--repeat") {
      repeat = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--stretch") {
      stretch = std::max<int64_t>(1, std::atoll(value().c_str()));
    } else if (arg == "--limit") {
      limit = static_cast<size_t>(std::atoll(value().c_str()));
    } else if (arg == "--short") {
      limit = 1000;
    } else {
      std::fprintf(stderr,
                   "usage: trace_replay [--trace-dir DIR] [--providers K] "
                   "[--mode timeline|fill|both] [--limit N] [--stretch F] "
                   "[--repeat R] [--short]\n");
      return 2;
    }
  }
  std::vector<NodeRow> nodes;
  uint64_t gpus = 0;
  for (auto& row : ReadCsv(dir + "/openb_node_list_gpu_node.csv")) {
    NodeRow node{row["sn"], TraceNumber(row["cpu_milli"]), TraceNumber(row["memory_mib"]),
                 static_cast<uint32_t>(TraceNumber(row["gpu"])), row["model"]};
    if (node.gpus == 0) continue;
    gpus += node.gpus;
    nodes.push_back(std::move(node));
  }
  std::vector<PodRow> pods;
  uint64_t cpu_only = 0;
  uint64_t fractional = 0;
  for (auto& row : ReadCsv(dir + "/openb_pod_list_default.csv")) {
    PodRow pod{row["name"],
               TraceNumber(row["cpu_milli"]),
               TraceNumber(row["memory_mib"]),
               static_cast<uint32_t>(TraceNumber(row["num_gpu"])),
               static_cast<uint32_t>(TraceNumber(row["gpu_milli"])),
               row["gpu_spec"],
               row["qos"],
               static_cast<int64_t>(TraceNumber(row["creation_time"])),
               static_cast<int64_t>(TraceNumber(row["deletion_time"]))};
    if (pod.num_gpu == 0) {
      ++cpu_only;
      continue;
    }
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
  std::printf("trace %s\n", dir.c_str());
  std::printf("nodes %zu with %llu GPUs, dealt to %d provider(s); pods: %zu GPU "
              "tasks (%llu fractional), %llu CPU-only skipped\n",
              nodes.size(), static_cast<unsigned long long>(gpus), providers,
              pods.size(), static_cast<unsigned long long>(fractional),
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
  auto registrations = BuildProviders(nodes, providers);
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
