// Live logs (docs/protocol.md, "Live logs"): agents push new output of
// their running jobs (LOG_BATCH); a broker holding a job for a peer passes
// each batch on to the job's home broker (PEER_LOG_BATCH); consumers read
// what their home broker holds from their cursors (GET_JOB_LOGS). Push,
// bounded at every step: the agent ships at most a fixed rate per job and
// one unanswered batch at a time, brokers keep a fixed ring per stream, and
// nothing waits on a consumer.
//
// Log content is the job's output: untrusted. It is never written to the
// broker's own log; only sizes and ids are.
#include <spdlog/spdlog.h>

#include "computenet/common/envelope.h"
#include "computenet/common/job_state.h"
#include "core/broker_impl.h"
#include "core/imports.h"

namespace computenet::broker {
namespace {

// A job's logs stop at its end: once it has been over for this long, a
// follower is told the logs are complete even if a stream's end never
// arrived (its agent lost the connection while shipping the last bytes).
constexpr int64_t kEofGraceMs = 5'000;

}  // namespace

void BrokerImpl::OnLogBatch(const Request& request) {
  v1::LogBatchReply reply;
  auto batch = DecodeBody<v1::LogBatch>(request.envelope);
  if (!batch.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_LOG_BATCH_REPLY, reply,
                 batch.status());
  }
  reply.set_job_id(batch->job_id());
  if (RegisteredProvider(request) == nullptr) {
    return Reply(request, v1::MESSAGE_TYPE_LOG_BATCH_REPLY, reply,
                 FailedPreconditionError("register first"));
  }
  Status valid = ValidateLogBatch(*batch);
  if (!valid.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_LOG_BATCH_REPLY, reply, valid);
  }
  auto job = store_->GetJob(batch->job_id());
  if (!job.ok() || job->provider() != request.peer.name) {
    // Not confirmed either way to a provider the job is not placed on.
    return Reply(request, v1::MESSAGE_TYPE_LOG_BATCH_REPLY, reply,
                 PermissionDeniedError("job " + batch->job_id() +
                                       " is not placed on you"));
  }
  logs_.Append(*batch, Now());
  // A peer's job: its consumer reads at the home broker. Not reliable: a
  // batch lost with the link is a gap its readers are told about.
  if (!job->home_broker().empty()) {
    auto link = links_.find(job->home_broker());
    if (link != links_.end() && link->second->up()) {
      link->second->Send(v1::MESSAGE_TYPE_PEER_LOG_BATCH, *batch,
                         /*reliable=*/false);
    }
  }
  Reply(request, v1::MESSAGE_TYPE_LOG_BATCH_REPLY, reply);
}

void BrokerImpl::OnPeerLogBatch(const Request& request) {
  v1::LogBatchReply reply;
  auto batch = DecodeBody<v1::LogBatch>(request.envelope);
  if (!batch.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_PEER_LOG_BATCH_REPLY, reply,
                 batch.status());
  }
  reply.set_job_id(batch->job_id());
  Status valid = ValidateLogBatch(*batch);
  if (!valid.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_PEER_LOG_BATCH_REPLY, reply, valid);
  }
  // Only for our own jobs forwarded to that peer.
  auto job = PeerJob(request.peer.name, batch->job_id(), /*held_here=*/false);
  if (!job.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_PEER_LOG_BATCH_REPLY, reply,
                 job.status());
  }
  logs_.Append(*batch, Now());
  Reply(request, v1::MESSAGE_TYPE_PEER_LOG_BATCH_REPLY, reply);
}

void BrokerImpl::OnGetJobLogs(const Request& request) {
  v1::GetJobLogsReply reply;
  auto get = DecodeBody<v1::GetJobLogs>(request.envelope);
  if (!get.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_GET_JOB_LOGS_REPLY, reply,
                 get.status());
  }
  if (get->cursors_size() > 1024 || get->node().size() > kMaxLogNodeBytes) {
    return Reply(request, v1::MESSAGE_TYPE_GET_JOB_LOGS_REPLY, reply,
                 InvalidArgumentError(
                     "get job logs: at most 1024 cursors and a node name of "
                     "at most 128 bytes"));
  }
  // The same check as GetJob: another consumer's job is NOT_FOUND.
  auto job = JobVisibleTo(request.peer, get->job_id());
  if (!job.ok()) {
    return Reply(request, v1::MESSAGE_TYPE_GET_JOB_LOGS_REPLY, reply,
                 job.status());
  }
  LogBuffers::ReadResult read = logs_.Read(*get);
  for (auto& chunk : read.chunks) *reply.add_chunks() = std::move(chunk);
  reply.set_state(job->state());
  reply.set_more(read.more);
  const bool over_long_enough =
      IsTerminal(job->state()) &&
      (job->finished_ms() == 0 || Now() - job->finished_ms() >= kEofGraceMs);
  reply.set_complete(IsTerminal(job->state()) && read.caught_up &&
                     (read.all_eof || over_long_enough));
  Reply(request, v1::MESSAGE_TYPE_GET_JOB_LOGS_REPLY, reply);
}

void BrokerImpl::KeepStderrTail(v1::JobInfo& job) {
  std::string tail = logs_.StderrTail(job.job_id());
  if (!tail.empty()) job.set_stderr_tail(std::move(tail));
}

}  // namespace computenet::broker
