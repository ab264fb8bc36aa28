// HeartbeatSwarm: raw-protocol providers multiplexed over a few threads
// (see swarm.h).
#include "swarm.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "computenet/common/envelope.h"
#include "computenet/common/transport.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::loadgen {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Member {
  std::unique_ptr<DealerChannel> channel;
  std::string registration;  // serialized RegisterProvider
  bool registered = false;
  int64_t register_sent_ms = 0;  // 0 = not sent on this connection yet
  int64_t next_heartbeat_ms = 0;
  int heartbeat_ms = 1000;
};

}  // namespace

std::string FormatSwarmStats(const SwarmStats& s) {
  std::string out;
  for (uint64_t value :
       {s.members, s.connected, s.registered, s.heartbeats_sent,
        s.heartbeats_received, s.false_losses, s.rate_limited, s.other_errors,
        s.unexpected, s.send_blocked}) {
    out += std::to_string(value) + " ";
  }
  out.back() = '\n';
  return out;
}

SwarmStats ParseSwarmStats(const std::string& line) {
  SwarmStats s;
  std::istringstream in(line);
  in >> s.members >> s.connected >> s.registered >> s.heartbeats_sent >>
      s.heartbeats_received >> s.false_losses >> s.rate_limited >>
      s.other_errors >> s.unexpected >> s.send_blocked;
  return in ? s : SwarmStats();
}

void AddSwarmStats(const SwarmStats& more, SwarmStats* total) {
  total->members += more.members;
  total->connected += more.connected;
  total->registered += more.registered;
  total->heartbeats_sent += more.heartbeats_sent;
  total->heartbeats_received += more.heartbeats_received;
  total->false_losses += more.false_losses;
  total->rate_limited += more.rate_limited;
  total->other_errors += more.other_errors;
  total->unexpected += more.unexpected;
  total->send_blocked += more.send_blocked;
}

HeartbeatSwarm::HeartbeatSwarm(SwarmOptions options)
    : options_(std::move(options)) {}

HeartbeatSwarm::~HeartbeatSwarm() { Stop(); }

void HeartbeatSwarm::Start() {
  const size_t threads =
      std::clamp<size_t>(static_cast<size_t>(std::max(1, options_.threads)), 1,
                         std::max<size_t>(1, options_.keys.size()));
  thread_count_ = threads;
  for (size_t t = 0; t < threads && !options_.keys.empty(); ++t) {
    threads_.emplace_back([this, t] { Serve(t); });
  }
}

void HeartbeatSwarm::Stop() {
  stop_.store(true);
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

SwarmStats HeartbeatSwarm::stats() const {
  SwarmStats s;
  s.members = options_.keys.size();
  s.connected = counters_.connected.load();
  s.registered = counters_.registered.load();
  s.heartbeats_sent = counters_.heartbeats_sent.load();
  s.heartbeats_received = counters_.heartbeats_received.load();
  s.false_losses = counters_.false_losses.load();
  s.rate_limited = counters_.rate_limited.load();
  s.other_errors = counters_.other_errors.load();
  s.unexpected = counters_.unexpected.load();
  s.send_blocked = counters_.send_blocked.load();
  return s;
}

void HeartbeatSwarm::Serve(size_t thread_index) {
  const size_t stride = thread_count_;
  std::vector<size_t> mine;
  for (size_t i = thread_index; i < options_.keys.size(); i += stride) {
    mine.push_back(i);
  }
  // One context per thread: its own I/O thread and socket budget.
  zmq::context_t context(1);
  context.set(zmq::ctxopt::max_sockets, static_cast<int>(mine.size()) + 64);
  std::vector<Member> members(mine.size());
  std::vector<zmq::pollitem_t> items;
  std::mt19937_64 random(thread_index + 1);
  const double per_thread_rate =
      static_cast<double>(options_.connects_per_second) /
      static_cast<double>(stride);
  const int64_t start_ms = NowMs();
  size_t opened = 0;

  // Until its handshake completes a socket refuses sends (ZMQ_IMMEDIATE):
  // only a heartbeat that cannot be queued counts as blocked.
  auto send = [&](Member& member, v1::MessageType type,
                  const std::string& body) {
    Status sent = member.channel->SendSerialized(type, 0, body);
    if (!sent.ok() && type == v1::MESSAGE_TYPE_HEARTBEAT) {
      counters_.send_blocked.fetch_add(1);
    }
    return sent.ok();
  };
  v1::Heartbeat heartbeat;
  std::string heartbeat_body;

  while (!stop_.load()) {
    const int64_t loop_ms = NowMs();
    // Open sockets at the connect rate.
    const size_t due = std::min(
        members.size(),
        static_cast<size_t>(per_thread_rate *
                            static_cast<double>(loop_ms - start_ms + 1) /
                            1000.0) +
            1);
    size_t pending = 0;
    for (size_t m = 0; m < opened; ++m) {
      if (!members[m].registered && members[m].register_sent_ms != 0) ++pending;
    }
    while (opened < due &&
           pending < static_cast<size_t>(options_.max_pending_registrations)) {
      ++pending;
      const size_t key_index = mine[opened];
      DealerOptions dealer;
      dealer.endpoint = options_.endpoint;
      dealer.server_public_key = options_.broker_public_key;
      dealer.client_keys = options_.keys[key_index];
      dealer.send_timeout_ms = 0;  // never block the swarm's thread
      auto channel = DealerChannel::Connect(context, dealer);
      if (!channel.ok()) {
        counters_.other_errors.fetch_add(1);
        ++opened;
        continue;
      }
      Member& member = members[opened];
      member.channel = std::move(*channel);
      v1::RegisterProvider registration;
      registration.set_site("swarm-" +
                            std::to_string(options_.first_index + key_index));
      registration.set_region(options_.region);
      registration.set_currency("CNY");
      registration.set_agent_version("loadgen-swarm");
      auto* node = registration.add_nodes();
      node->set_name("n0");
      node->set_cpu_cores(8);
      node->set_memory_mib(65536);
      auto* card = node->add_accelerators();
      card->set_model("T4");
      card->set_memory_mib(16384);
      card->set_count(1);
      auto* price = registration.add_prices();
      price->set_model("T4");
      price->set_per_card_hour(options_.price_per_card_hour);
      member.registration = registration.SerializeAsString();
      member.heartbeat_ms = options_.heartbeat_ms;
      items.push_back(
          zmq::pollitem_t{member.channel->socket().handle(), 0, ZMQ_POLLIN, 0});
      ++opened;
      counters_.connected.fetch_add(1);
    }

    const int64_t now = NowMs();
    for (size_t m = 0; m < opened; ++m) {
      Member& member = members[m];
      if (!member.channel || options_.connect_only) continue;
      if (!member.registered) {
        // (Re)register: at once, then every 15 s without an answer (a slow
        // broker must not get the same registration twice).
        if (member.register_sent_ms == 0 ||
            now - member.register_sent_ms > 15'000) {
          if (send(member, v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                   member.registration)) {
            member.register_sent_ms = now;
          }
        }
        continue;
      }
      if (now >= member.next_heartbeat_ms) {
        heartbeat.set_sent_at_ms(now);
        heartbeat_body = heartbeat.SerializeAsString();
        if (send(member, v1::MESSAGE_TYPE_HEARTBEAT, heartbeat_body)) {
          counters_.heartbeats_sent.fetch_add(1, std::memory_order_relaxed);
        }
        member.next_heartbeat_ms += member.heartbeat_ms;
        if (member.next_heartbeat_ms < now) {
          member.next_heartbeat_ms = now + member.heartbeat_ms;
        }
      }
    }

    if (!items.empty()) {
      try {
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(0));
      } catch (const zmq::error_t&) {
        break;
      }
      for (size_t m = 0; m < items.size(); ++m) {
        if ((items[m].revents & ZMQ_POLLIN) == 0) continue;
        Member& member = members[m];
        zmq::message_t message;
        while (
            member.channel->socket().recv(message, zmq::recv_flags::dontwait)) {
          auto envelope = DecodeEnvelope(message.to_string_view());
          if (!envelope.ok()) {
            counters_.other_errors.fetch_add(1);
            continue;
          }
          switch (envelope->type()) {
            case v1::MESSAGE_TYPE_HEARTBEAT:
              counters_.heartbeats_received.fetch_add(
                  1, std::memory_order_relaxed);
              break;
            case v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY: {
              Status status = StatusFromProto(envelope->status());
              if (!status.ok()) {
                counters_.other_errors.fetch_add(1);
                break;
              }
              auto reply = DecodeBody<v1::RegisterProviderReply>(*envelope);
              if (reply.ok() && reply->heartbeat_interval_ms() > 0) {
                member.heartbeat_ms =
                    static_cast<int>(reply->heartbeat_interval_ms());
              }
              if (!member.registered) counters_.registered.fetch_add(1);
              member.registered = true;
              // A random phase, so heartbeats spread over the interval.
              member.next_heartbeat_ms =
                  NowMs() +
                  static_cast<int64_t>(
                      random() % static_cast<uint64_t>(member.heartbeat_ms));
              break;
            }
            case v1::MESSAGE_TYPE_ERROR: {
              Status status = StatusFromProto(envelope->status());
              if (status.code() == StatusCode::kFailedPrecondition) {
                if (member.registered) {
                  counters_.false_losses.fetch_add(1);
                  counters_.registered.fetch_sub(1);
                }
                member.registered = false;
                member.register_sent_ms = 0;
              } else if (status.code() == StatusCode::kResourceExhausted) {
                counters_.rate_limited.fetch_add(1);
              } else {
                counters_.other_errors.fetch_add(1);
              }
              break;
            }
            default:
              counters_.unexpected.fetch_add(1);
          }
        }
      }
    }
    // At most ~100 sweeps a second: the swarm must not eat the broker's CPU.
    const int64_t spent = NowMs() - loop_ms;
    if (spent < 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10 - spent));
    }
  }
}

}  // namespace computenet::loadgen
