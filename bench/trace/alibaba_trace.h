// Reading the Alibaba cluster-trace-gpu-v2023 CSV files (bench/data/) and the
// figures the trace leaves out (per-card memory, list prices, and compute
// for the anonymized G2/G3 models), shared by trace_replay and loadgen.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_BENCH_TRACE_ALIBABA_TRACE_H_
#define COMPUTENET_BENCH_TRACE_ALIBABA_TRACE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "computenet/common/status.h"

namespace computenet::bench {

// One CSV row, by column name (missing trailing fields are empty).
using TraceRow = std::map<std::string, std::string>;

// The rows of a comma-separated file with a header line. NOT_FOUND if it
// cannot be opened.
StatusOr<std::vector<TraceRow>> ReadTraceCsv(const std::string& path);

// A decimal field; 0 when empty.
uint64_t TraceNumber(const std::string& text);

// One row of an openb node list (openb_node_list_*.csv).
struct OpenbNode {
  std::string name;  // sn
  uint64_t cpu_milli = 0;
  uint64_t memory_mib = 0;
  uint32_t gpus = 0;
  std::string model;
};

// One row of an openb pod list (openb_pod_list_*.csv). gpu_milli is per
// card: below 1000 with num_gpu 1, a share of one card.
struct OpenbPod {
  std::string name;
  uint64_t cpu_milli = 0;
  uint64_t memory_mib = 0;
  uint32_t num_gpu = 0;
  uint32_t gpu_milli = 0;
  std::string gpu_spec;  // "V100M16|V100M32": any of; empty = any
  std::string qos;
  bool timed = false;  // the list has creation_time and deletion_time
  int64_t creation_s = 0;
  int64_t deletion_s = 0;
  std::string organization = "openb";
  // Thousandths of a card the pod asks for in all.
  uint64_t GpuDemandMilli() const { return uint64_t{num_gpu} * gpu_milli; }
};

// The rows of a node list. NOT_FOUND if the file cannot be opened;
// INVALID_ARGUMENT naming the file, line and column for a missing column
// (sn, cpu_milli, memory_mib, gpu, model) or a field that is not a whole
// number in range.
StatusOr<std::vector<OpenbNode>> ReadOpenbNodes(const std::string& path);
// The rows of a pod list; columns name, cpu_milli, memory_mib, num_gpu and
// gpu_milli are required, gpu_spec, qos and the two time columns optional
// (a list without times can only be replayed by arrival protocols). A GPU
// pod with gpu_milli 0 asks for whole cards. Errors as ReadOpenbNodes, and
// INVALID_ARGUMENT for gpu_milli above 1000, a share of a card on more than
// one card, or a deletion before the creation.
StatusOr<std::vector<OpenbPod>> ReadOpenbPods(const std::string& path);

// Per-card memory and list prices (minor units per card-hour) of the
// trace's models. G2 and G3 are anonymized in the trace: not in the catalog,
// so the provider supplies figures (flagged unverified by the broker).
struct TraceModel {
  uint64_t memory_mib = 0;
  int64_t price = 0;
  uint64_t supplied_gflops = 0;  // only for models the catalog lacks
};
const std::map<std::string, TraceModel>& TraceModels();

}  // namespace computenet::bench

#endif  // COMPUTENET_BENCH_TRACE_ALIBABA_TRACE_H_
