// Private: the Broker's implementation, split by concern across
// broker.cc (loop, dispatch, heartbeats), provider_service.cc,
// consumer_service.cc and scheduler.cc.
#ifndef COMPUTENET_BROKER_CORE_BROKER_IMPL_H_
#define COMPUTENET_BROKER_CORE_BROKER_IMPL_H_

#include <google/protobuf/message_lite.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/imports.h"
#include "computenet/broker/broker.h"
#include "core/connections.h"
#include "core/http_endpoint.h"
#include "core/instance_lock.h"
#include "core/metrics.h"
#include "core/outbound.h"
#include "computenet/matching/job_queue.h"
#include "computenet/ledger/ledger.h"
#include "federation/peer_link.h"
#include "computenet/ledger/checkpoints.h"
#include "jobs/provider_registry.h"
#include "federation/routing.h"
#include "jobs/job_manager.h"
#include "jobs/log_buffer.h"
#include "jobs/store.h"
#include "core/zap_handler.h"
#include "computenet/common/rate_limiter.h"
#include "computenet/common/transport.h"
#include "computenet/bundles/bundle_store.h"
#include "computenet/v1/bundle.pb.h"
#include "computenet/v1/consumer.pb.h"
#include "computenet/v1/peer.pb.h"

namespace computenet::broker {

class BrokerImpl final : public Broker, private JobEvents {
 public:
  BrokerImpl(BrokerOptions options, Identity identity,
             std::unique_ptr<Matcher> matcher, std::unique_ptr<Store> store,
             std::unique_ptr<InstanceLock> lock);
  Status Init();

  Status Run() override;
  void Shutdown() override { stop_.store(true); }
  void Reload() override { reload_.store(true); }
  std::string endpoint() const override { return endpoint_; }
  std::string public_key() const override {
    return identity_.curve().public_z85;
  }
  std::string metrics_url() const override {
    return http_ ? http_->url() : std::string();
  }

 private:
  // One authenticated, decoded request.
  struct Request {
    const RoutedFrame& frame;
    const AuthenticatedPeer& peer;
    const v1::Envelope& envelope;
  };

  // broker.cc
  // One loop iteration's work (frames if waiting, peers, the tick) as one
  // group-committed batch. A failed commit is returned (the loop stops).
  Status RunBatch(bool frames_waiting);
  void HandleFrame(const RoutedFrame& frame);
  void Dispatch(const Request& request);
  void OnTick();
  void CheckProviderLiveness(int64_t now_ms);
  // Revocations committed by another process (or asked for by Reload):
  // from then on the party's messages are refused, a provider is offline
  // and a consumer's watchers are dropped.
  void CheckRevocations(int64_t now_ms);
  // Keys whose rotation overlap has ended: their open connections are
  // dropped once (their frames are refused in HandleFrame from then on).
  void RetireDueKeys(int64_t now_ms);
  void Reply(const Request& request, v1::MessageType type,
             const google::protobuf::MessageLite& body,
             const Status& status = OkStatus());
  void ReplyError(const std::string& routing_id, uint64_t request_id,
                  v1::MessageType type, const Status& status);
  bool SendToProvider(ProviderEntry& provider, v1::MessageType type,
                      const google::protobuf::MessageLite& body);
  int64_t Now() const { return clock_->NowMs(); }
  // The loop's poll timeout and the period of OnTick's periodic part: a
  // quarter heartbeat, within 5..100 ms.
  int64_t TickMs() const {
    return std::clamp<int64_t>(
        static_cast<int64_t>(options_.heartbeat_interval_ms) / 4, 5, 100);
  }

  // provider_service.cc
  void OnRegisterProvider(const Request& request);
  void OnPlacementResponse(const Request& request);
  void OnJobStatusUpdate(const Request& request);
  void OnUsageReport(const Request& request);
  void OnUpdateOffer(const Request& request);  // placement_service.cc
  // The provider entry if this connection is its registered one.
  ProviderEntry* RegisteredProvider(const Request& request);
  Status ReconcileProvider(const std::string& name,
                           const v1::RegisterProvider& registration,
                           v1::RegisterProviderReply* reply);
  // Jobs kept after their provider re-registered without them (see
  // ReconcileProvider) fail once lost_job_timeout_ms has passed without a
  // report from it. Called from the tick.
  void ExpireUnlistedJobs(int64_t now_ms);

  // consumer_service.cc
  void OnSubmitJob(const Request& request);
  void OnGetJob(const Request& request);
  void OnCancelJob(const Request& request);
  void OnListJobs(const Request& request);
  void OnWatchJobs(const Request& request);
  // The job if the caller may see it (its owner, or an admin); NOT_FOUND
  // otherwise, so other consumers' job ids are not even confirmed.
  StatusOr<v1::JobInfo> JobVisibleTo(const AuthenticatedPeer& peer,
                                     const std::string& job_id);
  // Cancels a job held here (ours, or one a peer forwarded here).
  Status CancelJobHere(v1::JobInfo& job, const std::string& who);

  // federation.cc
  Status InitFederation();
  const PeerConfig* FindPeer(const std::string& broker_id) const;
  void PollPeerLinks();
  void TickFederation(int64_t now_ms);
  // The peers whose decline of the job has not expired yet.
  std::set<std::string> DeclinedNow(const std::string& job_id) const;
  // "; declined by P (why), tried again in N s", for a waiting job's
  // reason; "" if no peer declined it.
  std::string DeclineNote(const std::string& job_id) const;
  // A peer declined the job: remembered (and stored) with its back-off.
  void RecordDecline(const std::string& job_id, const std::string& peer,
                     const std::string& reason);
  // The job left the queue here (placed, accepted by a peer, ended).
  void ForgetDeclines(const std::string& job_id);
  // A pass when a decline has expired, so the job is routed again.
  void RetryExpiredDeclines(int64_t now_ms);
  Status LoadDeclines();
  void SendAdverts(int64_t now_ms);
  void OnPeerLinkUp(PeerLink& link);
  void OnPeerLinkDown(PeerLink& link);
  std::vector<PeerView> PeerViews() const;
  Status ForwardJob(v1::JobInfo& job, const std::string& peer);
  void HandlePeerReply(PeerLink& link, const v1::Envelope& envelope);
  void OnPeerHello(const Request& request);
  void OnCapacityAdvert(const Request& request);
  void OnForwardJob(const Request& request);
  void OnRemoteJobUpdate(const Request& request);
  void OnRemoteUsage(const Request& request);
  void OnCancelRemoteJob(const Request& request);
  void OnReconcileJobs(const Request& request);
  void OnGetFederationStatus(const Request& request);
  // The job if it is shared with peer: held here for it (held_here) or
  // forwarded by us to it. PERMISSION_DENIED otherwise.
  StatusOr<v1::JobInfo> PeerJob(const std::string& peer,
                                const std::string& job_id, bool held_here);
  void SendRemoteUpdate(const v1::JobInfo& job);
  void ApplyRemoteJob(const std::string& peer, const v1::JobInfo& remote,
                      uint64_t sequence);
  // The peer side: one posted usage entry of a job forwarded here, with
  // its provider's signed record, countersigned for the home broker.
  StatusOr<v1::RemoteUsage> CountersignUsage(const v1::JobInfo& job,
                                             const std::string& record,
                                             const std::string& signature,
                                             const v1::LedgerEntry& posted);
  void SendUsageHome(const v1::JobInfo& job, const std::string& record,
                     const std::string& signature,
                     const v1::LedgerEntry& posted);
  // Net settlement with peers (docs/ledger.md, "Clearing"): as debtor,
  // send a signed statement of what we owe each peer; as creditor, compare
  // it with our books and countersign or name the differences.
  void SendSettlements(int64_t now_ms);
  void OnPeerSettlement(const Request& request);
  void OnSettlementReply(const std::string& peer,
                         const v1::SettlementReply& reply);
  // Witnessing (docs/ledger.md, "Replication"): pull each peer's ledger
  // into a verified replica, cosign its checkpoints, keep fork evidence.
  void PullPeerLedgers(int64_t now_ms);
  void OnLedgerPull(const Request& request);
  void OnLedgerStream(const std::string& peer, const v1::LedgerStream& stream);
  void OnCosignCheckpoint(const Request& request);
  // The home side of a forward: what it holds from the consumer as the
  // peer's budget. FAILED_PRECONDITION if the consumer cannot cover it.
  StatusOr<int64_t> HoldForForward(v1::JobInfo& job, const std::string& peer);
  Status ApplyRemoteUsage(const std::string& peer,
                          const v1::RemoteUsage& usage);

  // bundle_service.cc: job inputs and results (docs/protocol.md "Bundles").
  // A request that waits for another party's answer (a peer broker, a
  // provider): who asked, and what to do with the answer.
  struct Relay {
    enum class Kind { kUpload, kInputPull, kResultFetch };
    Kind kind = Kind::kUpload;
    std::string routing_id;  // the asking connection
    uint64_t request_id = 0;
    v1::MessageType reply_type = v1::MESSAGE_TYPE_UNSPECIFIED;
    // A peer broker asked (its relay id is echoed in the reply body).
    bool origin_is_peer = false;
    uint64_t origin_relay_id = 0;
    int64_t deadline_ms = 0;
    std::string job_id;
    std::string digest;
    std::string consumer;
    // Upload: peers not answered yet, and the answer so far.
    std::set<std::string> waiting;
    v1::PutBundleChunkReply merged;
    Status error;
    // Result fetch at the broker of the provider: who must answer, and
    // the signed record to pass on with the first chunk.
    std::string provider;
    std::string record;
    std::string signature;
    std::string signing_key;
  };
  Status InitBundles();
  // bundle_dir, or "<database_path>.bundles".
  std::string BundleDir() const;
  // RESOURCE_EXHAUSTED for a bundle over max_bundle_bytes.
  Status CheckBundleSize(uint64_t total) const;
  StatusOr<bundles::BundleStore*> StagingFor(const std::string& owner);
  StatusOr<v1::PutBundleChunkReply> StoreChunk(const std::string& owner,
                                               const v1::PutBundleChunk& chunk);
  // FAILED_PRECONDITION unless every input of the spec was uploaded here by
  // consumer (or relayed for each region the job allows); RESOURCE_EXHAUSTED
  // past max_input_bytes_per_job.
  Status CheckJobInputs(const std::string& consumer, const v1::JobSpec& spec);
  // An answer on any connection, outside the request it answers (a
  // relay's); ReplyError is this with an empty body.
  void SendReply(const std::string& routing_id, uint64_t request_id,
                 v1::MessageType type, const google::protobuf::MessageLite& body,
                 const Status& status);
  void OnPutBundleChunk(const Request& request);
  void OnPeerPutBundleChunk(const Request& request);
  void OnGetBundleChunk(const Request& request);
  void OnPeerGetBundleChunk(const Request& request);
  void OnFetchResultChunk(const Request& request);
  void OnPeerFetchResultChunk(const Request& request);
  void OnResultChunk(const Request& request);
  Status StartResultFetch(Relay relay, const v1::JobInfo& job, uint64_t offset);
  void AnswerResultFetch(const Relay& relay,
                         const v1::FetchResultChunkReply& answer,
                         const Status& status);
  void OnBundleRelayReply(PeerLink& link, const v1::Envelope& envelope);
  void ExpireRelays(int64_t now_ms);
  // Hourly: bundles unused for bundle_retention_ms go (bundle_service.cc).
  void SweepBundles(int64_t now_ms);
  int64_t next_bundle_sweep_ms_ = 0;
  std::unique_ptr<bundles::BundleStore> bundles_;
  std::map<std::string, std::unique_ptr<bundles::BundleStore>> staging_;
  std::map<uint64_t, Relay> relays_;
  uint64_t next_relay_id_ = 0;
  // log_service.cc: live logs (docs/protocol.md, "Live logs").
  void OnLogBatch(const Request& request);
  void OnPeerLogBatch(const Request& request);
  void OnGetJobLogs(const Request& request);
  // The job ends here: its stderr tail goes into the job (kept durably with
  // it) and its buffers become the first to go when memory is short.
  void KeepStderrTail(v1::JobInfo& job);

  // scheduler.cc
  void Schedule();
  // JobEvents (the job manager's outbound side, over outbound_ and the
  // home broker's link).
  void JobChanged(const v1::JobInfo& job) override;
  bool ToProvider(const std::string& provider, v1::MessageType type,
                  const google::protobuf::MessageLite& body) override;
  void Notify(const v1::JobInfo& job);
  struct Watcher;
  // Drops the subscriptions of connections that are gone.
  void DropWatchers(const std::set<std::string>& routing_ids);
  void NotifyWatchers(std::vector<Watcher>& watchers, const std::string& job_id,
                      const v1::JobEvent& event, std::string* payload);
  Status LoadState();

  // placement_service.cc: reclaimable capacity, track records.
  void RecordProviderEvent(const std::string& provider, ProviderEvent event);
  Status LoadProviderStats();
  // ledger_service.cc: holds, checkpoints and statements.
  Status InitLedger();
  void StopExhaustedJob(v1::JobInfo& job);
  void LedgerTick(int64_t now_ms);
  void CheckpointOnShutdown();
  // Stores the queue's fair-share usage (every kFairShareSaveMs, and at stop).
  void SaveFairShare();
  static constexpr int64_t kFairShareSaveMs = 60'000;
  void OnGetStatement(const Request& request);

  // Declared first: released last, after the database is closed.
  std::unique_ptr<InstanceLock> lock_;
  BrokerOptions options_;
  Identity identity_;
  std::unique_ptr<Matcher> matcher_;
  std::unique_ptr<Store> store_;
  // What the ledger asks about enrolments and jobs (this file's tables).
  std::unique_ptr<Directory> directory_;
  Ledger ledger_;
  std::shared_ptr<Clock> clock_;

  // Declared before the sockets: destroyed after them.
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t router_;
  std::unique_ptr<RouterOutbound> outbound_;  // over router_
  std::string endpoint_;
  std::map<std::string, std::unique_ptr<PeerLink>> links_;  // by peer id

  ProviderRegistry registry_;
  RateLimiter limiter_;
  // Every job state change (declared after what it borrows).
  std::unique_ptr<JobManager> jobs_;
  std::map<std::string, ProviderStats> provider_stats_;
  // provider_service.cc: jobs whose provider was told to proceed in this
  // broker's run (job id -> the placement's attempt then), and jobs kept
  // although their provider re-registered without listing them: job id ->
  // when that first happened.
  std::map<std::string, uint32_t> proceeded_;
  std::map<std::string, int64_t> unlisted_since_;
  struct Watcher {
    std::string routing_id;
    std::string job_id;  // empty = all of the consumer's jobs
  };
  std::map<std::string, std::vector<Watcher>> watchers_;  // by consumer
  // Live logs of jobs running or recently ended (log_service.cc).
  LogBuffers logs_;
  int64_t last_log_expiry_ms_ = 0;
  // Federation state (in memory; jobs themselves are in the store).
  struct ReceivedAdverts {
    std::string region;
    uint64_t sequence = 0;
    int64_t received_ms = 0;
    std::map<std::string, v1::CapacityEntry> entries;  // by model
  };
  std::map<std::string, ReceivedAdverts> adverts_;  // by peer
  std::map<std::string, std::map<std::string, v1::CapacityEntry>> advert_sent_;
  std::set<std::string> advert_full_pending_;
  std::map<std::string, int64_t> advert_sent_ms_;       // by peer
  std::map<std::string, uint64_t> adverts_since_full_;  // by peer
  uint64_t advert_sequence_ = 0;
  int64_t last_advert_ms_ = 0;
  // Peers that declined a job, by job then peer (stored: forward_declines).
  // A decline expires at its retry time, which backs off with each decline
  // (decline_retry_ms x 2^(n-1), at most max_decline_retry_ms).
  std::map<std::string, std::map<std::string, ForwardDecline>> declined_by_;
  int64_t next_decline_retry_ms_ = INT64_MAX;
  std::map<std::string, uint64_t> remote_update_seen_;        // job -> seq
  // Forwards sent and not yet answered (they sit in a link's outbox).
  std::set<std::string> pending_forwards_;
  uint64_t update_counter_ = 0;
  // Settlement statements sent to each peer and not yet answered, and the
  // last one it countersigned (lines, net), so unchanged books are not
  // sent again.
  struct SettlementState {
    int64_t sent_ms = 0;
    v1::SignedSettlement pending;
    std::pair<int, int64_t> agreed{-1, 0};
  };
  std::map<std::string, SettlementState> settlements_;
  struct ReplicationState {
    int64_t pulled_ms = 0;
    uint64_t verified_size = 0;  // the peer's largest checkpoint verified
    uint64_t cosigned_size = 0;  // the largest one we cosigned
    // After a stream the replica refused: pull again from the verified
    // head (entries held past it come again, so a rewrite shows as such).
    bool resync = false;
  };
  std::map<std::string, ReplicationState> replication_;
  RoutingOptions routing_;

  std::unique_ptr<Checkpointer> checkpointer_;
  // A queued job waits for funds; an operator's top-up (another process)
  // shows up as a change of SQLite's data_version.
  int64_t data_version_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reload_{false};
  // "<role>/<name>" of revoked enrollments, and the data_version they were
  // read at.
  std::set<std::string> revoked_;
  int64_t revocation_version_ = -1;
  // Keys with a retirement time (read with the revocations), by CURVE key;
  // the retired ones whose connections were dropped; when the next one is
  // due.
  std::map<std::string, RetiringKey> retiring_keys_;
  std::set<std::string> retired_keys_;
  int64_t next_retirement_ms_ = std::numeric_limits<int64_t>::min();
  // Which connection uses which key (to drop them).
  ConnectionTable connections_;
  uint64_t send_sequence_ = 0;
  // When the periodic part of the tick last ran (OnTick).
  int64_t last_tick_ms_ = std::numeric_limits<int64_t>::min() / 2;
  int64_t last_fair_share_save_ms_ = 0;

  // Monitoring (core/metrics.h): recorded by the loop, rendered by the HTTP
  // endpoint's thread. The endpoint is declared last so that it stops before
  // anything its handlers read is destroyed.
  void SampleMetrics(int64_t now_ms);
  static constexpr int64_t kMetricsSampleMs = 1'000;
  static constexpr int64_t kMetricsStoreSampleMs = 10'000;  // SQL figures
  // The loop counts as stuck (/healthz 503) after this long without turning.
  static constexpr int64_t kLoopStuckMs = 10'000;
  static int64_t SteadyNowMs();
  std::unique_ptr<BrokerMetrics> metrics_;
  int64_t next_metrics_sample_ms_ = 0;
  int64_t next_metrics_store_sample_ms_ = 0;
  std::atomic<int64_t> loop_turned_ms_{0};  // steady clock
  std::atomic<bool> serving_{false};
  std::unique_ptr<HttpEndpoint> http_;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_BROKER_IMPL_H_
