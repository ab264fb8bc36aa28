// WorkloadSummary: the shapes of the requests a broker sees, weighted by how
// often they arrive, so the matcher can pack by expected fragmentation
// (docs/matching.md, "Packing"). A shape is what one task asks of one node:
// a share of a card or a number of whole cards, and the host CPU and memory
// that go with them.
//
// The weights are learned online from arrivals (the broker's queue counts
// every job it is given) and decay, so the summary follows the demand of the
// last few thousand arrivals rather than a distribution fixed in advance; a
// caller that knows the distribution can Add it directly.
//
// A shape weighs its GPU demand, not its count: each arrival adds the
// thousandths of a card it asks for (DemandWeight, times its nodes), so an
// 8-card task counts eight times a 1-card one. FGD as published weighs task
// types by count; by demand, the packing protects whole nodes for the tasks
// that hold most of the cards (docs/performance.md has both measured).
// Integer weights; every half_life_arrivals arrivals all weights halve.
//
// Thread safety: not thread-safe, not even for concurrent const readers
// (Top() caches its answer); owned by one thread, like the CapacityIndex.
#ifndef COMPUTENET_MATCHING_WORKLOAD_SUMMARY_H_
#define COMPUTENET_MATCHING_WORKLOAD_SUMMARY_H_

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace computenet::matching {

struct PlacementRequest;

// What one task asks of one node.
struct TaskShape {
  // Per card: below 1000, a share of one card; 1000, whole cards.
  uint32_t gpu_milli = 1000;
  uint32_t cards = 1;  // whole cards on the node (1 for a share)
  uint64_t cpu_milli = 0;   // host CPU for the whole task on the node
  uint64_t memory_mib = 0;  // host memory for the whole task on the node
  auto operator<=>(const TaskShape&) const = default;
};

struct WeightedShape {
  TaskShape shape;
  uint64_t weight = 0;
};

struct WorkloadSummaryOptions {
  // Shapes the matcher weighs (the heaviest). Each costs the matcher a few
  // operations per candidate node. Default 32.
  size_t max_shapes = 32;
  // Distinct shapes remembered; when full, the lighter half is forgotten.
  // Default 1,024.
  size_t max_tracked = 1024;
  // Weights halve every this many arrivals. Default 4,096.
  uint64_t half_life_arrivals = 4096;
};

class WorkloadSummary {
 public:
  explicit WorkloadSummary(WorkloadSummaryOptions options = {});

  // Counts one arrival. A gang counts one task per node; a compute-
  // equivalence request is not counted (its shape depends on the cards it
  // lands on).
  void Observe(const PlacementRequest& request);
  // The shape one node of the request asks for; nullopt for compute
  // equivalence.
  static std::optional<TaskShape> ShapeOf(const PlacementRequest& request);
  // Thousandths of a card one task of the shape asks for.
  static uint64_t DemandWeight(const TaskShape& shape) {
    return uint64_t{shape.cards} * shape.gpu_milli;
  }
  // Adds weight to a shape directly (a distribution known in advance).
  void Add(const TaskShape& shape, uint64_t weight);

  // The heaviest max_shapes shapes, heaviest first (ties by shape);
  // empty before anything was observed or added.
  const std::vector<WeightedShape>& Top() const;
  uint64_t arrivals() const { return arrivals_; }
  size_t tracked() const { return weights_.size(); }

 private:
  void Forget();

  WorkloadSummaryOptions options_;
  std::map<TaskShape, uint64_t> weights_;
  uint64_t arrivals_ = 0;
  mutable std::vector<WeightedShape> top_;
  mutable bool dirty_ = false;
};

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_WORKLOAD_SUMMARY_H_
