// Scheduling: matching queued jobs to free capacity and moving jobs through
// their state machine. Every transition is persisted before anyone is told.
#include <spdlog/spdlog.h>

#include "core/imports.h"
#include "core/broker_impl.h"
#include "jobs/job_rules.h"

namespace computenet::broker {

Status BrokerImpl::LoadState() {
  CN_RETURN_IF_ERROR(store_->MarkAllProvidersOffline());
  // Known providers start offline; the lost-job timer runs from now, so jobs
  // on a provider that never returns after this restart still end.
  CN_ASSIGN_OR_RETURN(auto providers, store_->ListProviders());
  {
    CapacityIndex::BulkUpdate bulk(registry_.capacity());
    for (const auto& [name, registration] : providers) {
      registry_.Register(name, registration, "", Now());
      registry_.SetOnline(name, false, Now());
    }
    CN_RETURN_IF_ERROR(LoadProviderStats());
  }
  CN_ASSIGN_OR_RETURN(auto queued, store_->JobsInStates({v1::JOB_STATE_QUEUED}));
  for (const auto& job : queued) {
    // A forward that was out when we stopped waits for reconciliation
    // with that peer, so it cannot run in two places.
    if (!job.remote_broker().empty()) continue;
    EnqueueJob(job);
  }
  CN_ASSIGN_OR_RETURN(auto active, store_->JobsInStates({v1::JOB_STATE_PLACED,
                                                         v1::JOB_STATE_RUNNING}));
  // Cards of jobs that were out when the broker stopped stay taken until
  // their provider re-registers and reconciles.
  for (const auto& job : active) {
    if (!job.remote_broker().empty()) continue;  // runs at a peer
    registry_.Allocate(job.job_id(), job.provider(),
                       {job.assignments().begin(), job.assignments().end()},
                       job.spec().cpu_milli_per_card(),
                       job.spec().host_memory_mib_per_card());
    const int64_t began = job.started_ms() > 0 ? job.started_ms() : Now();
    queue_.MarkRunning(job.job_id(), job.organization(),
                       PlacementRequest::FromSpec(job.spec()).DemandMilli(),
                       began + int64_t{job.spec().max_duration_s()} * 1000);
  }
  spdlog::info("loaded {} queued and {} active jobs", queued.size(),
               active.size());
  return OkStatus();
}

Status BrokerImpl::SaveJob(const v1::JobInfo& job) {
  CN_RETURN_IF_ERROR(store_->UpdateJob(job, Now()));
  Notify(job);
  // A peer's job: its home broker streams the change to its consumer.
  if (!job.home_broker().empty()) SendRemoteUpdate(job);
  return OkStatus();
}

Status BrokerImpl::SaveJobReleasingHold(const v1::JobInfo& job,
                                        const std::string& why) {
  // The job's row and the release of its hold commit together or not at
  // all; a crash can no longer leave an ended job holding its consumer's
  // money until the next start.
  std::optional<PostedEntry> released;
  Status stored = store_->database().RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(store_->UpdateJob(job, Now()));
    CN_ASSIGN_OR_RETURN(released, ledger_.ReleaseHold(job.job_id(), why, Now()));
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(stored);
  if (released.has_value()) {
    spdlog::info("job {}: released {} minor units held for it ({})",
                 job.job_id(), released->amount, why);
    schedule_needed_ = true;  // the consumer's other jobs may fit now
  }
  // Events only after the transaction that made them true.
  Notify(job);
  if (!job.home_broker().empty()) SendRemoteUpdate(job);
  return OkStatus();
}

void BrokerImpl::Schedule() {
  if (!schedule_needed_ || queue_.size() == 0) return;
  schedule_needed_ = false;
  // The queue places on the capacity index as it goes; here every outcome
  // is routed (federation: docs/federation.md, "Routing"), persisted and
  // dispatched (docs/matching.md, "Queue").
  JobQueue::PassResult pass = queue_.Schedule(registry_.capacity(), *matcher_);
  const std::vector<PeerView> peers = PeerViews();
  // Tries to send a job that is not running here to a peer. Returns true if
  // the job left this broker's hands (forwarded or failed).
  auto route_away = [&](v1::JobInfo& job, const std::string& local_reason,
                        bool never_fits_here) {
    RoutingDecision decision = Route(job, std::nullopt, peers,
                                     declined_by_[job.job_id()], routing_);
    if (decision.kind == RoutingDecision::Kind::kForward) {
      queue_.Remove(job.job_id());
      queue_reasons_.erase(job.job_id());
      Status forwarded = ForwardJob(job, decision.peer);
      if (forwarded.ok()) return true;
      EnqueueJob(job);
      // FAILED_PRECONDITION: its consumer cannot cover the forward's budget;
      // it waits for funds, saying so (ForwardJob stored the reason).
      if (forwarded.code() == StatusCode::kFailedPrecondition) return true;
      spdlog::error("forwarding job {}: {}", job.job_id(), forwarded.ToString());
      return false;
    }
    if (decision.kind == RoutingDecision::Kind::kReject ||
        (never_fits_here && (links_.empty() || !job.home_broker().empty()))) {
      queue_.Remove(job.job_id());
      queue_reasons_.erase(job.job_id());
      Status failed = FinishJob(job, v1::JOB_STATE_FAILED, -1,
                                decision.kind == RoutingDecision::Kind::kReject
                                    ? decision.reason
                                    : local_reason);
      if (!failed.ok()) spdlog::error("{}", failed.ToString());
      return true;
    }
    return false;
  };

  for (const auto& outcome : pass.never_fit) {
    queue_reasons_.erase(outcome.job_id);
    auto job = store_->GetJob(outcome.job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_QUEUED) continue;
    // Never here may still be somewhere: a peer with a bigger fabric.
    if (route_away(*job, outcome.reason, /*never_fits_here=*/true)) continue;
    if (!queue_.Contains(job->job_id())) EnqueueJob(*job);
    const std::string reason =
        outcome.reason + "; waiting for a peer that can take it";
    if (job->reason() != reason) {
      job->set_reason(reason);
      Status saved = SaveJob(*job);
      if (!saved.ok()) spdlog::error("{}", saved.ToString());
    }
  }
  for (const auto& outcome : pass.placed) {
    queue_reasons_.erase(outcome.job_id);
    auto job = store_->GetJob(outcome.job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_QUEUED) {
      registry_.Release(outcome.job_id);
      queue_.MarkStopped(outcome.job_id);
      continue;
    }
    // It fits here; a peer much cheaper for it still wins (the margin rule).
    if (!links_.empty()) {
      RoutingDecision decision = Route(*job, outcome.placement, peers,
                                       declined_by_[job->job_id()], routing_);
      if (decision.kind == RoutingDecision::Kind::kForward) {
        registry_.Release(outcome.job_id);
        queue_.MarkStopped(outcome.job_id);
        Status forwarded = ForwardJob(*job, decision.peer);
        if (forwarded.ok()) continue;
        if (forwarded.code() != StatusCode::kFailedPrecondition) {
          spdlog::error("forwarding job {}: {}", job->job_id(),
                        forwarded.ToString());
        }
        EnqueueJob(*job);
        continue;
      }
    }
    Status placed = PlaceJob(*job, *outcome.placement);
    if (!placed.ok()) {
      // FAILED_PRECONDITION: its consumer cannot cover the hold; it waits
      // for funds (HoldAndSave left it QUEUED with the reason).
      if (placed.code() != StatusCode::kFailedPrecondition) {
        spdlog::error("placing job {}: {}", job->job_id(), placed.ToString());
      }
      registry_.Release(outcome.job_id);
      queue_.MarkStopped(outcome.job_id);
      EnqueueJob(*job);
    }
  }
  for (const auto& outcome : pass.waiting) {
    auto job = store_->GetJob(outcome.job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_QUEUED) continue;
    if (!links_.empty() && route_away(*job, outcome.reason, false)) continue;
    auto& reported = queue_reasons_[outcome.job_id];
    if (reported == outcome.reason) continue;
    reported = outcome.reason;
    if (job->reason() == outcome.reason) continue;
    job->set_reason(outcome.reason);
    Status saved = SaveJob(*job);
    if (!saved.ok()) spdlog::error("{}", saved.ToString());
  }
}

Status BrokerImpl::PlaceJob(v1::JobInfo& job, const Placement& placement) {
  job.set_state(v1::JOB_STATE_PLACED);
  job.set_provider(placement.provider);
  job.set_model(placement.model);
  job.clear_assignments();
  for (const auto& assignment : placement.assignments) {
    *job.add_assignments() = assignment;
  }
  job.set_price_per_card_hour(placement.price_per_card_hour);
  job.set_currency(placement.currency);
  job.set_region(options_.region);
  job.set_attempts(job.attempts() + 1);
  job.set_spare(placement.spare);
  job.set_a100_equivalents_milli(placement.a100_milli);
  job.set_compute_source(placement.compute_basis);
  job.set_reason("offered to " + placement.provider);
  // Holds its worst-case cost with the PLACED row, or leaves it queued.
  CN_RETURN_IF_ERROR(HoldAndSave(job));
  registry_.Allocate(job.job_id(), placement.provider, placement.assignments,
                     job.spec().cpu_milli_per_card(),
                     job.spec().host_memory_mib_per_card());
  spdlog::info("job {} placed on {}: {} x {} at {} minor units of {} per card-hour",
               job.job_id(), placement.provider, TotalCards(job),
               placement.model, placement.price_per_card_hour,
               placement.currency);
  SendOffer(job);
  return OkStatus();
}

Status BrokerImpl::RequeueJob(v1::JobInfo& job, const std::string& reason) {
  if (job.cancel_requested()) {
    // The consumer asked to cancel while it was out: it must not run again.
    return FinishJob(job, v1::JOB_STATE_CANCELLED, -1,
                     "cancelled before it started (" + reason + ")");
  }
  offers_out_.erase(job.job_id());
  registry_.Release(job.job_id());
  queue_.MarkStopped(job.job_id());
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_provider("");
  job.set_model("");
  job.clear_assignments();
  job.set_price_per_card_hour(0);
  job.set_currency("");
  job.set_spare(false);
  job.set_preemption_requested(false);
  job.set_a100_equivalents_milli(0);
  job.set_compute_source("");
  job.set_reason(reason);
  CN_RETURN_IF_ERROR(SaveJobReleasingHold(job, "requeued: " + reason));
  EnqueueJob(job);
  schedule_needed_ = true;
  return OkStatus();
}

Status BrokerImpl::FinishJob(v1::JobInfo& job, v1::JobState state,
                             int32_t exit_code, const std::string& reason) {
  registry_.Release(job.job_id());
  queue_.MarkStopped(job.job_id());
  queue_.Remove(job.job_id());
  queue_reasons_.erase(job.job_id());
  rejected_by_.erase(job.job_id());
  offers_out_.erase(job.job_id());
  job.set_state(state);
  job.set_exit_code(exit_code);
  job.set_finished_ms(Now());
  job.set_reason(reason);
  CN_RETURN_IF_ERROR(SaveJobReleasingHold(job, "job " + JobStateName(state)));
  schedule_needed_ = true;
  spdlog::info("job {} {}{}{}", job.job_id(), JobStateName(state),
               reason.empty() ? "" : ": ", reason);
  return OkStatus();
}

void BrokerImpl::SendOffer(const v1::JobInfo& job) {
  ProviderEntry* provider = registry_.Find(job.provider());
  if (provider == nullptr) return;
  v1::PlacementOffer offer;
  offer.set_job_id(job.job_id());
  offer.set_consumer(job.consumer());
  *offer.mutable_spec() = job.spec();
  offer.set_model(job.model());
  *offer.mutable_assignments() = job.assignments();
  offer.set_price_per_card_hour(job.price_per_card_hour());
  offer.set_currency(job.currency());
  offer.set_attempt(job.attempts());
  // If this send fails, the resend timer or the provider's next
  // registration deals with it.
  offers_out_[job.job_id()] = Now();
  SendToProvider(*provider, v1::MESSAGE_TYPE_PLACEMENT_OFFER, offer);
}

void BrokerImpl::ResendUnansweredOffers(int64_t now_ms) {
  const int64_t resend_after =
      static_cast<int64_t>(options_.heartbeat_interval_ms) *
      options_.heartbeat_liveness * 2;
  std::vector<std::string> due;
  for (const auto& [job_id, sent_ms] : offers_out_) {
    if (now_ms - sent_ms >= resend_after) due.push_back(job_id);
  }
  for (const auto& job_id : due) {
    auto job = store_->GetJob(job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_PLACED) {
      offers_out_.erase(job_id);
      continue;
    }
    spdlog::info("job {}: no answer from {}; offering again", job_id,
                 job->provider());
    SendOffer(*job);
  }
}

void BrokerImpl::SendCancel(const v1::JobInfo& job) {
  ProviderEntry* provider = registry_.Find(job.provider());
  if (provider == nullptr) return;
  v1::PlacementCancel cancel;
  cancel.set_job_id(job.job_id());
  cancel.set_grace_ms(static_cast<uint32_t>(options_.cancel_grace_ms));
  cancel.set_reason(job.reason());
  SendToProvider(*provider, v1::MESSAGE_TYPE_PLACEMENT_CANCEL, cancel);
}

}  // namespace computenet::broker
