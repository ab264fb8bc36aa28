// Broker: a regional hub daemon's core. It authenticates every connection
// (CURVE + ZAP against enrolled keys), registers providers and their
// inventory, queues and places consumers' jobs, tracks them through their
// state machine, holds each placed job's worst-case cost on its consumer's
// prepaid account, verifies signed usage records and posts them against the
// hold, and signs checkpoints of its ledger.
//
// Shape (ZeroMQ guide, Majordomo/Paranoid Pirate): one ROUTER socket serves
// providers, consumers and admins; a single-threaded core loop owns all
// state; heartbeats flow both ways on the same socket.
//
// Thread safety: Run() blocks the calling thread, which then owns the
// broker's sockets. Shutdown(), endpoint() and public_key() may be called
// from any thread.
#ifndef COMPUTENET_BROKER_BROKER_H_
#define COMPUTENET_BROKER_BROKER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "computenet/broker/matcher.h"
#include "computenet/common/clock.h"
#include "computenet/common/identity.h"
#include "computenet/common/status.h"

namespace computenet::broker {

struct BrokerOptions {
  // Prefix of global job ids ("<broker_id>-<seq>"). Default "broker".
  std::string broker_id = "broker";
  // Where the ROUTER binds. Port 0 picks a free port; see endpoint().
  std::string endpoint = "tcp://127.0.0.1:0";
  // SQLite file; created and migrated if needed. Required.
  std::string database_path;
  // Heartbeat period both ways, and how many silent periods mean "lost".
  int heartbeat_interval_ms = 1000;
  int heartbeat_liveness = 3;
  // How long jobs on a lost provider wait for it before they fail.
  int lost_job_timeout_ms = 10 * 60 * 1000;
  // Grace between SIGTERM and SIGKILL asked of providers on cancel.
  int cancel_grace_ms = 5000;
  // Offers a job may be rejected before it fails.
  uint32_t max_attempts = 3;
  // Per-identity request budget (token bucket).
  double requests_per_second = 2000;
  double request_burst = 4000;
  // Ledger (docs/ledger.md): the broker's share of each usage charge, in
  // basis points (0..10000), credited to fee:<broker_id>.
  uint32_t fee_bps = 0;
  // Sign a ledger checkpoint once this many entries are not covered, or when
  // the last one is this old and any entry is not covered.
  uint64_t checkpoint_every_entries = 1000;
  int64_t checkpoint_interval_ms = 60'000;
  // Time source; SystemClock when null.
  std::shared_ptr<Clock> clock;
};

class Broker {
 public:
  virtual ~Broker() = default;

  // Opens the store, binds the ZAP handler and the CURVE ROUTER socket.
  // matcher may be null (FirstFitMatcher). INVALID_ARGUMENT for bad options,
  // UNAVAILABLE if the database or endpoint cannot be opened.
  static StatusOr<std::unique_ptr<Broker>> Create(
      BrokerOptions options, Identity identity,
      std::unique_ptr<Matcher>&& matcher = nullptr);

  // Serves until Shutdown(). Returns OK after a shutdown, or the error that
  // stopped it.
  virtual Status Run() = 0;
  virtual void Shutdown() = 0;

  // The endpoint actually bound, e.g. "tcp://127.0.0.1:40123".
  virtual std::string endpoint() const = 0;
  virtual std::string public_key() const = 0;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_BROKER_H_
