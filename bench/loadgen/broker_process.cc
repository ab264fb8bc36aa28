// BrokerProcess: the broker as a child process, and /proc readings (see
// broker_process.h).
#include "broker_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

namespace computenet::loadgen {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Fields after the command name in /proc/.../stat (the name may hold
// spaces, so split after the last ')'): [0] is field 3 (state).
std::vector<std::string> StatFields(const std::string& stat) {
  std::vector<std::string> fields;
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return fields;
  std::stringstream rest(stat.substr(close + 1));
  std::string field;
  while (rest >> field) fields.push_back(field);
  return fields;
}

int64_t StatusField(const std::string& status, const std::string& key) {
  const size_t at = status.find("\n" + key + ":");
  if (at == std::string::npos) return 0;
  return std::strtoll(status.c_str() + at + key.size() + 2, nullptr, 10);
}

std::string ProcDir(pid_t pid) {
  return pid == 0 ? "/proc/self" : "/proc/" + std::to_string(pid);
}

}  // namespace

StatusOr<ProcSample> SampleProcess(pid_t pid) {
  const std::string dir = ProcDir(pid);
  auto fields = StatFields(ReadAll(dir + "/stat"));
  if (fields.size() < 13)
    return UnavailableError("cannot read " + dir + "/stat");
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcSample sample;
  sample.user_s = std::strtod(fields[11].c_str(), nullptr) / ticks;
  sample.sys_s = std::strtod(fields[12].c_str(), nullptr) / ticks;
  const std::string status = "\n" + ReadAll(dir + "/status");
  sample.rss_kib = StatusField(status, "VmRSS");
  sample.voluntary_switches = StatusField(status, "voluntary_ctxt_switches");
  sample.involuntary_switches =
      StatusField(status, "nonvoluntary_ctxt_switches");
  return sample;
}

std::vector<ThreadCpu> SampleThreads(pid_t pid) {
  std::vector<ThreadCpu> threads;
  const std::string dir = ProcDir(pid) + "/task";
  DIR* tasks = ::opendir(dir.c_str());
  if (tasks == nullptr) return threads;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  while (dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    const std::string stat = ReadAll(dir + "/" + entry->d_name + "/stat");
    auto fields = StatFields(stat);
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (fields.size() < 13 || open == std::string::npos) continue;
    ThreadCpu thread;
    thread.tid = std::atoi(entry->d_name);
    thread.name = stat.substr(open + 1, close - open - 1);
    thread.cpu_s = (std::strtod(fields[11].c_str(), nullptr) +
                    std::strtod(fields[12].c_str(), nullptr)) /
                   ticks;
    threads.push_back(thread);
  }
  ::closedir(tasks);
  return threads;
}

StatusOr<pid_t> SpawnChild(const std::vector<std::string>& args,
                           const std::string& log_path) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& arg : copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int log_fd =
      ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return UnavailableError("cannot create " + log_path);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return UnavailableError("fork failed");
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec. The child goes
    // when the load generator dies, however it dies.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

std::string StopChild(pid_t pid, int grace_ms) {
  ::kill(pid, SIGTERM);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                               : "signal " + std::to_string(WTERMSIG(status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return "killed after " + std::to_string(grace_ms) + " ms";
}

StatusOr<std::unique_ptr<BrokerProcess>> BrokerProcess::Start(
    const BrokerProcessOptions& options, int timeout_ms) {
  const std::string endpoint_file = options.work_dir + "/broker.endpoint";
  const std::string log_path = options.work_dir + "/broker.log";
  ::unlink(endpoint_file.c_str());
  ::unlink(log_path.c_str());
  std::vector<std::string> args = {options.binary,
                                   "--log-level",
                                   options.log_level,
                                   "run",
                                   "--db",
                                   options.db_path,
                                   "--keys",
                                   options.keys_dir,
                                   "--endpoint",
                                   "tcp://127.0.0.1:0",
                                   "--endpoint-file",
                                   endpoint_file,
                                   "--broker-id",
                                   options.broker_id,
                                   "--heartbeat-ms",
                                   std::to_string(options.heartbeat_ms),
                                   "--liveness",
                                   std::to_string(options.liveness)};
  CN_ASSIGN_OR_RETURN(const pid_t pid, SpawnChild(args, log_path));
  std::unique_ptr<BrokerProcess> process(new BrokerProcess(pid, log_path));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string endpoint = ReadAll(endpoint_file);
    while (!endpoint.empty() &&
           (endpoint.back() == '\n' || endpoint.back() == '\r')) {
      endpoint.pop_back();
    }
    if (!endpoint.empty()) {
      process->endpoint_ = endpoint;
      return process;
    }
    if (!process->Alive()) {
      return UnavailableError("broker exited at start: " +
                              process->LogTail(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return UnavailableError("broker did not bind within " +
                          std::to_string(timeout_ms) +
                          " ms: " + process->LogTail(10));
}

BrokerProcess::~BrokerProcess() {
  if (!reaped_) Stop(5000);
}

bool BrokerProcess::Alive() {
  if (reaped_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

size_t BrokerProcess::CountInLog(std::string_view needle) const {
  std::ifstream in(log_path_);
  std::string line;
  size_t count = 0;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) ++count;
  }
  return count;
}

std::string BrokerProcess::LogTail(size_t lines) const {
  std::ifstream in(log_path_);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& kept : tail) out += kept + "\n";
  return out;
}

std::string BrokerProcess::Stop(int grace_ms) {
  if (reaped_) return "already exited";
  reaped_ = true;
  return StopChild(pid_, grace_ms);
}

}  // namespace computenet::loadgen
