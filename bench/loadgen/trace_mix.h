// TraceMix: the load generator's job mix and provider inventory, from the
// Alibaba GPU cluster trace (cluster-trace-gpu-v2023, "openb"):
// openb_pod_list_default.csv gives the jobs (GPU pods only; CPU-only pods
// are skipped), openb_node_list_gpu_node.csv (same directory, optional)
// the nodes the providers register. The pod-to-spec mapping is the one of
// bench/trace_replay.cc: gpu_milli < 1000 with one GPU is a fractional
// job, otherwise num_gpu whole cards; cpu/memory split per card; gpu_spec
// limits the models; qos gives the priority.
//
// Thread safety: immutable once loaded.
#ifndef COMPUTENET_BENCH_LOADGEN_TRACE_MIX_H_
#define COMPUTENET_BENCH_LOADGEN_TRACE_MIX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::loadgen {

struct TraceMix {
  std::string pod_path;
  std::vector<v1::JobSpec> jobs;  // one per GPU pod, trace order
  size_t cpu_only_pods = 0;       // skipped
  size_t fractional = 0;
  std::vector<v1::Node> nodes;    // from the node list (or synthesized)
  std::vector<v1::Price> prices;  // one per model
};

// bench/data/alibaba-gpu-2023/openb_pod_list_default.csv in the source
// tree if present, else ../shared/traces/alibaba-gpu-2023/... next to it.
std::string DefaultTracePath();

// path: the pod list CSV, or the directory holding it. Every job gets
// command {"true"}, max_duration_s = min(trace duration, max_duration_s)
// and max_price_per_card_hour as given (0 = none).
StatusOr<TraceMix> LoadTraceMix(const std::string& path,
                                uint32_t max_duration_s,
                                int64_t max_price_per_card_hour);

// The mix's nodes dealt round-robin to `count` registrations (site
// "<prefix>-<i>"), each priced at the list price + 10 * i.
std::vector<v1::RegisterProvider> DealProviders(const TraceMix& mix, int count,
                                                const std::string& prefix,
                                                const std::string& region);

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_TRACE_MIX_H_
