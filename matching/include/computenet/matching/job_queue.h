// JobQueue: the broker's queue policy. It decides in which order waiting
// jobs are offered to the Matcher and which of them may start now:
//
//  - priority classes (LOW < NORMAL < HIGH), strict between classes;
//  - aging: a job climbs one level per aging_interval of waiting, without a
//    ceiling, so the oldest waiting job eventually outranks everything;
//  - fair share inside a level: organizations take turns by their usage
//    (thousandths of a card x seconds, decaying with a half-life) plus the
//    cards they hold now; FIFO inside one organization;
//  - backfill (EASY): the first job that does not fit (the head) gets a
//    reservation: its earliest start, computed by letting running jobs end
//    at their start + max duration, and the nodes it would take then. A
//    later job may start before it only if it ends by that time or keeps
//    off those nodes, so it never delays the head;
//  - a job that could never fit on the known providers leaves the queue
//    with the reason (the broker fails it).
//
// The queue places jobs on the CapacityIndex it is given (so later
// decisions in the same pass see them) and reports what it did; the caller
// persists and dispatches. See docs/matching.md.
//
// Thread safety: not thread-safe; owned by one thread. Time comes from the
// injected Clock.
#ifndef COMPUTENET_MATCHING_JOB_QUEUE_H_
#define COMPUTENET_MATCHING_JOB_QUEUE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "computenet/matching/capacity_index.h"
#include "computenet/matching/matcher.h"
#include "computenet/matching/workload_summary.h"
#include "computenet/common/clock.h"
#include "computenet/common/status.h"

namespace computenet::matching {

// The order of the classes: LOW 1, NORMAL 2, HIGH 3; UNSPECIFIED counts as
// NORMAL.
int PriorityRank(v1::PriorityClass priority);

struct JobQueueOptions {
  // Fair-share usage halves every this long. Default 24 h.
  int64_t fair_share_half_life_ms = 24LL * 3600 * 1000;
  // A waiting job climbs one priority level per this long. Default 1 h.
  int64_t aging_interval_ms = 3600LL * 1000;
  // Bound on the running-job end times tried when computing the head
  // job's reservation; beyond it the reservation is taken as "now" (no job
  // may jump the head), which is safe. Default 20,000.
  size_t max_reservation_steps = 20'000;
  // Packing: by the expected fragmentation of the workload the queue has
  // seen (each Add counts its request; docs/matching.md, "Packing"), or
  // best fit. Default: by workload.
  bool pack_for_workload = true;
  // Whether Add counts arrivals into workload(); off when the caller fills
  // it with a distribution known in advance. Default on.
  bool learn_workload = true;
  WorkloadSummaryOptions workload;
};

struct QueuedJob {
  std::string job_id;
  std::string organization;
  v1::PriorityClass priority = v1::PRIORITY_CLASS_NORMAL;
  int64_t submitted_ms = 0;  // aging counts from here
  uint64_t sequence = 0;     // FIFO order inside an organization
  PlacementRequest request;
  uint32_t max_duration_s = 0;
  // Providers that must not get it (e.g. they rejected it).
  std::set<std::string> excluded_providers;
};

// An organization's fair-share usage as stored: milli-card-seconds, decayed
// to as_of_ms.
struct StoredUsage {
  std::string organization;
  uint64_t usage_milli_s = 0;
  int64_t as_of_ms = 0;
};

struct Reservation {
  std::string job_id;
  int64_t start_by_ms = 0;  // INT64_MAX = never
  std::vector<std::string> nodes;  // "provider/node" it would take
};

class JobQueue {
 public:
  JobQueue(JobQueueOptions options, std::shared_ptr<Clock> clock);

  // ALREADY_EXISTS if the job is queued; INVALID_ARGUMENT for an empty id.
  Status Add(QueuedJob job);
  // False if it was not queued.
  bool Remove(const std::string& job_id);
  bool Contains(const std::string& job_id) const;
  size_t size() const { return jobs_.size(); }
  const QueuedJob* Find(const std::string& job_id) const;

  // Jobs holding capacity: their organization's fair share grows while they
  // hold it, and a reservation expects them to end by end_by_ms.
  void MarkRunning(const std::string& job_id, const std::string& organization,
                   uint64_t milli_cards, int64_t end_by_ms);
  // Its usage stops accruing (no-op if unknown).
  void MarkStopped(const std::string& job_id);
  size_t running() const { return running_.size(); }

  // The demand packing aims for (learned from Add, or filled by the caller).
  WorkloadSummary& workload() { return workload_; }
  const WorkloadSummary& workload() const { return workload_; }

  // Decayed usage of an organization now, in milli-card-seconds.
  double UsageOf(const std::string& organization) const;
  // Every organization's usage now (what its running jobs accrued so far
  // included), rounded down, for storing. Organizations whose usage has
  // decayed below one milli-card-second are left out.
  std::vector<StoredUsage> UsageSnapshot() const;
  // Adds stored usage back, decayed from as_of_ms to now (a time in the
  // future counts as now). Adding, not replacing, so it may come before or
  // after the running jobs are marked again.
  void RestoreUsage(const StoredUsage& stored);
  // The order the next pass would try jobs in (fair-share keys as now).
  std::vector<std::string> Order() const;

  struct Outcome {
    std::string job_id;
    std::optional<Placement> placement;  // placed: already allocated
    std::string reason;  // waiting: why; never fits: the status message
    bool never_fits = false;  // removed from the queue
  };
  struct PassResult {
    std::vector<Outcome> placed;
    std::vector<Outcome> waiting;
    std::vector<Outcome> never_fit;
    std::optional<Reservation> reservation;
    uint64_t match_calls = 0;
  };
  // One scheduling pass over every queued job, in policy order. Placed jobs
  // leave the queue, hold their cards in `capacity` and count as running
  // (end by now + max duration) until MarkStopped.
  PassResult Schedule(CapacityIndex& capacity, const Matcher& matcher);

 private:
  struct Org {
    double usage = 0;  // milli-card-seconds, decayed to usage_ms
    int64_t usage_ms = 0;
    uint64_t running_milli = 0;
  };
  struct Running {
    std::string organization;
    uint64_t milli = 0;
    int64_t end_by_ms = 0;
  };
  struct Cached {
    uint64_t generation = 0;
    std::string text;
    bool never = false;
  };

  Org& OrgAt(const std::string& organization, int64_t now_ms);
  double Decayed(const Org& org, int64_t now_ms) const;
  double ShareKey(const Org& org, int64_t now_ms) const;
  int64_t LevelOf(const QueuedJob& job, int64_t now_ms) const;
  // Calls visit(job) for each queued job in policy order; visit returns
  // the thousandths of cards it placed for the job (0 if none), which move
  // its organization back in the fair-share turns of this walk.
  template <typename Visit>
  void Walk(int64_t now_ms, Visit&& visit) const;
  std::optional<Reservation> Reserve(const QueuedJob& head,
                                     CapacityIndex& capacity,
                                     const Matcher& matcher, int64_t now_ms,
                                     uint64_t* match_calls);
  const Cached& Explain(const QueuedJob& job, const CapacityIndex& capacity,
                        const Matcher& matcher);

  // The MatchContext of a decision: what the job excludes, what to pack for.
  MatchContext ContextFor(const QueuedJob& job) const;

  JobQueueOptions options_;
  std::shared_ptr<Clock> clock_;
  WorkloadSummary workload_;
  std::map<std::string, QueuedJob> jobs_;
  std::map<std::string, Org> orgs_;
  std::map<std::string, Running> running_;
  // Why a job waits / whether it never fits, valid for one index generation.
  std::map<std::string, Cached> explained_;
  std::map<std::string, Cached> ever_;
};

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_JOB_QUEUE_H_
