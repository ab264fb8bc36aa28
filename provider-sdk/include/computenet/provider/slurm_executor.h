// SlurmExecutor: runs placements on the site's own Slurm cluster. Each
// placement becomes one batch job:
//   sbatch --parsable --job-name=cn-<job id> --comment=<JobTag>
//          --nodes=N --ntasks-per-node=1 --gres=<gres_name>:<cards per node>
//          --time=<ceil(max duration / 60 s)> [--partition] [--account]
//          --chdir/--output under work_dir  <extra_sbatch_args>  job.sh
// where job.sh (written under work_dir/<job id>/) exports the consumer's
// environment and COMPUTENET_JOB_ID, COMPUTENET_MODEL, COMPUTENET_NUM_NODES,
// COMPUTENET_NODE, COMPUTENET_NODE_RANK, COMPUTENET_SLURM_JOB_ID,
// COMPUTENET_DEVICES (= the CUDA_VISIBLE_DEVICES Slurm granted; under Slurm
// the broker's device indices are advisory, Slurm picks the cards) and execs
// the command; a gang (N > 1) runs it once per node through
// srun --kill-on-bad-exit.
//
// All Slurm commands run on one worker thread inside the executor, never on
// the caller's: Slurm's clients retry for 9-18 s when slurmctld is down, and
// the agent's loop must keep heartbeating meanwhile. Start() and Cancel()
// queue work and return at once; Poll() only collects events.
//
// Tracking: the worker lists this user's jobs with one `squeue` at most every
// poll_interval_ms, reports kStarted when Slurm says a job runs (start_ms =
// Slurm's StartTime) and, when it ends, reads its outcome with
// `scontrol show job -d` (within MinJobAge), else `sacct` if the site keeps
// accounting, else the jobcomp file if configured. Metering comes from
// Slurm: start_ms/end_ms are its StartTime/EndTime (second precision),
// cards its allocated GRES. Slurm states map to ComputeNet's through
// MapSlurmOutcome (slurm_parse.h), Slurm's state and reason kept in the
// message.
//
// Cancel: `scancel --signal=TERM --full` now, then `scancel --signal=KILL
// --full` and `scancel` after the grace (a job still pending is simply
// scancel'ed). A job past its max duration is stopped the same way by the
// executor itself (Slurm's --time is in minutes and enforced a minute or
// more late) and fails with "exceeded max duration".
//
// Failures: a command that fails because slurmctld is unreachable (a
// restart, a network blip) is retried on the next round; the job is not
// failed for it. An sbatch that fails that way is retried (after looking for
// the job by its comment, in case the submission did arrive) until
// submit_timeout_ms, then the job finishes FAILED. An sbatch that Slurm
// refuses (bad partition, too many cards) finishes the job FAILED with
// Slurm's message.
//
// Restarts: Slurm jobs outlive the agent; the destructor leaves them
// running. Create() lists the jobs whose comment carries this executor's
// owner tag and adopts them, so ActiveJobs() lists them for the agent's
// registration and Poll() reports their end.
//
// Thread safety: Start, Cancel, Poll, ActiveJobs and the accessors may be
// called from any one thread at a time (the agent's loop); the worker
// thread is internal.
#ifndef COMPUTENET_PROVIDER_SLURM_EXECUTOR_H_
#define COMPUTENET_PROVIDER_SLURM_EXECUTOR_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "computenet/common/clock.h"
#include "computenet/provider/executor.h"
#include "computenet/provider/slurm_command.h"
#include "computenet/provider/slurm_parse.h"

namespace computenet::provider {

struct SlurmExecutorOptions {
  // Tag in every job's comment naming the agent that owns it (normally the
  // site name). Jobs of other owners in the same Slurm are never touched.
  // Required; 1..64 bytes.
  std::string owner;
  // Batch scripts and job output go under work_dir/<job id>/. Compute nodes
  // must see it at the same path (a shared file system). Required.
  std::string work_dir;
  // sbatch --partition (one or a comma list) and --account; empty = Slurm's
  // defaults.
  std::string partition;
  std::string account;
  // GRES requested per node as --gres=<gres_name>:<cards>; a typed name
  // ("gpu:a800") pins the card type. Default "gpu".
  std::string gres_name = "gpu";
  // Appended after the executor's own sbatch options (so they may override
  // them, e.g. "--qos=spare"). Keep --comment: it is how jobs are found.
  std::vector<std::string> extra_sbatch_args;
  // Where the commands live, SLURM_CONF, and the per-command timeout.
  SlurmCommandOptions commands;
  // Slurm's jobcomp/filetxt log (JobCompLoc), read for jobs already purged
  // from slurmctld when sacct is unavailable. Empty = not used.
  std::string jobcomp_file;
  // Slurm is listed at most this often. Default 500 ms.
  int poll_interval_ms = 500;
  // How long an sbatch that cannot reach slurmctld is retried before the
  // job fails. Default 120 s.
  int submit_timeout_ms = 120'000;
  // Grace between TERM and KILL when a job exceeds its max duration.
  // Default 5 s.
  int timeout_grace_ms = 5000;
  // Clock for max-duration checks, cancel grace and retry deadlines
  // (metering uses Slurm's own times). SystemClock when null.
  std::shared_ptr<Clock> clock;
};

// What the executor spent talking to Slurm (for benchmarks and diagnosis).
struct SlurmExecutorStats {
  uint64_t polls = 0;            // rounds that listed Slurm's jobs
  uint64_t commands = 0;         // Slurm commands run
  uint64_t failed_commands = 0;  // could not run, timed out, or non-zero
  int64_t command_ms = 0;        // wall time in commands, all together
  int64_t last_poll_ms = 0;      // wall time of the last round
  bool reachable = true;         // the last command reached slurmctld
};

class SlurmExecutor final : public Executor {
 public:
  // Checks options, lists Slurm's jobs and adopts those tagged with
  // options.owner (see adopted()), then starts the worker. INVALID_ARGUMENT
  // on bad options; UNAVAILABLE if Slurm cannot be queried (e.g. slurmctld
  // down: the agent must not register without its running jobs, so it
  // should retry later); NOT_FOUND if squeue is not installed.
  static StatusOr<std::unique_ptr<SlurmExecutor>> Create(
      SlurmExecutorOptions options);
  // Stops the worker (waiting for a command in flight, at most the command
  // timeout) and leaves Slurm's jobs running.
  ~SlurmExecutor() override;

  // Writes the batch script and queues the submission. ALREADY_EXISTS if
  // the job is tracked here; INVALID_ARGUMENT for a spec the batch script
  // cannot carry (no command, NUL bytes, bad or Slurm-reserved environment
  // names); FAILED_PRECONDITION if the script cannot be written. Slurm's
  // own refusal arrives later as a kFinished FAILED event.
  Status Start(const ExecutionRequest& request) override;
  // NOT_FOUND if the job is not tracked here. Queues the cancel; a job not
  // yet submitted is dropped and reported CANCELLED.
  Status Cancel(const std::string& job_id, int grace_ms) override;
  // Never runs a command.
  std::vector<ExecutionEvent> Poll() override;
  std::vector<std::string> ActiveJobs() const override;
  // slurm-<Slurm id>.out and .err under the job's directory (sbatch
  // --output/--error). One batch job has one pair: a gang's nodes (srun
  // tasks) all write to it, so its node is named "all"; a one-node job's is
  // its node's name.
  std::vector<LogFile> LogFiles(const std::string& job_id) const override;
  // OK for a job Create() found in Slurm by its comment (its start and end
  // are reported as for any tracked job); UNAVAILABLE otherwise: a job no
  // longer in Slurm's queue may have ended or never been submitted, and the
  // agent reports it failed (a documented limit).
  Status Adopt(const ExecutionRequest& request) override;

  // ComputeNet job ids adopted from Slurm by Create().
  const std::vector<std::string>& adopted() const { return adopted_; }
  // The Slurm job id of a tracked job; empty until it is submitted.
  std::string SlurmJobId(const std::string& job_id) const;
  SlurmExecutorStats stats() const;

 private:
  struct Job {
    std::string job_id;
    std::string slurm_id;  // empty until submitted
    std::string cluster;
    std::string model;
    uint32_t cards = 0;  // requested, all nodes
    uint32_t max_duration_s = 0;
    bool started_reported = false;
    int64_t start_ms = 0;  // Slurm's StartTime, once running
    std::string last_state;
    std::string last_reason;
    bool stopping = false;
    v1::JobState stop_state = v1::JOB_STATE_UNSPECIFIED;
    std::string stop_reason;
    int64_t kill_at_ms = 0;
    bool term_sent = false;
    bool kill_sent = false;
    // Submission (while slurm_id is empty).
    std::vector<std::string> sbatch_args;
    int64_t submit_first_ms = 0;
    int64_t submit_next_ms = 0;
    int submit_attempts = 0;
  };
  // A finished job's facts, from whichever source still had them.
  struct Final {
    std::string state;
    std::string reason;
    std::optional<int32_t> exit_code;
    std::optional<int64_t> start_s;
    std::optional<int64_t> end_s;
    uint32_t cards = 0;
    std::string source;
  };
  enum class Lookup { kFound, kNotFinished, kRetry, kGone };
  struct Op {
    enum class Kind { kSubmit, kCancel } kind = Kind::kSubmit;
    Job job;  // kSubmit
    std::string job_id;
    int grace_ms = 0;
  };

  explicit SlurmExecutor(SlurmExecutorOptions options);
  Status Adopt();
  void WorkerLoop();
  // Worker-thread work (no lock held while commands run).
  StatusOr<SubprocessResult> Run(const std::string& command,
                                 const std::vector<std::string>& args);
  void NoteUnreachable(const std::string& what);
  void NoteReachable();
  StatusOr<std::vector<SqueueRow>> ListJobs();
  std::vector<std::string> ClusterArgs(const Job& job) const;
  void Submit(Job& job, int64_t now_ms);
  void Refresh(int64_t now_ms);
  bool TryFinish(Job& job, const SqueueRow* row, int64_t now_ms);
  Lookup FromScontrol(const Job& job, Final* out);
  Lookup FromSacct(const Job& job, Final* out);
  Lookup FromJobcomp(const Job& job, Final* out);
  void Enforce(Job& job, int64_t now_ms);
  void Stop(Job& job, v1::JobState state, const std::string& reason,
            int grace_ms, int64_t now_ms);
  void SendStopSignals(Job& job, int64_t now_ms);
  void EmitStarted(Job& job, int64_t start_ms);
  void EmitFinishedWithoutSlurm(const Job& job, v1::JobState state,
                                const std::string& message, int64_t now_ms);
  void Emit(ExecutionEvent event);

  const SlurmExecutorOptions options_;
  std::vector<std::string> adopted_;

  // Owned by the worker thread (and by Create before it starts).
  std::map<std::string, Job> jobs_;  // by ComputeNet job id
  int64_t next_poll_ms_ = 0;
  bool sacct_available_ = true;

  // Shared with the caller's thread.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::deque<Op> ops_;
  std::vector<ExecutionEvent> events_;
  // Jobs started and not yet reported finished by Poll(), with their Slurm
  // ids once known.
  std::map<std::string, std::string> active_;
  // The node name live logs use for each job (LogFiles).
  std::map<std::string, std::string> log_nodes_;
  SlurmExecutorStats stats_;
  std::thread worker_;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SLURM_EXECUTOR_H_
