#include "computenet/common/envelope.h"

#include "computenet/common/safe_text.h"

namespace computenet {

v1::Status StatusToProto(const Status& status) {
  v1::Status out;
  out.set_code(static_cast<v1::Status::Code>(status.code()));
  // Bounded and escaped: a message may quote what the caller sent (a job
  // id, an env key), and a reply must never outgrow the frame limit or
  // carry control characters to a terminal.
  out.set_message(SafeText(status.message(), kMaxStatusMessageBytes));
  return out;
}

Status StatusFromProto(const v1::Status& status) {
  int code = status.code();
  if (code < 0 || code > static_cast<int>(StatusCode::kUnauthenticated)) {
    return UnknownError("unknown status code " + std::to_string(code) + ": " +
                        status.message());
  }
  return Status(static_cast<StatusCode>(code), status.message());
}

std::string EncodeEnvelope(v1::MessageType type, uint64_t request_id,
                           uint64_t sequence,
                           const google::protobuf::MessageLite& body,
                           const Status* reply_status) {
  return EncodeEnvelopeBytes(type, request_id, sequence,
                             body.SerializeAsString(), reply_status);
}

std::string EncodeEnvelopeBytes(v1::MessageType type, uint64_t request_id,
                                uint64_t sequence, const std::string& body,
                                const Status* reply_status) {
  v1::Envelope envelope;
  envelope.set_protocol_version(kProtocolVersion);
  envelope.set_type(type);
  envelope.set_request_id(request_id);
  envelope.set_sequence(sequence);
  if (reply_status != nullptr) {
    *envelope.mutable_status() = StatusToProto(*reply_status);
  }
  envelope.set_body(body);
  return envelope.SerializeAsString();
}

StatusOr<v1::Envelope> DecodeEnvelope(std::string_view bytes) {
  v1::Envelope envelope;
  if (!envelope.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("frame is not a computenet.v1.Envelope");
  }
  if (envelope.protocol_version() != kProtocolVersion) {
    return FailedPreconditionError(
        "protocol version " + std::to_string(envelope.protocol_version()) +
        " not supported; this broker speaks " +
        std::to_string(kProtocolVersion));
  }
  return envelope;
}

std::string TruncateUtf8(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  // Step back over continuation bytes (10xxxxxx) to a sequence start.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return text.substr(0, end);
}

std::string MessageTypeName(int type) {
  if (!v1::MessageType_IsValid(type)) return "type " + std::to_string(type);
  std::string name = v1::MessageType_Name(static_cast<v1::MessageType>(type));
  constexpr std::string_view kPrefix = "MESSAGE_TYPE_";
  if (name.rfind(kPrefix, 0) == 0) name.erase(0, kPrefix.size());
  return name;
}

}  // namespace computenet
