#include <spdlog/spdlog.h>

#include <algorithm>

#include "computenet/common/envelope.h"
#include "core/broker_impl.h"
#include "core/imports.h"

namespace computenet::broker {
namespace {

constexpr size_t kMaxFramesPerWakeup = 1000;
// A batch stops taking frames after this long (checked every 64 frames).
constexpr auto kMaxBatchTime = std::chrono::milliseconds(5);

bool IsProviderMessage(v1::MessageType type) {
  return (type >= v1::MESSAGE_TYPE_REGISTER_PROVIDER &&
          type <= v1::MESSAGE_TYPE_UPDATE_OFFER_REPLY) ||
         (type >= v1::MESSAGE_TYPE_GET_BUNDLE_CHUNK &&
          type <= v1::MESSAGE_TYPE_RESULT_CHUNK) ||
         type == v1::MESSAGE_TYPE_LOG_BATCH ||
         type == v1::MESSAGE_TYPE_LOG_BATCH_REPLY;
}

bool IsConsumerMessage(v1::MessageType type) {
  return (type >= v1::MESSAGE_TYPE_SUBMIT_JOB &&
          type <= v1::MESSAGE_TYPE_JOB_EVENT) ||
         (type >= v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK &&
          type <= v1::MESSAGE_TYPE_FETCH_RESULT_CHUNK_REPLY) ||
         type == v1::MESSAGE_TYPE_GET_JOB_LOGS ||
         type == v1::MESSAGE_TYPE_GET_JOB_LOGS_REPLY;
}

bool IsPeerMessage(v1::MessageType type) {
  return (type >= v1::MESSAGE_TYPE_PEER_HELLO &&
          type <= v1::MESSAGE_TYPE_PEER_COSIGNATURE_REPLY) ||
         (type >= v1::MESSAGE_TYPE_PEER_PUT_BUNDLE_CHUNK &&
          type <= v1::MESSAGE_TYPE_PEER_FETCH_RESULT_CHUNK_REPLY) ||
         type == v1::MESSAGE_TYPE_PEER_LOG_BATCH ||
         type == v1::MESSAGE_TYPE_PEER_LOG_BATCH_REPLY;
}

}  // namespace

StatusOr<std::unique_ptr<Broker>> Broker::Create(
    BrokerOptions options, Identity identity,
    std::unique_ptr<Matcher>&& matcher) {
  CN_RETURN_IF_ERROR(ValidatePartyName(options.broker_id));
  if (options.database_path.empty()) {
    return InvalidArgumentError("broker: database_path is required");
  }
  if (options.heartbeat_interval_ms <= 0 || options.heartbeat_liveness <= 0) {
    return InvalidArgumentError("broker: heartbeat settings must be positive");
  }
  if (options.fee_bps > 10'000) {
    return InvalidArgumentError("broker: fee_bps must be 0..10000");
  }
  if (!options.clock) options.clock = SystemClock::Shared();
  if (!matcher) matcher = std::make_unique<PlacementMatcher>();
  // One broker per database: taken before the file is even migrated.
  CN_ASSIGN_OR_RETURN(auto lock, InstanceLock::Acquire(options.database_path));
  CN_ASSIGN_OR_RETURN(auto store, Store::Open(options.database_path));
  if (!options.secrets_key_file.empty()) {
    CN_ASSIGN_OR_RETURN(auto box,
                        SecretBox::LoadOrCreate(options.secrets_key_file));
    store->SetSecretBox(std::move(box));
  }
  auto broker = std::make_unique<BrokerImpl>(
      std::move(options), std::move(identity), std::move(matcher),
      std::move(store), std::move(lock));
  CN_RETURN_IF_ERROR(broker->Init());
  return std::unique_ptr<Broker>(std::move(broker));
}

BrokerImpl::BrokerImpl(BrokerOptions options, Identity identity,
                       std::unique_ptr<Matcher> matcher,
                       std::unique_ptr<Store> store,
                       std::unique_ptr<InstanceLock> lock)
    : lock_(std::move(lock)),
      options_(std::move(options)),
      identity_(std::move(identity)),
      matcher_(std::move(matcher)),
      store_(std::move(store)),
      directory_(BrokerFileDirectory(store_->database())),
      ledger_(store_->database(), *directory_,
              LedgerOptions{options_.broker_id, options_.fee_bps}),
      clock_(options_.clock),
      context_(1),
      registry_(options_.catalog),
      limiter_(options_.requests_per_second, options_.request_burst),
      jobs_(std::make_unique<JobManager>(
          JobManagerOptions{
              options_.region, options_.max_attempts, options_.cancel_grace_ms,
              static_cast<int64_t>(options_.heartbeat_interval_ms) *
                  options_.heartbeat_liveness * 2,
              options_.priority_preemption,
              static_cast<uint32_t>(std::max(0, options_.preemption_grace_ms)),
              options_.preemption, options_.max_unfinished_jobs_per_consumer},
          *store_, ledger_, registry_, options_.clock, options_.queue,
          static_cast<JobEvents&>(*this))),
      logs_([this] {
        LogBufferOptions log_options;
        log_options.per_stream_bytes = options_.log_stream_bytes;
        log_options.total_bytes = options_.log_total_bytes;
        return log_options;
      }()),
      metrics_(std::make_unique<BrokerMetrics>(options_.broker_id, options_.region)) {}

Status BrokerImpl::Init() {
  // The ZAP handler first: a CURVE socket bound without one admits anyone.
  CN_ASSIGN_OR_RETURN(zap_, ZapHandler::Bind(context_, *store_, clock_));
  // Pinned peers are enrolled before anyone can connect.
  CN_RETURN_IF_ERROR(InitFederation());
  CN_ASSIGN_OR_RETURN(router_, BindCurveRouter(context_, identity_.curve(),
                                               options_.endpoint, &endpoint_));
  outbound_ = std::make_unique<RouterOutbound>(
      router_, [this](const ReplyTag& tag, const Status& status) {
        v1::Heartbeat empty;
        return EncodeEnvelope(tag.type, tag.request_id, ++send_sequence_, empty,
                              &status);
      });
  CN_RETURN_IF_ERROR(LoadState());
  CN_RETURN_IF_ERROR(InitLedger());
  CN_RETURN_IF_ERROR(InitBundles());
  CheckRevocations(Now());
  if (!options_.metrics_address.empty()) {
    loop_turned_ms_.store(SteadyNowMs());
    SampleMetrics(Now());
    CN_ASSIGN_OR_RETURN(
        http_, HttpEndpoint::Start(
                   options_.metrics_address,
                   HttpHandlers{
                       [this] { return metrics_->Render(); },
                       [this] {
                         return SteadyNowMs() - loop_turned_ms_.load() < kLoopStuckMs;
                       },
                       [this] {
                         return serving_.load() &&
                                SteadyNowMs() - loop_turned_ms_.load() < kLoopStuckMs;
                       }}));
    spdlog::info("metrics on {}/metrics (and /healthz, /readyz)", http_->url());
  }
  spdlog::info("broker {} listening on {} (key {})", options_.broker_id,
               endpoint_, identity_.curve().public_z85);
  return OkStatus();
}

Status BrokerImpl::Run() {
  const int64_t tick_ms = TickMs();
  std::vector<zmq::pollitem_t> items;
  serving_.store(true);
  while (!stop_.load()) {
    loop_turned_ms_.store(SteadyNowMs());
    // Peer links come and go (reconnects), so the poll set is rebuilt.
    items.assign({{zap_->socket().handle(), 0, ZMQ_POLLIN, 0},
                  {router_.handle(), 0, ZMQ_POLLIN, 0}});
    for (auto& [name, link] : links_) {
      if (zmq::socket_t* socket = link->socket()) {
        items.push_back({socket->handle(), 0, ZMQ_POLLIN, 0});
      }
    }
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(tick_ms));
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) continue;
      return UnavailableError(std::string("poll: ") + error.what());
    }
    if (items[0].revents & ZMQ_POLLIN) zap_->HandlePending();
    CN_RETURN_IF_ERROR(RunBatch((items[1].revents & ZMQ_POLLIN) != 0));
  }
  serving_.store(false);
  SaveFairShare();
  CheckpointOnShutdown();
  spdlog::info("broker {} stopped", options_.broker_id);
  return OkStatus();
}

Status BrokerImpl::RunBatch(bool frames_waiting) {
  // Group commit: every write of this iteration (requests, the tick, the
  // scheduling pass) joins one transaction, and every message they cause is
  // held until it commits: one fsync for the batch, nothing acknowledged
  // before it is durable.
  Status begun = store_->database().BeginBatch();
  if (!begun.ok()) {
    // Another process holds the write lock past the busy timeout; serve this
    // iteration with per-transaction commits rather than not at all.
    spdlog::warn("group commit unavailable this iteration: {}",
                 begun.ToString());
  } else {
    outbound_->Hold();
    for (auto& [name, link] : links_) link->Hold();
  }
  const auto started = std::chrono::steady_clock::now();
  uint64_t frames = 0;
  if (frames_waiting) {
    for (size_t i = 0; i < kMaxFramesPerWakeup; ++i) {
      auto frame = ReceiveRouted(router_);
      if (!frame.ok()) {
        spdlog::warn("dropped malformed message: {}",
                     frame.status().ToString());
        continue;
      }
      if (!frame->has_value()) break;
      ++frames;
      HandleFrame(**frame);
      // Handshakes must not wait behind a long burst of messages, and a
      // batch is bounded in time as well as count: its replies wait for it.
      if (i % 64 == 63) {
        zap_->HandlePending();
        if (std::chrono::steady_clock::now() - started > kMaxBatchTime) break;
      }
    }
  }
  PollPeerLinks();
  OnTick();
  if (!store_->database().batch_open()) return OkStatus();
  const auto commit_started = std::chrono::steady_clock::now();
  Status committed = store_->database().CommitBatch();
  if (frames > 0) {
    metrics_->Committed(frames, std::chrono::duration<double>(
                                    std::chrono::steady_clock::now() - commit_started)
                                    .count());
  }
  if (!committed.ok()) {
    // Nothing of the batch is on disk, but this process's memory (queue,
    // registry, watchers) already moved on: answer every request in it with
    // a retryable error and stop, so a restart reloads the durable state.
    outbound_->Fail(committed);
    for (auto& [name, link] : links_) link->Discard();
    return committed.WithContext("group commit");
  }
  const std::set<std::string> gone = outbound_->Release();
  for (auto& [name, link] : links_) link->Release();
  if (!gone.empty()) {
    DropWatchers(gone);
    connections_.Forget(gone);
  }
  return OkStatus();
}

void BrokerImpl::HandleFrame(const RoutedFrame& frame) {
  auto peer = ParseUserId(frame.user_id);
  if (!peer.ok()) {
    // Cannot happen with the ZAP handler in place; never serve it anyway.
    spdlog::error("message without authenticated identity dropped");
    return;
  }
  connections_.Note(frame);
  const int64_t now = Now();
  // Pinned peers are exempt: their traffic scales with the whole region's
  // work, and an answer lost to the limiter would stall a forward.
  if (peer->role != Role::kPeer && !limiter_.Allow(frame.user_id, now)) {
    ReplyError(frame.routing_id, 0, v1::MESSAGE_TYPE_ERROR,
               ResourceExhaustedError("rate limit exceeded; slow down"));
    return;
  }
  auto envelope = DecodeEnvelope(frame.payload);
  if (!envelope.ok()) {
    spdlog::warn("{}: bad envelope: {}", frame.user_id,
                 envelope.status().ToString());
    ReplyError(frame.routing_id, 0, v1::MESSAGE_TYPE_ERROR, envelope.status());
    return;
  }
  if (!revoked_.empty() && revoked_.count(frame.user_id) != 0) {
    // Revoked while connected: the handshake admitted it, nothing after.
    ReplyError(frame.routing_id, envelope->request_id(), v1::MESSAGE_TYPE_ERROR,
               PermissionDeniedError("key revoked: " + frame.user_id));
    return;
  }
  if (!retiring_keys_.empty() && !frame.curve_key.empty()) {
    auto retiring = retiring_keys_.find(frame.curve_key);
    if (retiring != retiring_keys_.end() &&
        retiring->second.retire_at_ms <= now) {
      // Rotated away from: the party's new key is served, this one not.
      ReplyError(frame.routing_id, envelope->request_id(),
                 v1::MESSAGE_TYPE_ERROR,
                 PermissionDeniedError("key retired: " + frame.user_id +
                                       " rotated to a new key"));
      return;
    }
  }
  if (peer->role == Role::kProvider) {
    ProviderEntry* entry = registry_.Find(peer->name);
    if (entry != nullptr && entry->routing_id == frame.routing_id) {
      entry->last_heard_ms = now;
    }
  }
  Dispatch(Request{frame, *peer, *envelope});
}

void BrokerImpl::Dispatch(const Request& request) {
  const v1::MessageType type = request.envelope.type();
  const Role role = request.peer.role;
  metrics_->Request(type);
  if (type == v1::MESSAGE_TYPE_HEARTBEAT) {
    // A heartbeat on a connection we do not know as registered means we lost
    // the provider's session (e.g. this broker restarted): ask it to
    // register again instead of waiting for its liveness timer.
    if (role == Role::kProvider && RegisteredProvider(request) == nullptr) {
      ReplyError(request.frame.routing_id, 0, v1::MESSAGE_TYPE_ERROR,
                 FailedPreconditionError("not registered; register first"));
    }
    // A peer hears from us only on its own link: echo so it knows we live.
    if (role == Role::kPeer) {
      v1::Heartbeat echo;
      echo.set_sent_at_ms(Now());
      outbound_->Send(request.frame.routing_id,
                      EncodeEnvelope(v1::MESSAGE_TYPE_HEARTBEAT, 0,
                                     ++send_sequence_, echo));
    }
    return;
  }
  if (IsPeerMessage(type) && role != Role::kPeer) {
    ReplyError(request.frame.routing_id, request.envelope.request_id(),
               v1::MESSAGE_TYPE_ERROR,
               PermissionDeniedError("only peer brokers may send " +
                                     MessageTypeName(type)));
    return;
  }
  if (IsProviderMessage(type) && role != Role::kProvider) {
    ReplyError(request.frame.routing_id, request.envelope.request_id(),
               v1::MESSAGE_TYPE_ERROR,
               PermissionDeniedError("only providers may send " +
                                     MessageTypeName(type)));
    return;
  }
  if (IsConsumerMessage(type) && role != Role::kConsumer &&
      role != Role::kAdmin) {
    ReplyError(request.frame.routing_id, request.envelope.request_id(),
               v1::MESSAGE_TYPE_ERROR,
               PermissionDeniedError("only consumers and admins may send " +
                                     MessageTypeName(type)));
    return;
  }
  switch (type) {
    case v1::MESSAGE_TYPE_REGISTER_PROVIDER:
      return OnRegisterProvider(request);
    case v1::MESSAGE_TYPE_PLACEMENT_RESPONSE:
      return OnPlacementResponse(request);
    case v1::MESSAGE_TYPE_JOB_STATUS_UPDATE:
      return OnJobStatusUpdate(request);
    case v1::MESSAGE_TYPE_USAGE_REPORT:
      return OnUsageReport(request);
    case v1::MESSAGE_TYPE_UPDATE_OFFER:
      return OnUpdateOffer(request);
    case v1::MESSAGE_TYPE_SUBMIT_JOB:
      return OnSubmitJob(request);
    case v1::MESSAGE_TYPE_GET_JOB:
      return OnGetJob(request);
    case v1::MESSAGE_TYPE_CANCEL_JOB:
      return OnCancelJob(request);
    case v1::MESSAGE_TYPE_LIST_JOBS:
      return OnListJobs(request);
    case v1::MESSAGE_TYPE_WATCH_JOBS:
      return OnWatchJobs(request);
    case v1::MESSAGE_TYPE_PEER_HELLO:
      return OnPeerHello(request);
    case v1::MESSAGE_TYPE_CAPACITY_ADVERT:
      return OnCapacityAdvert(request);
    case v1::MESSAGE_TYPE_FORWARD_JOB:
      return OnForwardJob(request);
    case v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE:
      return OnRemoteJobUpdate(request);
    case v1::MESSAGE_TYPE_REMOTE_USAGE:
      return OnRemoteUsage(request);
    case v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB:
      return OnCancelRemoteJob(request);
    case v1::MESSAGE_TYPE_RECONCILE_JOBS:
      return OnReconcileJobs(request);
    case v1::MESSAGE_TYPE_PEER_SETTLEMENT:
      return OnPeerSettlement(request);
    case v1::MESSAGE_TYPE_PEER_LEDGER_PULL:
      return OnLedgerPull(request);
    case v1::MESSAGE_TYPE_PEER_COSIGNATURE:
      return OnCosignCheckpoint(request);
    case v1::MESSAGE_TYPE_GET_FEDERATION_STATUS:
      return OnGetFederationStatus(request);
    case v1::MESSAGE_TYPE_GET_STATEMENT:
      return OnGetStatement(request);
    case v1::MESSAGE_TYPE_PUT_BUNDLE_CHUNK:
      return OnPutBundleChunk(request);
    case v1::MESSAGE_TYPE_FETCH_RESULT_CHUNK:
      return OnFetchResultChunk(request);
    case v1::MESSAGE_TYPE_PEER_PUT_BUNDLE_CHUNK:
      return OnPeerPutBundleChunk(request);
    case v1::MESSAGE_TYPE_PEER_GET_BUNDLE_CHUNK:
      return OnPeerGetBundleChunk(request);
    case v1::MESSAGE_TYPE_PEER_FETCH_RESULT_CHUNK:
      return OnPeerFetchResultChunk(request);
    case v1::MESSAGE_TYPE_GET_BUNDLE_CHUNK:
      return OnGetBundleChunk(request);
    case v1::MESSAGE_TYPE_RESULT_CHUNK:
      return OnResultChunk(request);
    case v1::MESSAGE_TYPE_LOG_BATCH:
      return OnLogBatch(request);
    case v1::MESSAGE_TYPE_GET_JOB_LOGS:
      return OnGetJobLogs(request);
    case v1::MESSAGE_TYPE_PEER_LOG_BATCH:
      return OnPeerLogBatch(request);
    default:
      spdlog::warn("{}/{}: unsupported message {}", RoleName(role),
                   request.peer.name, MessageTypeName(type));
      ReplyError(request.frame.routing_id, request.envelope.request_id(),
                 v1::MESSAGE_TYPE_ERROR,
                 UnimplementedError("message type " + MessageTypeName(type) +
                                    " is not served by this broker"));
  }
}

void BrokerImpl::Reply(const Request& request, v1::MessageType type,
                       const google::protobuf::MessageLite& body,
                       const Status& status) {
  if (!status.ok()) {
    metrics_->Refused(status.code());
    spdlog::info("{}/{} {}: {}", RoleName(request.peer.role), request.peer.name,
                 MessageTypeName(request.envelope.type()), status.ToString());
  }
  std::string payload = EncodeEnvelope(type, request.envelope.request_id(),
                                       ++send_sequence_, body, &status);
  if (payload.size() > static_cast<size_t>(kMaxMessageBytes)) {
    // The peer's socket would drop it and disconnect: answer instead, with
    // an empty body (a reply that echoes a huge field of the request).
    const Status too_big = ResourceExhaustedError(
        "the reply (" + std::to_string(payload.size()) +
        " bytes) would exceed the frame limit");
    spdlog::error("{}/{} {}: {}", RoleName(request.peer.role),
                  request.peer.name, MessageTypeName(request.envelope.type()),
                  too_big.message());
    payload = EncodeEnvelopeBytes(type, request.envelope.request_id(),
                                  send_sequence_, "", &too_big);
  }
  outbound_->Send(request.frame.routing_id, std::move(payload),
                  ReplyTag{request.envelope.request_id(), type});
}

void BrokerImpl::ReplyError(const std::string& routing_id, uint64_t request_id,
                            v1::MessageType type, const Status& status) {
  SendReply(routing_id, request_id, type, v1::Heartbeat(), status);
}

void BrokerImpl::SendReply(const std::string& routing_id, uint64_t request_id,
                           v1::MessageType type,
                           const google::protobuf::MessageLite& body,
                           const Status& status) {
  if (!status.ok()) metrics_->Refused(status.code());
  std::string payload =
      EncodeEnvelope(type, request_id, ++send_sequence_, body, &status);
  outbound_->Send(routing_id, std::move(payload), ReplyTag{request_id, type});
}

bool BrokerImpl::SendToProvider(ProviderEntry& provider, v1::MessageType type,
                                const google::protobuf::MessageLite& body) {
  if (!provider.online) return false;
  std::string payload = EncodeEnvelope(type, 0, ++send_sequence_, body);
  if (payload.size() > static_cast<size_t>(kMaxMessageBytes)) {
    // The agent's socket would drop it and the link with it (the job rules
    // keep every job's messages under the limit; this is the last guard).
    spdlog::error("not sent to {}: {} of {} bytes exceeds the frame limit",
                  provider.name, MessageTypeName(type), payload.size());
    return false;
  }
  outbound_->Send(provider.routing_id, std::move(payload));
  provider.last_sent_ms = Now();
  return true;
}

int64_t BrokerImpl::SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void BrokerImpl::SampleMetrics(int64_t now_ms) {
  next_metrics_sample_ms_ = now_ms + kMetricsSampleMs;
  MetricsSample sample;
  sample.jobs_queued = jobs_->queue().size();
  sample.jobs_active = jobs_->active_count();
  for (ProviderEntry* provider : registry_.All()) {
    if (provider->online) {
      ++sample.providers_online;
      sample.max_provider_silence_ms = std::max(
          sample.max_provider_silence_ms, now_ms - provider->last_heard_ms);
    } else {
      ++sample.providers_offline;
    }
  }
  for (const auto& provider : registry_.OnlineCapacity()) {
    for (const auto& node : provider.nodes) {
      for (const auto& group : node.groups) {
        auto& cards = sample.cards_by_model[group.model];
        cards.free += group.free_devices.size();
        cards.used += group.total - std::min<uint64_t>(group.total,
                                                       group.free_devices.size());
      }
    }
  }
  for (const auto& peer : options_.peers) {
    MetricsSample::Peer figures;
    figures.broker_id = peer.broker_id;
    auto link = links_.find(peer.broker_id);
    figures.link_up = link != links_.end() && link->second->up();
    auto adverts = adverts_.find(peer.broker_id);
    if (adverts != adverts_.end() && adverts->second.received_ms > 0) {
      figures.advert_age_ms = std::max<int64_t>(0, now_ms - adverts->second.received_ms);
    }
    sample.peers.push_back(std::move(figures));
  }
  // The figures that need the database, less often.
  if (now_ms >= next_metrics_store_sample_ms_) {
    next_metrics_store_sample_ms_ = now_ms + kMetricsStoreSampleMs;
    if (auto size = ledger_.Size(); size.ok()) sample.ledger_entries = *size;
    if (auto holds = ledger_.OpenHolds(); holds.ok()) {
      sample.open_holds = holds->size();
      int64_t sum = 0;
      for (const auto& hold : *holds) sum += hold.remaining;
      sample.open_holds_minor = sum;
    }
    if (!options_.peers.empty()) {
      auto active = store_->JobsInStates(
          {v1::JOB_STATE_QUEUED, v1::JOB_STATE_PLACED, v1::JOB_STATE_RUNNING});
      if (active.ok()) {
        uint64_t forwarded = 0, in_doubt = 0;
        for (const auto& job : *active) {
          if (job.remote_broker().empty() || !job.home_broker().empty()) continue;
          ++forwarded;
          if (job.in_doubt()) ++in_doubt;
        }
        sample.jobs_forwarded_out = forwarded;
        sample.jobs_in_doubt = in_doubt;
      }
    }
  }
  metrics_->Set(sample);
}

void BrokerImpl::OnTick() {
  const int64_t now = Now();
  // The periodic work scans every provider: at most once per tick, however
  // many loop iterations a busy second has (10,000 heartbeating providers
  // make thousands); the scheduling pass runs on every iteration.
  if (now - last_tick_ms_ < TickMs() && now >= last_tick_ms_) {
    Schedule();
    return;
  }
  last_tick_ms_ = now;
  CheckRevocations(now);
  RetireDueKeys(now);
  if (http_ && now >= next_metrics_sample_ms_) SampleMetrics(now);
  for (ProviderEntry* provider : registry_.All()) {
    if (provider->online &&
        now - provider->last_sent_ms >= options_.heartbeat_interval_ms) {
      v1::Heartbeat heartbeat;
      heartbeat.set_sent_at_ms(now);
      SendToProvider(*provider, v1::MESSAGE_TYPE_HEARTBEAT, heartbeat);
    }
  }
  CheckProviderLiveness(now);
  jobs_->ResendUnansweredOffers(now);
  if (!relays_.empty()) ExpireRelays(now);
  if (now >= next_bundle_sweep_ms_) SweepBundles(now);
  TickFederation(now);
  LedgerTick(now);
  if (now - last_log_expiry_ms_ >= 1000 || now < last_log_expiry_ms_) {
    last_log_expiry_ms_ = now;
    logs_.Expire(now, options_.log_keep_ms);
  }
  if (now - last_fair_share_save_ms_ >= kFairShareSaveMs || now < last_fair_share_save_ms_) {
    last_fair_share_save_ms_ = now;
    SaveFairShare();
  }
  Schedule();
}

void BrokerImpl::SaveFairShare() {
  // At most kFairShareSaveMs of accrued usage is lost to a crash: fair share
  // is a ranking that decays over a day, not an account.
  Status saved = jobs_->SaveFairShare();
  if (!saved.ok()) spdlog::warn("saving fair share: {}", saved.ToString());
}

void BrokerImpl::CheckRevocations(int64_t now_ms) {
  const bool asked = reload_.exchange(false);
  // data_version moves only when another connection (an operator's revoke)
  // commits: one cheap PRAGMA per tick.
  auto version = store_->database().DataVersion();
  if (!version.ok()) {
    spdlog::warn("data_version: {}", version.status().ToString());
    return;
  }
  if (!asked && *version == revocation_version_) return;
  revocation_version_ = *version;
  auto revoked = store_->RevokedUserIds();
  if (!revoked.ok()) {
    spdlog::error("reading revocations: {}", revoked.status().ToString());
    return;
  }
  auto retiring = store_->RetiringKeys();
  if (!retiring.ok()) {
    spdlog::error("reading retired keys: {}", retiring.status().ToString());
    return;
  }
  retiring_keys_ = std::move(*retiring);
  next_retirement_ms_ = std::numeric_limits<int64_t>::min();  // look now
  std::vector<std::string> newly;
  for (const auto& user_id : *revoked) {
    if (revoked_.count(user_id) == 0) newly.push_back(user_id);
  }
  revoked_ = std::move(*revoked);
  if (asked) {
    spdlog::info(
        "reload: {} revoked key(s), {} new; peers, fees and "
        "endpoints change only with a restart",
        revoked_.size(), newly.size());
  }
  for (const auto& user_id : newly) {
    auto peer = ParseUserId(user_id);
    if (!peer.ok()) continue;
    spdlog::warn("{} revoked: its messages are refused from now on", user_id);
    const std::vector<std::string> dropped = connections_.DropUser(user_id);
    if (!dropped.empty()) {
      spdlog::warn("{}: {} open connection(s) dropped", user_id,
                   dropped.size());
      DropWatchers(std::set<std::string>(dropped.begin(), dropped.end()));
    }
    if (peer->role == Role::kProvider) {
      ProviderEntry* provider = registry_.Find(peer->name);
      if (provider != nullptr && provider->online) {
        // Lost from now: its jobs end after the lost-provider timeout
        // unless the key is restored and it reconnects.
        registry_.SetOnline(peer->name, false, now_ms);
        provider->routing_id.clear();
        Status saved = store_->SetProviderOnline(peer->name, false, now_ms);
        if (!saved.ok()) spdlog::error("{}", saved.ToString());
      }
    } else if (peer->role == Role::kConsumer) {
      watchers_.erase(peer->name);
    }
  }
}

void BrokerImpl::RetireDueKeys(int64_t now_ms) {
  if (now_ms < next_retirement_ms_) return;
  next_retirement_ms_ = std::numeric_limits<int64_t>::max();
  for (const auto& [key, retiring] : retiring_keys_) {
    if (retiring.retire_at_ms > now_ms) {
      next_retirement_ms_ =
          std::min(next_retirement_ms_, retiring.retire_at_ms);
      continue;
    }
    if (!retired_keys_.insert(key).second) continue;
    const std::vector<std::string> dropped = connections_.DropKey(key);
    if (dropped.empty()) continue;
    spdlog::warn("{}: key {} retired (rotated): {} open connection(s) dropped",
                 retiring.user_id, key, dropped.size());
    const std::set<std::string> gone(dropped.begin(), dropped.end());
    DropWatchers(gone);
    auto peer = ParseUserId(retiring.user_id);
    if (!peer.ok() || peer->role != Role::kProvider) continue;
    ProviderEntry* provider = registry_.Find(peer->name);
    if (provider != nullptr && provider->online &&
        gone.count(provider->routing_id) != 0) {
      // Registered on the old key: lost until it registers on the new one
      // (its jobs wait for it as for any lost provider).
      registry_.SetOnline(peer->name, false, now_ms);
      provider->routing_id.clear();
      Status saved = store_->SetProviderOnline(peer->name, false, now_ms);
      if (!saved.ok()) spdlog::error("{}", saved.ToString());
    }
  }
}

void BrokerImpl::CheckProviderLiveness(int64_t now_ms) {
  const int64_t silence_limit =
      static_cast<int64_t>(options_.heartbeat_interval_ms) *
      options_.heartbeat_liveness;
  for (ProviderEntry* provider : registry_.All()) {
    if (provider->online && now_ms - provider->last_heard_ms > silence_limit) {
      registry_.SetOnline(provider->name, false, now_ms);
      RecordProviderEvent(provider->name, ProviderEvent::kHeartbeatLoss);
      spdlog::warn("provider {} lost: silent for {} ms", provider->name,
                   now_ms - provider->last_heard_ms);
      Status saved = store_->SetProviderOnline(provider->name, false, now_ms);
      if (!saved.ok()) spdlog::error("{}", saved.ToString());
    }
    if (!provider->online && provider->lost_since_ms > 0 &&
        now_ms - provider->lost_since_ms > options_.lost_job_timeout_ms) {
      // Jobs that stayed with a provider gone this long are failed; if it
      // comes back and still reports them, registration cancels them.
      auto jobs = jobs_->ActiveOn(provider->name);
      if (!jobs.ok()) continue;
      for (auto& job : *jobs) {
        RecordProviderEvent(provider->name, ProviderEvent::kProviderFailure);
        Status failed = jobs_->Finish(job, v1::JOB_STATE_FAILED, -1,
                                      "provider " + provider->name + " lost");
        if (!failed.ok()) spdlog::error("{}", failed.ToString());
      }
      provider->lost_since_ms = 0;
    }
  }
  ExpireUnlistedJobs(now_ms);
}

}  // namespace computenet::broker
