// The consumer side of the broker: submit, status, cancel, list and the
// event stream. Every job lookup is checked against the caller's identity.
#include <spdlog/spdlog.h>

#include <spdlog/fmt/ranges.h>

#include <algorithm>

#include "core/imports.h"
#include "core/broker_impl.h"
#include "jobs/job_rules.h"

namespace computenet::broker {
namespace {

constexpr size_t kMaxWatchersPerConsumer = 64;
// Subscriptions of admins to every job are kept under this key.
constexpr char kAllConsumers[] = "*";
// Replies stay well under the transport's message limit.
constexpr size_t kMaxReplyBytes = kMaxMessageBytes / 2;

}  // namespace

StatusOr<v1::JobInfo> BrokerImpl::JobVisibleTo(const AuthenticatedPeer& peer,
                                               const std::string& job_id) {
  auto job = store_->GetJob(job_id);
  if (!job.ok()) {
    if (job.status().code() == StatusCode::kNotFound) {
      return NotFoundError("no job " + job_id);
    }
    return job.status();
  }
  // Jobs held for a peer broker belong to that broker, not to a local
  // consumer who happens to share the name.
  if (peer.role != Role::kAdmin &&
      (job->consumer() != peer.name || !job->home_broker().empty())) {
    spdlog::warn("consumer {} asked for job {} of {}", peer.name, job_id,
                 job->consumer());
    return NotFoundError("no job " + job_id);
  }
  return job;
}

void BrokerImpl::OnSubmitJob(const Request& request) {
  v1::SubmitJobReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY, reply, status);
  };
  if (request.peer.role != Role::kConsumer) {
    return respond(PermissionDeniedError("only consumers submit jobs"));
  }
  auto submit = DecodeBody<v1::SubmitJob>(request.envelope);
  if (!submit.ok()) return respond(submit.status());
  Status valid = ValidateJobSpec(submit->spec());
  if (!valid.ok()) return respond(valid);
  if (!submit->spec().inputs().empty()) {
    Status inputs = CheckJobInputs(request.peer.name, submit->spec());
    if (!inputs.ok()) return respond(inputs);
  }
  if (submit->idempotency_key().size() > 128) {
    return respond(InvalidArgumentError("idempotency_key over 128 bytes"));
  }
  // A job that could never fit on the providers known now is refused at
  // once, rather than queued forever. With peer brokers it may still fit
  // elsewhere: the scheduler's routing decides (forward, wait or fail).
  auto enrollment = store_->FindEnrollment(Role::kConsumer, request.peer.name);
  if (!enrollment.ok()) return respond(enrollment.status());
  const std::string organization =
      enrollment->has_value() ? (*enrollment)->organization : request.peer.name;
  // Above NORMAL only with the operator's grant to the organization: HIGH
  // may stop other organizations' preemptible work.
  if (PriorityRank(submit->spec().priority()) >
      PriorityRank(v1::PRIORITY_CLASS_NORMAL)) {
    auto allowed = store_->MaxPriority(organization);
    if (!allowed.ok()) return respond(allowed.status());
    if (PriorityRank(submit->spec().priority()) > PriorityRank(*allowed)) {
      return respond(PermissionDeniedError(
          "organization '" + organization +
          "' may not submit HIGH priority jobs (its maximum is " +
          v1::PriorityClass_Name(*allowed).substr(sizeof("PRIORITY_CLASS_") - 1) +
          "); an operator grants it with computenet-broker priority"));
    }
  }
  if (links_.empty()) {
    PlacementRequest placement_request = PlacementRequest::FromSpec(submit->spec());
    placement_request.organization = organization;
    Status fits = matcher_->CheckEverFits(placement_request, registry_.capacity());
    if (!fits.ok()) return respond(fits);
  }
  v1::JobInfo job;
  job.set_consumer(request.peer.name);
  job.set_organization(organization);
  *job.mutable_spec() = submit->spec();
  bool duplicate = false;
  auto stored = jobs_->Submit(options_.broker_id, std::move(job),
                              submit->idempotency_key(), &duplicate);
  if (!stored.ok()) return respond(stored.status());
  reply.set_job_id(stored->job_id());
  reply.set_state(stored->state());
  reply.set_duplicate(duplicate);
  respond(OkStatus());
  if (!duplicate) {
    spdlog::info("job {} submitted by {}: {} x {} card(s), models [{}]",
                 stored->job_id(), request.peer.name,
                 std::max<uint32_t>(1, stored->spec().nodes()),
                 stored->spec().cards_per_node(),
                 fmt::join(stored->spec().accelerator_models(), ","));
  }
}

void BrokerImpl::OnGetJob(const Request& request) {
  v1::GetJobReply reply;
  auto get = DecodeBody<v1::GetJob>(request.envelope);
  Status status = get.status();
  if (status.ok()) {
    auto job = JobVisibleTo(request.peer, get->job_id());
    status = job.status();
    if (job.ok()) *reply.mutable_job() = std::move(*job);
  }
  Reply(request, v1::MESSAGE_TYPE_GET_JOB_REPLY, reply, status);
}

void BrokerImpl::OnCancelJob(const Request& request) {
  v1::CancelJobReply reply;
  auto respond = [&](const Status& status) {
    Reply(request, v1::MESSAGE_TYPE_CANCEL_JOB_REPLY, reply, status);
  };
  auto cancel = DecodeBody<v1::CancelJob>(request.envelope);
  if (!cancel.ok()) return respond(cancel.status());
  auto job = JobVisibleTo(request.peer, cancel->job_id());
  if (!job.ok()) return respond(job.status());
  reply.set_job_id(job->job_id());
  if (IsTerminal(job->state())) {
    reply.set_state(job->state());
    return respond(FailedPreconditionError(
        "job " + job->job_id() + " already " + JobStateName(job->state())));
  }
  Status status = CancelJobHere(*job, request.peer.name);
  reply.set_state(job->state());
  respond(status);
}

Status BrokerImpl::CancelJobHere(v1::JobInfo& job, const std::string& who) {
  spdlog::info("job {} cancel requested by {}", job.job_id(), who);
  if (IsTerminal(job.state())) return OkStatus();
  // Ours, at a peer (or a forward still out): the peer stops it there.
  const bool at_peer = !job.remote_broker().empty() && job.home_broker().empty();
  if (at_peer) {
    auto link = links_.find(job.remote_broker());
    if (link != links_.end()) {
      v1::CancelRemoteJob cancel;
      cancel.set_job_id(job.job_id());
      link->second->Send(v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB, cancel,
                         /*reliable=*/true);
    }
  }
  return jobs_->RequestCancel(job, who, at_peer);
}

void BrokerImpl::OnListJobs(const Request& request) {
  v1::ListJobsReply reply;
  auto list = DecodeBody<v1::ListJobs>(request.envelope);
  Status status = list.status();
  if (status.ok()) {
    uint32_t limit = list->limit() == 0 ? 100 : std::min(list->limit(), 1000u);
    std::vector<v1::JobState> states;
    for (int state : list->states()) {
      states.push_back(static_cast<v1::JobState>(state));
    }
    std::string consumer =
        request.peer.role == Role::kAdmin ? "" : request.peer.name;
    auto jobs = store_->ListJobs(consumer, states, limit);
    status = jobs.status();
    if (jobs.ok()) {
      size_t bytes = 0;
      for (auto& job : *jobs) {
        job.clear_stderr_tail();  // GetJob has it; lists stay short
        bytes += job.ByteSizeLong();
        // The first job always goes: a job fits a frame on its own (the job
        // rules bound it), and a reply of none helps no one.
        if (bytes > kMaxReplyBytes && reply.jobs_size() > 0) {
          reply.set_truncated(true);
          break;
        }
        *reply.add_jobs() = std::move(job);
      }
    }
  }
  Reply(request, v1::MESSAGE_TYPE_LIST_JOBS_REPLY, reply, status);
}

void BrokerImpl::OnWatchJobs(const Request& request) {
  v1::WatchJobsReply reply;
  auto watch = DecodeBody<v1::WatchJobs>(request.envelope);
  if (!watch.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_WATCH_JOBS_REPLY, reply,
                 watch.status());
  }
  // Events are looked up by the job's consumer: a consumer watches under its
  // own name; an admin under the job's consumer, or "*" for every job.
  std::string key = request.peer.role == Role::kAdmin ? kAllConsumers
                                                      : request.peer.name;
  if (!watch->job_id().empty()) {
    auto job = JobVisibleTo(request.peer, watch->job_id());
    if (!job.ok()) {
      return Reply(request, v1::MESSAGE_TYPE_WATCH_JOBS_REPLY, reply,
                   job.status());
    }
    key = job->consumer();
  }
  auto& watchers = watchers_[key];
  bool known = std::any_of(watchers.begin(), watchers.end(), [&](auto& w) {
    return w.routing_id == request.frame.routing_id &&
           w.job_id == watch->job_id();
  });
  if (!known) {
    if (watchers.size() >= kMaxWatchersPerConsumer) {
      watchers.erase(watchers.begin());  // the oldest subscription goes
    }
    watchers.push_back(Watcher{request.frame.routing_id, watch->job_id()});
  }
  Reply(request, v1::MESSAGE_TYPE_WATCH_JOBS_REPLY, reply);
}

void BrokerImpl::Notify(const v1::JobInfo& job) {
  v1::JobEvent event;
  *event.mutable_job() = job;
  std::string payload;
  for (const std::string& key : {job.consumer(), std::string(kAllConsumers)}) {
    auto it = watchers_.find(key);
    if (it == watchers_.end()) continue;
    NotifyWatchers(it->second, job.job_id(), event, &payload);
  }
}

void BrokerImpl::NotifyWatchers(std::vector<Watcher>& watchers,
                                const std::string& job_id,
                                const v1::JobEvent& event,
                                std::string* payload) {
  for (auto w = watchers.begin(); w != watchers.end();) {
    if (!w->job_id.empty() && w->job_id != job_id) {
      ++w;
      continue;
    }
    if (payload->empty()) {
      *payload = EncodeEnvelope(v1::MESSAGE_TYPE_JOB_EVENT, 0,
                                ++send_sequence_, event);
    }
    outbound_->Send(w->routing_id, *payload);
    ++w;
  }
}

void BrokerImpl::DropWatchers(const std::set<std::string>& routing_ids) {
  // A connection the ROUTER could not reach is gone: its subscriptions too.
  for (auto& [consumer, watchers] : watchers_) {
    std::erase_if(watchers, [&](const Watcher& w) {
      return routing_ids.count(w.routing_id) > 0;
    });
  }
}

}  // namespace computenet::broker
