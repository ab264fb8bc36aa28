#include "core/imports.h"
#include "federation/peer_link.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "computenet/common/files.h"
#include "computenet/v1/peer.pb.h"

namespace computenet::broker {
namespace {

constexpr int kInitialBackoffMs = 100;
constexpr int kMaxBackoffMs = 5000;

}  // namespace

PeerLink::PeerLink(zmq::context_t& context, PeerConfig config,
                   CurveKeyPair own_keys, std::string own_broker_id,
                   std::string own_region, std::shared_ptr<Clock> clock,
                   int heartbeat_interval_ms, int liveness)
    : context_(context),
      config_(std::move(config)),
      own_keys_(std::move(own_keys)),
      own_broker_id_(std::move(own_broker_id)),
      own_region_(std::move(own_region)),
      clock_(std::move(clock)),
      heartbeat_interval_ms_(heartbeat_interval_ms),
      liveness_(liveness),
      backoff_ms_(kInitialBackoffMs) {
  Connect();
}

void PeerLink::Connect() {
  DealerOptions options;
  options.endpoint = config_.endpoint;
  if (options.endpoint.empty() && !config_.endpoint_file.empty()) {
    auto text = ReadFileToString(config_.endpoint_file, 4096);
    if (text.ok()) {
      options.endpoint = text->substr(0, text->find_first_of(" \r\n"));
    }
  }
  if (options.endpoint.empty()) {
    channel_.reset();
    reconnect_at_ms_ = clock_->NowMs() + backoff_ms_;
    return;
  }
  options.server_public_key =
      use_next_key_ ? config_.next_curve_public : config_.curve_public;
  options.client_keys = own_keys_;
  options.send_timeout_ms = 0;  // never block the broker's loop
  channel_.reset();
  auto channel = DealerChannel::Connect(context_, options);
  if (!channel.ok()) {
    spdlog::error("peer {}: {}", config_.broker_id,
                  channel.status().ToString());
    reconnect_at_ms_ = clock_->NowMs() + kMaxBackoffMs;
    return;
  }
  channel_ = std::move(*channel);
  last_heard_ms_ = clock_->NowMs();
  for (auto& pending : outbox_) pending.request_id = 0;
  SendHello();
}

void PeerLink::SendHello() {
  v1::PeerHello hello;
  hello.set_broker_id(own_broker_id_);
  hello.set_region(own_region_);
  hello_request_id_ = channel_->NextRequestId();
  if (channel_->Send(v1::MESSAGE_TYPE_PEER_HELLO, hello_request_id_, hello)
          .ok()) {
    last_sent_ms_ = clock_->NowMs();
  }
}

void PeerLink::Transmit(Pending& pending) {
  pending.request_id = channel_->NextRequestId();
  pending.sent_ms = clock_->NowMs();
  if (channel_->SendSerialized(pending.type, pending.request_id, pending.body)
          .ok()) {
    last_sent_ms_ = pending.sent_ms;
  } else {
    pending.request_id = 0;
  }
}

uint64_t PeerLink::Send(v1::MessageType type,
                        const google::protobuf::MessageLite& body,
                        bool reliable) {
  Pending pending{type, body.SerializeAsString(), 0, 0};
  if (holding_) {
    held_.emplace_back(std::move(pending), reliable);
    return 0;
  }
  if (up_ && channel_) {
    ResendUnsent();
    Transmit(pending);
  }
  const uint64_t request_id = pending.request_id;
  if (reliable) outbox_.push_back(std::move(pending));
  return request_id;
}

void PeerLink::ResendUnsent() {
  for (auto& pending : outbox_) {
    if (pending.request_id == 0) Transmit(pending);
  }
}

void PeerLink::Release() {
  holding_ = false;
  if (up_ && channel_) ResendUnsent();
  for (auto& [pending, reliable] : held_) {
    if (up_ && channel_) Transmit(pending);
    if (reliable) outbox_.push_back(std::move(pending));
  }
  held_.clear();
}

void PeerLink::Discard() {
  holding_ = false;
  held_.clear();
}

PeerLink::Event PeerLink::Tick() {
  const int64_t now = clock_->NowMs();
  if (!channel_) {
    if (now >= reconnect_at_ms_) Connect();
    return Event::kNone;
  }
  if (just_up_) {
    just_up_ = false;
    // What waited for the link leaves first: the broker's link-up handler
    // and the sends after it must not overtake it (a job's usage is sent
    // before its end, and home releases the job's hold at its end).
    ResendUnsent();
    return Event::kUp;
  }
  if (now - last_heard_ms_ >
      static_cast<int64_t>(heartbeat_interval_ms_) * liveness_) {
    const bool was_up = up_;
    up_ = false;
    // The socket monitor may know why: the peer refused our key, or its key
    // is not the one pinned for it.
    const Status why = channel_->ConnectionError();
    channel_.reset();
    reconnect_at_ms_ = now + backoff_ms_;
    spdlog::warn("peer {}: link lost (silent {} ms{}); retry in {} ms",
                 config_.broker_id, now - last_heard_ms_,
                 why.ok() ? "" : ": " + why.message(), backoff_ms_);
    if (!was_up && !config_.next_curve_public.empty()) {
      // No hello answered on this key: a CURVE handshake with a key the
      // peer no longer holds never completes, so the peer may have
      // restarted on its other pinned key. The next attempt uses that one.
      use_next_key_ = !use_next_key_;
      spdlog::info("peer {}: next attempt with its {} key", config_.broker_id,
                   use_next_key_ ? "next" : "current");
    }
    backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
    return was_up ? Event::kDown : Event::kNone;
  }
  if (!up_) {
    // No hello reply yet: ask again each interval (the first may have gone
    // into a handshake the peer was not ready for).
    if (now - last_sent_ms_ >= heartbeat_interval_ms_) SendHello();
    return Event::kNone;
  }
  // A live connection loses nothing, so requests are resent only on a new
  // connection (or after the peer said UNAVAILABLE). Resending on a timer
  // would race the first answer with the second.
  ResendUnsent();
  if (now - last_sent_ms_ >= heartbeat_interval_ms_) {
    v1::Heartbeat heartbeat;
    heartbeat.set_sent_at_ms(now);
    if (channel_->Send(v1::MESSAGE_TYPE_HEARTBEAT, 0, heartbeat).ok()) {
      last_sent_ms_ = now;
    }
  }
  return Event::kNone;
}

std::vector<v1::Envelope> PeerLink::Drain() {
  std::vector<v1::Envelope> out;
  while (channel_) {
    auto received = channel_->Receive(0);
    if (!received.ok()) {
      spdlog::warn("peer {}: bad frame: {}", config_.broker_id,
                   received.status().ToString());
      continue;
    }
    if (!received->has_value()) break;
    v1::Envelope& envelope = **received;
    last_heard_ms_ = clock_->NowMs();
    if (envelope.type() == v1::MESSAGE_TYPE_HEARTBEAT) continue;
    if (envelope.type() == v1::MESSAGE_TYPE_PEER_HELLO_REPLY) {
      if (envelope.status().code() != v1::Status::OK) {
        spdlog::error("peer {} refused our hello: {}", config_.broker_id,
                      envelope.status().message());
        continue;
      }
      if (!up_) {
        up_ = true;
        just_up_ = true;
        backoff_ms_ = kInitialBackoffMs;
        spdlog::info("peer {} ({}) link up", config_.broker_id,
                     config_.region);
      }
      continue;
    }
    if (envelope.request_id() != 0) {
      const bool retry_later =
          envelope.status().code() == v1::Status::UNAVAILABLE ||
          envelope.status().code() == v1::Status::RESOURCE_EXHAUSTED;
      auto it = std::find_if(outbox_.begin(), outbox_.end(), [&](auto& p) {
        return p.request_id == envelope.request_id();
      });
      if (it != outbox_.end()) {
        if (retry_later) {
          it->request_id = 0;  // sent again on the next tick
        } else {
          outbox_.erase(it);
        }
      }
    }
    out.push_back(std::move(envelope));
  }
  return out;
}

}  // namespace computenet::broker
