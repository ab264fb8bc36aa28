// Fuzzes every message body the broker decodes, through the path its
// handlers take before they touch state (broker/src/core/broker.cc
// Dispatch, broker/src/services/*.cc, broker/src/federation/federation.cc):
// the envelope is built and decoded as on the wire, the body is decoded as
// its type, and the handler's stateless checks run: the spec and
// registration rules, the catalog, usage and remote-usage signatures (signed
// here by the sender's key, which a hostile sender holds), settlement
// comparison, status codes from the wire, the truncations of echoed text.
//
// Input: the first byte picks the message type (kTypes below, modulo its
// size), the rest is the body.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "broker_inputs.h"
#include "computenet/common/job_state.h"
#include "computenet/common/safe_text.h"
#include "computenet/common/usage_record.h"
#include "computenet/ledger/clearing_statement.h"
#include "computenet/ledger/ledger.h"
#include "computenet/ledger/remote_usage.h"
#include "computenet/matching/accelerator_catalog.h"
#include "computenet/matching/job_queue.h"
#include "computenet/v1/ledger.pb.h"
#include "computenet/v1/peer.pb.h"
#include "federation/capacity_advert.h"
#include "federation/routing.h"
#include "fuzz_support.h"
#include "jobs/log_buffer.h"

namespace computenet::fuzz {
namespace {

// Every type a broker serves or decodes from a peer's reply, in a fixed
// order: the first byte of an input indexes it (seeds depend on it; append
// only).
constexpr v1::MessageType kTypes[] = {
    v1::MESSAGE_TYPE_HEARTBEAT,              // 0
    v1::MESSAGE_TYPE_REGISTER_PROVIDER,      // 1
    v1::MESSAGE_TYPE_PLACEMENT_RESPONSE,     // 2
    v1::MESSAGE_TYPE_JOB_STATUS_UPDATE,      // 3
    v1::MESSAGE_TYPE_USAGE_REPORT,           // 4
    v1::MESSAGE_TYPE_UPDATE_OFFER,           // 5
    v1::MESSAGE_TYPE_SUBMIT_JOB,             // 6
    v1::MESSAGE_TYPE_GET_JOB,                // 7
    v1::MESSAGE_TYPE_CANCEL_JOB,             // 8
    v1::MESSAGE_TYPE_LIST_JOBS,              // 9
    v1::MESSAGE_TYPE_WATCH_JOBS,             // 10
    v1::MESSAGE_TYPE_PEER_HELLO,             // 11
    v1::MESSAGE_TYPE_CAPACITY_ADVERT,        // 12
    v1::MESSAGE_TYPE_FORWARD_JOB,            // 13
    v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE,      // 14
    v1::MESSAGE_TYPE_REMOTE_USAGE,           // 15
    v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB,      // 16
    v1::MESSAGE_TYPE_RECONCILE_JOBS,         // 17
    v1::MESSAGE_TYPE_PEER_SETTLEMENT,        // 18
    v1::MESSAGE_TYPE_PEER_LEDGER_PULL,       // 19
    v1::MESSAGE_TYPE_PEER_COSIGNATURE,       // 20
    v1::MESSAGE_TYPE_GET_FEDERATION_STATUS,  // 21
    v1::MESSAGE_TYPE_GET_STATEMENT,          // 22
    v1::MESSAGE_TYPE_FORWARD_JOB_REPLY,      // 23
    v1::MESSAGE_TYPE_PEER_SETTLEMENT_REPLY,  // 24
    v1::MESSAGE_TYPE_RECONCILE_JOBS_REPLY,   // 25
    v1::MESSAGE_TYPE_CAPACITY_ADVERT_REPLY,  // 26
    v1::MESSAGE_TYPE_LOG_BATCH,              // 27
    v1::MESSAGE_TYPE_GET_JOB_LOGS,           // 28
    v1::MESSAGE_TYPE_PEER_LOG_BATCH,         // 29
};

template <typename T>
StatusOr<T> Decode(const v1::Envelope& envelope) {
  return DecodeBody<T>(envelope);
}

// OnRegisterProvider's checks, then the registry's index.
void RegisterProvider(const v1::RegisterProvider& registration) {
  if (!broker::ValidateRegistration(registration).ok()) return;
  if (!matching::AcceleratorCatalog::BuiltIn()
           ->CheckRegistration(registration)
           .ok()) {
    return;
  }
  (void)TruncateUtf8(registration.agent_instance(), 64);
  IndexAcceptedRegistration(registration);
}

// OnUpdateOffer: the changes applied to the sample site's registration,
// then the same rules as a registration.
void UpdateOffer(const v1::UpdateOffer& update) {
  v1::RegisterProvider registration = SampleRegistration();
  if (update.prices_size() > 0)
    *registration.mutable_prices() = update.prices();
  for (const auto& change : update.nodes()) {
    if (!v1::CapacityOffer_IsValid(change.offer())) return;
    auto node = std::find_if(
        registration.mutable_nodes()->begin(),
        registration.mutable_nodes()->end(),
        [&](const v1::Node& n) { return n.name() == change.node(); });
    if (node == registration.mutable_nodes()->end()) {
      (void)TruncateUtf8(change.node(), 64);
      return;
    }
    node->set_offer(change.offer());
  }
  RegisterProvider(registration);
}

// OnSubmitJob's checks before the store.
void SubmitJob(const v1::SubmitJob& submit) {
  if (!broker::ValidateJobSpec(submit.spec()).ok()) return;
  if (submit.idempotency_key().size() > 128) return;
  (void)matching::PriorityRank(submit.spec().priority());
  PlaceAcceptedSpec(submit.spec(), SampleCapacity());
}

// OnUsageReport's signature and record checks (with site-a's key).
void UsageReport(const v1::UsageReport& report) {
  const std::string key = ProviderKey().verifying_key().hex();
  (void)VerifyUsageRecord(key, report.record(), report.signature());
  auto signature =
      ProviderKey().Sign(DomainSeparated(kUsageRecordDomain, report.record()));
  if (!signature.ok()) __builtin_trap();
  auto record = VerifyUsageRecord(key, report.record(), *signature);
  if (record.ok()) (void)SafeText(record->job_id(), 64);
}

// OnRemoteUsage's evidence check, signed by the peer's key as a peer can.
void RemoteUsage(v1::RemoteUsage usage) {
  const std::string key = ProviderKey().verifying_key().hex();
  (void)ledger::VerifyRemoteUsage(key, usage);
  if (!ledger::SignRemoteUsage(ProviderKey(), &usage).ok()) __builtin_trap();
  (void)ledger::VerifyRemoteUsage(key, usage);
}

// OnPeerSettlement: the statement inside, its signature, the comparison
// with the creditor's own lines and the words for what differs.
void PeerSettlement(const v1::SignedSettlement& received) {
  v1::SettlementStatement statement;
  if (!statement.ParseFromString(received.statement())) return;
  const std::string key = ProviderKey().verifying_key().hex();
  (void)ledger::VerifySettlementSignature(key, received.statement(),
                                          received.debtor_signature());
  std::vector<v1::SettlementLine> ours(statement.lines().begin(),
                                       statement.lines().end());
  if (!ours.empty()) ours.pop_back();
  v1::SettlementReply reply = ledger::CompareSettlement(statement, ours);
  (void)ledger::DescribeDifferences(reply, statement.debtor(),
                                    statement.creditor());
}

void ForwardJob(const v1::ForwardJob& forward) {
  const v1::JobInfo& offered = forward.job();
  if (offered.job_id().rfind("hub-east-", 0) != 0) return;
  if (!broker::ValidateJobSpec(offered.spec()).ok()) return;
  if (!broker::RegionAllowed(offered.spec(), "north")) return;
  PlaceAcceptedSpec(offered.spec(), SampleCapacity());
}

// OnCapacityAdvert keeps the entries; the scheduler then asks each whether
// a job fits it and routes jobs over them (AdvertFits, Route).
void CapacityAdvert(const v1::CapacityAdvert& advert) {
  broker::PeerView peer{"hub-east", advert.region(), true,
                        {advert.entries().begin(), advert.entries().end()}};
  v1::JobInfo job;
  job.set_job_id("hub-north-9");
  job.set_consumer("alice");
  job.mutable_spec()->add_command("true");
  job.mutable_spec()->set_cards_per_node(8);
  job.mutable_spec()->set_nodes(2);
  job.mutable_spec()->set_max_duration_s(3600);
  for (const auto& entry : peer.entries) {
    (void)broker::AdvertFits(entry, job.spec());
  }
  broker::RoutingOptions options;
  options.broker_id = "hub-north";
  options.home_region = "north";
  (void)broker::Route(job, std::nullopt, {peer}, {}, options);
  job.mutable_spec()->set_nodes(1);
  // A region the spec rules accept (1..64 bytes), as a validated job has.
  const bool usable = !advert.region().empty() && advert.region().size() <= 64;
  job.mutable_spec()->add_allowed_regions(usable ? advert.region()
                                                 : std::string("east"));
  (void)broker::Route(job, std::nullopt, {peer}, {"hub-west"}, options);
}

void Handle(v1::MessageType type, const v1::Envelope& envelope) {
  switch (type) {
    case v1::MESSAGE_TYPE_HEARTBEAT:
      (void)Decode<v1::Heartbeat>(envelope);
      return;
    case v1::MESSAGE_TYPE_REGISTER_PROVIDER:
      if (auto body = Decode<v1::RegisterProvider>(envelope); body.ok()) {
        RegisterProvider(*body);
      }
      return;
    case v1::MESSAGE_TYPE_PLACEMENT_RESPONSE:
      if (auto body = Decode<v1::PlacementResponse>(envelope); body.ok()) {
        if (body->has_status()) (void)StatusFromProto(body->status());
        (void)TruncateUtf8(body->reason(), 256);
        (void)body->reason().rfind(StatusCodeName(StatusCode::kUnavailable), 0);
      }
      return;
    case v1::MESSAGE_TYPE_JOB_STATUS_UPDATE:
      if (auto body = Decode<v1::JobStatusUpdate>(envelope); body.ok()) {
        (void)IsTerminal(body->state());
        (void)JobStateName(body->state());
        (void)TruncateUtf8(body->message(), 512);
      }
      return;
    case v1::MESSAGE_TYPE_USAGE_REPORT:
      if (auto body = Decode<v1::UsageReport>(envelope); body.ok()) {
        UsageReport(*body);
      }
      return;
    case v1::MESSAGE_TYPE_UPDATE_OFFER:
      if (auto body = Decode<v1::UpdateOffer>(envelope); body.ok()) {
        UpdateOffer(*body);
      }
      return;
    case v1::MESSAGE_TYPE_SUBMIT_JOB:
      if (auto body = Decode<v1::SubmitJob>(envelope); body.ok()) {
        SubmitJob(*body);
      }
      return;
    case v1::MESSAGE_TYPE_GET_JOB:
      if (auto body = Decode<v1::GetJob>(envelope); body.ok()) {
        (void)SafeText(body->job_id(), 64);
      }
      return;
    case v1::MESSAGE_TYPE_CANCEL_JOB:
      (void)Decode<v1::CancelJob>(envelope);
      return;
    case v1::MESSAGE_TYPE_LIST_JOBS:
      if (auto body = Decode<v1::ListJobs>(envelope); body.ok()) {
        for (int state : body->states()) {
          (void)JobStateName(static_cast<v1::JobState>(state));
        }
      }
      return;
    case v1::MESSAGE_TYPE_WATCH_JOBS:
      (void)Decode<v1::WatchJobs>(envelope);
      return;
    case v1::MESSAGE_TYPE_PEER_HELLO:
      (void)Decode<v1::PeerHello>(envelope);
      return;
    case v1::MESSAGE_TYPE_CAPACITY_ADVERT:
      if (auto body = Decode<v1::CapacityAdvert>(envelope); body.ok()) {
        CapacityAdvert(*body);
      }
      return;
    case v1::MESSAGE_TYPE_FORWARD_JOB:
      if (auto body = Decode<v1::ForwardJob>(envelope); body.ok()) {
        ForwardJob(*body);
      }
      return;
    case v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE:
      if (auto body = Decode<v1::RemoteJobUpdate>(envelope); body.ok()) {
        (void)IsTerminal(body->job().state());
      }
      return;
    case v1::MESSAGE_TYPE_REMOTE_USAGE:
      if (auto body = Decode<v1::RemoteUsage>(envelope); body.ok()) {
        RemoteUsage(*body);
      }
      return;
    case v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB:
      (void)Decode<v1::CancelRemoteJob>(envelope);
      return;
    case v1::MESSAGE_TYPE_RECONCILE_JOBS:
      (void)Decode<v1::ReconcileJobs>(envelope);
      return;
    case v1::MESSAGE_TYPE_PEER_SETTLEMENT:
      if (auto body = Decode<v1::SignedSettlement>(envelope); body.ok()) {
        PeerSettlement(*body);
      }
      return;
    case v1::MESSAGE_TYPE_PEER_LEDGER_PULL:
      (void)Decode<v1::LedgerPull>(envelope);
      return;
    case v1::MESSAGE_TYPE_PEER_COSIGNATURE:
      (void)Decode<v1::CosignCheckpoint>(envelope);
      return;
    case v1::MESSAGE_TYPE_GET_FEDERATION_STATUS:
      (void)Decode<v1::GetFederationStatus>(envelope);
      return;
    case v1::MESSAGE_TYPE_GET_STATEMENT:
      if (auto body = Decode<v1::GetStatement>(envelope); body.ok()) {
        if (!body->account().empty())
          (void)ledger::AccountKindOf(body->account());
      }
      return;
    case v1::MESSAGE_TYPE_FORWARD_JOB_REPLY:
      if (auto body = Decode<v1::ForwardJobReply>(envelope); body.ok()) {
        (void)TruncateUtf8(body->reason(), 256);
      }
      return;
    case v1::MESSAGE_TYPE_PEER_SETTLEMENT_REPLY:
      if (auto body = Decode<v1::SettlementReply>(envelope); body.ok()) {
        (void)ledger::DescribeDifferences(*body, "hub-north", "hub-east");
      }
      return;
    case v1::MESSAGE_TYPE_RECONCILE_JOBS_REPLY:
      (void)Decode<v1::ReconcileJobsReply>(envelope);
      return;
    case v1::MESSAGE_TYPE_CAPACITY_ADVERT_REPLY:
      (void)Decode<v1::CapacityAdvertReply>(envelope);
      return;
    case v1::MESSAGE_TYPE_LOG_BATCH:
    case v1::MESSAGE_TYPE_PEER_LOG_BATCH:
      // OnLogBatch's checks, then the buffers (small, so trimming runs).
      if (auto body = Decode<v1::LogBatch>(envelope);
          body.ok() && broker::ValidateLogBatch(*body).ok()) {
        broker::LogBufferOptions options;
        options.per_stream_bytes = 64;
        options.total_bytes = 256;
        broker::LogBuffers logs(options);
        logs.Append(*body, 1);
        logs.Append(*body, 2);  // a resend
        v1::GetJobLogs read;
        read.set_job_id(body->job_id());
        read.set_tail_lines(3);
        (void)logs.Read(read);
        (void)logs.StderrTail(body->job_id());
      }
      return;
    case v1::MESSAGE_TYPE_GET_JOB_LOGS:
      if (auto body = Decode<v1::GetJobLogs>(envelope); body.ok()) {
        broker::LogBuffers logs;
        v1::LogBatch batch;
        batch.set_job_id(body->job_id());
        v1::LogChunk* chunk = batch.add_chunks();
        chunk->set_node(body->node().empty() ? "n1"
                                             : body->node().substr(0, 128));
        chunk->set_stream(v1::LOG_STREAM_STDOUT);
        chunk->set_data("a\nb\nc\n");
        logs.Append(batch, 1);
        (void)logs.Read(*body);
      }
      return;
    default:
      (void)MessageTypeName(type);
      return;
  }
}

}  // namespace
}  // namespace computenet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  if (size == 0) return 0;
  constexpr size_t kCount = sizeof(fuzz::kTypes) / sizeof(fuzz::kTypes[0]);
  const v1::MessageType type = fuzz::kTypes[data[0] % kCount];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto envelope = DecodeEnvelope(EncodeEnvelopeBytes(type, 7, 1, body));
  if (!envelope.ok()) __builtin_trap();  // our own frame must decode
  fuzz::Handle(type, *envelope);
  return 0;
}
