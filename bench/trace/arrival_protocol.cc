#include "arrival_protocol.h"

#include <memory>
#include <sstream>

#include "computenet/common/clock.h"
#include "computenet/matching/capacity_index.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/matcher.h"
#include "openb_jobs.h"

namespace computenet::bench {
namespace {

namespace matching = computenet::matching;

// The broker's limit on a job's duration does not matter here (no
// departures); any positive bound keeps the specs valid.
constexpr uint32_t kDurationBound = 30 * 24 * 3600;

}  // namespace

PodDraw::PodDraw(size_t n, uint64_t seed) : n_(n), state_(seed) {}

uint64_t PodDraw::NextWord() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

size_t PodDraw::Next() {
  if (n_ <= 1) return 0;
  // Reject the top partial range so every index is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n_;
  uint64_t word = NextWord();
  while (word >= limit) word = NextWord();
  return static_cast<size_t>(word % n_);
}

const char* PackingName(Packing packing) {
  switch (packing) {
    case Packing::kBestFit:
      return "best fit";
    case Packing::kGivenWorkload:
      return "FGD (as published)";
    case Packing::kLearnedWorkload:
      return "ComputeNet (learned FGD)";
  }
  return "?";
}

StatusOr<std::vector<uint32_t>> ParseShares(const std::string& text) {
  std::vector<uint32_t> shares;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.empty() || item.size() > 4 ||
        item.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgumentError("--arrival: '" + item.substr(0, 20) +
                                  "' is not a whole percentage");
    }
    const auto share = static_cast<uint32_t>(std::stoul(item));
    if (share == 0 || share > 1000 || (!shares.empty() && share <= shares.back())) {
      return InvalidArgumentError(
          "--arrival: shares are ascending whole percentages in 1..1000");
    }
    shares.push_back(share);
  }
  if (shares.empty()) return InvalidArgumentError("--arrival: no share given");
  return shares;
}

StatusOr<std::vector<SharePoint>> RunArrivalProtocol(
    const std::vector<v1::RegisterProvider>& providers,
    const std::vector<OpenbPod>& pods, const ArrivalOptions& options) {
  std::vector<const OpenbPod*> gpu_pods;
  for (const auto& pod : pods) {
    if (pod.GpuDemandMilli() > 0) gpu_pods.push_back(&pod);
  }
  if (gpu_pods.empty()) return InvalidArgumentError("the pod list has no GPU pod");
  if (options.shares_percent.empty()) return InvalidArgumentError("no share to record");
  for (size_t i = 0; i < options.shares_percent.size(); ++i) {
    const uint32_t share = options.shares_percent[i];
    if (share == 0 || share > 1000 ||
        (i > 0 && share <= options.shares_percent[i - 1])) {
      return InvalidArgumentError("shares are ascending percentages in 1..1000");
    }
  }

  matching::CapacityIndex index;
  {
    matching::CapacityIndex::BulkUpdate bulk(index);
    for (size_t p = 0; p < providers.size(); ++p) {
      const std::string name = "provider-" + std::to_string(p);
      CN_RETURN_IF_ERROR(index.UpsertProvider(name, providers[p]));
      index.SetOnline(name, true);
    }
  }
  const uint64_t capacity = index.Totals().cards * matching::kWholeCardMilli;
  if (capacity == 0) return InvalidArgumentError("the cluster has no GPU");

  auto clock = std::make_shared<FakeClock>(0);
  matching::JobQueueOptions queue_options;
  queue_options.pack_for_workload = options.packing != Packing::kBestFit;
  queue_options.learn_workload = options.packing == Packing::kLearnedWorkload;
  matching::JobQueue queue(queue_options, clock);
  if (options.packing == Packing::kGivenWorkload) {
    for (const OpenbPod* pod : gpu_pods) {
      const auto request = matching::PlacementRequest::FromSpec(
          OpenbSpec(*pod, 1, kDurationBound));
      if (auto shape = matching::WorkloadSummary::ShapeOf(request)) {
        queue.workload().Add(*shape, 1);  // by count, as published
      }
    }
  }
  matching::PlacementMatcher matcher;

  std::vector<SharePoint> points;
  PodDraw draw(gpu_pods.size(), options.seed);
  uint64_t arrived = 0;
  uint64_t drawn = 0;
  uint64_t failed = 0;
  size_t next_share = 0;
  while (next_share < options.shares_percent.size()) {
    const OpenbPod& pod = *gpu_pods[draw.Next()];
    matching::QueuedJob job;
    job.job_id = "draw-" + std::to_string(++drawn);
    job.organization = pod.organization;
    const v1::JobSpec spec = OpenbSpec(pod, 1, kDurationBound);
    job.priority = spec.priority();
    job.sequence = drawn;
    job.request = matching::PlacementRequest::FromSpec(spec);
    job.max_duration_s = spec.max_duration_s();
    CN_RETURN_IF_ERROR(queue.Add(std::move(job)));
    auto pass = queue.Schedule(index, matcher);
    if (pass.placed.empty()) {
      ++failed;
      // No departures: what does not fit now never will (the paper counts
      // it as a failure and moves on).
      for (const auto& outcome : pass.waiting) queue.Remove(outcome.job_id);
    }
    arrived += pod.GpuDemandMilli();
    while (next_share < options.shares_percent.size() &&
           arrived * 100 >= uint64_t{options.shares_percent[next_share]} * capacity) {
      SharePoint point;
      point.share_percent = options.shares_percent[next_share++];
      point.arrived_milli = arrived;
      point.allocated_milli = index.Totals().allocated_milli;
      point.capacity_milli = capacity;
      point.pods = drawn;
      point.failed = failed;
      points.push_back(point);
    }
  }
  return points;
}

}  // namespace computenet::bench
