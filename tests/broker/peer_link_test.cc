// PeerLink: reliable requests leave in the order they were made, also across
// a lost and redialed connection. Over a real CURVE DEALER to a ROUTER that
// plays the peer broker, with a fake clock for liveness.
//
// The chaos test (tests/chaos) found the reordering this guards: a remote
// broker posted a forwarded job's usage while its link home was down (kept
// in the outbox), the link came back, and the job's end, sent right after
// the link-up, overtook the usage. Home released the job's hold at its end
// and refused the usage (NOT_FOUND: no open hold), so the consumer was
// never charged what the peer billed home's clearing account.
#include "federation/peer_link.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "computenet/common/envelope.h"
#include "computenet/common/transport.h"
#include "computenet/v1/peer.pb.h"

namespace computenet::broker {
namespace {

class PeerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = CurveKeyPair::Generate();
    auto client = CurveKeyPair::Generate();
    ASSERT_TRUE(server.ok() && client.ok());
    server_keys_ = *server;
    client_keys_ = *client;
    // No ZAP handler in this context: libzmq admits every client key.
    auto router = BindCurveRouter(context_, server_keys_, "tcp://127.0.0.1:0",
                                  &endpoint_);
    ASSERT_TRUE(router.ok()) << router.status().ToString();
    router_ = std::make_unique<zmq::socket_t>(std::move(*router));
    PeerConfig config;
    config.broker_id = "east";
    config.region = "east";
    config.endpoint = endpoint_;
    config.curve_public = server_keys_.public_z85;
    link_ = std::make_unique<PeerLink>(context_, config, client_keys_, "north",
                                       "north", clock_, kHeartbeatMs, 3);
  }

  // Plays the peer until the link is up: answers every hello. Unless told
  // not to, also takes the tick that reports the link up.
  void BringUp(bool take_up_tick = true) {
    std::string routing_id;
    for (int i = 0; i < 500 && !link_->up(); ++i) {
      link_->Tick();
      link_->Drain();
      auto frame = ReceiveRouted(*router_);
      if (frame.ok() && frame->has_value()) {
        auto envelope = DecodeEnvelope((*frame)->payload);
        if (envelope.ok() && envelope->type() == v1::MESSAGE_TYPE_PEER_HELLO) {
          v1::PeerHelloReply reply;
          const Status ok = OkStatus();
          routing_id = (*frame)->routing_id;
          EXPECT_TRUE(
              SendRouted(*router_, routing_id,
                         EncodeEnvelope(v1::MESSAGE_TYPE_PEER_HELLO_REPLY,
                                        envelope->request_id(), 1, reply, &ok))
                  .ok());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      link_->Drain();
    }
    EXPECT_TRUE(link_->up());
    if (take_up_tick) {
      EXPECT_EQ(link_->Tick(), PeerLink::Event::kUp);
    }
  }

  // The request types the peer receives within a while, in order
  // (heartbeats and hellos left out).
  std::vector<v1::MessageType> Received() {
    std::vector<v1::MessageType> types;
    for (int i = 0; i < 100; ++i) {
      link_->Tick();
      auto frame = ReceiveRouted(*router_);
      if (frame.ok() && frame->has_value()) {
        auto envelope = DecodeEnvelope((*frame)->payload);
        if (envelope.ok() && envelope->type() != v1::MESSAGE_TYPE_HEARTBEAT &&
            envelope->type() != v1::MESSAGE_TYPE_PEER_HELLO) {
          types.push_back(envelope->type());
        }
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return types;
  }

  static constexpr int kHeartbeatMs = 100;
  zmq::context_t context_{1};
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  CurveKeyPair server_keys_, client_keys_;
  std::string endpoint_;
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<PeerLink> link_;
};

TEST_F(PeerLinkTest, RequestsKeptWhileTheLinkWasDownLeaveBeforeNewerOnes) {
  BringUp();
  // The peer goes silent: after `liveness` intervals the link is down.
  clock_->AdvanceMs(kHeartbeatMs * 3 + 1);
  EXPECT_EQ(link_->Tick(), PeerLink::Event::kDown);
  EXPECT_FALSE(link_->up());

  // Made while the link is down: kept for the next connection.
  v1::RemoteUsage usage;
  usage.set_job_id("north-1");
  EXPECT_EQ(link_->Send(v1::MESSAGE_TYPE_REMOTE_USAGE, usage, true), 0u);

  // Redialed after the backoff; the peer answers the hello.
  clock_->AdvanceMs(1000);
  BringUp(/*take_up_tick=*/false);
  // The broker's link-up handler runs, and what it (or anything right after
  // it) sends must come after what waited for the link.
  ASSERT_EQ(link_->Tick(), PeerLink::Event::kUp);
  v1::RemoteJobUpdate update;
  update.mutable_job()->set_job_id("north-1");
  link_->Send(v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE, update, true);

  EXPECT_EQ(Received(),
            (std::vector<v1::MessageType>{v1::MESSAGE_TYPE_REMOTE_USAGE,
                                          v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE}));
}

// The same when the newer request is sent between the hello reply and the
// tick that reports the link up (Send sees the link up first).
TEST_F(PeerLinkTest, ANewerRequestSentBeforeTheUpTickWaitsForOlderOnes) {
  BringUp();
  clock_->AdvanceMs(kHeartbeatMs * 3 + 1);
  EXPECT_EQ(link_->Tick(), PeerLink::Event::kDown);
  v1::RemoteUsage first, second;
  first.set_job_id("north-1");
  second.set_job_id("north-2");
  link_->Send(v1::MESSAGE_TYPE_REMOTE_USAGE, first, true);
  link_->Send(v1::MESSAGE_TYPE_REMOTE_USAGE, second, true);
  clock_->AdvanceMs(1000);
  BringUp(/*take_up_tick=*/false);
  v1::RemoteJobUpdate update;
  link_->Send(v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE, update, true);
  EXPECT_EQ(Received(),
            (std::vector<v1::MessageType>{v1::MESSAGE_TYPE_REMOTE_USAGE,
                                          v1::MESSAGE_TYPE_REMOTE_USAGE,
                                          v1::MESSAGE_TYPE_REMOTE_JOB_UPDATE}));
}

}  // namespace
}  // namespace computenet::broker
