// Envelope framing: building and checking the computenet.v1.Envelope that
// every message travels in, and mapping Status to and from its wire form.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_COMMON_ENVELOPE_H_
#define COMPUTENET_COMMON_ENVELOPE_H_

#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "computenet/common/status.h"
#include "computenet/v1/envelope.pb.h"

namespace computenet {

inline constexpr uint32_t kProtocolVersion = 1;
// Largest frame any ComputeNet socket accepts (ZMQ_MAXMSGSIZE); a peer that
// sends more is disconnected by libzmq before the bytes reach a handler.
inline constexpr int64_t kMaxMessageBytes = 1 << 20;

v1::Status StatusToProto(const Status& status);
Status StatusFromProto(const v1::Status& status);

// Serializes an envelope around body. status is set only on replies.
std::string EncodeEnvelope(v1::MessageType type, uint64_t request_id,
                           uint64_t sequence,
                           const google::protobuf::MessageLite& body,
                           const Status* reply_status = nullptr);

// Like EncodeEnvelope, with the body already serialized.
std::string EncodeEnvelopeBytes(v1::MessageType type, uint64_t request_id,
                                uint64_t sequence, const std::string& body,
                                const Status* reply_status = nullptr);

// Parses and checks an envelope: INVALID_ARGUMENT if the bytes are not one,
// FAILED_PRECONDITION if its protocol version is not ours.
StatusOr<v1::Envelope> DecodeEnvelope(std::string_view bytes);

// Parses envelope.body as T; INVALID_ARGUMENT if it does not parse.
template <typename T>
StatusOr<T> DecodeBody(const v1::Envelope& envelope) {
  T body;
  if (!body.ParseFromString(envelope.body())) {
    return InvalidArgumentError("body does not parse as " +
                                std::string(body.GetTypeName()));
  }
  return body;
}

// The longest prefix of text that is at most max_bytes long and does not
// end inside a UTF-8 sequence (protobuf strings must stay valid UTF-8).
std::string TruncateUtf8(const std::string& text, size_t max_bytes);

// "SUBMIT_JOB" for MESSAGE_TYPE_SUBMIT_JOB, or the number if unknown.
std::string MessageTypeName(int type);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_ENVELOPE_H_
