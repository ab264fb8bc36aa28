#include "computenet/matching/workload_summary.h"

#include <algorithm>

#include "computenet/matching/matcher.h"

namespace computenet::matching {

WorkloadSummary::WorkloadSummary(WorkloadSummaryOptions options)
    : options_(options) {
  options_.max_shapes = std::max<size_t>(1, options_.max_shapes);
  options_.max_tracked = std::max(options_.max_tracked, options_.max_shapes);
  options_.half_life_arrivals = std::max<uint64_t>(1, options_.half_life_arrivals);
}

std::optional<TaskShape> WorkloadSummary::ShapeOf(const PlacementRequest& request) {
  TaskShape shape;
  switch (request.shape) {
    case RequestShape::kComputeEquivalent:
      return std::nullopt;
    case RequestShape::kFractional:
      shape.gpu_milli = request.gpu_milli;
      shape.cards = 1;
      break;
    case RequestShape::kWholeCards:
      shape.gpu_milli = kWholeCardMilli;
      shape.cards = std::max<uint32_t>(1, request.cards_per_node);
      break;
  }
  shape.cpu_milli = uint64_t{request.cpu_milli_per_card} * shape.cards;
  shape.memory_mib = request.host_memory_mib_per_card * shape.cards;
  return shape;
}

void WorkloadSummary::Observe(const PlacementRequest& request) {
  const auto shape = ShapeOf(request);
  if (!shape) return;
  const uint64_t tasks =
      request.shape == RequestShape::kWholeCards ? std::max<uint32_t>(1, request.nodes) : 1;
  Add(*shape, tasks * DemandWeight(*shape));
  ++arrivals_;
  if (arrivals_ % options_.half_life_arrivals == 0) {
    for (auto it = weights_.begin(); it != weights_.end();) {
      it->second /= 2;
      it = it->second == 0 ? weights_.erase(it) : std::next(it);
    }
    dirty_ = true;
  }
}

void WorkloadSummary::Add(const TaskShape& shape, uint64_t weight) {
  if (weight == 0) return;
  uint64_t& stored = weights_[shape];
  stored = weight > UINT64_MAX / 4 - std::min(stored, UINT64_MAX / 4)
               ? UINT64_MAX / 4
               : stored + weight;
  dirty_ = true;
  if (weights_.size() > options_.max_tracked) Forget();
}

void WorkloadSummary::Forget() {
  // Keep the heavier half (ties by shape, so the result is deterministic).
  std::vector<WeightedShape> all;
  all.reserve(weights_.size());
  for (const auto& [shape, weight] : weights_) all.push_back({shape, weight});
  const size_t keep = options_.max_tracked / 2;
  std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep),
                   all.end(), [](const WeightedShape& a, const WeightedShape& b) {
                     return a.weight != b.weight ? a.weight > b.weight
                                                 : a.shape < b.shape;
                   });
  all.resize(keep);
  weights_.clear();
  for (const auto& kept : all) weights_.emplace(kept.shape, kept.weight);
}

const std::vector<WeightedShape>& WorkloadSummary::Top() const {
  if (!dirty_) return top_;
  dirty_ = false;
  top_.clear();
  top_.reserve(weights_.size());
  for (const auto& [shape, weight] : weights_) top_.push_back({shape, weight});
  auto heavier = [](const WeightedShape& a, const WeightedShape& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.shape < b.shape;
  };
  if (top_.size() > options_.max_shapes) {
    std::partial_sort(top_.begin(),
                      top_.begin() + static_cast<std::ptrdiff_t>(options_.max_shapes),
                      top_.end(), heavier);
    top_.resize(options_.max_shapes);
  } else {
    std::sort(top_.begin(), top_.end(), heavier);
  }
  return top_;
}

}  // namespace computenet::matching
