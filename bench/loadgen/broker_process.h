// BrokerProcess: runs `computenet-broker run ...` as a child process of the
// load generator (so its CPU time and memory are its own), waits for the
// endpoint it bound, and reads its CPU seconds, RSS and per-thread CPU from
// /proc/<pid>/stat, /proc/<pid>/status and /proc/<pid>/task/*/stat.
// ProcSample also reads the load generator's own figures ("self").
//
// Thread safety: Start/Stop from one thread; Sample() and Threads() only
// read /proc and are safe from any thread.
#ifndef COMPUTENET_BENCH_LOADGEN_BROKER_PROCESS_H_
#define COMPUTENET_BENCH_LOADGEN_BROKER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "computenet/common/status.h"

namespace computenet::loadgen {

struct ProcSample {
  double user_s = 0;
  double sys_s = 0;
  double cpu_s() const { return user_s + sys_s; }
  int64_t rss_kib = 0;
  int64_t voluntary_switches = 0;    // mostly waits: fsync, poll
  int64_t involuntary_switches = 0;  // preempted: CPU contention
};

struct ThreadCpu {
  int tid = 0;
  std::string name;  // comm, e.g. "computenet-brok" or "ZMQbg/IO/0"
  double cpu_s = 0;
};

// pid 0 = this process.
StatusOr<ProcSample> SampleProcess(pid_t pid);
std::vector<ThreadCpu> SampleThreads(pid_t pid);

// Starts args[0] (a path) with stdout and stderr appended to log_path and
// stdin from /dev/null; the child gets SIGTERM if this process dies.
StatusOr<pid_t> SpawnChild(const std::vector<std::string>& args,
                           const std::string& log_path);
// SIGTERM, then SIGKILL after grace_ms; reaps it. Returns how it ended.
std::string StopChild(pid_t pid, int grace_ms);

struct BrokerProcessOptions {
  std::string binary;    // computenet-broker
  std::string work_dir;  // holds the endpoint file and broker.log
  std::string db_path;
  std::string keys_dir;
  std::string broker_id = "lg";
  std::string log_level = "warn";
  int heartbeat_ms = 1000;
  int liveness = 3;
};

class BrokerProcess {
 public:
  // Spawns the broker and waits up to timeout_ms for its endpoint file.
  // UNAVAILABLE (with the log's tail) if it exits or never binds.
  static StatusOr<std::unique_ptr<BrokerProcess>> Start(
      const BrokerProcessOptions& options, int timeout_ms);
  ~BrokerProcess();  // Stop(5000) if still running

  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& endpoint() const { return endpoint_; }
  const std::string& log_path() const { return log_path_; }
  bool Alive();
  StatusOr<ProcSample> Sample() const { return SampleProcess(pid_); }
  std::vector<ThreadCpu> Threads() const { return SampleThreads(pid_); }
  // Lines of the broker's log that contain needle.
  size_t CountInLog(std::string_view needle) const;
  std::string LogTail(size_t lines) const;
  // SIGTERM, then SIGKILL after grace_ms. Returns the exit status text.
  std::string Stop(int grace_ms);

 private:
  BrokerProcess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string endpoint_;
  std::string log_path_;
};

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_BROKER_PROCESS_H_
