// Scheduling: matching queued jobs to free capacity and moving jobs through
// their state machine. Every transition is persisted before anyone is told.
#include <spdlog/spdlog.h>

#include "broker_impl.h"
#include "computenet/broker/job_rules.h"

namespace computenet::broker {

Status BrokerImpl::LoadState() {
  CN_RETURN_IF_ERROR(store_->MarkAllProvidersOffline());
  // Known providers start offline; the lost-job timer runs from now, so jobs
  // on a provider that never returns after this restart still end.
  CN_ASSIGN_OR_RETURN(auto providers, store_->ListProviders());
  for (const auto& [name, registration] : providers) {
    ProviderEntry& entry = registry_.Register(name, registration, "", Now());
    entry.online = false;
    entry.lost_since_ms = Now();
  }
  CN_ASSIGN_OR_RETURN(auto queued, store_->JobsInStates({v1::JOB_STATE_QUEUED}));
  for (const auto& job : queued) queue_.push_back(job.job_id());
  CN_ASSIGN_OR_RETURN(auto active, store_->JobsInStates({v1::JOB_STATE_PLACED,
                                                         v1::JOB_STATE_RUNNING}));
  // Cards of jobs that were out when the broker stopped stay taken until
  // their provider re-registers and reconciles.
  for (const auto& job : active) {
    registry_.Allocate(job.job_id(), job.provider(),
                       {job.assignments().begin(), job.assignments().end()});
  }
  spdlog::info("loaded {} queued and {} active jobs", queued.size(),
               active.size());
  return OkStatus();
}

Status BrokerImpl::SaveJob(const v1::JobInfo& job) {
  CN_RETURN_IF_ERROR(store_->UpdateJob(job, Now()));
  Notify(job);
  return OkStatus();
}

void BrokerImpl::Schedule() {
  if (!schedule_needed_ || queue_.empty()) return;
  schedule_needed_ = false;
  auto capacity = registry_.OnlineCapacity();
  for (auto it = queue_.begin(); it != queue_.end();) {
    auto job = store_->GetJob(*it);
    if (!job.ok() || job->state() != v1::JOB_STATE_QUEUED) {
      it = queue_.erase(it);
      continue;
    }
    MatchOutcome outcome =
        matcher_->Match(job->spec(), capacity, rejected_by_[job->job_id()]);
    if (!outcome.placement) {
      if (job->reason() != outcome.reason) {
        job->set_reason(outcome.reason);
        Status saved = SaveJob(*job);
        if (!saved.ok()) spdlog::error("{}", saved.ToString());
      }
      ++it;
      continue;
    }
    Status placed = PlaceJob(*job, *outcome.placement);
    if (!placed.ok()) {
      // FAILED_PRECONDITION: it waits for funds (the reason says so).
      if (placed.code() != StatusCode::kFailedPrecondition) {
        spdlog::error("placing job {}: {}", job->job_id(), placed.ToString());
      }
      ++it;
      continue;
    }
    it = queue_.erase(it);
    capacity = registry_.OnlineCapacity();
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
  job.set_attempts(job.attempts() + 1);
  job.set_reason("offered to " + placement.provider);
  // Holds its worst-case cost with the PLACED row, or leaves it queued.
  CN_RETURN_IF_ERROR(HoldAndSave(job));
  registry_.Allocate(job.job_id(), placement.provider, placement.assignments);
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
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_provider("");
  job.set_model("");
  job.clear_assignments();
  job.set_price_per_card_hour(0);
  job.set_currency("");
  job.set_reason(reason);
  CN_RETURN_IF_ERROR(SaveJob(job));
  ReleaseJobHold(job, "requeued: " + reason);
  queue_.push_back(job.job_id());
  schedule_needed_ = true;
  return OkStatus();
}

Status BrokerImpl::FinishJob(v1::JobInfo& job, v1::JobState state,
                             int32_t exit_code, const std::string& reason) {
  registry_.Release(job.job_id());
  rejected_by_.erase(job.job_id());
  offers_out_.erase(job.job_id());
  job.set_state(state);
  job.set_exit_code(exit_code);
  job.set_finished_ms(Now());
  job.set_reason(reason);
  CN_RETURN_IF_ERROR(SaveJob(job));
  ReleaseJobHold(job, "job " + JobStateName(state));
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
