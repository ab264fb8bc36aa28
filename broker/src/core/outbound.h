// Outbound: everything the broker sends on its ROUTER socket (replies,
// offers, cancels, heartbeats, job events), with group commit: while a batch
// is open (Hold), messages are queued, and they leave only after the batch
// that made them true committed (Release). If the commit fails, every queued
// reply becomes a retryable error for its request and everything else is
// dropped (Fail), so no one is told of a change that is not on disk.
//
// Outbound is the interface handlers send through; RouterOutbound is the
// real one over the broker's ROUTER. Peer links hold the same way
// (federation/peer_link.h: Hold/Release/Discard).
//
// Thread safety: owned and used by the broker's core-loop thread.
#ifndef COMPUTENET_BROKER_CORE_OUTBOUND_H_
#define COMPUTENET_BROKER_CORE_OUTBOUND_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "computenet/common/status.h"
#include "computenet/v1/envelope.pb.h"

namespace computenet::broker {

// What a message answers, so a failed batch can answer it with an error.
struct ReplyTag {
  uint64_t request_id = 0;  // 0 = not a reply (offer, event, heartbeat)
  v1::MessageType type = v1::MESSAGE_TYPE_UNSPECIFIED;
};

class Outbound {
 public:
  virtual ~Outbound() = default;
  // Sends payload (an encoded envelope) to a connection of the ROUTER, now
  // or, while held, after the batch commits.
  virtual void Send(const std::string& routing_id, std::string payload,
                    const ReplyTag& tag = {}) = 0;
};

class RouterOutbound final : public Outbound {
 public:
  // Encodes the error reply sent for a held reply when its batch failed.
  using ErrorEncoder = std::function<std::string(const ReplyTag& tag,
                                                 const Status& status)>;
  RouterOutbound(zmq::socket_t& router, ErrorEncoder encode_error)
      : router_(router), encode_error_(std::move(encode_error)) {}

  void Send(const std::string& routing_id, std::string payload,
            const ReplyTag& tag = {}) override;

  // From now until Release or Fail, Send queues.
  void Hold() { holding_ = true; }
  bool holding() const { return holding_; }
  size_t held() const { return held_.size(); }
  // Sends what was queued, in order. Returns the routing ids that could not
  // be reached (the connection is gone), so watchers on them can be dropped.
  std::set<std::string> Release();
  // The batch did not commit: each queued reply is answered with `status`
  // (retryable) instead, the rest is dropped.
  void Fail(const Status& status);

 private:
  struct Held {
    std::string routing_id;
    std::string payload;
    ReplyTag tag;
  };
  bool SendNow(const std::string& routing_id, const std::string& payload);

  zmq::socket_t& router_;
  ErrorEncoder encode_error_;
  bool holding_ = false;
  std::vector<Held> held_;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_OUTBOUND_H_
