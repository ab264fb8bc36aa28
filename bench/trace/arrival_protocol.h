// The arrival protocol of "Beware of Fragmentation" (Weng et al., USENIX
// ATC '23), run through the real CapacityIndex, PlacementMatcher and
// JobQueue: pods are drawn at random, with replacement, from a pod list and
// submitted one at a time with no departures; a pod that does not fit on
// arrival fails (it is not retried). At each share of the cluster's GPU
// capacity that the arrived GPU demand reaches (100%, 110%, ...), the GPU
// allocation ratio (thousandths of cards held / cards) is recorded.
//
// Thread safety: stateless functions and a value-type draw; each run owns
// its index and queue, so runs may proceed on separate threads.
#ifndef COMPUTENET_BENCH_TRACE_ARRIVAL_PROTOCOL_H_
#define COMPUTENET_BENCH_TRACE_ARRIVAL_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "alibaba_trace.h"
#include "computenet/common/status.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::bench {

// Uniform draws of indices in [0, n), the same sequence for a seed on every
// platform (splitmix64 and a rejection step, not std:: distributions, whose
// output is implementation-defined).
class PodDraw {
 public:
  PodDraw(size_t n, uint64_t seed);
  size_t Next();

 private:
  uint64_t NextWord();
  size_t n_;
  uint64_t state_;
};

enum class Packing {
  kBestFit,         // the matcher without a workload summary
  // The paper's FGD: the pod list's task shapes, weighted by count, known
  // in advance.
  kGivenWorkload,
  // The broker's: shapes weighted by GPU demand, learned from the arrivals
  // so far (the queue's own WorkloadSummary).
  kLearnedWorkload,
};
const char* PackingName(Packing packing);

struct ArrivalOptions {
  // Shares of GPU capacity at which to record, ascending. Default 100..130.
  std::vector<uint32_t> shares_percent = {100, 110, 120, 130};
  uint64_t seed = 1;
  Packing packing = Packing::kLearnedWorkload;
};

struct SharePoint {
  uint32_t share_percent = 0;
  uint64_t arrived_milli = 0;    // GPU demand drawn so far
  uint64_t allocated_milli = 0;  // held when the share was reached
  uint64_t capacity_milli = 0;
  uint64_t pods = 0;    // drawn so far
  uint64_t failed = 0;  // of those, not placed on arrival
  double allocation() const {
    return capacity_milli == 0 ? 0
                               : static_cast<double>(allocated_milli) /
                                     static_cast<double>(capacity_milli);
  }
};

// One run of the protocol. INVALID_ARGUMENT if the pod list has no GPU pod,
// the shares are empty, not ascending or above 1000%, or a provider cannot
// be indexed; otherwise one point per share.
StatusOr<std::vector<SharePoint>> RunArrivalProtocol(
    const std::vector<v1::RegisterProvider>& providers,
    const std::vector<OpenbPod>& pods, const ArrivalOptions& options);

// "100,110,120" -> {100, 110, 120}; INVALID_ARGUMENT for anything else.
StatusOr<std::vector<uint32_t>> ParseShares(const std::string& text);

}  // namespace computenet::bench

#endif  // COMPUTENET_BENCH_TRACE_ARRIVAL_PROTOCOL_H_
