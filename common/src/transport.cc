#include "computenet/common/transport.h"

#include <atomic>
#include <cerrno>
#include <cstring>

namespace computenet {
namespace {

// Handshakes the server closed, in a row, before the channel says the
// pinned key is wrong: one alone may be a broker that died mid-handshake.
// (ZeroMQ reconnects after these, so the second comes ~0.1-0.2 s later.)
constexpr int kClosedHandshakesToGiveUp = 2;

// A name for each monitor's inproc endpoint, unique in the process.
std::string NextMonitorEndpoint() {
  static std::atomic<uint64_t> counter{0};
  return "inproc://computenet-dealer-monitor-" +
         std::to_string(counter.fetch_add(1) + 1);
}

}  // namespace

// The socket monitor of a DealerChannel: a PAIR socket connected to the
// monitor endpoint of the DEALER (zmq_socket_monitor), read on the
// channel's thread. What libzmq 4.3.4 reports on the client (measured,
// tests/integration/edge_errors_test.cc):
//  - key refused by ZAP: CONNECTED, HANDSHAKE_FAILED_AUTH (the ZAP status,
//    from the server's ERROR), DISCONNECTED; no reconnect after it.
//  - wrong pinned server key: the server cannot open our HELLO and closes:
//    CONNECTED, HANDSHAKE_FAILED_NO_DETAIL (EPIPE or ECONNRESET),
//    DISCONNECTED, then the same again at each reconnect.
//  - a server that is not ZMTP (a bad greeting): CONNECTED, DISCONNECTED
//    with no handshake event, or HANDSHAKE_FAILED_PROTOCOL; a protocol
//    error, after which ZeroMQ does not reconnect.
//  - nothing listening: CONNECT_DELAYED, CLOSED, CONNECT_RETRIED, ...
//  - a server that accepts and never answers (stopped): CONNECTED only, or
//    HANDSHAKE_FAILED_NO_DETAIL with EAGAIN at the handshake timeout (not a
//    refusal: the server may just be slow).
struct DealerChannel::Monitor {
  zmq::socket_t pair;
  std::string endpoint;       // the server's, for messages
  bool in_handshake = false;  // TCP up, handshake not finished yet
  bool counted = false;       // this connection's outcome is recorded
  int closed = 0;             // handshakes closed since the last success
  Status verdict;             // not OK once retrying cannot help

  void OnEvent(uint16_t event, uint32_t value) {
    switch (event) {
      case ZMQ_EVENT_CONNECTED:
        in_handshake = true;
        counted = false;
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        in_handshake = false;
        closed = 0;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        counted = true;
        // 4xx: the ZAP handler refused the key. A 5xx (the broker could
        // not look the key up) is the broker's trouble: a fresh connection
        // may succeed, so it is no verdict.
        if (value >= 400 && value < 500) {
          verdict = UnauthenticatedError(
              "key refused by the broker at " + endpoint + " (ZAP status " +
              std::to_string(value) +
              "): this key is not enrolled there, or was revoked");
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // EAGAIN / ETIMEDOUT: the handshake timed out, the server is slow
        // or stopped, not refusing. (The DISCONNECTED that follows is
        // then no drop either.)
        if (value == EAGAIN || value == ETIMEDOUT) {
          counted = true;
          break;
        }
        // The server closed the connection mid-handshake.
        if (!counted) {
          counted = true;
          if (++closed >= kClosedHandshakesToGiveUp) {
            HandshakeFailed("the server closed the CURVE handshake " +
                            std::to_string(closed) + " times in a row");
          }
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        counted = true;
        HandshakeFailed("ZMTP protocol error " + std::to_string(value));
        break;
      case ZMQ_EVENT_DISCONNECTED:
        // Ended mid-handshake with no event for it: a protocol error
        // (e.g. a greeting that is not ZMTP), which ZeroMQ does not retry.
        if (in_handshake && !counted) {
          HandshakeFailed(
              "the server closed the connection during the "
              "ZMTP greeting");
        }
        in_handshake = false;
        break;
      default:
        break;
    }
  }

  void HandshakeFailed(const std::string& how) {
    if (!verdict.ok()) return;
    verdict = FailedPreconditionError(
        "handshake with " + endpoint +
        " failed: the broker's public key does not match the pinned key, "
        "or it is not a ComputeNet broker (" +
        how + ")");
  }

  // Reads every event waiting; never blocks.
  void Drain() {
    while (true) {
      zmq::message_t header;
      try {
        if (!pair.recv(header, zmq::recv_flags::dontwait)) return;
        // [event (2 bytes) + value (4 bytes)], [endpoint]
        while (header.more()) {
          zmq::message_t rest;
          (void)pair.recv(rest, zmq::recv_flags::none);
          if (!rest.more()) break;
        }
      } catch (const zmq::error_t&) {
        return;
      }
      if (header.size() < 6) continue;
      uint16_t event = 0;
      uint32_t value = 0;
      std::memcpy(&event, header.data(), sizeof(event));
      std::memcpy(&value, static_cast<const char*>(header.data()) + 2,
                  sizeof(value));
      OnEvent(event, value);
    }
  }
};

StatusOr<zmq::socket_t> BindCurveRouter(zmq::context_t& ctx,
                                        const CurveKeyPair& server_keys,
                                        const std::string& endpoint,
                                        std::string* bound_endpoint) {
  CN_RETURN_IF_ERROR(ValidateCurveKey(server_keys.secret_z85));
  try {
    zmq::socket_t socket(ctx, zmq::socket_type::router);
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, server_keys.secret_z85);
    // Every connection goes through ZAP, under this domain.
    socket.set(zmq::sockopt::zap_domain, "computenet");
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::maxmsgsize, kMaxMessageBytes);
    socket.set(zmq::sockopt::linger, 0);
    // Keep a slow consumer from growing broker memory without bound.
    socket.set(zmq::sockopt::sndhwm, 10000);
    socket.set(zmq::sockopt::rcvhwm, 10000);
    socket.bind(endpoint);
    if (bound_endpoint != nullptr) {
      *bound_endpoint = socket.get(zmq::sockopt::last_endpoint);
    }
    return socket;
  } catch (const zmq::error_t& error) {
    return UnavailableError("bind " + endpoint + ": " + error.what());
  }
}

StatusOr<std::optional<RoutedFrame>> ReceiveRouted(zmq::socket_t& router) {
  std::vector<zmq::message_t> parts;
  try {
    zmq::message_t part;
    if (!router.recv(part, zmq::recv_flags::dontwait)) {
      return std::optional<RoutedFrame>();
    }
    parts.push_back(std::move(part));
    while (parts.back().more()) {
      zmq::message_t next;
      (void)router.recv(next, zmq::recv_flags::none);
      parts.push_back(std::move(next));
    }
  } catch (const zmq::error_t& error) {
    return UnavailableError(std::string("recv: ") + error.what());
  }
  if (parts.size() != 2) {
    return InvalidArgumentError("expected [routing id, envelope], got " +
                                std::to_string(parts.size()) + " frames");
  }
  RoutedFrame frame;
  frame.routing_id = parts[0].to_string();
  frame.payload = parts[1].to_string();
  // The C API answers NULL rather than throwing for an absent property (no
  // ZAP metadata: the caller treats an empty user id as unauthenticated).
  if (const char* user_id = zmq_msg_gets(parts[1].handle(), "User-Id")) {
    frame.user_id = user_id;
  }
  if (const char* key = zmq_msg_gets(parts[1].handle(), "Curve-Key")) {
    frame.curve_key = key;
  }
  frame.source_fd = zmq_msg_get(parts[1].handle(), ZMQ_SRCFD);
  return std::optional<RoutedFrame>(std::move(frame));
}

Status SendRouted(zmq::socket_t& router, const std::string& routing_id,
                  const std::string& payload) {
  try {
    if (!router.send(zmq::buffer(routing_id),
                     zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return UnavailableError("peer not ready");
    }
    (void)router.send(zmq::buffer(payload), zmq::send_flags::dontwait);
    return OkStatus();
  } catch (const zmq::error_t& error) {
    return UnavailableError(std::string("send: ") + error.what());
  }
}

StatusOr<std::unique_ptr<DealerChannel>> DealerChannel::Connect(
    zmq::context_t& ctx, const DealerOptions& options) {
  CN_RETURN_IF_ERROR(ValidateCurveKey(options.server_public_key));
  CN_RETURN_IF_ERROR(ValidateCurveKey(options.client_keys.public_z85));
  CN_RETURN_IF_ERROR(ValidateCurveKey(options.client_keys.secret_z85));
  try {
    zmq::socket_t socket(ctx, zmq::socket_type::dealer);
    // The monitor is in place before the connect: a refused handshake is
    // reported once (ZeroMQ does not retry it), so no event may be missed.
    auto monitor = std::make_unique<Monitor>();
    monitor->endpoint = options.endpoint;
    const std::string monitor_endpoint = NextMonitorEndpoint();
    if (zmq_socket_monitor(socket.handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
      throw zmq::error_t();
    }
    monitor->pair = zmq::socket_t(ctx, zmq::socket_type::pair);
    monitor->pair.set(zmq::sockopt::linger, 0);
    monitor->pair.connect(monitor_endpoint);
    socket.set(zmq::sockopt::curve_serverkey, options.server_public_key);
    socket.set(zmq::sockopt::curve_publickey, options.client_keys.public_z85);
    socket.set(zmq::sockopt::curve_secretkey, options.client_keys.secret_z85);
    socket.set(zmq::sockopt::maxmsgsize, kMaxMessageBytes);
    socket.set(zmq::sockopt::linger, 0);
    // Messages queue only for a completed connection, so a request is never
    // sent into a handshake the server will refuse (and POLLOUT means the
    // handshake is done).
    socket.set(zmq::sockopt::immediate, 1);
    socket.connect(options.endpoint);
    return std::unique_ptr<DealerChannel>(
        new DealerChannel(std::move(socket), std::move(monitor), options));
  } catch (const zmq::error_t& error) {
    return InvalidArgumentError("connect " + options.endpoint + ": " +
                                error.what());
  }
}

DealerChannel::DealerChannel(zmq::socket_t socket,
                             std::unique_ptr<Monitor> monitor,
                             DealerOptions options)
    : socket_(std::move(socket)),
      monitor_(std::move(monitor)),
      options_(std::move(options)) {}

DealerChannel::~DealerChannel() {
  // Stops the monitor before its PAIR closes (both go with this object).
  if (socket_.handle() != nullptr) {
    (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
  }
}

Status DealerChannel::ConnectionError() {
  monitor_->Drain();
  return monitor_->verdict;
}

bool DealerChannel::PollReady(short events, int timeout_ms) {
  // Nothing more will come, or go, on a connection that cannot come up:
  // no waiting (what arrived before still does).
  if (!monitor_->verdict.ok()) {
    zmq::pollitem_t item{socket_.handle(), 0, events, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(0));
    return (item.revents & events) != 0;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    zmq::pollitem_t items[2] = {
        {socket_.handle(), 0, events, 0},
        {monitor_->pair.handle(), 0, ZMQ_POLLIN, 0},
    };
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    zmq::poll(items, 2, std::max(left, std::chrono::milliseconds(0)));
    if ((items[0].revents & events) != 0) return true;
    if ((items[1].revents & ZMQ_POLLIN) != 0) {
      monitor_->Drain();
      if (!monitor_->verdict.ok()) return false;
    }
    if (left.count() <= 0) return false;
  }
}

Status DealerChannel::Send(v1::MessageType type, uint64_t request_id,
                           const google::protobuf::MessageLite& body,
                           const Status* reply_status) {
  return SendSerialized(type, request_id, body.SerializeAsString(),
                        reply_status);
}

Status DealerChannel::SendSerialized(v1::MessageType type, uint64_t request_id,
                                     const std::string& body,
                                     const Status* reply_status) {
  std::string payload =
      EncodeEnvelopeBytes(type, request_id, ++sequence_, body, reply_status);
  try {
    if (!PollReady(ZMQ_POLLOUT, options_.send_timeout_ms)) {
      CN_RETURN_IF_ERROR(monitor_->verdict);
      return UnavailableError("broker unreachable at " + options_.endpoint +
                              " (no connection within " +
                              std::to_string(options_.send_timeout_ms) +
                              " ms)");
    }
    if (!socket_.send(zmq::buffer(payload), zmq::send_flags::dontwait)) {
      return UnavailableError("broker at " + options_.endpoint +
                              " is not taking messages (send queue full)");
    }
    return OkStatus();
  } catch (const zmq::error_t& error) {
    return UnavailableError(std::string("send: ") + error.what());
  }
}

StatusOr<std::optional<v1::Envelope>> DealerChannel::Receive(int timeout_ms) {
  try {
    if (!PollReady(ZMQ_POLLIN, timeout_ms)) {
      return std::optional<v1::Envelope>();
    }
    zmq::message_t message;
    (void)socket_.recv(message, zmq::recv_flags::none);
    // A DEALER from a broker never gets more than one frame; drop extras.
    while (message.more()) {
      zmq::message_t extra;
      (void)socket_.recv(extra, zmq::recv_flags::none);
    }
    CN_ASSIGN_OR_RETURN(v1::Envelope envelope,
                        DecodeEnvelope(message.to_string_view()));
    return std::optional<v1::Envelope>(std::move(envelope));
  } catch (const zmq::error_t& error) {
    return UnavailableError(std::string("recv: ") + error.what());
  }
}

}  // namespace computenet
