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
// broker's sockets. Shutdown(), Reload(), endpoint() and public_key() may be
// called from any thread (Shutdown and Reload from a signal handler too).
#ifndef COMPUTENET_BROKER_BROKER_H_
#define COMPUTENET_BROKER_BROKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "computenet/matching/accelerator_catalog.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/preemption.h"
#include "computenet/matching/matcher.h"
#include "computenet/common/clock.h"
#include "computenet/common/identity.h"
#include "computenet/common/status.h"

namespace computenet::broker {

struct PeerConfig {
  std::string broker_id;       // the peer's broker id (its enrolled name)
  std::string region;
  std::string endpoint;        // where its ROUTER listens
  // Or a file holding the endpoint, read at every connection attempt (for
  // peers on ephemeral ports, as in tests and the demo).
  std::string endpoint_file;
  std::string curve_public;    // pinned CURVE key (Z85)
  std::string ed25519_public;  // pinned signing key (hex)
  // The peer's next CURVE key (Z85), empty if none: accepted from the peer
  // beside curve_public, and tried by the link to it when a connection on
  // the other key gets no answer, so the peer can restart on it. Same
  // broker id and signing key (its ledger is bound to that key).
  std::string next_curve_public;
};

struct BrokerOptions {
  // Prefix of global job ids ("<broker_id>-<seq>"). Default "broker".
  std::string broker_id = "broker";
  // Where the ROUTER binds. Port 0 picks a free port; see endpoint().
  std::string endpoint = "tcp://127.0.0.1:0";
  // SQLite file; created and migrated if needed. Required.
  std::string database_path;
  // The key file (AES-256-GCM, 64 hex digits) the secret env values of
  // unfinished jobs are sealed under in the database; created with mode
  // 0600 at first start. `run` sets <keys dir>/secrets.key. Empty = the
  // broker refuses jobs with secret env (FAILED_PRECONDITION).
  std::string secrets_key_file;
  // Heartbeat period both ways, and how many silent periods mean "lost".
  int heartbeat_interval_ms = 1000;
  int heartbeat_liveness = 3;
  // How long jobs on a lost provider wait for it before they fail.
  int lost_job_timeout_ms = 10 * 60 * 1000;
  // Grace between SIGTERM and SIGKILL asked of providers on cancel.
  int cancel_grace_ms = 5000;
  // Placements a job may have (rejected offers, reruns after a reclaim)
  // before it fails, unless its spec sets max_attempts.
  uint32_t max_attempts = 3;
  // Jobs one consumer may have unfinished at once (queued, placed, running);
  // more submits are RESOURCE_EXHAUSTED. 0 = no limit.
  uint32_t max_unfinished_jobs_per_consumer = 10'000;
  // How accelerator models compare; null = the built-in catalog.
  std::shared_ptr<const matching::AcceleratorCatalog> catalog;
  // Queue policy: fair-share half-life, aging interval.
  matching::JobQueueOptions queue;
  // Grace between the notice and the stop when a provider reclaims spare
  // capacity (its UpdateOffer may ask for another, up to the maximum).
  int reclaim_grace_ms = 30'000;
  int max_reclaim_grace_ms = 10 * 60 * 1000;
  // Priority preemption (docs/matching.md, "Priority preemption"): a HIGH
  // job that cannot fit stops lower-priority preemptible work, giving it
  // this grace between the notice and the stop. Default on, 30 s; the
  // anti-thrash bounds are in `preemption` (2 preemptions, then 1 h).
  bool priority_preemption = true;
  int preemption_grace_ms = 30'000;
  matching::PreemptionOptions preemption;
  // GET /metrics (Prometheus text), /healthz and /readyz over plain HTTP on
  // "HOST:PORT" (port 0: any free one; Broker::metrics_url() tells).
  // Read-only and holding no secrets, but unauthenticated: keep it on
  // loopback or a monitoring network. Default empty: no HTTP endpoint.
  std::string metrics_address;
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

  // Federation. The region this broker serves, and its pinned peers: each is
  // enrolled as role "peer" at start (peers no longer listed are revoked),
  // dialed, and sent capacity adverts and forwarded jobs.
  std::string region = "default";
  std::vector<PeerConfig> peers;
  // A peer must be this much cheaper (basis points) to take a job that
  // could run here. Default 2000 (20%).
  int64_t forward_margin_bp = 2000;
  // A peer that declined a forwarded job is not sent it again for this
  // long, doubling with each further decline up to the maximum; then it is
  // tried again (capacity, prices or the peer's providers may have
  // changed). Default 30 s, at most 10 min.
  int64_t decline_retry_ms = 30'000;
  int64_t max_decline_retry_ms = 10 * 60 * 1000;
  // Adverts from a peer are forgotten after this long without one.
  // Default 0 = 5 heartbeat intervals.
  int advert_ttl_ms = 0;
  // How often this broker, as home of jobs forwarded to a peer, sends that
  // peer a net settlement statement to countersign (when it has new lines).
  // Default 60 s.
  int64_t settlement_interval_ms = 60'000;
  // How often this broker pulls each up peer's ledger into its replica,
  // verifies it and cosigns the peer's new checkpoints. Default 30 s.
  int64_t replication_interval_ms = 30'000;

  // Bundles: job inputs uploaded by consumers (and relayed by peers), kept
  // in this directory; default "<database_path>.bundles". A bundle over
  // max_bundle_bytes (default 1 GiB), a job whose inputs sum past
  // max_input_bytes_per_job (default 2 GiB), or an upload that would put a
  // consumer's stored bundles past max_bundle_bytes_per_consumer (default
  // 10 GiB) is RESOURCE_EXHAUSTED before any byte is stored. 0 = no limit
  // for the last two.
  std::string bundle_dir;
  uint64_t max_bundle_bytes = uint64_t{1} << 30;
  uint64_t max_input_bytes_per_job = uint64_t{2} << 30;
  uint64_t max_bundle_bytes_per_consumer = uint64_t{10} << 30;
  // A chunk relayed to a peer or a provider (uploads, input pulls, result
  // fetches) that gets no answer in this long is answered UNAVAILABLE
  // (retry). Default 30 s.
  int64_t relay_timeout_ms = 30'000;
  // Bundles unused this long (not uploaded to, named by a submit or read
  // for a site) are removed, with unfinished uploads. A job queued longer
  // than this with inputs fails at its site ("input ... is not here").
  // Default 7 days.
  int64_t bundle_retention_ms = int64_t{7} * 24 * 3600 * 1000;
  // Live logs (docs/protocol.md, "Live logs"): the newest bytes kept of each
  // node's stdout and stderr, all jobs' logs together at most this much
  // memory, and how long an ended job's logs stay readable.
  size_t log_stream_bytes = 256 * 1024;
  size_t log_total_bytes = 64 * 1024 * 1024;
  int64_t log_keep_ms = 10 * 60 * 1000;
};

class Broker {
 public:
  virtual ~Broker() = default;

  // Opens the store, binds the ZAP handler and the CURVE ROUTER socket.
  // matcher may be null (PlacementMatcher). INVALID_ARGUMENT for bad options,
  // UNAVAILABLE if the database or endpoint cannot be opened.
  static StatusOr<std::unique_ptr<Broker>> Create(
      BrokerOptions options, Identity identity,
      std::unique_ptr<matching::Matcher>&& matcher = nullptr);

  // Serves until Shutdown(). Returns OK after a shutdown, or the error that
  // stopped it.
  virtual Status Run() = 0;
  virtual void Shutdown() = 0;
  // Asks the loop to re-read, on its next tick, what may change while it
  // runs: revocations (also noticed by themselves within a tick when another
  // process commits). Everything else (peers, fees, endpoints) needs a
  // restart; the loop logs what it reloaded.
  virtual void Reload() = 0;

  // The endpoint actually bound, e.g. "tcp://127.0.0.1:40123".
  virtual std::string endpoint() const = 0;
  virtual std::string public_key() const = 0;
  // "http://HOST:PORT" of GET /metrics, /healthz and /readyz, or empty when
  // BrokerOptions::metrics_address is empty.
  virtual std::string metrics_url() const = 0;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_BROKER_H_
