#include "jobs/job_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "computenet/common/job_state.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::broker {
namespace {

// FIFO order: the sequence in "<broker id>-<sequence>".
uint64_t SequenceOf(const std::string& job_id) {
  const auto dash = job_id.rfind('-');
  if (dash == std::string::npos) return 0;
  uint64_t value = 0;
  for (size_t i = dash + 1; i < job_id.size(); ++i) {
    const char c = job_id[i];
    if (c < '0' || c > '9') return 0;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// Held here and running at a provider of this broker (not mirrored from a
// peer that runs it).
bool ActiveHere(const v1::JobInfo& job) {
  return (job.state() == v1::JOB_STATE_PLACED ||
          job.state() == v1::JOB_STATE_RUNNING) &&
         job.remote_broker().empty() && !job.provider().empty();
}

}  // namespace

Status CheckHomeBudget(uint64_t cards, uint32_t max_duration_s,
                       int64_t price_per_card_hour, int64_t budget,
                       const std::string& home_broker) {
  CN_ASSIGN_OR_RETURN(
      int64_t worst,
      ChargeForCardSeconds(cards * max_duration_s, price_per_card_hour));
  if (worst > budget) {
    return FailedPreconditionError(
        "its worst case here, " + std::to_string(worst) +
        " minor units, exceeds the budget of " + std::to_string(budget) +
        " held by " + home_broker);
  }
  return OkStatus();
}

JobManager::JobManager(JobManagerOptions options, Store& store, Ledger& ledger,
                       ProviderRegistry& registry, std::shared_ptr<Clock> clock,
                       JobQueueOptions queue_options, JobEvents& events)
    : options_(std::move(options)),
      store_(store),
      ledger_(ledger),
      registry_(registry),
      clock_(std::move(clock)),
      events_(events),
      queue_(queue_options, clock_) {}

Status JobManager::Load() {
  // Fair share first: what organizations used before the restart, decayed
  // over the time the broker was down.
  CN_ASSIGN_OR_RETURN(auto usage, store_.LoadFairShare());
  for (const auto& stored : usage) queue_.RestoreUsage(stored);
  CN_ASSIGN_OR_RETURN(auto queued, store_.JobsInStates({v1::JOB_STATE_QUEUED}));
  for (const auto& job : queued) {
    CountUnfinished(job);
    // A forward that was out when we stopped waits for reconciliation
    // with that peer, so it cannot run in two places.
    if (!job.remote_broker().empty()) continue;
    Enqueue(job);
  }
  CN_ASSIGN_OR_RETURN(
      auto active,
      store_.JobsInStates({v1::JOB_STATE_PLACED, v1::JOB_STATE_RUNNING}));
  // Cards of jobs that were out when the broker stopped stay taken until
  // their provider re-registers and reconciles.
  for (const auto& job : active) {
    if (!ActiveHere(job)) {  // runs at a peer; Track counts the others
      CountUnfinished(job);
      continue;
    }
    Track(job);
    registry_.Allocate(job.job_id(), job.provider(),
                       {job.assignments().begin(), job.assignments().end()},
                       job.spec().cpu_milli_per_card(),
                       job.spec().host_memory_mib_per_card());
    const int64_t began = job.started_ms() > 0 ? job.started_ms() : Now();
    queue_.MarkRunning(job.job_id(), job.organization(),
                       PlacementRequest::FromSpec(job.spec()).DemandMilli(),
                       began + int64_t{job.spec().max_duration_s()} * 1000);
  }
  spdlog::info("loaded {} queued and {} active jobs, fair share of {} organization(s)",
               queued.size(), active.size(), usage.size());
  return OkStatus();
}

Status JobManager::SaveFairShare() {
  return store_.SaveFairShare(queue_.UsageSnapshot());
}

StatusOr<v1::JobInfo> JobManager::Submit(const std::string& broker_id,
                                         v1::JobInfo job,
                                         const std::string& idempotency_key,
                                         bool* duplicate) {
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_created_ms(Now());
  if (job.reason().empty()) job.set_reason("waiting to be matched");
  const std::string consumer = job.consumer();
  CN_ASSIGN_OR_RETURN(
      v1::JobInfo stored,
      store_.InsertJob(broker_id, std::move(job), idempotency_key, duplicate,
                       [&] { return AdmitNewJob(consumer); }));
  if (!*duplicate) {
    CountUnfinished(stored);
    Enqueue(stored);
    events_.JobChanged(stored);
  }
  return stored;
}

Status JobManager::Save(const v1::JobInfo& job) {
  CN_RETURN_IF_ERROR(store_.UpdateJob(job, Now()));
  Track(job);
  events_.JobChanged(job);
  return OkStatus();
}

Status JobManager::SaveReleasingHold(const v1::JobInfo& job,
                                     const std::string& why) {
  // The job's row and the release of its hold commit together or not at
  // all; a crash can no longer leave an ended job holding its consumer's
  // money until the next start.
  std::optional<PostedEntry> released;
  Status stored = store_.database().RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(store_.UpdateJob(job, Now()));
    CN_ASSIGN_OR_RETURN(released,
                        ledger_.ReleaseHold(job.job_id(), why, Now()));
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(stored);
  Track(job);
  if (released.has_value()) {
    spdlog::info("job {}: released {} minor units held for it ({})",
                 job.job_id(), released->amount, why);
    schedule_needed_ = true;  // the consumer's other jobs may fit now
  }
  // Events only after the transaction that made them true.
  events_.JobChanged(job);
  return OkStatus();
}

Status JobManager::WaitForFunds(v1::JobInfo& job, const Status& why) {
  // The broker's ledger tick notices a top-up by another process.
  funds_waiting_ = true;
  CN_ASSIGN_OR_RETURN(v1::JobInfo queued, store_.GetJob(job.job_id()));
  const std::string reason = "waiting for funds: " + why.message();
  if (queued.reason() != reason) {
    spdlog::info("job {} {}", queued.job_id(), reason);
    queued.set_reason(reason);
    CN_RETURN_IF_ERROR(Save(queued));
  }
  job = std::move(queued);
  return why;
}

Status JobManager::HoldAndSave(v1::JobInfo& job) {
  HoldRequest hold;
  hold.job_id = job.job_id();
  hold.consumer = job.consumer();
  hold.provider = job.provider();
  hold.currency = job.currency();
  hold.attempt = job.attempts();
  hold.cards = TotalCards(job);
  hold.max_duration_s = job.spec().max_duration_s();
  hold.price_per_card_hour = job.price_per_card_hour();
  if (!job.home_broker().empty()) {
    // Forwarded here: the home broker's clearing account pays, within the
    // budget it holds from its consumer.
    hold.payer = ClearingAccount(job.home_broker());
    CN_RETURN_IF_ERROR(CheckHomeBudget(hold.cards, hold.max_duration_s,
                                       hold.price_per_card_hour,
                                       job.home_budget(), job.home_broker()));
  }
  Status status = store_.database().RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(ledger_.PlaceHold(hold, Now()).status());
    return store_.UpdateJob(job, Now());
  });
  // Not placed: the job stays queued, saying why, until its consumer can
  // cover the hold.
  if (status.code() == StatusCode::kFailedPrecondition) {
    return WaitForFunds(job, status);
  }
  CN_RETURN_IF_ERROR(status);
  Track(job);
  events_.JobChanged(job);
  return OkStatus();
}

Status JobManager::Place(v1::JobInfo& job, const Placement& placement) {
  if (job.state() != v1::JOB_STATE_QUEUED) {
    return FailedPreconditionError("job " + job.job_id() + " is " +
                                   JobStateName(job.state()) +
                                   ", not QUEUED: it cannot be placed");
  }
  CN_RETURN_IF_ERROR(CheckSecrets(job));
  v1::JobInfo placed = job;
  placed.set_state(v1::JOB_STATE_PLACED);
  placed.set_provider(placement.provider);
  placed.set_model(placement.model);
  placed.clear_assignments();
  for (const auto& assignment : placement.assignments) {
    *placed.add_assignments() = assignment;
  }
  placed.set_price_per_card_hour(placement.price_per_card_hour);
  placed.set_currency(placement.currency);
  placed.set_region(options_.region);
  placed.set_attempts(job.attempts() + 1);
  placed.set_spare(placement.spare);
  placed.set_a100_equivalents_milli(placement.a100_milli);
  placed.set_compute_source(placement.compute_basis);
  placed.set_reason("offered to " + placement.provider);
  // Holds its worst-case cost with the PLACED row, or leaves it queued.
  Status held = HoldAndSave(placed);
  job = std::move(placed);
  CN_RETURN_IF_ERROR(held);
  registry_.Allocate(job.job_id(), placement.provider, placement.assignments,
                     job.spec().cpu_milli_per_card(),
                     job.spec().host_memory_mib_per_card());
  spdlog::info(
      "job {} placed on {}: {} x {} at {} minor units of {} per card-hour",
      job.job_id(), placement.provider, TotalCards(job), placement.model,
      placement.price_per_card_hour, placement.currency);
  ForgetPreemptionFor(job.job_id());
  SendOffer(job);
  return OkStatus();
}

Status JobManager::Start(v1::JobInfo& job, int64_t started_ms) {
  if (job.state() == v1::JOB_STATE_RUNNING) return OkStatus();  // repeated
  v1::JobInfo running = job;
  running.set_state(v1::JOB_STATE_RUNNING);
  running.set_started_ms(started_ms > 0 ? started_ms : Now());
  running.set_reason("");
  CN_RETURN_IF_ERROR(Save(running));
  offers_out_.erase(job.job_id());
  job = std::move(running);
  return OkStatus();
}

Status JobManager::Requeue(v1::JobInfo& job, const std::string& reason) {
  if (job.cancel_requested()) {
    // The consumer asked to cancel while it was out: it must not run again.
    return Finish(job, v1::JOB_STATE_CANCELLED, -1,
                  "cancelled before it started (" + reason + ")");
  }
  v1::JobInfo queued = job;
  queued.set_state(v1::JOB_STATE_QUEUED);
  queued.set_provider("");
  queued.set_model("");
  queued.clear_assignments();
  queued.set_price_per_card_hour(0);
  queued.set_currency("");
  queued.set_spare(false);
  queued.set_preemption_requested(false);
  queued.set_preempted_for("");
  queued.set_a100_equivalents_milli(0);
  queued.set_compute_source("");
  queued.set_reason(reason);
  CN_RETURN_IF_ERROR(SaveReleasingHold(queued, "requeued: " + reason));
  Untrack(job.job_id());
  job = std::move(queued);
  Enqueue(job);
  return OkStatus();
}

Status JobManager::Finish(v1::JobInfo& job, v1::JobState state,
                          int32_t exit_code, const std::string& reason) {
  if (!IsTerminal(state)) {
    return InvalidArgumentError("finish: " + JobStateName(state) +
                                " is not a terminal state");
  }
  v1::JobInfo ended = job;
  ended.set_state(state);
  ended.set_exit_code(exit_code);
  ended.set_finished_ms(Now());
  ended.set_reason(reason);
  CN_RETURN_IF_ERROR(SaveReleasingHold(ended, "job " + JobStateName(state)));
  Untrack(job.job_id());
  queue_.Remove(job.job_id());
  waiting_reasons_.erase(job.job_id());
  rejected_by_.erase(job.job_id());
  ForgetPreemptionFor(job.job_id());
  job = std::move(ended);
  schedule_needed_ = true;
  spdlog::info("job {} {}{}{}", job.job_id(), JobStateName(state),
               reason.empty() ? "" : ": ", reason);
  return OkStatus();
}

Status JobManager::RequestCancel(v1::JobInfo& job, const std::string& who,
                                 bool at_peer) {
  if (IsTerminal(job.state())) return OkStatus();
  if (job.state() == v1::JOB_STATE_QUEUED) {
    return Finish(job, v1::JOB_STATE_CANCELLED, -1, "cancelled by " + who);
  }
  if (job.cancel_requested()) return OkStatus();
  v1::JobInfo flagged = job;
  flagged.set_cancel_requested(true);
  flagged.set_reason("cancel requested by " + who);
  CN_RETURN_IF_ERROR(Save(flagged));
  job = std::move(flagged);
  if (!at_peer) SendCancel(job);
  return OkStatus();
}

Status JobManager::Preempt(v1::JobInfo& job, uint32_t grace_ms,
                           const std::string& for_job) {
  v1::JobInfo flagged = job;
  flagged.set_preemption_requested(true);
  flagged.set_preempted_for(for_job);
  // The consumer's notice (a JobEvent); the job's own is the SIGTERM its
  // provider sends at once, with SIGKILL after the grace period.
  const std::string stopping =
      "; stopping within " + std::to_string(grace_ms) + " ms, then requeued";
  flagged.set_reason(
      for_job.empty()
          ? "preempted: provider " + job.provider() +
                " reclaims the spare capacity" + stopping
          : "preempted for higher-priority job " + for_job + " on " +
                job.provider() + stopping);
  CN_RETURN_IF_ERROR(Save(flagged));
  job = std::move(flagged);
  v1::PlacementCancel cancel;
  cancel.set_job_id(job.job_id());
  cancel.set_grace_ms(grace_ms);
  cancel.set_reason(job.reason());
  events_.ToProvider(job.provider(), v1::MESSAGE_TYPE_PLACEMENT_CANCEL, cancel);
  spdlog::info("job {} preempted on {}{} (grace {} ms)", job.job_id(),
               job.provider(), for_job.empty() ? "" : " for " + for_job,
               grace_ms);
  return OkStatus();
}

Status JobManager::EndPreemptedRun(v1::JobInfo& job) {
  job.set_preemptions(job.preemptions() + 1);
  job.set_last_preempted_ms(Now());
  const std::string where = job.provider();
  const std::string for_job = job.preempted_for();
  job.set_preempted_for("");
  if (!for_job.empty()) {
    return Requeue(job, "preempted on " + where + " for higher-priority job " +
                            for_job + "; billed for the run so far and requeued");
  }
  if (job.attempts() >= MaxAttempts(job)) {
    return Finish(job, v1::JOB_STATE_FAILED, -1,
                  "preempted by a reclaim on " + where + " after " +
                      std::to_string(job.attempts()) +
                      " attempt(s); no attempts left (max_attempts)");
  }
  return Requeue(job, "preempted: " + where +
                          " reclaimed its spare capacity; billed for the "
                          "run so far and requeued");
}

StatusOr<std::vector<std::string>> JobManager::PreemptFor(
    const QueuedJob& job, const Matcher& matcher) {
  std::vector<std::string> victims;
  if (!options_.priority_preemption ||
      PriorityRank(job.priority) < PriorityRank(v1::PRIORITY_CLASS_HIGH) ||
      preemptible_.empty() || preempting_for_.count(job.job_id) != 0) {
    return victims;
  }
  const CapacityIndex& capacity = registry_.capacity();
  const int64_t now = Now();
  auto tried = no_plan_at_.find(job.job_id);
  if (tried != no_plan_at_.end() &&
      std::get<0>(tried->second) == preemptible_generation_ &&
      std::get<1>(tried->second) == capacity.offer_generation() &&
      std::get<2>(tried->second) == release_generation_ &&
      now < std::get<3>(tried->second)) {
    return victims;
  }
  std::vector<PreemptionCandidate> candidates;
  candidates.reserve(preemptible_.size());
  int64_t unprotected_at = INT64_MAX;  // when a protected one is free again
  for (const auto& [id, candidate] : preemptible_) {
    candidates.push_back(candidate);
    const PreemptionOptions& bounds = options_.preemption;
    if (bounds.protect_after > 0 && candidate.preemptions >= bounds.protect_after) {
      const int64_t until = candidate.last_preempted_ms + bounds.protection_ms;
      if (until > now) unprotected_at = std::min(unprotected_at, until);
    }
  }
  MatchContext context;
  context.excluded = &job.excluded_providers;
  auto plan = PlanPreemption(job.request, job.priority, capacity, matcher,
                             context, candidates, now, options_.preemption);
  if (!plan) {
    no_plan_at_[job.job_id] = {preemptible_generation_,
                               capacity.offer_generation(),
                               release_generation_, unprotected_at};
    return victims;
  }
  no_plan_at_.erase(job.job_id);
  for (const std::string& victim_id : plan->victims) {
    CN_ASSIGN_OR_RETURN(v1::JobInfo victim, store_.GetJob(victim_id));
    CN_RETURN_IF_ERROR(
        Preempt(victim, options_.preemption_grace_ms, job.job_id));
    victims.push_back(victim_id);  // Preempt's Track put it in preempting_for_
  }
  CN_ASSIGN_OR_RETURN(v1::JobInfo waiting, store_.GetJob(job.job_id));
  std::string names;
  for (const std::string& victim_id : victims) {
    names += (names.empty() ? "" : ", ") + victim_id;
  }
  waiting.set_reason("preempting " + std::to_string(victims.size()) +
                     " lower-priority job(s) on " + plan->placement.provider +
                     " to make room (" + names + ")");
  CN_RETURN_IF_ERROR(Save(waiting));
  spdlog::info("job {} (HIGH) preempts {} on {}, losing {} milli-card-s of work",
               job.job_id, names, plan->placement.provider,
               plan->lost_work_milli_s);
  return victims;
}

void JobManager::Enqueue(const v1::JobInfo& job) {
  QueuedJob queued;
  queued.job_id = job.job_id();
  queued.organization =
      job.organization().empty() ? job.consumer() : job.organization();
  queued.priority = job.spec().priority();
  // A requeued job keeps its place in line and its age.
  queued.submitted_ms = job.created_ms();
  queued.sequence = SequenceOf(job.job_id());
  queued.request = PlacementRequest::FromSpec(job.spec());
  queued.request.organization = job.organization();
  queued.max_duration_s = job.spec().max_duration_s();
  auto rejected = rejected_by_.find(job.job_id());
  if (rejected != rejected_by_.end()) {
    queued.excluded_providers = rejected->second;
  }
  queue_.Remove(job.job_id());
  Status added = queue_.Add(std::move(queued));
  if (!added.ok()) spdlog::error("queue: {}", added.ToString());
  schedule_needed_ = true;
}

uint32_t JobManager::MaxAttempts(const v1::JobInfo& job) const {
  return job.spec().max_attempts() > 0 ? job.spec().max_attempts()
                                       : options_.max_attempts;
}

bool JobManager::NoteWaitingReason(const std::string& job_id,
                                   const std::string& reason) {
  auto& reported = waiting_reasons_[job_id];
  if (reported == reason) return false;
  reported = reason;
  return true;
}

Status JobManager::CheckSecrets(v1::JobInfo& job) {
  if (job.spec().secret_env().empty()) return OkStatus();
  auto secrets = store_.JobSecrets(job.job_id());
  if (secrets.ok() &&
      secrets->size() == static_cast<size_t>(job.spec().secret_env_size())) {
    return OkStatus();
  }
  // Without its values the job would run with "***" in its environment.
  const std::string why = secrets.ok()
                              ? "its secret env values are gone"
                              : "its secret env values cannot be read: " +
                                    secrets.status().ToString();
  CN_RETURN_IF_ERROR(Finish(job, v1::JOB_STATE_FAILED, -1, why));
  return DataLossError("job " + job.job_id() + ": " + why);
}

void JobManager::SendOffer(const v1::JobInfo& job) {
  v1::PlacementOffer offer;
  offer.set_job_id(job.job_id());
  offer.set_consumer(job.consumer());
  offer.set_organization(job.organization());
  *offer.mutable_spec() = job.spec();
  // The secret values, from the sealed table, ride only in the offer (a
  // CURVE link to the provider). Place checked that they open.
  if (!job.spec().secret_env().empty()) {
    auto secrets = store_.JobSecrets(job.job_id());
    if (!secrets.ok()) {
      spdlog::error("job {}: {}", job.job_id(), secrets.status().ToString());
    } else {
      for (const auto& [name, value] : *secrets) {
        (*offer.mutable_spec()->mutable_secret_env())[name] = value;
      }
    }
  }
  offer.set_model(job.model());
  *offer.mutable_assignments() = job.assignments();
  offer.set_price_per_card_hour(job.price_per_card_hour());
  offer.set_currency(job.currency());
  offer.set_attempt(job.attempts());
  // If this send fails, the resend timer or the provider's next
  // registration deals with it.
  offers_out_[job.job_id()] = Now();
  events_.ToProvider(job.provider(), v1::MESSAGE_TYPE_PLACEMENT_OFFER, offer);
}

void JobManager::ResendUnansweredOffers(int64_t now_ms) {
  std::vector<std::string> due;
  for (const auto& [job_id, sent_ms] : offers_out_) {
    if (now_ms - sent_ms >= options_.offer_resend_ms) due.push_back(job_id);
  }
  for (const auto& job_id : due) {
    auto job = store_.GetJob(job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_PLACED) {
      offers_out_.erase(job_id);
      continue;
    }
    spdlog::info("job {}: no answer from {}; offering again", job_id,
                 job->provider());
    SendOffer(*job);
  }
}

void JobManager::SendCancel(const v1::JobInfo& job) {
  v1::PlacementCancel cancel;
  cancel.set_job_id(job.job_id());
  cancel.set_grace_ms(static_cast<uint32_t>(options_.cancel_grace_ms));
  cancel.set_reason(job.reason());
  events_.ToProvider(job.provider(), v1::MESSAGE_TYPE_PLACEMENT_CANCEL, cancel);
}

StatusOr<std::vector<v1::JobInfo>> JobManager::ActiveOn(
    const std::string& provider) {
  std::vector<v1::JobInfo> jobs;
  auto it = active_by_provider_.find(provider);
  if (it == active_by_provider_.end()) return jobs;
  jobs.reserve(it->second.size());
  for (const auto& job_id : it->second) {
    CN_ASSIGN_OR_RETURN(v1::JobInfo job, store_.GetJob(job_id));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

size_t JobManager::active_count() const { return active_provider_of_.size(); }

void JobManager::CountUnfinished(const v1::JobInfo& job) {
  if (IsTerminal(job.state())) {
    auto known = unfinished_consumer_of_.find(job.job_id());
    if (known == unfinished_consumer_of_.end()) return;
    auto count = unfinished_by_consumer_.find(known->second);
    if (count != unfinished_by_consumer_.end() && --count->second == 0) {
      unfinished_by_consumer_.erase(count);
    }
    unfinished_consumer_of_.erase(known);
    return;
  }
  if (unfinished_consumer_of_.emplace(job.job_id(), job.consumer()).second) {
    ++unfinished_by_consumer_[job.consumer()];
  }
}

Status JobManager::AdmitNewJob(const std::string& consumer) {
  const uint64_t limit = options_.max_unfinished_jobs_per_consumer;
  if (limit == 0) return OkStatus();
  auto count = unfinished_by_consumer_.find(consumer);
  if (count == unfinished_by_consumer_.end() || count->second < limit) {
    return OkStatus();
  }
  // At the limit by our count: the store decides (at most once a second
  // per consumer, so a flood at the limit costs no scans).
  uint64_t unfinished = count->second;
  const int64_t now = Now();
  int64_t& recounted = unfinished_recounted_ms_[consumer];
  if (now - recounted >= 1000 || now < recounted) {
    recounted = now;
    CN_ASSIGN_OR_RETURN(unfinished, store_.CountUnfinishedJobs(consumer));
    if (unfinished < limit) {
      spdlog::warn("consumer {}: {} unfinished jobs counted, {} stored",
                   consumer, count->second, unfinished);
      // The store's figure replaces ours; the jobs still tracked count it
      // down as they end.
      count->second = unfinished;
      return OkStatus();
    }
  }
  return ResourceExhaustedError(
      "consumer " + consumer + " has " + std::to_string(unfinished) +
      " unfinished jobs, the most one consumer may have (" +
      std::to_string(limit) +
      "); submit again when some have finished, or cancel some");
}

void JobManager::Track(const v1::JobInfo& job) {
  CountUnfinished(job);
  auto known = active_provider_of_.find(job.job_id());
  const bool active = ActiveHere(job);
  TrackPreemptible(job, active);
  if (known != active_provider_of_.end()) {
    if (active && known->second == job.provider()) return;
    auto set = active_by_provider_.find(known->second);
    if (set != active_by_provider_.end()) {
      set->second.erase(job.job_id());
      if (set->second.empty()) active_by_provider_.erase(set);
    }
    active_provider_of_.erase(known);
  }
  if (!active) return;
  active_provider_of_[job.job_id()] = job.provider();
  active_by_provider_[job.provider()].insert(job.job_id());
}

void JobManager::TrackPreemptible(const v1::JobInfo& job, bool active) {
  if (!active || !job.spec().preemptible()) {
    // Only a tracked candidate can be a victim, so every other write (the
    // common case, on the submit path) stops here.
    if (preemptible_.erase(job.job_id()) == 0) return;
    ++preemptible_generation_;
    // A victim that stopped: the job it made room for may plan again.
    for (auto it = preempting_for_.begin(); it != preempting_for_.end();) {
      it->second.erase(job.job_id());
      it = it->second.empty() ? preempting_for_.erase(it) : std::next(it);
    }
    return;
  }
  if (job.preemption_requested() && !job.preempted_for().empty()) {
    // Also after a restart: the job it stops for waits for it.
    preempting_for_[job.preempted_for()].insert(job.job_id());
  }
  PreemptionCandidate candidate;
  candidate.job_id = job.job_id();
  candidate.priority = job.spec().priority();
  candidate.preemptible = true;
  candidate.stopping = job.cancel_requested() || job.preemption_requested();
  candidate.started_ms =
      job.state() == v1::JOB_STATE_RUNNING ? job.started_ms() : 0;
  for (const auto& assignment : job.assignments()) {
    const uint64_t per_card = assignment.milli() == 0 ? 1000 : assignment.milli();
    candidate.milli += per_card * assignment.device_indices_size();
  }
  candidate.preemptions = job.preemptions();
  candidate.last_preempted_ms = job.last_preempted_ms();
  auto [it, inserted] = preemptible_.try_emplace(job.job_id(), candidate);
  if (inserted || it->second.stopping != candidate.stopping ||
      it->second.started_ms != candidate.started_ms) {
    ++preemptible_generation_;
  }
  it->second = std::move(candidate);
}

void JobManager::Untrack(const std::string& job_id) {
  ++release_generation_;
  offers_out_.erase(job_id);
  registry_.Release(job_id);
  queue_.MarkStopped(job_id);
}

}  // namespace computenet::broker
