#include "computenet/provider/agent.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "computenet/common/secrets.h"
#include "computenet/common/transport.h"
#include "computenet/common/usage_record.h"
#include "computenet/matching/site_policy.h"
#include "computenet/provider/agent_state.h"
#include "computenet/v1/bundle.pb.h"
#include "site_data.h"

namespace computenet::provider {
namespace {

// A report that must reach the broker; kept until it acknowledges it.
struct OutboxItem {
  v1::MessageType type;
  std::string body;    // serialized message
  std::string job_id;
  uint64_t request_id = 0;  // of the latest send; 0 = not sent yet
  int64_t sent_ms = 0;      // when it was last sent
  int64_t stored_id = 0;    // its row in the agent's state; 0 = memory only
};

// What the executor is asked to run (or take back) for an offer.
ExecutionRequest RequestFor(const v1::PlacementOffer& offer) {
  ExecutionRequest request;
  request.job_id = offer.job_id();
  request.consumer = offer.consumer();
  request.spec = offer.spec();
  request.model = offer.model();
  request.assignments.assign(offer.assignments().begin(), offer.assignments().end());
  request.attempt = std::max<uint32_t>(1, offer.attempt());
  return request;
}

class AgentImpl final : public ProviderAgent {
 public:
  AgentImpl(ProviderOptions options, Identity identity,
            std::unique_ptr<Executor> executor,
            std::unique_ptr<AgentState> state)
      : options_(std::move(options)),
        identity_(std::move(identity)),
        executor_(std::move(executor)),
        state_(std::move(state)),
        clock_(options_.clock),
        context_(1),
        heartbeat_interval_ms_(options_.heartbeat_interval_ms),
        heartbeat_liveness_(options_.heartbeat_liveness),
        backoff_ms_(options_.reconnect_initial_ms) {
    for (const auto& node : options_.registration.nodes()) {
      node_names_.insert(node.name());
    }
  }

  Status Run() override;
  void Shutdown() override { stop_.store(true); }
  bool registered() const override { return registered_.load(); }
  Status UpdateOffer(const v1::UpdateOffer& update) override;

 private:
  Status Connect();
  // Waits up to timeout_ms for a frame from the broker or for the
  // executor's wake descriptor, whichever comes first; returns the frame if
  // one is waiting (nullopt after a timeout or an executor wake-up).
  StatusOr<std::optional<v1::Envelope>> Wait(int timeout_ms);
  void SendRegistration();
  void Send(v1::MessageType type, uint64_t request_id,
            const google::protobuf::MessageLite& body);
  // Queues a report: stored in the agent's state first (durable = false:
  // memory only), then sent when registered. Inside Durably() it commits
  // with the rest of that transaction.
  void Enqueue(v1::MessageType type, const google::protobuf::MessageLite& body,
               const std::string& job_id, bool durable = true);
  // Runs fn (state writes and Enqueue calls) as one transaction of the
  // agent's state; the reports it queued join the outbox only then. On a
  // failure they are kept in memory anyway (logged): sending them is
  // better than losing them.
  Status Durably(const char* what, const std::function<Status()>& fn);
  // Takes back what the agent's state holds from an earlier run.
  Status Recover();
  // Starts an accepted offer the broker said to proceed with (its row is
  // in phase kStarting).
  void StartJob(const v1::PlacementOffer& offer);
  // Hands the offer to the executor (its inputs, if any, are in place).
  void Launch(const v1::PlacementOffer& offer);
  // Inputs: requests due, prepared jobs started or failed, upkeep.
  void DriveSiteData(int64_t now_ms);
  // Sends outbox items not sent yet, and again those unanswered for long.
  void FlushOutbox();
  void ForgetSends();
  Status Handle(const v1::Envelope& envelope);
  Status OnRegisterReply(const v1::Envelope& envelope);
  void OnOffer(const v1::Envelope& envelope);
  void OnOfferReply(const v1::Envelope& envelope);
  void OnCancel(const v1::Envelope& envelope);
  void OnAck(const v1::Envelope& envelope);
  void OnExecutionEvent(const ExecutionEvent& event);
  void ReportStatus(const std::string& job_id, v1::JobState state,
                    int32_t exit_code, const std::string& message,
                    int64_t timestamp_ms);
  Status CheckOffer(const v1::PlacementOffer& offer) const;
  void ReleaseDevices(const std::string& job_id);
  void SendOfferUpdates();  // from the Run() thread

  // Live logs: what was shipped of each job's output files.
  struct ShippedLogs {
    std::vector<LogFile> files;
    std::vector<uint64_t> offsets;  // per file: the next byte to send
    size_t next_file = 0;           // a batch holds 16 files at most: rotate
    uint64_t in_flight = 0;         // request id of the unanswered batch
    int64_t sent_ms = 0;
  };
  std::map<std::string, ShippedLogs> shipped_;
  int64_t last_log_ship_ms_ = 0;
  // The job's files, asked of the executor until it knows them.
  ShippedLogs& LogsOf(const std::string& job_id);
  void ShipLogs(int64_t now_ms);
  // The job ended: the last bytes of every file, marked complete, before
  // its final status (same connection, so the broker has them first).
  void ShipFinalLogs(const std::string& job_id);
  void OnLogBatchReply(const v1::Envelope& envelope);

  ProviderOptions options_;
  Identity identity_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<AgentState> state_;
  // Inputs and results; null without a work directory.
  std::unique_ptr<SiteData> data_;
  // Reports queued inside the open Durably() transaction.
  bool in_durably_ = false;
  std::vector<OutboxItem> staged_;
  std::shared_ptr<Clock> clock_;
  zmq::context_t context_;
  std::unique_ptr<DealerChannel> channel_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> registered_{false};
  // Whether the broker has accepted a registration since Run() began: a key
  // refused before that ends Run() (a site that was never let in is a
  // configuration to fix); after it, the agent keeps retrying.
  bool ever_registered_ = false;
  // Our name as the broker enrolled us (the operator may have chosen it).
  std::string provider_name_;
  uint64_t register_request_id_ = 0;
  int64_t last_heard_ms_ = 0;
  int64_t last_sent_ms_ = 0;
  int64_t connected_ms_ = 0;
  int heartbeat_interval_ms_;
  int heartbeat_liveness_;
  int backoff_ms_;

  std::deque<OutboxItem> outbox_;
  // Offers accepted and waiting for the broker's go-ahead, by job id.
  std::map<std::string, v1::PlacementOffer> accepted_offers_;
  std::set<std::string> cancelled_before_start_;
  // Device shares held by accepted or running jobs:
  // job -> (node, index) -> thousandths of the card (1000 = whole).
  std::map<std::string, std::map<std::pair<std::string, uint32_t>, uint32_t>>
      held_;
  // Offer updates handed in by other threads, sent by Run().
  std::mutex updates_mutex_;
  std::vector<v1::UpdateOffer> pending_updates_;
  std::set<std::string> node_names_;  // fixed at construction
  // Usage metering of running jobs, by job: the next interval starts at
  // last_end_ms (the executor's clock).
  struct Metering {
    std::string model;
    uint32_t cards = 0;
    uint32_t attempt = 1;  // the placement: a rerun is billed on its own
    bool started = false;
    int64_t last_end_ms = 0;
    uint32_t next_index = 1;
    // The offer it came from (empty for a job known only to the executor,
    // which is then not in the agent's state) and how far it got.
    v1::PlacementOffer offer;
    JobPhase phase = JobPhase::kStarting;
    StoredJob Stored(const std::string& job_id) const {
      StoredJob stored;
      stored.job_id = job_id;
      stored.offer = offer;
      stored.phase = phase;
      stored.started = started;
      stored.last_end_ms = last_end_ms;
      stored.next_index = next_index;
      return stored;
    }
    // Record ids: "<job>:<i>" and "<job>:final", or for a rerun
    // "<job>:<attempt>:<i>" and "<job>:<attempt>:final".
    std::string RecordId(const std::string& job_id,
                         const std::string& suffix) const {
      return attempt <= 1 ? job_id + ":" + suffix
                          : job_id + ":" + std::to_string(attempt) + ":" +
                                suffix;
    }
  };
  std::map<std::string, Metering> metering_;
  // Stores the job's row (no-op for a job not from an offer).
  Status SaveJob(const std::string& job_id, const Metering& metering) {
    if (metering.offer.job_id().empty()) return OkStatus();
    return state_->PutJob(metering.Stored(job_id));
  }
  // Sends an interim record for every full usage interval a job has run.
  void MeterRunningJobs();
  void ReportUsage(const std::string& job_id, const Metering& metering,
                   const std::string& record_id, uint32_t cards,
                   int64_t start_ms, int64_t end_ms, bool closes_job,
                   const std::string& result_digest = "",
                   uint64_t result_bytes = 0);

 public:
  void set_site_data(std::unique_ptr<SiteData> data) { data_ = std::move(data); }
};

Status AgentImpl::UpdateOffer(const v1::UpdateOffer& update) {
  for (const auto& change : update.nodes()) {
    if (node_names_.count(change.node()) == 0) {
      return InvalidArgumentError("update offer: no node '" + change.node() +
                                  "' in this site's registration");
    }
  }
  std::lock_guard<std::mutex> lock(updates_mutex_);
  pending_updates_.push_back(update);
  return OkStatus();
}

void AgentImpl::SendOfferUpdates() {
  std::vector<v1::UpdateOffer> updates;
  {
    std::lock_guard<std::mutex> lock(updates_mutex_);
    updates.swap(pending_updates_);
  }
  for (const auto& update : updates) {
    // Folded into the registration, so a reconnect re-registers with it.
    if (update.prices_size() > 0) {
      *options_.registration.mutable_prices() = update.prices();
    }
    for (const auto& change : update.nodes()) {
      for (auto& node : *options_.registration.mutable_nodes()) {
        if (node.name() == change.node()) node.set_offer(change.offer());
      }
    }
    // Not kept across a restart: the restarted agent registers what its
    // config says then, which an old update must not overwrite.
    Enqueue(v1::MESSAGE_TYPE_UPDATE_OFFER, update, "", /*durable=*/false);
  }
}

Status AgentImpl::Connect() {
  DealerOptions dealer;
  dealer.endpoint = options_.broker_endpoint;
  dealer.server_public_key = options_.broker_public_key;
  dealer.client_keys = identity_.curve();
  channel_.reset();  // close the old socket first: one connection at a time
  CN_ASSIGN_OR_RETURN(channel_, DealerChannel::Connect(context_, dealer));
  connected_ms_ = clock_->NowMs();
  last_heard_ms_ = connected_ms_;
  registered_.store(false);
  return OkStatus();
}

void AgentImpl::Send(v1::MessageType type, uint64_t request_id,
                     const google::protobuf::MessageLite& body) {
  Status sent = channel_->Send(type, request_id, body);
  if (!sent.ok()) {
    // A refused connection is reported once, by the loop.
    if (channel_->ConnectionError().ok()) {
      spdlog::warn("send {} failed: {}", MessageTypeName(type),
                   sent.ToString());
    }
    return;
  }
  last_sent_ms_ = clock_->NowMs();
}

void AgentImpl::SendRegistration() {
  v1::RegisterProvider registration = options_.registration;
  registration.clear_active_job_ids();
  std::set<std::string> active;
  for (const auto& job_id : executor_->ActiveJobs()) active.insert(job_id);
  for (const auto& [job_id, offer] : accepted_offers_) active.insert(job_id);
  for (const auto& item : outbox_) {
    if (!item.job_id.empty()) active.insert(item.job_id);
  }
  // Jobs the broker said to proceed with, whether or not they run now.
  for (const auto& [job_id, metering] : metering_) {
    if (!metering.offer.job_id().empty()) active.insert(job_id);
  }
  for (const auto& job_id : active) registration.add_active_job_ids(job_id);
  // Tells the broker this agent (restarted or not) from a second agent
  // using the same key.
  registration.set_agent_instance(state_->instance_id());
  register_request_id_ = channel_->NextRequestId();
  spdlog::info("registering with broker at {} ({} active jobs)",
               options_.broker_endpoint, active.size());
  Send(v1::MESSAGE_TYPE_REGISTER_PROVIDER, register_request_id_, registration);
}

void AgentImpl::Enqueue(v1::MessageType type,
                        const google::protobuf::MessageLite& body,
                        const std::string& job_id, bool durable) {
  OutboxItem item{type, body.SerializeAsString(), job_id, 0, 0, 0};
  if (!in_durably_) {
    (void)Durably("report", [&]() -> Status {
      Enqueue(type, body, job_id, durable);
      return OkStatus();
    });
    return;
  }
  if (durable) {
    auto id = state_->AddReport(type, job_id, item.body);
    if (!id.ok()) {
      spdlog::error("agent state: cannot store {} for job {}: {}",
                    MessageTypeName(type), job_id, id.status().ToString());
    } else {
      item.stored_id = *id;
    }
  }
  staged_.push_back(std::move(item));
}

Status AgentImpl::Durably(const char* what, const std::function<Status()>& fn) {
  if (in_durably_) return fn();  // part of the transaction already open
  in_durably_ = true;
  staged_.clear();
  Status status = state_->Transaction(fn);
  in_durably_ = false;
  if (!status.ok()) {
    spdlog::error("agent state: cannot store {}: {}; kept in memory only", what,
                  status.ToString());
    for (auto& item : staged_) item.stored_id = 0;
  }
  for (auto& item : staged_) outbox_.push_back(std::move(item));
  staged_.clear();
  if (registered_.load()) FlushOutbox();
  return status;
}

void AgentImpl::ForgetSends() {
  for (auto& item : outbox_) item.request_id = 0;
  if (data_) data_->Reconnected();
}

void AgentImpl::FlushOutbox() {
  const int64_t now = clock_->NowMs();
  // An answer can be lost to a rate-limit error or a busy broker; the
  // broker treats repeats idempotently, so resending is safe.
  const int64_t resend_after =
      static_cast<int64_t>(heartbeat_interval_ms_) * heartbeat_liveness_ * 2;
  for (auto& item : outbox_) {
    if (item.request_id != 0 && now - item.sent_ms < resend_after) continue;
    item.sent_ms = now;
    item.request_id = channel_->NextRequestId();
    Status sent = channel_->SendSerialized(item.type, item.request_id, item.body);
    if (!sent.ok()) {
      if (channel_->ConnectionError().ok()) {
        spdlog::warn("send {} failed: {}", MessageTypeName(item.type),
                     sent.ToString());
      }
      item.request_id = 0;
      return;
    }
    last_sent_ms_ = clock_->NowMs();
  }
}

StatusOr<std::optional<v1::Envelope>> AgentImpl::Wait(int timeout_ms) {
  const int wake_fd = executor_->WakeFd();
  if (wake_fd < 0) return channel_->Receive(timeout_ms);
  zmq::pollitem_t items[2] = {
      {channel_->socket().handle(), 0, ZMQ_POLLIN, 0},
      {nullptr, wake_fd, ZMQ_POLLIN, 0},
  };
  try {
    zmq::poll(items, 2, std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& error) {
    // A signal (SIGHUP: reload) interrupts the wait; nothing is lost.
    if (error.num() != EINTR) {
      return UnavailableError(std::string("poll: ") + error.what());
    }
  }
  // Woken by the socket, the executor (its news is collected by Poll()
  // right after this returns), a signal or the timeout: a non-blocking
  // receive returns the message if one is waiting, else nothing. (One exit,
  // also because GCC 12 at -O1 warns falsely on an empty optional built
  // here.)
  return channel_->Receive(0);
}

Status AgentImpl::Recover() {
  CN_ASSIGN_OR_RETURN(auto reports, state_->Reports());
  std::set<std::string> answered;  // jobs whose offer answer is unsent
  for (auto& report : reports) {
    if (report.type == v1::MESSAGE_TYPE_PLACEMENT_RESPONSE) {
      v1::PlacementResponse response;
      if (response.ParseFromString(report.body)) {
        answered.insert(response.job_id());
      }
    }
    outbox_.push_back(OutboxItem{report.type, std::move(report.body),
                                 report.job_id, 0, 0, report.id});
  }
  CN_ASSIGN_OR_RETURN(auto jobs, state_->Jobs());
  if (!reports.empty() || !jobs.empty()) {
    spdlog::info(
        "agent state: {} unacknowledged report(s), {} job(s) from "
        "before the restart",
        reports.size(), jobs.size());
  }
  for (auto& job : jobs) {
    const v1::PlacementOffer& offer = job.offer;
    auto& devices = held_[job.job_id];
    for (const auto& assignment : offer.assignments()) {
      for (uint32_t index : assignment.device_indices()) {
        devices[{assignment.node(), index}] =
            assignment.milli() == 0 ? 1000 : assignment.milli();
      }
    }
    if (job.phase == JobPhase::kAccepted) {
      accepted_offers_[job.job_id] = offer;
      if (answered.count(job.job_id) == 0) {
        // Its answer was acknowledged but the broker's verdict never
        // stored: ask again (the broker answers by the job's state).
        v1::PlacementResponse response;
        response.set_job_id(job.job_id);
        response.set_accepted(true);
        Enqueue(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE, response, "");
      }
      continue;
    }
    Metering& metering = metering_[job.job_id];
    metering.model = offer.model();
    metering.attempt = std::max<uint32_t>(1, offer.attempt());
    for (const auto& assignment : offer.assignments()) {
      metering.cards += static_cast<uint32_t>(assignment.device_indices_size());
    }
    metering.offer = offer;
    metering.phase = job.phase;
    metering.started = job.started;
    metering.last_end_ms = job.last_end_ms;
    metering.next_index = job.next_index;
    Status adopted = executor_->Adopt(RequestFor(offer));
    if (adopted.ok()) continue;  // its start and end come from Poll()
    if (adopted.code() == StatusCode::kNotFound &&
        job.phase == JobPhase::kStarting) {
      // Told to proceed, and certainly never started: start it now.
      spdlog::info("job {} was not started before the restart; starting it",
                   job.job_id);
      metering_.erase(job.job_id);
      StartJob(offer);
      continue;
    }
    spdlog::warn("job {}: cannot take it back after the restart: {}",
                 job.job_id, adopted.ToString());
    metering_.erase(job.job_id);
    ReleaseDevices(job.job_id);
    (void)Durably("lost job", [&]() -> Status {
      ReportStatus(job.job_id, v1::JOB_STATE_FAILED, -1,
                   "the agent restarted and could not tell how the job "
                   "ended: " +
                       adopted.ToString(),
                   clock_->NowMs());
      return state_->RemoveJob(job.job_id);
    });
  }
  return OkStatus();
}

Status AgentImpl::Run() {
  CN_RETURN_IF_ERROR(Recover());
  CN_RETURN_IF_ERROR(Connect());
  SendRegistration();
  int64_t reconnect_at_ms = 0;
  while (!stop_.load()) {
    auto received = Wait(options_.tick_ms);
    const int64_t now = clock_->NowMs();
    if (!received.ok()) {
      spdlog::warn("dropped bad frame from broker: {}",
                   received.status().ToString());
    } else if (received->has_value()) {
      last_heard_ms_ = now;
      Status handled = Handle(**received);
      if (!handled.ok()) return handled;
    }
    // The socket monitor, read here on the loop's thread: did the broker
    // refuse our key, or is it not the broker we pinned?
    if (reconnect_at_ms == 0) {
      Status refused = channel_->ConnectionError();
      if (!refused.ok()) {
        const std::string hint =
            refused.code() == StatusCode::kUnauthenticated
                ? "ask the broker's operator to enroll this site's "
                  "identity.pub (CURVE key " +
                      identity_.curve().public_z85 + ") as a provider"
                : "check broker_endpoint and broker_identity in the site "
                  "config";
        if (!ever_registered_) {
          // Never let in since the start: a configuration to fix, not an
          // outage to wait out. The exit says which (computenet-provider).
          spdlog::error("{}; {}", refused.message(), hint);
          return Status(refused.code(), refused.message() + "; " + hint);
        }
        // Let in before (revoked since, or keys being rotated): keep the
        // site up for its running jobs and retry, saying why each time.
        registered_.store(false);
        reconnect_at_ms = now + backoff_ms_;
        spdlog::error("{}; {}; retrying in {} ms", refused.message(), hint,
                      backoff_ms_);
        backoff_ms_ = std::min(backoff_ms_ * 2, options_.reconnect_max_ms);
      }
    }
    for (const auto& event : executor_->Poll()) OnExecutionEvent(event);
    if (data_) DriveSiteData(now);
    SendOfferUpdates();
    MeterRunningJobs();

    if (registered_.load()) FlushOutbox();
    // After the outbox: a job's RUNNING goes before its first output.
    ShipLogs(now);
    if (registered_.load() && now - last_sent_ms_ >= heartbeat_interval_ms_) {
      v1::Heartbeat heartbeat;
      heartbeat.set_sent_at_ms(now);
      Send(v1::MESSAGE_TYPE_HEARTBEAT, 0, heartbeat);
    }
    const int64_t silence_limit =
        static_cast<int64_t>(heartbeat_interval_ms_) * heartbeat_liveness_;
    if (reconnect_at_ms == 0 && now - last_heard_ms_ > silence_limit) {
      spdlog::warn("broker silent for {} ms; reconnecting in {} ms",
                   now - last_heard_ms_, backoff_ms_);
      registered_.store(false);
      reconnect_at_ms = now + backoff_ms_;
      backoff_ms_ = std::min(backoff_ms_ * 2, options_.reconnect_max_ms);
    }
    if (reconnect_at_ms != 0 && now >= reconnect_at_ms) {
      reconnect_at_ms = 0;
      CN_RETURN_IF_ERROR(Connect());
      // Unacknowledged reports go again on the new connection.
      ForgetSends();
      SendRegistration();
    }
  }
  spdlog::info("provider agent stopped");
  return OkStatus();
}

Status AgentImpl::Handle(const v1::Envelope& envelope) {
  switch (envelope.type()) {
    case v1::MESSAGE_TYPE_HEARTBEAT:
      return OkStatus();
    case v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY:
      return OnRegisterReply(envelope);
    case v1::MESSAGE_TYPE_PLACEMENT_OFFER:
      OnOffer(envelope);
      return OkStatus();
    case v1::MESSAGE_TYPE_PLACEMENT_RESPONSE_REPLY:
      OnOfferReply(envelope);
      return OkStatus();
    case v1::MESSAGE_TYPE_PLACEMENT_CANCEL:
      OnCancel(envelope);
      return OkStatus();
    case v1::MESSAGE_TYPE_GET_BUNDLE_CHUNK_REPLY:
      if (data_) data_->OnChunkReply(envelope, clock_->NowMs());
      return OkStatus();
    case v1::MESSAGE_TYPE_RESULT_CHUNK_REQUEST: {
      auto asked = DecodeBody<v1::ResultChunkRequest>(envelope);
      if (!asked.ok()) return OkStatus();
      v1::ResultChunk chunk;
      if (data_) {
        chunk = data_->ServeResult(*asked);
      } else {
        chunk.set_relay_id(asked->relay_id());
        chunk.set_job_id(asked->job_id());
        *chunk.mutable_status() =
            StatusToProto(NotFoundError("this site keeps no results"));
      }
      Send(v1::MESSAGE_TYPE_RESULT_CHUNK, 0, chunk);
      return OkStatus();
    }
    case v1::MESSAGE_TYPE_LOG_BATCH_REPLY:
      OnLogBatchReply(envelope);
      return OkStatus();
    case v1::MESSAGE_TYPE_JOB_STATUS_UPDATE_REPLY:
    case v1::MESSAGE_TYPE_USAGE_REPORT_REPLY:
    case v1::MESSAGE_TYPE_UPDATE_OFFER_REPLY:
      OnAck(envelope);
      return OkStatus();
    case v1::MESSAGE_TYPE_ERROR: {
      // A refusal of one of our input fetches ends (or pauses) that fetch.
      if (data_ && envelope.request_id() != 0) {
        data_->OnChunkReply(envelope, clock_->NowMs());
      }
      Status status = StatusFromProto(envelope.status());
      if (status.code() == StatusCode::kFailedPrecondition) {
        // The broker lost our session (e.g. it restarted): register again.
        spdlog::info("broker asks us to register again: {}", status.message());
        registered_.store(false);
        ForgetSends();
        SendRegistration();
      } else {
        spdlog::warn("broker error: {}", status.ToString());
        OnLogBatchReply(envelope);
        OnAck(envelope);
      }
      return OkStatus();
    }
    default:
      spdlog::warn("ignoring unexpected {} from broker",
                   MessageTypeName(envelope.type()));
      return OkStatus();
  }
}

Status AgentImpl::OnRegisterReply(const v1::Envelope& envelope) {
  if (envelope.request_id() != register_request_id_) return OkStatus();
  Status status = StatusFromProto(envelope.status());
  if (!status.ok()) {
    spdlog::error("registration refused: {}", status.ToString());
    // ALREADY_EXISTS: another agent with our key serves this provider;
    // stepping aside is the only safe answer.
    if (status.code() == StatusCode::kInvalidArgument ||
        status.code() == StatusCode::kPermissionDenied ||
        status.code() == StatusCode::kAlreadyExists) {
      return status.WithContext("broker refused the registration");
    }
    return OkStatus();  // transient: the liveness timer retries
  }
  auto reply = DecodeBody<v1::RegisterProviderReply>(envelope);
  if (!reply.ok()) return OkStatus();
  if (reply->heartbeat_interval_ms() > 0) {
    heartbeat_interval_ms_ = static_cast<int>(reply->heartbeat_interval_ms());
  }
  if (reply->heartbeat_liveness() > 0) {
    heartbeat_liveness_ = static_cast<int>(reply->heartbeat_liveness());
  }
  provider_name_ = reply->provider_name();
  registered_.store(true);
  ever_registered_ = true;
  backoff_ms_ = options_.reconnect_initial_ms;
  spdlog::info("registered as provider {}", reply->provider_name());
  for (const auto& job_id : reply->cancel_job_ids()) {
    spdlog::info("broker no longer wants job {}; stopping it", job_id);
    if (accepted_offers_.erase(job_id) != 0) {
      ReleaseDevices(job_id);
      Status removed = state_->RemoveJob(job_id);
      if (!removed.ok()) spdlog::error("agent state: {}", removed.ToString());
    }
    (void)executor_->Cancel(job_id, 0);
  }
  FlushOutbox();
  return OkStatus();
}

Status AgentImpl::CheckOffer(const v1::PlacementOffer& offer) const {
  if (offer.assignments().empty()) {
    return InvalidArgumentError("offer has no assignment");
  }
  if (!offer.spec().inputs().empty() && !data_) {
    return FailedPreconditionError(
        "this site takes no jobs with inputs (its agent has no work_dir)");
  }
  if (data_) CN_RETURN_IF_ERROR(data_->CheckOffer(offer));
  // The site's own policy, checked again: the broker's matcher should have
  // kept the job away, but the site does not have to trust that.
  CN_RETURN_IF_ERROR(matching::CheckSitePolicy(
      options_.registration.policy(),
      matching::PolicySubject::Of(offer.spec(), offer.organization())));
  for (const auto& assignment : offer.assignments()) {
    const v1::Node* node = nullptr;
    for (const auto& candidate : options_.registration.nodes()) {
      if (candidate.name() == assignment.node()) node = &candidate;
    }
    if (node == nullptr) {
      return InvalidArgumentError("no node " + assignment.node() + " here");
    }
    uint32_t first = 0;
    uint32_t count = 0;
    for (const auto& accelerator : node->accelerators()) {
      if (accelerator.model() == offer.model()) {
        count = accelerator.count();
        break;
      }
      first += accelerator.count();
    }
    // A fractional job holds a share; whole cards hold all of it.
    const uint32_t share = assignment.milli() == 0 || assignment.milli() > 1000
                               ? 1000
                               : assignment.milli();
    for (uint32_t index : assignment.device_indices()) {
      if (index < first || index >= first + count) {
        return InvalidArgumentError("device " + std::to_string(index) +
                                    " on " + assignment.node() + " is not a " +
                                    offer.model());
      }
      uint32_t used = 0;
      std::string holder;
      for (const auto& [job_id, devices] : held_) {
        auto it = devices.find({assignment.node(), index});
        if (it != devices.end()) {
          used += it->second;
          holder = job_id;
        }
      }
      if (used + share > 1000) {
        return FailedPreconditionError("device " + std::to_string(index) +
                                       " on " + assignment.node() +
                                       " is busy with " + holder);
      }
    }
  }
  return OkStatus();
}

void AgentImpl::OnOffer(const v1::Envelope& envelope) {
  auto offer = DecodeBody<v1::PlacementOffer>(envelope);
  if (!offer.ok()) {
    spdlog::warn("bad placement offer: {}", offer.status().ToString());
    return;
  }
  v1::PlacementResponse response;
  response.set_job_id(offer->job_id());
  // A repeated offer (the broker resends unanswered ones) for a job we have
  // already answered or run: our answer is in the outbox or was delivered.
  if (accepted_offers_.count(offer->job_id()) != 0 ||
      held_.count(offer->job_id()) != 0) {
    return;
  }
  Status fits = CheckOffer(*offer);
  if (fits.ok()) {
    response.set_accepted(true);
    auto& devices = held_[offer->job_id()];
    for (const auto& assignment : offer->assignments()) {
      for (uint32_t index : assignment.device_indices()) {
        devices[{assignment.node(), index}] =
            assignment.milli() == 0 ? 1000 : assignment.milli();
      }
    }
    accepted_offers_[offer->job_id()] = *offer;
    spdlog::info("accepted job {} from {}: {} on {} node(s)", offer->job_id(),
                 offer->consumer(), offer->model(),
                 offer->assignments_size());
    // Remembered before the answer leaves: an agent that said yes and then
    // restarted still knows the job is its own.
    StoredJob stored;
    stored.job_id = offer->job_id();
    stored.offer = *offer;
    stored.phase = JobPhase::kAccepted;
    Status kept = Durably("accepted offer", [&]() -> Status {
      CN_RETURN_IF_ERROR(state_->PutJob(stored));
      Enqueue(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE, response, "");
      return OkStatus();
    });
    if (!kept.ok()) {
      // The yes went out anyway (from memory); the job is handled as
      // before this agent kept state.
      spdlog::warn("job {}: accepted without durable state", offer->job_id());
    }
    return;
  } else {
    response.set_accepted(false);
    response.set_reason(fits.ToString());
    *response.mutable_status() = StatusToProto(fits);
    spdlog::warn("rejected job {}: {}", offer->job_id(), fits.ToString());
  }
  Enqueue(v1::MESSAGE_TYPE_PLACEMENT_RESPONSE, response, "");
}

void AgentImpl::OnOfferReply(const v1::Envelope& envelope) {
  auto reply = DecodeBody<v1::PlacementResponseReply>(envelope);
  auto it = reply.ok() ? accepted_offers_.find(reply->job_id())
                       : accepted_offers_.end();
  if (it == accepted_offers_.end()) {
    OnAck(envelope);
    return;
  }
  const Status verdict = StatusFromProto(envelope.status());
  if (verdict.code() == StatusCode::kUnavailable ||
      verdict.code() == StatusCode::kResourceExhausted ||
      verdict.code() == StatusCode::kFailedPrecondition) {
    OnAck(envelope);  // kept and asked again; the offer stays accepted
    return;
  }
  v1::PlacementOffer offer = std::move(it->second);
  accepted_offers_.erase(it);
  const bool cancelled = cancelled_before_start_.erase(offer.job_id()) != 0;
  const bool proceed = verdict.ok() && reply->proceed() && !cancelled;
  if (!proceed) {
    ReleaseDevices(offer.job_id());
    (void)Durably("offer verdict", [&]() -> Status {
      OnAck(envelope);
      if (cancelled && reply->proceed()) {
        ReportStatus(offer.job_id(), v1::JOB_STATE_CANCELLED, -1,
                     "cancelled before it started", clock_->NowMs());
      }
      return state_->RemoveJob(offer.job_id());
    });
    return;
  }
  // The verdict and "starting" commit together, before the start: after a
  // crash the agent knows it may run the job, and (from the supervisor's
  // record) whether it did.
  Metering& metering = metering_[offer.job_id()];
  metering.model = offer.model();
  metering.attempt = std::max<uint32_t>(1, offer.attempt());
  metering.cards = 0;
  for (const auto& assignment : offer.assignments()) {
    metering.cards += static_cast<uint32_t>(assignment.device_indices_size());
  }
  metering.offer = offer;
  metering.phase = JobPhase::kStarting;
  (void)Durably("proceed", [&]() -> Status {
    OnAck(envelope);
    return SaveJob(offer.job_id(), metering);
  });
  metering_.erase(offer.job_id());  // StartJob sets it up again
  StartJob(offer);
}

void AgentImpl::StartJob(const v1::PlacementOffer& offer) {
  if (data_ && !offer.spec().inputs().empty()) {
    // Started once its inputs are here (DriveSiteData); billed from then.
    data_->BeginFetch(offer);
    return;
  }
  Launch(offer);
}

void AgentImpl::DriveSiteData(int64_t now_ms) {
  if (registered_.load()) {
    for (const auto& request : data_->Due(now_ms)) {
      Send(v1::MESSAGE_TYPE_GET_BUNDLE_CHUNK, request.request_id, request.body);
    }
  }
  for (auto& prepared : data_->TakePrepared()) {
    if (prepared.status.ok()) {
      Launch(prepared.offer);
      continue;
    }
    const std::string& job_id = prepared.offer.job_id();
    spdlog::warn("job {} cannot start: {}", job_id, prepared.status.ToString());
    ReleaseDevices(job_id);
    (void)Durably("inputs failed", [&]() -> Status {
      ReportStatus(job_id, v1::JOB_STATE_FAILED, 127,
                   prepared.status.ToString(), clock_->NowMs());
      return state_->RemoveJob(job_id);
    });
  }
  data_->Upkeep(now_ms, executor_->ActiveJobs());
}

void AgentImpl::Launch(const v1::PlacementOffer& offer) {
  ExecutionRequest request = RequestFor(offer);
  Status started = OkStatus();
  const bool secrets_lost = std::any_of(
      offer.spec().secret_env().begin(), offer.spec().secret_env().end(),
      [](const auto& entry) { return entry.second == kSecretMask; });
  if (data_) {
    auto workspace = data_->PrepareWorkspace(offer.job_id());
    if (workspace.ok()) {
      request.workspace = *workspace;
      (*request.spec.mutable_env())["COMPUTENET_WORKSPACE"] = *workspace;
      (*request.spec.mutable_env())["COMPUTENET_OUTPUT_DIR"] =
          *workspace + "/output";
    } else {
      spdlog::warn("job {}: {}", offer.job_id(), workspace.status().ToString());
    }
  }
  if (secrets_lost) {
    // Only the names were stored (agent_state.h): the values it had in
    // memory went with the agent's restart. Running with "***" would be
    // wrong; the consumer is told instead.
    started = FailedPreconditionError(
        "the provider's agent restarted before the job started, and its "
        "secret env values are kept in memory only: submit it again");
  } else {
    started = executor_->Start(request);
  }
  if (started.ok()) {
    (void)LogsOf(offer.job_id());  // a short job may end before the tick
    Metering& metering = metering_[offer.job_id()];
    metering.model = offer.model();
    metering.attempt = request.attempt;
    metering.cards = 0;
    for (const auto& assignment : offer.assignments()) {
      metering.cards += static_cast<uint32_t>(assignment.device_indices_size());
    }
    metering.offer = offer;
    metering.phase = JobPhase::kStarting;
  } else {
    spdlog::warn("job {} could not start: {}", offer.job_id(),
                 started.ToString());
    ReleaseDevices(offer.job_id());
    (void)Durably("failed start", [&]() -> Status {
      ReportStatus(offer.job_id(), v1::JOB_STATE_FAILED, 127, started.message(),
                   clock_->NowMs());
      return state_->RemoveJob(offer.job_id());
    });
  }
}

void AgentImpl::OnCancel(const v1::Envelope& envelope) {
  auto cancel = DecodeBody<v1::PlacementCancel>(envelope);
  if (!cancel.ok()) return;
  const std::string& job_id = cancel->job_id();
  if (accepted_offers_.count(job_id) != 0) {
    cancelled_before_start_.insert(job_id);
    return;
  }
  if (data_ && data_->Fetching(job_id)) {
    data_->Cancel(job_id);
    ReleaseDevices(job_id);
    (void)Durably("cancelled while fetching inputs", [&]() -> Status {
      ReportStatus(job_id, v1::JOB_STATE_CANCELLED, -1,
                   "cancelled while its inputs were fetched", clock_->NowMs());
      return state_->RemoveJob(job_id);
    });
    return;
  }
  Status status = executor_->Cancel(job_id, static_cast<int>(cancel->grace_ms()));
  if (status.code() == StatusCode::kNotFound) {
    bool reported = std::any_of(outbox_.begin(), outbox_.end(), [&](auto& i) {
      return i.job_id == job_id;
    });
    // Not running here and nothing pending about it: it never started.
    if (!reported) {
      ReportStatus(job_id, v1::JOB_STATE_CANCELLED, -1,
                   "not running on this provider", clock_->NowMs());
    }
    return;
  }
  spdlog::info("cancelling job {} (grace {} ms)", job_id, cancel->grace_ms());
}

void AgentImpl::OnAck(const v1::Envelope& envelope) {
  if (envelope.request_id() == 0) return;
  Status status = StatusFromProto(envelope.status());
  for (auto it = outbox_.begin(); it != outbox_.end(); ++it) {
    if (it->request_id != envelope.request_id()) continue;
    if (status.code() == StatusCode::kUnavailable ||
        status.code() == StatusCode::kResourceExhausted) {
      return;  // kept; FlushOutbox sends it again after a pause
    }
    if (status.code() == StatusCode::kFailedPrecondition) {
      // The broker lost our session: keep the report, register again.
      registered_.store(false);
      ForgetSends();
      SendRegistration();
      return;
    }
    if (!status.ok()) {
      spdlog::warn("broker refused {} for job {}: {}",
                   MessageTypeName(it->type), it->job_id, status.ToString());
    }
    if (it->stored_id != 0) {
      Status removed = state_->RemoveReport(it->stored_id);
      if (!removed.ok()) {
        // Sent again after a restart; the broker answers repeats alike.
        spdlog::error("agent state: {}", removed.ToString());
      }
    }
    outbox_.erase(it);
    return;
  }
}

void AgentImpl::ReportStatus(const std::string& job_id, v1::JobState state,
                             int32_t exit_code, const std::string& message,
                             int64_t timestamp_ms) {
  v1::JobStatusUpdate update;
  update.set_job_id(job_id);
  update.set_state(state);
  update.set_exit_code(exit_code);
  update.set_message(message);
  update.set_timestamp_ms(timestamp_ms);
  Enqueue(v1::MESSAGE_TYPE_JOB_STATUS_UPDATE, update, job_id);
}

void AgentImpl::ReleaseDevices(const std::string& job_id) {
  held_.erase(job_id);
}

void AgentImpl::ReportUsage(const std::string& job_id,
                            const Metering& metering,
                            const std::string& record_id, uint32_t cards,
                            int64_t start_ms, int64_t end_ms,
                            bool closes_job, const std::string& result_digest,
                            uint64_t result_bytes) {
  v1::UsageRecord record;
  record.set_record_id(record_id);
  record.set_job_id(job_id);
  record.set_provider(provider_name_.empty() ? identity_.name()
                                            : provider_name_);
  record.set_model(metering.model);
  record.set_cards(cards);
  record.set_start_ms(start_ms);
  record.set_end_ms(end_ms);
  record.set_card_seconds(CardSecondsFor(cards, start_ms, end_ms));
  record.set_closes_job(closes_job);
  if (closes_job && !result_digest.empty()) {
    record.set_result_digest(result_digest);
    record.set_result_bytes(result_bytes);
  }
  auto report = SignUsageRecord(identity_.signing_key(), record);
  if (report.ok()) {
    Enqueue(v1::MESSAGE_TYPE_USAGE_REPORT, *report, job_id);
  } else {
    spdlog::error("cannot sign usage for {}: {}", job_id,
                  report.status().ToString());
  }
}

void AgentImpl::MeterRunningJobs() {
  if (options_.usage_interval_s == 0 || metering_.empty()) return;
  const int64_t interval_ms =
      static_cast<int64_t>(options_.usage_interval_s) * 1000;
  const int64_t now = executor_->ClockMs();
  for (auto& [job_id, metering] : metering_) {
    // Whole intervals only: each interim record is exact whole seconds, so
    // the job's started-second rounding happens once, in its last record.
    while (metering.started && now - metering.last_end_ms >= interval_ms) {
      // The record and how far metering got commit together: after a
      // restart the next record neither repeats nor skips an interval.
      (void)Durably("interim usage", [&, &id = job_id, &m = metering]() {
        ReportUsage(id, m, m.RecordId(id, std::to_string(m.next_index++)),
                    m.cards, m.last_end_ms, m.last_end_ms + interval_ms, false);
        m.last_end_ms += interval_ms;
        return SaveJob(id, m);
      });
    }
  }
}

void AgentImpl::OnExecutionEvent(const ExecutionEvent& event) {
  if (event.kind == ExecutionEvent::Kind::kStarted) {
    Metering& metering = metering_[event.job_id];
    // A run taken back after a restart was metered up to last_end_ms.
    if (metering.started) return;
    metering.started = true;
    metering.last_end_ms = event.start_ms;
    metering.phase = JobPhase::kRunning;
    // A job re-adopted after a restart is known only to the executor.
    if (metering.model.empty()) metering.model = event.model;
    if (metering.cards == 0) metering.cards = event.cards;
    (void)Durably("start", [&]() -> Status {
      // The message says how the job is fenced (the executor's sandbox and
      // its limits): the broker shows it in the job's status.
      ReportStatus(event.job_id, v1::JOB_STATE_RUNNING, 0, event.message,
                   event.start_ms);
      return SaveJob(event.job_id, metering);
    });
    return;
  }
  ReleaseDevices(event.job_id);
  ShipFinalLogs(event.job_id);
  Metering metering = metering_[event.job_id];
  metering_.erase(event.job_id);
  if (!metering.started) metering.last_end_ms = event.start_ms;
  // Usage goes before the final status: when a consumer sees the job end,
  // its charge is already posted. The closing record covers the rest of the
  // run, from where the interim records stopped. A job re-adopted after a
  // restart is known only to the executor.
  if (metering.model.empty()) metering.model = event.model;
  // The output directory, packed before the closing record that names it.
  std::string result_digest;
  uint64_t result_bytes = 0;
  std::string message = event.message;
  if (data_) {
    auto result = data_->PackResult(event.job_id);
    if (result.ok()) {
      result_digest = result->digest;
      result_bytes = result->size;
    } else if (result.status().code() != StatusCode::kNotFound) {
      spdlog::warn("job {}: result not kept: {}", event.job_id,
                   result.status().ToString());
      message += (message.empty() ? "" : "; ") +
                 std::string("result not kept: ") + result.status().message();
    }
  }
  (void)Durably("end", [&]() -> Status {
    ReportUsage(event.job_id, metering,
                metering.RecordId(event.job_id, "final"), event.cards,
                metering.last_end_ms,
                std::max(event.end_ms, metering.last_end_ms), true,
                result_digest, result_bytes);
    ReportStatus(event.job_id, event.final_state, event.exit_code,
                 message, event.end_ms);
    return state_->RemoveJob(event.job_id);
  });
}

AgentImpl::ShippedLogs& AgentImpl::LogsOf(const std::string& job_id) {
  ShippedLogs& logs = shipped_[job_id];
  if (logs.files.empty()) {
    logs.files = executor_->LogFiles(job_id);
    logs.offsets.assign(logs.files.size(), 0);
  }
  return logs;
}

namespace {

// Live logs: the broker's limits (docs/protocol.md, "Live logs").
constexpr size_t kLogChunkBytes = 64 * 1024;
constexpr size_t kLogBatchChunks = 16;
// A batch unanswered this long is taken as lost (the connection went).
constexpr int64_t kLogInFlightMs = 5'000;

// Up to max_bytes of the file from offset; the file's size in *size. Empty
// when it does not exist (yet).
std::string ReadLogBytes(const std::string& path, uint64_t offset,
                         size_t max_bytes, uint64_t* size) {
  *size = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat info {};
  std::string data;
  if (::fstat(fd, &info) == 0) {
    *size = static_cast<uint64_t>(info.st_size);
    if (*size > offset) {
      data.resize(
          static_cast<size_t>(std::min<uint64_t>(*size - offset, max_bytes)));
      const ssize_t got =
          ::pread(fd, data.data(), data.size(), static_cast<off_t>(offset));
      data.resize(got > 0 ? static_cast<size_t>(got) : 0);
    }
  }
  ::close(fd);
  return data;
}

}  // namespace

void AgentImpl::ShipLogs(int64_t now_ms) {
  if (options_.log_interval_ms <= 0 || !registered_.load()) return;
  if (now_ms - last_log_ship_ms_ < options_.log_interval_ms &&
      now_ms >= last_log_ship_ms_) {
    return;
  }
  last_log_ship_ms_ = now_ms;
  for (const std::string& job_id : executor_->ActiveJobs()) {
    ShippedLogs& logs = LogsOf(job_id);
    if (logs.files.empty()) continue;
    // Backpressure: one batch in flight per job. A slow broker slows its
    // logs, never the agent (the files keep growing on disk meanwhile).
    if (logs.in_flight != 0 && now_ms - logs.sent_ms < kLogInFlightMs) continue;
    logs.in_flight = 0;
    v1::LogBatch batch;
    batch.set_job_id(job_id);
    const size_t count = std::min(logs.files.size(), kLogBatchChunks);
    const size_t share =
        std::max<size_t>(4096, options_.log_bytes_per_interval / count);
    for (size_t k = 0; k < count; ++k) {
      const size_t i = (logs.next_file + k) % logs.files.size();
      uint64_t size = 0;
      std::string data = ReadLogBytes(logs.files[i].path, logs.offsets[i],
                                      std::min(share, kLogChunkBytes), &size);
      if (size > logs.offsets[i] + options_.log_max_backlog_bytes) {
        // Too far behind to catch up at our rate: skip to the recent end.
        logs.offsets[i] = size - options_.log_max_backlog_bytes;
        data = ReadLogBytes(logs.files[i].path, logs.offsets[i],
                            std::min(share, kLogChunkBytes), &size);
      }
      if (data.empty()) continue;
      v1::LogChunk& chunk = *batch.add_chunks();
      chunk.set_node(logs.files[i].node);
      chunk.set_stream(logs.files[i].stream);
      chunk.set_offset(logs.offsets[i]);
      logs.offsets[i] += data.size();
      chunk.set_data(std::move(data));
    }
    logs.next_file = (logs.next_file + count) % logs.files.size();
    if (batch.chunks_size() == 0) continue;
    logs.in_flight = channel_->NextRequestId();
    logs.sent_ms = now_ms;
    Send(v1::MESSAGE_TYPE_LOG_BATCH, logs.in_flight, batch);
  }
}

void AgentImpl::ShipFinalLogs(const std::string& job_id) {
  auto found = shipped_.find(job_id);
  if (found == shipped_.end()) return;
  ShippedLogs logs = std::move(found->second);
  shipped_.erase(found);
  if (options_.log_interval_ms <= 0 || !registered_.load()) return;
  v1::LogBatch batch;
  batch.set_job_id(job_id);
  auto flush = [&] {
    if (batch.chunks_size() == 0) return;
    Send(v1::MESSAGE_TYPE_LOG_BATCH, channel_->NextRequestId(), batch);
    batch.clear_chunks();
  };
  for (size_t i = 0; i < logs.files.size(); ++i) {
    uint64_t size = 0;
    (void)ReadLogBytes(logs.files[i].path, 0, 0, &size);
    // The end of each file, so the broker's stderr tail is the real one.
    uint64_t from = std::max(logs.offsets[i],
                             size > kLogChunkBytes ? size - kLogChunkBytes : 0);
    v1::LogChunk& chunk = *batch.add_chunks();
    chunk.set_node(logs.files[i].node);
    chunk.set_stream(logs.files[i].stream);
    chunk.set_data(
        ReadLogBytes(logs.files[i].path, from, kLogChunkBytes, &size));
    chunk.set_offset(from);
    chunk.set_eof(true);
    // 4 chunks of 64 KiB fill the broker's 256 KiB batch limit.
    if (batch.chunks_size() == 4) flush();
  }
  flush();
}

void AgentImpl::OnLogBatchReply(const v1::Envelope& envelope) {
  if (envelope.request_id() == 0) return;
  for (auto& [job_id, logs] : shipped_) {
    if (logs.in_flight == envelope.request_id()) {
      logs.in_flight = 0;
      return;
    }
  }
}

}  // namespace

StatusOr<std::unique_ptr<ProviderAgent>> ProviderAgent::Create(
    ProviderOptions options, Identity identity,
    std::unique_ptr<Executor>&& executor) {
  if (options.broker_endpoint.empty()) {
    return InvalidArgumentError("provider: broker_endpoint is required");
  }
  CN_RETURN_IF_ERROR(ValidateCurveKey(options.broker_public_key));
  if (!executor) return InvalidArgumentError("provider: executor is required");
  if (options.heartbeat_interval_ms <= 0 || options.heartbeat_liveness <= 0 ||
      options.reconnect_initial_ms <= 0 ||
      options.reconnect_max_ms < options.reconnect_initial_ms ||
      options.tick_ms <= 0) {
    return InvalidArgumentError("provider: bad heartbeat/backoff/tick settings");
  }
  if (!options.clock) options.clock = SystemClock::Shared();
  // A batch stays within the broker's 256 KiB limit.
  options.log_bytes_per_interval =
      std::min<uint32_t>(options.log_bytes_per_interval, 256 * 1024);
  CN_ASSIGN_OR_RETURN(auto state, AgentState::Open(options.state_dir));
  std::unique_ptr<SiteData> data;
  if (!options.data.work_dir.empty()) {
    CN_ASSIGN_OR_RETURN(data, SiteData::Open(options.data));
  }
  auto agent = std::make_unique<AgentImpl>(std::move(options), std::move(identity),
                                           std::move(executor), std::move(state));
  agent->set_site_data(std::move(data));
  return std::unique_ptr<ProviderAgent>(std::move(agent));
}

}  // namespace computenet::provider
