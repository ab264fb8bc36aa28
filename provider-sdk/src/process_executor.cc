#include "computenet/provider/process_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace computenet::provider {
namespace {

std::string JoinIndices(const v1::NodeAssignment& assignment) {
  std::string out;
  for (uint32_t index : assignment.device_indices()) {
    if (!out.empty()) out += ",";
    out += std::to_string(index);
  }
  return out;
}

// The parent's environment, with job variables layered on top (later wins).
std::vector<std::string> BuildEnvironment(
    const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text(*entry);
    auto eq = text.find('=');
    if (eq == std::string::npos) continue;
    merged[text.substr(0, eq)] = text.substr(eq + 1);
  }
  for (const auto& [key, value] : overrides) merged[key] = value;
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (const auto& [key, value] : merged) out.push_back(key + "=" + value);
  return out;
}

// Job ids become directory names: keep them to a safe alphabet.
std::string SafePathPart(const std::string& text) {
  std::string out;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

// pidfd_open(2) through syscall(2): glibc before 2.36 has no wrapper, and
// the kernel may lack it (ENOSYS before Linux 5.3). The descriptor is always
// close-on-exec. Returns -1 (errno set) where unavailable.
int PidfdOpen(pid_t pid) {
#if defined(SYS_pidfd_open)
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

int32_t ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

}  // namespace

ProcessExecutor::ProcessExecutor(ProcessExecutorOptions options)
    : options_(std::move(options)) {
  if (!options_.clock) options_.clock = SystemClock::Shared();
  // One epoll set of the children's pidfds is the single wake descriptor.
  // Probe pidfd_open on ourselves first: without it the set would never
  // become readable, and the agent is better off not polling it.
  const int probe = PidfdOpen(::getpid());
  if (probe < 0) {
    spdlog::info("pidfd_open unavailable ({}): job exits are noticed on the "
                 "agent's tick",
                 std::strerror(errno));
    return;
  }
  ::close(probe);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    spdlog::warn("epoll_create1: {}; job exits are noticed on the agent's tick",
                 std::strerror(errno));
    return;
  }
  pidfds_work_ = true;
}

ProcessExecutor::~ProcessExecutor() {
  for (auto& [job_id, job] : jobs_) {
    Signal(job, SIGKILL);
    for (auto& child : job.children) {
      if (!child.exited) ::waitpid(child.pid, nullptr, 0);
      Unwatch(child);
    }
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void ProcessExecutor::Watch(Child& child) {
  if (!pidfds_work_) return;
  // The child is ours and not reaped yet, so its pid cannot have been reused.
  const int pidfd = PidfdOpen(child.pid);
  if (pidfd < 0) {
    spdlog::warn("pidfd_open({}): {}; its exit is noticed on the tick",
                 child.pid, std::strerror(errno));
    return;
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = pidfd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, pidfd, &event) != 0) {
    spdlog::warn("epoll_ctl(ADD, pidfd of {}): {}; its exit is noticed on the "
                 "tick",
                 child.pid, std::strerror(errno));
    ::close(pidfd);
    return;
  }
  child.pidfd = pidfd;
}

void ProcessExecutor::Unwatch(Child& child) {
  if (child.pidfd < 0) return;
  // A pidfd stays readable after its process is reaped: take it out of the
  // set, or the wake descriptor would stay readable for ever.
  (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, child.pidfd, nullptr);
  ::close(child.pidfd);
  child.pidfd = -1;
}

void ProcessExecutor::Signal(const Job& job, int signal) {
  for (const auto& child : job.children) {
    // Each child leads its own process group: the whole tree gets it.
    if (!child.exited) ::kill(-child.pid, signal);
  }
}

Status ProcessExecutor::Start(const ExecutionRequest& request) {
  if (jobs_.count(request.job_id) != 0) {
    return AlreadyExistsError("job " + request.job_id + " is already running");
  }
  if (request.spec.command().empty() || request.assignments.empty()) {
    return InvalidArgumentError("job " + request.job_id +
                                " has no command or no assignment");
  }
  std::error_code error;
  const std::filesystem::path job_dir =
      std::filesystem::path(options_.work_dir) / SafePathPart(request.job_id);
  std::filesystem::create_directories(job_dir, error);
  if (error) {
    return FailedPreconditionError("cannot create " + job_dir.string() + ": " +
                                   error.message());
  }

  Job job;
  job.request = request;
  job.start_ms = options_.clock->NowMs();
  std::vector<std::string> argv_storage(request.spec.command().begin(),
                                        request.spec.command().end());
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const int num_nodes = static_cast<int>(request.assignments.size());
  for (int rank = 0; rank < num_nodes; ++rank) {
    const auto& assignment = request.assignments[static_cast<size_t>(rank)];
    std::map<std::string, std::string> vars(request.spec.env().begin(),
                                            request.spec.env().end());
    const std::string devices = JoinIndices(assignment);
    vars["CUDA_VISIBLE_DEVICES"] = devices;
    vars["COMPUTENET_DEVICES"] = devices;
    vars["COMPUTENET_JOB_ID"] = request.job_id;
    vars["COMPUTENET_NODE"] = assignment.node();
    vars["COMPUTENET_NODE_RANK"] = std::to_string(rank);
    vars["COMPUTENET_NUM_NODES"] = std::to_string(num_nodes);
    vars["COMPUTENET_MODEL"] = request.model;
    // A fractional placement: the share of the card the job may use.
    if (assignment.milli() > 0) {
      vars["COMPUTENET_GPU_MILLI"] = std::to_string(assignment.milli());
    }
    std::vector<std::string> env_storage = BuildEnvironment(vars);
    std::vector<char*> envp;
    for (auto& entry : env_storage) envp.push_back(entry.data());
    envp.push_back(nullptr);

    const std::string log_path =
        (job_dir / (SafePathPart(assignment.node()) + ".log")).string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                     O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0640);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addchdir_np(&actions, job_dir.c_str());
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setpgroup(&attributes, 0);
    sigset_t default_signals;
    sigemptyset(&default_signals);
    sigaddset(&default_signals, SIGTERM);
    sigaddset(&default_signals, SIGINT);
    sigaddset(&default_signals, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &default_signals);
    sigset_t no_signals;
    sigemptyset(&no_signals);
    posix_spawnattr_setsigmask(&attributes, &no_signals);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP |
                                              POSIX_SPAWN_SETSIGDEF |
                                              POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    int spawn_error = posix_spawnp(&pid, argv[0], &actions, &attributes,
                                   argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (spawn_error != 0) {
      // Take down the nodes already started: a gang runs whole or not at all.
      Signal(job, SIGKILL);
      for (auto& child : job.children) {
        ::waitpid(child.pid, nullptr, 0);
        Unwatch(child);
      }
      return FailedPreconditionError("cannot start '" + argv_storage[0] +
                                     "': " + std::strerror(spawn_error));
    }
    job.children.push_back(Child{pid, assignment.node(), false, 0, -1});
    Watch(job.children.back());
  }
  spdlog::info("job {} started: {} process(es), output in {}", request.job_id,
               job.children.size(), job_dir.string());
  ExecutionEvent started;
  started.kind = ExecutionEvent::Kind::kStarted;
  started.job_id = request.job_id;
  started.start_ms = job.start_ms;
  jobs_.emplace(request.job_id, std::move(job));
  pending_.push_back(std::move(started));
  return OkStatus();
}

void ProcessExecutor::Stop(Job& job, v1::JobState state,
                           const std::string& reason, int grace_ms,
                           int64_t now_ms) {
  if (job.stopping) return;
  job.stopping = true;
  job.stop_state = state;
  job.stop_reason = reason;
  job.kill_at_ms = now_ms + grace_ms;
  Signal(job, SIGTERM);
}

Status ProcessExecutor::Cancel(const std::string& job_id, int grace_ms) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return NotFoundError("job " + job_id + " not running");
  Stop(it->second, v1::JOB_STATE_CANCELLED, "cancelled", grace_ms,
       options_.clock->NowMs());
  return OkStatus();
}

std::vector<ExecutionEvent> ProcessExecutor::Poll() {
  const int64_t now = options_.clock->NowMs();
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = it->second;
    bool all_exited = true;
    for (auto& child : job.children) {
      if (!child.exited) {
        pid_t done = ::waitpid(child.pid, &child.wait_status, WNOHANG);
        if (done == child.pid || (done < 0 && errno == ECHILD)) {
          child.exited = true;
          Unwatch(child);
          // The first node to fail on its own is the cause; codes of nodes
          // we stopped afterwards (143, 137) are consequences.
          if (!job.stopping && job.failed_exit == 0 &&
              ExitCodeOf(child.wait_status) != 0) {
            job.failed_exit = ExitCodeOf(child.wait_status);
            job.failed_node = child.node;
          }
        }
      }
      if (!child.exited) all_exited = false;
    }
    // The cause if a node failed on its own; else what stopping did to the
    // first node (e.g. 143 after SIGTERM).
    int32_t failed_exit = job.failed_exit;
    std::string failed_node = job.failed_node;
    for (const auto& child : job.children) {
      if (failed_exit != 0) break;
      if (child.exited && ExitCodeOf(child.wait_status) != 0) {
        failed_exit = ExitCodeOf(child.wait_status);
        failed_node = child.node;
      }
    }
    const auto& spec = job.request.spec;
    if (!all_exited) {
      if (!job.stopping && spec.max_duration_s() > 0 &&
          now - job.start_ms >
              static_cast<int64_t>(spec.max_duration_s()) * 1000) {
        Stop(job, v1::JOB_STATE_FAILED,
             "exceeded max duration of " +
                 std::to_string(spec.max_duration_s()) + " s",
             options_.timeout_grace_ms, now);
      } else if (!job.stopping && failed_exit != 0) {
        // One node of a gang failed: the rest cannot finish the work.
        Stop(job, v1::JOB_STATE_FAILED,
             "node " + failed_node + " exited with " +
                 std::to_string(failed_exit),
             options_.timeout_grace_ms, now);
      } else if (job.stopping && now >= job.kill_at_ms) {
        Signal(job, SIGKILL);
      }
      ++it;
      continue;
    }
    ExecutionEvent finished;
    finished.kind = ExecutionEvent::Kind::kFinished;
    finished.job_id = it->first;
    finished.start_ms = job.start_ms;
    finished.end_ms = std::max(now, job.start_ms);
    for (const auto& assignment : job.request.assignments) {
      finished.cards += static_cast<uint32_t>(assignment.device_indices_size());
    }
    finished.exit_code = failed_exit;
    if (job.stopping) {
      finished.final_state = job.stop_state;
      finished.message = job.stop_reason;
      if (failed_exit == 0) finished.exit_code = -1;
    } else if (failed_exit == 0) {
      finished.final_state = v1::JOB_STATE_SUCCEEDED;
    } else {
      finished.final_state = v1::JOB_STATE_FAILED;
      finished.message = "exited with " + std::to_string(failed_exit) +
                         " on node " + failed_node;
    }
    spdlog::info("job {} finished: exit {} {}", finished.job_id,
                 finished.exit_code, finished.message);
    pending_.push_back(std::move(finished));
    it = jobs_.erase(it);
  }
  std::vector<ExecutionEvent> out;
  out.swap(pending_);
  return out;
}

std::vector<std::string> ProcessExecutor::ActiveJobs() const {
  std::vector<std::string> out;
  for (const auto& [job_id, job] : jobs_) out.push_back(job_id);
  return out;
}

}  // namespace computenet::provider
