// HeartbeatSwarm: thousands of lightweight providers for the load
// generator's heartbeat mode. A ProviderAgent is one thread each; the swarm
// instead speaks the provider protocol itself (docs/protocol.md §6:
// REGISTER_PROVIDER, then HEARTBEAT every interval) over one raw CURVE
// DEALER socket per provider, multiplexed over a few threads. Each member
// has its own enrolled key and registers one node priced above every job's
// ceiling, so that no job is ever placed on it.
//
// A false loss is the broker forgetting a member that kept heartbeating:
// it answers the next heartbeat with FAILED_PRECONDITION "register first";
// the member counts it and registers again.
//
// One process holds two descriptors per member (TCP + the socket's
// mailbox), so the load generator runs swarms of thousands in several
// worker processes (`loadgen --mode swarm-worker`, see cluster.cc), each
// under its own RLIMIT_NOFILE.
//
// Thread safety: Start/Stop from one thread; stats() from any thread.
#ifndef COMPUTENET_BENCH_LOADGEN_SWARM_H_
#define COMPUTENET_BENCH_LOADGEN_SWARM_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "computenet/common/identity.h"

namespace computenet::loadgen {

struct SwarmOptions {
  std::string endpoint;
  std::string broker_public_key;
  std::vector<CurveKeyPair> keys;  // one member each
  std::string region = "default";
  int64_t price_per_card_hour = 900'000'000;
  int threads = 4;
  int heartbeat_ms = 1000;  // until the registration reply says
  int connects_per_second =
      1500;  // a CURVE handshake costs the broker ~0.65 ms
  // New sockets open only while fewer registrations than this (per thread)
  // await their reply, so the ramp goes at the pace the broker absorbs.
  int max_pending_registrations = 8;
  size_t first_index = 0;  // members are named swarm-<first_index + i>
  // Diagnostic: connect (CURVE handshake, ZAP) but never register or
  // heartbeat, to tell a connection's broker memory from a registration's.
  bool connect_only = false;
};

struct SwarmStats {
  uint64_t members = 0;
  uint64_t connected = 0;   // sockets opened so far
  uint64_t registered = 0;  // members registered now
  uint64_t heartbeats_sent = 0;
  uint64_t heartbeats_received = 0;  // broker -> member
  uint64_t false_losses = 0;         // "register first" while registered
  uint64_t rate_limited = 0;
  uint64_t other_errors = 0;
  uint64_t unexpected = 0;    // e.g. placement offers
  uint64_t send_blocked = 0;  // a send that could not be queued
};

// The stats as one line of numbers (worker processes report this way),
// and back; Add sums them.
std::string FormatSwarmStats(const SwarmStats& stats);
SwarmStats ParseSwarmStats(const std::string& line);
void AddSwarmStats(const SwarmStats& more, SwarmStats* total);

class HeartbeatSwarm {
 public:
  explicit HeartbeatSwarm(SwarmOptions options);
  ~HeartbeatSwarm();
  void Start();
  void Stop();
  SwarmStats stats() const;

 private:
  void Serve(size_t thread_index);

  SwarmOptions options_;
  size_t thread_count_ = 1;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  struct Counters {
    std::atomic<uint64_t> connected{0}, registered{0}, heartbeats_sent{0},
        heartbeats_received{0}, false_losses{0}, rate_limited{0},
        other_errors{0}, unexpected{0}, send_blocked{0};
  };
  Counters counters_;
};

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_SWARM_H_
