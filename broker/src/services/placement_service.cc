// Placement glue of the broker: providers' offer
// updates (new prices, spare capacity offered or reclaimed), preempting
// jobs on reclaimed capacity, and providers' track records (reliability).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "core/imports.h"
#include "core/broker_impl.h"
#include "jobs/job_rules.h"

namespace computenet::broker {
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
  jobs_->RequestSchedule();
  // Preemptible jobs on reclaimed nodes get their notice now; others on
  // them run to their end (the node drains).
  if (!withdrawn.empty()) {
    const uint32_t grace = static_cast<uint32_t>(std::clamp<int64_t>(
        update->reclaim_grace_ms() > 0 ? update->reclaim_grace_ms()
                                       : options_.reclaim_grace_ms,
        0, options_.max_reclaim_grace_ms));
    auto jobs = jobs_->ActiveOn(request.peer.name);
    if (!jobs.ok()) return respond(jobs.status());
    for (auto& job : *jobs) {
      if (!job.spec().preemptible() ||
          job.preemption_requested() || job.cancel_requested()) {
        continue;
      }
      const bool on_reclaimed = std::any_of(
          job.assignments().begin(), job.assignments().end(),
          [&](const auto& a) { return withdrawn.count(a.node()) != 0; });
      if (!on_reclaimed) continue;
      Status preempted = jobs_->Preempt(job, grace);
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

}  // namespace computenet::broker
