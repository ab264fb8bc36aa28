// Executor: how a site agent runs placements on the site's own scheduler.
// The agent hands it a placement with Start(), may Cancel() it, and collects
// what happened with Poll(), from its own loop. An executor that can tell
// when it has news (a child exited) exposes a pollable descriptor, WakeFd(),
// that the agent waits on beside its socket. Implementations: the local
// ProcessExecutor (child processes); a Slurm executor plugs in the same way.
// See docs/sdk.md for how to write one.
//
// Thread safety: an Executor is driven from the agent's loop thread only;
// implementations need not be thread-safe (they may use threads inside).
#ifndef COMPUTENET_PROVIDER_EXECUTOR_H_
#define COMPUTENET_PROVIDER_EXECUTOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::provider {

// One accepted placement, as the executor must run it.
struct ExecutionRequest {
  std::string job_id;
  std::string consumer;
  v1::JobSpec spec;
  std::string model;
  std::vector<v1::NodeAssignment> assignments;  // one per node of the gang
  // The broker's placement number of this run (PlacementOffer.attempt, from
  // 1): a rerun of the same job on this site is a different run.
  uint32_t attempt = 1;
  // When non-empty, the job's working directory on the host, prepared by
  // the agent (the job's inputs are unpacked there, and <workspace>/output
  // is what the agent keeps as its result); when empty, the
  // executor makes <work_dir>/<job id>/workspace. The job's cwd is the
  // workspace, bound read-write (at the same path inside a sandbox); its log
  // files stay outside it, in <work_dir>/<job id>/, written by the
  // supervisor. The executor also makes <workspace>/output and sets
  // COMPUTENET_WORKSPACE and COMPUTENET_OUTPUT_DIR to the two paths.
  std::string workspace;
};

struct ExecutionEvent {
  enum class Kind { kStarted, kFinished };
  Kind kind = Kind::kStarted;
  std::string job_id;
  // For kStarted: how the job is fenced (e.g. "sandbox: bwrap, memory 2048
  // MiB, pids 4096, network off"); the agent shows it in the job's status.
  // For kFinished: SUCCEEDED, FAILED or CANCELLED, with the exit code
  // (128 + signal for a signalled process) and why.
  v1::JobState final_state = v1::JOB_STATE_UNSPECIFIED;
  int32_t exit_code = 0;
  std::string message;
  // What the executor measured: when the work started and ended (ms since
  // the epoch, by the executor's clock), and the cards it held.
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  uint32_t cards = 0;
  // The placement's accelerator model. Set by executors that can re-adopt
  // jobs after an agent restart (the agent no longer has its own record).
  std::string model;
};

// Live logs: one file a job's output goes to, by node and stream. The
// agent reads new bytes from it while the job runs and ships them to the
// broker (docs/protocol.md, "Live logs").
struct LogFile {
  std::string node;
  v1::LogStream stream = v1::LOG_STREAM_STDOUT;
  std::string path;  // may not exist yet
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Starts the placement without blocking. ALREADY_EXISTS if the job id is
  // running; FAILED_PRECONDITION if it cannot start (e.g. command missing);
  // UNAVAILABLE if the site's scheduler is unreachable.
  virtual Status Start(const ExecutionRequest& request) = 0;

  // Asks the job to stop: a polite signal now, a forced stop after
  // grace_ms. NOT_FOUND if the job is not running here. The outcome arrives
  // as a kFinished event with CANCELLED.
  virtual Status Cancel(const std::string& job_id, int grace_ms) = 0;

  // Returns what happened since the last call (starts, ends), in order.
  virtual std::vector<ExecutionEvent> Poll() = 0;

  // Jobs started and not yet reported finished.
  virtual std::vector<std::string> ActiveJobs() const = 0;

  // After an agent restart: takes back a run that this executor (in the
  // agent's previous life) was asked to Start, as the agent's durable state
  // says (docs/architecture.md, "Agent state and restart"). OK: it is
  // tracked again, as if Start had just returned; Poll() reports kStarted
  // with its real start time and, once it ends (possibly already), kFinished
  // with its exit status and times. NOT_FOUND only when the executor knows
  // for certain that the run never started (so the agent may start it now).
  // Any other error: its fate is unknown. Default: UNIMPLEMENTED.
  virtual Status Adopt(const ExecutionRequest& request);

  // The clock start_ms and end_ms are measured by (ms since the epoch). The
  // agent reads it to cut a running job's usage into interim records that
  // line up with what the executor will report at the end. Default: the
  // system clock.
  virtual int64_t ClockMs() const;

  // A descriptor the agent adds to its poll set (POLLIN): it becomes
  // readable when Poll() has something new to report, e.g. a child exited,
  // so the exit is reported at once rather than at the agent's next tick.
  // Level-triggered: it stays readable until Poll() has consumed the cause.
  // Owned by the executor, valid and unchanged for its lifetime. The agent
  // still calls Poll() on its tick (time limits, kill deadlines, executors
  // that only learn by asking). Default: -1, no descriptor (tick only).
  virtual int WakeFd() const { return -1; }

  // Live logs: the files the job's stdout and stderr go to, for a job
  // started (or adopted) and not yet reported finished by Poll(); empty if
  // not known (yet). The agent asks again on later ticks while it is empty.
  // Default: none (no live logs for this executor).
  virtual std::vector<LogFile> LogFiles(const std::string& job_id) const;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_EXECUTOR_H_
