// Placement glue of the broker: feeding the JobQueue, providers' offer
// updates (new prices, spare capacity offered or reclaimed), preempting
// jobs on reclaimed capacity, and providers' track records (reliability).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "core/imports.h"
#include "core/broker_impl.h"
#include "jobs/job_rules.h"

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

}  // namespace

void BrokerImpl::EnqueueJob(const v1::JobInfo& job) {
  QueuedJob queued;
  queued.job_id = job.job_id();
  queued.organization =
      job.organization().empty() ? job.consumer() : job.organization();
  queued.priority = job.spec().priority();
  // A requeued job keeps its place in line and its age.
  queued.submitted_ms = job.created_ms();
  queued.sequence = SequenceOf(job.job_id());
  queued.request = PlacementRequest::FromSpec(job.spec());
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

uint32_t BrokerImpl::MaxAttempts(const v1::JobInfo& job) const {
  return job.spec().max_attempts() > 0 ? job.spec().max_attempts()
                                       : options_.max_attempts;
}

void BrokerImpl::RecordProviderEvent(const std::string& provider,
                                     ProviderEvent event) {
  Status stored = store_->RecordProviderEvent(provider, event, Now());
  if (!stored.ok()) spdlog::error("{}", stored.ToString());
  ProviderStats& stats = provider_stats_[provider];
  stats = WithEvent(stats, event);
  registry_.capacity().SetReliability(provider, ReliabilityPermille(stats));
}

Status BrokerImpl::LoadProviderStats() {
  CN_ASSIGN_OR_RETURN(provider_stats_, store_->ListProviderStats());
  for (const auto& [name, stats] : provider_stats_) {
    registry_.capacity().SetReliability(name, ReliabilityPermille(stats));
  }
  return OkStatus();
}

void BrokerImpl::OnUpdateOffer(const Request& request) {
  v1::UpdateOfferReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_UPDATE_OFFER_REPLY, reply, status);
  };
  auto update = DecodeBody<v1::UpdateOffer>(request.envelope);
  if (!update.ok()) return respond(update.status());
  ProviderEntry* provider = RegisteredProvider(request);
  if (provider == nullptr) {
    return respond(FailedPreconditionError("register first"));
  }
  v1::RegisterProvider registration = provider->registration;
  if (update->prices_size() > 0) {
    *registration.mutable_prices() = update->prices();
  }
  std::set<std::string> withdrawn;
  for (const auto& change : update->nodes()) {
    if (!v1::CapacityOffer_IsValid(change.offer())) {
      return respond(InvalidArgumentError("update offer: unknown offer kind " +
                                          std::to_string(change.offer())));
    }
    auto node = std::find_if(
        registration.mutable_nodes()->begin(),
        registration.mutable_nodes()->end(),
        [&](const v1::Node& n) { return n.name() == change.node(); });
    if (node == registration.mutable_nodes()->end()) {
      return respond(NotFoundError("update offer: no node '" +
                                   TruncateUtf8(change.node(), 64) +
                                   "' in your registration"));
    }
    if (change.offer() == v1::CAPACITY_OFFER_WITHDRAWN &&
        node->offer() != v1::CAPACITY_OFFER_WITHDRAWN) {
      withdrawn.insert(node->name());
    }
    node->set_offer(change.offer());
  }
  // The same rules as a registration: every installed model priced, no
  // negative or absurd price, models the catalog can resolve.
  Status valid = ValidateRegistration(registration);
  if (valid.ok()) {
    valid = registry_.capacity().catalog().CheckRegistration(registration);
  }
  if (!valid.ok()) return respond(valid.WithContext("update offer"));
  for (const auto& price : registration.prices()) {
    if (price.has_spare_per_card_hour() &&
        (price.spare_per_card_hour() < 0 ||
         price.spare_per_card_hour() > kMaxPricePerCardHour)) {
      return respond(InvalidArgumentError("update offer: spare price for " +
                                          price.model() + " out of range"));
    }
  }
  Status saved =
      store_->SaveProviderRegistration(request.peer.name, registration, Now());
  if (saved.ok()) {
    saved = registry_.UpdateRegistration(request.peer.name, registration);
  }
  if (!saved.ok()) return respond(saved);
  schedule_needed_ = true;
  // Preemptible jobs on reclaimed nodes get their notice now; others on
  // them run to their end (the node drains).
  if (!withdrawn.empty()) {
    const uint32_t grace = static_cast<uint32_t>(std::clamp<int64_t>(
        update->reclaim_grace_ms() > 0 ? update->reclaim_grace_ms()
                                       : options_.reclaim_grace_ms,
        0, options_.max_reclaim_grace_ms));
    auto jobs = store_->JobsInStates(
        {v1::JOB_STATE_PLACED, v1::JOB_STATE_RUNNING});
    if (!jobs.ok()) return respond(jobs.status());
    for (auto& job : *jobs) {
      if (job.provider() != request.peer.name || !job.spec().preemptible() ||
          job.preemption_requested() || job.cancel_requested()) {
        continue;
      }
      const bool on_reclaimed = std::any_of(
          job.assignments().begin(), job.assignments().end(),
          [&](const auto& a) { return withdrawn.count(a.node()) != 0; });
      if (!on_reclaimed) continue;
      Status preempted = PreemptJob(job, grace);
      if (!preempted.ok()) return respond(preempted);
      reply.add_preempted_job_ids(job.job_id());
    }
  }
  spdlog::info("provider {} updated its offer: {} price(s), {} node change(s), "
               "{} job(s) preempted",
               request.peer.name, update->prices_size(), update->nodes_size(),
               reply.preempted_job_ids_size());
  respond(OkStatus());
}

Status BrokerImpl::PreemptJob(v1::JobInfo& job, uint32_t grace_ms) {
  job.set_preemption_requested(true);
  // The consumer's notice (a JobEvent); the job's own is the SIGTERM its
  // provider sends at once, with SIGKILL after the grace period.
  job.set_reason("preempted: provider " + job.provider() +
                 " reclaims the spare capacity; stopping within " +
                 std::to_string(grace_ms) + " ms, then requeued");
  CN_RETURN_IF_ERROR(SaveJob(job));
  ProviderEntry* provider = registry_.Find(job.provider());
  if (provider != nullptr) {
    v1::PlacementCancel cancel;
    cancel.set_job_id(job.job_id());
    cancel.set_grace_ms(grace_ms);
    cancel.set_reason(job.reason());
    SendToProvider(*provider, v1::MESSAGE_TYPE_PLACEMENT_CANCEL, cancel);
  }
  spdlog::info("job {} preempted on {} (grace {} ms)", job.job_id(),
               job.provider(), grace_ms);
  return OkStatus();
}

Status BrokerImpl::EndPreemptedRun(v1::JobInfo& job) {
  job.set_preemptions(job.preemptions() + 1);
  const std::string where = job.provider();
  if (job.attempts() >= MaxAttempts(job)) {
    return FinishJob(job, v1::JOB_STATE_FAILED, -1,
                     "preempted by a reclaim on " + where + " after " +
                         std::to_string(job.attempts()) +
                         " attempt(s); no attempts left (max_attempts)");
  }
  return RequeueJob(job, "preempted: " + where +
                             " reclaimed its spare capacity; billed for the "
                             "run so far and requeued");
}

}  // namespace computenet::broker
