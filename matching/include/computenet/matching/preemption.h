// Priority preemption: which running work to stop so that a waiting
// high-priority job can run (docs/matching.md, "Priority preemption").
//
// The rules, all here so the broker only applies the answer:
//  - only work that accepted preemption (JobSpec.preemptible) and whose
//    priority class is strictly lower than the waiting job's is a victim;
//    non-preemptible work is never stopped;
//  - anti-thrash: a job already preempted protect_after times is not chosen
//    again until protection_ms after its last preemption;
//  - victims are taken from one provider (a placement never spans
//    providers), and among the providers where stopping some of them makes
//    the job fit, the plan that loses the least work wins: lost work is what
//    the victims ran since they started (thousandths of a card x seconds;
//    nothing is known of their checkpoints), then fewer victims, then the
//    matcher's own order (cost per A100-hour, reliability, fit);
//  - within a provider the set is chosen greedily, least lost work first,
//    then pruned: a victim whose stopping is not needed for the fit is
//    kept running (largest lost work tried first).
//
// Pure: a function of the capacity snapshot, the job and the candidates. It
// evaluates each provider on a scratch index holding only that provider, so
// the real index is never changed; bounded by max_providers per decision.
//
// Thread safety: stateless functions; the CapacityIndex they read must not
// be mutated meanwhile.
#ifndef COMPUTENET_MATCHING_PREEMPTION_H_
#define COMPUTENET_MATCHING_PREEMPTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "computenet/matching/capacity_index.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/matcher.h"
#include "computenet/v1/job.pb.h"

namespace computenet::matching {

struct PreemptionOptions {
  // Preemptions after which a job is protected for a while. Default 2.
  uint32_t protect_after = 2;
  // How long that protection lasts after the last preemption. Default 1 h.
  int64_t protection_ms = 3600LL * 1000;
  // Providers evaluated per decision (those holding the most preemptible
  // work first). Default 32.
  size_t max_providers = 32;
};

// A job holding capacity that might be stopped.
struct PreemptionCandidate {
  std::string job_id;
  v1::PriorityClass priority = v1::PRIORITY_CLASS_NORMAL;
  bool preemptible = false;
  // Already being stopped (cancel or preemption requested): not a victim
  // again, and not counted as freeing anything.
  bool stopping = false;
  int64_t started_ms = 0;  // 0 = placed, not started: nothing to lose
  uint64_t milli = 0;      // thousandths of cards it holds
  uint32_t preemptions = 0;
  int64_t last_preempted_ms = 0;
};

struct PreemptionPlan {
  std::vector<std::string> victims;  // job ids, least lost work first
  uint64_t lost_work_milli_s = 0;    // what stopping them loses
  Placement placement;               // where the job goes once they stop
};

// Lost work of stopping the candidate at now_ms (saturating).
uint64_t LostWork(const PreemptionCandidate& candidate, int64_t now_ms);

// Whether `candidate` may be stopped for a job of `priority` now; if not
// and why_not is given, says why (for logs and tests).
bool MayPreempt(const PreemptionCandidate& candidate,
                v1::PriorityClass priority, int64_t now_ms,
                const PreemptionOptions& options,
                std::string* why_not = nullptr);

// The victims whose stopping lets `request` (of class `priority`) fit, or
// nullopt if no such set exists among the candidates. Candidates without an
// allocation in `capacity`, on offline or excluded providers are ignored.
// The context's avoid_nodes and workload are not used (the plan is made on
// a scratch index, best fit).
std::optional<PreemptionPlan> PlanPreemption(
    const PlacementRequest& request, v1::PriorityClass priority,
    const CapacityIndex& capacity, const Matcher& matcher,
    const MatchContext& context,
    const std::vector<PreemptionCandidate>& candidates, int64_t now_ms,
    const PreemptionOptions& options = {});

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_PREEMPTION_H_
