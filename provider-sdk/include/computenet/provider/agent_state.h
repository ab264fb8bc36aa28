// AgentState: the provider agent's durable memory, so that a crash of the
// agent loses nothing the broker has not acknowledged and never makes a job
// run twice. One SQLite file, <state_dir>/agent.db (storage::Database, owner
// "agent", synchronous=FULL), holds:
//   - the outbox: every report (offer answer, job status, signed usage
//     record) in the order it was made, until the broker acknowledges it;
//   - the jobs the agent has accepted or started, with the offer they came
//     from, how far they got (accepted / starting / running) and how far
//     their usage has been metered.
// The agent writes here *before* it acts (before it answers an offer, starts
// a job or sends a report), and each change of a job and the reports it
// causes commit in one transaction (Transaction()).
//
// One agent per state directory: Open() takes an exclusive flock(2) on
// <state_dir>/agent.lock (which records the holder's pid) and keeps it while
// the AgentState lives; a second agent on the same directory is refused. The
// kernel drops the lock when the process ends, SIGKILL included, so a
// restarted agent always gets back in. The file also keeps a random
// instance id, created once: the agent sends it with its registration so
// the broker can tell this agent restarting from a second agent using the
// same key (docs/architecture.md, "Agent state and restart").
//
// With an empty state_dir the state lives in memory (tests, embedders that
// accept losing it): same code path, no lock, no instance id.
//
// Thread safety: used by the agent's loop thread only; not thread-safe.
#ifndef COMPUTENET_PROVIDER_AGENT_STATE_H_
#define COMPUTENET_PROVIDER_AGENT_STATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/envelope.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::storage {
class Database;
}

namespace computenet::provider {

// How far the agent got with a job it accepted.
enum class JobPhase : int {
  kAccepted = 1,  // offer accepted, waiting for the broker's "proceed"
  kStarting = 2,  // "proceed" received; the executor is being asked to start
  kRunning = 3,   // the executor started it
};

struct StoredJob {
  std::string job_id;
  v1::PlacementOffer offer;
  JobPhase phase = JobPhase::kAccepted;
  // Metering: whether the run started, where the next usage interval
  // begins (the executor's clock) and the next interim record's number.
  bool started = false;
  int64_t last_end_ms = 0;
  uint32_t next_index = 1;
};

struct StoredReport {
  int64_t id = 0;  // order of creation
  v1::MessageType type = v1::MESSAGE_TYPE_UNSPECIFIED;
  std::string job_id;  // empty for reports not about one job
  std::string body;    // the serialized message, resent byte for byte
};

class AgentState {
 public:
  // Opens (creating the directory and file) the state in state_dir, or in
  // memory when it is empty. FAILED_PRECONDITION naming the holder's pid if
  // another agent holds the directory; UNAVAILABLE if it cannot be created
  // or opened; DATA_LOSS if the file was written by a newer agent.
  static StatusOr<std::unique_ptr<AgentState>> Open(
      const std::string& state_dir);
  ~AgentState();
  AgentState(const AgentState&) = delete;
  AgentState& operator=(const AgentState&) = delete;

  bool durable() const { return lock_fd_ >= 0; }
  // Random, kept in the file across restarts; empty in memory.
  const std::string& instance_id() const { return instance_id_; }

  // Everything not yet acknowledged, oldest first; every job still held.
  StatusOr<std::vector<StoredReport>> Reports();
  StatusOr<std::vector<StoredJob>> Jobs();

  // Runs fn in one transaction (all of its writes or none).
  Status Transaction(const std::function<Status()>& fn);
  // Appends a report; returns its id.
  StatusOr<int64_t> AddReport(v1::MessageType type, const std::string& job_id,
                              const std::string& body);
  // The broker acknowledged it (no-op if already gone).
  Status RemoveReport(int64_t id);
  // Inserts or replaces the job's row.
  Status PutJob(const StoredJob& job);
  Status RemoveJob(const std::string& job_id);

 private:
  AgentState(std::unique_ptr<storage::Database> database, int lock_fd);

  std::unique_ptr<storage::Database> database_;
  int lock_fd_ = -1;
  std::string instance_id_;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_AGENT_STATE_H_
