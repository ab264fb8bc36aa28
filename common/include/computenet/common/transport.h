// Transport: CURVE-authenticated ZeroMQ sockets ("Ironhouse": both ends
// authenticated). Servers (brokers) bind ROUTER sockets; clients (SDKs, peer
// links) connect DEALER sockets. Every frame is one Envelope.
//
// Thread safety: a ZeroMQ socket belongs to one thread. DealerChannel is not
// thread-safe; use it from the thread that created it (its socket monitor is
// read there too, polled beside the socket).
#ifndef COMPUTENET_COMMON_TRANSPORT_H_
#define COMPUTENET_COMMON_TRANSPORT_H_

#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "computenet/common/envelope.h"
#include "computenet/common/identity.h"
#include "computenet/common/status.h"

namespace computenet {

// Binds a ROUTER socket as CURVE server with server_keys. A ZAP handler must
// already be bound in ctx (see broker/zap_handler.h), or libzmq admits every
// key. endpoint may use port 0 ("tcp://127.0.0.1:0"); the port actually bound
// is written to *bound_endpoint. Returns UNAVAILABLE if bind fails.
StatusOr<zmq::socket_t> BindCurveRouter(zmq::context_t& ctx,
                                        const CurveKeyPair& server_keys,
                                        const std::string& endpoint,
                                        std::string* bound_endpoint);

// A message received on a ROUTER socket.
struct RoutedFrame {
  std::string routing_id;  // opaque; send replies to it
  std::string user_id;     // set by the ZAP handler: "<role>/<name>"
  // The ZAP metadata property "Curve-Key" (the client's CURVE key, Z85) if
  // the handler set one; empty otherwise.
  std::string curve_key;
  // The file descriptor of the connection the message came on (libzmq's
  // ZMQ_SRCFD), -1 if unknown: lets the server drop one connection.
  int source_fd = -1;
  std::string payload;     // the envelope bytes
};

// Reads one multipart message without blocking. Returns nullopt if none is
// waiting; INVALID_ARGUMENT (after draining it) if it is not [id, payload].
StatusOr<std::optional<RoutedFrame>> ReceiveRouted(zmq::socket_t& router);

// Sends payload to routing_id; UNAVAILABLE if the peer is gone
// (the socket is expected to have ZMQ_ROUTER_MANDATORY set).
Status SendRouted(zmq::socket_t& router, const std::string& routing_id,
                  const std::string& payload);

struct DealerOptions {
  std::string endpoint;           // e.g. "tcp://127.0.0.1:7700"
  std::string server_public_key;  // the broker's CURVE public key (Z85)
  CurveKeyPair client_keys;
  // How long a send waits for the connection before UNAVAILABLE. Default 2 s.
  int send_timeout_ms = 2000;
};

// A DEALER socket to one server, with this side's envelope sequence counter
// and request-id generator. A socket monitor (attached before the connect)
// tells a handshake the server refused from a server that is not there; see
// ConnectionError().
class DealerChannel {
 public:
  // Creates and connects the socket (ZeroMQ connects in the background, so
  // an absent server is not an error here). INVALID_ARGUMENT on bad keys.
  static StatusOr<std::unique_ptr<DealerChannel>> Connect(
      zmq::context_t& ctx, const DealerOptions& options);
  ~DealerChannel();

  // Why this channel will never carry a message, from the socket monitor
  // (reads its pending events; never blocks). OK while nothing says so:
  // connected, connecting, or no server listening (retrying may help).
  //  - UNAUTHENTICATED "key refused by the broker at <endpoint> (ZAP status
  //    4xx)": the server's ZAP handler refused our key (not enrolled, or
  //    revoked). ZeroMQ does not reconnect after that.
  //  - FAILED_PRECONDITION "handshake with <endpoint> failed: ...": the
  //    server dropped the CURVE handshake twice in a row, as it does when
  //    the pinned server key is not its key, or it does not speak ZMTP.
  // Retrying the same keys against the same endpoint cannot fix either.
  Status ConnectionError();

  // A new request id, unique on this channel.
  uint64_t NextRequestId() { return ++last_request_id_; }

  // Sends one envelope. Waits up to send_timeout_ms for the connection;
  // UNAVAILABLE if it is not up by then, ConnectionError() if that says
  // it never will be.
  Status Send(v1::MessageType type, uint64_t request_id,
              const google::protobuf::MessageLite& body,
              const Status* reply_status = nullptr);

  // Like Send, with the body already serialized.
  Status SendSerialized(v1::MessageType type, uint64_t request_id,
                        const std::string& body,
                        const Status* reply_status = nullptr);

  // Waits up to timeout_ms for one envelope. Returns nullopt on timeout, or
  // earlier once ConnectionError() is not OK; INVALID_ARGUMENT /
  // FAILED_PRECONDITION for a frame that is not a valid envelope (the frame
  // is consumed).
  StatusOr<std::optional<v1::Envelope>> Receive(int timeout_ms);

  zmq::socket_t& socket() { return socket_; }
  const DealerOptions& options() const { return options_; }

 private:
  struct Monitor;  // transport.cc
  DealerChannel(zmq::socket_t socket, std::unique_ptr<Monitor> monitor,
                DealerOptions options);
  // Polls the socket for `events` and the monitor together, up to
  // timeout_ms; true if the socket is ready.
  bool PollReady(short events, int timeout_ms);
  zmq::socket_t socket_;
  std::unique_ptr<Monitor> monitor_;
  DealerOptions options_;
  uint64_t last_request_id_ = 0;
  uint64_t sequence_ = 0;
};

}  // namespace computenet

#endif  // COMPUTENET_COMMON_TRANSPORT_H_
