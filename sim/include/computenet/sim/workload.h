// Workload generator for computenet-sim: a seeded stream of jobs for a
// topology, mixing
//  - tasks drawn from the Alibaba GPU trace (cluster-trace-gpu-v2023,
//    openb pods: shares of a card or whole cards, their run times, qos as
//    priority; best-effort pods are preemptible),
//  - gang training jobs of hundreds to thousands of cards in one fabric,
//  - region-restricted inference (data residency: home only, or home and
//    one linked neighbour),
// arriving on a daily demand cycle. The horizon is chosen so that the
// offered card-seconds are target_load of the topology's cards over it.
//
// Jobs are kept compact (no protobuf per job): a million of them fit in
// tens of megabytes; SpecOf builds the v1::JobSpec when the real code needs
// one.
//
// Thread safety: plain values and stateless functions; safe from any thread.
#ifndef COMPUTENET_SIM_WORKLOAD_H_
#define COMPUTENET_SIM_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/sim/topology.h"
#include "computenet/v1/job.pb.h"

namespace computenet::sim {

enum class JobKind : uint8_t { kTrace = 0, kGang = 1, kInference = 2 };

struct SimJob {
  int64_t arrival_ms = 0;
  int64_t runtime_ms = 0;       // what it really runs
  uint32_t max_duration_s = 0;  // what it declares (>= runtime)
  uint32_t nodes = 1;
  uint32_t cards_per_node = 1;
  uint32_t gpu_milli = 0;     // > 0: a share of one card
  uint64_t allowed_mask = 0;  // regions by index; 0 = any
  uint16_t home = 0;          // region index
  uint16_t organization = 0;  // within the home region
  uint8_t model_set = 0;      // index into Workload::model_sets; 0 = any
  JobKind kind = JobKind::kTrace;
  v1::PriorityClass priority = v1::PRIORITY_CLASS_NORMAL;
  bool preemptible = false;
  // Thousandths of a card it holds.
  uint64_t DemandMilli() const {
    return gpu_milli > 0 ? gpu_milli : uint64_t{nodes} * cards_per_node * 1000;
  }
  bool Allows(size_t region) const {
    return allowed_mask == 0 || (allowed_mask >> region & 1) != 0;
  }
};

struct WorkloadOptions {
  uint64_t jobs = 10'000;
  uint64_t seed = 1;
  // Offered card-seconds over the horizon / (cards x horizon).
  double target_load = 0.7;
  // Shares of the job count; the rest come from the trace.
  double gang_fraction = 0.0002;
  double inference_fraction = 0.25;
  // Gangs: nodes of 8 cards, uniformly in [min, max], for 1-4 hours.
  uint32_t gang_nodes_min = 16;
  uint32_t gang_nodes_max = 256;
  // Daily cycle: arrival rate x (1 + amplitude sin(...)), peak at 14:00.
  double daily_amplitude = 0.5;
  // Trace tasks longer than this are cut to it (the trace's tail runs for
  // months; a simulation of days would be all tail).
  int64_t max_trace_runtime_s = 6 * 3600;
  // Trace run times are multiplied by this (after the cut): a national
  // network's jobs run longer than one cluster's pods.
  int64_t stretch = 1;
  std::string trace_pods;  // openb_pod_list_*.csv
};

struct Workload {
  std::vector<SimJob> jobs;  // by arrival time
  // Model lists a job may ask for (index 0: any model).
  std::vector<std::vector<std::string>> model_sets;
  int64_t horizon_ms = 0;
  uint64_t offered_card_seconds = 0;
};

// NOT_FOUND / INVALID_ARGUMENT from reading the trace; INVALID_ARGUMENT for
// options out of range or a topology without cards.
StatusOr<Workload> GenerateWorkload(const Topology& topology,
                                    const WorkloadOptions& options);

// The job as a consumer would submit it.
v1::JobSpec SpecOf(const SimJob& job, const Workload& workload,
                   const Topology& topology);

// "j<index>", the job's id in the queues and books.
std::string JobId(uint32_t index);

}  // namespace computenet::sim

#endif  // COMPUTENET_SIM_WORKLOAD_H_
