// The simulator proper: one broker per region, each with the REAL
// CapacityIndex, PlacementMatcher and JobQueue of matching/ over its sites
// and a scheduling pass every pass_interval; capacity adverts between
// brokers made by the REAL SummarizeCapacity and tested by the real
// AdvertFits (broker/src/federation/capacity_advert.h); the local-first
// policy decides with the REAL Route (federation/routing.h); charges and
// fees by the ledger's real rounding rules (ChargeForCardSeconds, FeeFor).
// Simulated: the network (a forward arrives after the link's latency), the
// providers (a placed job runs for its run time and ends; no failures or
// reclaims), and the books (an in-memory double-entry per broker with the
// ledger's account names, integer minor units, every entry summing to
// zero; not the SQLite ledger with signed usage records).
//
// Policies (docs/simulation.md):
//   local-only       a job runs in its home region or is refused;
//   local-first      the broker's Route() with no price margin: forward only
//                    what cannot run at home now;
//   global-cheapest  the lowest price per A100-hour among home (if it fits
//                    now) and the peers whose adverts fit;
//   wait-aware       (ours) price per A100-hour plus a penalty for the
//                    target's queue backlog, home kept unless a peer is
//                    clearly better; a job that fits nowhere now goes to
//                    the allowed region with the least backlog per card
//                    that could ever hold it, instead of waiting at home.
//
// Thread safety: Simulate is a pure function of its arguments; concurrent
// calls with different arguments are safe.
#ifndef COMPUTENET_SIM_SIMULATOR_H_
#define COMPUTENET_SIM_SIMULATOR_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/sim/topology.h"
#include "computenet/sim/workload.h"

namespace computenet::sim {

enum class Policy { kLocalOnly, kLocalFirst, kGlobalCheapest, kWaitAware };
std::string_view PolicyName(Policy policy);
std::optional<Policy> ParsePolicy(std::string_view name);
inline constexpr Policy kAllPolicies[] = {
    Policy::kLocalOnly, Policy::kLocalFirst, Policy::kGlobalCheapest,
    Policy::kWaitAware};

struct SimOptions {
  int64_t pass_interval_ms = 60'000;     // a broker's scheduling pass
  int64_t advert_interval_ms = 120'000;  // adverts refreshed, waiters re-routed
  int64_t reroute_after_ms = 300'000;  // waited this long at home: route again
  int64_t sample_interval_ms = 1'800'000;  // utilization time series
  // After the last arrival, jobs still waiting this long are refused.
  int64_t drain_limit_ms = 7LL * 24 * 3600 * 1000;
  // A broker refuses a job (the consumer is told the queue is full) while
  // this many wait in its queue; 0 = no limit. The real queue's pass is
  // linear in its length, so an overloaded region without a limit makes
  // the run quadratic.
  size_t max_queued_per_broker = 0;
  size_t max_reservation_steps = 20'000;  // JobQueueOptions (its default)
  // wait-aware: a peer must beat home by this much (basis points).
  int64_t wait_aware_margin_bp = 1000;
  // wait-aware: price penalty per 1% of the target's backlog per card.
  int64_t wait_aware_penalty_bp_per_pct = 100;
};

struct JobOutcome {
  int64_t start_ms = -1;  // -1: never ran
  int64_t end_ms = -1;
  int16_t region = -1;      // where it ran
  int32_t refusal = -1;     // index into SimResult::reasons, if refused
  int64_t charge = 0;       // what its consumer paid, minor units
  int64_t hold = 0;         // the worst case held at placement
  uint32_t a100_milli = 0;  // compute placed
};

struct SimResult {
  Policy policy = Policy::kLocalOnly;
  std::vector<JobOutcome> outcomes;  // by job index
  std::vector<std::string> reasons;  // distinct refusal reasons
  // Per region: cards, and card-milli-ms held over the arrival window
  // [0, window_ms] (utilization integral).
  int64_t window_ms = 0;
  std::vector<uint64_t> cards;
  std::vector<long double> busy_milli_ms;
  int64_t end_ms = 0;  // simulated time when the last job ended
  // Utilization samples: time, then one value per region (0..1).
  std::vector<std::pair<int64_t, std::vector<double>>> samples;
  // clearing[h][r]: what broker h owes broker r for h's jobs run at r.
  std::vector<std::vector<int64_t>> clearing;
  // Each broker's books: account -> balance (minor units).
  std::vector<std::map<std::string, int64_t>> books;
  uint64_t forwards = 0;
  uint64_t declines = 0;  // forwarded jobs that never fitted there
  uint64_t passes = 0;
  uint64_t decisions = 0;    // queued jobs considered by the passes
  uint64_t match_calls = 0;  // the real matcher's, in passes
  uint64_t events = 0;
  double wall_seconds = 0;
};

// Runs one policy over the workload. INTERNAL if the real code refuses the
// topology (a provider the index cannot take) or a ledger rule fails.
StatusOr<SimResult> Simulate(const Topology& topology, const Workload& workload,
                             Policy policy, const SimOptions& options);

// The invariants every run must keep: every job ran once or was refused
// with a reason; none ran in a region it does not allow, or before it
// arrived; each broker's books sum to zero and each job's charge is within
// its hold; clearing[h][r] equals h's clearing:r account and the negation
// of r's clearing:h. FAILED_PRECONDITION naming the first violation.
Status CheckInvariants(const Topology& topology, const Workload& workload,
                       const SimResult& result);

}  // namespace computenet::sim

#endif  // COMPUTENET_SIM_SIMULATOR_H_
