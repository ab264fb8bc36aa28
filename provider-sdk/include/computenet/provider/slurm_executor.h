// SlurmExecutor: runs placements on the site's own Slurm cluster. Each
// placement becomes one batch job:
//   sbatch --parsable --job-name=cn-<job id> --comment=<JobTag>
//          --nodes=N --ntasks-per-node=1 --gres=<gres_name>:<cards per node>
//          --time=<ceil(max duration / 60 s)> [--partition] [--account]
//          --chdir/--output under work_dir  <extra_sbatch_args>  job.sh
// where job.sh (written under work_dir/<job id>/) exports the consumer's
// environment and COMPUTENET_JOB_ID, COMPUTENET_MODEL, COMPUTENET_NUM_NODES,
// COMPUTENET_NODE, COMPUTENET_NODE_RANK, COMPUTENET_DEVICES (= the
// CUDA_VISIBLE_DEVICES Slurm granted; the broker's device indices are
// advisory under Slurm, which picks the cards) and execs the command; a gang
// (N > 1) runs it once per node through srun --kill-on-bad-exit.
//
// Tracking: Poll() lists this user's jobs with one `squeue` (at most every
// poll_interval_ms), reports kStarted when Slurm says a job runs (start_ms =
// Slurm's StartTime) and, when it ends, reads its outcome with
// `scontrol show job -d` (within MinJobAge), else `sacct` if the site keeps
// accounting, else the jobcomp file if configured. Metering comes from
// Slurm: start_ms/end_ms are its StartTime/EndTime (second precision),
// cards its allocated GRES. Slurm states map to ComputeNet's through
// MapSlurmOutcome (slurm_parse.h), Slurm's state and reason kept in the
// message.
//
// Cancel: `scancel --signal=TERM --full` now, then `scancel --signal=KILL
// --full` and `scancel` after the grace. A job past its max duration is
// stopped the same way by the executor itself (Slurm's --time is in minutes
// and enforced late) and fails with "exceeded max duration".
//
// Restarts: Slurm jobs outlive the agent; the destructor leaves them
// running. Create() lists the jobs whose comment carries this executor's
// owner tag and adopts them, so ActiveJobs() lists them for the agent's
// registration and Poll() reports their end. A command that fails because
// slurmctld is unreachable (restarting) is retried on the next poll; the
// job is not failed for it.
//
// Thread safety: not thread-safe; drive it from one thread (see Executor).
// Every call may run Slurm commands, each bounded by the command timeout.
#ifndef COMPUTENET_PROVIDER_SLURM_EXECUTOR_H_
#define COMPUTENET_PROVIDER_SLURM_EXECUTOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
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
  // sbatch --partition and --account; empty = Slurm's defaults.
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
  // Slurm is queried at most this often; Poll() calls in between only
  // return what is already known. Default 500 ms.
  int poll_interval_ms = 500;
  // A poll stops running per-job commands after this much wall time and
  // resumes on the next one, so the agent's loop is never held long.
  // Default 1000 ms.
  int poll_budget_ms = 1000;
  // Grace between TERM and KILL when a job exceeds its max duration.
  // Default 5 s.
  int timeout_grace_ms = 5000;
  // Clock for rate limiting, max-duration checks and cancel grace (metering
  // uses Slurm's own times). SystemClock when null.
  std::shared_ptr<Clock> clock;
};

// What the executor spent talking to Slurm (for benchmarks and diagnosis).
struct SlurmExecutorStats {
  uint64_t polls = 0;            // polls that queried Slurm
  uint64_t commands = 0;         // Slurm commands run
  uint64_t failed_commands = 0;  // could not run, timed out, or non-zero
  int64_t command_ms = 0;        // wall time in commands, all together
  int64_t last_poll_ms = 0;      // wall time of the last querying poll
};

class SlurmExecutor final : public Executor {
 public:
  // Checks options, then lists Slurm's jobs and adopts those tagged with
  // options.owner (see adopted()). INVALID_ARGUMENT on bad options;
  // UNAVAILABLE if Slurm cannot be queried (e.g. slurmctld down; the agent
  // must not register without its running jobs, so it should retry);
  // NOT_FOUND if squeue is not installed.
  static StatusOr<std::unique_ptr<SlurmExecutor>> Create(
      SlurmExecutorOptions options);
  ~SlurmExecutor() override;  // leaves Slurm jobs running (see above)

  // sbatch. ALREADY_EXISTS if the job is tracked here; INVALID_ARGUMENT for
  // a spec the batch script cannot carry (NUL bytes, bad or Slurm-reserved
  // environment names); FAILED_PRECONDITION if sbatch refuses the job (its
  // message included) or is missing; UNAVAILABLE if slurmctld is
  // unreachable (a timed-out sbatch that did submit is found by its comment
  // and adopted instead).
  Status Start(const ExecutionRequest& request) override;
  // NOT_FOUND if the job is not tracked here. Signals go out at once if
  // Slurm is reachable, else on the next polls.
  Status Cancel(const std::string& job_id, int grace_ms) override;
  std::vector<ExecutionEvent> Poll() override;
  std::vector<std::string> ActiveJobs() const override;

  // ComputeNet job ids adopted from Slurm by Create().
  const std::vector<std::string>& adopted() const { return adopted_; }
  // The Slurm job id of a tracked job; empty if unknown.
  std::string SlurmJobId(const std::string& job_id) const;
  const SlurmExecutorStats& stats() const { return stats_; }

 private:
  struct Job {
    std::string job_id;
    std::string slurm_id;
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

  explicit SlurmExecutor(SlurmExecutorOptions options);
  Status Adopt();
  // Runs a Slurm command and keeps the statistics and reachability log.
  StatusOr<SubprocessResult> Run(const std::string& command,
                                 const std::vector<std::string>& args);
  void NoteUnreachable(const std::string& what);
  StatusOr<std::vector<SqueueRow>> ListJobs();
  std::vector<std::string> ClusterArgs(const Job& job) const;
  void Refresh(int64_t now_ms);
  // True when the job is finished and its event queued.
  bool TryFinish(Job& job, const SqueueRow* row, int64_t now_ms);
  Lookup FromScontrol(const Job& job, Final* out);
  Lookup FromSacct(const Job& job, Final* out);
  Lookup FromJobcomp(const Job& job, Final* out);
  void Enforce(Job& job, int64_t now_ms);
  void Stop(Job& job, v1::JobState state, const std::string& reason,
            int grace_ms, int64_t now_ms);
  void SendStopSignals(Job& job, int64_t now_ms);
  void EmitStarted(Job& job, int64_t start_ms);
  bool OverBudget() const;

  SlurmExecutorOptions options_;
  std::map<std::string, Job> jobs_;  // by ComputeNet job id
  std::vector<ExecutionEvent> pending_;
  std::vector<std::string> adopted_;
  int64_t next_poll_ms_ = 0;
  int64_t refresh_started_steady_ms_ = 0;
  bool unreachable_ = false;
  bool sacct_available_ = true;
  SlurmExecutorStats stats_;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SLURM_EXECUTOR_H_
