// The provider side of the broker: registration and reconciliation, offer
// answers, job status and signed usage.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "core/imports.h"
#include "core/broker_impl.h"
#include "jobs/job_rules.h"
#include "computenet/common/usage_record.h"

namespace computenet::broker {
namespace {

// How far ahead of the broker's clock a provider's clock may run.
constexpr int64_t kMaxUsageClockSkewMs = 10 * 60 * 1000;

}  // namespace

ProviderEntry* BrokerImpl::RegisteredProvider(const Request& request) {
  ProviderEntry* entry = registry_.Find(request.peer.name);
  if (entry == nullptr || !entry->online ||
      entry->routing_id != request.frame.routing_id) {
    return nullptr;
  }
  return entry;
}

void BrokerImpl::OnRegisterProvider(const Request& request) {
  v1::RegisterProviderReply reply;
  auto registration = DecodeBody<v1::RegisterProvider>(request.envelope);
  Status status = registration.status();
  if (status.ok()) status = ValidateRegistration(*registration);
  // One agent per key. A registration from another connection while the
  // registered one is alive (heard from within the liveness window) is
  // refused unless it carries the same agent instance: the same instance
  // is that agent restarted (its old connection is dead, the broker just
  // has not noticed yet) and takes over at once; another instance is a
  // second agent with a copy of the key, which must not silently steal the
  // registration (it may once the first is declared lost). Agents without
  // durable state send no instance and keep the old rule among themselves.
  if (status.ok()) {
    const ProviderEntry* current = registry_.Find(request.peer.name);
    if (current != nullptr && current->online &&
        current->routing_id != request.frame.routing_id &&
        current->registration.agent_instance() !=
            registration->agent_instance()) {
      spdlog::warn(
          "provider {}: refused a second agent (instance '{}'); "
          "instance '{}' is connected",
          request.peer.name, TruncateUtf8(registration->agent_instance(), 64),
          current->registration.agent_instance());
      status = AlreadyExistsError(
          "provider " + request.peer.name +
          " is already served by another agent (instance '" +
          current->registration.agent_instance() +
          "'), connected now; run one agent per key, or stop that one and "
          "retry after " +
          std::to_string(int64_t{options_.heartbeat_interval_ms} *
                         options_.heartbeat_liveness) +
          " ms");
    }
  }
  if (status.ok()) status = registry_.capacity().catalog().CheckRegistration(
      *registration);
  if (status.ok()) {
    status = store_->SaveProviderRegistration(request.peer.name, *registration,
                                              Now());
  }
  if (!status.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY, reply,
                 status);
  }
  registry_.Register(request.peer.name, *registration, request.frame.routing_id,
                     Now());
  status = ReconcileProvider(request.peer.name, *registration, &reply);
  if (!status.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY, reply,
                 status);
  }
  reply.set_provider_name(request.peer.name);
  reply.set_heartbeat_interval_ms(
      static_cast<uint32_t>(options_.heartbeat_interval_ms));
  reply.set_heartbeat_liveness(
      static_cast<uint32_t>(options_.heartbeat_liveness));
  uint32_t cards = 0;
  for (const auto& node : registration->nodes()) {
    for (const auto& accelerator : node.accelerators()) {
      cards += accelerator.count();
    }
  }
  spdlog::info("provider {} registered: site {}, region {}, {} nodes, {} cards",
               request.peer.name, registration->site(), registration->region(),
               registration->nodes_size(), cards);
  Reply(request, v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY, reply);
  jobs_->RequestSchedule();
}

void BrokerImpl::ExpireUnlistedJobs(int64_t now_ms) {
  for (auto it = unlisted_since_.begin(); it != unlisted_since_.end();) {
    if (now_ms - it->second <= options_.lost_job_timeout_ms) {
      ++it;
      continue;
    }
    const std::string job_id = it->first;
    it = unlisted_since_.erase(it);
    proceeded_.erase(job_id);
    auto job = store_->GetJob(job_id);
    if (!job.ok() || IsTerminal(job->state()) ||
        job->state() == v1::JOB_STATE_QUEUED || job->provider().empty()) {
      continue;
    }
    const std::string provider = job->provider();
    RecordProviderEvent(provider, ProviderEvent::kProviderFailure);
    Status failed =
        jobs_->Finish(*job, v1::JOB_STATE_FAILED, -1,
                      "provider " + provider +
                          " re-registered without the job and did not "
                          "report it within " +
                          std::to_string(options_.lost_job_timeout_ms) + " ms");
    if (!failed.ok()) spdlog::error("{}", failed.ToString());
  }
}

Status BrokerImpl::ReconcileProvider(const std::string& name,
                                     const v1::RegisterProvider& registration,
                                     v1::RegisterProviderReply* reply) {
  std::set<std::string> reported(registration.active_job_ids().begin(),
                                 registration.active_job_ids().end());
  CN_ASSIGN_OR_RETURN(auto jobs, jobs_->ActiveOn(name));
  std::set<std::string> ours;
  for (auto& job : jobs) {
    ours.insert(job.job_id());
    if (reported.count(job.job_id()) != 0) {
      unlisted_since_.erase(job.job_id());
      // Still there. If the consumer cancelled meanwhile, say so again.
      if (job.cancel_requested()) jobs_->SendCancel(job);
      continue;
    }
    // A job the provider was told to proceed with may have run, or still
    // run, whatever this registration says (an agent that lost its memory
    // lists nothing): requeueing it could run it twice, failing it could
    // lose finished work. It stays until the provider reports how it ended
    // or lost_job_timeout_ms passes (ExpireUnlistedJobs). Only an offer
    // never answered with "proceed" in this broker's run is requeued.
    // (After a broker restart that fact is gone: the broker relies on the
    // agent's durable state to list what it accepted.)
    auto told = proceeded_.find(job.job_id());
    const bool proceeded =
        job.state() == v1::JOB_STATE_RUNNING ||
        (told != proceeded_.end() && told->second == job.attempts());
    if (proceeded) {
      if (unlisted_since_.emplace(job.job_id(), Now()).second) {
        spdlog::warn(
            "provider {} re-registered without job {} ({}); kept "
            "until it reports the job or {} ms pass",
            name, job.job_id(), v1::JobState_Name(job.state()),
            options_.lost_job_timeout_ms);
      }
      continue;
    }
    RecordProviderEvent(name, ProviderEvent::kProviderFailure);
    CN_RETURN_IF_ERROR(jobs_->Requeue(
        job, "provider " + name + " reconnected without the offer"));
  }
  for (const auto& job_id : reported) {
    if (ours.count(job_id) == 0) reply->add_cancel_job_ids(job_id);
  }
  return OkStatus();
}

void BrokerImpl::OnPlacementResponse(const Request& request) {
  v1::PlacementResponseReply reply;
  auto response = DecodeBody<v1::PlacementResponse>(request.envelope);
  if (!response.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, reply,
                 response.status());
  }
  reply.set_job_id(response->job_id());
  if (RegisteredProvider(request) == nullptr) {
    return Reply(request, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, reply,
                 FailedPreconditionError("register first"));
  }
  auto job = store_->GetJob(response->job_id());
  if (!job.ok() && job.status().code() != StatusCode::kNotFound) {
    return Reply(request, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, reply,
                 job.status());
  }
  if (!job.ok() || job->provider() != request.peer.name) {
    return Reply(request, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, reply,
                 NotFoundError("no job " + response->job_id() +
                               " placed on you"));
  }
  if (job->state() == v1::JOB_STATE_RUNNING) {
    reply.set_proceed(response->accepted());  // a repeated answer
    return Reply(request, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, reply);
  }
  if (job->state() != v1::JOB_STATE_PLACED) {
    reply.set_proceed(false);
    return Reply(request, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, reply);
  }
  jobs_->OfferAnswered(job->job_id());
  Status status;
  // A rejection for a passing condition (the agent still holds the cards
  // for an offer we have since withdrawn) is retried on the same provider
  // without spending an attempt. The code travels in `status`; an agent
  // that sends only the text is read by its "CODE:" prefix.
  auto refused_with = [&](StatusCode code) {
    return response->has_status()
               ? StatusFromProto(response->status()).code() == code
               : response->reason().rfind(StatusCodeName(code), 0) == 0;
  };
  const bool transient = refused_with(StatusCode::kFailedPrecondition) ||
                         refused_with(StatusCode::kUnavailable);
  if (!response->accepted() && transient) {
    job->set_attempts(job->attempts() > 0 ? job->attempts() - 1 : 0);
    status = jobs_->Requeue(*job, "offer refused for now by " + request.peer.name +
                                  ": " + TruncateUtf8(response->reason(), 256));
  } else if (!response->accepted()) {
    jobs_->RejectedBy(job->job_id(), request.peer.name);
    RecordProviderEvent(request.peer.name, ProviderEvent::kProviderFailure);
    std::string reason = "rejected by " + request.peer.name + ": " +
                         TruncateUtf8(response->reason(), 256);
    spdlog::info("job {} {}", job->job_id(), reason);
    if (job->attempts() >= jobs_->MaxAttempts(*job)) {
      status = jobs_->Finish(*job, v1::JOB_STATE_FAILED, -1,
                         reason + " (after " +
                             std::to_string(job->attempts()) + " attempts)");
    } else {
      status = jobs_->Requeue(*job, reason);
    }
  } else if (job->cancel_requested()) {
    // Cancelled while the offer was out: it must not start.
    status = jobs_->Finish(*job, v1::JOB_STATE_CANCELLED, -1,
                       "cancelled before it started");
  } else if (job->preemption_requested()) {
    // Its capacity was reclaimed while the offer was out.
    status = jobs_->EndPreemptedRun(*job);
  } else {
    reply.set_proceed(true);
    proceeded_[job->job_id()] = job->attempts();
  }
  Reply(request, v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY, reply, status);
}

void BrokerImpl::OnJobStatusUpdate(const Request& request) {
  v1::JobStatusUpdateReply reply;
  auto update = DecodeBody<v1::JobStatusUpdate>(request.envelope);
  if (!update.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY, reply,
                 update.status());
  }
  reply.set_job_id(update->job_id());
  if (RegisteredProvider(request) == nullptr) {
    return Reply(request, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY, reply,
                 FailedPreconditionError("register first"));
  }
  auto job = store_->GetJob(update->job_id());
  if (!job.ok() && job.status().code() != StatusCode::kNotFound) {
    return Reply(request, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY, reply,
                 job.status());
  }
  if (!job.ok() || job->provider() != request.peer.name) {
    return Reply(request, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY, reply,
                 PermissionDeniedError("job " + update->job_id() +
                                       " is not placed on you"));
  }
  Status status;
  // The provider has spoken about the job: it is no longer unaccounted for.
  unlisted_since_.erase(job->job_id());
  if (update->state() != v1::JOB_STATE_UNSPECIFIED) {
    proceeded_.erase(job->job_id());
  }
  if (IsTerminal(job->state())) {
    // Already final (a repeated report, or failed while the provider was
    // away): acknowledged, nothing changes.
  } else if (update->state() == v1::JOB_STATE_RUNNING) {
    if (job->state() == v1::JOB_STATE_PLACED) {
      // A RUNNING report's message is how the provider fences the job.
      job->set_sandbox(TruncateUtf8(update->message(), 512));
      status = jobs_->Start(*job, update->timestamp_ms());
    }
  } else if (IsTerminal(update->state()) && job->preemption_requested() &&
             update->state() != v1::JOB_STATE_SUCCEEDED) {
    // Stopped because the provider reclaimed its spare capacity: billed
    // through the usage report that came first, then requeued.
    status = jobs_->EndPreemptedRun(*job);
  } else if (IsTerminal(update->state())) {
    RecordProviderEvent(request.peer.name, ProviderEvent::kCompleted);
    // The agent shipped the job's last output before this report (same
    // connection, in order): its stderr's tail is kept with the job.
    KeepStderrTail(*job);
    status = jobs_->Finish(*job, update->state(), update->exit_code(),
                       TruncateUtf8(update->message(), 512));
  } else {
    status = InvalidArgumentError("a provider may report only RUNNING or a "
                                  "terminal state");
  }
  Reply(request, v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY, reply, status);
}

void BrokerImpl::OnUsageReport(const Request& request) {
  v1::UsageReportReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_USAGE_REPORT_REPLY, reply, status);
  };
  auto report = DecodeBody<v1::UsageReport>(request.envelope);
  if (!report.ok()) return respond(report.status());
  // Any key the provider holds or held: a record signed before a rotation
  // (resent from the agent's outbox on its new key) is still its record.
  // The connection, not the signature, is what a retired key loses.
  auto signing_keys = store_->SigningKeys(Role::kProvider, request.peer.name);
  if (!signing_keys.ok()) return respond(signing_keys.status());
  if (signing_keys->empty()) {
    return respond(PermissionDeniedError("provider is not enrolled"));
  }
  StatusOr<v1::UsageRecord> record =
      UnauthenticatedError("usage record signature does not verify");
  for (const std::string& key : *signing_keys) {
    record = VerifyUsageRecord(key, report->record(), report->signature());
    if (record.ok()) break;
  }
  if (!record.ok()) {
    spdlog::warn("provider {}: usage record rejected: {}", request.peer.name,
                 record.status().ToString());
    return respond(record.status());
  }
  reply.set_record_id(record->record_id());
  // A record cannot end in the future (beyond clock skew): it would bill
  // time not yet run and block every later record of the placement.
  if (record->end_ms() > Now() + kMaxUsageClockSkewMs) {
    return respond(InvalidArgumentError(
        "usage record ends " +
        std::to_string((record->end_ms() - Now()) / 1000) +
        " s in the future (more than the allowed clock skew)"));
  }
  if (record->provider() != request.peer.name) {
    return respond(PermissionDeniedError(
        "usage record names provider " + record->provider() + ", not you"));
  }
  auto job = store_->GetJob(record->job_id());
  if (!job.ok() && job.status().code() != StatusCode::kNotFound) {
    return respond(job.status());
  }
  if (!job.ok() || job->provider() != request.peer.name) {
    spdlog::warn("provider {}: usage for job {} that is not placed on it",
                 request.peer.name, record->job_id());
    return respond(PermissionDeniedError("job " + record->job_id() +
                                         " was not placed on you"));
  }
  if (record->cards() != TotalCards(*job) || record->model() != job->model()) {
    return respond(InvalidArgumentError(
        "usage record cards/model differ from the placement (" +
        std::to_string(TotalCards(*job)) + " x " + job->model() + ")"));
  }

  // Posts against the job's hold: contiguous intervals, each once, never
  // past cards x max duration (Ledger::PostUsage); the record, its charge
  // and the job's totals commit together.
  PostedUsage posted;
  Status status = store_->database().RunInTransaction([&]() -> Status {
    // Which placement of the job it bills: a run stopped by a reclaim and
    // the rerun hold and bill separately.
    const uint32_t attempt = std::max<uint32_t>(1, job->attempts());
    CN_ASSIGN_OR_RETURN(
        posted, ledger_.PostUsage(*job,
                                  StoredUsageRecord{request.peer.name,
                                                    record->record_id(),
                                                    job->job_id(),
                                                    report->record(),
                                                    report->signature(),
                                                    attempt},
                                  *record, Now()));
    if (posted.posted.duplicate) return OkStatus();
    if (record->closes_job() && !record->result_digest().empty()) {
      // What the consumer fetches is checked against these signed bytes.
      job->set_result_digest(record->result_digest());
      job->set_result_bytes(record->result_bytes());
      job->set_result_record(report->record());
      job->set_result_signature(report->signature());
    }
    // Totals over all the job's attempts (a hold covers one attempt).
    job->set_card_seconds(job->card_seconds() +
                          posted.posted.entry.billed_card_seconds());
    job->set_charged(job->charged() + posted.posted.amount);
    return store_->UpdateJob(*job, Now());
  });
  if (!status.ok()) return respond(status);
  reply.set_duplicate(posted.posted.duplicate);
  reply.set_amount(posted.posted.amount);
  reply.set_transaction_id(std::to_string(posted.posted.entry.sequence()));
  if (!posted.posted.duplicate) {
    spdlog::info("job {}: record {} charged {} minor units of {} ({} card-seconds "
                 "of {} on {} so far, {} in all)",
                 job->job_id(), record->record_id(), posted.posted.amount,
                 job->currency(), job->card_seconds(), job->model(),
                 request.peer.name, job->charged());
    Notify(*job);
    if (!job->home_broker().empty()) {
      SendUsageHome(*job, report->record(), report->signature(),
                    posted.posted.entry);
    }
  }
  respond(OkStatus());
  // After the reply the provider waits for: the job used all it may be
  // billed for, so it must stop.
  if (posted.hold_exhausted && !posted.released.has_value()) {
    StopExhaustedJob(*job);
  }
}

}  // namespace computenet::broker
