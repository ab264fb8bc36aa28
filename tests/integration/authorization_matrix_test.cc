// The authorization matrix of docs/security.md, cell by cell: a real broker,
// real CURVE sockets, one connection per role (provider, consumer, pinned
// peer broker, admin, a revoked key on a connection opened before it was
// revoked) and two keys that never get a session (an unenrolled key, the
// revoked key on a new connection). Every message type is sent by every one
// of them and each answer is checked against Matrix(), which mirrors the
// table in docs/security.md row for row: a change to either shows up here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zmq.h>

#include <array>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "computenet/common/checkpoint.h"
#include "computenet/common/transport.h"
#include "computenet/common/usage_record.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/ledger/clearing_statement.h"
#include "computenet/ledger/ledger.h"
#include "computenet/ledger/remote_usage.h"
#include "computenet/v1/bundle.pb.h"
#include "computenet/v1/consumer.pb.h"
#include "computenet/v1/ledger.pb.h"
#include "computenet/v1/peer.pb.h"
#include "computenet/v1/provider.pb.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

// The wire status (computenet::Status is the library's).
using WireStatus = v1::Status;

// The columns of the matrix.
enum Column {
  kProvider,
  kConsumer,
  kPeer,
  kAdmin,
  kUnenrolled,   // a key the broker never enrolled
  kRevokedNew,   // a revoked key, connecting after its revocation
  kRevokedOpen,  // the same key on the connection it opened before
  kColumns
};
constexpr std::array<const char*, kColumns> kColumnNames = {
    "provider",
    "consumer",
    "peer",
    "admin",
    "unenrolled",
    "revoked (new connection)",
    "revoked (open connection)"};

// What one cell gets back.
struct Answer {
  enum Kind {
    kReply,      // an envelope of `type` with status `code`
    kSilent,     // nothing (a heartbeat that is only noted)
    kNoSession,  // the CURVE handshake is refused: nothing is ever sent
  };
  Kind kind = kReply;
  v1::MessageType type = v1::MESSAGE_TYPE_UNSPECIFIED;
  WireStatus::Code code = WireStatus::OK;

  bool operator==(const Answer&) const = default;
};

// The handler ran and answered with its typed reply (the request's type +
// 1), OK. Resolved against the request's type in Expected().
constexpr Answer kServed = {Answer::kReply, v1::MESSAGE_TYPE_UNSPECIFIED,
                            WireStatus::OK};
// The handler ran and refused with `code` in its typed reply.
constexpr Answer InReply(WireStatus::Code code) {
  return {Answer::kReply, v1::MESSAGE_TYPE_UNSPECIFIED, code};
}
// Refused before any handler: ERROR with `code`.
constexpr Answer Error(WireStatus::Code code) {
  return {Answer::kReply, v1::MESSAGE_TYPE_ERROR, code};
}
constexpr auto kPermissionDenied = WireStatus::PERMISSION_DENIED;
constexpr Answer kDenied = Error(kPermissionDenied);
constexpr Answer kUnserved = Error(WireStatus::UNIMPLEMENTED);
constexpr Answer kSilent = {Answer::kSilent};
constexpr Answer kEcho = {Answer::kReply, v1::MESSAGE_TYPE_HEARTBEAT,
                          WireStatus::OK};
constexpr Answer kNoSession = {Answer::kNoSession};

// A cell of the matrix for a request of `type`, with "its typed reply"
// made concrete.
Answer Expected(Answer cell, v1::MessageType type) {
  if (cell.kind == Answer::kReply &&
      cell.type == v1::MESSAGE_TYPE_UNSPECIFIED) {
    cell.type = static_cast<v1::MessageType>(type + 1);
  }
  return cell;
}

std::string Describe(const Answer& answer) {
  switch (answer.kind) {
    case Answer::kSilent:
      return "no answer";
    case Answer::kNoSession:
      return "no session";
    case Answer::kReply:
      break;
  }
  return v1::MessageType_Name(answer.type) + " " +
         WireStatus::Code_Name(answer.code);
}

// gtest prints an Answer as the matrix names it.
void PrintTo(const Answer& answer, std::ostream* out) {
  *out << Describe(answer);
}

struct Row {
  std::vector<int> types;
  std::array<Answer, kColumns> cells;
};

// docs/security.md §2, "Authorization matrix", row for row. Columns:
// provider, consumer, peer, admin, unenrolled, revoked (new connection),
// revoked (open connection). The served cells' answers come from the
// probes in BodyFor: the provider's job is placed on it, the consumer's
// job is its own, the peer's REMOTE_* concern a job id that does not
// exist, the admin's GET_STATEMENT names an account.
const std::vector<Row>& Matrix() {
  constexpr Answer kNo = kNoSession;
  static const std::vector<Row> kMatrix = {
      {{1}, {kSilent, kSilent, kEcho, kSilent, kNo, kNo, kNo}},
      // Provider requests.
      {{10}, {kServed, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      {{13}, {kServed, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      {{16}, {kServed, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      {{18}, {kServed, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      {{20}, {kServed, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      // Consumer (and admin) requests.
      {{30},
       {kDenied, kServed, kDenied, InReply(kPermissionDenied), kNo, kNo,
        kNo}},
      {{32}, {kDenied, kServed, kDenied, kServed, kNo, kNo, kNo}},
      {{34}, {kDenied, kServed, kDenied, kServed, kNo, kNo, kNo}},
      {{36}, {kDenied, kServed, kDenied, kServed, kNo, kNo, kNo}},
      {{38}, {kDenied, kServed, kDenied, kServed, kNo, kNo, kNo}},
      // Peer requests.
      {{50}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      {{52}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      {{54}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      {{56},
       {kDenied, kDenied, InReply(WireStatus::NOT_FOUND), kDenied, kNo, kNo,
        kNo}},
      {{58},
       {kDenied, kDenied, InReply(WireStatus::NOT_FOUND), kDenied, kNo, kNo,
        kNo}},
      {{60}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      {{62}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      {{64}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      {{66}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      {{68}, {kDenied, kDenied, kServed, kDenied, kNo, kNo, kNo}},
      // Admin and statement requests.
      {{70},
       {InReply(kPermissionDenied), InReply(kPermissionDenied),
        InReply(kPermissionDenied), kServed, kNo, kNo, kNo}},
      {{80},
       {kServed, kServed, InReply(kPermissionDenied), kServed, kNo, kNo,
        kNo}},
      // Bundles: inputs and results (docs/protocol.md §14). The consumer's
      // probes name no bundle or its running job (no result yet); the
      // provider's names its job but no input of it.
      {{90},
       {kDenied, InReply(WireStatus::INVALID_ARGUMENT), kDenied,
        InReply(kPermissionDenied), kNo, kNo, kNo}},
      {{92},
       {kDenied, InReply(WireStatus::FAILED_PRECONDITION), kDenied,
        InReply(WireStatus::FAILED_PRECONDITION), kNo, kNo, kNo}},
      {{100},
       {kDenied, kDenied, InReply(WireStatus::INVALID_ARGUMENT), kDenied, kNo,
        kNo, kNo}},
      {{102, 104},
       {kDenied, kDenied, InReply(WireStatus::NOT_FOUND), kDenied, kNo, kNo,
        kNo}},
      {{110},
       {InReply(kPermissionDenied), kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      {{113},
       {Error(WireStatus::NOT_FOUND), kDenied, kDenied, kDenied, kNo, kNo,
        kNo}},
      {{91, 93}, {kDenied, kUnserved, kDenied, kUnserved, kNo, kNo, kNo}},
      {{101, 103, 105}, {kDenied, kDenied, kUnserved, kDenied, kNo, kNo, kNo}},
      {{111, 112}, {kUnserved, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      // Live logs: an agent's batch for its job, a consumer's read of its
      // own job, a peer's batch for a job not shared with it.
      {{120}, {kServed, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      {{122}, {kDenied, kServed, kDenied, kServed, kNo, kNo, kNo}},
      {{124},
       {kDenied, kDenied, InReply(WireStatus::NOT_FOUND), kDenied, kNo, kNo,
        kNo}},
      // Types no client may send: replies and the broker's own messages.
      {{11, 12, 14, 15, 17, 19, 21, 121},
       {kUnserved, kDenied, kDenied, kDenied, kNo, kNo, kNo}},
      {{31, 33, 35, 37, 39, 40, 123},
       {kDenied, kUnserved, kDenied, kUnserved, kNo, kNo, kNo}},
      {{51, 53, 55, 57, 59, 61, 63, 65, 67, 69, 125},
       {kDenied, kDenied, kUnserved, kDenied, kNo, kNo, kNo}},
      {{0, 2, 71, 81, 99},
       {kUnserved, kUnserved, kUnserved, kUnserved, kNo, kNo, kNo}},
  };
  return kMatrix;
}

// A raw CURVE DEALER whose handshake is watched through a socket monitor,
// so that "no session" is observed (the broker's ZAP handler answered 400)
// rather than inferred from silence.
class MonitoredDealer {
 public:
  MonitoredDealer(zmq::context_t& context, const std::string& endpoint,
                  const std::string& server_key, const CurveKeyPair& keys,
                  const std::string& name)
      : socket_(context, zmq::socket_type::dealer),
        monitor_(context, zmq::socket_type::pair) {
    const std::string address = "inproc://monitor-" + name;
    EXPECT_EQ(zmq_socket_monitor(socket_.handle(), address.c_str(),
                                 ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL),
              0);
    monitor_.connect(address);
    socket_.set(zmq::sockopt::curve_serverkey, server_key);
    socket_.set(zmq::sockopt::curve_publickey, keys.public_z85);
    socket_.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::immediate, 1);  // as every SDK socket
    socket_.connect(endpoint);
  }

  // The first handshake outcome: the event and its value (for a refused
  // authentication, the ZAP status code).
  std::pair<int, int> FirstHandshake() {
    zmq::pollitem_t item{monitor_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::seconds(20));
    if ((item.revents & ZMQ_POLLIN) == 0) return {0, 0};
    zmq::message_t event, address;
    (void)monitor_.recv(event);
    (void)monitor_.recv(address);
    uint16_t id = 0;
    uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2,
                sizeof(value));
    return {id, static_cast<int>(value)};
  }

  // Whether an envelope could be handed to a connection at all (never,
  // without a completed handshake: ZMQ_IMMEDIATE queues only on one).
  bool CanSend(v1::MessageType type, const std::string& body) {
    const std::string payload = EncodeEnvelopeBytes(type, 1, 1, body);
    return socket_.send(zmq::buffer(payload), zmq::send_flags::dontwait)
        .has_value();
  }

 private:
  zmq::socket_t socket_;
  zmq::socket_t monitor_;
};

class AuthorizationMatrixTest : public ::testing::Test {
 protected:
  AuthorizationMatrixTest() : context_(1) {}

  static broker::BrokerOptions WithPeer(const Identity& peer,
                                        const std::string& endpoint_file) {
    broker::BrokerOptions options;
    // The test's provider sends only what the matrix asks of it, with gaps
    // that under a loaded sanitizer run can exceed the fixture's 300 ms
    // liveness (100 ms x 3); a provider declared lost mid-test would change
    // its cells' answers. Liveness is not what this test is about.
    options.heartbeat_liveness = 100;
    broker::PeerConfig config;
    config.broker_id = peer.name();
    config.region = "east";
    // Never written: the broker's own link to the peer stays down, so the
    // peer is heard only on the broker's ROUTER, as the matrix needs.
    config.endpoint_file = endpoint_file;
    config.curve_public = peer.curve().public_z85;
    config.ed25519_public = peer.signing_key().verifying_key().hex();
    options.peers.push_back(config);
    return options;
  }

  std::unique_ptr<DealerChannel> Connect(const Identity& identity) {
    DealerOptions options;
    options.endpoint = federation_.broker().endpoint();
    options.server_public_key =
        federation_.broker_identity().curve().public_z85;
    options.client_keys = identity.curve();
    options.send_timeout_ms = 5000;
    auto channel = DealerChannel::Connect(context_, options);
    EXPECT_TRUE(channel.ok()) << channel.status().ToString();
    return std::move(*channel);
  }

  // Sends one request and returns the answer to it: the envelope that
  // echoes its request id, or an ERROR with request id 0 (the broker's
  // answer to a frame it could not attribute). What else arrives meanwhile
  // (heartbeats, offers, cancels, job events) is not an answer.
  Answer Ask(DealerChannel& channel, v1::MessageType type,
             const std::string& body) {
    const uint64_t id = channel.NextRequestId();
    const Status sent = channel.SendSerialized(type, id, body);
    // A connection the broker dropped and whose reconnect it refuses at the
    // handshake: the socket monitor's verdict, nothing leaves.
    if (sent.code() == StatusCode::kUnauthenticated) return kNoSession;
    EXPECT_TRUE(sent.ok()) << sent.ToString();
    return AwaitAnswer(channel, id, nullptr);
  }

  Answer AwaitAnswer(DealerChannel& channel, uint64_t id,
                     std::vector<v1::Envelope>* before) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto received = channel.Receive(50);
      if (!received.ok() || !received->has_value()) continue;
      const v1::Envelope& envelope = **received;
      const bool unattributed = envelope.request_id() == 0 &&
                                envelope.type() == v1::MESSAGE_TYPE_ERROR;
      if (envelope.request_id() == id || (id != 0 && unattributed)) {
        last_ = envelope;
        return Answer{Answer::kReply, envelope.type(),
                      envelope.status().code()};
      }
      if (before != nullptr) before->push_back(envelope);
    }
    ADD_FAILURE() << "no answer to request " << id;
    return Answer{Answer::kReply, v1::MESSAGE_TYPE_UNSPECIFIED,
                  WireStatus::UNKNOWN};
  }

  // A heartbeat is never answered as a request: what it causes is seen by
  // what arrives before the answer to the request sent right after it.
  Answer Heartbeat(DealerChannel& channel, Column column) {
    v1::Heartbeat heartbeat;
    heartbeat.set_sent_at_ms(SystemClock::Shared()->NowMs());
    const Status sent = channel.Send(v1::MESSAGE_TYPE_HEARTBEAT, 0, heartbeat);
    if (sent.code() == StatusCode::kUnauthenticated) return kNoSession;
    EXPECT_TRUE(sent.ok()) << sent.ToString();
    const uint64_t probe = channel.NextRequestId();
    EXPECT_TRUE(
        channel.SendSerialized(v1::MESSAGE_TYPE_UNSPECIFIED, probe, "").ok());
    std::vector<v1::Envelope> before;
    Answer probed = AwaitAnswer(channel, probe, &before);
    for (const auto& envelope : before) {
      if (envelope.type() == v1::MESSAGE_TYPE_ERROR) {
        return Answer{Answer::kReply, envelope.type(),
                      envelope.status().code()};
      }
    }
    // AwaitAnswer takes an ERROR with request id 0 as the probe's answer:
    // that one is the heartbeat's (the probe's own, UNIMPLEMENTED or a
    // revoked key's PERMISSION_DENIED, follows it).
    if (probed.type == v1::MESSAGE_TYPE_ERROR &&
        probed.code != WireStatus::UNIMPLEMENTED) {
      return probed;
    }
    // The broker heartbeats registered providers by itself, so for them
    // only an ERROR would be an answer.
    if (column != kProvider) {
      for (const auto& envelope : before) {
        if (envelope.type() == v1::MESSAGE_TYPE_HEARTBEAT) return kEcho;
      }
    }
    return kSilent;
  }

  // The body each column sends for `type`: the same for every column but
  // GET_STATEMENT (an admin must name the account).
  std::string BodyFor(v1::MessageType type, Column column) {
    switch (type) {
      case v1::MESSAGE_TYPE_REGISTER_PROVIDER: {
        v1::RegisterProvider registration = SiteRegistration();
        registration.add_active_job_ids(job_id_);  // still has it
        return registration.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_PLACEMENT_RESPONSE: {
        v1::PlacementResponse response;
        response.set_job_id(job_id_);
        response.set_accepted(true);
        return response.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_JOB_STATUS_UPDATE: {
        v1::JobStatusUpdate update;
        update.set_job_id(job_id_);
        update.set_state(v1::JOB_STATE_RUNNING);
        update.set_timestamp_ms(SystemClock::Shared()->NowMs());
        return update.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_USAGE_REPORT: {
        v1::UsageRecord record;
        record.set_record_id(job_id_ + ":1");
        record.set_job_id(job_id_);
        record.set_provider("site-a");
        record.set_model("A800");
        record.set_cards(2);
        record.set_start_ms(10'000);
        record.set_end_ms(70'000);
        record.set_card_seconds(CardSecondsFor(2, 10'000, 70'000));
        auto report = SignUsageRecord(site_.signing_key(), record);
        EXPECT_TRUE(report.ok());
        return report->SerializeAsString();
      }
      case v1::MESSAGE_TYPE_UPDATE_OFFER:
        return v1::UpdateOffer().SerializeAsString();
      case v1::MESSAGE_TYPE_SUBMIT_JOB: {
        v1::SubmitJob submit;
        *submit.mutable_spec() = ShellJob("true", 2, {"A800"});
        return submit.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_GET_JOB: {
        v1::GetJob get;
        get.set_job_id(job_id_);
        return get.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_CANCEL_JOB: {
        v1::CancelJob cancel;
        cancel.set_job_id(job_id_);
        return cancel.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_LIST_JOBS:
        return v1::ListJobs().SerializeAsString();
      case v1::MESSAGE_TYPE_WATCH_JOBS:
        return v1::WatchJobs().SerializeAsString();
      case v1::MESSAGE_TYPE_LOG_BATCH: {
        v1::LogBatch batch;
        batch.set_job_id(job_id_);
        v1::LogChunk* chunk = batch.add_chunks();
        chunk->set_node("n1");
        chunk->set_stream(v1::LOG_STREAM_STDOUT);
        chunk->set_data("hello\n");
        return batch.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_GET_JOB_LOGS: {
        v1::GetJobLogs get;
        get.set_job_id(job_id_);
        return get.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_PEER_LOG_BATCH: {
        v1::LogBatch batch;  // a job this broker never sent it
        batch.set_job_id("test-999");
        v1::LogChunk* chunk = batch.add_chunks();
        chunk->set_node("n1");
        chunk->set_stream(v1::LOG_STREAM_STDOUT);
        chunk->set_data("hello\n");
        return batch.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_PEER_HELLO: {
        v1::PeerHello hello;
        hello.set_broker_id("east");
        hello.set_region("east");
        return hello.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_CAPACITY_ADVERT: {
        v1::CapacityAdvert advert;  // no entries: nothing to forward to
        advert.set_origin("east");
        advert.set_region("east");
        advert.set_sequence(1);
        return advert.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_FORWARD_JOB: {
        // One of the peer's own jobs, for cards no provider here has: it is
        // declined (accepted = false), and nothing is stored.
        v1::ForwardJob forward;
        forward.mutable_job()->set_job_id("east-1");
        forward.mutable_job()->set_consumer("erin");
        *forward.mutable_job()->mutable_spec() = ShellJob("true", 1, {"H800"});
        forward.add_path("east");
        forward.set_hop_limit(1);
        forward.set_budget(1'000'000);
        return forward.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE: {
        v1::RemoteJobUpdate update;  // a job this broker never sent it
        update.mutable_job()->set_job_id("test-999");
        update.set_update_sequence(1);
        return update.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_REMOTE_USAGE: {
        // Countersigned by the peer's pinned key, for a job not shared with
        // it.
        v1::UsageRecord record;
        record.set_record_id("test-999:1");
        record.set_job_id("test-999");
        record.set_provider("east-site");
        v1::RemoteUsage usage;
        usage.set_job_id("test-999");
        usage.set_record(record.SerializeAsString());
        usage.set_remote_broker("east");
        EXPECT_TRUE(ledger::SignRemoteUsage(east_.signing_key(), &usage).ok());
        return usage.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_CANCEL_REMOTE_JOB: {
        v1::CancelRemoteJob cancel;  // never arrived here: nothing to stop
        cancel.set_job_id("east-2");
        return cancel.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_RECONCILE_JOBS: {
        v1::ReconcileJobs reconcile;
        reconcile.add_job_ids("east-3");
        return reconcile.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_PEER_SETTLEMENT: {
        // The peer owes nothing, and says so under its pinned key.
        v1::SettlementStatement statement = ledger::MakeStatement(
            "east", "test", {}, SystemClock::Shared()->NowMs());
        v1::SignedSettlement signed_statement;
        signed_statement.set_statement(statement.SerializeAsString());
        auto signature = ledger::SignSettlement(east_.signing_key(),
                                                signed_statement.statement());
        EXPECT_TRUE(signature.ok());
        signed_statement.set_debtor_signature(*signature);
        return signed_statement.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_PEER_LEDGER_PULL: {
        v1::LedgerPull pull;
        pull.set_from_sequence(1);
        return pull.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_PEER_COSIGNATURE: {
        // The peer's cosignature of this broker's newest checkpoint.
        auto latest =
            ledger::LatestCheckpoint(federation_.OpenStore().database());
        EXPECT_TRUE(latest.ok() && latest->has_value());
        if (!latest.ok() || !latest->has_value()) return "";
        v1::Checkpoint checkpoint;
        EXPECT_TRUE(checkpoint.ParseFromString((*latest)->checkpoint()));
        auto cosignature =
            CosignCheckpoint(east_.signing_key(), "east", **latest);
        EXPECT_TRUE(cosignature.ok());
        v1::CosignCheckpoint cosign;
        cosign.set_tree_size(checkpoint.tree_size());
        *cosign.mutable_cosignature() = *cosignature;
        return cosign.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_GET_FEDERATION_STATUS:
        return v1::GetFederationStatus().SerializeAsString();
      case v1::MESSAGE_TYPE_GET_STATEMENT: {
        v1::GetStatement get;
        if (column == kAdmin) get.set_account("consumer:alice");
        return get.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_FETCH_RESULT_CHUNK: {
        v1::FetchResultChunk fetch;
        fetch.set_job_id(job_id_);
        return fetch.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_GET_BUNDLE_CHUNK: {
        v1::GetBundleChunk get;
        get.set_job_id(job_id_);
        get.set_digest(std::string(64, 'a'));
        return get.SerializeAsString();
      }
      case v1::MESSAGE_TYPE_RESULT_CHUNK: {
        v1::ResultChunk chunk;
        chunk.set_relay_id(12345);
        chunk.set_job_id(job_id_);
        return chunk.SerializeAsString();
      }
      default:
        return "";
    }
  }

  v1::RegisterProvider SiteRegistration() const {
    return MakeRegistration("site-a", {MakeNode("n1", "f", "A800", 2)},
                            {{"A800", 1000}});
  }

  zmq::context_t context_;
  TempDir scratch_;
  Identity east_ = MustGenerateIdentity("east");
  Federation federation_{WithPeer(east_, scratch_.File("east.endpoint"))};
  Identity site_ = federation_.Enroll(broker::Role::kProvider, "site-a");
  Identity alice_ = federation_.Enroll(broker::Role::kConsumer, "alice");
  Identity ops_ = federation_.Enroll(broker::Role::kAdmin, "ops");
  Identity gone_ = federation_.Enroll(broker::Role::kProvider, "gone-site");
  Identity mallory_ = MustGenerateIdentity("mallory");
  std::string job_id_;
  v1::Envelope last_;
};

TEST_F(AuthorizationMatrixTest,
       EveryRequestFromEveryRoleGetsTheDocumentedAnswer) {
  std::array<std::unique_ptr<DealerChannel>, kColumns> channels;
  channels[kProvider] = Connect(site_);
  channels[kConsumer] = Connect(alice_);
  channels[kPeer] = Connect(east_);
  channels[kAdmin] = Connect(ops_);
  channels[kRevokedOpen] = Connect(gone_);

  // The provider registers; the consumer's job is placed on it (2 cards,
  // all it has), so the provider's messages concern a job that is its own.
  ASSERT_EQ(Ask(*channels[kProvider], v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                SiteRegistration().SerializeAsString()),
            Expected(kServed, v1::MESSAGE_TYPE_REGISTER_PROVIDER))
      << last_.status().message();
  ASSERT_EQ(Ask(*channels[kConsumer], v1::MESSAGE_TYPE_SUBMIT_JOB,
                BodyFor(v1::MESSAGE_TYPE_SUBMIT_JOB, kConsumer)),
            Expected(kServed, v1::MESSAGE_TYPE_SUBMIT_JOB))
      << last_.status().message();
  job_id_ = DecodeBody<v1::SubmitJobReply>(last_)->job_id();
  ASSERT_TRUE(WaitUntil([&] {
    auto job = federation_.OpenStore().GetJob(job_id_);
    return job.ok() && job->state() == v1::JOB_STATE_PLACED &&
           job->provider() == "site-a";
  }));
  // A statement signs a checkpoint, which the peer's cosignature covers.
  ASSERT_EQ(Ask(*channels[kConsumer], v1::MESSAGE_TYPE_GET_STATEMENT, ""),
            Expected(kServed, v1::MESSAGE_TYPE_GET_STATEMENT));

  // gone-site is served, then revoked by the operator (another process on
  // the file) while its connection is open: the broker drops the connection
  // at its next tick, and the socket's automatic reconnect is refused at the
  // handshake (ZAP 400), so from then on nothing can be sent on it.
  v1::RegisterProvider gone = MakeRegistration(
      "gone-site", {MakeNode("g1", "f", "A800", 1)}, {{"A800", 1000}});
  ASSERT_EQ(Ask(*channels[kRevokedOpen], v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                gone.SerializeAsString()),
            Expected(kServed, v1::MESSAGE_TYPE_REGISTER_PROVIDER));
  ASSERT_TRUE(federation_.OpenStore()
                  .Revoke(broker::Role::kProvider, "gone-site")
                  .ok());
  ASSERT_TRUE(WaitUntil([&] {
    (void)channels[kRevokedOpen]->Receive(20);
    return channels[kRevokedOpen]->ConnectionError().code() ==
           StatusCode::kUnauthenticated;
  })) << channels[kRevokedOpen]->ConnectionError().ToString();
  EXPECT_THAT(channels[kRevokedOpen]->ConnectionError().message(),
              ::testing::HasSubstr("key refused by the broker"));

  // No session: the handshake of an unenrolled key, and of the revoked key
  // on a new connection, is refused by the ZAP handler (400), so nothing
  // can be sent on them at all.
  const std::string endpoint = federation_.broker().endpoint();
  const std::string server_key =
      federation_.broker_identity().curve().public_z85;
  MonitoredDealer unenrolled(context_, endpoint, server_key, mallory_.curve(),
                             "unenrolled");
  MonitoredDealer revoked(context_, endpoint, server_key, gone_.curve(),
                          "revoked");
  for (MonitoredDealer* dealer : {&unenrolled, &revoked}) {
    EXPECT_EQ(dealer->FirstHandshake(),
              std::make_pair(int{ZMQ_EVENT_HANDSHAKE_FAILED_AUTH}, 400));
  }
  // For contrast, an enrolled key's handshake succeeds.
  MonitoredDealer enrolled(context_, endpoint, server_key, alice_.curve(),
                           "enrolled");
  EXPECT_EQ(enrolled.FirstHandshake().first, ZMQ_EVENT_HANDSHAKE_SUCCEEDED);

  for (const Row& row : Matrix()) {
    for (int number : row.types) {
      const auto type = static_cast<v1::MessageType>(number);
      for (int column = 0; column < kColumns; ++column) {
        const Answer expected = Expected(row.cells[column], type);
        const std::string body = BodyFor(type, static_cast<Column>(column));
        Answer got;
        if (column == kUnenrolled || column == kRevokedNew) {
          MonitoredDealer& dealer =
              column == kUnenrolled ? unenrolled : revoked;
          got = dealer.CanSend(type, body) ? Answer{} : kNoSession;
        } else if (type == v1::MESSAGE_TYPE_HEARTBEAT) {
          got = Heartbeat(*channels[column], static_cast<Column>(column));
        } else {
          got = Ask(*channels[column], type, body);
        }
        EXPECT_EQ(got, expected)
            << v1::MessageType_Name(type) << " (" << static_cast<int>(type)
            << ") from " << kColumnNames[column] << ": expected "
            << Describe(expected) << ", got " << Describe(got) << " ("
            << last_.status().message() << ")";
      }
    }
  }

  // What the refusals left behind: nothing. The only providers are the two
  // enrolled ones, the only jobs the consumer's two (the peer's forward was
  // declined), the one usage record was posted once, and the ledger audits.
  auto& store = federation_.OpenStore();
  auto providers = store.ListProviders();
  ASSERT_TRUE(providers.ok());
  EXPECT_EQ(providers->size(), 2u);
  auto jobs = store.ListJobs("", {}, 100);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 2u);
  for (const auto& job : *jobs) EXPECT_EQ(job.consumer(), "alice");
  auto job = store.GetJob(job_id_);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_STATE_RUNNING);
  EXPECT_TRUE(job->cancel_requested());
  EXPECT_EQ(job->card_seconds(), 120u);
  auto audit = ledger::VerifyLedger(store.database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->usage_records, 1u);
}

}  // namespace
}  // namespace computenet::testing
