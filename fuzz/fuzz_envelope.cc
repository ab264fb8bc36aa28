// Fuzzes the envelope every frame travels in (common/envelope.h): decoding,
// the status a reply carries, message type names, and the escaping and
// truncation every echoed string gets (common/safe_text.h). Invariants on
// what was accepted: a decoded envelope encodes and decodes again, and the
// escaped and truncated texts stay within their bounds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "computenet/common/envelope.h"
#include "computenet/common/safe_text.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto envelope = DecodeEnvelope(bytes);
  // Whatever came in, its text is fit for a log line and bounded.
  const std::string safe = SafeText(bytes, 64);
  if (safe.find('\n') != std::string::npos) __builtin_trap();
  const std::string cut = TruncateUtf8(std::string(bytes), 100);
  if (cut.size() > 100) __builtin_trap();
  if (!envelope.ok()) return 0;
  (void)MessageTypeName(envelope->type());
  Status status =
      envelope->has_status() ? StatusFromProto(envelope->status()) : OkStatus();
  v1::Status wire = StatusToProto(status);
  // A reply's status message is bounded (plus the "...[+N bytes]" marker).
  if (wire.message().size() > kMaxStatusMessageBytes + 32) __builtin_trap();
  std::string again = EncodeEnvelopeBytes(
      envelope->type(), envelope->request_id(), envelope->sequence(),
      envelope->body(), envelope->has_status() ? &status : nullptr);
  auto redecoded = DecodeEnvelope(again);
  if (!redecoded.ok() || redecoded->body() != envelope->body() ||
      redecoded->request_id() != envelope->request_id()) {
    __builtin_trap();
  }
  return 0;
}
