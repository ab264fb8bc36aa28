// Priority preemption planning (see preemption.h for the rules).
#include "computenet/matching/preemption.h"

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>

namespace computenet::matching {
namespace {

struct Victim {
  const PreemptionCandidate* candidate = nullptr;
  const JobAllocation* allocation = nullptr;
  uint64_t lost = 0;
};

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b
             ? std::numeric_limits<uint64_t>::max()
             : a + b;
}

// Ranks plans: least lost work, fewest victims, then the matcher's order.
auto PlanKey(const PreemptionPlan& plan) {
  return std::make_tuple(plan.lost_work_milli_s, plan.victims.size(),
                         plan.placement.cost_key,
                         -static_cast<int64_t>(plan.placement.reliability_permille),
                         plan.placement.fragmentation, plan.placement.provider);
}

// The plan on one provider, or nullopt if stopping all of `victims` still
// leaves no room (or the job fits without stopping anything: then it waits
// for something other than capacity held by others, e.g. a reservation).
std::optional<PreemptionPlan> PlanOnProvider(
    const PlacementRequest& request, const CapacityIndex& capacity,
    const CapacityIndex::Provider& provider, std::vector<Victim> victims,
    const Matcher& matcher, const MatchContext& context) {
  CapacityIndex scratch(capacity.shared_catalog());
  if (!scratch.UpsertProvider(provider.name, provider.registration).ok()) {
    return std::nullopt;
  }
  scratch.SetOnline(provider.name, true);
  scratch.SetReliability(provider.name, provider.reliability_permille);
  for (const std::string& job_id : capacity.JobsOn(provider.name)) {
    const JobAllocation* held = capacity.FindAllocation(job_id);
    if (held != nullptr) (void)scratch.Allocate(job_id, *held);
  }
  MatchContext scratch_context;
  scratch_context.excluded = context.excluded;
  if (matcher.Match(request, scratch, scratch_context)) return std::nullopt;

  std::sort(victims.begin(), victims.end(), [](const Victim& a, const Victim& b) {
    return std::tie(a.lost, a.candidate->job_id) <
           std::tie(b.lost, b.candidate->job_id);
  });
  // Greedy: stop the cheapest victims until the job fits.
  size_t taken = 0;
  std::optional<Placement> fit;
  while (taken < victims.size() && !fit) {
    scratch.Release(victims[taken].candidate->job_id);
    ++taken;
    fit = matcher.Match(request, scratch, scratch_context);
  }
  if (!fit) return std::nullopt;
  // Prune: keep running every victim the fit does not need, trying the
  // most expensive first.
  std::vector<bool> stopped(taken, true);
  for (size_t i = taken; i-- > 0;) {
    const Victim& victim = victims[i];
    if (!scratch.Allocate(victim.candidate->job_id, *victim.allocation).ok()) {
      continue;
    }
    auto still = matcher.Match(request, scratch, scratch_context);
    if (still) {
      stopped[i] = false;
      fit = std::move(still);
    } else {
      scratch.Release(victim.candidate->job_id);
    }
  }
  PreemptionPlan plan;
  for (size_t i = 0; i < taken; ++i) {
    if (!stopped[i]) continue;
    plan.victims.push_back(victims[i].candidate->job_id);
    plan.lost_work_milli_s = SaturatingAdd(plan.lost_work_milli_s, victims[i].lost);
  }
  // `fit` is always the match of the current scratch state: a failed
  // re-allocation is undone before the next try.
  plan.placement = std::move(*fit);
  return plan;
}

}  // namespace

uint64_t LostWork(const PreemptionCandidate& candidate, int64_t now_ms) {
  if (candidate.started_ms <= 0 || now_ms <= candidate.started_ms) return 0;
  const uint64_t ran_s = static_cast<uint64_t>(now_ms - candidate.started_ms) / 1000;
  if (ran_s != 0 &&
      candidate.milli > std::numeric_limits<uint64_t>::max() / ran_s) {
    return std::numeric_limits<uint64_t>::max();
  }
  return candidate.milli * ran_s;
}

bool MayPreempt(const PreemptionCandidate& candidate,
                v1::PriorityClass priority, int64_t now_ms,
                const PreemptionOptions& options, std::string* why_not) {
  auto refuse = [&](const char* why) {
    if (why_not != nullptr) *why_not = why;
    return false;
  };
  if (!candidate.preemptible) return refuse("not preemptible");
  if (candidate.stopping) return refuse("already stopping");
  if (PriorityRank(candidate.priority) >= PriorityRank(priority)) {
    return refuse("not of a lower priority class");
  }
  if (options.protect_after > 0 &&
      candidate.preemptions >= options.protect_after &&
      now_ms - candidate.last_preempted_ms < options.protection_ms) {
    return refuse("protected: preempted too often lately");
  }
  return true;
}

std::optional<PreemptionPlan> PlanPreemption(
    const PlacementRequest& request, v1::PriorityClass priority,
    const CapacityIndex& capacity, const Matcher& matcher,
    const MatchContext& context,
    const std::vector<PreemptionCandidate>& candidates, int64_t now_ms,
    const PreemptionOptions& options) {
  // Eligible victims by provider.
  std::map<std::string, std::vector<Victim>> by_provider;
  std::map<std::string, uint64_t> milli_by_provider;
  for (const PreemptionCandidate& candidate : candidates) {
    if (!MayPreempt(candidate, priority, now_ms, options)) continue;
    const JobAllocation* held = capacity.FindAllocation(candidate.job_id);
    if (held == nullptr) continue;
    if (context.excluded != nullptr && context.excluded->count(held->provider)) {
      continue;
    }
    by_provider[held->provider].push_back(
        Victim{&candidate, held, LostWork(candidate, now_ms)});
    milli_by_provider[held->provider] =
        SaturatingAdd(milli_by_provider[held->provider], candidate.milli);
  }
  // The providers holding the most preemptible work first, bounded.
  std::vector<std::pair<uint64_t, std::string>> order;
  for (const auto& [provider, milli] : milli_by_provider) {
    order.emplace_back(milli, provider);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (order.size() > options.max_providers) order.resize(options.max_providers);

  std::optional<PreemptionPlan> best;
  for (const auto& entry : order) {
    auto id = capacity.ProviderId(entry.second);
    if (!id) continue;
    const CapacityIndex::Provider& provider = capacity.providers()[*id];
    if (!provider.online) continue;
    auto plan = PlanOnProvider(request, capacity, provider,
                               by_provider[entry.second], matcher, context);
    if (plan && (!best || PlanKey(*plan) < PlanKey(*best))) best = std::move(plan);
  }
  return best;
}

}  // namespace computenet::matching
