// RouterOutbound: group commit's outbound side. Held messages leave only on
// Release, in order; a failed batch answers each held reply with the
// retryable error and drops the rest. Over a real inproc ROUTER/DEALER pair.
#include "core/outbound.h"

#include <gtest/gtest.h>

#include "computenet/common/envelope.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::broker {
namespace {

class OutboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.bind("inproc://outbound-test");
    dealer_.set(zmq::sockopt::routing_id, std::string("client"));
    dealer_.connect("inproc://outbound-test");
    // The ROUTER learns the dealer's id from its first message.
    dealer_.send(zmq::str_buffer("hello"), zmq::send_flags::none);
    zmq::message_t id, body;
    ASSERT_TRUE(router_.recv(id));
    ASSERT_TRUE(router_.recv(body));
  }

  // The next message at the dealer, or "" if none within 100 ms.
  std::string Next() {
    zmq::pollitem_t item{dealer_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    if (!(item.revents & ZMQ_POLLIN)) return "";
    zmq::message_t message;
    if (!dealer_.recv(message)) return "";
    return message.to_string();
  }

  zmq::context_t context_{1};
  zmq::socket_t router_{context_, zmq::socket_type::router};
  zmq::socket_t dealer_{context_, zmq::socket_type::dealer};
  RouterOutbound outbound_{router_, [](const ReplyTag& tag, const Status& s) {
                             v1::Heartbeat empty;
                             return EncodeEnvelope(tag.type, tag.request_id, 0,
                                                   empty, &s);
                           }};
};

TEST_F(OutboundTest, SendsAtOnceWhenNotHeld) {
  outbound_.Send("client", "now");
  EXPECT_EQ(Next(), "now");
}

TEST_F(OutboundTest, HeldMessagesLeaveOnlyOnReleaseInOrder) {
  outbound_.Hold();
  outbound_.Send("client", "first", {7, v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY});
  outbound_.Send("client", "second");
  EXPECT_EQ(Next(), "");  // nothing before the commit
  EXPECT_EQ(outbound_.held(), 2u);
  EXPECT_TRUE(outbound_.Release().empty());
  EXPECT_EQ(Next(), "first");
  EXPECT_EQ(Next(), "second");
  EXPECT_FALSE(outbound_.holding());
}

TEST_F(OutboundTest, ReleaseNamesConnectionsThatAreGone) {
  outbound_.Hold();
  outbound_.Send("nobody", "lost");
  outbound_.Send("client", "delivered");
  EXPECT_EQ(outbound_.Release(), std::set<std::string>{"nobody"});
  EXPECT_EQ(Next(), "delivered");
}

TEST_F(OutboundTest, FailedBatchAnswersRepliesWithTheRetryableError) {
  outbound_.Hold();
  outbound_.Send("client", "accepted!", {7, v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY});
  outbound_.Send("client", "job event");  // not a reply: dropped
  outbound_.Fail(UnavailableError("batch commit failed; retry"));
  const std::string got = Next();
  auto envelope = DecodeEnvelope(got);
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  EXPECT_EQ(envelope->request_id(), 7u);
  EXPECT_EQ(envelope->type(), v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY);
  EXPECT_EQ(envelope->status().code(),
            static_cast<int>(StatusCode::kUnavailable));
  EXPECT_EQ(Next(), "");  // the event never left
}

}  // namespace
}  // namespace computenet::broker
