#include "computenet/provider/process_executor.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>

#include "computenet/common/files.h"
#include "safe_path.h"

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
// A sandboxed job gets only the parent's PATH, locale and time zone: the
// agent's environment may hold credentials of its own.
std::vector<std::string> BuildEnvironment(
    const std::map<std::string, std::string>& overrides, bool sandboxed) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text(*entry);
    auto eq = text.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = text.substr(0, eq);
    if (sandboxed && key != "PATH" && key != "LANG" && key != "TZ" &&
        key.rfind("LC_", 0) != 0) {
      continue;
    }
    merged[key] = text.substr(eq + 1);
  }
  if (sandboxed && merged.count("PATH") == 0) {
    merged["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  }
  for (const auto& [key, value] : overrides) merged[key] = value;
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (const auto& [key, value] : merged) out.push_back(key + "=" + value);
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

// --- the supervisor --------------------------------------------------------
// Everything below that runs in a forked child uses async-signal-safe calls
// only (the agent has other threads: a fork copies none of them, and a lock
// one of them held stays held in the child), on memory prepared before the
// fork.

volatile sig_atomic_t g_supervised_pid = 0;  // in a supervisor process only

void ForwardToJob(int signal) {
  const pid_t job = g_supervised_pid;
  if (job > 0) ::kill(-job, signal == SIGUSR1 ? SIGKILL : SIGTERM);
}

int64_t RealtimeMs() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

// Appends "<key><value>\n" at out (room for it is the caller's business).
char* AppendField(char* out, const char* key, int64_t value) {
  while (*key != '\0') *out++ = *key++;
  char digits[24];
  int n = 0;
  const bool negative = value < 0;
  uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(value)
                                : static_cast<uint64_t>(value);
  do {
    digits[n++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0);
  if (negative) *out++ = '-';
  while (n > 0) *out++ = digits[--n];
  *out++ = '\n';
  return out;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t wrote = ::write(fd, data, size);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return false;
    data += wrote;
    size -= static_cast<size_t>(wrote);
  }
  return true;
}

void CloseAllExcept(int keep, int max_fd) {
#if defined(SYS_close_range)
  if (keep > 0 && ::syscall(SYS_close_range, 0u,
                            static_cast<unsigned>(keep - 1), 0u) != 0) {
    for (int fd = 0; fd < keep; ++fd) ::close(fd);
  }
  if (::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u) ==
      0) {
    return;
  }
#endif
  for (int fd = 0; fd < max_fd; ++fd) {
    if (fd != keep) ::close(fd);
  }
}

struct SuperviseArgs {
  int run_fd = -1;
  int max_fd = 1024;
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* job_dir = nullptr;  // the job's cwd: its workspace
  // cgroup.procs files the job joins before it execs (null-terminated).
  char* const* cgroup_procs = nullptr;
  const char* out_path = nullptr;  // the job's stdout
  const char* err_path = nullptr;  // and stderr
  const char* exit_tmp = nullptr;
  const char* exit_path = nullptr;
  const char* record_dir = nullptr;
};

[[noreturn]] void Supervise(const SuperviseArgs& args) {
  // Signals arrive blocked (Start) and stay so until the job's pid is known.
  ::setsid();  // out of the agent's session and process group
  CloseAllExcept(args.run_fd, args.max_fd);
  struct sigaction forward {};
  forward.sa_handler = ForwardToJob;
  sigemptyset(&forward.sa_mask);
  ::sigaction(SIGTERM, &forward, nullptr);
  ::sigaction(SIGUSR1, &forward, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGINT, &ignore, nullptr);
  ::sigaction(SIGHUP, &ignore, nullptr);
  ::sigaction(SIGPIPE, &ignore, nullptr);

  // The run record, before the job exists: a restarted agent that finds no
  // start in it knows for certain that the job never ran.
  char record[128];
  const int64_t start_ms = RealtimeMs();
  char* end = AppendField(record, "pid=", ::getpid());
  end = AppendField(end, "start_ms=", start_ms);
  if (::ftruncate(args.run_fd, 0) != 0 ||
      !WriteAll(args.run_fd, record, static_cast<size_t>(end - record))) {
    ::_exit(1);
  }
  ::fsync(args.run_fd);

  int status = 127 << 8;  // as a shell reports a command it cannot run
  const pid_t job = ::fork();
  if (job == 0) {
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    for (int signal : {SIGTERM, SIGUSR1, SIGINT, SIGHUP, SIGPIPE}) {
      ::sigaction(signal, &fallback, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setpgid(0, 0);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(args.out_path, O_WRONLY | O_CREAT | O_APPEND, 0640);
    const int err = ::open(args.err_path, O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (in >= 0) ::dup2(in, STDIN_FILENO);
    if (out >= 0) ::dup2(out, STDOUT_FILENO);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    if (in > STDERR_FILENO) ::close(in);
    if (out > STDERR_FILENO) ::close(out);
    if (err > STDERR_FILENO) ::close(err);
    ::close(args.run_fd);
    // Into the node's cgroups before anything of the job runs, so that all
    // it starts is inside its limits; a job the limits cannot hold does not
    // run ("0" is the writer itself, in v1 and v2).
    for (char* const* procs = args.cgroup_procs;
         procs != nullptr && *procs != nullptr; ++procs) {
      const int fd = ::open(*procs, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) {
        static const char kMessage[] =
            "computenet: cannot join the job's cgroup: ";
        WriteAll(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
        WriteAll(STDERR_FILENO, *procs, std::strlen(*procs));
        WriteAll(STDERR_FILENO, "\n", 1);
        ::_exit(126);
      }
      ::close(fd);
    }
    if (::chdir(args.job_dir) != 0) ::_exit(127);
    ::execve(args.program, args.argv, args.envp);
    ::_exit(127);
  }
  if (job > 0) {
    ::setpgid(job, job);  // also here: a signal may come before the child runs
    g_supervised_pid = job;
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    while (::waitpid(job, &status, 0) < 0 && errno == EINTR) {
    }
  }
  const int64_t end_ms = RealtimeMs();
  end = AppendField(record, "status=", status);
  end = AppendField(end, "start_ms=", start_ms);
  end = AppendField(end, "end_ms=", end_ms);
  const int fd =
      ::open(args.exit_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd >= 0) {
    WriteAll(fd, record, static_cast<size_t>(end - record));
    ::fsync(fd);
    ::close(fd);
    ::rename(args.exit_tmp, args.exit_path);
    const int dir = ::open(args.record_dir, O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  ::_exit(0);  // the lock on the run file goes with us
}

// "key=value" lines of a supervisor record.
std::map<std::string, int64_t> ReadRecord(const std::string& path) {
  std::map<std::string, int64_t> out;
  auto text = ReadFileToString(path);
  if (!text.ok()) return out;
  size_t begin = 0;
  while (begin < text->size()) {
    size_t line_end = text->find('\n', begin);
    if (line_end == std::string::npos) break;  // a torn last line: ignored
    const std::string line = text->substr(begin, line_end - begin);
    begin = line_end + 1;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    try {
      out[line.substr(0, eq)] = std::stoll(line.substr(eq + 1));
    } catch (const std::exception&) {
      continue;
    }
  }
  return out;
}

// Whether someone holds the lock on fd (the supervisor is alive).
bool LockHeld(int fd) {
  if (fd < 0) return false;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK;
}

// The program posix_spawnp would run for name (PATH of the agent), so that
// a missing command is refused at Start as before.
StatusOr<std::string> ResolveProgram(const std::string& name) {
  auto executable = [](const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    if (executable(name)) return name;
    return FailedPreconditionError("cannot start '" + name + "': " +
                                   std::strerror(errno ? errno : ENOENT));
  }
  const char* env_path = std::getenv("PATH");
  const std::string search = env_path != nullptr ? env_path : "/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= search.size()) {
    size_t colon = search.find(':', begin);
    if (colon == std::string::npos) colon = search.size();
    std::string dir = search.substr(begin, colon - begin);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (executable(candidate)) return candidate;
    begin = colon + 1;
  }
  return FailedPreconditionError("cannot start '" + name +
                                 "': No such file or directory");
}

// How long Adopt waits for a live supervisor's first record.
constexpr int kRecordWaitMs = 2000;

int PidfdSendSignal(int pidfd, int signal) {
#if defined(SYS_pidfd_send_signal)
  return static_cast<int>(
      ::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
#else
  (void)pidfd;
  (void)signal;
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

ProcessExecutor::ProcessExecutor(ProcessExecutorOptions options)
    : options_(std::move(options)) {
  if (!options_.clock) options_.clock = SystemClock::Shared();
  if (options_.state_dir.empty()) options_.state_dir = options_.work_dir;
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
  const bool stop = options_.stop_jobs_on_destroy;
  for (auto& [job_id, job] : jobs_) {
    if (stop) Signal(job, SIGKILL);
    for (auto& child : job.children) {
      // Our supervisors end once their job has; adopted ones are not ours
      // to wait for.
      if (stop && !child.exited && child.ours) {
        ::waitpid(child.pid, nullptr, 0);
      }
      Unwatch(child);
      if (child.lock_fd >= 0) ::close(child.lock_fd);
    }
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

std::string ProcessExecutor::RecordDir(const std::string& job_id) const {
  // A dot name: SafePathPart never makes one, so no job's name is taken.
  return (std::filesystem::path(options_.state_dir) / ".supervisors" /
          SafePathPart(job_id))
      .string();
}

std::string ProcessExecutor::RecordPath(const ExecutionRequest& request,
                                        const std::string& node,
                                        const char* suffix) const {
  return RecordDir(request.job_id) + "/" + std::to_string(request.attempt) +
         "." + SafePathPart(node) + suffix;
}

void ProcessExecutor::Watch(Child& child) {
  if (!pidfds_work_) return;
  // Our unreaped child cannot have had its pid reused. An adopted
  // supervisor is checked by its lock after the pidfd is taken: alive then,
  // the pidfd is its own.
  const int pidfd = PidfdOpen(child.pid);
  if (pidfd < 0) {
    if (child.ours) {
      spdlog::warn("pidfd_open({}): {}; its exit is noticed on the tick",
                   child.pid, std::strerror(errno));
    }
    return;
  }
  if (!child.ours && !LockHeld(child.lock_fd)) {
    ::close(pidfd);
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
  // The supervisor forwards to the job's process group: SIGTERM as it is,
  // SIGUSR1 as SIGKILL (SIGKILL itself would kill the supervisor).
  const int to_supervisor = signal == SIGKILL ? SIGUSR1 : signal;
  for (const auto& child : job.children) {
    if (child.exited || child.pid <= 0) continue;
    if (child.pidfd >= 0 && PidfdSendSignal(child.pidfd, to_supervisor) == 0) {
      continue;
    }
    // Our unreaped child's pid is its own; an adopted one's only while its
    // lock shows it alive (a pid reused in between is not ruled out here,
    // only where pidfds are unavailable).
    if (child.ours || LockHeld(child.lock_fd)) ::kill(child.pid, to_supervisor);
  }
}

bool ProcessExecutor::Ended(Child& child) {
  if (child.ours) {
    int status = 0;
    const pid_t done = ::waitpid(child.pid, &status, WNOHANG);
    if (done == 0) return false;
    if (done < 0 && errno != ECHILD) return false;
  } else if (LockHeld(child.lock_fd)) {
    return false;
  }
  auto record = ReadRecord(child.exit_path);
  if (record.count("status") == 0) {
    child.lost = true;
    child.wait_status = 0;
    spdlog::warn("supervisor of node {} ended without a record ({})",
                 child.node, child.exit_path);
  } else {
    child.wait_status = static_cast<int>(record["status"]);
    child.start_ms = record["start_ms"];
    child.end_ms = record["end_ms"];
  }
  return true;
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
  const std::string record_dir = RecordDir(request.job_id);
  std::filesystem::create_directories(record_dir, error);
  if (error) {
    return FailedPreconditionError("cannot create " + record_dir + ": " +
                                   error.message());
  }
  CN_ASSIGN_OR_RETURN(const std::string program,
                      ResolveProgram(request.spec.command(0)));
  const std::filesystem::path workspace =
      request.workspace.empty() ? job_dir / "workspace"
                                : std::filesystem::path(request.workspace);
  const std::filesystem::path output_dir = workspace / "output";
  std::filesystem::create_directories(output_dir, error);
  if (error) {
    return FailedPreconditionError("cannot create " + output_dir.string() +
                                   ": " + error.message());
  }
  const Sandbox* sandbox = options_.sandbox.get();
  const bool sandboxed =
      sandbox != nullptr &&
      sandbox->options().mode == SandboxOptions::Mode::kBwrap;
  // Each node's command line and cgroups, all prepared before any node
  // starts: a gang runs whole or not at all.
  std::vector<SandboxedCommand> commands;
  std::vector<std::string> cgroups;
  const std::vector<std::string> command(request.spec.command().begin(),
                                         request.spec.command().end());
  for (const auto& assignment : request.assignments) {
    const std::vector<uint32_t> devices(assignment.device_indices().begin(),
                                        assignment.device_indices().end());
    if (sandbox == nullptr) {
      SandboxedCommand plain;
      plain.program = program;
      plain.argv = command;
      plain.description = "sandbox: none (the job runs unfenced on the host)";
      commands.push_back(std::move(plain));
      cgroups.emplace_back();
      continue;
    }
    const std::string cgroup = CgroupName(request, assignment.node());
    auto prepared = sandbox->Prepare(program, command, workspace.string(),
                                     request.spec, devices, cgroup);
    if (!prepared.ok()) {
      for (const auto& made : cgroups) sandbox->RemoveCgroup(made);
      sandbox->RemoveCgroup(cgroup);
      return Status(prepared.status().code(),
                    "job " + request.job_id + ": " +
                        prepared.status().message());
    }
    commands.push_back(std::move(*prepared));
    cgroups.push_back(cgroup);
  }

  Job job;
  job.request = request;
  job.start_ms = options_.clock->NowMs();
  const std::vector<std::string>& argv_storage = command;
  const long open_max = ::sysconf(_SC_OPEN_MAX);
  const int max_fd =
      open_max <= 0 || open_max > 65536 ? 65536 : static_cast<int>(open_max);

  const int num_nodes = static_cast<int>(request.assignments.size());
  for (int rank = 0; rank < num_nodes; ++rank) {
    const auto& assignment = request.assignments[static_cast<size_t>(rank)];
    std::map<std::string, std::string> vars(request.spec.env().begin(),
                                            request.spec.env().end());
    // Secret env: only here, in the environment handed to execve (the
    // broker and the agent's state keep the names alone).
    for (const auto& [name, value] : request.spec.secret_env()) {
      vars[name] = value;
    }
    const std::string devices = JoinIndices(assignment);
    vars["CUDA_VISIBLE_DEVICES"] = devices;
    vars["COMPUTENET_DEVICES"] = devices;
    vars["COMPUTENET_JOB_ID"] = request.job_id;
    vars["COMPUTENET_NODE"] = assignment.node();
    vars["COMPUTENET_NODE_RANK"] = std::to_string(rank);
    vars["COMPUTENET_NUM_NODES"] = std::to_string(num_nodes);
    vars["COMPUTENET_MODEL"] = request.model;
    vars["COMPUTENET_WORKSPACE"] = workspace.string();
    vars["COMPUTENET_OUTPUT_DIR"] = output_dir.string();
    if (sandboxed) {
      // The host's HOME is not inside; TMPDIR is the private /tmp.
      vars["HOME"] = workspace.string();
      vars["TMPDIR"] = "/tmp";
    }
    // A fractional placement: the share of the card the job may use.
    if (assignment.milli() > 0) {
      vars["COMPUTENET_GPU_MILLI"] = std::to_string(assignment.milli());
    }
    std::vector<std::string> env_storage = BuildEnvironment(vars, sandboxed);
    SandboxedCommand& node_command = commands[static_cast<size_t>(rank)];
    std::vector<char*> argv;
    for (auto& arg : node_command.argv) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::vector<char*> cgroup_procs;
    for (auto& path : node_command.cgroup_procs) {
      cgroup_procs.push_back(path.data());
    }
    cgroup_procs.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& entry : env_storage) envp.push_back(entry.data());
    envp.push_back(nullptr);

    Child child;
    child.node = assignment.node();
    child.cgroup = cgroups[static_cast<size_t>(rank)];
    child.run_path = RecordPath(request, assignment.node(), ".run");
    child.exit_path = RecordPath(request, assignment.node(), ".exit");
    const std::string exit_tmp = child.exit_path + ".tmp";
    const std::string out_path =
        (job_dir / (SafePathPart(assignment.node()) + ".out")).string();
    const std::string err_path =
        (job_dir / (SafePathPart(assignment.node()) + ".err")).string();
    // The job runs in its workspace (its inputs are there); its output
    // files stay in the job directory beside it.
    const std::string job_dir_text = workspace.string();
    ::unlink(child.exit_path.c_str());  // of an earlier try of this run
    // Locked here, before the fork, and inherited: there is no moment at
    // which the supervisor exists without holding it.
    const int run_fd = ::open(child.run_path.c_str(),
                              O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    const bool locked = run_fd >= 0 && ::flock(run_fd, LOCK_EX | LOCK_NB) == 0;
    pid_t pid = -1;
    int spawn_error = 0;
    if (locked) {
      SuperviseArgs args;
      args.run_fd = run_fd;
      args.max_fd = max_fd;
      args.program = node_command.program.c_str();
      args.argv = argv.data();
      args.cgroup_procs = cgroup_procs.data();
      args.envp = envp.data();
      args.job_dir = job_dir_text.c_str();
      args.out_path = out_path.c_str();
      args.err_path = err_path.c_str();
      args.exit_tmp = exit_tmp.c_str();
      args.exit_path = child.exit_path.c_str();
      args.record_dir = record_dir.c_str();
      // Signals stay blocked across the fork: one that came before the
      // supervisor installed its handlers would kill it with our
      // dispositions (it sees them once it forwards them).
      sigset_t all;
      sigset_t before;
      sigfillset(&all);
      ::pthread_sigmask(SIG_SETMASK, &all, &before);
      pid = ::fork();
      if (pid == 0) Supervise(args);
      if (pid < 0) spawn_error = errno;
      ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    } else {
      spawn_error = errno;
    }
    if (run_fd >= 0) ::close(run_fd);  // the supervisor keeps the lock
    if (pid < 0) {
      // Take down the nodes already started: a gang runs whole or not at all.
      Signal(job, SIGKILL);
      for (auto& started : job.children) {
        ::waitpid(started.pid, nullptr, 0);
        Unwatch(started);
      }
      if (sandbox != nullptr) {
        for (const auto& made : cgroups) sandbox->RemoveCgroup(made);
      }
      return FailedPreconditionError("cannot start '" + argv_storage[0] +
                                     "': " + std::strerror(spawn_error));
    }
    child.pid = pid;
    job.children.push_back(std::move(child));
    Watch(job.children.back());
  }
  spdlog::info("job {} started: {} process(es), output in {}, {}",
               request.job_id, job.children.size(), job_dir.string(),
               commands.front().description);
  ExecutionEvent started;
  started.kind = ExecutionEvent::Kind::kStarted;
  started.job_id = request.job_id;
  started.start_ms = job.start_ms;
  started.message = commands.front().description;
  jobs_.emplace(request.job_id, std::move(job));
  pending_.push_back(std::move(started));
  return OkStatus();
}

Status ProcessExecutor::Adopt(const ExecutionRequest& request) {
  if (jobs_.count(request.job_id) != 0) {
    return AlreadyExistsError("job " + request.job_id + " is already tracked");
  }
  Job job;
  job.request = request;
  job.adopted = true;
  bool any_started = false;
  int64_t start_ms = 0;
  for (const auto& assignment : request.assignments) {
    Child child;
    child.ours = false;
    child.node = assignment.node();
    if (options_.sandbox != nullptr) {
      child.cgroup = CgroupName(request, assignment.node());
    }
    child.run_path = RecordPath(request, assignment.node(), ".run");
    child.exit_path = RecordPath(request, assignment.node(), ".exit");
    child.lock_fd = ::open(child.run_path.c_str(), O_RDONLY | O_CLOEXEC);
    auto run = ReadRecord(child.run_path);
    bool alive = LockHeld(child.lock_fd);
    // A supervisor forked an instant before the agent died may not have
    // written its record yet (it does so first thing): give it a moment,
    // or it could not be signalled.
    for (int waited_ms = 0;
         alive && run.count("start_ms") == 0 && waited_ms < kRecordWaitMs;
         waited_ms += 10) {
      ::usleep(10'000);
      run = ReadRecord(child.run_path);
      alive = LockHeld(child.lock_fd);
    }
    if (run.count("start_ms") == 0 && !alive) {
      // No supervisor ever reached the job's start on this node.
      child.exited = true;
      child.wait_status = 127 << 8;
      job.children.push_back(std::move(child));
      continue;
    }
    any_started = true;
    child.pid = static_cast<pid_t>(run.count("pid") ? run["pid"] : -1);
    child.start_ms =
        run.count("start_ms") ? run["start_ms"] : options_.clock->NowMs();
    if (start_ms == 0 || child.start_ms < start_ms) start_ms = child.start_ms;
    job.children.push_back(std::move(child));
    if (alive && job.children.back().pid > 0) Watch(job.children.back());
  }
  if (!any_started) {
    for (auto& child : job.children) {
      if (child.lock_fd >= 0) ::close(child.lock_fd);
    }
    return NotFoundError("job " + request.job_id + " never started here");
  }
  job.start_ms = start_ms;
  spdlog::info("job {}: took back {} process(es) after a restart",
               request.job_id, job.children.size());
  ExecutionEvent started;
  started.kind = ExecutionEvent::Kind::kStarted;
  started.job_id = request.job_id;
  started.start_ms = start_ms;
  started.model = request.model;
  if (options_.sandbox != nullptr) {
    started.message = options_.sandbox->Describe(
        request.spec,
        static_cast<uint32_t>(request.assignments.front().device_indices_size()));
  }
  for (const auto& assignment : request.assignments) {
    started.cards += static_cast<uint32_t>(assignment.device_indices_size());
  }
  jobs_.emplace(request.job_id, std::move(job));
  pending_.push_back(std::move(started));
  return OkStatus();
}

std::string ProcessExecutor::CgroupName(const ExecutionRequest& request,
                                        const std::string& node) const {
  // Prefixed by a hash of the state directory: agents (and tests) sharing
  // a host's cgroup tree never share a job's cgroup, and a restarted agent
  // (same state directory) finds the one it made. libstdc++'s std::hash of
  // a string is unseeded, so the name is stable across restarts.
  char prefix[17];
  std::snprintf(prefix, sizeof(prefix), "%016zx",
                std::hash<std::string>{}(options_.state_dir));
  return std::string(prefix, 8) + "." + SafePathPart(request.job_id) + "." +
         std::to_string(request.attempt) + "." + SafePathPart(node);
}

std::string ProcessExecutor::FailureText(const Job& job, const Child& child,
                                         int32_t exit_code) const {
  uint32_t cards = 0;
  for (const auto& assignment : job.request.assignments) {
    if (assignment.node() == child.node) {
      cards = static_cast<uint32_t>(assignment.device_indices_size());
    }
  }
  const SandboxLimits limits =
      options_.sandbox->LimitsFor(job.request.spec, cards);
  return "killed by the sandbox: exceeded its memory limit of " +
         std::to_string(limits.memory_mib) + " MiB on node " + child.node +
         " (exit " + std::to_string(exit_code) + ")";
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
  // The agent stored the ends reported last time before it polled again.
  for (const auto& path : reported_records_) {
    // The run's own files only: a rerun of the job may have started since.
    ::unlink(path.c_str());
    ::rmdir(std::filesystem::path(path).parent_path().c_str());  // if empty
  }
  reported_records_.clear();
  if (options_.sandbox != nullptr && !stale_cgroups_.empty()) {
    std::vector<std::string> busy;
    for (const auto& name : stale_cgroups_) {
      if (!options_.sandbox->RemoveCgroup(name)) busy.push_back(name);
    }
    stale_cgroups_.swap(busy);
  }
  const int64_t now = options_.clock->NowMs();
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = it->second;
    bool all_exited = true;
    for (auto& child : job.children) {
      if (!child.exited && Ended(child)) {
        child.exited = true;
        Unwatch(child);
        if (options_.sandbox != nullptr && !child.cgroup.empty()) {
          const int32_t code = ExitCodeOf(child.wait_status);
          child.memory_killed = code != 0 && options_.sandbox->MemoryLimitHit(
                                                 child.cgroup,
                                                 code == 128 + SIGKILL);
          if (!options_.sandbox->RemoveCgroup(child.cgroup)) {
            stale_cgroups_.push_back(child.cgroup);
          }
        }
        if (child.lock_fd >= 0) {
          ::close(child.lock_fd);
          child.lock_fd = -1;
        }
        // The first node to fail on its own is the cause; codes of nodes
        // we stopped afterwards (143, 137) are consequences.
        if (!job.stopping && job.failed_exit == 0 && !child.lost &&
            ExitCodeOf(child.wait_status) != 0) {
          job.failed_exit = ExitCodeOf(child.wait_status);
          job.failed_node = child.node;
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
      if (child.exited && !child.lost && ExitCodeOf(child.wait_status) != 0) {
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
        const Child* failed = nullptr;
        for (const auto& child : job.children) {
          if (child.node == failed_node) failed = &child;
        }
        Stop(job, v1::JOB_STATE_FAILED,
             failed != nullptr && failed->memory_killed
                 ? FailureText(job, *failed, failed_exit)
                 : "node " + failed_node + " exited with " +
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
    finished.model = job.request.model;
    finished.start_ms = job.start_ms;
    finished.end_ms = std::max(now, job.start_ms);
    std::string lost_node;
    if (job.adopted) {
      // It ran (and maybe ended) while no agent watched: the supervisors'
      // own clocks are the only witnesses.
      int64_t end_ms = job.start_ms;
      for (const auto& child : job.children) {
        end_ms = std::max(end_ms, child.end_ms);
        if (child.lost) lost_node = child.node;
      }
      finished.end_ms = end_ms;
    }
    for (const auto& assignment : job.request.assignments) {
      finished.cards += static_cast<uint32_t>(assignment.device_indices_size());
    }
    finished.exit_code = failed_exit;
    if (job.stopping) {
      finished.final_state = job.stop_state;
      finished.message = job.stop_reason;
      if (failed_exit == 0) finished.exit_code = -1;
    } else if (!lost_node.empty() && failed_exit == 0) {
      finished.final_state = v1::JOB_STATE_FAILED;
      finished.exit_code = -1;
      finished.message = "the supervisor of node " + lost_node +
                         " ended without recording how the job ended";
    } else if (failed_exit == 0) {
      finished.final_state = v1::JOB_STATE_SUCCEEDED;
    } else {
      finished.final_state = v1::JOB_STATE_FAILED;
      finished.message = "exited with " + std::to_string(failed_exit) +
                         " on node " + failed_node;
      for (const auto& child : job.children) {
        if (child.node == failed_node && child.memory_killed) {
          finished.message = FailureText(job, child, failed_exit);
        }
      }
    }
    spdlog::info("job {} finished: exit {} {}", finished.job_id,
                 finished.exit_code, finished.message);
    for (const auto& child : job.children) {
      reported_records_.push_back(child.run_path);
      reported_records_.push_back(child.exit_path);
    }
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

std::vector<LogFile> ProcessExecutor::LogFiles(
    const std::string& job_id) const {
  std::vector<LogFile> files;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return files;
  const std::filesystem::path job_dir =
      std::filesystem::path(options_.work_dir) / SafePathPart(job_id);
  for (const auto& assignment : it->second.request.assignments) {
    const std::string base = SafePathPart(assignment.node());
    files.push_back({assignment.node(), v1::LOG_STREAM_STDOUT,
                     (job_dir / (base + ".out")).string()});
    files.push_back({assignment.node(), v1::LOG_STREAM_STDERR,
                     (job_dir / (base + ".err")).string()});
  }
  return files;
}

}  // namespace computenet::provider
