#include "computenet/sim/workload.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "alibaba_trace.h"

namespace computenet::sim {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

// Portable draws from the raw generator (see topology.cc).
double Uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}
uint64_t Below(std::mt19937_64& rng, uint64_t n) {
  return n == 0 ? 0 : rng() % n;
}

// Demand relative to the mean at time t: 1 + a sin, peaking at 14:00.
double Cycle(double amplitude, int64_t t_ms) {
  const double day =
      static_cast<double>(t_ms % kDayMs) / static_cast<double>(kDayMs);
  return 1.0 + amplitude * std::sin(2 * kPi * (day - 14.0 / 24.0 + 0.25));
}

}  // namespace

std::string JobId(uint32_t index) { return "j" + std::to_string(index); }

StatusOr<Workload> GenerateWorkload(const Topology& topology,
                                    const WorkloadOptions& options) {
  if (options.jobs == 0 || options.target_load <= 0 ||
      options.target_load > 10 || options.gang_fraction < 0 ||
      options.inference_fraction < 0 ||
      options.gang_fraction + options.inference_fraction > 1 ||
      options.daily_amplitude < 0 || options.daily_amplitude >= 1 ||
      options.gang_nodes_min == 0 ||
      options.gang_nodes_min > options.gang_nodes_max) {
    return InvalidArgumentError("workload options out of range");
  }
  const uint64_t cards = topology.TotalCards();
  if (cards == 0) return InvalidArgumentError("the topology has no cards");
  if (topology.regions.size() > 64) {
    return InvalidArgumentError("the simulator handles at most 64 regions");
  }
  CN_ASSIGN_OR_RETURN(auto pods, bench::ReadOpenbPods(options.trace_pods));
  std::vector<bench::OpenbPod> gpu_pods;
  for (auto& pod : pods) {
    if (pod.num_gpu > 0 && pod.timed && pod.deletion_s > pod.creation_s) {
      gpu_pods.push_back(std::move(pod));
    }
  }
  if (gpu_pods.empty()) {
    return InvalidArgumentError(options.trace_pods + ": no timed GPU pods");
  }

  Workload workload;
  // Any model; NVIDIA training cards; domestic training cards.
  workload.model_sets = {
      {}, {"H800", "H100", "A800", "A100"}, {"910B", "910C"}};
  std::mt19937_64 rng(options.seed);
  uint64_t weight_total = 0;
  for (const auto& region : topology.regions)
    weight_total += region.demand_weight;
  if (weight_total == 0)
    return InvalidArgumentError("every region has demand_weight 0");
  // Neighbours per region, for residency that allows home and one of them.
  std::vector<std::vector<uint16_t>> neighbours(topology.regions.size());
  for (const auto& link : topology.links) {
    auto a = *topology.RegionIndex(link.a), b = *topology.RegionIndex(link.b);
    neighbours[a].push_back(static_cast<uint16_t>(b));
    neighbours[b].push_back(static_cast<uint16_t>(a));
  }

  workload.jobs.resize(options.jobs);
  long double card_seconds = 0;
  for (auto& job : workload.jobs) {
    uint64_t pick = Below(rng, weight_total);
    for (size_t r = 0; r < topology.regions.size(); ++r) {
      if (pick < topology.regions[r].demand_weight) {
        job.home = static_cast<uint16_t>(r);
        break;
      }
      pick -= topology.regions[r].demand_weight;
    }
    job.organization = static_cast<uint16_t>(Below(rng, 16));
    const double kind = Uniform(rng);
    if (kind < options.gang_fraction) {
      job.kind = JobKind::kGang;
      job.nodes =
          options.gang_nodes_min +
          static_cast<uint32_t>(
              Below(rng, options.gang_nodes_max - options.gang_nodes_min + 1));
      job.cards_per_node = 8;
      job.runtime_ms = (60 + static_cast<int64_t>(Below(rng, 181))) * 60 * 1000;
      job.model_set = static_cast<uint8_t>(Below(rng, 3));
      job.priority = v1::PRIORITY_CLASS_HIGH;
    } else if (kind < options.gang_fraction + options.inference_fraction) {
      job.kind = JobKind::kInference;
      job.nodes = 1;
      job.cards_per_node = 1;
      if (Below(rng, 2) == 0) job.gpu_milli = 500;
      job.runtime_ms = (5 + static_cast<int64_t>(Below(rng, 56))) * 60 * 1000;
      job.allowed_mask = uint64_t{1} << job.home;
      if (!neighbours[job.home].empty() && Below(rng, 10) < 3) {
        job.allowed_mask |=
            uint64_t{1}
            << neighbours[job.home][Below(rng, neighbours[job.home].size())];
      }
      job.priority = v1::PRIORITY_CLASS_NORMAL;
    } else {
      const auto& pod = gpu_pods[Below(rng, gpu_pods.size())];
      job.kind = JobKind::kTrace;
      job.nodes = 1;
      if (pod.num_gpu == 1 && pod.gpu_milli > 0 && pod.gpu_milli < 1000) {
        job.cards_per_node = 1;
        job.gpu_milli = pod.gpu_milli;
      } else {
        job.cards_per_node = pod.num_gpu;
      }
      job.runtime_ms = std::clamp<int64_t>(pod.deletion_s - pod.creation_s, 60,
                                           options.max_trace_runtime_s) *
                       1000 * std::max<int64_t>(1, options.stretch);
      if (pod.qos == "Guaranteed") {
        job.priority = v1::PRIORITY_CLASS_HIGH;
      } else if (pod.qos == "BE") {
        job.priority = v1::PRIORITY_CLASS_LOW;
        job.preemptible = true;
      }
    }
    // Users over-declare: a quarter more than it runs, and five minutes.
    job.max_duration_s =
        static_cast<uint32_t>(job.runtime_ms / 1000 * 5 / 4 + 300);
    card_seconds += static_cast<long double>(job.DemandMilli()) / 1000.0L *
                    static_cast<long double>(job.runtime_ms) / 1000.0L;
  }
  workload.offered_card_seconds = static_cast<uint64_t>(card_seconds);
  const double horizon_s = static_cast<double>(card_seconds) /
                           (options.target_load * static_cast<double>(cards));
  workload.horizon_ms =
      std::max<int64_t>(1000, static_cast<int64_t>(horizon_s * 1000));

  // Arrival times on the daily cycle by rejection, then in order: the
  // shapes above are independent of time, so dealing sorted times to them
  // in turn keeps them random.
  std::vector<int64_t> times;
  times.reserve(options.jobs);
  const double peak = 1.0 + options.daily_amplitude;
  while (times.size() < options.jobs) {
    const int64_t t = static_cast<int64_t>(
        Uniform(rng) * static_cast<double>(workload.horizon_ms));
    if (Uniform(rng) * peak <= Cycle(options.daily_amplitude, t))
      times.push_back(t);
  }
  std::sort(times.begin(), times.end());
  for (size_t i = 0; i < workload.jobs.size(); ++i)
    workload.jobs[i].arrival_ms = times[i];
  return workload;
}

v1::JobSpec SpecOf(const SimJob& job, const Workload& workload,
                   const Topology& topology) {
  v1::JobSpec spec;
  spec.add_command("simulated");
  spec.set_nodes(job.nodes);
  spec.set_cards_per_node(job.cards_per_node);
  if (job.gpu_milli > 0) spec.set_gpu_milli(job.gpu_milli);
  spec.set_max_duration_s(job.max_duration_s);
  spec.set_priority(job.priority);
  spec.set_preemptible(job.preemptible);
  for (const auto& model : workload.model_sets[job.model_set]) {
    spec.add_accelerator_models(model);
  }
  for (size_t r = 0; r < topology.regions.size() && job.allowed_mask != 0;
       ++r) {
    if (job.Allows(r)) spec.add_allowed_regions(topology.regions[r].name);
  }
  return spec;
}

}  // namespace computenet::sim
