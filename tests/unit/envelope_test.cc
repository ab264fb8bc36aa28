// Envelope framing: encode, decode, version checks, body parsing.
#include "computenet/common/envelope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "computenet/v1/consumer.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet {
namespace {

using ::testing::HasSubstr;

TEST(EnvelopeTest, RoundTripRequest) {
  v1::GetJob body;
  body.set_job_id("b-17");
  const std::string bytes =
      EncodeEnvelope(v1::MESSAGE_TYPE_GET_JOB, /*request_id=*/42,
                     /*sequence=*/7, body);
  auto envelope = DecodeEnvelope(bytes);
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  EXPECT_EQ(envelope->protocol_version(), kProtocolVersion);
  EXPECT_EQ(envelope->type(), v1::MESSAGE_TYPE_GET_JOB);
  EXPECT_EQ(envelope->request_id(), 42u);
  EXPECT_EQ(envelope->sequence(), 7u);
  EXPECT_FALSE(envelope->has_status()) << "requests carry no status";
  auto decoded = DecodeBody<v1::GetJob>(*envelope);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->job_id(), "b-17");
}

TEST(EnvelopeTest, RoundTripReplyWithStatus) {
  v1::SubmitJobReply body;
  body.set_job_id("b-1");
  body.set_state(v1::JOB_STATE_QUEUED);
  body.set_duplicate(true);
  const Status reply_status = ResourceExhaustedError("slow down");
  const std::string bytes =
      EncodeEnvelope(v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY, 9, 3, body,
                     &reply_status);
  auto envelope = DecodeEnvelope(bytes);
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  ASSERT_TRUE(envelope->has_status());
  EXPECT_EQ(StatusFromProto(envelope->status()), reply_status);
  auto decoded = DecodeBody<v1::SubmitJobReply>(*envelope);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->job_id(), "b-1");
  EXPECT_EQ(decoded->state(), v1::JOB_STATE_QUEUED);
  EXPECT_TRUE(decoded->duplicate());
}

TEST(EnvelopeTest, OkReplyStatusIsPresent) {
  const Status ok = OkStatus();
  auto envelope = DecodeEnvelope(
      EncodeEnvelope(v1::MESSAGE_TYPE_GET_JOB_REPLY, 1, 1, v1::GetJobReply(),
                     &ok));
  ASSERT_TRUE(envelope.ok());
  EXPECT_TRUE(envelope->has_status());
  EXPECT_TRUE(StatusFromProto(envelope->status()).ok());
}

TEST(EnvelopeTest, EncodeBytesMatchesEncode) {
  v1::Heartbeat heartbeat;
  heartbeat.set_sent_at_ms(123456);
  const std::string body = heartbeat.SerializeAsString();
  auto a = DecodeEnvelope(
      EncodeEnvelope(v1::MESSAGE_TYPE_HEARTBEAT, 0, 5, heartbeat));
  auto b = DecodeEnvelope(
      EncodeEnvelopeBytes(v1::MESSAGE_TYPE_HEARTBEAT, 0, 5, body));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->body(), body);
  EXPECT_EQ(b->body(), body);
  auto decoded = DecodeBody<v1::Heartbeat>(*b);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->sent_at_ms(), 123456);
}

TEST(EnvelopeTest, GarbageBytesAreInvalidArgument) {
  // 0xff is an invalid tag (field 31, wire type 7).
  auto envelope = DecodeEnvelope(std::string("\xff\xff\xff\xff", 4));
  EXPECT_EQ(envelope.status().code(), StatusCode::kInvalidArgument);
  // A length-delimited body field that claims more bytes than follow.
  auto truncated = DecodeEnvelope(std::string("\x08\x01\x32\x7f" "abc", 7));
  EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidArgument);
}

TEST(EnvelopeTest, TruncatedFrameIsRejected) {
  v1::GetJob body;
  body.set_job_id(std::string(100, 'j'));
  const std::string bytes =
      EncodeEnvelope(v1::MESSAGE_TYPE_GET_JOB, 1, 1, body);
  auto envelope = DecodeEnvelope(bytes.substr(0, bytes.size() - 10));
  EXPECT_EQ(envelope.status().code(), StatusCode::kInvalidArgument);
}

TEST(EnvelopeTest, EmptyFrameHasNoVersion) {
  // An empty frame parses as an Envelope with every field zero: version 0.
  auto envelope = DecodeEnvelope("");
  EXPECT_EQ(envelope.status().code(), StatusCode::kFailedPrecondition);
}

TEST(EnvelopeTest, WrongProtocolVersionIsFailedPrecondition) {
  v1::Envelope envelope;
  envelope.set_protocol_version(kProtocolVersion + 1);
  envelope.set_type(v1::MESSAGE_TYPE_HEARTBEAT);
  auto decoded = DecodeEnvelope(envelope.SerializeAsString());
  EXPECT_EQ(decoded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr(std::to_string(kProtocolVersion + 1)));

  envelope.set_protocol_version(0);
  EXPECT_EQ(DecodeEnvelope(envelope.SerializeAsString()).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(EnvelopeTest, DecodeBodyRejectsGarbageBody) {
  const std::string bytes = EncodeEnvelopeBytes(
      v1::MESSAGE_TYPE_SUBMIT_JOB, 1, 1, std::string("\xff\xff\xff", 3));
  auto envelope = DecodeEnvelope(bytes);
  ASSERT_TRUE(envelope.ok()) << "the frame itself is well formed";
  auto body = DecodeBody<v1::SubmitJob>(*envelope);
  EXPECT_EQ(body.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(body.status().message(), HasSubstr("computenet.v1.SubmitJob"));
}

TEST(EnvelopeTest, DecodeBodyRejectsTruncatedBodyOfAnotherType) {
  // A SubmitJob body cut in the middle of its spec, read as the type the
  // envelope names: INVALID_ARGUMENT, not a half-filled message.
  v1::SubmitJob submit;
  submit.mutable_spec()->add_command("/bin/true");
  submit.set_idempotency_key(std::string(50, 'k'));
  const std::string full = submit.SerializeAsString();
  auto envelope = DecodeEnvelope(EncodeEnvelopeBytes(
      v1::MESSAGE_TYPE_SUBMIT_JOB, 1, 1, full.substr(0, full.size() - 5)));
  ASSERT_TRUE(envelope.ok());
  EXPECT_EQ(DecodeBody<v1::SubmitJob>(*envelope).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBody<v1::UsageReport>(*envelope).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EnvelopeTest, MessageTypeNameStripsPrefix) {
  EXPECT_EQ(MessageTypeName(v1::MESSAGE_TYPE_SUBMIT_JOB), "SUBMIT_JOB");
  EXPECT_EQ(MessageTypeName(v1::MESSAGE_TYPE_HEARTBEAT), "HEARTBEAT");
  EXPECT_EQ(MessageTypeName(v1::MESSAGE_TYPE_USAGE_REPORT_REPLY),
            "USAGE_REPORT_REPLY");
  EXPECT_EQ(MessageTypeName(v1::MESSAGE_TYPE_UNSPECIFIED), "UNSPECIFIED");
}

TEST(EnvelopeTest, MessageTypeNameOfUnknownIsNumber) {
  EXPECT_EQ(MessageTypeName(999), "type 999");
  EXPECT_EQ(MessageTypeName(3), "type 3");  // a gap in the enum
  EXPECT_EQ(MessageTypeName(-1), "type -1");
}

}  // namespace
}  // namespace computenet
