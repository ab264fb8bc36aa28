// Scheduling: matching queued jobs to free capacity and moving jobs through
// their state machine. Every transition is persisted before anyone is told.
#include <spdlog/spdlog.h>

#include "core/broker_impl.h"
#include "core/imports.h"
#include "jobs/job_rules.h"
#include "computenet/common/safe_text.h"

namespace computenet::broker {
namespace {

// HIGH jobs whose preemption is planned in one scheduling pass.
constexpr size_t kMaxPreemptionPlansPerPass = 8;

}  // namespace

Status BrokerImpl::LoadState() {
  CN_RETURN_IF_ERROR(store_->MarkAllProvidersOffline());
  // Known providers start offline; the lost-job timer runs from now, so jobs
  // on a provider that never returns after this restart still end.
  CN_ASSIGN_OR_RETURN(auto providers, store_->ListProviders());
  {
    CapacityIndex::BulkUpdate bulk(registry_.capacity());
    for (const auto& [name, registration] : providers) {
      // What is stored must never stop a restart: a registration that the
      // rules of this version refuse (stored by an older, laxer broker) is
      // left out until its provider registers again and is told why.
      if (Status valid = ValidateRegistration(registration); !valid.ok()) {
        spdlog::warn("stored registration of {} ignored: {}", SafeText(name),
                     valid.message());
        continue;
      }
      registry_.Register(name, registration, "", Now());
      registry_.SetOnline(name, false, Now());
    }
    CN_RETURN_IF_ERROR(LoadProviderStats());
  }
  CN_RETURN_IF_ERROR(jobs_->Load());
  return LoadDeclines();
}

void BrokerImpl::JobChanged(const v1::JobInfo& job) {
  if (metrics_) metrics_->JobChanged(job, Now());
  // Placed (here or at a peer) or ended: its declines are history.
  if (job.state() != v1::JOB_STATE_QUEUED) ForgetDeclines(job.job_id());
  if (IsTerminal(job.state())) logs_.Ended(job.job_id(), Now());
  Notify(job);
  // A peer's job: its home broker streams the change to its consumer.
  if (!job.home_broker().empty()) SendRemoteUpdate(job);
}

bool BrokerImpl::ToProvider(const std::string& provider, v1::MessageType type,
                            const google::protobuf::MessageLite& body) {
  ProviderEntry* entry = registry_.Find(provider);
  if (entry == nullptr) return false;
  return SendToProvider(*entry, type, body);
}

void BrokerImpl::Schedule() {
  if (!jobs_->TakeScheduleRequest() || jobs_->queue().size() == 0) return;
  // The queue places on the capacity index as it goes; here every outcome
  // is routed (federation: docs/federation.md, "Routing"), persisted and
  // dispatched (docs/matching.md, "Queue").
  JobQueue::PassResult pass =
      jobs_->queue().Schedule(registry_.capacity(), *matcher_);
  const std::vector<PeerView> peers = PeerViews();
  // Tries to send a job that is not running here to a peer. Returns true if
  // the job left this broker's hands (forwarded or failed).
  auto route_away = [&](v1::JobInfo& job, const std::string& local_reason,
                        bool never_fits_here) {
    RoutingDecision decision =
        Route(job, std::nullopt, peers, DeclinedNow(job.job_id()), routing_);
    if (decision.kind == RoutingDecision::Kind::kForward) {
      jobs_->queue().Remove(job.job_id());
      jobs_->ForgetWaitingReason(job.job_id());
      Status forwarded = ForwardJob(job, decision.peer);
      if (forwarded.ok()) return true;
      jobs_->Enqueue(job);
      // FAILED_PRECONDITION: its consumer cannot cover the forward's budget;
      // it waits for funds, saying so (ForwardJob stored the reason).
      if (forwarded.code() == StatusCode::kFailedPrecondition) return true;
      spdlog::error("forwarding job {}: {}", job.job_id(),
                    forwarded.ToString());
      return false;
    }
    if (decision.kind == RoutingDecision::Kind::kReject ||
        (never_fits_here && (links_.empty() || !job.home_broker().empty()))) {
      jobs_->queue().Remove(job.job_id());
      jobs_->ForgetWaitingReason(job.job_id());
      Status failed = jobs_->Finish(
          job, v1::JOB_STATE_FAILED, -1,
          decision.kind == RoutingDecision::Kind::kReject ? decision.reason
                                                          : local_reason);
      if (!failed.ok()) spdlog::error("{}", failed.ToString());
      return true;
    }
    return false;
  };

  for (const auto& outcome : pass.never_fit) {
    jobs_->ForgetWaitingReason(outcome.job_id);
    auto job = store_->GetJob(outcome.job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_QUEUED) continue;
    // Never here may still be somewhere: a peer with a bigger fabric.
    if (route_away(*job, outcome.reason, /*never_fits_here=*/true)) continue;
    if (!jobs_->queue().Contains(job->job_id())) jobs_->Enqueue(*job);
    const std::string reason = outcome.reason +
                               "; waiting for a peer that can take it" +
                               DeclineNote(job->job_id());
    if (job->reason() != reason) {
      job->set_reason(reason);
      Status saved = jobs_->Save(*job);
      if (!saved.ok()) spdlog::error("{}", saved.ToString());
    }
  }
  for (const auto& outcome : pass.placed) {
    jobs_->ForgetWaitingReason(outcome.job_id);
    auto job = store_->GetJob(outcome.job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_QUEUED) {
      registry_.Release(outcome.job_id);
      jobs_->queue().MarkStopped(outcome.job_id);
      continue;
    }
    // It fits here; a peer much cheaper for it still wins (the margin rule).
    if (!links_.empty()) {
      RoutingDecision decision = Route(*job, outcome.placement, peers,
                                       DeclinedNow(job->job_id()), routing_);
      if (decision.kind == RoutingDecision::Kind::kForward) {
        registry_.Release(outcome.job_id);
        jobs_->queue().MarkStopped(outcome.job_id);
        Status forwarded = ForwardJob(*job, decision.peer);
        if (forwarded.ok()) continue;
        if (forwarded.code() != StatusCode::kFailedPrecondition) {
          spdlog::error("forwarding job {}: {}", job->job_id(),
                        forwarded.ToString());
        }
        jobs_->Enqueue(*job);
        continue;
      }
    }
    Status placed = jobs_->Place(*job, *outcome.placement);
    if (!placed.ok()) {
      // FAILED_PRECONDITION: its consumer cannot cover the hold; it waits
      // for funds (HoldAndSave left it QUEUED with the reason).
      if (placed.code() != StatusCode::kFailedPrecondition) {
        spdlog::error("placing job {}: {}", job->job_id(), placed.ToString());
      }
      registry_.Release(outcome.job_id);
      jobs_->queue().MarkStopped(outcome.job_id);
      jobs_->Enqueue(*job);
    }
  }
  for (const auto& outcome : pass.waiting) {
    // Without peers nothing routes a waiting job away: one whose reason has
    // not changed costs neither a read nor a write (a saturated queue holds
    // thousands).
    if (links_.empty() &&
        !jobs_->NoteWaitingReason(outcome.job_id, outcome.reason)) {
      continue;
    }
    auto job = store_->GetJob(outcome.job_id);
    if (!job.ok() || job->state() != v1::JOB_STATE_QUEUED) continue;
    std::string reason = outcome.reason;
    if (!links_.empty()) {
      if (route_away(*job, outcome.reason, false)) continue;
      // Which peer declined it, and when it is tried there again.
      reason += DeclineNote(job->job_id());
      if (!jobs_->NoteWaitingReason(outcome.job_id, reason)) continue;
    }
    // One whose victims are stopping keeps saying so.
    if (job->reason() == reason || jobs_->PreemptingFor(job->job_id())) {
      continue;
    }
    job->set_reason(reason);
    Status saved = jobs_->Save(*job);
    if (!saved.ok()) spdlog::error("{}", saved.ToString());
  }
  // Priority preemption (docs/matching.md): a HIGH job still waiting here
  // (not routed away) may stop lower-priority preemptible work. Bounded per
  // pass, so a burst of HIGH jobs cannot make one pass plan without end.
  size_t plans = 0;
  for (const auto& outcome : pass.waiting) {
    if (plans >= kMaxPreemptionPlansPerPass) break;
    const QueuedJob* queued = jobs_->queue().Find(outcome.job_id);
    if (queued == nullptr || queued->priority != v1::PRIORITY_CLASS_HIGH ||
        jobs_->PreemptingFor(outcome.job_id)) {
      continue;
    }
    ++plans;
    auto victims = jobs_->PreemptFor(*queued, *matcher_);
    if (!victims.ok()) {
      spdlog::error("preempting for job {}: {}", outcome.job_id,
                    victims.status().ToString());
    }
  }
}

}  // namespace computenet::broker
