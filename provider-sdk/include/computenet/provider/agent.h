// ProviderAgent: the heart of a site agent. It keeps one CURVE-authenticated
// DEALER connection to the site's home broker, registers the site's
// inventory, heartbeats both ways, answers placement offers, runs accepted
// placements through an Executor, and reports status and signed usage.
//
// Reliability (ZeroMQ guide, Paranoid Pirate): when the broker falls silent
// for heartbeat_liveness intervals the agent drops the socket, reconnects
// with exponential backoff and registers again, listing the jobs it still
// runs so the broker can reconcile. Usage is metered in contiguous
// intervals: record "<job>:<n>" for each usage_interval_s while the job
// runs, "<job>:final" (closes_job) when it ends. Reports (offer answers,
// status, usage)
// stay in an outbox until the broker acknowledges them, and are sent again
// after a reconnect; the broker treats repeats idempotently.
//
// Durable state (ProviderOptions::state_dir): the outbox and the jobs it
// accepted or started are stored before the agent acts; a restarted agent
// resends what was not acknowledged, takes back its running jobs through
// Executor::Adopt and reports (and bills) those that ended while it was
// down. See docs/architecture.md, "Agent state and restart".
//
// Offer updates (UpdateOffer: new prices, spare capacity offered or
// reclaimed) go to the broker through the same outbox, and are folded into
// the registration sent on every reconnect.
//
// The loop waits on the socket and on the executor's wake descriptor
// together, so a job's exit is reported when it happens, not at the tick.
//
// Thread safety: Run() blocks and owns the socket and the executor.
// Shutdown(), registered() and UpdateOffer() may be called from any thread.
#ifndef COMPUTENET_PROVIDER_AGENT_H_
#define COMPUTENET_PROVIDER_AGENT_H_

#include <atomic>
#include <memory>
#include <string>

#include "computenet/common/clock.h"
#include "computenet/common/identity.h"
#include "computenet/common/status.h"
#include "computenet/provider/executor.h"
#include "computenet/provider/site_config.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::provider {

struct ProviderOptions {
  std::string broker_endpoint;    // e.g. "tcp://127.0.0.1:7700". Required.
  std::string broker_public_key;  // the broker's CURVE key (Z85). Required.
  // Site, region, currency, nodes and prices to register. active_job_ids is
  // filled in by the agent.
  v1::RegisterProvider registration;
  // Used until the broker's registration reply says otherwise.
  int heartbeat_interval_ms = 1000;
  int heartbeat_liveness = 3;
  // Reconnect backoff: doubles from initial up to max.
  int reconnect_initial_ms = 250;
  int reconnect_max_ms = 8000;
  // While a job runs, a signed interim usage record is sent every this many
  // seconds of it (by the executor's clock), so the broker bills it as it
  // goes and can stop it when its hold runs out; the last record closes the
  // job. 0 = only the closing record. Default 300.
  uint32_t usage_interval_s = 300;
  // The loop's tick: how long it waits for a frame from the broker or the
  // executor's wake descriptor (Executor::WakeFd) before it runs its timers
  // (heartbeats, liveness, metering, and Executor::Poll for time limits).
  // A job's exit is reported on the tick only by executors without a wake
  // descriptor. Default 20.
  int tick_ms = 20;
  // Live logs (docs/protocol.md, "Live logs"): every log_interval_ms the
  // agent reads the new bytes of each running job's output files
  // (Executor::LogFiles) and sends them to the broker, at most
  // log_bytes_per_interval per job and one unanswered batch per job at a
  // time; a job further behind than log_max_backlog_bytes skips ahead (the
  // reader is told how much it missed). When a job ends, the last bytes of
  // each file (up to 64 KiB) go before its final status. Never blocks on
  // the broker or on any consumer. log_interval_ms 0 = no live logs.
  int log_interval_ms = 200;
  uint32_t log_bytes_per_interval = 64 * 1024;
  uint32_t log_max_backlog_bytes = 256 * 1024;
  // Time source for heartbeats and backoff; SystemClock when null.
  std::shared_ptr<Clock> clock;
  // The site's state directory: the agent's durable outbox and jobs
  // (AgentState, agent_state.h), locked by one agent at a time. With it, a
  // crash of the agent loses no unacknowledged report and its jobs are
  // taken back (or reported as they ended) on restart; give the executor a
  // place that survives too (ProcessExecutorOptions::state_dir). Empty: in
  // memory, lost with the agent.
  std::string state_dir;
  // Inputs, results and their limits (work_dir empty: none).
  SiteDataOptions data;
};

class ProviderAgent {
 public:
  virtual ~ProviderAgent() = default;

  // Validates options and opens the state directory. INVALID_ARGUMENT on a
  // missing endpoint or bad key; FAILED_PRECONDITION if another agent holds
  // the state directory; the state's error if it cannot be opened.
  static StatusOr<std::unique_ptr<ProviderAgent>> Create(
      ProviderOptions options, Identity identity,
      std::unique_ptr<Executor>&& executor);

  // Serves until Shutdown(). Returns OK after shutdown, or the error that
  // makes serving pointless (e.g. the broker refuses the registration as
  // invalid: fix the site config; ALREADY_EXISTS: another agent with this
  // key is connected). Before the first registration only: UNAUTHENTICATED
  // if the broker refused this site's key at the handshake, and
  // FAILED_PRECONDITION if the handshake failed (broker_public_key is not
  // the broker's key); after it, the agent logs either and reconnects with
  // its backoff. An unreachable broker is waited for.
  virtual Status Run() = 0;
  virtual void Shutdown() = 0;
  // True while the broker has acknowledged the current registration.
  virtual bool registered() const = 0;
  // Queues new prices and/or node offer changes (e.g. reclaim spare nodes:
  // CAPACITY_OFFER_WITHDRAWN) for the broker; the Run() thread sends them.
  // New prices apply to new placements only. INVALID_ARGUMENT for a node
  // this site did not register (nothing is queued then).
  virtual Status UpdateOffer(const v1::UpdateOffer& update) = 0;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_AGENT_H_
