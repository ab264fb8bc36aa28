// JobManager: the one place where a job's state changes. Each transition
// (submit, place, start, requeue, finish, cancel, preempt, end of a preempted
// run) is one function that changes the job's row, its hold in the ledger and
// the in-memory views of it (queue, capacity, offers out, jobs by provider)
// in one SQLite transaction (a savepoint inside the loop's group-commit
// batch, core/broker.cc), and only then tells anyone: watchers, the home
// broker of a forwarded job, the provider (offer, cancel) through JobEvents.
// JobEvents sends through the broker's Outbound, which holds everything
// until the batch commits, so nobody hears of a change that is not on disk.
//
// The legal state changes are the table of jobs/job_transitions.h, checked by
// Store::UpdateJob on every write. What a transition returns on failure:
// FAILED_PRECONDITION for a change the table refuses or (Place) a consumer
// who cannot cover the hold (the job then waits for funds, QUEUED, with the
// reason); the store's error (UNAVAILABLE, DATA_LOSS) otherwise. On failure
// nothing of the transition is stored and no event is sent.
//
// Thread safety: owned and used by the broker's core-loop thread only.
#ifndef COMPUTENET_BROKER_JOBS_JOB_MANAGER_H_
#define COMPUTENET_BROKER_JOBS_JOB_MANAGER_H_

#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <string>
#include <unordered_map>
#include <vector>

#include "computenet/common/clock.h"
#include "computenet/common/status.h"
#include "computenet/ledger/ledger.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/matcher.h"
#include "computenet/matching/preemption.h"
#include "computenet/v1/envelope.pb.h"
#include "computenet/v1/job.pb.h"
#include "core/imports.h"
#include "jobs/provider_registry.h"
#include "jobs/store.h"

namespace computenet::broker {

// The outbound side of a transition, called only after its write succeeded.
// The broker implements it over its Outbound (held until the batch commits);
// tests implement it by recording.
class JobEvents {
 public:
  virtual ~JobEvents() = default;
  // The job's stored row changed: its consumer's watchers, and its home
  // broker when a peer forwarded it here.
  virtual void JobChanged(const v1::JobInfo& job) = 0;
  // A message for the provider's registered connection (an offer or a
  // cancel). Returns false if the provider is not connected; the resend
  // timer and its next registration deal with that.
  virtual bool ToProvider(const std::string& provider, v1::MessageType type,
                          const google::protobuf::MessageLite& body) = 0;
};

struct JobManagerOptions {
  // The region stamped on jobs placed here. Default empty.
  std::string region;
  // Attempts of a job whose spec names none. Default 3.
  uint32_t max_attempts = 3;
  // The grace a consumer's cancel gives a running job. Default 10 s.
  int64_t cancel_grace_ms = 10'000;
  // An offer unanswered this long is sent again. Default 6 s.
  int64_t offer_resend_ms = 6'000;
  // Priority preemption: whether a waiting HIGH job may stop lower-priority
  // preemptible work (PreemptFor), the grace its victims get, and the
  // anti-thrash bounds. Default on, 30 s.
  bool priority_preemption = true;
  uint32_t preemption_grace_ms = 30'000;
  PreemptionOptions preemption;
  // Jobs one consumer may have unfinished (queued, placed or running) at
  // once; a submit past it is RESOURCE_EXHAUSTED. 0 = no limit. Default
  // 10,000 (one consumer once stored 60,352 in a 10 s flood).
  uint32_t max_unfinished_jobs_per_consumer = 10'000;
};

// A job forwarded here may cost at most the budget its home broker holds
// from its consumer. FAILED_PRECONDITION naming both amounts if its worst
// case (cards x max_duration_s at the price) exceeds it; OUT_OF_RANGE on
// overflow.
Status CheckHomeBudget(uint64_t cards, uint32_t max_duration_s,
                       int64_t price_per_card_hour, int64_t budget,
                       const std::string& home_broker);

class JobManager {
 public:
  // Borrows everything; all must outlive it.
  JobManager(JobManagerOptions options, Store& store, Ledger& ledger,
             ProviderRegistry& registry, std::shared_ptr<Clock> clock,
             JobQueueOptions queue_options, JobEvents& events);

  // At start: queued jobs into the queue; cards of placed and running jobs
  // taken until their providers re-register and reconcile. The store's error
  // on failure.
  Status Load();
  // Stores every organization's fair-share usage now (Load restores it).
  // The store's error on failure.
  Status SaveFairShare();

  // --- transitions ---------------------------------------------------------
  // A new job from its consumer, stored QUEUED (global id assigned) and
  // queued. A repeated idempotency_key returns the first job and sets
  // *duplicate (nothing changes then). RESOURCE_EXHAUSTED if the consumer
  // already has max_unfinished_jobs_per_consumer unfinished jobs.
  StatusOr<v1::JobInfo> Submit(const std::string& broker_id, v1::JobInfo job,
                               const std::string& idempotency_key,
                               bool* duplicate);
  // QUEUED -> PLACED on the placement: holds the worst-case cost with the
  // row, takes the cards, sends the offer. FAILED_PRECONDITION if the
  // consumer cannot cover the hold: `job` is reloaded (QUEUED, "waiting for
  // funds: ...") and funds_waiting() turns true.
  Status Place(v1::JobInfo& job, const Placement& placement);
  // PLACED -> RUNNING, as its provider reported at started_ms (0 = now).
  Status Start(v1::JobInfo& job, int64_t started_ms);
  // PLACED/RUNNING -> QUEUED (the attempt ended without the job ending):
  // its hold released, its cards freed, back in the queue. A job whose
  // consumer asked to cancel is CANCELLED instead.
  Status Requeue(v1::JobInfo& job, const std::string& reason);
  // Any live state -> a terminal one: hold released, cards freed, out of
  // the queue.
  Status Finish(v1::JobInfo& job, v1::JobState state, int32_t exit_code,
                const std::string& reason);
  // The consumer's (or its home broker's) cancel. A queued job is CANCELLED
  // at once; a placed or running one is flagged and its provider told, unless
  // `at_peer` (a peer runs it and stops it there). OK and nothing changes for
  // a job already ended or already flagged.
  Status RequestCancel(v1::JobInfo& job, const std::string& who, bool at_peer);
  // The job is to stop and be requeued: its provider reclaims the spare
  // capacity it runs on (for_job empty), or the higher-priority job for_job
  // needs its cards. Flagged, the consumer told, the provider asked to stop
  // it within grace_ms.
  Status Preempt(v1::JobInfo& job, uint32_t grace_ms,
                 const std::string& for_job = "");
  // A preempted run ended (or never started): requeued (billed by its
  // provider's usage record for what it ran). A reclaimed job with no
  // attempts left is FAILED instead; a job preempted for priority does not
  // spend an attempt, since nothing about it failed.
  Status EndPreemptedRun(v1::JobInfo& job);
  // Priority preemption for a queued job the last pass could not place: if
  // it is HIGH (and preemption is on), stops the victims PlanPreemption
  // chooses among the lower-priority preemptible jobs running here, and says
  // so in the job's reason. While they stop, the job stops nothing more;
  // the queue places it when their cards are free. Returns the victims
  // (empty when nothing is to be stopped); the store's error on failure.
  StatusOr<std::vector<std::string>> PreemptFor(const QueuedJob& job,
                                                const Matcher& matcher);

  // --- rows without a state change, for the services ----------------------
  // Stores the row (the table is still checked), then tells its watchers.
  Status Save(const v1::JobInfo& job);
  // Stores the row and releases its open hold in one transaction.
  Status SaveReleasingHold(const v1::JobInfo& job, const std::string& why);
  // Leaves the job QUEUED with "waiting for funds: <why>" (reloaded into
  // `job`) until a top-up; returns why.
  Status WaitForFunds(v1::JobInfo& job, const Status& why);
  // Into the queue (again), keeping its age and the providers that
  // rejected it.
  void Enqueue(const v1::JobInfo& job);

  // --- the provider side ----------------------------------------------------
  // Asks the job's provider to stop it (grace: cancel_grace_ms).
  void SendCancel(const v1::JobInfo& job);
  // The provider answered the offer (so it is not resent).
  void OfferAnswered(const std::string& job_id) { offers_out_.erase(job_id); }
  // The provider refused the job for good: it is not offered there again.
  void RejectedBy(const std::string& job_id, const std::string& provider) {
    rejected_by_[job_id].insert(provider);
  }
  // Offers unanswered for offer_resend_ms are sent again.
  void ResendUnansweredOffers(int64_t now_ms);
  // The local jobs placed on or running at provider, in job id order (an
  // index kept by every write, not a scan). The store's error on failure.
  StatusOr<std::vector<v1::JobInfo>> ActiveOn(const std::string& provider);
  size_t active_count() const;

  // --- for the scheduler ----------------------------------------------------
  JobQueue& queue() { return queue_; }
  uint32_t MaxAttempts(const v1::JobInfo& job) const;
  // The reason last stored for a waiting job: true (and remembered) if
  // `reason` differs, so an unchanged reason costs no write.
  bool NoteWaitingReason(const std::string& job_id, const std::string& reason);
  void ForgetWaitingReason(const std::string& job_id) {
    waiting_reasons_.erase(job_id);
  }
  // Something changed that may let a queued job run.
  void RequestSchedule() { schedule_needed_ = true; }
  // True once after RequestSchedule (the scheduler's pass clears it).
  bool TakeScheduleRequest() {
    const bool needed = schedule_needed_;
    schedule_needed_ = false;
    return needed;
  }
  // A job waits for its consumer's funds (a top-up makes a pass worthwhile).
  bool funds_waiting() const { return funds_waiting_; }
  // Whether the job waits for victims stopping for it (its reason says so).
  bool PreemptingFor(const std::string& job_id) const {
    return preempting_for_.count(job_id) != 0;
  }
  void ClearFundsWaiting() { funds_waiting_ = false; }

 private:
  int64_t Now() const { return clock_->NowMs(); }
  // The hold and the PLACED row in one transaction.
  Status HoldAndSave(v1::JobInfo& job);
  void SendOffer(const v1::JobInfo& job);
  // OK if the job has no secret env or its sealed values open; else FAILS
  // the job (it cannot run without them) and returns DATA_LOSS.
  Status CheckSecrets(v1::JobInfo& job);
  // Keeps active_by_provider_ and preemptible_ in step with a stored row.
  void Track(const v1::JobInfo& job);
  void TrackPreemptible(const v1::JobInfo& job, bool active);
  // The job left the queue or ended: its preemption bookkeeping goes.
  void ForgetPreemptionFor(const std::string& job_id) {
    preempting_for_.erase(job_id);
    no_plan_at_.erase(job_id);
  }
  // Frees what the job held in memory (cards, queue slot, offer timer).
  void Untrack(const std::string& job_id);

  JobManagerOptions options_;
  Store& store_;
  Ledger& ledger_;
  ProviderRegistry& registry_;
  std::shared_ptr<Clock> clock_;
  JobEvents& events_;
  JobQueue queue_;  // QUEUED jobs and the queue policy
  std::unordered_map<std::string, std::string> waiting_reasons_;
  std::map<std::string, std::set<std::string>>
      rejected_by_;  // job -> providers
  // Offers not yet answered: job id -> when last sent.
  std::map<std::string, int64_t> offers_out_;
  // Local PLACED/RUNNING jobs that accepted preemption, as the planner
  // sees them (kept by Track), and a counter of changes to that set.
  std::map<std::string, PreemptionCandidate> preemptible_;
  uint64_t preemptible_generation_ = 0;
  // Waiting jobs whose victims are still stopping: job -> victims.
  std::map<std::string, std::set<std::string>> preempting_for_;
  // Jobs for which no plan existed, with the generations of the candidates,
  // of the offers and of freed capacity then, and when the first candidate
  // protected then stops being protected: not planned again until one of
  // them moves or that time comes.
  using Generations = std::tuple<uint64_t, uint64_t, uint64_t, int64_t>;
  std::map<std::string, Generations> no_plan_at_;
  uint64_t release_generation_ = 0;  // moves whenever a job frees cards
  // Local PLACED/RUNNING jobs by provider, and each job's provider.
  std::map<std::string, std::set<std::string>> active_by_provider_;
  std::map<std::string, std::string> active_provider_of_;
  // Unfinished local jobs by consumer, for the per-consumer limit: counted
  // up by Submit and Load, down by Track when a job ends. At the limit the
  // count is taken again from the store (at most once a second per
  // consumer), so a miscount can only delay a refusal, never cause one.
  std::unordered_map<std::string, std::string> unfinished_consumer_of_;
  std::unordered_map<std::string, uint64_t> unfinished_by_consumer_;
  std::unordered_map<std::string, int64_t> unfinished_recounted_ms_;
  void CountUnfinished(const v1::JobInfo& job);
  Status AdmitNewJob(const std::string& consumer);
  bool schedule_needed_ = true;
  bool funds_waiting_ = false;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_JOBS_JOB_MANAGER_H_
