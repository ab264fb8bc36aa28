#include "core/imports.h"
#include "core/zap_handler.h"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

namespace computenet::broker {

StatusOr<std::unique_ptr<ZapHandler>> ZapHandler::Bind(
    zmq::context_t& ctx, Store& store, std::shared_ptr<Clock> clock) {
  try {
    zmq::socket_t socket(ctx, zmq::socket_type::rep);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind("inproc://zeromq.zap.01");
    return std::unique_ptr<ZapHandler>(
        new ZapHandler(std::move(socket), store, std::move(clock)));
  } catch (const zmq::error_t& error) {
    return UnavailableError(std::string("bind ZAP handler: ") + error.what());
  }
}

void ZapHandler::HandlePending() {
  while (true) {
    std::vector<zmq::message_t> request;
    try {
      auto received =
          zmq::recv_multipart(socket_, std::back_inserter(request),
                              zmq::recv_flags::dontwait);
      if (!received) return;
    } catch (const zmq::error_t& error) {
      spdlog::error("ZAP receive failed: {}", error.what());
      return;
    }
    HandleOne(request);
  }
}

void ZapHandler::HandleOne(std::vector<zmq::message_t>& request) {
  // RFC 27 request: version, request id, domain, address, routing id,
  // mechanism, credentials...
  std::string request_id = request.size() > 1 ? request[1].to_string() : "";
  std::string address = request.size() > 3 ? request[3].to_string() : "?";
  auto reply = [&](const char* code, const std::string& text,
                   const std::string& user_id,
                   const std::string& metadata = std::string()) {
    std::array<zmq::const_buffer, 6> frames = {
        zmq::str_buffer("1.0"), zmq::buffer(request_id), zmq::buffer(code, 3),
        zmq::buffer(text),      zmq::buffer(user_id),    zmq::buffer(metadata)};
    try {
      zmq::send_multipart(socket_, frames);
    } catch (const zmq::error_t& error) {
      spdlog::error("ZAP reply failed: {}", error.what());
    }
  };

  if (request.size() < 7 || request[0].to_string_view() != "1.0" ||
      request[5].to_string_view() != "CURVE" || request[6].size() != 32) {
    ++refused_;
    spdlog::warn("ZAP: refused malformed or non-CURVE request from {}",
                 address);
    reply("400", "CURVE required", "");
    return;
  }
  char z85[41];
  zmq_z85_encode(z85, static_cast<const uint8_t*>(request[6].data()), 32);
  auto enrollment = store_.FindEnrollmentByKey(z85);
  if (!enrollment.ok()) {
    ++refused_;
    spdlog::error("ZAP: enrollment lookup failed: {}",
                  enrollment.status().ToString());
    reply("500", "enrollment lookup failed", "");
    return;
  }
  const char* refusal = nullptr;
  if (!enrollment->has_value()) {
    refusal = "unenrolled";
  } else if ((*enrollment)->revoked) {
    refusal = "revoked";
  } else if ((*enrollment)->RetiredAt(clock_->NowMs())) {
    refusal = "retired (rotated)";
  }
  if (refusal != nullptr) {
    ++refused_;
    spdlog::warn("ZAP: refused {} key {} from {}", refusal, z85, address);
    reply("400", "key not enrolled", "");
    return;
  }
  ++admitted_;
  const Enrollment& who = **enrollment;
  std::string user_id = std::string(RoleName(who.role)) + "/" + who.name;
  spdlog::debug("ZAP: admitted {} from {}", user_id, address);
  // ZMTP property encoding (RFC 23): name length (1 byte), name, value
  // length (4 bytes, network order), value.
  std::string metadata;
  const std::string_view name = kCurveKeyProperty;
  metadata.push_back(static_cast<char>(name.size()));
  metadata.append(name);
  const uint32_t length = 40;
  for (int shift = 24; shift >= 0; shift -= 8) {
    metadata.push_back(static_cast<char>((length >> shift) & 0xff));
  }
  metadata.append(z85, 40);
  reply("200", "OK", user_id, metadata);
}

StatusOr<AuthenticatedPeer> ParseUserId(const std::string& user_id) {
  auto slash = user_id.find('/');
  if (slash == std::string::npos || slash + 1 >= user_id.size()) {
    return InvalidArgumentError("connection has no authenticated identity");
  }
  CN_ASSIGN_OR_RETURN(Role role, ParseRole(user_id.substr(0, slash)));
  return AuthenticatedPeer{role, user_id.substr(slash + 1)};
}

}  // namespace computenet::broker
