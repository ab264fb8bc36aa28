#include "core/outbound.h"

#include <spdlog/spdlog.h>

#include "computenet/common/transport.h"

namespace computenet::broker {

bool RouterOutbound::SendNow(const std::string& routing_id,
                             const std::string& payload) {
  Status sent = SendRouted(router_, routing_id, payload);
  if (!sent.ok()) {
    spdlog::debug("send to a connection failed: {}", sent.ToString());
    return false;
  }
  return true;
}

void RouterOutbound::Send(const std::string& routing_id, std::string payload,
                          const ReplyTag& tag) {
  if (holding_) {
    held_.push_back(Held{routing_id, std::move(payload), tag});
    return;
  }
  (void)SendNow(routing_id, payload);
}

std::set<std::string> RouterOutbound::Release() {
  holding_ = false;
  std::set<std::string> unreachable;
  for (const Held& message : held_) {
    if (!SendNow(message.routing_id, message.payload)) {
      unreachable.insert(message.routing_id);
    }
  }
  held_.clear();
  return unreachable;
}

void RouterOutbound::Fail(const Status& status) {
  holding_ = false;
  size_t answered = 0;
  for (const Held& message : held_) {
    if (message.tag.request_id == 0) continue;
    (void)SendNow(message.routing_id, encode_error_(message.tag, status));
    ++answered;
  }
  spdlog::error("batch not committed ({}): {} requests answered {}, {} "
                "messages dropped", status.ToString(), answered,
                StatusCodeName(status.code()), held_.size() - answered);
  held_.clear();
}

}  // namespace computenet::broker
