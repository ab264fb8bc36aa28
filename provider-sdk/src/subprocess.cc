#include "computenet/provider/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace computenet::provider {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Closes a descriptor once, on every path out.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd) {
    Close();
    fd_ = fd;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::vector<std::string> MergedEnvironment(
    const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text(*entry);
    auto eq = text.find('=');
    if (eq != std::string::npos && overrides.count(text.substr(0, eq)) != 0) {
      continue;
    }
    out.push_back(std::move(text));
  }
  for (const auto& [key, value] : overrides) out.push_back(key + "=" + value);
  return out;
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// Reads what is available from fd into out (up to limit; the rest is
// dropped). Returns false at end of file or on a hard error.
bool Drain(int fd, std::string* out, size_t limit, bool* truncated) {
  char buffer[16384];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      size_t room = out->size() < limit ? limit - out->size() : 0;
      size_t keep = std::min(room, static_cast<size_t>(n));
      out->append(buffer, keep);
      if (keep < static_cast<size_t>(n)) *truncated = true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

}  // namespace

StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return InvalidArgumentError("subprocess: empty argv");
  }
  for (const auto& arg : options.argv) {
    if (arg.find('\0') != std::string::npos) {
      return InvalidArgumentError("subprocess: argument contains NUL");
    }
  }
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return InternalError(std::string("subprocess: pipe: ") + std::strerror(errno));
  }
  Fd out_read(out_pipe[0]);
  Fd out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return InternalError(std::string("subprocess: pipe: ") + std::strerror(errno));
  }
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);

  std::vector<std::string> argv_storage = options.argv;
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = MergedEnvironment(options.env);
  std::vector<char*> envp;
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  // dup2 clears close-on-exec on the child's copies only.
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGTERM);
  sigaddset(&default_signals, SIGINT);
  sigaddset(&default_signals, SIGPIPE);
  sigaddset(&default_signals, SIGCHLD);
  posix_spawnattr_setsigdefault(&attributes, &default_signals);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP |
                                            POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETSIGMASK);
  const int64_t started = SteadyMs();
  pid_t pid = -1;
  int spawn_error = posix_spawnp(&pid, argv[0], &actions, &attributes,
                                 argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawn_error != 0) {
    std::string message = "cannot run '" + options.argv[0] +
                           "': " + std::strerror(spawn_error);
    if (spawn_error == ENOENT) return NotFoundError(message);
    return FailedPreconditionError(message);
  }
  out_write.Close();
  err_write.Close();
  ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_read.get(), F_SETFL, O_NONBLOCK);

  SubprocessResult result;
  const int64_t deadline = started + std::max(options.timeout_ms, 0);
  bool out_open = true;
  bool err_open = true;
  bool timed_out = false;
  while (out_open || err_open) {
    const int64_t left = deadline - SteadyMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2];
    nfds_t count = 0;
    if (out_open) fds[count++] = pollfd{out_read.get(), POLLIN, 0};
    if (err_open) fds[count++] = pollfd{err_read.get(), POLLIN, 0};
    int ready = ::poll(fds, count, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      const bool is_out = fds[i].fd == out_read.get();
      bool open = Drain(fds[i].fd, is_out ? &result.out : &result.err,
                        options.max_output_bytes, &result.truncated);
      if (!open) {
        if (is_out) {
          out_open = false;
          out_read.Close();
        } else {
          err_open = false;
          err_read.Close();
        }
      }
    }
  }
  int wait_status = 0;
  if (!timed_out) {
    // Both pipes closed: the child has exited or is about to; if it closed
    // them itself and lingers, the deadline still bounds the wait.
    while (true) {
      pid_t done = ::waitpid(pid, &wait_status, WNOHANG);
      if (done == pid) break;
      if (done < 0 && errno != EINTR) break;
      if (SteadyMs() >= deadline) {
        timed_out = true;
        break;
      }
      ::usleep(1000);
    }
  }
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    std::string err = result.err.substr(0, 512);
    return DeadlineExceededError(
        "'" + options.argv[0] + "' did not finish within " +
        std::to_string(options.timeout_ms) + " ms" +
        (err.empty() ? std::string() : ": " + err));
  }
  result.exit_code = ExitCodeOf(wait_status);
  result.elapsed_ms = SteadyMs() - started;
  return result;
}

}  // namespace computenet::provider
