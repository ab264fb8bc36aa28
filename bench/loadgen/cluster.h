// Cluster: everything the load generator runs against, set up from
// scratch in a work directory: a broker key, every party's key, bulk
// enrolment (enroll.h), the broker as a child process (broker_process.h),
// N real provider agents (provider-sdk ProviderAgent, one thread each, with
// an InstantExecutor or the real ProcessExecutor) and optionally a swarm of
// raw-protocol heartbeating providers (swarm.h).
//
// Thread safety: used from the main thread; agents and the swarm run on
// their own threads inside.
#ifndef COMPUTENET_BENCH_LOADGEN_CLUSTER_H_
#define COMPUTENET_BENCH_LOADGEN_CLUSTER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "computenet/common/identity.h"
#include "computenet/provider/agent.h"
#include "swarm.h"

// Runs one swarm worker process (main.cc dispatches --mode swarm-worker
// here): members [from, from + count) of keys_file; reports to stats_file
// every 200 ms until SIGTERM.
namespace computenet::loadgen {
int RunSwarmWorker(const std::string& keys_file, size_t from, size_t count,
                   const std::string& endpoint, const std::string& broker_key,
                   const std::string& stats_file, int threads, int heartbeat_ms,
                   bool connect_only);
}  // namespace computenet::loadgen

namespace computenet::loadgen {

struct ClusterOptions {
  std::string work_dir;
  std::string broker_binary;
  std::string broker_log_level = "warn";
  int heartbeat_ms = 1000;
  int liveness = 3;
  std::vector<v1::RegisterProvider> agents;  // one ProviderAgent each
  bool process_executor = false;             // else InstantExecutor
  int consumers = 16;
  int unfunded_consumers = 0;
  int64_t topup_per_consumer = 1'000'000'000'000'000;  // minor units
  int swarm = 0;
  int swarm_per_process = 3500;  // under 20,000 descriptors per process
  int swarm_threads = 2;         // per worker process
  int swarm_connects_per_second = 1500;
  bool swarm_connect_only = false;  // see SwarmOptions::connect_only
};

class Cluster {
 public:
  // Keys, enrolment, broker start. Agents and swarm are started separately.
  static StatusOr<std::unique_ptr<Cluster>> Create(ClusterOptions options);
  ~Cluster();

  // Starts the agents and waits until the broker acknowledged each.
  Status StartAgents(int timeout_ms);
  // Starts the swarm worker processes (`loadgen --mode swarm-worker`, this
  // same binary) and waits until all members are registered.
  Status StartSwarm(int timeout_ms);
  void Stop();

  BrokerProcess& broker() { return *broker_; }
  const Identity& broker_identity() const { return broker_identity_; }
  const std::vector<Identity>& consumers() const { return consumers_; }
  const std::vector<Identity>& unfunded() const { return unfunded_; }
  bool has_swarm() const { return !swarm_workers_.empty(); }
  // Summed over the worker processes (as of their last report, <= 200 ms).
  SwarmStats swarm_stats() const;
  double swarm_cpu_s() const;
  uint64_t executor_starts() const { return executor_starts_.load(); }
  size_t agent_nodes() const;
  double keygen_s() const { return keygen_s_; }
  double enroll_s() const { return enroll_s_; }

 private:
  explicit Cluster(ClusterOptions options) : options_(std::move(options)) {}

  ClusterOptions options_;
  Identity broker_identity_ = *Identity::Generate("lg-broker");
  std::vector<Identity> agent_identities_;
  std::vector<Identity> consumers_;
  std::vector<Identity> unfunded_;
  std::vector<CurveKeyPair> swarm_keys_;
  std::unique_ptr<BrokerProcess> broker_;
  std::vector<std::unique_ptr<provider::ProviderAgent>> agents_;
  std::vector<std::thread> agent_threads_;
  std::vector<pid_t> swarm_workers_;
  std::vector<std::string> swarm_stats_files_;
  std::atomic<uint64_t> executor_starts_{0};
  double keygen_s_ = 0;
  double enroll_s_ = 0;
};

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_CLUSTER_H_
