// ZapHandler: the broker's ZeroMQ Authentication Protocol (RFC 27) handler.
// libzmq asks it about every CURVE handshake; it admits only public keys
// enrolled (and not revoked, and not retired by a rotation) in the Store,
// and names each admitted connection "<role>/<name>" as its ZMQ User-Id (the
// party: all keys of one party share it). The key itself travels as the ZAP
// metadata property "Curve-Key" (Z85), so the broker can tell which of a
// party's keys a connection uses. A refused key never completes the
// handshake, so none of its messages reaches a handler.
//
// Thread safety: owned and polled by the broker's core-loop thread.
#ifndef COMPUTENET_BROKER_CORE_ZAP_HANDLER_H_
#define COMPUTENET_BROKER_CORE_ZAP_HANDLER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "core/imports.h"
#include "jobs/store.h"
#include "computenet/common/clock.h"
#include "computenet/common/status.h"

namespace computenet::broker {

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 in ctx. Call before binding any CURVE
  // server socket in ctx: without a handler libzmq would admit every key.
  // UNAVAILABLE if another handler is bound in this context.
  // clock: when retired keys stop being admitted.
  static StatusOr<std::unique_ptr<ZapHandler>> Bind(
      zmq::context_t& ctx, Store& store, std::shared_ptr<Clock> clock);

  // Answers every pending request without blocking.
  void HandlePending();

  zmq::socket_t& socket() { return socket_; }
  uint64_t admitted() const { return admitted_; }
  uint64_t refused() const { return refused_; }

 private:
  ZapHandler(zmq::socket_t socket, Store& store, std::shared_ptr<Clock> clock)
      : socket_(std::move(socket)), store_(store), clock_(std::move(clock)) {}
  void HandleOne(std::vector<zmq::message_t>& request);

  zmq::socket_t socket_;
  Store& store_;
  std::shared_ptr<Clock> clock_;
  uint64_t admitted_ = 0;
  uint64_t refused_ = 0;
};

// The ZAP metadata property naming the connection's CURVE key (Z85). libzmq
// puts ZAP properties before the client's own, so a client cannot set it.
inline constexpr char kCurveKeyProperty[] = "Curve-Key";

// Splits a ZAP User-Id "<role>/<name>"; INVALID_ARGUMENT if malformed.
struct AuthenticatedPeer {
  Role role = Role::kConsumer;
  std::string name;
};
StatusOr<AuthenticatedPeer> ParseUserId(const std::string& user_id);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_ZAP_HANDLER_H_
