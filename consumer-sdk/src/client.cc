#include "computenet/consumer/client.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "computenet/common/job_state.h"
#include "computenet/common/sha256.h"
#include "computenet/common/usage_record.h"
#include "computenet/bundles/bundle_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace computenet::consumer {
namespace {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string RandomKey() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Falls back to time: still unique per client in practice.
    return "t" + std::to_string(SteadyNowMs());
  }
  return HexEncode(std::string(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

}  // namespace

StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options,
                                                  Identity identity) {
  if (options.broker_endpoint.empty()) {
    return InvalidArgumentError("client: broker_endpoint is required");
  }
  CN_RETURN_IF_ERROR(ValidateCurveKey(options.broker_public_key));
  if (options.request_timeout_ms <= 0 || options.retries < 0) {
    return InvalidArgumentError("client: bad timeout/retries");
  }
  std::unique_ptr<Client> client(
      new Client(std::move(options), std::move(identity)));
  CN_RETURN_IF_ERROR(client->Reconnect());
  return client;
}

Status Client::Reconnect() {
  DealerOptions dealer;
  dealer.endpoint = options_.broker_endpoint;
  dealer.server_public_key = options_.broker_public_key;
  dealer.client_keys = identity_.curve();
  dealer.send_timeout_ms = options_.request_timeout_ms;
  channel_.reset();
  CN_ASSIGN_OR_RETURN(channel_, DealerChannel::Connect(context_, dealer));
  return OkStatus();
}

StatusOr<v1::Envelope> Client::Call(v1::MessageType type,
                                    const google::protobuf::MessageLite& body,
                                    v1::MessageType reply_type) {
  // A connection refused in an earlier call is not reused: the key may
  // have been enrolled since. (Each call tries one handshake, then.) A
  // verdict no call has reported yet is this call's answer.
  if (renew_channel_) {
    renew_channel_ = false;
    CN_RETURN_IF_ERROR(Reconnect());
  }
  auto refused = [this]() {
    Status verdict = channel_->ConnectionError();
    if (!verdict.ok()) renew_channel_ = true;
    return verdict;
  };
  // Why the last attempt got nothing: its send's error, or no reply.
  Status last = OkStatus();
  for (int attempt = 0; attempt <= options_.retries; ++attempt) {
    if (attempt > 0) CN_RETURN_IF_ERROR(Reconnect());
    const uint64_t request_id = channel_->NextRequestId();
    Status sent = channel_->Send(type, request_id, body);
    // A key the broker refused, or a broker whose key is not the pinned
    // one: a new connection with the same keys fares no better.
    CN_RETURN_IF_ERROR(refused());
    if (!sent.ok()) {
      last = sent;
      continue;
    }
    last = OkStatus();
    const int64_t deadline = SteadyNowMs() + options_.request_timeout_ms;
    while (true) {
      const int64_t remaining = deadline - SteadyNowMs();
      if (remaining <= 0) break;
      auto received = channel_->Receive(static_cast<int>(remaining));
      // The connection dropped and its key is refused now (revoked).
      CN_RETURN_IF_ERROR(refused());
      if (!received.ok()) continue;  // a bad frame: keep waiting
      if (!received->has_value()) break;
      v1::Envelope& envelope = **received;
      if (envelope.type() == v1::MESSAGE_TYPE_JOB_EVENT) {
        auto event = DecodeBody<v1::JobEvent>(envelope);
        if (event.ok()) events_.push_back(std::move(*event));
        continue;
      }
      if (envelope.request_id() != request_id &&
          !(envelope.type() == v1::MESSAGE_TYPE_ERROR &&
            envelope.request_id() == 0)) {
        continue;  // a late reply to an earlier attempt
      }
      Status status = StatusFromProto(envelope.status());
      if (!status.ok()) return status;
      if (envelope.type() != reply_type) {
        return InternalError("broker replied " +
                             MessageTypeName(envelope.type()) + " to " +
                             MessageTypeName(type));
      }
      return std::move(envelope);
    }
  }
  const std::string attempts =
      std::to_string(options_.retries + 1) +
      (options_.retries == 0 ? " attempt" : " attempts");
  if (!last.ok()) {
    // Never connected: "broker unreachable at <endpoint> (...)".
    return UnavailableError(last.message() + "; " + attempts);
  }
  return UnavailableError("no reply from broker at " +
                          options_.broker_endpoint + " after " + attempts);
}

StatusOr<v1::SubmitJobReply> Client::Submit(const v1::JobSpec& spec,
                                            std::string idempotency_key) {
  v1::SubmitJob submit;
  *submit.mutable_spec() = spec;
  submit.set_idempotency_key(idempotency_key.empty() ? RandomKey()
                                                     : idempotency_key);
  CN_ASSIGN_OR_RETURN(auto reply, Call(v1::MESSAGE_TYPE_SUBMIT_JOB, submit,
                                       v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY));
  return DecodeBody<v1::SubmitJobReply>(reply);
}

StatusOr<v1::JobInfo> Client::GetJob(const std::string& job_id) {
  v1::GetJob get;
  get.set_job_id(job_id);
  CN_ASSIGN_OR_RETURN(auto reply, Call(v1::MESSAGE_TYPE_GET_JOB, get,
                                       v1::MESSAGE_TYPE_GET_JOB_REPLY));
  CN_ASSIGN_OR_RETURN(auto body, DecodeBody<v1::GetJobReply>(reply));
  return body.job();
}

StatusOr<v1::GetJobLogsReply> Client::GetLogs(const v1::GetJobLogs& request) {
  CN_ASSIGN_OR_RETURN(auto reply, Call(v1::MESSAGE_TYPE_GET_JOB_LOGS, request,
                                       v1::MESSAGE_TYPE_GET_JOB_LOGS_REPLY));
  return DecodeBody<v1::GetJobLogsReply>(reply);
}

StatusOr<v1::JobState> Client::StreamLogs(
    const std::string& job_id, const LogOptions& options,
    const std::function<bool(const v1::LogChunk&)>& on_chunk) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options.timeout_ms);
  v1::GetJobLogs request;
  request.set_job_id(job_id);
  request.set_node(options.node);
  request.set_stream(options.stream);
  request.set_tail_lines(options.tail_lines);
  while (true) {
    CN_ASSIGN_OR_RETURN(v1::GetJobLogsReply reply, GetLogs(request));
    for (const v1::LogChunk& chunk : reply.chunks()) {
      // The next read starts where this chunk ends (a cursor per stream).
      v1::LogCursor* cursor = nullptr;
      for (auto& existing : *request.mutable_cursors()) {
        if (existing.node() == chunk.node() &&
            existing.stream() == chunk.stream()) {
          cursor = &existing;
        }
      }
      if (cursor == nullptr) {
        cursor = request.add_cursors();
        cursor->set_node(chunk.node());
        cursor->set_stream(chunk.stream());
      }
      cursor->set_offset(chunk.offset() + chunk.data().size());
      if (!on_chunk(chunk)) return reply.state();
    }
    if (reply.more()) continue;  // cut short by the reply's size: at once
    if (!options.follow || reply.complete()) return reply.state();
    // tail_lines applies to a stream's first read only; streams that show
    // up later are read from their start.
    request.set_tail_lines(0);
    if (options.timeout_ms > 0 &&
        std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("logs of " + job_id +
                                   ": still running after " +
                                   std::to_string(options.timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::max(1, options.poll_ms)));
  }
}

StatusOr<v1::CancelJobReply> Client::Cancel(const std::string& job_id) {
  v1::CancelJob cancel;
  cancel.set_job_id(job_id);
  CN_ASSIGN_OR_RETURN(auto reply, Call(v1::MESSAGE_TYPE_CANCEL_JOB, cancel,
                                       v1::MESSAGE_TYPE_CANCEL_JOB_REPLY));
  return DecodeBody<v1::CancelJobReply>(reply);
}

StatusOr<std::vector<v1::JobInfo>> Client::ListJobs(
    uint32_t limit, const std::vector<v1::JobState>& states) {
  v1::ListJobs list;
  list.set_limit(limit);
  for (auto state : states) list.add_states(state);
  CN_ASSIGN_OR_RETURN(auto reply, Call(v1::MESSAGE_TYPE_LIST_JOBS, list,
                                       v1::MESSAGE_TYPE_LIST_JOBS_REPLY));
  CN_ASSIGN_OR_RETURN(auto body, DecodeBody<v1::ListJobsReply>(reply));
  return std::vector<v1::JobInfo>(body.jobs().begin(), body.jobs().end());
}

StatusOr<v1::GetFederationStatusReply> Client::GetFederationStatus() {
  CN_ASSIGN_OR_RETURN(auto reply,
                      Call(v1::MESSAGE_TYPE_GET_FEDERATION_STATUS,
                           v1::GetFederationStatus(),
                           v1::MESSAGE_TYPE_GET_FEDERATION_STATUS_REPLY));
  return DecodeBody<v1::GetFederationStatusReply>(reply);
}

StatusOr<v1::GetStatementReply> Client::GetStatement(
    const v1::GetStatement& request) {
  CN_ASSIGN_OR_RETURN(auto reply, Call(v1::MESSAGE_TYPE_GET_STATEMENT, request,
                                       v1::MESSAGE_TYPE_GET_STATEMENT_REPLY));
  return DecodeBody<v1::GetStatementReply>(reply);
}

StatusOr<v1::JobInfo> Client::WatchJob(const std::string& job_id) {
  v1::WatchJobs watch;
  watch.set_job_id(job_id);
  CN_RETURN_IF_ERROR(Call(v1::MESSAGE_TYPE_WATCH_JOBS, watch,
                          v1::MESSAGE_TYPE_WATCH_JOBS_REPLY)
                         .status());
  // The state now; events cover what follows.
  return FreshJob(job_id);
}

Status Client::WatchAll() {
  return Call(v1::MESSAGE_TYPE_WATCH_JOBS, v1::WatchJobs(),
              v1::MESSAGE_TYPE_WATCH_JOBS_REPLY)
      .status();
}

StatusOr<std::optional<v1::JobInfo>> Client::NextEvent(int timeout_ms) {
  const int64_t deadline = SteadyNowMs() + timeout_ms;
  while (events_.empty()) {
    const int64_t remaining = deadline - SteadyNowMs();
    if (remaining <= 0) {
      // Quiet for a while: make sure the subscription is still there (a
      // new connection after a lost one starts without it).
      CN_RETURN_IF_ERROR(WatchAll());
      if (events_.empty()) return std::optional<v1::JobInfo>();
      break;
    }
    auto received = channel_->Receive(static_cast<int>(remaining));
    if (received.ok() && received->has_value() &&
        (*received)->type() == v1::MESSAGE_TYPE_JOB_EVENT) {
      auto event = DecodeBody<v1::JobEvent>(**received);
      if (event.ok()) events_.push_back(std::move(*event));
    }
  }
  v1::JobEvent event = std::move(events_.front());
  events_.pop_front();
  return std::optional<v1::JobInfo>(std::move(*event.mutable_job()));
}

StatusOr<v1::JobInfo> Client::FreshJob(const std::string& job_id) {
  CN_ASSIGN_OR_RETURN(v1::JobInfo job, GetJob(job_id));
  // Events that arrived before the reply are no newer than it.
  std::erase_if(events_, [&](const v1::JobEvent& event) {
    return event.job().job_id() == job_id;
  });
  return job;
}

StatusOr<std::optional<v1::JobInfo>> Client::NextChange(
    const v1::JobInfo& current, int timeout_ms) {
  const std::string& job_id = current.job_id();
  const int64_t deadline = SteadyNowMs() + timeout_ms;
  while (true) {
    // Events already here first, one at a time, so no state is skipped.
    while (!events_.empty()) {
      v1::JobEvent event = std::move(events_.front());
      events_.pop_front();
      if (event.job().job_id() == job_id &&
          event.job().state() != current.state()) {
        return std::optional<v1::JobInfo>(std::move(*event.mutable_job()));
      }
    }
    const int64_t remaining = deadline - SteadyNowMs();
    if (remaining <= 0) return std::optional<v1::JobInfo>();
    auto received =
        channel_->Receive(static_cast<int>(std::min<int64_t>(remaining, 1000)));
    if (received.ok() && received->has_value() &&
        (*received)->type() == v1::MESSAGE_TYPE_JOB_EVENT) {
      auto event = DecodeBody<v1::JobEvent>(**received);
      if (event.ok()) events_.push_back(std::move(*event));
    } else if (received.ok() && !received->has_value()) {
      // Polling once a second of silence covers events lost with a dropped
      // connection.
      CN_ASSIGN_OR_RETURN(v1::JobInfo job, FreshJob(job_id));
      if (job.state() != current.state()) {
        return std::optional<v1::JobInfo>(std::move(job));
      }
    }
  }
}

StatusOr<v1::JobInfo> Client::Wait(
    const std::string& job_id, int timeout_ms,
    const std::function<void(const v1::JobInfo&)>& on_change) {
  const int64_t deadline = SteadyNowMs() + timeout_ms;
  CN_ASSIGN_OR_RETURN(v1::JobInfo job, WatchJob(job_id));
  if (on_change) on_change(job);
  while (!IsTerminal(job.state())) {
    const int64_t remaining = deadline - SteadyNowMs();
    if (remaining <= 0) {
      return DeadlineExceededError("job " + job_id + " still " +
                                   v1::JobState_Name(job.state()) + " after " +
                                   std::to_string(timeout_ms) + " ms");
    }
    CN_ASSIGN_OR_RETURN(auto next,
                        NextChange(job, static_cast<int>(remaining)));
    if (!next.has_value()) continue;
    job = std::move(*next);
    if (on_change) on_change(job);
  }
  return job;
}

StatusOr<v1::InputBundle> Client::UploadBundle(
    const bundles::PackedBundle& bundle,
    const std::vector<std::string>& allowed_regions) {
  v1::PutBundleChunk chunk;
  chunk.set_digest(bundle.digest);
  chunk.set_total_size(bundle.size);
  for (const auto& region : allowed_regions) chunk.add_allowed_regions(region);
  // Where the broker stands (and whether it takes a bundle this size).
  chunk.set_offset(0);
  CN_ASSIGN_OR_RETURN(auto first, Call(v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK, chunk,
                                       v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK_REPLY));
  CN_ASSIGN_OR_RETURN(v1::PutBundleChunkReply reply,
                      DecodeBody<v1::PutBundleChunkReply>(first));
  const int fd = ::open(bundle.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return InvalidArgumentError("cannot open " + bundle.path + ": " +
                                std::strerror(errno));
  }
  std::string buffer(bundles::kChunkBytes, '\0');
  Status failed = OkStatus();
  int out_of_range = 0;
  while (!reply.complete()) {
    const uint64_t offset = reply.have();
    if (offset >= bundle.size) {
      failed = DataLossError("the broker holds all " + std::to_string(offset) +
                             " bytes of " + bundle.digest +
                             " but does not call it complete");
      break;
    }
    const size_t want = static_cast<size_t>(
        std::min<uint64_t>(bundles::kChunkBytes, bundle.size - offset));
    const ssize_t got = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (got != static_cast<ssize_t>(want)) {
      failed = InvalidArgumentError(bundle.path + " changed or shrank");
      break;
    }
    chunk.set_offset(offset);
    chunk.set_data(buffer.data(), want);
    auto sent = Call(v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK, chunk,
                     v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK_REPLY);
    if (!sent.ok() && sent.status().code() == StatusCode::kOutOfRange &&
        ++out_of_range < 3) {
      // The broker lost part of it (restarted): ask where it is now.
      chunk.clear_data();
      chunk.set_offset(0);
      sent = Call(v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK, chunk,
                  v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK_REPLY);
    }
    if (!sent.ok()) {
      failed = sent.status();
      break;
    }
    auto decoded = DecodeBody<v1::PutBundleChunkReply>(*sent);
    if (!decoded.ok()) {
      failed = decoded.status();
      break;
    }
    reply = std::move(*decoded);
  }
  ::close(fd);
  CN_RETURN_IF_ERROR(failed);
  v1::InputBundle input;
  input.set_digest(bundle.digest);
  input.set_size(bundle.size);
  return input;
}

StatusOr<v1::InputBundle> Client::UploadInputs(
    const std::vector<std::string>& paths,
    const std::vector<std::string>& allowed_regions) {
  std::error_code error;
  const std::filesystem::path dir = std::filesystem::temp_directory_path(error);
  std::string pattern = (error ? std::string("/tmp") : dir.string()) +
                        "/computenet-inputs-XXXXXX";
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) return InternalError("cannot make a temporary file");
  ::close(fd);
  auto packed = bundles::PackPaths(paths, pattern);
  if (!packed.ok()) {
    ::unlink(pattern.c_str());
    return packed.status();
  }
  auto uploaded = UploadBundle(*packed, allowed_regions);
  ::unlink(pattern.c_str());
  return uploaded;
}

StatusOr<Client::FetchedResult> Client::FetchResult(
    const std::string& job_id, const std::string& archive_file) {
  const int fd = ::open(archive_file.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return InvalidArgumentError("cannot write " + archive_file + ": " +
                                std::strerror(errno));
  }
  FetchedResult result;
  result.archive = archive_file;
  std::string record;
  std::string signature;
  std::string signing_key;
  uint64_t offset = 0;
  uint64_t total = 0;
  Status failed = OkStatus();
  do {
    v1::FetchResultChunk fetch;
    fetch.set_job_id(job_id);
    fetch.set_offset(offset);
    auto sent = Call(v1::MESSAGE_TYPE_FETCH_RESULT_CHUNK, fetch,
                     v1::MESSAGE_TYPE_FETCH_RESULT_CHUNK_REPLY);
    if (!sent.ok()) {
      failed = sent.status();
      break;
    }
    auto reply = DecodeBody<v1::FetchResultChunkReply>(*sent);
    if (!reply.ok()) {
      failed = reply.status();
      break;
    }
    if (offset == 0) {
      result.digest = reply->digest();
      total = reply->total_size();
      record = reply->usage_record();
      signature = reply->usage_signature();
      signing_key = reply->provider_signing_key();
    } else if (reply->digest() != result.digest || reply->total_size() != total) {
      failed = DataLossError("the result changed while it was fetched");
      break;
    }
    if (reply->offset() != offset || (reply->data().empty() && offset < total)) {
      failed = DataLossError("the broker sent the wrong part of the result");
      break;
    }
    if (::write(fd, reply->data().data(), reply->data().size()) !=
        static_cast<ssize_t>(reply->data().size())) {
      failed = InternalError("cannot write " + archive_file);
      break;
    }
    offset += reply->data().size();
  } while (offset < total);
  ::close(fd);
  if (failed.ok()) {
    // The provider's own signed words, not the brokers', decide.
    auto verified = VerifyUsageRecord(signing_key, record, signature);
    if (!verified.ok()) {
      failed = DataLossError("the result's usage record does not verify: " +
                             verified.status().message());
    } else if (verified->job_id() != job_id || !verified->closes_job()) {
      failed = DataLossError("the signed record is not the closing record of " +
                             job_id);
    } else {
      result.record = *verified;
    }
  }
  if (failed.ok()) {
    auto digest = bundles::FileDigest(archive_file);
    if (!digest.ok()) {
      failed = digest.status();
    } else if (*digest != result.record.result_digest()) {
      failed = DataLossError("the downloaded result hashes to " + *digest +
                             ", but the provider's signed record names " +
                             result.record.result_digest());
    }
  }
  if (!failed.ok()) {
    ::unlink(archive_file.c_str());
    return failed;
  }
  result.size = total;
  return result;
}

StatusOr<Client::FetchedResult> Client::FetchResultInto(
    const std::string& job_id, const std::string& out_dir) {
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) {
    return InvalidArgumentError("cannot create " + out_dir + ": " +
                                error.message());
  }
  const std::string archive = out_dir + "/.computenet-result.tar";
  CN_ASSIGN_OR_RETURN(FetchedResult result, FetchResult(job_id, archive));
  Status unpacked = bundles::Unpack(archive, out_dir);
  ::unlink(archive.c_str());
  CN_RETURN_IF_ERROR(unpacked);
  result.archive.clear();
  return result;
}

}  // namespace computenet::consumer
