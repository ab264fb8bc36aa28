#include "computenet/common/transport.h"

namespace computenet {

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
    socket.set(zmq::sockopt::curve_serverkey, options.server_public_key);
    socket.set(zmq::sockopt::curve_publickey, options.client_keys.public_z85);
    socket.set(zmq::sockopt::curve_secretkey, options.client_keys.secret_z85);
    socket.set(zmq::sockopt::maxmsgsize, kMaxMessageBytes);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndtimeo, options.send_timeout_ms);
    // Messages queue only for a completed connection, so a request is never
    // sent into a handshake the server will refuse.
    socket.set(zmq::sockopt::immediate, 1);
    socket.connect(options.endpoint);
    return std::unique_ptr<DealerChannel>(
        new DealerChannel(std::move(socket), options));
  } catch (const zmq::error_t& error) {
    return InvalidArgumentError("connect " + options.endpoint + ": " +
                                error.what());
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
    if (!socket_.send(zmq::buffer(payload), zmq::send_flags::none)) {
      return UnavailableError("broker at " + options_.endpoint +
                              " is not reachable (send timed out)");
    }
    return OkStatus();
  } catch (const zmq::error_t& error) {
    return UnavailableError(std::string("send: ") + error.what());
  }
}

StatusOr<std::optional<v1::Envelope>> DealerChannel::Receive(int timeout_ms) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    if ((item.revents & ZMQ_POLLIN) == 0) {
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
