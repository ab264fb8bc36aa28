// ProcessExecutor: runs each placement as real child processes on this
// machine, one per node of the placement, each in its own process group,
// with its assigned devices in the environment:
//   CUDA_VISIBLE_DEVICES     device indices on that node, e.g. "0,1"
//   COMPUTENET_DEVICES       the same, vendor-neutral
//   COMPUTENET_JOB_ID, COMPUTENET_NODE, COMPUTENET_NODE_RANK,
//   COMPUTENET_NUM_NODES, COMPUTENET_MODEL
// Output of each process goes to <work_dir>/<job id>/<node>.out (stdout)
// and <node>.err (stderr), the files LogFiles() names for live logs; its cwd is
// the job's workspace (ExecutionRequest::workspace, by default
// <work_dir>/<job id>/workspace), also in COMPUTENET_WORKSPACE, with
// COMPUTENET_OUTPUT_DIR = <workspace>/output made for its results.
// With a Sandbox (sandbox.h) each node runs under bubblewrap inside its
// cgroup, with a clean environment (PATH, locale, TZ and the job's own
// variables; HOME = the workspace); a node killed by its cgroup's memory
// limit fails the job with a message saying so. kStarted's message says how
// the job is fenced.
// Cancel sends SIGTERM to the group, then SIGKILL after the grace period;
// a job past its max duration is stopped the same way and fails.
//
// WakeFd() is an epoll descriptor holding a pidfd (pidfd_open, Linux >= 5.3)
// per running child: it becomes readable as soon as a child exits, until
// Poll() reaps it. Where pidfds are unavailable (older kernels, seccomp) the
// child is still reaped by Poll() on the agent's tick, just not woken for.
//
// Supervision (so that a run outlives a crash of the agent and its end is
// still known): each node's process is started through a small supervisor,
// a fork of the agent that leaves the agent's session (setsid), keeps none
// of its descriptors, starts the job in its own process group, waits for it
// and writes how it ended (wait status, start and end ms) to
// <state_dir>/.supervisors/<job>/<attempt>.<node>.exit (written to a temporary
// file, fsync'ed, renamed). While it lives it holds an exclusive flock(2) on
// <attempt>.<node>.run (which records its pid and the start time): the lock,
// not the pid, says whether it is alive, so pid reuse cannot fool a
// restarted agent; signals to an adopted supervisor go through a pidfd,
// taken while the lock shows it alive. Signals to the job go through its
// supervisor: SIGTERM is forwarded as SIGTERM, SIGUSR1 as SIGKILL, to the
// job's process group. Adopt() takes such a run back after a restart. A
// run's files are removed at the Poll() after the one that reported its end
// (the agent has stored that end by then).
//
// Thread safety: not thread-safe; drive it from one thread (see Executor).
#ifndef COMPUTENET_PROVIDER_PROCESS_EXECUTOR_H_
#define COMPUTENET_PROVIDER_PROCESS_EXECUTOR_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "computenet/common/clock.h"
#include "computenet/provider/executor.h"
#include "computenet/provider/sandbox.h"

namespace computenet::provider {

struct ProcessExecutorOptions {
  // Directory for per-job output; created if missing. Required.
  std::string work_dir;
  // Clock used for start/end times (metering) and time limits.
  // SystemClock when null.
  std::shared_ptr<Clock> clock;
  // Grace between SIGTERM and SIGKILL when a job exceeds its max duration.
  // Default 5 s.
  int timeout_grace_ms = 5000;
  // Where the supervisors keep their records (see above); work_dir when
  // empty. Must survive the agent (the site's state directory).
  std::string state_dir;
  // Whether the destructor stops what still runs (SIGKILL through the
  // supervisors) and waits for it. false: the jobs run on, for the next
  // agent to Adopt() (e.g. across an upgrade of the agent).
  bool stop_jobs_on_destroy = true;
  // How jobs are fenced (Sandbox::Create). Null: no sandbox, jobs run
  // directly on the host (as [sandbox] mode = "none").
  std::shared_ptr<const Sandbox> sandbox;
};

class ProcessExecutor final : public Executor {
 public:
  explicit ProcessExecutor(ProcessExecutorOptions options);
  ~ProcessExecutor() override;  // see stop_jobs_on_destroy
  ProcessExecutor(const ProcessExecutor&) = delete;
  ProcessExecutor& operator=(const ProcessExecutor&) = delete;

  Status Start(const ExecutionRequest& request) override;
  Status Cancel(const std::string& job_id, int grace_ms) override;
  std::vector<ExecutionEvent> Poll() override;
  std::vector<std::string> ActiveJobs() const override;
  Status Adopt(const ExecutionRequest& request) override;
  int64_t ClockMs() const override { return options_.clock->NowMs(); }
  int WakeFd() const override { return epoll_fd_; }
  std::vector<LogFile> LogFiles(const std::string& job_id) const override;

  // Whether children are watched through pidfds (the wake descriptor works);
  // false on kernels without pidfd_open. For tests and diagnostics.
  bool wakes_on_exit() const { return pidfds_work_; }

 private:
  struct Child {
    pid_t pid = -1;  // the node's supervisor
    std::string node;
    bool exited = false;
    int wait_status = 0;  // the job process's, from the supervisor's record
    int pidfd = -1;  // in epoll_fd_ while the child is unreaped; -1: none
    bool ours = true;   // our child (else adopted after a restart)
    int lock_fd = -1;   // adopted: the run file, to test the supervisor's lock
    bool lost = false;  // the supervisor ended without a record
    int64_t start_ms = 0;  // from the supervisor's record
    int64_t end_ms = 0;
    std::string run_path;
    std::string exit_path;
    std::string cgroup;          // the node's cgroup name (sandbox)
    bool memory_killed = false;  // its cgroup's memory limit killed it
  };
  struct Job {
    ExecutionRequest request;
    std::vector<Child> children;
    int64_t start_ms = 0;
    bool adopted = false;           // times come from the supervisors' records
    bool stopping = false;          // SIGTERM sent
    int64_t kill_at_ms = 0;         // when SIGKILL follows
    v1::JobState stop_state = v1::JOB_STATE_UNSPECIFIED;
    std::string stop_reason;
    int32_t failed_exit = 0;  // first non-zero exit seen before stopping
    std::string failed_node;
  };
  // Why a node that exited with exit_code failed, for the job's status.
  std::string FailureText(const Job& job, const Child& child,
                          int32_t exit_code) const;
  std::string CgroupName(const ExecutionRequest& request,
                         const std::string& node) const;
  void Stop(Job& job, v1::JobState state, const std::string& reason,
            int grace_ms, int64_t now_ms);
  static void Signal(const Job& job, int signal);
  // Opens a pidfd for the child and adds it to epoll_fd_ (best effort).
  void Watch(Child& child);
  // Removes and closes the child's pidfd, if any.
  void Unwatch(Child& child);
  // Whether the child's supervisor has ended; reads its record then.
  bool Ended(Child& child);
  std::string RecordDir(const std::string& job_id) const;
  std::string RecordPath(const ExecutionRequest& request,
                         const std::string& node, const char* suffix) const;

  int epoll_fd_ = -1;
  bool pidfds_work_ = false;

  ProcessExecutorOptions options_;
  std::map<std::string, Job> jobs_;
  std::vector<ExecutionEvent> pending_;
  // Record files of runs whose end the last Poll() reported.
  std::vector<std::string> reported_records_;
  // cgroups of ended nodes still busy at their end (removed when empty).
  std::vector<std::string> stale_cgroups_;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_PROCESS_EXECUTOR_H_
