// ProcessExecutor: runs each placement as real child processes on this
// machine, one per node of the placement, each in its own process group,
// with its assigned devices in the environment:
//   CUDA_VISIBLE_DEVICES     device indices on that node, e.g. "0,1"
//   COMPUTENET_DEVICES       the same, vendor-neutral
//   COMPUTENET_JOB_ID, COMPUTENET_NODE, COMPUTENET_NODE_RANK,
//   COMPUTENET_NUM_NODES, COMPUTENET_MODEL
// Output of each process goes to <work_dir>/<job id>/<node>.log.
// Cancel sends SIGTERM to the group, then SIGKILL after the grace period;
// a job past its max duration is stopped the same way and fails.
//
// WakeFd() is an epoll descriptor holding a pidfd (pidfd_open, Linux >= 5.3)
// per running child: it becomes readable as soon as a child exits, until
// Poll() reaps it. Where pidfds are unavailable (older kernels, seccomp) the
// child is still reaped by Poll() on the agent's tick, just not woken for.
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
};

class ProcessExecutor final : public Executor {
 public:
  explicit ProcessExecutor(ProcessExecutorOptions options);
  ~ProcessExecutor() override;  // kills what still runs
  ProcessExecutor(const ProcessExecutor&) = delete;
  ProcessExecutor& operator=(const ProcessExecutor&) = delete;

  Status Start(const ExecutionRequest& request) override;
  Status Cancel(const std::string& job_id, int grace_ms) override;
  std::vector<ExecutionEvent> Poll() override;
  std::vector<std::string> ActiveJobs() const override;
  int64_t ClockMs() const override { return options_.clock->NowMs(); }
  int WakeFd() const override { return epoll_fd_; }

  // Whether children are watched through pidfds (the wake descriptor works);
  // false on kernels without pidfd_open. For tests and diagnostics.
  bool wakes_on_exit() const { return pidfds_work_; }

 private:
  struct Child {
    pid_t pid = -1;
    std::string node;
    bool exited = false;
    int wait_status = 0;
    int pidfd = -1;  // in epoll_fd_ while the child is unreaped; -1: none
  };
  struct Job {
    ExecutionRequest request;
    std::vector<Child> children;
    int64_t start_ms = 0;
    bool stopping = false;          // SIGTERM sent
    int64_t kill_at_ms = 0;         // when SIGKILL follows
    v1::JobState stop_state = v1::JOB_STATE_UNSPECIFIED;
    std::string stop_reason;
    int32_t failed_exit = 0;  // first non-zero exit seen before stopping
    std::string failed_node;
  };
  void Stop(Job& job, v1::JobState state, const std::string& reason,
            int grace_ms, int64_t now_ms);
  static void Signal(const Job& job, int signal);
  // Opens a pidfd for the child and adds it to epoll_fd_ (best effort).
  void Watch(Child& child);
  // Removes and closes the child's pidfd, if any.
  void Unwatch(Child& child);

  int epoll_fd_ = -1;
  bool pidfds_work_ = false;

  ProcessExecutorOptions options_;
  std::map<std::string, Job> jobs_;
  std::vector<ExecutionEvent> pending_;
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_PROCESS_EXECUTOR_H_
