// PeerLink: this broker's outbound connection to one pinned peer broker. A
// CURVE DEALER that authenticates the peer by its pinned public key (and is
// itself admitted by the peer's ZAP handler as role "peer"), says hello,
// heartbeats, declares the link down after `liveness` silent intervals and
// reconnects with exponential backoff. Requests sent as reliable stay in an
// outbox until the peer answers them and are sent again after a reconnect;
// the peer handles repeats idempotently. With a next key pinned for the peer
// (its key rotation), a connection that gets no hello answer is replaced by
// one to the other key.
//
// Thread safety: owned and driven by the broker's core-loop thread.
#ifndef COMPUTENET_BROKER_FEDERATION_PEER_LINK_H_
#define COMPUTENET_BROKER_FEDERATION_PEER_LINK_H_

#include <google/protobuf/message_lite.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/imports.h"
#include "computenet/broker/broker.h"
#include "computenet/common/clock.h"
#include "computenet/common/identity.h"
#include "computenet/common/transport.h"

namespace computenet::broker {

class PeerLink {
 public:
  enum class Event { kNone, kUp, kDown };

  PeerLink(zmq::context_t& context, PeerConfig config, CurveKeyPair own_keys,
           std::string own_broker_id, std::string own_region,
           std::shared_ptr<Clock> clock, int heartbeat_interval_ms,
           int liveness);

  // Heartbeats, liveness, reconnects and resends. Returns kUp when the
  // peer's hello reply arrived since the last call, kDown when the link was
  // declared lost.
  Event Tick();

  // Reads every waiting envelope. Hello replies and heartbeats are consumed
  // here; replies to reliable requests clear them from the outbox and are
  // returned like any other envelope.
  std::vector<v1::Envelope> Drain();

  // Sends a request now if the link is up, after the older reliable ones
  // still unsent on this connection (else only keeps it when reliable).
  // Returns its request id (0 while held: assigned at Release).
  uint64_t Send(v1::MessageType type, const google::protobuf::MessageLite& body,
                bool reliable);

  // Group commit (core/broker.cc): while held, Send only queues, so nothing
  // leaves before the batch that made it true is durable. Release sends
  // what was queued, in order (reliable requests also join the outbox);
  // Discard drops it (the batch did not commit).
  void Hold() { holding_ = true; }
  void Release();
  void Discard();

  bool up() const { return up_; }
  // Whether the link uses (or will next try) the peer's next key.
  bool using_next_key() const { return use_next_key_; }
  const PeerConfig& config() const { return config_; }
  int64_t last_heard_ms() const { return last_heard_ms_; }
  // nullptr while disconnected (between a loss and the next attempt).
  zmq::socket_t* socket() { return channel_ ? &channel_->socket() : nullptr; }

 private:
  struct Pending {
    v1::MessageType type;
    std::string body;
    uint64_t request_id = 0;  // 0 = not sent on this connection
    int64_t sent_ms = 0;
  };
  void Connect();
  void SendHello();
  void Transmit(Pending& pending);
  // Sends, in order, the outbox's requests not yet sent on this connection;
  // done before anything newer is sent, so requests leave in the order
  // they were made (a new connection, or UNAVAILABLE, leaves them unsent).
  void ResendUnsent();

  zmq::context_t& context_;
  PeerConfig config_;
  CurveKeyPair own_keys_;
  std::string own_broker_id_;
  std::string own_region_;
  std::shared_ptr<Clock> clock_;
  int heartbeat_interval_ms_;
  int liveness_;

  std::unique_ptr<DealerChannel> channel_;
  bool up_ = false;
  bool just_up_ = false;
  // Which of the peer's pinned keys the connection uses: a link that gets
  // no answer switches between them (PeerConfig::next_curve_public).
  bool use_next_key_ = false;
  uint64_t hello_request_id_ = 0;
  int64_t last_heard_ms_ = 0;
  int64_t last_sent_ms_ = 0;
  int64_t reconnect_at_ms_ = 0;
  int backoff_ms_;
  std::deque<Pending> outbox_;
  bool holding_ = false;
  std::vector<std::pair<Pending, bool>> held_;  // (request, reliable)
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_FEDERATION_PEER_LINK_H_
